//! TOTP enrolment for the caller (JWT sessions only).
//!
//! POST /api/auth/mfa/totp/setup/
//! POST /api/auth/mfa/totp/confirm/   {code}
//! POST /api/auth/mfa/totp/disable/   {password, code}

use serde::{Deserialize, Serialize};

use super::auth::{busy, check_totp, password_field};
use super::Call;
use crate::auth::totp;
use crate::domain::Secret;
use crate::error::ApiError;
use crate::http::reply::{self, Response};
use crate::store::audit::{self, Outcome};
use crate::store::users;

#[derive(Serialize)]
struct SetupResponse {
    secret: String,
    otpauth_url: String,
    qr_png_base64: String,
}

/// POST /api/auth/mfa/totp/setup/
pub async fn setup(call: Call<'_>) -> Result<Response, ApiError> {
    let user_id = call.authorized()?.principal().user_id;
    let app = call.app;
    let user = app.store.read(move |c| users::get(c, user_id)).await?;
    if user.mfa_enabled {
        return Err(ApiError::Conflict(
            "MFA is already enabled; disable it first to enrol again".into(),
        ));
    }
    let enrolment = totp::enrol(&user.email).map_err(|e| ApiError::Internal(e.to_string()))?;
    let sealed = app
        .auth
        .mfa_sealer
        .seal(user_id, &enrolment.secret_base32)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    app.store
        .write(move |tx| users::set_mfa_secret(tx, user_id, &sealed))
        .await?;
    Ok(reply::ok(&SetupResponse {
        secret: enrolment.secret_base32,
        otpauth_url: enrolment.otpauth_url,
        qr_png_base64: enrolment.qr_png_base64,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmRequest {
    code: String,
}

#[derive(Serialize)]
struct ConfirmResponse {
    recovery_codes: Vec<String>,
}

/// POST /api/auth/mfa/totp/confirm/
pub async fn confirm(call: Call<'_>) -> Result<Response, ApiError> {
    let request: ConfirmRequest = call.json()?;
    let user_id = call.authorized()?.principal().user_id;
    let app = call.app;
    let user = app.store.read(move |c| users::get(c, user_id)).await?;
    if user.mfa_enabled {
        return Err(ApiError::Conflict("MFA is already enabled".into()));
    }
    let pending = app
        .store
        .read(move |c| users::mfa_secret(c, user_id))
        .await?;
    if pending.is_none() {
        return Err(ApiError::field("code", "start with the setup step first"));
    }
    if !check_totp(app, &user, request.code).await? {
        return Err(ApiError::MfaCodeRejected);
    }
    let (codes, hashes) = totp::new_recovery_codes();
    let mut entry = call.audit("mfa.enabled", Outcome::Success);
    entry.target_type = Some("user");
    entry.target_id = Some(user_id);
    let updated = app
        .store
        .write(move |tx| {
            users::set_mfa_enabled(tx, user_id, true)?;
            users::replace_recovery_codes(tx, user_id, &hashes)?;
            audit::record(tx, &entry)?;
            users::get(tx, user_id)
        })
        .await?;
    app.auth.live.put_user(&updated);
    Ok(reply::ok(&ConfirmResponse {
        recovery_codes: codes,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisableRequest {
    password: Secret,
    code: String,
}

/// POST /api/auth/mfa/totp/disable/
pub async fn disable(call: Call<'_>) -> Result<Response, ApiError> {
    let request: DisableRequest = call.json()?;
    password_field("password", &request.password)?;
    let user_id = call.authorized()?.principal().user_id;
    let app = call.app;
    let user = app.store.read(move |c| users::get(c, user_id)).await?;
    if !user.mfa_enabled {
        return Err(ApiError::Conflict("MFA is not enabled".into()));
    }
    let password_ok = app
        .hasher
        .verify(request.password, Some(user.password_hash.clone()))
        .await
        .map_err(busy)?;
    if !password_ok {
        return Err(ApiError::field("password", "is wrong"));
    }
    if !check_totp(app, &user, request.code).await? {
        return Err(ApiError::MfaCodeRejected);
    }
    let mut entry = call.audit("mfa.disabled", Outcome::Success);
    entry.target_type = Some("user");
    entry.target_id = Some(user_id);
    let updated = app
        .store
        .write(move |tx| {
            users::set_mfa_enabled(tx, user_id, false)?;
            audit::record(tx, &entry)?;
            users::get(tx, user_id)
        })
        .await?;
    app.auth.live.put_user(&updated);
    Ok(reply::no_content())
}
