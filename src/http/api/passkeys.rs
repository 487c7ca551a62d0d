//! Passkeys (contract 10.3): the caller's, in a session; and sign-in without a password.
//!
//! POST   /api/auth/mfa/webauthn/register/begin/   {passwordless?, password?}
//! POST   /api/auth/mfa/webauthn/register/finish/  {challenge_id, name, credential}
//! GET    /api/auth/mfa/webauthn/
//! DELETE /api/auth/mfa/webauthn/{id}/             {password}
//! POST   /api/auth/passkey/begin/
//! POST   /api/auth/passkey/finish/                {challenge_id, credential}

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::{logged_in, password_field};
use super::{Call, PageRequest};
use crate::domain::{Id, Secret, Timestamp};
use crate::error::ApiError;
use crate::http::reply::{self, Response};
use crate::ops::passkeys::{self, Begun, Registered};
use crate::ops::Caller;
use crate::store::users;

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterBeginRequest {
    /// Register for sign-in without a password (a discoverable passkey, verified on the
    /// authenticator with a PIN or biometrics).
    #[serde(default)]
    passwordless: bool,
    /// The caller's password: required when the session was opened more than 10 minutes
    /// ago (a passkey is a credential of its own; a borrowed session must not add one).
    #[serde(default)]
    password: Option<Secret>,
}

/// A ceremony begun: what `navigator.credentials.create` or `.get` takes as `publicKey`.
#[derive(Serialize, ToSchema)]
pub(super) struct BeginResponse {
    challenge_id: String,
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    public_key: Value,
}

impl From<Begun> for BeginResponse {
    fn from(b: Begun) -> Self {
        BeginResponse {
            challenge_id: b.challenge_id,
            public_key: b.public_key,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterFinishRequest {
    challenge_id: String,
    #[schema(max_length = 100)]
    name: String,
    /// The `PublicKeyCredential` of `navigator.credentials.create`, as JSON.
    #[schema(value_type = Object)]
    credential: Value,
}

#[derive(Serialize, ToSchema)]
pub(super) struct PasskeyDto {
    id: Id,
    name: String,
    passwordless: bool,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
}

impl From<Registered> for PasskeyDto {
    fn from(r: Registered) -> Self {
        PasskeyDto {
            id: r.id,
            name: r.name,
            passwordless: r.passwordless,
            created_at: Timestamp(r.created_at),
            last_used_at: r.last_used_at.map(Timestamp),
        }
    }
}

/// POST /api/auth/mfa/webauthn/register/begin/
pub async fn register_begin(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: RegisterBeginRequest = if call.body.is_empty() {
        RegisterBeginRequest::default()
    } else {
        call.json()?
    };
    let user_id = caller.principal().user_id;
    let actor = caller.actor();
    match request.password {
        Some(password) => {
            password_field("password", &password)?;
            let user = call.app.store.read(move |c| users::get(c, user_id)).await?;
            crate::ops::sessions::recheck_password(
                call.app, &actor, &user, "password", password, None,
            )
            .await?;
        }
        None if !passkeys::signed_in_recently(call.app, caller.principal().session_id).await? => {
            return Err(ApiError::field(
                "password",
                "is required: you signed in more than 10 minutes ago, so confirm it is you \
                 before adding a passkey",
            ));
        }
        None => {}
    }
    let begun = passkeys::register_begin(call.app, &actor, user_id, request.passwordless).await?;
    Ok(reply::ok(&BeginResponse::from(begun)))
}

/// POST /api/auth/mfa/webauthn/register/finish/
pub async fn register_finish(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: RegisterFinishRequest = call.json()?;
    let registered = passkeys::register_finish(
        call.app,
        &caller.actor(),
        caller.principal().user_id,
        request.challenge_id,
        request.name,
        request.credential,
    )
    .await?;
    Ok(reply::created(&PasskeyDto::from(registered)))
}

/// GET /api/auth/mfa/webauthn/
pub async fn list(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let page = PageRequest::from(call.ctx)?;
    let all = passkeys::list(call.app, caller.principal().user_id).await?;
    let count = all.len() as u64;
    let results: Vec<PasskeyDto> = all
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.size as usize)
        .map(PasskeyDto::from)
        .collect();
    Ok(reply::ok(&page.wrap(&call, count, results)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveRequest {
    password: Secret,
}

/// DELETE /api/auth/mfa/webauthn/{id}/
pub async fn remove(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let id = call.id()?;
    let request: RemoveRequest = call.json()?;
    password_field("password", &request.password)?;
    let user_id = caller.principal().user_id;
    let actor = caller.actor();
    let user = call
        .app
        .store
        .read(move |c| {
            // Another user's passkey does not exist as far as this caller can tell.
            crate::store::passkeys::get(c, user_id, id)?;
            users::get(c, user_id)
        })
        .await?;
    crate::ops::sessions::recheck_password(
        call.app,
        &actor,
        &user,
        "password",
        request.password,
        None,
    )
    .await?;
    passkeys::remove(call.app, &actor, user_id, id).await?;
    Ok(reply::no_content())
}

/// POST /api/auth/passkey/begin/
pub async fn sign_in_begin(call: Call<'_>) -> Result<Response, ApiError> {
    let begun = passkeys::sign_in_begin(call.app, &call.anonymous()).await?;
    Ok(reply::ok(&BeginResponse::from(begun)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignInRequest {
    challenge_id: String,
    /// The `PublicKeyCredential` of `navigator.credentials.get`, as JSON.
    #[schema(value_type = Object)]
    credential: Value,
}

/// POST /api/auth/passkey/finish/
pub async fn sign_in_finish(call: Call<'_>) -> Result<Response, ApiError> {
    let request: SignInRequest = call.json()?;
    let done = crate::ops::sessions::passkey_sign_in(
        call.app,
        &call.anonymous(),
        request.challenge_id,
        request.credential,
    )
    .await
    .inspect_err(|e| crate::telemetry::login(e.code()))?;
    crate::telemetry::login("success");
    Ok(logged_in(&call, done))
}
