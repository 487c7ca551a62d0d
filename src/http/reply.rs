//! Turning results into responses: JSON bodies, `204`s, and `ApiError` in the contract's shape
//! with the headers its status calls for. Application errors are replies, never rejections.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use warp::http::{header, HeaderValue, StatusCode};

use crate::error::{ApiError, FieldErrors};

use super::request::RequestId;

pub type Response = warp::reply::Response;

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    // A page of rows is a few KiB: start there rather than growing from serde_json's 128 bytes.
    let mut body = Vec::with_capacity(4096);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => {
            let mut response = Response::new(body.into());
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "response serialization failed");
            let mut response = Response::new(Vec::new().into());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

pub fn ok<T: Serialize>(value: &T) -> Response {
    json(StatusCode::OK, value)
}

pub fn created<T: Serialize>(value: &T) -> Response {
    json(StatusCode::CREATED, value)
}

/// A non-JSON body (CSV export, HTML page).
pub fn text(body: String, content_type: &'static str) -> Response {
    let mut response = Response::new(body.into());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A body produced while it is sent (the audit export), in chunks from `chunks`.
///
/// warp 0.4 has no public streaming body, so the response carries the channel as an extension
/// and our connection loop (`server.rs`) sends from it. Outside that loop (`warp::test`) the
/// body reads as empty: the in-process tests read the channel themselves.
#[derive(Clone)]
pub struct Streamed(pub Arc<Mutex<Option<Chunks>>>);

pub type Chunks = tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>;

pub fn streamed(content_type: &'static str, chunks: Chunks) -> Response {
    let mut response = Response::new(Vec::new().into());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .extensions_mut()
        .insert(Streamed(Arc::new(Mutex::new(Some(chunks)))));
    response
}

pub fn no_content() -> Response {
    let mut response = Response::new(Vec::new().into());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

pub fn redirect(location: &'static str) -> Response {
    let mut response = Response::new(Vec::new().into());
    *response.status_mut() = StatusCode::FOUND;
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    response
}

/// A `302` to an address made at run time (a value that is not a valid header answers 500).
pub fn redirect_to(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = Response::new(Vec::new().into());
            *response.status_mut() = StatusCode::FOUND;
            let headers = response.headers_mut();
            headers.insert(header::LOCATION, value);
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => {
            tracing::error!("a redirect's address is not a header value");
            let mut response = Response::new(Vec::new().into());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

/// The contract's error answer (also the OpenAPI document's `Error`).
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ErrorBody<'a> {
    error: &'static str,
    message: String,
    status: u16,
    /// `invalid`: the problems of each field.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, Vec<String>>>)]
    errors: Option<&'a FieldErrors>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_required: Option<bool>,
    /// `mfa_required`: the second factors the account has (`totp`, `webauthn`,
    /// `recovery_code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    methods: Option<&'a [&'static str]>,
    /// `mfa_required` with a passkey: `{challenge_id, publicKey}` to answer with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    webauthn: Option<&'a serde_json::Value>,
    /// `sso_required`: the provider to sign in with.
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<crate::domain::Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

/// The contract's error shape, with `WWW-Authenticate`, `Retry-After` or `Allow` as due.
pub fn error(err: &ApiError, request_id: &RequestId) -> Response {
    let status = err.status();
    let body = ErrorBody {
        error: err.code(),
        message: err.public_message(),
        status,
        errors: match err {
            ApiError::Invalid { errors, .. } | ApiError::PolicyViolation { errors, .. } => {
                Some(errors)
            }
            _ => None,
        },
        mfa_required: matches!(err, ApiError::MfaRequired(_)).then_some(true),
        methods: match err {
            ApiError::MfaRequired(challenge) => Some(challenge.methods.as_slice()),
            _ => None,
        },
        webauthn: match err {
            ApiError::MfaRequired(challenge) => challenge.webauthn.as_ref(),
            _ => None,
        },
        provider: match err {
            ApiError::SsoRequired { provider, .. } => Some(*provider),
            _ => None,
        },
        request_id: (status == 500).then(|| request_id.as_str()),
    };
    let mut response = json(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    );
    let headers = response.headers_mut();
    if status == 401 {
        let challenge = match err {
            ApiError::NotAuthenticated
            | ApiError::InvalidCredentials
            | ApiError::MfaRequired(_) => "Bearer realm=\"claribi\"".to_string(),
            _ => format!(
                "Bearer realm=\"claribi\", error=\"invalid_token\", error_description=\"{}\"",
                err.code()
            ),
        };
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
    }
    if let ApiError::InsufficientScope(scope) = err {
        let challenge = match scope {
            Some(scope) => {
                format!("Bearer realm=\"claribi\", error=\"insufficient_scope\", scope=\"{scope}\"")
            }
            None => "Bearer realm=\"claribi\", error=\"insufficient_scope\"".to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
    }
    if let Some(seconds) = err.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    if let ApiError::MethodNotAllowed { allow } = err {
        if let Ok(value) = HeaderValue::from_str(allow) {
            headers.insert(header::ALLOW, value);
        }
    }
    response
}
