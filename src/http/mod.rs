//! Everything that knows warp: the route table, the request pipeline (route, authenticate,
//! read the body, dispatch, reply), response headers and the access log.

pub mod api;
mod body;
mod reply;
mod request;
mod router;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures_util::Stream;
use warp::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use warp::path::FullPath;
use warp::Filter;

use crate::app::AppState;
use crate::error::ApiError;

use api::Endpoint as E;
pub use reply::Response;
use request::RequestCtx;
use router::{BodyKind, Match, Route, Space, Verb};
use BodyKind::None as NoBody;
use Space::Root;
use Verb::Get;

const fn route(
    verb: Verb,
    space: Space,
    pattern: &'static str,
    endpoint: E,
    body: BodyKind,
) -> Route {
    Route {
        verb,
        space,
        pattern,
        endpoint,
        body,
    }
}

/// Every endpoint. `Api` routes are served under `/api/` and `/api/v1/`.
#[rustfmt::skip]
static ROUTES: &[Route] = &[
    route(Get,    Root, "",        E::Root,    NoBody),
    route(Get,    Root, "healthz", E::Healthz, NoBody),
    route(Get,    Root, "readyz",  E::Readyz,  NoBody),
];

/// The whole application as one warp filter.
pub fn routes(
    app: AppState,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(warp::body::stream())
        .then(
            move |method: Method,
                  path: FullPath,
                  query: Option<String>,
                  headers: HeaderMap,
                  peer: Option<SocketAddr>,
                  body| {
                let app = app.clone();
                async move { handle(app, method, path, query, headers, peer, body).await }
            },
        )
        .recover(|_rejection: warp::Rejection| async move {
            // Every request matches the filter above; this only runs if warp itself failed
            // to hand over the body.
            let id = request::RequestId::from_headers(&HeaderMap::new());
            Ok::<_, Infallible>(reply::error(
                &ApiError::Internal("warp rejected a request".into()),
                &id,
            ))
        })
        .unify()
}

async fn handle<S, B>(
    app: AppState,
    method: Method,
    path: FullPath,
    query: Option<String>,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
    body: S,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let started = Instant::now();
    let ctx = RequestCtx::new(
        method,
        path.as_str().to_owned(),
        query,
        headers,
        peer,
        &app.config.server.trusted_proxies,
    );
    let (result, log_path) = respond(&app, &ctx, body).await;
    let mut response = result.unwrap_or_else(|err| {
        if let ApiError::Internal(cause) = &err {
            tracing::error!(request_id = ctx.id.as_str(), %cause, "request failed");
        }
        reply::error(&err, &ctx.id)
    });
    finish(&app, &ctx, &mut response);
    tracing::info!(
        target: "claribi::access",
        method = %ctx.method,
        path = log_path,
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        request_id = ctx.id.as_str(),
    );
    response
}

/// Routes, reads the body and dispatches. Also returns the path to log: a route's pattern
/// when the path carries a token, so share tokens never reach the log.
async fn respond<S, B>(
    app: &AppState,
    ctx: &RequestCtx,
    stream: S,
) -> (Result<Response, ApiError>, &'static str)
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let (route, params) = match router::find(ROUTES, &ctx.method, &ctx.path) {
        Match::Found(route, params) => (route, params),
        Match::WrongMethod(allow) => {
            let result = if ctx.method == Method::OPTIONS {
                Ok(preflight(app, ctx, &allow))
            } else {
                Err(ApiError::MethodNotAllowed { allow })
            };
            return (result, "-");
        }
        Match::NotFound => return (Err(ApiError::NotFound), "-"),
    };
    let log_path = route.pattern;
    let body = match read_body(app, ctx, route.body, stream).await {
        Ok(body) => body,
        Err(e) => return (Err(e), log_path),
    };
    let result = api::dispatch(app, ctx, route.endpoint, params, body).await;
    (result, log_path)
}

async fn read_body<S, B>(
    app: &AppState,
    ctx: &RequestCtx,
    kind: BodyKind,
    stream: S,
) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let limit = app.config.server.max_body_bytes;
    match kind {
        BodyKind::None => Ok(Bytes::new()),
        BodyKind::Json => {
            body::require_json_content_type(ctx)?;
            body::read_limited(ctx, stream, limit).await
        }
        BodyKind::OptionalJson => {
            let bytes = body::read_limited(ctx, stream, limit).await?;
            if !bytes.is_empty() {
                body::require_json_content_type(ctx)?;
            }
            Ok(bytes)
        }
    }
}

/// A CORS preflight: `204` with the allowed methods for a listed origin, `405` otherwise.
fn preflight(app: &AppState, ctx: &RequestCtx, allow: &str) -> Response {
    if allowed_origin(app, ctx).is_none() {
        return reply::error(
            &ApiError::MethodNotAllowed {
                allow: allow.to_string(),
            },
            &ctx.id,
        );
    }
    let mut response = reply::no_content();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(allow) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, x-api-key, x-request-id"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

fn allowed_origin<'a>(app: &AppState, ctx: &'a RequestCtx) -> Option<&'a str> {
    let origin = ctx.header("origin")?;
    app.config
        .server
        .cors_origins
        .iter()
        .any(|o| o == origin)
        .then_some(origin)
}

/// Headers every response carries: request id, no-store on the API, the security headers,
/// and CORS for listed origins.
fn finish(app: &AppState, ctx: &RequestCtx, response: &mut Response) {
    let api = ctx.path.starts_with("/api/");
    let origin = allowed_origin(app, ctx).and_then(|o| HeaderValue::from_str(o).ok());
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(ctx.id.as_str()) {
        headers.insert("x-request-id", id);
    }
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "x-request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset",
            ),
        );
    }
    if ctx.method == Method::HEAD {
        *response.body_mut() = Vec::new().into();
    }
    debug_assert!(response.status() != StatusCode::CONTINUE);
}
