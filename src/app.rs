//! The composition root: open the store, make sure the first owner exists, build the state and
//! the routes, and serve on an already bound listener until the shutdown future completes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;

use crate::auth::password::Hasher;
use crate::auth::sealed::SecretSealer;
use crate::auth::Auth;
use crate::config::Config;
use crate::domain::{Email, Secret};
use crate::ops::{self, Actor};
use crate::store::audit::{self, Entry, Outcome};
use crate::store::{api_keys, users, Store, StoreError};

/// What every request can reach. Built once, shared behind an `Arc`.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub hasher: Hasher,
    pub auth: Auth,
    /// This process's name in the `servers` table (random, new at every start).
    pub server_id: String,
    /// Public-link views not yet written (flushed with key usage).
    pub views: crate::ops::views::ViewCounts,
    /// What the connection loop has seen (open connections, clients gone, timeouts).
    pub connections: Arc<crate::http::server::ConnectionStats>,
    /// Revocations, synced before they are answered, for `restore`.
    pub journal: crate::ops::journal::Journal,
    /// Reads of the change feed on behalf of requests past the lease.
    pub catch_up: crate::ops::feed::CatchUp,
    /// The other servers' heartbeats as this one has watched them (see `confirm`).
    pub peers: crate::ops::feed::Peers,
    /// How the audit log's stream to the SIEM stands (`audit.syslog_url`).
    pub siem: Arc<crate::ops::siem::Status>,
    /// TLS to the directories (system roots plus `sso.ca_file`), read once at start.
    pub directory_tls: Arc<rustls::ClientConfig>,
    /// The binary's one HTTP client (OpenID providers), trusting what the directory does.
    pub http: crate::ops::outbound::HttpClient,
    /// Each OpenID provider's signing keys, as last fetched.
    pub oidc_keys: crate::ops::sso::oidc::KeyCache,
}

pub type AppState = Arc<App>;

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

/// Seals TOTP secrets that a version before sealing stored as they were, in one transaction.
fn seal_stored_mfa_secrets(store: &Store, sealer: &SecretSealer) -> Result<(), StartError> {
    let sealed = store.write_blocking(|tx| {
        let mut sealed = 0;
        for (id, stored) in users::all_mfa_secrets(tx)? {
            if SecretSealer::is_sealed(&stored) {
                continue;
            }
            let value = sealer
                .seal(id, &stored)
                .map_err(|e| StoreError::Task(e.to_string()))?;
            users::replace_mfa_secret(tx, id, &value)?;
            sealed += 1;
        }
        Ok(sealed)
    })?;
    if sealed > 0 {
        tracing::info!(
            count = sealed,
            "sealed TOTP secrets stored by an earlier version"
        );
    }
    Ok(())
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
    let differing = store.write_blocking(move |db| {
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
        seal_stored_mfa_secrets(&store, &auth.mfa_sealer)?;
        let journal = crate::ops::journal::Journal::open(&config.server.data_dir)
            .map_err(|e| StartError::Setup(format!("opening the revocation journal: {e}")))?;
        let directory_tls = crate::ops::tls::client_config(&config.sso.ca_file, "sso.ca_file")
            .map_err(StartError::Setup)?;
        let mut id = [0u8; 8];
        rand::RngCore::fill_bytes(&mut OsRng, &mut id);
        Ok(App {
            config,
            store,
            hasher,
            auth,
            server_id: crate::domain::hex(&id),
            views: crate::ops::views::ViewCounts::default(),
            connections: Arc::default(),
            journal,
            catch_up: Default::default(),
            peers: Default::default(),
            siem: Default::default(),
            http: crate::ops::outbound::HttpClient::new(directory_tls.clone()),
            oidc_keys: Default::default(),
            directory_tls,
        })
    }

    /// Writes the API-key uses (per key and per scope) and public-link views counted in
    /// memory since the last flush, and audits first uses of keys and refused uses of known
    /// ones (canary keys, keys past their rotation's overlap, addresses outside an allowlist).
    pub async fn flush_usage(&self) {
        let usage = self.auth.live.drain_usage();
        let views = self.views.drain();
        let refused = self.auth.refusals.drain(crate::domain::now());
        if usage.counts.is_empty()
            && usage.scopes.is_empty()
            && usage.first_uses.is_empty()
            && views.is_empty()
            && refused.is_empty()
        {
            self.auth.live.compact_revoked();
            return;
        }
        let (counted, kept_refused) = (views.clone(), refused.clone());
        let usage = Arc::new(usage);
        let counted_usage = usage.clone();
        let written = self
            .store
            .write(move |tx| {
                let usage = &*counted_usage;
                crate::store::public_links::record_views(tx, &counted)?;
                api_keys::record_usage(tx, &usage.counts)?;
                api_keys::record_scope_usage(tx, &usage.scopes)?;
                for (key_id, user_id, organization_id, prefix) in &usage.first_uses {
                    audit::record(
                        tx,
                        &Entry {
                            organization_id: Some(*organization_id),
                            action: "api_key.first_used",
                            outcome: Outcome::Success,
                            user_id: Some(*user_id),
                            api_key_prefix: Some(prefix.to_string()),
                            target_type: Some("api_key"),
                            target_id: Some(*key_id),
                            ..Entry::default()
                        },
                    )?;
                }
                for r in &refused {
                    audit::record(tx, &refused_entry(r))?;
                }
                Ok(())
            })
            .await;
        match written {
            // Every use is written: revoked keys need no counters any more.
            Ok(()) => self.auth.live.compact_revoked(),
            // Put back for the next flush: a database that is locked or full for a while
            // loses no count.
            Err(e @ crate::store::StoreError::Unavailable { .. }) => {
                self.auth.live.restore_usage(&usage);
                self.views.restore(&views);
                self.auth.refusals.restore(kept_refused);
                tracing::warn!(error = %e, "recording API key usage and link views waits for the database");
            }
            // Anything else would fail again with the same batch: it is dropped, not retried.
            Err(e) => {
                tracing::error!(error = %e, "recording API key usage and link views failed; this batch is dropped")
            }
        }
    }
}

/// The audit entry of refused uses of a known key: who presented it is unknown, so the entry
/// names the key (its owner, except for a canary, whose owner only planted it).
fn refused_entry(r: &crate::auth::refusals::Refused) -> Entry {
    use crate::auth::refusals::Refusal;
    let mut details = serde_json::json!({
        "prefix": &*r.key.prefix,
        "count": r.count,
        "first_at": crate::domain::Timestamp(r.first_at),
        "last_at": crate::domain::Timestamp(r.last_at),
    });
    if let Some(method) = &r.method {
        details["method"] = method.as_str().into();
    }
    if let Some(route) = r.route {
        details["route"] = route.into();
    }
    Entry {
        organization_id: Some(r.key.organization_id),
        action: r.refusal.action(),
        outcome: Outcome::Denied,
        user_id: (r.refusal != Refusal::CanaryUsed).then_some(r.key.user_id),
        api_key_prefix: Some(r.key.prefix.to_string()),
        ip: r.ip.map(|ip| ip.to_string()),
        user_agent: r.user_agent.clone(),
        target_type: Some("api_key"),
        target_id: Some(r.key.id),
        details: details.to_string(),
    }
}

/// Every two seconds: write the API-key usage, link views and refused key uses counted in
/// memory.
async fn flush_usage_periodically(app: AppState) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(2));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        app.flush_usage().await;
    }
}

/// Every `backup.interval`: a consistent copy of the database in `backup.dir`, named by its
/// time (`claribi-<UTC time>.db`, mode 0600), keeping the newest `backup.keep`. The first is
/// due an interval after the newest one there, so that restarts do not put backups off.
async fn back_up_periodically(app: AppState, interval: std::time::Duration) {
    let dir = app.config.backup.dir(&app.config.server);
    let since_last = newest_backup_age(&dir).unwrap_or(std::time::Duration::MAX);
    let first = tokio::time::Instant::now() + interval.saturating_sub(since_last);
    let mut ticker = tokio::time::interval_at(first, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let copying = app.clone();
        match tokio::task::spawn_blocking(move || back_up_once(&copying)).await {
            Ok(Ok(path)) => tracing::info!(path = %path.display(), "scheduled backup written"),
            Ok(Err(e)) => tracing::error!(error = %e, "scheduled backup failed"),
            Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
        }
    }
}

const BACKUP_PREFIX: &str = "claribi-";
const BACKUP_SUFFIX: &str = ".db";
const PARTIAL_SUFFIX: &str = ".partial";

/// `claribi-20261201T120000.123Z.db`: only files of exactly this form are scheduled backups
/// (counted, pruned); anything else in the directory is left alone.
fn is_scheduled_backup(name: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix(BACKUP_PREFIX)
        .and_then(|n| n.strip_suffix(BACKUP_SUFFIX))
    else {
        return false;
    };
    let bytes = stamp.as_bytes();
    bytes.len() == 20
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 => *b == b'T',
            15 => *b == b'.',
            19 => *b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

fn scheduled_backups(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|n| is_scheduled_backup(n))
        .collect();
    names.sort_unstable();
    names
}

fn newest_backup_age(dir: &std::path::Path) -> Option<std::time::Duration> {
    let newest = scheduled_backups(dir).pop()?;
    let modified = std::fs::metadata(dir.join(newest)).ok()?.modified().ok()?;
    modified.elapsed().ok()
}

fn back_up_once(app: &App) -> Result<std::path::PathBuf, String> {
    let dir = app.config.backup.dir(&app.config.server);
    crate::data_dir::create(&dir)?;
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
        ))
        .map_err(|e| e.to_string())?;
    let path = dir.join(format!("{BACKUP_PREFIX}{stamp}{BACKUP_SUFFIX}"));
    // Written under another name and renamed when complete: a copy cut short by a crash or a
    // stop is never taken for a backup, nor counted against `backup.keep`.
    let partial = dir.join(format!(
        "{BACKUP_PREFIX}{stamp}{BACKUP_SUFFIX}{PARTIAL_SUFFIX}"
    ));
    crate::data_dir::create_private_new(&partial)?;
    let written = app
        .store
        .backup_to(&partial)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            std::fs::File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(|e| e.to_string())
        })
        .and_then(|()| std::fs::rename(&partial, &path).map_err(|e| e.to_string()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    crate::data_dir::sync_dir(&path);
    prune_backups(&dir, app.config.backup.keep as usize)?;
    Ok(path)
}

/// Removes all but the newest `keep` scheduled backups (their names sort by time), and copies
/// left unfinished (an hour ago or more) by an earlier process.
fn prune_backups(dir: &std::path::Path, keep: usize) -> Result<(), String> {
    let names = scheduled_backups(dir);
    let excess = names.len().saturating_sub(keep);
    for name in &names[..excess] {
        std::fs::remove_file(dir.join(name)).map_err(|e| format!("removing {name}: {e}"))?;
    }
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let Some(name) = entry.ok().and_then(|e| e.file_name().into_string().ok()) else {
            continue;
        };
        let unfinished = name
            .strip_suffix(PARTIAL_SUFFIX)
            .is_some_and(is_scheduled_backup);
        // An hour old: not the copy another server on this directory is writing now.
        let stale = || {
            std::fs::metadata(dir.join(&name))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(3600))
        };
        if unfinished && stale() {
            let _ = std::fs::remove_file(dir.join(&name));
        }
    }
    Ok(())
}

/// Every ten minutes: forget sessions past their end.
async fn prune_live_periodically(app: AppState) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(600));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        app.auth.live.prune(crate::domain::now());
    }
}

/// Opens everything, binds `server.bind`, and serves until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), StartError> {
    let shutdown = shutdown_signal();
    // Held until the process ends: `restore` refuses while any server holds it.
    let _running =
        crate::data_dir::lock_shared(&config.server.data_dir).map_err(StartError::Setup)?;
    raise_open_files_limit(config.server.max_connections);
    let app = tokio::task::spawn_blocking(move || App::open(config))
        .await
        .map_err(|e| StartError::Setup(e.to_string()))??;
    let app = Arc::new(app);
    bootstrap(&app).await?;
    let addr = app.config.server.bind;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|cause| StartError::Bind { addr, cause })?;
    let address = listener
        .local_addr()
        .map_or_else(|_| addr.to_string(), |a| a.to_string());
    // List once, then follow the feed from the position the listing was read at.
    let starting = app.clone();
    let started = tokio::task::spawn_blocking(move || ops::feed::start(&starting, &address))
        .await
        .map_err(|e| StartError::Setup(e.to_string()))??;
    let metrics = match app.config.metrics.bind {
        Some(addr) => {
            crate::telemetry::install().map_err(StartError::Setup)?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|cause| StartError::Bind { addr, cause })?;
            match listener.local_addr() {
                Ok(at) => tracing::info!("metrics on http://{at}/metrics"),
                Err(e) => tracing::warn!(error = %e, "metrics on an unknown address"),
            }
            Some(tokio::spawn(crate::http::metrics::serve(
                app.clone(),
                listener,
            )))
        }
        None => None,
    };
    let siem = match ops::siem::Settings::from_config(&app.config, &app.server_id)
        .map_err(StartError::Setup)?
    {
        Some(settings) => Some(
            ops::siem::start(app.store.clone(), settings, app.siem.clone())
                .map_err(|e| StartError::Setup(format!("starting the audit stream: {e}")))?,
        ),
        None => None,
    };
    let directory_sync = tokio::spawn(ops::sso::sync::run_periodically(app.clone()));
    let follower = tokio::spawn(ops::feed::follow(app.clone(), started));
    let flusher = tokio::spawn(flush_usage_periodically(app.clone()));
    let pruner = tokio::spawn(prune_live_periodically(app.clone()));
    let shared_rates = app
        .config
        .database
        .is_postgres()
        .then(|| tokio::spawn(ops::rates::share_periodically(app.clone())));
    let backups = match app.config.backup.interval {
        Some(_) if app.config.database.is_postgres() => {
            // The database is PostgreSQL's to back up (pg_dump, base backups, replicas).
            tracing::warn!("backup.interval is set but the database is PostgreSQL: no scheduled copies are written; back it up with PostgreSQL's tools");
            None
        }
        Some(every) => Some(tokio::spawn(back_up_periodically(app.clone(), every.0))),
        None => None,
    };
    serve(app.clone(), listener, shutdown).await;
    follower.abort();
    directory_sync.abort();
    flusher.abort();
    pruner.abort();
    for task in [metrics, backups, shared_rates].into_iter().flatten() {
        task.abort();
    }
    app.flush_usage().await;
    if let Some(siem) = siem {
        // Records what the receiver took and lets the stream go; what is left waits in the
        // database for the next start, or another server.
        let _ = tokio::task::spawn_blocking(move || siem.stop()).await;
    }
    let stopping = app.clone();
    let _ = tokio::task::spawn_blocking(move || ops::feed::stop(&stopping)).await;
    Ok(())
}

/// Raises the soft limit of open files to the hard one (systemd gives services 1024 soft): every
/// connection costs a descriptor, and a server out of them cannot even accept `/healthz`.
fn raise_open_files_limit(max_connections: u32) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < u64::from(max_connections) + 256 => tracing::warn!(
            "the open-files limit is {limit}: fewer than server.max_connections \
             ({max_connections}) + 256; raise LimitNOFILE (the packaged unit sets 65536)"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
}

/// Serves on `listener` until `shutdown` completes, then lets in-flight requests finish
/// (up to `server.shutdown_grace`).
pub async fn serve(
    app: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let grace = app.config.server.shutdown_grace.0;
    match listener.local_addr() {
        Ok(addr) => tracing::info!("listening on http://{addr}"),
        Err(e) => tracing::warn!(error = %e, "listening on an unknown address"),
    }
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = crate::http::server::run(
        crate::http::routes(app.clone()),
        listener,
        crate::http::server::Limits::api(&app.config.server),
        app.connections.clone(),
        async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing requests in flight");
            let _ = stopping_tx.send(());
        },
    );
    let mut server = std::pin::pin!(server);
    tokio::select! {
        () = &mut server => {}
        _ = async {
            let _ = stopping_rx.await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("requests still in flight after {grace:?}; stopping anyway"),
    }
    tracing::info!("stopped");
}

/// Completes on the first SIGTERM or SIGINT.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    // Registered now, not when first awaited: a signal that arrives while the server is still
    // starting is kept, and the server stops cleanly as soon as it serves.
    let listen = |kind: SignalKind, name: &'static str| {
        let registered = signal(kind);
        async move {
            match registered {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for {name}");
                    std::future::pending::<()>().await;
                }
            }
        }
    };
    let (term, interrupt) = (
        listen(SignalKind::terminate(), "SIGTERM"),
        listen(SignalKind::interrupt(), "SIGINT"),
    );
    async move {
        tokio::select! {
            () = term => {}
            () = interrupt => {}
        }
    }
}

/// On an empty database: the first organization and its owner, from `bootstrap.*` or with a
/// random password written to `<data_dir>/initial-admin-password` (mode 0600).
pub async fn bootstrap(app: &AppState) -> Result<(), StartError> {
    let existing = app.store.read(users::count).await?;
    if existing > 0 {
        return Ok(());
    }
    let settings = &app.config.bootstrap;
    let (email, password, generated) = if settings.admin_email.is_empty() {
        let password = Alphanumeric.sample_string(&mut OsRng, 24);
        ("admin@localhost".to_string(), Secret::new(password), true)
    } else {
        (
            settings.admin_email.clone(),
            Secret::new(settings.admin_password.clone()),
            false,
        )
    };
    let email = Email::parse(&email)
        .map_err(|why| StartError::Setup(format!("bootstrap.admin_email {why}")))?;
    if !generated {
        app.hasher
            .check_strength(&password, email.as_str())
            .map_err(|weak| StartError::Setup(format!("bootstrap.admin_password {}", weak.0)))?;
    }
    let hash = app
        .hasher
        .hash(password.clone())
        .await
        .map_err(|e| StartError::Setup(e.to_string()))?;
    let organization = settings.organization.trim().to_string();
    ops::accounts::create_organization(
        app,
        &Actor::System("bootstrap"),
        organization.clone(),
        email.clone(),
        "Administrator".into(),
        hash,
        generated,
    )
    .await
    .map_err(|e| StartError::Setup(format!("creating the first organization: {e}")))?;
    if generated {
        let path = app.config.server.data_dir.join("initial-admin-password");
        crate::data_dir::write_private_file(&path, format!("{}\n", password.expose()).as_bytes())
            .map_err(StartError::Setup)?;
        tracing::warn!(
            "created organization {organization:?} with owner {email}; its password is in {} \
             (readable by this user only): log in and change it",
            path.display()
        );
    } else {
        tracing::info!("created organization {organization:?} with owner {email}");
    }
    Ok(())
}

#[cfg(test)]
mod backup_names {
    use super::is_scheduled_backup;

    #[test]
    fn only_stamped_names_are_scheduled_backups() {
        assert!(is_scheduled_backup("claribi-20261201T120000.123Z.db"));
        for other in [
            "claribi-manual.db",
            "claribi-20261201T120000.123Z.db.partial",
            "claribi-20261201T120000Z.db",
            "claribi.db",
            "claribi-2026120xT120000.123Z.db",
        ] {
            assert!(!is_scheduled_backup(other), "{other}");
        }
    }
}
