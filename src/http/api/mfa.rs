//! The caller's second factors and TOTP enrolment (JWT sessions only).
//!
//! GET  /api/auth/mfa/
//! POST /api/auth/mfa/totp/setup/
//! POST /api/auth/mfa/totp/confirm/   {code}
//! POST /api/auth/mfa/totp/disable/   {password, code}
//! (passkeys: `passkeys.rs`)
//! POST /api/auth/mfa/recovery-codes/ {password, code}

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::password_field;
use super::Call;
use crate::domain::Secret;
use crate::error::ApiError;
use crate::http::reply::{self, Response};
use crate::ops::mfa;
use crate::ops::{Actor, Caller};
use crate::store::users;

#[derive(Serialize, ToSchema)]
pub(super) struct StatusResponse {
    /// The second factors the account has on: `totp`, `webauthn`; empty without MFA.
    methods: Vec<String>,
    /// Recovery codes not used yet; 0 without MFA.
    recovery_codes_left: i64,
}

/// GET /api/auth/mfa/
pub async fn status(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let status = mfa::status(call.app, caller.principal().user_id).await?;
    Ok(reply::ok(&StatusResponse {
        methods: status.methods.into_iter().map(String::from).collect(),
        recovery_codes_left: status.recovery_codes_left,
    }))
}

#[derive(Serialize, ToSchema)]
pub(super) struct SetupResponse {
    secret: String,
    otpauth_url: String,
    qr_png_base64: String,
}

/// POST /api/auth/mfa/totp/setup/
pub async fn setup(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let user_id = caller.principal().user_id;
    let enrolment = mfa::setup(call.app, &caller.actor(), user_id).await?;
    Ok(reply::ok(&SetupResponse {
        secret: enrolment.secret,
        otpauth_url: enrolment.otpauth_url,
        qr_png_base64: enrolment.qr_png_base64,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfirmRequest {
    code: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ConfirmResponse {
    recovery_codes: Vec<String>,
}

/// POST /api/auth/mfa/totp/confirm/
pub async fn confirm(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: ConfirmRequest = call.json()?;
    let user_id = caller.principal().user_id;
    let recovery_codes = mfa::confirm(call.app, &caller.actor(), user_id, request.code).await?;
    Ok(reply::ok(&ConfirmResponse { recovery_codes }))
}

/// `{password, code}`: what turning TOTP off and new recovery codes ask for again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RecheckRequest {
    password: Secret,
    /// A current TOTP code (not a recovery code); required while TOTP is on.
    #[serde(default)]
    code: Option<String>,
}

/// What a re-check needs on: TOTP itself (turning it off), or any second factor.
#[derive(PartialEq)]
enum Needs {
    Totp,
    Mfa,
}

/// The caller as an actor, once the factor is found on and the body's password (and, with
/// TOTP on, its code) pass again; each failure counts as a failed login of the account.
async fn rechecked(call: &Call<'_>, caller: &Caller, needs: Needs) -> Result<Actor, ApiError> {
    let request: RecheckRequest = call.json()?;
    password_field("password", &request.password)?;
    let user_id = caller.principal().user_id;
    let actor = caller.actor();
    let (user, totp) = call
        .app
        .store
        .read(move |c| Ok((users::get(c, user_id)?, users::totp_enabled(c, user_id)?)))
        .await?;
    if needs == Needs::Totp && !totp {
        return Err(ApiError::Conflict("TOTP is not enabled".into()));
    }
    if !user.mfa_enabled {
        return Err(ApiError::Conflict("MFA is not enabled".into()));
    }
    // Without an authenticator app, the passkey is the second proof: it was used to sign in
    // a moment ago.
    if !totp
        && !crate::ops::passkeys::signed_in_recently(call.app, caller.principal().session_id)
            .await?
    {
        return Err(ApiError::denied(
            "sign in again with your passkey, then make new recovery codes within 10 minutes",
        ));
    }
    if totp && request.code.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::field(
            "code",
            "is required: a current code from the authenticator app",
        ));
    }
    crate::ops::sessions::recheck_password(
        call.app,
        &actor,
        &user,
        "password",
        request.password,
        request.code.filter(|_| totp),
    )
    .await?;
    Ok(actor)
}

/// POST /api/auth/mfa/totp/disable/
pub async fn disable(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let actor = rechecked(&call, &caller, Needs::Totp).await?;
    mfa::disable(call.app, &actor, caller.principal().user_id).await?;
    Ok(reply::no_content())
}

/// POST /api/auth/mfa/recovery-codes/
pub async fn regenerate_recovery_codes(
    call: Call<'_>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let actor = rechecked(&call, &caller, Needs::Mfa).await?;
    let recovery_codes =
        mfa::regenerate_recovery_codes(call.app, &actor, caller.principal().user_id).await?;
    Ok(reply::ok(&ConfirmResponse { recovery_codes }))
}
