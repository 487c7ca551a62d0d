//! Everything that knows warp: the request pipeline (route, then authorize as the endpoint
//! declares, read the body, dispatch, reply), response headers and the access log. The
//! endpoints themselves are declared in `api/endpoints.rs`.

pub mod api;
mod body;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
#[cfg(test)]
mod in_process;
pub mod metrics;
pub(crate) mod openapi;
mod pages;
mod reply;
mod request;
mod router;
pub mod server;
mod shared_page;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::LazyLock;

use bytes::{Buf, Bytes};
use futures_util::Stream;
use warp::http::header::HeaderName;
use warp::http::{header, HeaderMap, HeaderValue, Method};
use warp::path::FullPath;
use warp::Filter;

use crate::error::ApiError;
use crate::ops::AppState;

use crate::auth::principal::{self, Guard, Principal};
use crate::auth::rate::RateInfo;
use api::ROUTES;
pub use reply::Response;
use request::RequestCtx;
use router::{BodyKind, Match, Router};

static ROUTER: LazyLock<Router<'static>> = LazyLock::new(|| Router::new(ROUTES));

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
        .and(warp::ext::optional::<server::Peer>())
        .and(warp::addr::remote())
        .and(warp::body::stream())
        .then(
            move |method: Method,
                  path: FullPath,
                  query: Option<String>,
                  headers: HeaderMap,
                  served: Option<server::Peer>,
                  remote: Option<SocketAddr>,
                  body| {
                let app = app.clone();
                // Our connection loop sets `Peer`; warp's test requests set its own.
                let peer = served.map(|p| p.0).or(remote);
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
    let ctx = RequestCtx::new(
        method,
        path.as_str().to_owned(),
        query,
        headers,
        peer,
        &app.config.server.trusted_proxies,
    );
    let mut rate = None;
    let mut served = Served::default();
    let result = respond(&app, &ctx, body, &mut rate, &mut served).await;
    let mut response = result.unwrap_or_else(|err| {
        if let ApiError::Internal(cause) = &err {
            tracing::error!(request_id = ctx.id.as_str(), %cause, "request failed");
        }
        reply::error(&err, &ctx.id)
    });
    finish(&app, &ctx, &mut response, rate);
    let (status, elapsed) = (response.status().as_u16(), ctx.arrived.elapsed());
    crate::telemetry::request(served.route, &ctx.method, status, elapsed);
    tracing::info!(
        target: "claribi::access",
        method = %ctx.method,
        route = served.route,
        status,
        latency_us = elapsed.as_micros() as u64,
        request_id = ctx.id.as_str(),
        user_id = served.user_id,
        key_prefix = served.key_prefix.as_deref(),
        "request"
    );
    response
}

/// What the access log and the metrics say of a request: the route's pattern (never the raw
/// path, which may carry a share token or an id) and, once authenticated, who called.
struct Served {
    route: &'static str,
    user_id: Option<crate::domain::Id>,
    key_prefix: Option<std::sync::Arc<str>>,
}

impl Default for Served {
    fn default() -> Self {
        Served {
            route: "unmatched",
            user_id: None,
            key_prefix: None,
        }
    }
}

/// Routes, reads the body and dispatches, noting in `served` what the log may say of it.
async fn respond<S, B>(
    app: &AppState,
    ctx: &RequestCtx,
    stream: S,
    rate: &mut Option<RateInfo>,
    served: &mut Served,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    // A query parameter that is not text, or a client address that cannot be read: answered
    // before any route, so that nothing downstream sees the request half-understood.
    ctx.check_readable()?;
    let (route, params) = match ROUTER.find(&ctx.method, &ctx.path) {
        Match::Found(route, params) => (route, params),
        Match::WrongMethod(allow) => {
            return if ctx.method == Method::OPTIONS {
                Ok(preflight(app, ctx, &allow))
            } else {
                Err(ApiError::MethodNotAllowed { allow })
            };
        }
        // A person's browser asking for a page that does not exist gets a page; the API and
        // everything else its JSON 404.
        Match::NotFound if wants_page(ctx) => return Ok(pages::not_found(ctx)),
        Match::NotFound => return Err(ApiError::NotFound),
    };
    served.route = route.pattern;
    let pending = Pending {
        app,
        ctx,
        params,
        stream,
        rate,
        served,
    };
    api::dispatch(route.endpoint, pending).await
}

/// A routed request whose caller and body are still to be checked. The endpoint's declaration
/// (`api/endpoints.rs`) decides what happens to it: a guarded endpoint calls `authorize`
/// (whose `Caller` its handler takes), then every endpoint `read`s its body into a `Call`.
pub(crate) struct Pending<'a, S> {
    app: &'a AppState,
    ctx: &'a RequestCtx,
    params: router::Params,
    stream: S,
    rate: &'a mut Option<RateInfo>,
    served: &'a mut Served,
}

impl<'a, S, B> Pending<'a, S>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    /// Authenticates the request from the live state, counts it against the caller's limit
    /// and checks `guard`: the one way to a `Caller`.
    async fn authorize(&mut self, guard: Guard) -> Result<crate::ops::Caller, ApiError> {
        authorize(self.app, self.ctx, self.served, self.rate, guard).await
    }

    /// Reads the body as the endpoint declares it.
    async fn read(self, kind: BodyKind) -> Result<api::Call<'a>, ApiError> {
        let body = read_body(self.app, self.ctx, kind, self.stream).await?;
        Ok(api::Call {
            app: self.app,
            ctx: self.ctx,
            params: self.params,
            body,
        })
    }
}

/// `Pending::authorize`, apart from the body's stream type: one copy for every endpoint.
async fn authorize(
    app: &AppState,
    ctx: &RequestCtx,
    served: &mut Served,
    rate: &mut Option<RateInfo>,
    guard: Guard,
) -> Result<crate::ops::Caller, ApiError> {
    // A server that could not follow the change feed within its lease may have missed a
    // revocation: it reads the feed first, or refuses when it cannot.
    crate::ops::feed::ensure_current(app, ctx.arrived).await?;
    let principal = authenticate(app, ctx, served.route).inspect_err(|e| {
        if e.status() == 401 {
            crate::telemetry::auth_failure(e.code());
        }
    })?;
    served.user_id = Some(principal.user_id);
    served.key_prefix = principal.key.as_ref().map(|k| k.prefix.clone());
    limit_rate(app, &principal, rate)?;
    let client = crate::ops::Client {
        ip: ctx.client_ip,
        user_agent: ctx.user_agent().map(str::to_string),
    };
    Ok(crate::ops::Caller::new(
        principal::authorize(principal, guard)?,
        client,
    ))
}

/// A `GET` outside the API from a client that accepts HTML first (a browser).
pub(crate) fn wants_page(ctx: &RequestCtx) -> bool {
    ctx.method == Method::GET
        && !ctx.path.starts_with("/api/")
        && !ctx.path.starts_with("/public/")
        && ctx.header("accept").is_some_and(|accept| {
            accept
                .split(',')
                .next()
                .is_some_and(|first| first.trim().starts_with("text/html"))
        })
}

/// A client that asks for JSON first (`Accept: application/json`), not a browser.
pub(crate) fn prefers_json(ctx: &RequestCtx) -> bool {
    ctx.header("accept").is_some_and(|accept| {
        accept
            .split(',')
            .next()
            .is_some_and(|first| first.trim().starts_with("application/json"))
    })
}

/// The credential of a request, in the forms the product documents.
enum Credential<'a> {
    Jwt(&'a str),
    ApiKey(&'a str),
}

fn credential(ctx: &RequestCtx) -> Result<Credential<'_>, ApiError> {
    if let Some(value) = ctx.header("authorization") {
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(ApiError::NotAuthenticated);
        }
        return if scheme.eq_ignore_ascii_case("bearer") {
            Ok(if rest.starts_with(crate::auth::api_key::PREFIX) {
                Credential::ApiKey(rest)
            } else {
                Credential::Jwt(rest)
            })
        } else if scheme.eq_ignore_ascii_case("api-key") {
            Ok(Credential::ApiKey(rest))
        } else {
            Err(ApiError::NotAuthenticated)
        };
    }
    match ctx.header("x-api-key").map(str::trim) {
        Some(key) if !key.is_empty() => Ok(Credential::ApiKey(key)),
        _ => Err(ApiError::NotAuthenticated),
    }
}

/// Counts the request against the caller's hourly limit; past it, `429`.
fn limit_rate(
    app: &AppState,
    principal: &Principal,
    rate: &mut Option<RateInfo>,
) -> Result<(), ApiError> {
    let now = crate::domain::now();
    let limit = app.config.rate_limits.general_per_hour;
    match principal.rates.hit_general(now, limit) {
        Ok(info) => {
            *rate = Some(info);
            Ok(())
        }
        Err(info) => {
            *rate = Some(info);
            crate::telemetry::throttled("rate_limit");
            Err(ApiError::Throttled {
                message: format!("more than {limit} requests this hour"),
                retry_after: (info.reset - now).max(1) as u64,
            })
        }
    }
}

/// Resolves the request's credential to a `Principal` from the live state alone (no SQL). A JWT
/// session's `last_seen_at` is written in the background, at most once a minute.
fn authenticate(
    app: &AppState,
    ctx: &RequestCtx,
    route: &'static str,
) -> Result<Principal, ApiError> {
    let now = crate::domain::now();
    match credential(ctx)? {
        Credential::Jwt(token) => {
            let (principal, session) = app.auth.authenticate_jwt(token, now)?;
            if session.due_for_touch(now) {
                if let Some(sid) = principal.session_id {
                    let store = app.store.clone();
                    tokio::spawn(async move {
                        let touched = store
                            .write(move |tx| crate::store::sessions::touch(tx, sid, now))
                            .await;
                        if let Err(e) = touched {
                            tracing::warn!(error = %e, "recording session activity failed");
                        }
                    });
                }
            }
            Ok(principal)
        }
        Credential::ApiKey(key) => {
            let client = crate::auth::refusals::Client {
                ip: ctx.client_ip,
                user_agent: ctx.user_agent(),
                method: ctx.method.as_str(),
                route,
            };
            app.auth.authenticate_key(key, now, &client)
        }
    }
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
    let deadline = app.config.server.body_read_timeout.0;
    // A body that trickles in slower than `server.body_read_timeout` is a 408, not a
    // connection held open for as long as the client likes.
    let read = |stream, limit| async move {
        tokio::time::timeout(deadline, body::read_limited(ctx, stream, limit))
            .await
            .map_err(|_| ApiError::RequestTimeout)?
    };
    match kind {
        BodyKind::NoBody => Ok(Bytes::new()),
        BodyKind::Json => {
            body::require_json_content_type(ctx)?;
            read(stream, limit).await
        }
        BodyKind::LargeJson => {
            body::require_json_content_type(ctx)?;
            read(stream, limit.max(router::LARGE_BODY_BYTES)).await
        }
        BodyKind::OptionalJson => {
            let bytes = read(stream, limit).await?;
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
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn finish(app: &AppState, ctx: &RequestCtx, response: &mut Response, rate: Option<RateInfo>) {
    let api = ctx.path.starts_with("/api/");
    let origin = allowed_origin(app, ctx).and_then(|o| HeaderValue::from_str(o).ok());
    let headers = response.headers_mut();
    headers.insert(request::X_REQUEST_ID, ctx.id.header_value().clone());
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
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "x-request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset",
            ),
        );
    }
    if let Some(rate) = rate {
        headers.insert(X_RATELIMIT_LIMIT, HeaderValue::from(rate.limit));
        headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(rate.remaining));
        headers.insert(X_RATELIMIT_RESET, HeaderValue::from(rate.reset));
    }
    if ctx.method == Method::HEAD {
        *response.body_mut() = Vec::new().into();
    }
}

#[cfg(test)]
mod tests {
    use super::router::{Route, Space, Verb};
    use super::*;

    /// A concrete path for a pattern: `{id}` as 7, `{token}` as `tok`.
    fn example(route: &Route) -> String {
        let path = route
            .pattern
            .replace("{id}", "7")
            .replace("{key_id}", "8")
            .replace("{token}", "tok");
        match route.space {
            Space::Api => format!("/api/v1/{path}/"),
            Space::Root => format!("/{path}"),
        }
    }

    #[test]
    fn every_route_of_the_table_is_found_for_its_method() {
        for route in ROUTES {
            let head = route.pattern.split('/').next().unwrap();
            assert!(
                !head.starts_with('{'),
                "{}: starts with a parameter",
                route.pattern
            );
            let method = match route.verb {
                Verb::Get => Method::GET,
                Verb::Post => Method::POST,
                Verb::Patch => Method::PATCH,
                Verb::Delete => Method::DELETE,
            };
            match ROUTER.find(&method, &example(route)) {
                Match::Found(found, _) => assert!(
                    std::ptr::eq(found, route),
                    "{} found {}",
                    route.pattern,
                    found.pattern
                ),
                _ => panic!("{} {:?} not found", route.pattern, route.verb),
            }
        }
    }
}
