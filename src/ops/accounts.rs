//! Organizations and users: creation (one path for the first start, the shell and the API),
//! role and status changes, passwords, MFA resets, renames and ownership transfers. The rules
//! live here once, whoever calls.

use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;

use super::journal::Revocation;
use super::{change, Actor, App, AppState, Change, StartError};
use crate::auth::password::PasswordError;
use crate::domain::{Email, Id, Role, Secret};
use crate::error::ApiError;
use crate::store::feed::Kind;
use crate::store::{api_keys, organizations, sessions, users};

/// Passwords a user may not reuse: the current one and the four before it.
pub const PASSWORD_HISTORY: usize = 5;

/// A hashing thread that could not be had: `503` with `Retry-After`.
pub fn busy(error: PasswordError) -> ApiError {
    match error {
        PasswordError::Busy => ApiError::Unavailable { retry_after: 1 },
        other => ApiError::Internal(other.to_string()),
    }
}

/// The argon2id hash of a new password that passes the strength rules, naming `field`.
pub async fn hash_new_password(
    app: &App,
    field: &str,
    password: Secret,
    email: &str,
) -> Result<String, ApiError> {
    app.hasher
        .check_strength(&password, email)
        .map_err(|weak| ApiError::field(field, weak.0))?;
    app.hasher.hash(password).await.map_err(busy)
}

/// A user the actor may manage: in the caller's organization (else `404`) and not above the
/// caller's role. The shell may manage everyone.
fn manageable(c: &Change<'_, '_>, target: &users::User) -> Result<(), ApiError> {
    // A service account changes through `service_accounts`, whoever asks.
    if target.service_account {
        return Err(ApiError::NotFound);
    }
    if let Some(caller) = c.actor().principal() {
        if target.organization_id != caller.organization_id {
            return Err(ApiError::NotFound);
        }
        if target.role > caller.role {
            return Err(ApiError::denied("that user's role is above yours"));
        }
    }
    Ok(())
}

/// A user strictly below the actor's role, in its organization (else `404`); the shell may
/// act on everyone.
fn below_caller(actor: &Actor, target: &users::User) -> Result<(), ApiError> {
    if target.service_account {
        return Err(ApiError::NotFound);
    }
    if let Some(caller) = actor.principal() {
        if target.organization_id != caller.organization_id {
            return Err(ApiError::NotFound);
        }
        if target.role >= caller.role {
            return Err(ApiError::denied(
                "only users below your role; the owner sets an administrator's password",
            ));
        }
    }
    Ok(())
}

fn user_created(c: &Change<'_, '_>, user: &users::User) -> Result<(), ApiError> {
    let mut entry = c
        .actor()
        .entry("user.created", crate::store::audit::Outcome::Success);
    entry.organization_id = Some(user.organization_id);
    entry.target_type = Some("user");
    entry.target_id = Some(user.id);
    let mut details = vec![("email", user.email.as_str()), ("role", user.role.as_str())];
    if let super::Actor::System(via) = c.actor() {
        details.push(("via", via));
    }
    entry.details = crate::domain::json_object(&details);
    c.record(&entry)?;
    Ok(())
}

/// Who chose a first owner's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerPassword {
    /// The owner (given in the configuration as theirs).
    Own,
    /// Whoever ran the command: the pages suggest replacing it.
    SetByOther,
    /// Generated: the owner must replace it before anything else (contract 10.6).
    Temporary,
}

/// A new organization and its owner (first start and `claribi org create`). Organization
/// names are unique, ignoring case.
pub async fn create_organization(
    app: &AppState,
    actor: &Actor,
    name: String,
    owner: Email,
    owner_name: String,
    password_hash: String,
    password: OwnerPassword,
) -> Result<(Id, users::User), ApiError> {
    change(app, actor, move |c| {
        // Names are unique ignoring case: the index answers `409 conflict`.
        let org = organizations::create(c.tx, &name)?;
        let id = users::create(
            c.tx,
            &users::NewUser {
                organization_id: org,
                email: &owner,
                name: &owner_name,
                role: Role::Owner,
                password_hash: &password_hash,
                password_set_by_other: password != OwnerPassword::Own,
                password_temporary: password == OwnerPassword::Temporary,
            },
        )?;
        let user = users::get(c.tx, id)?;
        user_created(c, &user)?;
        c.touch(Kind::Organization, org);
        c.touch(Kind::User, id);
        Ok((org, user))
    })
    .await
}

/// A new user of an organization, below the owner and not above the caller's own role.
pub async fn create_user(
    app: &AppState,
    actor: &Actor,
    organization_id: Id,
    email: Email,
    name: String,
    role: Role,
    password: Secret,
) -> Result<users::User, ApiError> {
    if role == Role::Owner {
        return Err(ApiError::denied(
            "an organization has exactly one owner; ownership moves only by transfer",
        ));
    }
    if actor.principal().is_some_and(|caller| role > caller.role) {
        return Err(ApiError::denied(
            "you cannot create a user above your own role",
        ));
    }
    let hash = hash_new_password(app, "password", password, email.as_str()).await?;
    change(app, actor, move |c| {
        let id = users::create(
            c.tx,
            &users::NewUser {
                organization_id,
                email: &email,
                name: &name,
                role,
                password_hash: &hash,
                // Whoever creates a user chooses the first password; the user then picks theirs.
                password_set_by_other: true,
                password_temporary: false,
            },
        )?;
        let user = users::get(c.tx, id)?;
        user_created(c, &user)?;
        c.touch(Kind::User, id);
        Ok(user)
    })
    .await
}

/// What `PATCH /users/{id}/` (or the shell) changes; `None` leaves it.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub name: Option<String>,
}

/// A role change, a deactivation (which ends every session and revokes every key) or a
/// reactivation, and a name change; audited, in force on every server before it returns.
pub async fn update_user(
    app: &AppState,
    actor: &Actor,
    id: Id,
    wanted: UserChange,
) -> Result<users::User, ApiError> {
    change(app, actor, move |c| apply_user_change(c, id, &wanted)).await
}

/// Many users' changes in one transaction, confirmed once (a directory sync): all or none.
pub async fn update_users(
    app: &AppState,
    actor: &Actor,
    changes: Vec<(Id, UserChange)>,
) -> Result<(), ApiError> {
    change(app, actor, move |c| {
        for (id, wanted) in &changes {
            apply_user_change(c, *id, wanted)?;
        }
        Ok(())
    })
    .await
}

/// `update_user`'s change, inside the caller's transaction.
fn apply_user_change(
    c: &mut Change<'_, '_>,
    id: Id,
    wanted: &UserChange,
) -> Result<users::User, ApiError> {
    let before = users::get(c.tx, id)?;
    manageable(c, &before)?;
    let caller = c.actor().principal().map(|p| (p.user_id, p.role));
    if let Some(role) = wanted.role {
        if (role == Role::Owner) != (before.role == Role::Owner) {
            return Err(ApiError::denied("ownership moves only by transfer"));
        }
        if caller.is_some_and(|(_, caller_role)| role > caller_role) {
            return Err(ApiError::denied(
                "you cannot raise a user above your own role",
            ));
        }
    }
    if wanted.is_active == Some(false)
        && (before.role == Role::Owner || caller.is_some_and(|(me, _)| me == id))
    {
        return Err(ApiError::denied(
            "the owner and yourself cannot be deactivated",
        ));
    }
    let org = before.organization_id;
    if let Some(name) = &wanted.name {
        users::set_name(c.tx, id, name)?;
    }
    if let Some(role) = wanted.role.filter(|r| *r != before.role) {
        users::set_role(c.tx, id, role)?;
        c.journal(Revocation::RoleChanged {
            user_id: id,
            email: before.email.clone(),
            role: role.as_str().to_string(),
        });
        let details =
            crate::domain::json_object(&[("from", before.role.as_str()), ("to", role.as_str())]);
        c.audit_in(org, "user.role_changed", "user", id, Some(details))?;
    }
    match wanted.is_active {
        Some(false) if before.is_active => {
            users::set_active(c.tx, id, false)?;
            end_everything(c, id)?;
            c.audit_in(org, "user.deactivated", "user", id, None)?;
        }
        Some(true) if !before.is_active => {
            users::set_active(c.tx, id, true)?;
            c.audit_in(org, "user.activated", "user", id, None)?;
        }
        _ => {}
    }
    c.touch(Kind::User, id);
    Ok(users::get(c.tx, id)?)
}

/// Ends everything a deactivated user (or service account) holds, in the caller's
/// transaction: every session (and any login that checked the password before this commits)
/// and every key, revoked by the actor. Returns how many keys were revoked.
pub(super) fn end_everything(c: &mut Change<'_, '_>, id: Id) -> Result<usize, ApiError> {
    let by = c.actor().principal().map(|p| p.user_id);
    users::bump_session_epoch(c.tx, id)?;
    let ended = sessions::revoke_all_for_user(c.tx, id, None)?;
    let revoked = api_keys::revoke_all_for_user(c.tx, id, by)?;
    c.touch_all(Kind::Session, &ended);
    c.touch_all(Kind::ApiKey, &revoked);
    Ok(revoked.len())
}

/// Sets a new password (already hashed) and ends the user's sessions but `keep`; a login that
/// checked the old password cannot open a session after this commits.
pub async fn set_password(
    app: &AppState,
    actor: &Actor,
    user_id: Id,
    hash: String,
    keep: Option<Id>,
) -> Result<usize, ApiError> {
    change(app, actor, move |c| {
        let user = users::get(c.tx, user_id)?;
        // Set by someone else (an administrator at the shell) or by the user themselves.
        let by_other = c.actor().principal().map(|p| p.user_id) != Some(user_id);
        let ended = store_password(c, &user, &hash, by_other, false, keep)?;
        c.audit_in(
            user.organization_id,
            "password.changed",
            "user",
            user_id,
            None,
        )?;
        Ok(ended)
    })
    .await
}

/// An administrator sets a temporary password for a user below their role (contract 10.6):
/// every session of the user ends, and the next ones open only the password change and `me`
/// until the user chooses their own. Never one's own (that is the password change, which asks
/// for the current one), nor a peer's (whose account it would hand over: the owner sets
/// administrators'); never a user whose sign-in is the directory's.
pub async fn set_temporary_password(
    app: &AppState,
    actor: &Actor,
    user_id: Id,
    password: Secret,
) -> Result<(), ApiError> {
    if actor.principal().is_some_and(|p| p.user_id == user_id) {
        return Err(ApiError::denied(
            "set your own password with POST /api/auth/password/",
        ));
    }
    // Who may is settled before anything about the password or the account's sign-in is
    // looked at, so that a refusal tells nothing of either.
    let user = app.store.read(move |c| users::get(c, user_id)).await?;
    below_caller(actor, &user)?;
    if let Some(directory) = super::sessions::directory_of(app, &user).await? {
        return Err(ApiError::Conflict(format!(
            "this user's password is kept by the directory \"{}\": set it there",
            directory.name
        )));
    }
    // The rules of section 3, but not the user's password history: an answer that said "one
    // of their last passwords" would let an administrator test guesses of them.
    let hash = hash_new_password(app, "password", password, &user.email).await?;
    change(app, actor, move |c| {
        let user = users::get(c.tx, user_id)?;
        below_caller(c.actor(), &user)?;
        let ended = store_password(c, &user, &hash, true, true, None)?;
        c.audit_in(
            user.organization_id,
            "user.password_set",
            "user",
            user_id,
            Some(crate::domain::json_object(&[
                ("email", &user.email),
                ("sessions_ended", &ended.to_string()),
            ])),
        )?;
        Ok(())
    })
    .await
}

/// Writes a password and what follows from it in the same change: the journal entry that a
/// restore replays, a new session epoch, and the end of every session of the user but `keep`.
/// Returns how many sessions ended.
fn store_password(
    c: &mut Change<'_, '_>,
    user: &users::User,
    hash: &str,
    by_other: bool,
    temporary: bool,
    keep: Option<Id>,
) -> Result<usize, ApiError> {
    let user_id = user.id;
    users::set_password(c.tx, user_id, hash, by_other, temporary)?;
    c.journal(Revocation::PasswordSet {
        user_id,
        email: user.email.clone(),
        password_hash: hash.to_string(),
        by_other,
        temporary,
    });
    users::bump_session_epoch(c.tx, user_id)?;
    let ended = sessions::revoke_all_for_user(c.tx, user_id, keep)?;
    c.touch_all(Kind::Session, &ended);
    c.touch(Kind::User, user_id);
    Ok(ended.len())
}

/// A new password for a user, refused when it is weak or one of their last five.
pub async fn checked_new_password(
    app: &AppState,
    user: &users::User,
    field: &str,
    password: Secret,
) -> Result<String, ApiError> {
    app.hasher
        .check_strength(&password, &user.email)
        .map_err(|weak| ApiError::field(field, weak.0))?;
    let id = user.id;
    let history = app
        .store
        .read(move |c| users::recent_password_hashes(c, id, PASSWORD_HISTORY))
        .await?;
    for old in history {
        if app
            .hasher
            .verify(password.clone(), Some(old))
            .await
            .map_err(busy)?
        {
            return Err(ApiError::field(
                field,
                format!("must not be one of your last {PASSWORD_HISTORY} passwords"),
            ));
        }
    }
    app.hasher.hash(password).await.map_err(busy)
}

/// Turns MFA off for a user (administrators, the shell): they log in with the password alone.
/// Never one's own through here: that takes the password and a code
/// (`/auth/mfa/totp/disable/`), which a stolen access token does not carry.
pub async fn reset_mfa(app: &AppState, actor: &Actor, user_id: Id) -> Result<(), ApiError> {
    change(app, actor, move |c| {
        let user = users::get(c.tx, user_id)?;
        manageable(c, &user)?;
        if c.actor().principal().is_some_and(|p| p.user_id == user_id) {
            return Err(ApiError::denied(
                "you cannot reset your own MFA; turn it off with your password and a code \
                 (POST /api/v1/auth/mfa/totp/disable/)",
            ));
        }
        users::reset_mfa(c.tx, user_id)?;
        c.journal(Revocation::MfaReset {
            user_id,
            email: user.email.clone(),
        });
        c.audit_in(user.organization_id, "mfa.reset", "user", user_id, None)?;
        c.touch(Kind::User, user_id);
        Ok(())
    })
    .await
}

/// Ends a user's login lockout (10.6): their failed logins are forgotten and they may sign in
/// at once, on every server. The shared counts are cleared in the change's transaction; each
/// server drops its copy when it applies the user's feed entry (`feed::apply`), and this one,
/// whose own counts they are with one server, forgets them here.
pub async fn unlock(app: &AppState, actor: &Actor, user_id: Id) -> Result<(), ApiError> {
    let email = change(app, actor, move |c| {
        let user = users::get(c.tx, user_id)?;
        manageable(c, &user)?;
        if c.actor().principal().is_some_and(|p| p.user_id == user_id) {
            // Password re-checks inside a session count against the account: unlocking oneself
            // would give a stolen session endless guesses.
            return Err(ApiError::denied("you cannot unlock your own account"));
        }
        super::throttle::clear_account(c.tx, &user.email)?;
        c.audit_in(
            user.organization_id,
            "user.unlocked",
            "user",
            user_id,
            Some(crate::domain::json_object(&[("email", &user.email)])),
        )?;
        c.touch(Kind::User, user_id);
        Ok(user.email)
    })
    .await?;
    app.auth.throttle.unlock_account(&email);
    Ok(())
}

/// Renames the caller's organization; names are unique, ignoring case.
pub async fn rename_organization(
    app: &AppState,
    actor: &Actor,
    organization_id: Id,
    name: String,
) -> Result<organizations::Organization, ApiError> {
    change(app, actor, move |c| {
        let before = organizations::get(c.tx, organization_id)?;
        organizations::rename(c.tx, organization_id, &name)?;
        c.audit(
            "organization.renamed",
            "organization",
            organization_id,
            Some(crate::domain::json_object(&[
                ("from", &before.name),
                ("to", &name),
            ])),
        )?;
        c.touch(Kind::Organization, organization_id);
        Ok(organizations::get(c.tx, organization_id)?)
    })
    .await
}

/// Moves ownership to another active user of the organization; the old owner becomes an
/// administrator (a demotion, in force everywhere before this returns).
pub async fn transfer_ownership(
    app: &AppState,
    actor: &Actor,
    owner_id: Id,
    target_id: Id,
) -> Result<(), ApiError> {
    change(app, actor, move |c| {
        let owner = users::get(c.tx, owner_id)?;
        let target = match users::get(c.tx, target_id) {
            Ok(t) if t.organization_id == owner.organization_id && !t.service_account => t,
            Ok(_) | Err(crate::store::StoreError::NotFound) => {
                return Err(ApiError::field(
                    "user_id",
                    "no such user in your organization",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        if target.id == owner_id || !target.is_active {
            return Err(ApiError::field("user_id", "must be another, active user"));
        }
        // Demote first: the schema allows one owner at a time.
        users::set_role(c.tx, owner_id, Role::Administrator)?;
        users::set_role(c.tx, target_id, Role::Owner)?;
        c.journal(Revocation::OwnershipTransferred {
            organization_id: owner.organization_id,
            from_user_id: owner_id,
            from_email: owner.email.clone(),
            to_user_id: target_id,
            to_email: target.email.clone(),
        });
        c.audit("ownership.transferred", "user", target_id, None)?;
        c.touch(Kind::User, owner_id);
        c.touch(Kind::User, target_id);
        Ok(())
    })
    .await
}

/// The user with this email (shell commands name users by email).
pub async fn find_by_email(app: &AppState, email: &Email) -> Result<users::User, ApiError> {
    let wanted = email.clone();
    app.store
        .read(move |c| users::find_by_email(c, &wanted))
        .await?
        .ok_or_else(|| ApiError::field("email", format!("no user has the email {email}")))
}

/// On an empty database: the first organization and its owner, from `bootstrap.*` or with a
/// random password written to `<data_dir>/initial-admin-password` (mode 0600).
pub async fn bootstrap(app: &AppState) -> Result<(), StartError> {
    let existing = app.store.read(crate::store::users::count).await?;
    if existing > 0 {
        return Ok(());
    }
    let settings = &app.config.bootstrap;
    let (email, password, generated) = if settings.admin_email.is_empty() {
        let password = Alphanumeric.sample_string(&mut OsRng, 24);
        ("admin@localhost".to_string(), Secret::new(password), true)
    } else {
        (
            settings.admin_email.clone(),
            Secret::new(settings.admin_password.clone()),
            false,
        )
    };
    let email = Email::parse(&email)
        .map_err(|why| StartError::Setup(format!("bootstrap.admin_email {why}")))?;
    if !generated {
        app.hasher
            .check_strength(&password, email.as_str())
            .map_err(|weak| StartError::Setup(format!("bootstrap.admin_password {}", weak.0)))?;
    }
    let hash = app
        .hasher
        .hash(password.clone())
        .await
        .map_err(|e| StartError::Setup(e.to_string()))?;
    let organization = settings.organization.trim().to_string();
    create_organization(
        app,
        &Actor::System("bootstrap"),
        organization.clone(),
        email.clone(),
        "Administrator".into(),
        hash,
        if generated {
            OwnerPassword::Temporary
        } else {
            OwnerPassword::Own
        },
    )
    .await
    .map_err(|e| StartError::Setup(format!("creating the first organization: {e}")))?;
    if generated {
        let path = app.config.server.data_dir.join("initial-admin-password");
        crate::data_dir::write_private_file(&path, format!("{}\n", password.expose()).as_bytes())
            .map_err(StartError::Setup)?;
        tracing::warn!(
            "created organization {organization:?} with owner {email}; its password is in {} \
             (readable by this user only): log in and change it",
            path.display()
        );
    } else {
        tracing::info!("created organization {organization:?} with owner {email}");
    }
    Ok(())
}
