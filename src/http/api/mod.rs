//! The handlers, one file per area, and `dispatch`, which hands each endpoint what it needs.

mod system;

use bytes::Bytes;

use crate::app::AppState;
use crate::error::ApiError;

use super::reply::{self, Response};
use super::request::RequestCtx;
use super::router::Params;

/// Every endpoint of the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Root,
    Healthz,
    Readyz,
}

pub async fn dispatch(
    app: &AppState,
    _ctx: &RequestCtx,
    endpoint: Endpoint,
    _params: Params,
    _body: Bytes,
) -> Result<Response, ApiError> {
    match endpoint {
        Endpoint::Root => Ok(reply::redirect("/login")),
        Endpoint::Healthz => Ok(system::healthz()),
        Endpoint::Readyz => system::readyz(app).await,
    }
}
