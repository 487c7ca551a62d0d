//! The composition root: open the store, make sure the first owner exists, build the state and
//! the routes, and serve on an already bound listener until the shutdown future completes.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;

use crate::auth::password::Hasher;
use crate::auth::sealed::SecretSealer;
use crate::auth::Auth;
use crate::config::Config;
use crate::domain::{Email, Role, Secret};
use crate::store::audit::{self, Entry, Outcome};
use crate::store::{api_keys, meta, organizations, sessions, users, Store, StoreError};

/// What every request can reach. Built once, shared behind an `Arc`.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub hasher: Hasher,
    pub auth: Auth,
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

impl App {
    /// Opens the database (migrating it) and prepares the password hasher. Blocking: call it
    /// before the server starts or from a blocking thread.
    pub fn open(config: Config) -> Result<App, StartError> {
        create_private_dir(&config.server.data_dir)?;
        let store = Store::open(
            &config.database.path(&config.server),
            config.database.pool_size,
            config.database.busy_timeout.0,
        )?;
        let hasher = Hasher::new(&config.auth).map_err(|e| StartError::Setup(e.to_string()))?;
        let auth = Auth::new(&config.auth, &config.server.data_dir)
            .map_err(|e| StartError::Setup(e.to_string()))?;
        seal_stored_mfa_secrets(&store, &auth.mfa_sealer)?;
        Ok(App {
            config,
            store,
            hasher,
            auth,
        })
    }

    /// Replaces the live state with what the database holds. Blocking.
    pub fn reload_live(&self) -> Result<i64, StoreError> {
        let (epoch, all_users, names, live_sessions, keys) = self.store.read_blocking(|conn| {
            Ok((
                meta::live_epoch(conn)?,
                users::all(conn)?,
                organizations::names(conn)?,
                sessions::live(conn)?,
                api_keys::all(conn)?,
            ))
        })?;
        self.auth
            .live
            .load(&all_users, names, &live_sessions, &keys);
        Ok(epoch)
    }

    /// Writes the API-key uses counted in memory since the last flush, and audits first uses.
    pub async fn flush_key_usage(&self) {
        let usage = self.auth.live.drain_usage();
        if usage.counts.is_empty() && usage.first_uses.is_empty() {
            return;
        }
        let written = self
            .store
            .write(move |tx| {
                api_keys::record_usage(tx, &usage.counts)?;
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
                Ok(())
            })
            .await;
        if let Err(e) = written {
            tracing::error!(error = %e, "recording API key usage failed");
        }
    }
}

/// Every two seconds: write the API-key usage counted in memory.
async fn flush_usage_periodically(app: AppState) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(2));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        app.flush_key_usage().await;
    }
}

/// Once a second: reload the live state if a CLI command changed users or sessions (it bumps
/// the epoch); every ten minutes, forget sessions past their end.
async fn watch_live_state(app: AppState, mut epoch: i64) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        ticker.tick().await;
        ticks += 1;
        match app.store.read(meta::live_epoch).await {
            Ok(now) if now != epoch => {
                app.flush_key_usage().await;
                let reloading = app.clone();
                match tokio::task::spawn_blocking(move || reloading.reload_live()).await {
                    Ok(Ok(loaded)) => {
                        tracing::info!("users or sessions changed from the command line; reloaded");
                        epoch = loaded;
                    }
                    Ok(Err(e)) => tracing::error!(error = %e, "reloading the live state failed"),
                    Err(e) => tracing::error!(error = %e, "reloading the live state failed"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading the live-state epoch failed"),
        }
        if ticks % 600 == 0 {
            app.auth.live.prune(crate::domain::now());
        }
    }
}

/// Opens everything, binds `server.bind`, and serves until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), StartError> {
    let (app, epoch) = tokio::task::spawn_blocking(move || -> Result<(App, i64), StartError> {
        let app = App::open(config)?;
        bootstrap(&app)?;
        let epoch = app.reload_live()?;
        Ok((app, epoch))
    })
    .await
    .map_err(|e| StartError::Setup(e.to_string()))??;
    let addr = app.config.server.bind;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|cause| StartError::Bind { addr, cause })?;
    let app = Arc::new(app);
    let watcher = tokio::spawn(watch_live_state(app.clone(), epoch));
    let flusher = tokio::spawn(flush_usage_periodically(app.clone()));
    serve(app.clone(), listener, shutdown_signal()).await;
    watcher.abort();
    flusher.abort();
    app.flush_key_usage().await;
    Ok(())
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
    let server = warp::serve(crate::http::routes(app.clone()))
        .incoming(listener)
        .graceful(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing requests in flight");
            let _ = stopping_tx.send(());
        })
        .run();
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
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// On an empty database: the first organization and its owner, from `bootstrap.*` or with a
/// random password written to `<data_dir>/initial-admin-password` (mode 0600).
pub fn bootstrap(app: &App) -> Result<(), StartError> {
    let existing = app.store.read_blocking(users::count)?;
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
        .hash_blocking(&password)
        .map_err(|e| StartError::Setup(e.to_string()))?;
    let organization = settings.organization.trim().to_string();
    app.store.write_blocking(|tx| {
        let org = organizations::create(tx, &organization)?;
        users::create(
            tx,
            &users::NewUser {
                organization_id: org,
                email: &email,
                name: "Administrator",
                role: Role::Owner,
                password_hash: &hash,
            },
        )?;
        Ok(())
    })?;
    if generated {
        let path = app.config.server.data_dir.join("initial-admin-password");
        write_private_file(&path, format!("{}\n", password.expose()).as_bytes())?;
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

fn create_private_dir(dir: &Path) -> Result<(), StartError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StartError::Setup(format!("creating {}: {e}", dir.display())))
}

/// A key file of the data directory: its bytes, or `len` fresh random bytes written with mode
/// 0600 at first start. A file shorter than `len` is an error, never silently replaced.
pub fn load_or_create_key(path: &Path, len: usize) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= len => Ok(bytes),
        Ok(_) => Err(format!("{} is shorter than {len} bytes", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = vec![0u8; len];
            rand::RngCore::fill_bytes(&mut OsRng, &mut bytes);
            write_private_file(path, &bytes).map_err(|e| e.to_string())?;
            Ok(bytes)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `contents` to a new file readable by its owner only, replacing any older one.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), StartError> {
    let fail = |e: std::io::Error| StartError::Setup(format!("writing {}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
    }
    file.write_all(contents).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    Ok(())
}
