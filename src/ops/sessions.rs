//! Login sessions: the login itself (throttle, password, second factor, then the session),
//! logout, revoking one session, and the revocation that follows a reused refresh token.

use super::accounts::busy;
use super::{change, mfa, Actor};
use crate::auth::throttle::{Key as ThrottleKey, Refused};
use crate::auth::{token, Issued};
use crate::domain::{now, Email, Id, Role, Secret};
use crate::error::ApiError;
use crate::ops::AppState;
use crate::store::audit::{self, Entry, Outcome};
use crate::store::feed::Kind;
use crate::store::{sessions, users};

/// What a login presents.
pub struct Credentials {
    pub email: String,
    pub password: Secret,
    pub totp_code: Option<String>,
    pub recovery_code: Option<String>,
    /// A passkey answering the ceremony a `mfa_required` answer began.
    pub webauthn: Option<super::passkeys::Answer>,
}

/// A successful login: the user and the session's tokens.
pub struct LoggedIn {
    pub user: users::User,
    pub issued: Issued,
    /// The organization requires MFA the user does not have: the session opens only MFA
    /// enrolment and `me` until it is on.
    pub mfa_enrollment_required: bool,
}

/// Writes an audit entry on its own; a failure is logged, not shown to the client.
pub async fn record(app: &AppState, entry: Entry) {
    if let Err(e) = app.store.write(move |tx| audit::record(tx, &entry)).await {
        tracing::error!(error = %e, "writing the audit log failed");
    }
}

/// A refused attempt: `429`, audited at most once a minute per account (in the account's
/// organization, with its `user_id`) and per address, with the number refused since.
pub async fn throttled(app: &AppState, actor: &Actor, refused: Refused) -> ApiError {
    crate::telemetry::throttled("login");
    for (key, count) in refused.audit {
        let mut entry = actor.entry("login.throttled", Outcome::Denied);
        let count = count.to_string();
        match key {
            ThrottleKey::Account(email) => {
                if let Ok(parsed) = Email::parse(&email) {
                    let user = app
                        .store
                        .read(move |c| users::find_by_email(c, &parsed))
                        .await
                        .ok()
                        .flatten();
                    if let Some(user) = user {
                        entry.organization_id = Some(user.organization_id);
                        entry.user_id = Some(user.id);
                        entry.target_type = Some("user");
                        entry.target_id = Some(user.id);
                    }
                }
                entry.details =
                    crate::domain::json_object(&[("email", &email), ("refused", &count)]);
            }
            ThrottleKey::Address(ip) => {
                let ip = ip.to_string();
                entry.details =
                    crate::domain::json_object(&[("address", &ip), ("refused", &count)]);
            }
        }
        record(app, entry).await;
    }
    ApiError::Throttled {
        message: format!(
            "too many failed logins; try again in {}",
            wait_in_words(refused.retry_after)
        ),
        retry_after: refused.retry_after,
    }
}

/// A wait as a person reads it: seconds under a minute, else minutes rounded up (what
/// `Retry-After` says in seconds).
fn wait_in_words(seconds: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if seconds < 60 {
        plural(seconds.max(1), "second")
    } else {
        plural(seconds.div_ceil(60), "minute")
    }
}

/// A password the directory could not check (`503`, never a `401`): logged with the reason,
/// which the client is not told.
fn directory_unavailable(provider: Id, why: &super::sso::ldap::DirectoryError) -> ApiError {
    tracing::warn!(provider, error = %why, "a directory password could not be checked");
    ApiError::DirectoryUnavailable(
        "the directory that checks this address's password cannot be reached; try again shortly"
            .into(),
    )
}

/// The enabled provider that serves `email` for a login, if any. Never for the organization's
/// owner (the break-glass account keeps its own password and MFA whatever the providers say),
/// and never another organization's: a password goes only to the directory of the
/// organization the account belongs to.
async fn provider_for(
    app: &AppState,
    email: &Email,
    user: Option<&users::User>,
) -> Result<Option<super::sso::Provider>, ApiError> {
    if user.is_some_and(|u| u.role == Role::Owner) {
        return Ok(None);
    }
    let provider = super::sso::serving(app, email).await?;
    Ok(provider.filter(|p| user.is_none_or(|u| u.organization_id == p.organization_id)))
}

/// The directory that holds `user`'s password, if an LDAP provider serves the address: their
/// login binds there, and so does every re-check of their password (10.2: never a local hash).
pub async fn directory_of(
    app: &AppState,
    user: &users::User,
) -> Result<Option<super::sso::Provider>, ApiError> {
    let Ok(email) = Email::parse(&user.email) else {
        return Ok(None);
    };
    Ok(provider_for(app, &email, Some(user))
        .await?
        .filter(|p| p.ldap().is_some()))
}

/// A password (and, for MFA disable, a code) presented again inside a session: checked like a
/// login of that account, so that a stolen access token buys no free guesses. `field` names
/// the body field a wrong password is reported under. An address a directory serves is
/// checked by a bind there, as its login is.
pub async fn recheck_password(
    app: &AppState,
    actor: &Actor,
    user: &users::User,
    field: &str,
    password: Secret,
    code: Option<String>,
) -> Result<(), ApiError> {
    let client_ip = actor.client_ip();
    let attempt = match super::throttle::begin(app, &user.email, client_ip).await? {
        Ok(attempt) => attempt,
        Err(refused) => return Err(throttled(app, actor, refused).await),
    };
    let directory = directory_of(app, user).await?;
    let method = if directory.is_some() {
        "ldap"
    } else {
        "password"
    };
    // Why the password is refused, if it is.
    let refused: Option<&str> = match directory {
        Some(provider) => {
            use super::sso::sign_in::{self, Refusal};
            match sign_in::ldap_password(app, &provider, user, &password).await {
                Ok(()) => None,
                Err(Refusal::Credentials(reason) | Refusal::NotAllowed(reason, _)) => Some(reason),
                Err(Refusal::Internal(e)) => {
                    attempt.released().await;
                    return Err(e);
                }
                Err(Refusal::Unavailable(e)) => {
                    attempt.released().await;
                    return Err(directory_unavailable(provider.id, &e));
                }
            }
        }
        None => {
            let right = app
                .hasher
                .verify(password, Some(user.password_hash.clone()))
                .await
                .map_err(busy)?;
            (!right).then_some("wrong_password")
        }
    };
    let failure = |reason: &str| {
        let mut entry = actor.entry("login.failed", Outcome::Failure);
        entry.user_id = Some(user.id);
        entry.organization_id = Some(user.organization_id);
        entry.details = crate::domain::json_object(&[
            ("email", &user.email),
            ("reason", reason),
            ("method", method),
            ("check", field),
        ]);
        entry
    };
    if let Some(reason) = refused {
        attempt.failed().await;
        record(app, failure(reason)).await;
        return Err(ApiError::field(field, "is wrong"));
    }
    if let Some(code) = code {
        if !mfa::check_totp(app, actor, user, code, false).await? {
            attempt.failed().await;
            record(app, failure("mfa_invalid")).await;
            return Err(ApiError::MfaCodeRejected);
        }
    }
    attempt.released().await;
    Ok(())
}

/// The whole login: throttle, password (hashed off the async threads, against a dummy hash
/// for unknown accounts), second factor, then the session, which opens only if no wholesale
/// end of the user's sessions committed since the password was checked.
pub async fn login(
    app: &AppState,
    actor: &Actor,
    given: Credentials,
) -> Result<LoggedIn, ApiError> {
    let attempted = given.email.trim().to_lowercase();
    // A malformed address cannot belong to anyone: it fails like a wrong password.
    let email = Email::parse(&given.email).ok();
    let client_ip = actor.client_ip();
    if attempted.len() > crate::domain::MAX_EMAIL_BYTES {
        return Err(ApiError::field(
            "email",
            format!("must be at most {} bytes", crate::domain::MAX_EMAIL_BYTES),
        ));
    }
    let attempt = match super::throttle::begin(app, &attempted, client_ip).await? {
        Ok(attempt) => attempt,
        Err(refused) => return Err(throttled(app, actor, refused).await),
    };

    let found = match email.clone() {
        Some(email) => {
            app.store
                .read(move |c| users::find_by_email(c, &email))
                .await?
        }
        None => None,
    };
    // An address a directory serves signs in there; the organization's owner never does (the
    // break-glass account keeps its own password and MFA whatever the providers say).
    let provider = match &email {
        Some(email) => provider_for(app, email, found.as_ref()).await?,
        None => None,
    };

    let failure = |reason: &str, method: &str, user: Option<&users::User>| {
        let mut entry = actor.entry("login.failed", Outcome::Failure);
        entry.user_id = user.map(|u| u.id);
        entry.organization_id = user.map(|u| u.organization_id);
        entry.details = crate::domain::json_object(&[
            ("email", &attempted),
            ("reason", reason),
            ("method", method),
        ]);
        entry
    };
    let (user, method) = match (provider, email) {
        (Some(provider), _) if provider.oidc().is_some() && provider.enforce => {
            // The organization signs this address in through its identity provider only. Counted
            // as a failed attempt: the throttle bounds what repeating it costs (and writes).
            attempt.failed().await;
            record(app, failure("sso_required", "password", found.as_ref())).await;
            return Err(ApiError::SsoRequired {
                provider: provider.id,
                name: provider.name,
            });
        }
        (Some(provider), Some(email)) if provider.ldap().is_some() => {
            use super::sso::sign_in::{self, Refusal};
            match sign_in::ldap(app, &provider, &email, &given.password).await {
                Ok(user) => (user, "ldap"),
                Err(Refusal::Credentials(reason)) => {
                    attempt.failed().await;
                    record(app, failure(reason, "ldap", found.as_ref())).await;
                    return Err(ApiError::InvalidCredentials);
                }
                Err(Refusal::NotAllowed(reason, message)) => {
                    // The password was right: not counted against the account.
                    attempt.released().await;
                    record(app, failure(reason, "ldap", found.as_ref())).await;
                    return Err(ApiError::SsoNotAllowed(message));
                }
                Err(Refusal::Internal(e)) => {
                    attempt.released().await;
                    return Err(e);
                }
                Err(Refusal::Unavailable(e)) => {
                    attempt.released().await;
                    return Err(directory_unavailable(provider.id, &e));
                }
            }
        }
        _ => {
            let password_ok = app
                .hasher
                .verify(
                    given.password,
                    found.as_ref().map(|u| u.password_hash.clone()),
                )
                .await
                .map_err(busy)?;
            match found {
                Some(user) if password_ok && user.is_active => (user, "password"),
                other => {
                    let reason = match &other {
                        None => "unknown_email",
                        Some(u) if !u.is_active && password_ok => "inactive",
                        Some(_) => "wrong_password",
                    };
                    attempt.failed().await;
                    record(app, failure(reason, "password", other.as_ref())).await;
                    return Err(ApiError::InvalidCredentials);
                }
            }
        }
    };

    if user.mfa_enabled {
        use super::passkeys::{self, Verdict};
        let verdict = match (given.totp_code, given.recovery_code, given.webauthn) {
            (None, None, None) => {
                // The password was right: not a failure, but no session without the code.
                attempt.released().await;
                let request = passkeys::second_factor_request(app, actor, &user).await?;
                return Err(ApiError::MfaRequired(Box::new(request)));
            }
            (Some(code), _, _) => {
                Verdict::from(mfa::check_totp(app, actor, &user, code, false).await?)
            }
            (None, Some(code), _) => {
                Verdict::from(mfa::use_recovery_code(app, actor, &user, &code).await?)
            }
            (None, None, Some(answer)) => {
                passkeys::check_second_factor(app, actor, &user, answer).await?
            }
        };
        if verdict != Verdict::Accepted {
            attempt.failed().await;
            let reason = match verdict {
                Verdict::CloneSuspected => "webauthn_clone_suspected",
                _ => "mfa_invalid",
            };
            record(app, failure(reason, method, Some(&user))).await;
            return Err(ApiError::MfaInvalid);
        }
    }
    attempt.succeeded().await;
    open(app, actor, user, method).await
}

/// A sign-in without a password (contract 10.3): a passkey registered for it, found by its
/// credential id, counted in the login throttle like a password. An address its
/// organization signs in through an identity provider only (`enforce`) is sent there, as
/// its password would be.
pub async fn passkey_sign_in(
    app: &AppState,
    actor: &Actor,
    challenge_id: String,
    credential: serde_json::Value,
) -> Result<LoggedIn, ApiError> {
    use super::passkeys::{self, Verdict};
    passkeys::challenge_field(&challenge_id)?;
    let presented = passkeys::presented(app, credential).await?;
    let attempt =
        match super::throttle::begin(app, &presented.account_key, actor.client_ip()).await? {
            Ok(attempt) => attempt,
            Err(refused) => return Err(throttled(app, actor, refused).await),
        };
    let failure = |reason: &str, user: Option<&users::User>| {
        let mut entry = actor.entry("login.failed", Outcome::Failure);
        entry.user_id = user.map(|u| u.id);
        entry.organization_id = user.map(|u| u.organization_id);
        entry.details = crate::domain::json_object(&[
            ("email", user.map(|u| u.email.as_str()).unwrap_or("")),
            ("reason", reason),
            ("method", "passkey"),
        ]);
        entry
    };
    let verdict = passkeys::sign_in_finish(app, actor, challenge_id, &presented).await;
    let user = presented.stored.as_ref().map(|(_, user)| user.clone());
    let verdict = match verdict {
        Ok(verdict) => verdict,
        Err(e) => {
            attempt.released().await;
            return Err(e);
        }
    };
    match (verdict, user) {
        (Verdict::Accepted, Some(user)) if user.is_active && !user.service_account => {
            if directory_of(app, &user).await?.is_some() {
                // The directory decides each sign-in of the addresses it serves (it may have
                // disabled the account since the last sync): it is asked with a password.
                attempt.released().await;
                record(app, failure("directory_user", Some(&user))).await;
                return Err(ApiError::SsoNotAllowed(
                    "your organization's directory checks each of your sign-ins: sign in with \
                     your email and password, then use the passkey as your second factor"
                        .into(),
                ));
            }
            if let Ok(email) = Email::parse(&user.email) {
                if let Some(provider) = provider_for(app, &email, Some(&user)).await? {
                    if provider.oidc().is_some() && provider.enforce {
                        attempt.failed().await;
                        record(app, failure("sso_required", Some(&user))).await;
                        return Err(ApiError::SsoRequired {
                            provider: provider.id,
                            name: provider.name,
                        });
                    }
                }
            }
            attempt.succeeded().await;
            open(app, actor, user, "passkey").await
        }
        (verdict, user) => {
            attempt.failed().await;
            let reason = match (&verdict, &user) {
                (Verdict::CloneSuspected, _) => "webauthn_clone_suspected",
                (Verdict::Accepted, Some(_)) => "inactive",
                (_, None) => "unknown_passkey",
                _ => "passkey_refused",
            };
            record(app, failure(reason, user.as_ref())).await;
            Err(match verdict {
                Verdict::CloneSuspected => ApiError::MfaInvalid,
                _ => ApiError::InvalidCredentials,
            })
        }
    }
}

/// Opens a session for `user`, whom `method` (`password`, `ldap`, `oidc`, `passkey`) has just vouched
/// for: audited `login.succeeded`, and only if no wholesale end of the user's sessions (a
/// password change, a deactivation) committed since `user` was read.
pub async fn open(
    app: &AppState,
    actor: &Actor,
    user: users::User,
    method: &'static str,
) -> Result<LoggedIn, ApiError> {
    // A service account never signs in, whatever found it.
    if user.service_account {
        return Err(ApiError::InvalidCredentials);
    }
    let refresh_jti = token::new_jti();
    let secret = token::new_session_secret();
    let secret_text = crate::domain::hex(&secret);
    // One clock reading for the session's end and the tokens' `iat`: the refresh token lives
    // exactly `refresh_ttl`, even when the change commits in the next second.
    let issued_at = now();
    let refresh_ttl = app.auth.refresh_ttl;
    let (ip, user_agent) = actor
        .client()
        .map(|c| (c.ip.map(|ip| ip.to_string()), c.user_agent.clone()))
        .unwrap_or_default();
    let (user_id, organization_id, epoch, jti) = (
        user.id,
        user.organization_id,
        user.session_epoch,
        refresh_jti.clone(),
    );
    let max_sessions = app.config.auth.max_sessions_per_user;
    let session = change(app, actor, move |c| {
        if !users::may_open_session(c.tx, user_id, epoch)? {
            // The password was changed or reset, or the user deactivated, after it was checked.
            return Err(ApiError::InvalidCredentials);
        }
        // The organization's policy, as committed: how long the session may live, and whether
        // a password login must set up MFA first (an identity provider vouches for its own).
        let policy = super::policy::of(c.tx, organization_id)?;
        let enrollment = method != "oidc"
            && super::policy::mfa_enrollment_required(c.tx, &users::get(c.tx, user_id)?)?;
        let session = sessions::create(
            c.tx,
            &sessions::NewSession {
                user_id,
                expires_at: policy.session_end(issued_at, refresh_ttl),
                ip: ip.as_deref(),
                user_agent: user_agent.as_deref(),
                refresh_jti: &jti,
                secret: &secret_text,
                mfa_enrollment_required: enrollment,
            },
        )?;
        let mut entry = c.actor().entry("login.succeeded", Outcome::Success);
        entry.user_id = Some(user_id);
        entry.organization_id = Some(organization_id);
        entry.target_type = Some("session");
        entry.target_id = Some(session.id);
        entry.details = crate::domain::json_object(&[("method", method)]);
        c.record(&entry)?;
        c.touch(Kind::Session, session.id);
        // Past the limit, the oldest sessions end: no account grows the table without bound.
        for ended in sessions::revoke_beyond(c.tx, user_id, max_sessions)? {
            let mut entry = c.actor().entry("session.revoked", Outcome::Success);
            entry.user_id = Some(user_id);
            entry.organization_id = Some(organization_id);
            entry.target_type = Some("session");
            entry.target_id = Some(ended);
            entry.details = crate::domain::json_object(&[("reason", "limit")]);
            c.record(&entry)?;
            c.touch(Kind::Session, ended);
        }
        // The user too: a server that has not seen this user yet (made by another server a
        // moment ago) learns it with the session.
        c.touch(Kind::User, user_id);
        Ok(session)
    })
    .await?;
    let issued = app.auth.issue(
        user.id,
        user.organization_id,
        (session.id, Some(&secret)),
        session.expires_at,
        Some(&refresh_jti),
        issued_at,
    )?;
    Ok(LoggedIn {
        user,
        issued,
        mfa_enrollment_required: session.mfa_enrollment_required,
    })
}

/// Ends one session (logout, or `DELETE /auth/sessions/{id}/`); ending an ended session is
/// not an error.
pub async fn end(
    app: &AppState,
    actor: &Actor,
    sid: Id,
    reason: &'static str,
) -> Result<(), ApiError> {
    change(app, actor, move |c| {
        match sessions::revoke(c.tx, sid) {
            Ok(()) | Err(crate::store::StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        c.audit(
            "session.revoked",
            "session",
            sid,
            Some(crate::domain::json_object(&[("reason", reason)])),
        )?;
        c.touch(Kind::Session, sid);
        Ok(())
    })
    .await
}

/// A refresh token presented twice: someone else holds a copy; the whole session ends.
pub async fn reuse_detected(
    app: &AppState,
    actor: &Actor,
    user_id: Id,
    organization_id: Id,
    sid: Id,
) -> Result<(), ApiError> {
    change(app, actor, move |c| {
        let _ = sessions::revoke(c.tx, sid);
        let mut entry = c.actor().entry("token.reuse_detected", Outcome::Denied);
        entry.user_id = Some(user_id);
        entry.organization_id = Some(organization_id);
        entry.target_type = Some("session");
        entry.target_id = Some(sid);
        c.record(&entry)?;
        c.touch(Kind::Session, sid);
        Ok(())
    })
    .await
}

/// Exchanges a refresh token's id for the next one (rotation); `false`: already used.
pub async fn rotate_refresh(
    app: &AppState,
    actor: &Actor,
    sid: Id,
    presented: String,
    next: String,
) -> Result<bool, ApiError> {
    change(app, actor, move |c| {
        Ok(sessions::rotate_refresh(c.tx, sid, &presented, &next)?)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::wait_in_words;

    #[test]
    fn a_lockout_says_how_long_it_lasts_in_words() {
        assert_eq!(wait_in_words(0), "1 second");
        assert_eq!(wait_in_words(1), "1 second");
        assert_eq!(wait_in_words(42), "42 seconds");
        assert_eq!(wait_in_words(60), "1 minute");
        assert_eq!(wait_in_words(61), "2 minutes");
        assert_eq!(wait_in_words(900), "15 minutes");
    }
}
