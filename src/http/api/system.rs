//! `GET /healthz` (the process answers), `GET /readyz` (the database answers and this
//! server is following its change feed) and `GET /api/schema/` (the OpenAPI document).

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::http::reply::{self, Response};
use crate::ops::AppState;

#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Readiness {
    status: &'static str,
    /// Where the audit log's stream to the SIEM stands (only with `audit.syslog_url` set). It
    /// does not make the server unready: requests are served while the receiver is away.
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_stream: Option<AuditStream>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct AuditStream {
    /// `starting`, `sending` (this server sends), `standby` (another server does) or
    /// `unreachable` (this server cannot reach the receiver).
    state: &'static str,
    /// Entries not yet accepted by the receiver.
    lag_entries: i64,
}

/// GET /: the overview page for a browser, a redirect to `/login` for any other client.
pub fn home(call: &super::Call<'_>) -> Result<Response, ApiError> {
    // The answer depends on Accept: caches must keep the two apart.
    let mut response = if crate::http::wants_page(call.ctx) {
        crate::http::pages::page(crate::http::pages::Page::App, call.ctx)?
    } else {
        reply::redirect("/login")
    };
    response.headers_mut().insert(
        warp::http::header::VARY,
        warp::http::HeaderValue::from_static("Accept"),
    );
    Ok(response)
}

/// GET /healthz
pub fn healthz() -> Response {
    reply::ok(&Health { status: "ok" })
}

/// GET /api/schema/
pub fn schema() -> Response {
    reply::text(crate::http::openapi::DOCUMENT.clone(), "application/json")
}

/// GET /readyz
pub async fn readyz(app: &AppState, arrived: std::time::Instant) -> Result<Response, ApiError> {
    // Ready when this server can answer authenticated requests: within its lease, or able
    // to read the change feed itself (past the lease, `503` at once while the latest read of
    // the feed failed: no wait for the database).
    crate::ops::feed::ensure_current(app, arrived).await?;
    app.store.ping().await.map_err(|e| ApiError::Unavailable {
        retry_after: {
            tracing::warn!(error = %e, "readiness check failed");
            5
        },
    })?;
    let audit_stream = app.siem.lag().map(|lag| AuditStream {
        state: app.siem.state().as_str(),
        lag_entries: lag,
    });
    Ok(reply::ok(&Readiness {
        status: "ready",
        audit_stream,
    }))
}
