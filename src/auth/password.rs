//! argon2id hashing and verification on a pool of dedicated low-priority threads (one per
//! core) behind a bounded queue; plus the password rules and the dummy hash for unknown accounts.
//!
//! The threads run at the lowest scheduling priority: under load the async threads that answer
//! other requests always come first, and a login storm cannot stretch their latency.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use tokio::sync::oneshot;

use crate::config::AuthConfig;
use crate::domain::{hex, Secret};

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

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// The queue of the hashing threads; full means `Busy`.
    jobs: SyncSender<Job>,
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
        let (jobs, queue) = sync_channel::<Job>(config.max_pending_password_checks);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..cores {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&queue))
                .map_err(|e| PasswordError::Hash(format!("starting a hashing thread: {e}")))?;
        }
        Ok(Hasher {
            params,
            jobs,
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

    /// The rules for a new password (its length in bytes was checked by the caller's parser).
    pub fn check_strength(&self, password: &Secret, email: &str) -> Result<(), WeakPassword> {
        check_strength(password.expose(), email, self.min_length)
    }

    /// Queues `job` for a hashing thread; a full queue is refused rather than piling up.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (done, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(job());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(PasswordError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                return Err(PasswordError::Hash("the hashing threads are gone".into()))
            }
        }
        answer
            .await
            .map_err(|_| PasswordError::Hash("a hashing job was dropped".into()))
    }
}

/// A hashing thread: lowest priority, then jobs until the queue closes.
fn work(queue: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        let job = {
            let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.recv()
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// SCHED_IDLE: a waking request thread preempts a hashing thread at once, and under full load
/// hashing still gets a small share of the CPU (Linux gives SCHED_IDLE the lowest weight, not
/// nothing). Where that is not possible the thread runs as it is.
fn lower_priority() {
    if let Err(e) = crate::sched::set_current_thread(crate::sched::Policy::Idle) {
        tracing::debug!(error = %e, "hashing threads keep the normal priority");
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &Secret) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2(params)
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()));
    give_back_memory();
    hash
}

/// argon2 takes `argon2_memory_kib` for each hash and frees it at the end, but the allocator
/// (mimalloc, the binary's global allocator) keeps freed memory in the thread's caches: a burst
/// of logins would leave the server holding (hashing threads x memory) for good. This hands
/// the calling thread's free memory back to the system: tens of microseconds, next to tens of
/// milliseconds of hashing. (With another global allocator, as in unit tests, it collects
/// mimalloc's unused heap of the thread: nothing.)
#[allow(unsafe_code)]
fn give_back_memory() {
    // SAFETY: mi_collect only releases memory that is free; it takes no pointer.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Verifies with the parameters stored in the hash itself, so raising the cost in the config
/// keeps old hashes working.
pub fn verify_hash(password: &Secret, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let verified = Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok();
    give_back_memory();
    verified
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
        config.max_pending_password_checks = 1;
        let hasher = Hasher::new(&config).unwrap();
        let secret = Secret::new("anything-at-all");
        // More checks at once than threads plus queue: some are refused, none is lost.
        let checks = (0..16).map(|_| hasher.verify(secret.clone(), None));
        let results = futures_util::future::join_all(checks).await;
        assert!(results
            .iter()
            .any(|r| matches!(r, Err(PasswordError::Busy))));
        assert!(results.iter().any(|r| matches!(r, Ok(false))));
        config.max_pending_password_checks = 4;
        let hasher = Hasher::new(&config).unwrap();
        assert!(!hasher.verify(secret.clone(), None).await.unwrap());
        let hash = hasher.hash(secret.clone()).await.unwrap();
        assert!(hasher.verify(secret, Some(hash)).await.unwrap());
    }
}
