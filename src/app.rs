//! The composition root: open the operations' core, make sure the first owner exists, start the
//! background work, and serve the routes on a bound listener until SIGTERM or SIGINT.

use std::future::Future;
use std::sync::Arc;

use crate::config::Config;
use crate::http::server::ConnectionStats;
use crate::ops::{self, App, AppState, StartError};

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
    // What the API's connection loop has seen (open connections, clients gone, timeouts), for
    // the metrics.
    let connections = Arc::new(ConnectionStats::default());
    ops::accounts::bootstrap(&app).await?;
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
                connections.clone(),
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
    let notices = ops::notices::start(&app)
        .map_err(|e| StartError::Setup(format!("starting the key expiry notices: {e}")))?;
    let directory_sync = tokio::spawn(ops::sso::sync::run_periodically(app.clone()));
    let follower = tokio::spawn(ops::feed::follow(app.clone(), started));
    let flusher = tokio::spawn(ops::usage::flush_periodically(app.clone()));
    let pruner = tokio::spawn(ops::usage::forget_ended_periodically(app.clone()));
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
        Some(every) => Some(tokio::spawn(ops::backups::back_up_periodically(
            app.clone(),
            every.0,
        ))),
        None => None,
    };
    serve(app.clone(), listener, shutdown, connections).await;
    follower.abort();
    directory_sync.abort();
    flusher.abort();
    pruner.abort();
    for task in [metrics, backups, shared_rates, notices]
        .into_iter()
        .flatten()
    {
        task.abort();
    }
    ops::usage::flush(&app).await;
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
    connections: Arc<ConnectionStats>,
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
        connections,
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
