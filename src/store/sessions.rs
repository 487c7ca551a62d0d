//! The `sessions` table: one row per login, revoked on logout, reuse, password change.

use super::{args, Row};

use super::{Db, StoreError, StoreResult};
use crate::domain::{now, Id, UnixTime};

#[derive(Debug, Clone)]
pub struct Session {
    pub id: Id,
    pub user_id: Id,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub last_seen_at: UnixTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub revoked_at: Option<UnixTime>,
    /// The session's own random secret (hex), which its tokens carry; empty for sessions made
    /// before tokens carried one.
    pub secret: String,
    /// Opened while the organization required MFA its user did not have: until MFA is on, it
    /// opens only MFA enrolment and `me`.
    pub mfa_enrollment_required: bool,
}

pub struct NewSession<'a> {
    pub user_id: Id,
    pub expires_at: UnixTime,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub refresh_jti: &'a str,
    pub secret: &'a str,
    pub mfa_enrollment_required: bool,
}

const COLUMNS: &str =
    "id, user_id, created_at, expires_at, last_seen_at, ip, user_agent, revoked_at, secret, \
     mfa_enrollment_required";

fn from_row(row: &Row<'_>) -> StoreResult<Session> {
    Ok(Session {
        id: row.get(0)?,
        user_id: row.get(1)?,
        created_at: row.get(2)?,
        expires_at: row.get(3)?,
        last_seen_at: row.get(4)?,
        ip: row.get(5)?,
        user_agent: row.get(6)?,
        revoked_at: row.get(7)?,
        secret: row.get(8)?,
        mfa_enrollment_required: row.get(9)?,
    })
}

pub fn create(db: &Db<'_>, session: &NewSession<'_>) -> StoreResult<Session> {
    let at = now();
    let id = super::ids::next(db, super::ids::Counter::Sessions)?;
    db.execute(
        "INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at, ip, user_agent,
                               refresh_jti, secret, mfa_enrollment_required)
         VALUES (?7, ?1, ?2, ?3, ?2, ?4, ?5, ?6, ?8, ?9)",
        args![
            session.user_id,
            at,
            session.expires_at,
            session.ip,
            session
                .user_agent
                .map(|ua| ua.chars().take(256).collect::<String>()),
            session.refresh_jti,
            id,
            session.secret,
            session.mfa_enrollment_required
        ],
    )?;
    get(db, id)
}

pub fn get(db: &Db<'_>, id: Id) -> StoreResult<Session> {
    db.query_row(
        &format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1"),
        args![id],
        from_row,
    )
}

/// Sessions not past their end, revoked ones included: the live state keeps those as revoked,
/// so that a listing never leaves an older, unrevoked state of one behind.
pub fn unexpired(db: &Db<'_>) -> StoreResult<Vec<Session>> {
    db.query_map(
        &format!("SELECT {COLUMNS} FROM sessions WHERE expires_at > ?1"),
        args![now()],
        from_row,
    )
}

pub fn live_for_user(db: &Db<'_>, user_id: Id) -> StoreResult<Vec<Session>> {
    db.query_map(
        &format!(
            "SELECT {COLUMNS} FROM sessions
             WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 ORDER BY id"
        ),
        args![user_id, now()],
        from_row,
    )
}

/// Replaces the expected refresh jti if it is still `current`; `false` means the presented
/// token was already used (or the session is gone): a reuse.
pub fn rotate_refresh(db: &Db<'_>, id: Id, current: &str, next: &str) -> StoreResult<bool> {
    let changed = db.execute(
        "UPDATE sessions SET refresh_jti = ?3, last_seen_at = ?4
         WHERE id = ?1 AND refresh_jti = ?2 AND revoked_at IS NULL",
        args![id, current, next, now()],
    )?;
    Ok(changed == 1)
}

pub fn revoke(db: &Db<'_>, id: Id) -> StoreResult<()> {
    let changed = db.execute(
        "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        args![id, now()],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Revokes every live session of the user but `keep`; returns the ids revoked.
pub fn revoke_all_for_user(db: &Db<'_>, user_id: Id, keep: Option<Id>) -> StoreResult<Vec<Id>> {
    db.query_map(
        "UPDATE sessions SET revoked_at = ?3
         WHERE user_id = ?1 AND revoked_at IS NULL AND id IS DISTINCT FROM ?2 RETURNING id",
        args![user_id, keep, now()],
        |row| row.get(0),
    )
}

/// Revokes the user's live sessions beyond the `keep` newest; returns the ids revoked.
pub fn revoke_beyond(db: &Db<'_>, user_id: Id, keep: u32) -> StoreResult<Vec<Id>> {
    let at = now();
    let oldest_kept: Option<Id> = db.query_opt(
        "SELECT id FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2
         ORDER BY id DESC LIMIT 1 OFFSET ?3",
        args![user_id, at, i64::from(keep) - 1],
        |row| row.get(0),
    )?;
    let Some(oldest_kept) = oldest_kept else {
        return Ok(Vec::new());
    };
    db.query_map(
        "UPDATE sessions SET revoked_at = ?3
         WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?3 AND id < ?2
         RETURNING id",
        args![user_id, oldest_kept, at],
        |row| row.get(0),
    )
}

pub fn touch(db: &Db<'_>, id: Id, at: UnixTime) -> StoreResult<()> {
    db.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at < ?2",
        args![id, at],
    )?;
    Ok(())
}
