//! argon2id hashing and verification, always on a blocking thread, at most one per core at once,
//! with a bounded queue; plus the password rules and the dummy hash for unknown accounts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use tokio::sync::Semaphore;

use crate::config::AuthConfig;
use crate::domain::Secret;

/// Longer passwords are refused before hashing: argon2 takes any length, an attacker's
/// megabyte-long password should not cost us anything.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// A small list of the passwords tried first by every guessing tool.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// All hashing threads are busy and the queue is full.
    #[error("too many password checks are waiting")]
    Busy,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Why a new password is refused; the text is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeakPassword(pub String);

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    dummy_hash: Arc<str>,
    min_length: usize,
}

impl Hasher {
    /// Also computes the dummy hash used to spend the same time on unknown accounts.
    pub fn new(config: &AuthConfig) -> Result<Self, PasswordError> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut random = [0u8; 24];
        rand::RngCore::fill_bytes(&mut OsRng, &mut random);
        let dummy_hash = hash_with(&params, &Secret::new(hex(&random)))?;
        Ok(Hasher {
            params,
            permits: Arc::new(Semaphore::new(cores)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: config.max_pending_password_checks,
            dummy_hash: dummy_hash.into(),
            min_length: config.min_password_length,
        })
    }

    /// Hashes on a blocking thread; `Busy` when the queue is full.
    pub async fn hash(&self, password: Secret) -> Result<String, PasswordError> {
        let params = self.params.clone();
        self.run(move || hash_with(&params, &password)).await?
    }

    /// Verifies on a blocking thread. `None` (no such user) checks against the dummy hash so
    /// that an unknown email costs the same time as a wrong password, and answers `false`.
    pub async fn verify(
        &self,
        password: Secret,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = self.run(move || verify_hash(&password, &hash)).await?;
        Ok(ok && known)
    }

    /// Hashing for callers already off the async threads (CLI, bootstrap).
    pub fn hash_blocking(&self, password: &Secret) -> Result<String, PasswordError> {
        hash_with(&self.params, password)
    }

    /// The rules for a new password (its length in bytes was checked by the caller's parser).
    pub fn check_strength(&self, password: &Secret, email: &str) -> Result<(), WeakPassword> {
        check_strength(password.expose(), email, self.min_length)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        // Count ourselves in the queue before waiting; refuse rather than pile up memory.
        let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _leave = Leave(&self.waiting);
        if queued >= self.max_waiting {
            return Err(PasswordError::Busy);
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let value = work();
            drop(permit);
            value
        })
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))
    }
}

struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &Secret) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2(params)
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Verifies with the parameters stored in the hash itself, so raising the cost in the config
/// keeps old hashes working.
pub fn verify_hash(password: &Secret, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
}

fn check_strength(password: &str, email: &str, min_length: usize) -> Result<(), WeakPassword> {
    if password.chars().count() < min_length {
        return Err(WeakPassword(format!(
            "must be at least {min_length} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword(format!(
            "must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.lines().any(|common| common == lower) {
        return Err(WeakPassword("is too common".into()));
    }
    let local = email.split('@').next().unwrap_or_default();
    if lower == email || (local.len() >= 4 && lower == local) {
        return Err(WeakPassword("must not be your email address".into()));
    }
    if password.chars().all(|c| password.starts_with(c)) {
        return Err(WeakPassword("must not repeat a single character".into()));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Params {
        Params::new(1024, 1, 1, None).unwrap()
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let password = Secret::new("correct horse battery");
        let a = hash_with(&cheap(), &password).unwrap();
        let b = hash_with(&cheap(), &password).unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_ne!(a, b, "salts differ");
        assert!(verify_hash(&password, &a));
        assert!(!verify_hash(&Secret::new("correct horse battery!"), &a));
        assert!(!verify_hash(&password, "not a hash"));
    }

    #[test]
    fn strength_rules() {
        let ok = |p: &str| check_strength(p, "ada@example.com", 8);
        assert!(ok("violet-tiger-42").is_ok());
        assert!(ok("short").is_err());
        assert!(ok("password").is_err());
        assert!(
            ok("Password1").is_err(),
            "case does not hide a common password"
        );
        assert!(ok("12345678").is_err());
        assert!(ok("ada@example.com").is_err());
        assert!(ok("aaaaaaaaaaaa").is_err());
        assert!(ok(&"x".repeat(100).replace('x', "ab")).is_ok());
        assert!(ok(&"ab".repeat(200)).is_err(), "over 256 bytes");
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify_and_a_full_queue_is_refused() {
        let mut config = crate::config::Config::load(crate::config::Source::Explicit(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/claribi.toml")),
        ))
        .unwrap()
        .config
        .auth;
        config.argon2_memory_kib = 1024;
        config.argon2_iterations = 1;
        config.max_pending_password_checks = 0;
        let hasher = Hasher::new(&config).unwrap();
        let secret = Secret::new("anything-at-all");
        assert!(matches!(
            hasher.verify(secret.clone(), None).await,
            Err(PasswordError::Busy)
        ));
        config.max_pending_password_checks = 4;
        let hasher = Hasher::new(&config).unwrap();
        assert!(!hasher.verify(secret.clone(), None).await.unwrap());
        let hash = hasher.hash(secret.clone()).await.unwrap();
        assert!(hasher.verify(secret, Some(hash)).await.unwrap());
    }
}
