//! `GET /metrics` on its own address (`metrics.bind`), never on the API's: the exposition text
//! of `telemetry`. Every other request there is a JSON `404` (or `405` for `/metrics`).

use std::convert::Infallible;

use warp::http::{HeaderMap, Method};
use warp::path::FullPath;
use warp::Filter;

use super::reply::{self, Response};
use super::request::RequestId;
use crate::app::AppState;
use crate::error::ApiError;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn routes(
    app: AppState,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .map(move |method: Method, path: FullPath, headers: HeaderMap| {
            let id = RequestId::from_headers(&headers);
            match (path.as_str().trim_end_matches('/'), method) {
                ("/metrics", Method::GET) => {
                    let (sessions, keys) = app.auth.live.active(crate::domain::now());
                    let gauges = crate::telemetry::Gauges {
                        sessions,
                        keys,
                        open_connections: app
                            .connections
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
        })
}

/// Serves the metrics on `listener` until the process ends, through the API's connection loop
/// (its header and idle timeouts) with a connection cap of its own.
pub async fn serve(app: AppState, listener: tokio::net::TcpListener) {
    let limits = super::server::Limits::metrics(&app.config.server);
    let stats = std::sync::Arc::new(super::server::ConnectionStats::default());
    super::server::run(routes(app), listener, limits, stats, std::future::pending()).await;
}
