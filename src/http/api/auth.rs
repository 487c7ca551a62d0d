//! Login, token refresh, logout, `me` and password change.
//!
//! POST /api/auth/login/            {email, password, totp_code?, recovery_code?}
//! POST /api/auth/token/refresh/    {refresh}
//! POST /api/auth/logout/           {refresh}
//! GET  /api/auth/me/
//! POST /api/auth/password/         {current_password, new_password}

use serde::{Deserialize, Serialize};

use super::{details, Call};
use crate::app::App;
use crate::auth::live::LiveUser;
use crate::auth::password::{PasswordError, MAX_PASSWORD_BYTES};
use crate::auth::{token, totp};
use crate::domain::{now, Email, Id, Secret};
use crate::error::ApiError;
use crate::http::reply::{self, Response};
use crate::store::audit::{self, Outcome};
use crate::store::{organizations, sessions, users};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: Secret,
    #[serde(default)]
    totp_code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

#[derive(Serialize)]
pub struct UserDto {
    id: Id,
    email: String,
    name: String,
    organization: String,
    organization_id: Id,
    role: &'static str,
    mfa_enabled: bool,
}

impl UserDto {
    pub fn new(app: &App, user: &LiveUser) -> Self {
        UserDto {
            id: user.id,
            email: user.email.to_string(),
            name: user.name.to_string(),
            organization: app
                .auth
                .live
                .organization_name(user.organization_id)
                .to_string(),
            organization_id: user.organization_id,
            role: user.role.as_str(),
            mfa_enabled: user.mfa_enabled,
        }
    }
}

#[derive(Serialize)]
struct LoginResponse {
    access: String,
    refresh: String,
    user: UserDto,
}

#[derive(Serialize)]
struct RefreshResponse {
    access: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh: Option<String>,
}

/// A password from a body: present, at most 256 bytes (longer ones are never hashed).
pub fn password_field(field: &str, password: &Secret) -> Result<(), ApiError> {
    if password.expose().is_empty() {
        return Err(ApiError::field(field, "is required"));
    }
    if password.expose().len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::field(
            field,
            format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

pub fn busy(error: PasswordError) -> ApiError {
    match error {
        PasswordError::Busy => ApiError::Unavailable { retry_after: 1 },
        other => ApiError::Internal(other.to_string()),
    }
}

/// POST /api/auth/login/
pub async fn login(call: Call<'_>) -> Result<Response, ApiError> {
    let request: LoginRequest = call.json()?;
    password_field("password", &request.password)?;
    let app = call.app;
    let attempted = request.email.trim().to_lowercase();
    // A malformed address cannot belong to anyone: it fails like a wrong password.
    let email = Email::parse(&request.email).ok();
    let started = now();

    let attempt = match app
        .auth
        .throttle
        .begin(&attempted, call.ctx.client_ip, started)
    {
        Ok(attempt) => attempt,
        Err(wait) => {
            let mut entry = call.audit("login.throttled", Outcome::Denied);
            entry.details = details(&[("email", &attempted)]);
            record(app, entry).await;
            return Err(ApiError::Throttled {
                message: "too many failed logins; try again later".into(),
                retry_after: wait.0,
            });
        }
    };

    let user = match email {
        Some(email) => {
            app.store
                .read(move |c| users::find_by_email(c, &email))
                .await?
        }
        None => None,
    };
    let password_ok = app
        .hasher
        .verify(
            request.password,
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await
        .map_err(busy)?;

    let failure = |reason: &str, user: Option<&users::User>| {
        let mut entry = call.audit("login.failed", Outcome::Failure);
        entry.user_id = user.map(|u| u.id);
        entry.organization_id = user.map(|u| u.organization_id);
        entry.details = details(&[("email", &attempted), ("reason", reason)]);
        entry
    };
    let user = match user {
        Some(user) if password_ok && user.is_active => user,
        other => {
            let reason = match &other {
                None => "unknown_email",
                Some(u) if !u.is_active && password_ok => "inactive",
                Some(_) => "wrong_password",
            };
            attempt.failed(now());
            record(app, failure(reason, other.as_ref())).await;
            return Err(ApiError::InvalidCredentials);
        }
    };

    if user.mfa_enabled {
        let verdict = match (&request.totp_code, &request.recovery_code) {
            (None, None) => {
                // The password was right: not a failure, but no session without the code.
                drop(attempt);
                return Err(ApiError::MfaRequired);
            }
            (Some(code), _) => check_totp(app, &user, code.clone()).await?,
            (None, Some(code)) => {
                let hash = totp::hash_recovery_code(code);
                let id = user.id;
                let used = app
                    .store
                    .write(move |tx| users::use_recovery_code(tx, id, &hash))
                    .await?;
                if used {
                    let mut entry = failure("", Some(&user));
                    entry.action = "mfa.recovery_code_used";
                    entry.outcome = Outcome::Success;
                    entry.details = "{}".into();
                    record(app, entry).await;
                }
                used
            }
        };
        if !verdict {
            attempt.failed(now());
            record(app, failure("mfa_invalid", Some(&user))).await;
            return Err(ApiError::MfaInvalid);
        }
    }
    attempt.succeeded(now());
    if app.auth.live.user(user.id).is_none() {
        let org_id = user.organization_id;
        let org = app
            .store
            .read(move |c| organizations::get(c, org_id))
            .await?;
        app.auth.live.adopt_user(&user, &org.name);
    }

    let now = now();
    let refresh_jti = token::new_jti();
    let expires_at = now + app.auth.refresh_ttl;
    let ip = call.ctx.client_ip.map(|ip| ip.to_string());
    let user_agent = call.ctx.user_agent().map(str::to_string);
    let mut entry = call.audit("login.succeeded", Outcome::Success);
    entry.user_id = Some(user.id);
    entry.organization_id = Some(user.organization_id);
    let (user_id, jti) = (user.id, refresh_jti.clone());
    let session = app
        .store
        .write(move |tx| {
            let session = sessions::create(
                tx,
                &sessions::NewSession {
                    user_id,
                    expires_at,
                    ip: ip.as_deref(),
                    user_agent: user_agent.as_deref(),
                    refresh_jti: &jti,
                },
            )?;
            entry.target_type = Some("session");
            entry.target_id = Some(session.id);
            audit::record(tx, &entry)?;
            Ok(session)
        })
        .await?;
    app.auth.live.put_session(&session);
    let issued = app.auth.issue(
        user.id,
        user.organization_id,
        session.id,
        session.expires_at,
        Some(&refresh_jti),
        now,
    )?;
    let live_user = LiveUser::from(&user);
    Ok(reply::ok(&LoginResponse {
        access: issued.access,
        refresh: issued.refresh.unwrap_or_default(),
        user: UserDto::new(app, &live_user),
    }))
}

/// Checks a TOTP code for `user` and records its step, so that it cannot be used again.
pub async fn check_totp(app: &App, user: &users::User, code: String) -> Result<bool, ApiError> {
    let (id, email) = (user.id, user.email.clone());
    let at = now() as u64;
    let sealer = app.auth.mfa_sealer.clone();
    let verdict = app
        .store
        .write(move |tx| {
            let Some(stored) = users::mfa_secret(tx, id)? else {
                return Ok(Verdict::Refused);
            };
            let Ok(secret) = sealer.open(id, &stored) else {
                return Ok(Verdict::Unreadable);
            };
            Ok(match totp::matching_step(&secret, &email, &code, at) {
                Some(step) if users::accept_totp_step(tx, id, step)? => Verdict::Accepted,
                _ => Verdict::Refused,
            })
        })
        .await?;
    match verdict {
        Verdict::Accepted => Ok(true),
        Verdict::Refused => Ok(false),
        Verdict::Unreadable => Err(ApiError::Internal(format!(
            "the TOTP secret of user {id} does not open: was {}/mfa-key replaced?",
            app.config.server.data_dir.display()
        ))),
    }
}

/// What a user's stored TOTP secret said of a code.
enum Verdict {
    Accepted,
    /// A wrong or replayed code, or no secret.
    Refused,
    /// The sealed secret does not open with this data directory's key.
    Unreadable,
}

/// Writes an audit entry on its own; a failure is logged, not shown to the client.
pub async fn record(app: &App, entry: audit::Entry) {
    if let Err(e) = app.store.write(move |tx| audit::record(tx, &entry)).await {
        tracing::error!(error = %e, "writing the audit log failed");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh: Secret,
}

/// POST /api/auth/token/refresh/
pub async fn refresh(call: Call<'_>) -> Result<Response, ApiError> {
    let request: RefreshRequest = call.json()?;
    let app = call.app;
    let claims = app.auth.verify_refresh(request.refresh.expose())?;
    let user_id = claims.user_id().ok_or(ApiError::TokenNotValid)?;
    let now = now();
    let session = app
        .auth
        .live
        .session(claims.sid)
        .filter(|s| s.user_id == user_id && s.expires_at > now)
        .ok_or(ApiError::TokenNotValid)?;
    let user = app
        .auth
        .live
        .user(user_id)
        .filter(|u| u.is_active && u.organization_id == claims.org)
        .ok_or(ApiError::TokenNotValid)?;

    let next_jti = if app.auth.rotate_refresh_tokens {
        let next = token::new_jti();
        let (sid, presented, replacement) = (claims.sid, claims.jti.clone(), next.clone());
        let rotated = app
            .store
            .write(move |tx| sessions::rotate_refresh(tx, sid, &presented, &replacement))
            .await?;
        if !rotated {
            // A refresh token that was already exchanged: someone else holds a copy.
            let mut entry = call.audit("token.reuse_detected", Outcome::Denied);
            entry.user_id = Some(user.id);
            entry.organization_id = Some(user.organization_id);
            entry.target_type = Some("session");
            entry.target_id = Some(sid);
            app.store
                .write(move |tx| {
                    let _ = sessions::revoke(tx, sid);
                    audit::record(tx, &entry)?;
                    Ok(())
                })
                .await?;
            app.auth.live.revoke_sessions(&[sid]);
            return Err(ApiError::TokenReused);
        }
        Some(next)
    } else {
        None
    };
    let issued = app.auth.issue(
        user.id,
        user.organization_id,
        claims.sid,
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
pub async fn logout(call: Call<'_>) -> Result<Response, ApiError> {
    let request: RefreshRequest = call.json()?;
    let caller = call.authorized()?.principal().clone();
    let app = call.app;
    let claims = app.auth.verify_refresh(request.refresh.expose())?;
    if claims.user_id() != Some(caller.user_id) {
        return Err(ApiError::TokenNotValid);
    }
    let sid = claims.sid;
    let mut entry = call.audit("session.revoked", Outcome::Success);
    entry.target_type = Some("session");
    entry.target_id = Some(sid);
    entry.details = details(&[("reason", "logout")]);
    app.store
        .write(move |tx| {
            // Logging out of a session that already ended is not an error.
            match sessions::revoke(tx, sid) {
                Ok(()) | Err(crate::store::StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
            audit::record(tx, &entry)?;
            Ok(())
        })
        .await?;
    app.auth.live.revoke_sessions(&[sid]);
    Ok(reply::no_content())
}

/// GET /api/auth/me/
pub fn me(call: Call<'_>) -> Result<Response, ApiError> {
    let principal = call.authorized()?.principal();
    let user = call
        .app
        .auth
        .live
        .user(principal.user_id)
        .ok_or(ApiError::TokenNotValid)?;
    Ok(reply::ok(&UserDto::new(call.app, &user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: Secret,
    new_password: Secret,
}

/// Passwords a user may not reuse: the current one and the four before it.
const PASSWORD_HISTORY: usize = 5;

/// POST /api/auth/password/
pub async fn change_password(call: Call<'_>) -> Result<Response, ApiError> {
    let request: PasswordChange = call.json()?;
    password_field("current_password", &request.current_password)?;
    password_field("new_password", &request.new_password)?;
    let caller = call.authorized()?.principal().clone();
    let app = call.app;
    let user_id = caller.user_id;
    let user = app.store.read(move |c| users::get(c, user_id)).await?;
    let current_ok = app
        .hasher
        .verify(request.current_password, Some(user.password_hash.clone()))
        .await
        .map_err(busy)?;
    if !current_ok {
        return Err(ApiError::field("current_password", "is wrong"));
    }
    app.hasher
        .check_strength(&request.new_password, &user.email)
        .map_err(|weak| ApiError::field("new_password", weak.0))?;
    let history = app
        .store
        .read(move |c| users::recent_password_hashes(c, user_id, PASSWORD_HISTORY))
        .await?;
    for old in history {
        if app
            .hasher
            .verify(request.new_password.clone(), Some(old))
            .await
            .map_err(busy)?
        {
            return Err(ApiError::field(
                "new_password",
                format!("must not be one of your last {PASSWORD_HISTORY} passwords"),
            ));
        }
    }
    let hash = app.hasher.hash(request.new_password).await.map_err(busy)?;
    let keep = caller.session_id;
    let mut entry = call.audit("password.changed", Outcome::Success);
    entry.target_type = Some("user");
    entry.target_id = Some(user_id);
    let revoked = app
        .store
        .write(move |tx| {
            users::set_password(tx, user_id, &hash)?;
            let revoked = sessions::revoke_all_for_user(tx, user_id, keep)?;
            audit::record(tx, &entry)?;
            Ok(revoked)
        })
        .await?;
    app.auth.live.revoke_sessions(&revoked);
    Ok(reply::no_content())
}
