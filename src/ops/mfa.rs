//! TOTP enrolment and use: the secret sealed at rest, codes accepted once, recovery codes.

use super::{change, Actor};
use crate::auth::totp;
use crate::domain::{now, Id};
use crate::error::ApiError;
use crate::ops::AppState;
use crate::store::audit::Outcome;
use crate::store::feed::Kind;
use crate::store::users;

/// What a user's stored TOTP secret said of a code.
enum Verdict {
    Accepted,
    /// A wrong or replayed code, or no secret.
    Refused,
    /// The sealed secret does not open with this data directory's key.
    Unreadable,
}

/// Checks a TOTP code for `user` and records its step, so that it cannot be used again. Only
/// against TOTP that is on, unless `pending` (the code that confirms enrolment).
pub async fn check_totp(
    app: &AppState,
    actor: &Actor,
    user: &users::User,
    code: String,
    pending: bool,
) -> Result<bool, ApiError> {
    let (id, email) = (user.id, user.email.clone());
    let at = now() as u64;
    let sealer = app.auth.mfa_sealer.clone();
    let verdict = change(app, actor, move |c| {
        if !pending && !users::totp_enabled(c.tx, id)? {
            return Ok(Verdict::Refused);
        }
        let Some(stored) = users::mfa_secret(c.tx, id)? else {
            return Ok(Verdict::Refused);
        };
        let Ok(secret) = sealer.open(id, &stored) else {
            return Ok(Verdict::Unreadable);
        };
        Ok(match totp::matching_step(&secret, &email, &code, at) {
            Some(step) if users::accept_totp_step(c.tx, id, step)? => Verdict::Accepted,
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

/// Uses one recovery code (each works once); audited when it worked.
pub async fn use_recovery_code(
    app: &AppState,
    actor: &Actor,
    user: &users::User,
    code: &str,
) -> Result<bool, ApiError> {
    let hash = totp::hash_recovery_code(code);
    let (id, organization_id) = (user.id, user.organization_id);
    change(app, actor, move |c| {
        let used = users::use_recovery_code(c.tx, id, &hash)?;
        if used {
            let mut entry = c.actor().entry("mfa.recovery_code_used", Outcome::Success);
            entry.user_id = Some(id);
            entry.organization_id = Some(organization_id);
            c.record(&entry)?;
        }
        Ok(used)
    })
    .await
}

/// What enrolment shows once.
pub struct Enrolment {
    pub secret: String,
    pub otpauth_url: String,
    pub qr_png_base64: String,
}

/// A user's second factors, as the account shows them.
pub struct Status {
    /// `totp` and `webauthn`, those on.
    pub methods: Vec<&'static str>,
    /// Recovery codes not used yet (none without MFA: turning it off deletes them).
    pub recovery_codes_left: i64,
}

/// The caller's second factors and how many recovery codes are left, in one read.
pub async fn status(app: &AppState, user_id: Id) -> Result<Status, ApiError> {
    app.store
        .read(move |c| {
            let mut methods = Vec::with_capacity(2);
            if users::totp_enabled(c, user_id)? {
                methods.push("totp");
            }
            if crate::store::passkeys::count_of_user(c, user_id)? > 0 {
                methods.push("webauthn");
            }
            Ok(Status {
                methods,
                recovery_codes_left: users::recovery_codes_left(c, user_id)?,
            })
        })
        .await
        .map_err(ApiError::from)
}

/// Starts enrolment: a new secret, sealed and stored; nothing is enabled yet.
pub async fn setup(app: &AppState, actor: &Actor, user_id: Id) -> Result<Enrolment, ApiError> {
    let (user, totp) = app
        .store
        .read(move |c| Ok((users::get(c, user_id)?, users::totp_enabled(c, user_id)?)))
        .await?;
    if totp {
        return Err(ApiError::Conflict(
            "TOTP is already enabled; disable it first to enrol again".into(),
        ));
    }
    let enrolment = totp::enrol(&user.email).map_err(|e| ApiError::Internal(e.to_string()))?;
    let sealed = app
        .auth
        .mfa_sealer
        .seal(user_id, &enrolment.secret_base32)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    change(app, actor, move |c| {
        Ok(users::set_mfa_secret(c.tx, user_id, &sealed)?)
    })
    .await?;
    Ok(Enrolment {
        secret: enrolment.secret_base32,
        otpauth_url: enrolment.otpauth_url,
        qr_png_base64: enrolment.qr_png_base64,
    })
}

/// Confirms enrolment with a first code: MFA is on; answers the recovery codes (shown once).
pub async fn confirm(
    app: &AppState,
    actor: &Actor,
    user_id: Id,
    code: String,
) -> Result<Vec<String>, ApiError> {
    let (user, totp, pending) = app
        .store
        .read(move |c| {
            Ok((
                users::get(c, user_id)?,
                users::totp_enabled(c, user_id)?,
                users::mfa_secret(c, user_id)?,
            ))
        })
        .await?;
    if totp {
        return Err(ApiError::Conflict("TOTP is already enabled".into()));
    }
    if pending.is_none() {
        return Err(ApiError::field("code", "start with the setup step first"));
    }
    if !check_totp(app, actor, &user, code, true).await? {
        return Err(ApiError::MfaCodeRejected);
    }
    let (codes, hashes) = totp::new_recovery_codes();
    change(app, actor, move |c| {
        users::enable_totp(c.tx, user_id)?;
        users::replace_recovery_codes(c.tx, user_id, &hashes)?;
        c.audit("mfa.enabled", "user", user_id, None)?;
        c.touch(Kind::User, user_id);
        Ok(())
    })
    .await?;
    Ok(codes)
}

/// Ten new recovery codes for the caller, whose password and code the transport has checked:
/// the earlier ones, used or not, stop working in the same transaction. Shown once.
pub async fn regenerate_recovery_codes(
    app: &AppState,
    actor: &Actor,
    user_id: Id,
) -> Result<Vec<String>, ApiError> {
    let (codes, hashes) = totp::new_recovery_codes();
    change(app, actor, move |c| {
        if !users::get(c.tx, user_id)?.mfa_enabled {
            return Err(ApiError::Conflict("MFA is not enabled".into()));
        }
        users::replace_recovery_codes(c.tx, user_id, &hashes)?;
        c.audit("mfa.recovery_codes_regenerated", "user", user_id, None)?;
        Ok(())
    })
    .await?;
    Ok(codes)
}

/// Turns TOTP off for the caller, whose password and code the transport has checked. MFA
/// stays on while a passkey remains; the last factor does not go while the organization's
/// policy requires MFA of them.
pub async fn disable(app: &AppState, actor: &Actor, user_id: Id) -> Result<(), ApiError> {
    change(app, actor, move |c| {
        let user = users::get(c.tx, user_id)?;
        users::disable_totp(c.tx, user_id)?;
        if !users::get(c.tx, user_id)?.mfa_enabled {
            refuse_if_required(c.tx, &user)?;
        }
        c.journal(super::journal::Revocation::TotpDisabled {
            user_id,
            email: user.email,
        });
        c.audit("mfa.disabled", "user", user_id, None)?;
        c.touch(Kind::User, user_id);
        Ok(())
    })
    .await
}

/// `403 policy_violation` when the organization's policy requires MFA of `user`: their last
/// second factor cannot go (the caller's transaction is rolled back).
pub fn refuse_if_required(db: &crate::store::Db<'_>, user: &users::User) -> Result<(), ApiError> {
    if super::policy::of(db, user.organization_id)?.requires_mfa(user.role) {
        return Err(ApiError::policy(
            "require_mfa",
            "require_mfa",
            "the organization's policy requires MFA for your role: it cannot be turned off",
        ));
    }
    Ok(())
}

/// Seals TOTP secrets that a version before sealing stored as they were, in one transaction.
pub fn seal_stored_secrets(
    store: &crate::store::Store,
    sealer: &crate::auth::sealed::SecretSealer,
) -> Result<(), super::StartError> {
    let sealed = store.write_blocking(|tx| -> crate::store::StoreResult<_> {
        let mut sealed = 0;
        for (id, stored) in crate::store::users::all_mfa_secrets(tx)? {
            if crate::auth::sealed::SecretSealer::is_sealed(&stored) {
                continue;
            }
            let value = sealer
                .seal(id, &stored)
                .map_err(|e| crate::store::StoreError::Task(e.to_string()))?;
            crate::store::users::replace_mfa_secret(tx, id, &value)?;
            sealed += 1;
        }
        Ok(sealed)
    })?;
    if sealed > 0 {
        tracing::info!(
            count = sealed,
            "sealed TOTP secrets stored by an earlier version"
        );
    }
    Ok(())
}
