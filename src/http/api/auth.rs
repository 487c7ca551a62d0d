//! Login, token refresh, logout, `me` and password change.
//!
//! POST /api/auth/login/            {email, password, totp_code?, recovery_code?, webauthn?}
//! POST /api/auth/token/refresh/    {refresh}
//! POST /api/auth/logout/           {refresh}
//! GET  /api/auth/me/
//! POST /api/auth/password/         {current_password, new_password}

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Call;
use crate::auth::live::LiveUser;
use crate::auth::password::MAX_PASSWORD_BYTES;
use crate::auth::token;
use crate::domain::{now, Id, Secret};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::App;
use crate::ops::Caller;
use crate::ops::{accounts, sessions};
use crate::store::users;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    #[schema(max_length = 254)]
    email: String,
    password: Secret,
    #[serde(default)]
    totp_code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
    /// A passkey answering the ceremony of the `mfa_required` answer.
    #[serde(default)]
    webauthn: Option<crate::ops::passkeys::Answer>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = CurrentUser)]
pub struct UserDto {
    id: Id,
    email: String,
    name: String,
    organization: String,
    organization_id: Id,
    role: &'static str,
    mfa_enabled: bool,
    /// The password is temporary: until it is changed, this session opens only
    /// `POST /api/auth/password/` and `GET /api/auth/me/`.
    password_change_required: bool,
    /// The organization requires MFA this user does not have: until it is on, this session
    /// opens only MFA enrolment (`/api/auth/mfa/...`), logout and `GET /api/auth/me/`.
    mfa_enrollment_required: bool,
    /// The caller is a service account's key: `email` is empty and `name` is the account's.
    service_account: bool,
}

impl UserDto {
    pub fn new(app: &App, user: &LiveUser, mfa_enrollment_required: bool) -> Self {
        UserDto {
            id: user.id,
            // A service account's `email` is a handle, not an address: not shown.
            email: if user.service_account {
                String::new()
            } else {
                user.email.to_string()
            },
            name: user.name.to_string(),
            organization: app
                .auth
                .live
                .organization_name(user.organization_id)
                .to_string(),
            organization_id: user.organization_id,
            role: user.role.as_str(),
            mfa_enabled: user.mfa_enabled,
            password_change_required: user.password_temporary,
            mfa_enrollment_required,
            service_account: user.service_account,
        }
    }

    fn from_row(app: &App, user: &users::User, mfa_enrollment_required: bool) -> Self {
        UserDto {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            organization: app
                .auth
                .live
                .organization_name(user.organization_id)
                .to_string(),
            organization_id: user.organization_id,
            role: user.role.as_str(),
            mfa_enabled: user.mfa_enabled,
            password_change_required: user.password_temporary,
            mfa_enrollment_required,
            service_account: false,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct LoginResponse {
    access: String,
    refresh: String,
    user: UserDto,
    /// The password is one someone else chose (generated for the first owner, or set by an
    /// administrator) and the user has not replaced it: the pages ask for their own.
    password_change_suggested: bool,
    /// The password is temporary: these tokens open only `POST /api/auth/password/` and
    /// `GET /api/auth/me/` until it is changed.
    password_change_required: bool,
    /// The organization requires MFA the user does not have: these tokens open only MFA
    /// enrolment, logout and `GET /api/auth/me/` until it is on.
    mfa_enrollment_required: bool,
}

#[derive(Serialize, ToSchema)]
pub(super) struct RefreshResponse {
    access: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh: Option<String>,
}

/// A password from a body: present, at most 256 bytes (longer ones are never hashed).
pub fn password_field(field: &str, password: &Secret) -> Result<(), ApiError> {
    let mut errors = FieldErrors::new();
    password_problem(&mut errors, field, password);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::fields(errors))
    }
}

/// `password_field`, adding its problem to `errors` (to be answered with the others at once).
pub fn password_problem(errors: &mut FieldErrors, field: &str, password: &Secret) {
    let problem = if password.expose().is_empty() {
        "is required".to_string()
    } else if password.expose().len() > MAX_PASSWORD_BYTES {
        format!("must be at most {MAX_PASSWORD_BYTES} bytes")
    } else {
        return;
    };
    errors.insert(field.to_string(), vec![problem]);
}

/// POST /api/auth/login/
pub async fn login(call: Call<'_>) -> Result<Response, ApiError> {
    let request: LoginRequest = call.json()?;
    password_field("password", &request.password)?;
    let done = sessions::login(
        call.app,
        &call.anonymous(),
        sessions::Credentials {
            email: request.email,
            password: request.password,
            totp_code: request.totp_code,
            recovery_code: request.recovery_code,
            webauthn: request.webauthn,
        },
    )
    .await
    .inspect_err(|e| crate::telemetry::login(e.code()))?;
    crate::telemetry::login("success");
    Ok(logged_in(&call, done))
}

/// The answer to a login, whichever way the user signed in.
pub(super) fn logged_in(call: &Call<'_>, done: sessions::LoggedIn) -> Response {
    reply::ok(&LoginResponse {
        access: done.issued.access,
        refresh: done.issued.refresh.unwrap_or_default(),
        user: UserDto::from_row(call.app, &done.user, done.mfa_enrollment_required),
        password_change_suggested: done.user.password_set_by_other,
        password_change_required: done.user.password_temporary,
        mfa_enrollment_required: done.mfa_enrollment_required,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RefreshRequest {
    refresh: Secret,
}

/// POST /api/auth/token/refresh/
pub async fn refresh(call: Call<'_>) -> Result<Response, ApiError> {
    let request: RefreshRequest = call.json()?;
    let app = call.app;
    // A public route, but it answers from the live state: the same lease as authentication.
    crate::ops::feed::ensure_current(app, call.ctx.arrived).await?;
    let claims = app.auth.verify_refresh(request.refresh.expose())?;
    let user_id = claims.user_id().ok_or(ApiError::TokenNotValid)?;
    let now = now();
    let session = app.auth.session_of(&claims, now)?;
    let user = app
        .auth
        .live
        .user(user_id)
        .filter(|u| u.is_active && u.organization_id == claims.org)
        .ok_or(ApiError::TokenNotValid)?;

    let next_jti = if app.auth.rotate_refresh_tokens {
        let next = token::new_jti();
        let actor = call.anonymous();
        let rotated =
            sessions::rotate_refresh(app, &actor, claims.sid, claims.jti.clone(), next.clone())
                .await?;
        if !rotated {
            sessions::reuse_detected(app, &actor, user.id, user.organization_id, claims.sid)
                .await?;
            return Err(ApiError::TokenReused);
        }
        Some(next)
    } else {
        None
    };
    let issued = app.auth.issue(
        user.id,
        user.organization_id,
        (claims.sid, session.secret.as_ref()),
        session.expires_at,
        next_jti.as_deref(),
        now,
    )?;
    Ok(reply::ok(&RefreshResponse {
        access: issued.access,
        refresh: issued.refresh,
    }))
}

/// POST /api/auth/logout/
pub async fn logout(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: RefreshRequest = call.json()?;
    let claims = call.app.auth.verify_refresh(request.refresh.expose())?;
    if claims.user_id() != Some(caller.user_id()) {
        return Err(ApiError::TokenNotValid);
    }
    // Only the session the token was issued for, never another that holds its id (ending one
    // that has ended already is not an error).
    let live = call.app.auth.live.session(claims.sid);
    let secret = claims
        .session_secret()
        .map_err(|_| ApiError::TokenNotValid)?;
    if live.is_some_and(|s| !token::same_session(s.secret.as_ref(), secret.as_ref())) {
        return Err(ApiError::TokenNotValid);
    }
    sessions::end(call.app, &caller.actor(), claims.sid, "logout").await?;
    Ok(reply::no_content())
}

/// GET /api/auth/me/
pub fn me(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let principal = caller.principal();
    let user = call
        .app
        .auth
        .live
        .user(principal.user_id)
        .ok_or(ApiError::TokenNotValid)?;
    Ok(reply::ok(&UserDto::new(
        call.app,
        &user,
        principal.mfa_enrollment_required,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordChange {
    current_password: Secret,
    new_password: Secret,
}

/// POST /api/auth/password/
pub async fn change_password(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: PasswordChange = call.json()?;
    let app = call.app;
    let user_id = caller.user_id();
    let user = app.store.read(move |c| users::get(c, user_id)).await?;
    if let Some(directory) = sessions::directory_of(app, &user).await? {
        // Their login binds in the directory: a local password would never be asked for.
        return Err(ApiError::Conflict(format!(
            "this account's password is kept by the directory \"{}\": change it there",
            directory.name
        )));
    }
    let mut errors = FieldErrors::new();
    password_problem(&mut errors, "current_password", &request.current_password);
    password_problem(&mut errors, "new_password", &request.new_password);
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let actor = caller.actor();
    sessions::recheck_password(
        app,
        &actor,
        &user,
        "current_password",
        request.current_password,
        None,
    )
    .await?;
    let hash =
        accounts::checked_new_password(app, &user, "new_password", request.new_password).await?;
    accounts::set_password(app, &actor, user_id, hash, caller.principal().session_id).await?;
    Ok(reply::no_content())
}
