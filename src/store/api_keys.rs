//! The `api_keys` table. Usage counts arrive in batches from the live state.

use rusqlite::{params, Row};

use super::{Count, Db, StoreResult};
use crate::domain::{now, Id, UnixTime};

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: Id,
    pub user_id: Id,
    pub organization_id: Id,
    pub name: String,
    pub description: String,
    pub key_hash: String,
    pub prefix: String,
    /// Space-separated scope names; `None`: full permissions.
    pub scopes: Option<String>,
    pub expires_in_days: Option<i64>,
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
    pub last_used_at: Option<UnixTime>,
    pub usage_count: i64,
}

pub struct NewApiKey<'a> {
    pub user_id: Id,
    pub organization_id: Id,
    pub name: &'a str,
    pub description: &'a str,
    pub key_hash: &'a str,
    pub prefix: &'a str,
    pub scopes: Option<&'a str>,
    pub expires_in_days: Option<i64>,
}

const COLUMNS: &str = "id, user_id, organization_id, name, description, key_hash, prefix, scopes, \
                       expires_in_days, created_at, expires_at, revoked_at, last_used_at, usage_count";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(0)?,
        user_id: row.get(1)?,
        organization_id: row.get(2)?,
        name: row.get(3)?,
        description: row.get(4)?,
        key_hash: row.get(5)?,
        prefix: row.get(6)?,
        scopes: row.get(7)?,
        expires_in_days: row.get(8)?,
        created_at: row.get(9)?,
        expires_at: row.get(10)?,
        revoked_at: row.get(11)?,
        last_used_at: row.get(12)?,
        usage_count: row.get(13)?,
    })
}

pub fn create(db: &Db<'_>, key: &NewApiKey<'_>) -> StoreResult<ApiKey> {
    let at = now();
    let expires_at = key.expires_in_days.map(|days| at + days * 86_400);
    db.conn.execute(
        "INSERT INTO api_keys (user_id, organization_id, name, description, key_hash, prefix,
                               scopes, expires_in_days, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            key.user_id,
            key.organization_id,
            key.name,
            key.description,
            key.key_hash,
            key.prefix,
            key.scopes,
            key.expires_in_days,
            at,
            expires_at
        ],
    )?;
    get(db, db.conn.last_insert_rowid())
}

pub fn get(db: &Db<'_>, id: Id) -> StoreResult<ApiKey> {
    Ok(db.conn.query_row(
        &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
        [id],
        from_row,
    )?)
}

/// Every key that could still authenticate or answer `revoked`/`expired`.
pub fn all(db: &Db<'_>) -> StoreResult<Vec<ApiKey>> {
    let mut stmt = db
        .conn
        .prepare(&format!("SELECT {COLUMNS} FROM api_keys"))?;
    let keys = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(keys)
}

/// One page of a user's keys (or, with `user_id` None, of the organization's), newest first.
pub fn page(
    db: &Db<'_>,
    organization_id: Id,
    user_id: Option<Id>,
    offset: u64,
    limit: u64,
) -> StoreResult<(u64, Vec<ApiKey>)> {
    super::page(
        db,
        Count::Query(
            "SELECT COUNT(*) FROM api_keys WHERE organization_id = ?1 AND user_id IS COALESCE(?2, user_id)",
        ),
        &format!(
            "SELECT {COLUMNS} FROM api_keys
             WHERE organization_id = ?1 AND user_id IS COALESCE(?2, user_id)
             ORDER BY id DESC LIMIT ?3 OFFSET ?4"
        ),
        &[&organization_id, &user_id],
        offset,
        limit,
        from_row,
    )
}

/// Revokes the key; `false` when it was already revoked.
pub fn revoke(db: &Db<'_>, id: Id, by: Option<Id>) -> StoreResult<bool> {
    let changed = db.conn.execute(
        "UPDATE api_keys SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now(), by],
    )?;
    Ok(changed == 1)
}

/// Revokes every live key of a user (deactivation); returns their ids.
pub fn revoke_all_for_user(db: &Db<'_>, user_id: Id, by: Option<Id>) -> StoreResult<Vec<Id>> {
    let mut stmt = db.conn.prepare(
        "UPDATE api_keys SET revoked_at = ?2, revoked_by = ?3
         WHERE user_id = ?1 AND revoked_at IS NULL RETURNING id",
    )?;
    let ids = stmt
        .query_map(params![user_id, now(), by], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

pub fn find_by_prefix(db: &Db<'_>, prefix: &str) -> StoreResult<Vec<ApiKey>> {
    let mut stmt = db
        .conn
        .prepare(&format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = ?1"))?;
    let keys = stmt
        .query_map([prefix], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(keys)
}

/// Adds counted uses: `(id, uses, last_used_at)`.
pub fn record_usage(db: &Db<'_>, usage: &[(Id, u64, UnixTime)]) -> StoreResult<()> {
    let mut stmt = db.conn.prepare(
        "UPDATE api_keys SET usage_count = usage_count + ?2,
                             last_used_at = MAX(COALESCE(last_used_at, 0), ?3)
         WHERE id = ?1",
    )?;
    for (id, uses, at) in usage {
        stmt.execute(params![id, *uses as i64, at])?;
    }
    Ok(())
}
