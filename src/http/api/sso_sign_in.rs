//! Signing in through an organization's OpenID provider (contract 10.2): the providers an
//! address may use, the redirect to the provider, its callback, and the one-time code the
//! login page trades for a session. No credentials on any of them.
//!
//! GET  /api/auth/sso/providers/?email=E
//! GET  /api/auth/sso/{id}/start/
//! GET  /api/auth/sso/callback/?code&state
//! POST /api/auth/sso/exchange/    {code}

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warp::http::HeaderValue;

use super::Call;
use crate::domain::{Email, Id};
use crate::error::ApiError;
use crate::http::reply::{self, Response};
use crate::ops::sso::{self, oidc};

#[derive(Serialize, ToSchema)]
pub(super) struct ServingDto {
    id: Id,
    name: String,
    /// `oidc`: sign in at the provider (`start_url`); `ldap`: the password form, checked by
    /// the directory.
    kind: &'static str,
    /// Where the browser goes to sign in (`null` for a directory).
    start_url: Option<String>,
}

/// GET /api/auth/sso/providers/?email=E
pub async fn providers(call: Call<'_>) -> Result<Response, ApiError> {
    let Some(given) = call.ctx.query_param("email") else {
        return Err(ApiError::field("email", "is required"));
    };
    if given.len() > crate::domain::MAX_EMAIL_BYTES {
        return Err(ApiError::field("email", "is too long"));
    }
    let email =
        Email::parse(&given).map_err(|_| ApiError::field("email", "must be an email address"))?;
    let origin = call.origin();
    let serving: Vec<ServingDto> = sso::all_serving(call.app, &email)
        .await?
        .into_iter()
        .map(|p| ServingDto {
            start_url: p
                .oidc()
                .is_some()
                .then(|| format!("{origin}/api/auth/sso/{}/start/", p.id)),
            kind: p.settings.kind(),
            id: p.id,
            name: p.name,
        })
        .collect();
    Ok(reply::ok(&serving))
}

/// The browser's binding cookie, by the name it has at this origin.
fn binding_cookie<'a>(call: &'a Call<'_>) -> Option<&'a str> {
    call.ctx
        .cookie(oidc::cookie_name(call.origin().starts_with("https://")))
}

/// GET /api/auth/sso/{id}/start/
pub async fn start(call: Call<'_>) -> Result<Response, ApiError> {
    let origin = call.origin();
    let https = origin.starts_with("https://");
    let redirect_uri = format!("{origin}/api/auth/sso/callback/");
    let started = oidc::start(
        call.app,
        call.id()?,
        binding_cookie(&call),
        call.ctx.client_ip,
        redirect_uri,
    )
    .await?;
    let mut response = reply::redirect_to(&started.location);
    // Binds the sign-in to this browser: sent back on the provider's redirect (a top-level
    // GET, which SameSite=Lax allows) and with the page's exchange, never readable by a
    // script, gone 10 minutes after the last start. Under https:// it is a `__Host-` cookie
    // (Secure, Path=/), which no other host can set.
    let cookie = format!(
        "{}={}; {}; Max-Age=600; HttpOnly; SameSite=Lax",
        oidc::cookie_name(https),
        started.cookie,
        if https {
            "Path=/; Secure"
        } else {
            "Path=/api/"
        },
    );
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response
            .headers_mut()
            .insert(warp::http::header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// GET /api/auth/sso/callback/?code&state
pub async fn callback(call: Call<'_>) -> Result<Response, ApiError> {
    let given = oidc::Callback {
        state: call.ctx.query_param("state"),
        code: call.ctx.query_param("code"),
        iss: call.ctx.query_param("iss"),
        error: call.ctx.query_param("error"),
    };
    let ended = oidc::callback(call.app, &call.anonymous(), given, binding_cookie(&call)).await?;
    let location = match ended {
        oidc::Ended::SignedIn { code } => format!("/login?sso={code}"),
        oidc::Ended::Failed { not_allowed: true } => "/login?sso_error=sso_not_allowed".into(),
        oidc::Ended::Failed { not_allowed: false } => "/login?sso_error=sso_failed".into(),
    };
    let mut response = reply::redirect_to(&location);
    // The code must not leave in a Referer from the login page.
    response.headers_mut().insert(
        warp::http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ExchangeRequest {
    /// The one-time code of `/login?sso=`.
    #[schema(max_length = 256)]
    code: String,
}

/// POST /api/auth/sso/exchange/
pub async fn exchange(call: Call<'_>) -> Result<Response, ApiError> {
    let request: ExchangeRequest = call.json()?;
    let done = oidc::exchange(
        call.app,
        &call.anonymous(),
        &request.code,
        binding_cookie(&call),
    )
    .await
    .inspect_err(|e| crate::telemetry::login(e.code()))?;
    crate::telemetry::login("success");
    Ok(super::auth::logged_in(&call, done))
}
