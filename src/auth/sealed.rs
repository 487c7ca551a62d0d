//! TOTP secrets at rest: sealed with XChaCha20-Poly1305 under a key that lives in the data
//! directory (`mfa-key`, mode 0600), not in the database. A copy of the database alone (a
//! backup, a stolen file) therefore holds no usable second factor. The user's id is the
//! associated data, so a sealed secret moved to another user's row does not open.
//!
//! Stored form: `v1.` + base64url(24-byte nonce ‖ ciphertext and tag).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::domain::Id;

const PREFIX: &str = "v1.";
const NONCE: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("MFA key: {0}")]
    Key(String),
    /// Wrong key, another user's row, or a damaged value: nothing is said about which.
    #[error("a sealed MFA secret does not open")]
    Open,
}

pub struct SecretSealer {
    cipher: XChaCha20Poly1305,
}

impl SecretSealer {
    /// Loads `<data_dir>/mfa-key`, creating a random 256-bit one (mode 0600) at first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SealError> {
        let path = data_dir.join("mfa-key");
        let key = crate::data_dir::load_or_create_key(&path, 32).map_err(SealError::Key)?;
        Self::from_key(&key)
            .map_err(|_| SealError::Key(format!("{} must hold exactly 32 bytes", path.display())))
    }

    pub fn from_key(key: &[u8]) -> Result<Self, SealError> {
        let cipher = XChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| SealError::Key("the key must be 32 bytes".into()))?;
        Ok(SecretSealer { cipher })
    }

    /// `secret` sealed for `user_id`, with a fresh random nonce.
    pub fn seal(&self, user_id: Id, secret: &str) -> Result<String, SealError> {
        self.seal_for(&user_id.to_be_bytes(), secret)
    }

    /// The secret sealed for `user_id`. A value without the prefix is a secret stored by a
    /// version before sealing: see `is_sealed` and the upgrade in `App::open`.
    pub fn open(&self, user_id: Id, stored: &str) -> Result<String, SealError> {
        self.open_for(&user_id.to_be_bytes(), stored)
    }

    /// `secret` sealed for what `owner` names (the associated data): a sealed value opens only
    /// for the same owner. Owners other than users' ids must not be 8 bytes long.
    pub fn seal_for(&self, owner: &[u8], secret: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = owner;
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad,
                },
            )
            .map_err(|_| SealError::Open)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// The secret sealed for `owner` (see `seal_for`).
    pub fn open_for(&self, owner: &[u8], stored: &str) -> Result<String, SealError> {
        let encoded = stored.strip_prefix(PREFIX).ok_or(SealError::Open)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::Open)?;
        if bytes.len() <= NONCE {
            return Err(SealError::Open);
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        let aad = owner;
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain).map_err(|_| SealError::Open)
    }

    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> SecretSealer {
        SecretSealer::from_key(&[7u8; 32]).unwrap()
    }

    #[test]
    fn seals_and_opens_for_the_same_user_only() {
        let s = sealer();
        let sealed = s.seal(4, "JBSWY3DPEHPK3PXP").unwrap();
        assert!(SecretSealer::is_sealed(&sealed));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(s.open(4, &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        assert!(matches!(s.open(5, &sealed), Err(SealError::Open)));
        assert_ne!(
            sealed,
            s.seal(4, "JBSWY3DPEHPK3PXP").unwrap(),
            "fresh nonce"
        );
    }

    #[test]
    fn another_key_damage_or_plain_text_do_not_open() {
        let sealed = sealer().seal(4, "JBSWY3DPEHPK3PXP").unwrap();
        let other = SecretSealer::from_key(&[8u8; 32]).unwrap();
        assert!(other.open(4, &sealed).is_err());
        let mut damaged = sealed.clone().into_bytes();
        let last = damaged.len() - 2;
        damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
        assert!(sealer()
            .open(4, std::str::from_utf8(&damaged).unwrap())
            .is_err());
        assert!(sealer().open(4, "JBSWY3DPEHPK3PXP").is_err());
        assert!(sealer().open(4, "v1.").is_err());
        assert!(SecretSealer::from_key(&[1u8; 16]).is_err());
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let sealed = SecretSealer::load_or_create(dir.path())
            .unwrap()
            .seal(1, "S")
            .unwrap();
        let again = SecretSealer::load_or_create(dir.path()).unwrap();
        assert_eq!(again.open(1, &sealed).unwrap(), "S");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("mfa-key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("mfa-key"), b"short").unwrap();
        assert!(SecretSealer::load_or_create(dir.path()).is_err());
    }
}
