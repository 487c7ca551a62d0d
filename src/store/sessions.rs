//! The `sessions` table: one row per login, revoked on logout, reuse, password change.

use rusqlite::{params, Row};

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
    pub refresh_jti: String,
    pub revoked_at: Option<UnixTime>,
}

pub struct NewSession<'a> {
    pub user_id: Id,
    pub expires_at: UnixTime,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub refresh_jti: &'a str,
}

const COLUMNS: &str =
    "id, user_id, created_at, expires_at, last_seen_at, ip, user_agent, refresh_jti, revoked_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: row.get(0)?,
        user_id: row.get(1)?,
        created_at: row.get(2)?,
        expires_at: row.get(3)?,
        last_seen_at: row.get(4)?,
        ip: row.get(5)?,
        user_agent: row.get(6)?,
        refresh_jti: row.get(7)?,
        revoked_at: row.get(8)?,
    })
}

pub fn create(db: &Db<'_>, session: &NewSession<'_>) -> StoreResult<Session> {
    let at = now();
    db.conn.execute(
        "INSERT INTO sessions (user_id, created_at, expires_at, last_seen_at, ip, user_agent, refresh_jti)
         VALUES (?1, ?2, ?3, ?2, ?4, ?5, ?6)",
        params![
            session.user_id,
            at,
            session.expires_at,
            session.ip,
            session.user_agent.map(|ua| ua.chars().take(256).collect::<String>()),
            session.refresh_jti
        ],
    )?;
    get(db, db.conn.last_insert_rowid())
}

pub fn get(db: &Db<'_>, id: Id) -> StoreResult<Session> {
    Ok(db.conn.query_row(
        &format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1"),
        [id],
        from_row,
    )?)
}

/// Sessions not past their end, revoked ones included: the live state keeps those as revoked,
/// so that a listing never leaves an older, unrevoked state of one behind.
pub fn unexpired(db: &Db<'_>) -> StoreResult<Vec<Session>> {
    let mut stmt = db.conn.prepare(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE expires_at > ?1"
    ))?;
    let sessions = stmt
        .query_map([now()], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(sessions)
}

pub fn live_for_user(db: &Db<'_>, user_id: Id) -> StoreResult<Vec<Session>> {
    let mut stmt = db.conn.prepare(&format!(
        "SELECT {COLUMNS} FROM sessions
         WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 ORDER BY id"
    ))?;
    let sessions = stmt
        .query_map(params![user_id, now()], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(sessions)
}

/// Replaces the expected refresh jti if it is still `current`; `false` means the presented
/// token was already used (or the session is gone): a reuse.
pub fn rotate_refresh(db: &Db<'_>, id: Id, current: &str, next: &str) -> StoreResult<bool> {
    let changed = db.conn.execute(
        "UPDATE sessions SET refresh_jti = ?3, last_seen_at = ?4
         WHERE id = ?1 AND refresh_jti = ?2 AND revoked_at IS NULL",
        params![id, current, next, now()],
    )?;
    Ok(changed == 1)
}

pub fn revoke(db: &Db<'_>, id: Id) -> StoreResult<()> {
    let changed = db.conn.execute(
        "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now()],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Revokes every live session of the user but `keep`; returns the ids revoked.
pub fn revoke_all_for_user(db: &Db<'_>, user_id: Id, keep: Option<Id>) -> StoreResult<Vec<Id>> {
    let mut stmt = db.conn.prepare(
        "UPDATE sessions SET revoked_at = ?3
         WHERE user_id = ?1 AND revoked_at IS NULL AND id IS NOT ?2 RETURNING id",
    )?;
    let ids = stmt
        .query_map(params![user_id, keep, now()], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

pub fn touch(db: &Db<'_>, id: Id, at: UnixTime) -> StoreResult<()> {
    db.conn.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at < ?2",
        params![id, at],
    )?;
    Ok(())
}
