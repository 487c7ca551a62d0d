//! After a backup is put back: every revocation the journal holds from after the backup was
//! taken is made again, in one change, so that no revoked key, ended session or deactivated
//! user comes back with the old database.

use super::journal::{Entry, Revocation};
use super::{change, Actor};
use crate::app::AppState;
use crate::error::ApiError;
use crate::store::feed::{self, Kind};
use crate::store::{api_keys, organizations, sessions, users, StoreError};

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

/// Re-applies the journal's `entries` made after `backup_position`, moves the feed head to
/// `next_position`, and records a `backup.restored` entry in the audit log of every
/// organization.
pub async fn reapply(
    app: &AppState,
    file: String,
    backup_position: i64,
    entries: Vec<Entry>,
    next_position: i64,
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
                    match found(users::get(c.tx, *user_id))? {
                        Some(u) if u.email.eq_ignore_ascii_case(email) && u.is_active => {
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
            };
            done.applied += usize::from(applied);
        }
        // Positions handed out after the backup stay taken, by the journal's entries and by the
        // replaced database alike: the caller's `next_position` lies past all of them, so that
        // "after the backup" keeps its meaning for every later restore.
        feed::advance_to(c.tx, next_position)?;
        // The servers the backup saw are not running on this database (restore holds the data
        // directory's lock): none of them is waited for.
        feed::prune_servers(c.tx, i64::MAX)?;
        let details = crate::domain::json_object(&[
            ("file", &file),
            ("backup_position", &backup_position.to_string()),
            ("reapplied", &done.applied.to_string()),
        ]);
        for (org, _) in organizations::names(c.tx)? {
            c.audit_in(
                org,
                "backup.restored",
                "organization",
                org,
                Some(details.clone()),
            )?;
        }
        Ok(done)
    })
    .await
}
