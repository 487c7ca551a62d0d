//! After a backup is put back: every entry the journal holds from after the backup was taken
//! is made again, in feed order, in one change, so that no revoked key, ended session,
//! deactivated user, replaced password, reset MFA, demotion or revoked link comes back with the
//! old database; and the id counters move past every id handed out since, so that no new
//! session, key or link takes the id of one that was ended after the backup.

use super::journal::{Entry, Revocation};
use super::{change, Actor, Change};
use crate::domain::{Id, Role};
use crate::error::ApiError;
use crate::ops::AppState;
use crate::store::audit::{self, Outcome};
use crate::store::feed::{self, Kind};
use crate::store::ids::{self, Counter};
use crate::store::{api_keys, organizations, passkeys, public_links, sessions, users, StoreError};

/// What re-applying the journal did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reapplied {
    /// Entries after the backup's feed position.
    pub considered: usize,
    /// Of those, the ones that changed something (the others were already so, or name an
    /// object the backup does not hold).
    pub applied: usize,
}

fn found<T>(result: Result<T, StoreError>) -> Result<Option<T>, ApiError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The user `user_id` of the restored database if it is still the one the journal names.
fn same_user(
    c: &Change<'_, '_>,
    user_id: Id,
    email: &str,
) -> Result<Option<users::User>, ApiError> {
    Ok(found(users::get(c.tx, user_id))?.filter(|u| u.email.eq_ignore_ascii_case(email)))
}

/// Where the restored installation's counters must start: past every position and id the
/// replaced database, the backup and the journal know of.
#[derive(Debug, Clone, Default)]
pub struct Floors {
    /// The feed head after the restore.
    pub position: i64,
    /// The last id of each counter already handed out somewhere.
    pub ids: Vec<(Counter, Id)>,
    /// The last audit entry's id the replaced log had handed out (and a SIEM may hold).
    pub audit_id: Id,
}

/// Re-applies the journal's `entries` made after `backup_position` in feed order (`entries`
/// is sorted so by `journal::read`), moves the feed head and the id counters to `floors`,
/// and records a `backup.restored` entry in the audit log of every organization.
pub async fn reapply(
    app: &AppState,
    file: String,
    backup_position: i64,
    entries: Vec<Entry>,
    floors: Floors,
) -> Result<Reapplied, ApiError> {
    let actor = Actor::System("restore");
    change(app, &actor, move |c| {
        let later: Vec<&Entry> = entries.iter().filter(|e| e.seq > backup_position).collect();
        let mut done = Reapplied {
            considered: later.len(),
            applied: 0,
        };
        for entry in &later {
            let applied = match &entry.revocation {
                Revocation::ApiKey { id, prefix } => match found(api_keys::get(c.tx, *id))? {
                    Some(key) if key.prefix == *prefix && key.revoked_at.is_none() => {
                        api_keys::revoke(c.tx, *id, None)?;
                        c.touch(Kind::ApiKey, *id);
                        true
                    }
                    _ => false,
                },
                Revocation::ApiKeyLimited {
                    id,
                    prefix,
                    expires_at,
                    allowed_ips,
                } => match found(api_keys::get(c.tx, *id))? {
                    Some(key) if key.prefix == *prefix && key.revoked_at.is_none() => {
                        let changed =
                            api_keys::limit(c.tx, *id, *expires_at, allowed_ips.as_deref())?;
                        if changed {
                            c.touch(Kind::ApiKey, *id);
                        }
                        changed
                    }
                    _ => false,
                },
                Revocation::Session { id, user_id } => match found(sessions::get(c.tx, *id))? {
                    Some(s) if s.user_id == *user_id && s.revoked_at.is_none() => {
                        sessions::revoke(c.tx, *id)?;
                        c.touch(Kind::Session, *id);
                        true
                    }
                    _ => false,
                },
                Revocation::Deactivation { user_id, email } => {
                    match same_user(c, *user_id, email)? {
                        Some(u) if u.is_active => {
                            users::set_active(c.tx, u.id, false)?;
                            users::bump_session_epoch(c.tx, u.id)?;
                            let ended = sessions::revoke_all_for_user(c.tx, u.id, None)?;
                            let revoked = api_keys::revoke_all_for_user(c.tx, u.id, None)?;
                            c.touch_all(Kind::Session, &ended);
                            c.touch_all(Kind::ApiKey, &revoked);
                            c.touch(Kind::User, u.id);
                            true
                        }
                        _ => false,
                    }
                }
                Revocation::PasswordSet {
                    user_id,
                    email,
                    password_hash,
                    by_other,
                    temporary,
                } => match same_user(c, *user_id, email)? {
                    Some(u) if u.password_hash != *password_hash => {
                        users::set_password(c.tx, u.id, password_hash, *by_other, *temporary)?;
                        // Every session of the backup was opened with an older password.
                        users::bump_session_epoch(c.tx, u.id)?;
                        let ended = sessions::revoke_all_for_user(c.tx, u.id, None)?;
                        c.touch_all(Kind::Session, &ended);
                        c.touch(Kind::User, u.id);
                        true
                    }
                    _ => false,
                },
                Revocation::MfaReset { user_id, email } => match same_user(c, *user_id, email)? {
                    Some(u) if u.mfa_enabled => {
                        users::reset_mfa(c.tx, u.id)?;
                        c.touch(Kind::User, u.id);
                        true
                    }
                    _ => false,
                },
                Revocation::TotpDisabled { user_id, email } => {
                    match same_user(c, *user_id, email)? {
                        Some(u) if users::totp_enabled(c.tx, u.id)? => {
                            users::disable_totp(c.tx, u.id)?;
                            c.touch(Kind::User, u.id);
                            true
                        }
                        _ => false,
                    }
                }
                Revocation::PasskeyRemoved {
                    user_id,
                    email,
                    credential_id,
                } => match same_user(c, *user_id, email)? {
                    Some(u) if passkeys::delete_by_credential_id(c.tx, u.id, credential_id)? => {
                        users::refresh_mfa(c.tx, u.id)?;
                        c.touch(Kind::User, u.id);
                        true
                    }
                    _ => false,
                },
                Revocation::RoleChanged {
                    user_id,
                    email,
                    role,
                } => {
                    let role = role.parse::<Role>().ok();
                    match (same_user(c, *user_id, email)?, role) {
                        // Ownership moves only by its own entries.
                        (Some(u), Some(role))
                            if u.role != role && u.role != Role::Owner && role != Role::Owner =>
                        {
                            users::set_role(c.tx, u.id, role)?;
                            c.touch(Kind::User, u.id);
                            true
                        }
                        _ => false,
                    }
                }
                Revocation::OwnershipTransferred {
                    organization_id,
                    from_user_id,
                    from_email,
                    to_user_id,
                    to_email,
                } => match (
                    same_user(c, *from_user_id, from_email)?,
                    same_user(c, *to_user_id, to_email)?,
                ) {
                    (Some(from), Some(to))
                        if from.role == Role::Owner
                            && from.organization_id == *organization_id
                            && to.organization_id == *organization_id =>
                    {
                        users::set_role(c.tx, from.id, Role::Administrator)?;
                        users::set_role(c.tx, to.id, Role::Owner)?;
                        c.touch(Kind::User, from.id);
                        c.touch(Kind::User, to.id);
                        true
                    }
                    _ => false,
                },
                Revocation::PublicLinkRevoked { id, token_sha256 } => {
                    public_links::revoke_if_same(c.tx, *id, token_sha256)?
                }
            };
            done.applied += usize::from(applied);
        }
        // Positions handed out after the backup stay taken, by the journal's entries and by the
        // replaced database alike: the caller's `floors` lie past all of them, so that "after
        // the backup" keeps its meaning for every later restore, and no session, key or link
        // id is handed out twice.
        feed::advance_to(c.tx, floors.position)?;
        for counter in Counter::ALL {
            let journaled = entries
                .iter()
                .filter_map(|e| e.revocation.numbered())
                .filter(|(of, _)| *of == counter)
                .map(|(_, id)| id);
            let known = floors
                .ids
                .iter()
                .filter(|(of, _)| *of == counter)
                .map(|(_, id)| *id);
            let last = journaled
                .chain(known)
                .chain([ids::highest(c.tx, counter)?])
                .max()
                .unwrap_or(0);
            ids::move_past(c.tx, counter, last)?;
        }
        // The servers the backup saw are not running on this database (restore holds the data
        // directory's lock): none of them is waited for.
        feed::prune_servers(c.tx, i64::MAX)?;
        let details = crate::domain::json_object(&[
            ("file", &file),
            ("backup_position", &backup_position.to_string()),
            ("reapplied", &done.applied.to_string()),
        ]);
        // Numbered past every entry the replaced log had: those after the backup may already
        // be at a SIEM, and an id is never reused for other content.
        for (org, _) in organizations::names(c.tx)? {
            let mut entry = c.actor().entry("backup.restored", Outcome::Success);
            entry.organization_id = Some(org);
            entry.target_type = Some("organization");
            entry.target_id = Some(org);
            entry.details = details.clone();
            audit::record_past(c.tx, &entry, floors.audit_id)?;
        }
        Ok(done)
    })
    .await
}
