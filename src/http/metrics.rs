//! `GET /metrics` on its own address (`metrics.bind`), never on the API's: the exposition text
//! of `telemetry`. Every other request there is a JSON `404` (or `405` for `/metrics`).

use std::convert::Infallible;
use std::sync::Arc;

use warp::http::{HeaderMap, Method};
use warp::path::FullPath;
use warp::Filter;

use super::reply::{self, Response};
use super::request::RequestId;
use super::server::ConnectionStats;
use crate::error::ApiError;
use crate::ops::AppState;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn routes(
    app: AppState,
    connections: Arc<ConnectionStats>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .then(move |method: Method, path: FullPath, headers: HeaderMap| {
            let (app, connections) = (app.clone(), connections.clone());
            async move {
                let id = RequestId::from_headers(&headers);
                match (path.as_str().trim_end_matches('/'), method) {
                    ("/metrics", Method::GET) => {
                        // Counting the live sessions and keys walks them all: on a blocking
                        // thread, not on the workers that answer requests.
                        let live = app.clone();
                        let counted = tokio::task::spawn_blocking(move || {
                            live.auth.live.active(crate::domain::now())
                        })
                        .await;
                        // A scrape that fails says so, rather than gauges of zero.
                        let Ok(active) = counted else {
                            return reply::error(
                                &ApiError::Internal("counting live sessions and keys".into()),
                                &id,
                            );
                        };
                        let gauges = crate::telemetry::Gauges {
                            sessions: active.sessions,
                            keys: active.keys,
                            expiring: active.expiring,
                            open_connections: connections
                                .open
                                .load(std::sync::atomic::Ordering::Relaxed),
                            audit_stream_lag: app.siem.lag(),
                        };
                        reply::text(crate::telemetry::render(gauges), CONTENT_TYPE)
                    }
                    ("/metrics", _) => reply::error(
                        &ApiError::MethodNotAllowed {
                            allow: "GET".into(),
                        },
                        &id,
                    ),
                    _ => reply::error(&ApiError::NotFound, &id),
                }
            }
        })
}

/// Serves the metrics on `listener` until the process ends, through the API's connection loop
/// (its header and idle timeouts) with a connection cap of its own.
/// `api_connections`: the API's connection loop, whose open connections the metrics report.
pub async fn serve(
    app: AppState,
    listener: tokio::net::TcpListener,
    api_connections: Arc<ConnectionStats>,
) {
    let limits = super::server::Limits::metrics(&app.config.server);
    let stats = Arc::new(ConnectionStats::default());
    super::server::run(
        routes(app, api_connections),
        listener,
        limits,
        stats,
        std::future::pending(),
    )
    .await;
}
