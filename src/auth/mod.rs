//! Who is calling and what they may do: tokens, passwords, TOTP, throttling, the role matrix and
//! the in-memory live state. Pure logic over plain values: no warp, no SQL.

pub mod api_key;
pub mod live;
pub mod password;
pub mod permission;
pub mod policy;
pub mod principal;
pub mod rate;
pub mod refusals;
pub mod sealed;
pub mod throttle;
pub mod token;
pub mod totp;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use crate::config::AuthConfig;
use crate::domain::{Id, UnixTime};
use crate::error::ApiError;
use live::{Live, LiveSession};
use principal::{KeyRef, Method, Principal};
use refusals::{Client, Refusal, Refusals, RefusedKey};
use sealed::{SealError, SecretSealer};
use throttle::LoginThrottle;
use token::{Claims, TokenError, TokenKeys, TokenType};

/// A key file of the data directory that could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// Authentication state shared by all requests.
pub struct Auth {
    pub tokens: TokenKeys,
    /// Seals TOTP secrets for the database (shared with blocking closures).
    pub mfa_sealer: Arc<SecretSealer>,
    /// Access tokens already verified, by the SHA-256 of their text: a hit proves the same
    /// token's signature was checked before. Expiry is still checked on every use. 64 bytes of
    /// entry per token (its text and claims would be ten times that), so that a day of
    /// logins does not add up.
    verified: RwLock<HashMap<[u8; 32], Verified>>,
    pub live: Live,
    /// Refused uses of known keys, to be audited.
    pub refusals: Refusals,
    pub throttle: LoginThrottle,
    access_ttl: i64,
    pub refresh_ttl: i64,
    pub rotate_refresh_tokens: bool,
}

/// Verified access tokens kept at most; past it, expired ones go, then all.
const VERIFIED_CACHE_SIZE: usize = 16_384;

/// What a verified access token says that a request needs.
#[derive(Debug, Clone, Copy)]
struct Verified {
    user_id: Id,
    organization_id: Id,
    session_id: Id,
    session_secret: Option<token::SessionSecret>,
    exp: UnixTime,
}

/// A freshly issued access token (and refresh token, at login or with rotation).
pub struct Issued {
    pub access: String,
    pub refresh: Option<String>,
}

impl Auth {
    pub fn new(config: &AuthConfig, data_dir: &Path) -> Result<Self, KeyError> {
        Ok(Auth {
            tokens: TokenKeys::load_or_create(data_dir, &config.issuer)?,
            mfa_sealer: Arc::new(SecretSealer::load_or_create(data_dir)?),
            verified: RwLock::new(HashMap::new()),
            live: Live::default(),
            refusals: Refusals::default(),
            throttle: LoginThrottle::with_capacity(
                config.max_failed_logins,
                config.max_failed_logins_per_address,
                config.failure_window.as_secs(),
                config.lockout.as_secs(),
                config.throttle_max_entries as usize,
            ),
            access_ttl: config.access_ttl.as_secs(),
            refresh_ttl: config.refresh_ttl.as_secs(),
            rotate_refresh_tokens: config.rotate_refresh_tokens,
        })
    }

    /// Resolves an access token against the live state: the session must be live and the
    /// user active, in the organization the token names. No database, no hashing.
    pub fn authenticate_jwt(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<(Principal, Arc<LiveSession>), ApiError> {
        let claims = self.verify_access(token, now)?;
        let user_id = claims.user_id;
        let session = self
            .live
            .session(claims.session_id)
            .filter(|s| {
                s.user_id == user_id
                    && s.is_live(now)
                    && token::same_session(s.secret.as_ref(), claims.session_secret.as_ref())
            })
            .ok_or(ApiError::TokenNotValid)?;
        let user = self
            .live
            .user(user_id)
            .filter(|u| u.is_active && u.organization_id == claims.organization_id)
            .ok_or(ApiError::TokenNotValid)?;
        let principal = Principal {
            user_id,
            organization_id: user.organization_id,
            role: user.role,
            method: Method::Jwt,
            session_id: Some(claims.session_id),
            key: None,
            rates: self.live.user_rates(user_id),
            password_change_required: user.password_temporary,
            mfa_enrollment_required: session.mfa_enrollment_required && !user.mfa_enabled,
        };
        Ok((principal, session))
    }

    /// Resolves an API key against the live state: the checksum first (a typo costs no
    /// lookup), then the key by its SHA-256, its state, its creator's current role and the
    /// client's address. A canary key answers as an unknown key does; it, a rotated key used
    /// after its overlap and a key used from outside its allowlist are noted for the audit log.
    pub fn authenticate_key(
        &self,
        key: &str,
        now: UnixTime,
        client: &Client<'_>,
    ) -> Result<Principal, ApiError> {
        if !api_key::well_formed(key) {
            return Err(ApiError::ApiKeyInvalid);
        }
        let hash = api_key::hash(key);
        let Some(live) = self.live.key(&hash) else {
            return Err(if self.live.revoked_for_good(&hash) {
                ApiError::ApiKeyRevoked
            } else {
                ApiError::ApiKeyInvalid
            });
        };
        let refuse = |refusal: Refusal, error: ApiError| {
            let key = RefusedKey {
                id: live.id,
                user_id: live.user_id,
                organization_id: live.organization_id,
                prefix: live.prefix.clone(),
            };
            self.refusals.note(key, refusal, client, now);
            Err(error)
        };
        if live.canary {
            return refuse(Refusal::CanaryUsed, ApiError::ApiKeyInvalid);
        }
        let ended = if live.revoked {
            Some(ApiError::ApiKeyRevoked)
        } else if live.expires_at.is_some_and(|at| at <= now) {
            Some(ApiError::ApiKeyExpired)
        } else {
            None
        };
        match ended {
            Some(error) if live.replaced => return refuse(Refusal::UsedAfterRotation, error),
            Some(error) => return Err(error),
            None => {}
        }
        // A deactivated creator's keys are revoked with the deactivation, in the same change.
        let user = self
            .live
            .user(live.user_id)
            .filter(|u| u.is_active && u.organization_id == live.organization_id)
            .ok_or(ApiError::ApiKeyRevoked)?;
        if !live.allows(client.ip) {
            return refuse(Refusal::IpDenied, ApiError::IpNotAllowed);
        }
        live.record_use(now, client.ip, client.user_agent);
        Ok(Principal {
            user_id: user.id,
            organization_id: user.organization_id,
            role: user.role,
            method: Method::ApiKey,
            session_id: None,
            key: Some(KeyRef {
                id: live.id,
                name: live.name.clone(),
                prefix: live.prefix.clone(),
                created_at: live.created_at,
                expires_at: live.expires_at,
                scopes: live.scopes.clone(),
                counters: live.counters.clone(),
            }),
            rates: live.counters.rates.clone(),
            // A key is not a session: a temporary password does not stop the keys its user
            // made before (their session could not make new ones).
            password_change_required: false,
            mfa_enrollment_required: false,
        })
    }

    /// Verifies an access token, once per token: later uses are a map lookup on the SHA-256
    /// of its text, with the expiry checked again.
    fn verify_access(&self, token: &str, now: UnixTime) -> Result<Verified, ApiError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self
            .verified
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&digest)
            .copied();
        let claims = match cached {
            Some(claims) => claims,
            None => {
                let claims = self
                    .tokens
                    .verify(token, TokenType::Access)
                    .map_err(|_| ApiError::TokenNotValid)?;
                let claims = Verified {
                    user_id: claims.user_id().ok_or(ApiError::TokenNotValid)?,
                    organization_id: claims.org,
                    session_id: claims.sid,
                    session_secret: claims
                        .session_secret()
                        .map_err(|_| ApiError::TokenNotValid)?,
                    exp: claims.exp,
                };
                let mut verified = self.verified.write().unwrap_or_else(|e| e.into_inner());
                if verified.len() >= VERIFIED_CACHE_SIZE {
                    verified.retain(|_, c| c.exp >= now);
                    if verified.len() >= VERIFIED_CACHE_SIZE {
                        verified.clear();
                    }
                }
                verified.insert(digest, claims);
                claims
            }
        };
        // Times are whole seconds, `iat` the second the token was issued in: a token lives
        // through the second its `exp` names, so one issued late in a second still lives its
        // whole time to live (as `jsonwebtoken` reads `exp` too).
        if claims.exp < now {
            return Err(ApiError::TokenNotValid);
        }
        Ok(claims)
    }

    /// Verifies a refresh token's signature, type and expiry (not yet its session).
    pub fn verify_refresh(&self, token: &str) -> Result<Claims, ApiError> {
        self.tokens
            .verify(token, TokenType::Refresh)
            .map_err(|_| ApiError::TokenNotValid)
    }

    /// The live session a refresh token (already verified) belongs to: the session it names,
    /// of the user it names, live, holding the secret the token carries.
    pub fn session_of(&self, claims: &Claims, now: UnixTime) -> Result<Arc<LiveSession>, ApiError> {
        let user_id = claims.user_id().ok_or(ApiError::TokenNotValid)?;
        let secret = claims
            .session_secret()
            .map_err(|_| ApiError::TokenNotValid)?;
        self.live
            .session(claims.sid)
            .filter(|s| {
                s.user_id == user_id
                    && s.is_live(now)
                    && token::same_session(s.secret.as_ref(), secret.as_ref())
            })
            .ok_or(ApiError::TokenNotValid)
    }

    /// An access token for the session, never outliving it; with `refresh_jti`, also the
    /// refresh token carrying that id.
    pub fn issue(
        &self,
        user_id: Id,
        organization_id: Id,
        session: (Id, Option<&token::SessionSecret>),
        session_end: UnixTime,
        refresh_jti: Option<&str>,
        now: UnixTime,
    ) -> Result<Issued, ApiError> {
        let (session_id, secret) = session;
        let secret = secret.map(|s| crate::domain::hex(s));
        let claims = |typ, jti: String, exp| Claims {
            iss: self.tokens.issuer().to_string(),
            sub: user_id.to_string(),
            org: organization_id,
            sid: session_id,
            sst: secret.clone(),
            jti,
            iat: now,
            exp,
            typ,
        };
        let sign = |c: &Claims| {
            self.tokens
                .issue(c)
                .map_err(|e| ApiError::Internal(e.to_string()))
        };
        let access = sign(&claims(
            TokenType::Access,
            token::new_jti(),
            (now + self.access_ttl).min(session_end),
        ))?;
        let refresh = match refresh_jti {
            Some(jti) => Some(sign(&claims(
                TokenType::Refresh,
                jti.to_string(),
                session_end,
            ))?),
            None => None,
        };
        Ok(Issued { access, refresh })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Issue times are whole seconds: a token issued late in second `now` must not die a
    /// millisecond later at `now + 1`, whatever its time to live.
    #[test]
    fn an_access_token_lives_at_least_its_time_to_live() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load_from_env_for_test(&[("CLARIBI_AUTH__ACCESS_TTL", "1s")])
            .unwrap()
            .config;
        let auth = Auth::new(&config.auth, dir.path()).unwrap();
        let now = crate::domain::now();
        let issued = auth
            .issue(7, 1, (3, None), now + 60, None, now)
            .unwrap()
            .access;
        assert!(auth.verify_access(&issued, now).is_ok());
        assert!(auth.verify_access(&issued, now + 1).is_ok());
        assert!(auth.verify_access(&issued, now + 2).is_err());
    }
}
