//! The operations' core: what every operation and every transport reaches, built once at the
//! start and shared behind an `Arc` (the store, the live state and the password hasher, the
//! revocation journal, the configuration, this server's view of the others).

use std::net::SocketAddr;
use std::sync::Arc;

use rand::rngs::OsRng;

use crate::auth::password::Hasher;
use crate::auth::Auth;
use crate::config::Config;
use crate::store::{Store, StoreError, StoreResult};

/// What every request can reach. Built once, shared behind an `Arc`.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub hasher: Hasher,
    pub auth: Auth,
    /// This process's name in the `servers` table (random, new at every start).
    pub server_id: String,
    /// Set by a clean stop as it removes this server from the `servers` table, and held by
    /// every heartbeat across its write: a heartbeat still running when the server stops
    /// cannot register it again after it left.
    pub stopped: std::sync::Mutex<bool>,
    /// Public-link views not yet written (flushed with key usage).
    pub views: super::views::ViewCounts,
    /// Revocations, synced before they are answered, for `restore`.
    pub journal: super::journal::Journal,
    /// Reads of the change feed on behalf of requests past the lease.
    pub catch_up: super::feed::CatchUp,
    /// The other servers' heartbeats as this one has watched them (see `confirm`).
    pub peers: super::feed::Peers,
    /// How the audit log's stream to the SIEM stands (`audit.syslog_url`).
    pub siem: Arc<super::siem::Status>,
    /// TLS to the directories (system roots plus `sso.ca_file`), read once at start.
    pub directory_tls: Arc<rustls::ClientConfig>,
    /// The binary's one HTTP client (OpenID providers), trusting what the directory does.
    pub http: super::outbound::HttpClient,
    /// Each OpenID provider's signing keys, as last fetched.
    pub oidc_keys: super::sso::oidc::KeyCache,
}

pub type AppState = Arc<App>;

/// Why the server (or a command that opens the core) could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Setup(String),
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
}

/// The key files every server on one database must share: a token signed by one server is
/// checked by another, a TOTP secret sealed by one is opened by another.
const SHARED_KEY_FILES: [&str; 2] = ["jwt-secret", "mfa-key"];

/// On a database shared by several servers: the first server records a fingerprint of each
/// key file (56 bits of a SHA-256, which tells keys apart and reveals nothing of them); a
/// server whose files differ refuses to start, naming them, instead of refusing every token
/// the others sign.
fn same_keys_as_the_other_servers(
    store: &Store,
    data_dir: &std::path::Path,
) -> Result<(), StartError> {
    use sha2::{Digest, Sha256};
    let mut mine = Vec::new();
    for name in SHARED_KEY_FILES {
        let bytes = std::fs::read(data_dir.join(name)).map_err(|e| {
            StartError::Setup(format!("reading {}: {e}", data_dir.join(name).display()))
        })?;
        let digest = Sha256::new()
            .chain_update(b"claribi key fingerprint\0")
            .chain_update(name.as_bytes())
            .chain_update(&bytes)
            .finalize();
        let mut first = [0u8; 8];
        first[1..].copy_from_slice(&digest[..7]);
        mine.push((format!("key_fingerprint:{name}"), i64::from_be_bytes(first)));
    }
    let differing = store.write_blocking(move |db| -> StoreResult<_> {
        let mut differing = Vec::new();
        for (key, fingerprint) in &mine {
            let recorded = crate::store::meta::get(db, key)?;
            match recorded {
                None => crate::store::meta::set(db, key, *fingerprint)?,
                Some(theirs) if theirs != *fingerprint => differing.push(key.clone()),
                Some(_) => {}
            }
        }
        Ok(differing)
    })?;
    if differing.is_empty() {
        return Ok(());
    }
    let files: Vec<String> = differing
        .iter()
        .map(|k| {
            data_dir
                .join(k.trim_start_matches("key_fingerprint:"))
                .display()
                .to_string()
        })
        .collect();
    Err(StartError::Setup(format!(
        "{} differ from the key files of the other servers on this database: copy jwt-secret and mfa-key from the data directory of a server that runs on it",
        files.join(" and ")
    )))
}

impl App {
    /// Opens the database (migrating it) and prepares the password hasher. Blocking: call it
    /// before the server starts or from a blocking thread.
    pub fn open(config: Config) -> Result<App, StartError> {
        crate::data_dir::create(&config.server.data_dir).map_err(StartError::Setup)?;
        let store = if config.database.is_postgres() {
            Store::open_postgres(
                &config.database.url,
                config.database.pool_size,
                config.database.busy_timeout.0,
            )?
        } else {
            let database = config.database.path(&config.server);
            crate::data_dir::prepare_database(&database).map_err(StartError::Setup)?;
            Store::open(
                &database,
                config.database.pool_size,
                config.database.busy_timeout.0,
            )?
        };
        let hasher = Hasher::new(&config.auth).map_err(|e| StartError::Setup(e.to_string()))?;
        let auth = Auth::new(&config.auth, &config.server.data_dir)
            .map_err(|e| StartError::Setup(e.to_string()))?;
        if config.database.is_postgres() {
            same_keys_as_the_other_servers(&store, &config.server.data_dir)?;
        }
        super::mfa::seal_stored_secrets(&store, &auth.mfa_sealer)?;
        let journal = super::journal::Journal::open(&config.server.data_dir)
            .map_err(|e| StartError::Setup(format!("opening the revocation journal: {e}")))?;
        let directory_tls = super::tls::client_config(&config.sso.ca_file, "sso.ca_file")
            .map_err(StartError::Setup)?;
        let mut id = [0u8; 8];
        rand::RngCore::fill_bytes(&mut OsRng, &mut id);
        Ok(App {
            config,
            store,
            hasher,
            auth,
            server_id: crate::domain::hex(&id),
            stopped: std::sync::Mutex::new(false),
            views: super::views::ViewCounts::default(),
            journal,
            catch_up: Default::default(),
            peers: Default::default(),
            siem: Default::default(),
            http: super::outbound::HttpClient::new(directory_tls.clone()),
            oidc_keys: Default::default(),
            directory_tls,
        })
    }
}
