//! JWTs: HS256 only, with the signing secret from the data directory; `iss`, `exp` and `typ`
//! always checked, `nbf` when present, a leeway of two seconds.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{Id, UnixTime};

const LEEWAY_SECONDS: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

/// The claims of both token types; `sub` is the user id as a string (RFC 7519).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub org: Id,
    pub sid: Id,
    /// The session's own random secret (hex): the token opens only the session it was issued
    /// for, never another that took the same id (after a restore). Absent in tokens of
    /// sessions made before sessions had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sst: Option<String>,
    pub jti: String,
    pub iat: UnixTime,
    pub exp: UnixTime,
    pub typ: TokenType,
}

impl Claims {
    pub fn user_id(&self) -> Option<Id> {
        self.sub.parse().ok()
    }

    /// The session secret the token carries; `Err` when it carries one that is malformed.
    pub fn session_secret(&self) -> Result<Option<SessionSecret>, TokenError> {
        self.sst
            .as_deref()
            .map(|hex| parse_session_secret(hex).ok_or(TokenError::Invalid("malformed sst".into())))
            .transpose()
    }
}

/// A session's own random secret: 128 bits.
pub type SessionSecret = [u8; 16];

/// A fresh session secret.
pub fn new_session_secret() -> SessionSecret {
    rand::random()
}

/// A session secret from its hex text (as stored and as carried in tokens); `None` when the
/// text is not 32 hex digits.
pub fn parse_session_secret(hex: &str) -> Option<SessionSecret> {
    let bytes = hex.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Whether a token's session secret is its session's, in constant time. A session made before
/// sessions had secrets has none, and so have its tokens.
pub fn same_session(session: Option<&SessionSecret>, token: Option<&SessionSecret>) -> bool {
    use subtle::ConstantTimeEq;
    match (session, token) {
        (Some(a), Some(b)) => bool::from(a.ct_eq(b)),
        (None, None) => true,
        _ => false,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token not valid: {0}")]
    Invalid(String),
    #[error("expected a {expected:?} token")]
    WrongType { expected: TokenType },
    #[error("signing secret: {0}")]
    Secret(String),
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    header: Header,
    issuer: String,
}

impl TokenKeys {
    /// Loads `<data_dir>/jwt-secret`, creating a random 256-bit one (mode 0600) at first start.
    pub fn load_or_create(data_dir: &Path, issuer: &str) -> Result<Self, TokenError> {
        let secret = crate::data_dir::load_or_create_key(&data_dir.join("jwt-secret"), 32)
            .map_err(TokenError::Secret)?;
        Ok(Self::from_secret(&secret, issuer))
    }

    pub fn from_secret(secret: &[u8], issuer: &str) -> Self {
        // The key id names the secret without revealing it, so that a rotated secret can be
        // told apart from the old one later.
        let digest = Sha256::digest(secret);
        let kid = crate::domain::hex(&digest[..4]);
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            kid,
            header,
            issuer: issuer.to_string(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&self.header, claims, &self.encoding)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// Verifies signature, algorithm, issuer, expiry, `nbf`, key id and type.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Invalid("algorithm not accepted".into()));
        }
        if header.kid.as_deref().is_some_and(|kid| kid != self.kid) {
            return Err(TokenError::Invalid("unknown key id".into()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        if data.claims.typ != expected {
            return Err(TokenError::WrongType { expected });
        }
        Ok(data.claims)
    }
}

/// A random token id: 128 bits, hex.
pub fn new_jti() -> String {
    let bytes: [u8; 16] = rand::random();
    crate::domain::hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(&[7u8; 32], "claribi")
    }

    fn claims(typ: TokenType, exp_in: i64) -> Claims {
        let now = crate::domain::now();
        Claims {
            iss: "claribi".into(),
            sub: "42".into(),
            org: 1,
            sid: 9,
            sst: Some(crate::domain::hex(&new_session_secret())),
            jti: new_jti(),
            iat: now,
            exp: now + exp_in,
            typ,
        }
    }

    #[test]
    fn round_trip_and_type_check() {
        let k = keys();
        let token = k.issue(&claims(TokenType::Access, 60)).unwrap();
        let back = k.verify(&token, TokenType::Access).unwrap();
        assert_eq!((back.user_id(), back.sid), (Some(42), 9));
        assert!(matches!(
            k.verify(&token, TokenType::Refresh),
            Err(TokenError::WrongType { .. })
        ));
    }

    #[test]
    fn expired_foreign_and_tampered_tokens_are_refused() {
        let k = keys();
        let expired = k.issue(&claims(TokenType::Access, -10)).unwrap();
        assert!(k.verify(&expired, TokenType::Access).is_err());
        let other = TokenKeys::from_secret(&[8u8; 32], "claribi");
        let foreign = other.issue(&claims(TokenType::Access, 60)).unwrap();
        assert!(k.verify(&foreign, TokenType::Access).is_err());
        let mut foreign_issuer = claims(TokenType::Access, 60);
        foreign_issuer.iss = "someone-else".into();
        let wrong_issuer = k.issue(&foreign_issuer).unwrap();
        assert!(k.verify(&wrong_issuer, TokenType::Access).is_err());
    }

    #[test]
    fn session_secrets_round_trip_through_the_token_and_compare_exactly() {
        let k = keys();
        let c = claims(TokenType::Refresh, 60);
        let secret = parse_session_secret(c.sst.as_deref().unwrap()).unwrap();
        let back = k.verify(&k.issue(&c).unwrap(), TokenType::Refresh).unwrap();
        assert_eq!(back.session_secret().unwrap(), Some(secret));
        let other = new_session_secret();
        assert!(same_session(Some(&secret), Some(&secret)));
        assert!(!same_session(Some(&secret), Some(&other)));
        assert!(!same_session(Some(&secret), None));
        assert!(!same_session(None, Some(&secret)));
        assert!(same_session(None, None));
        assert_eq!(parse_session_secret("zz"), None);
        assert_eq!(parse_session_secret(&"g".repeat(32)), None);
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let k = keys();
        let token = k.issue(&claims(TokenType::Access, 60)).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        for alg in ["none", "HS512", "RS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let forged = format!("{header}.{payload}.");
            assert!(k.verify(&forged, TokenType::Access).is_err(), "{alg}");
        }
    }
}
