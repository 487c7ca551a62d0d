//! The `api_keys` table. Usage counts arrive in batches from the live state.

use super::{args, Row};

use super::{Db, StoreResult};
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
    /// The key that replaced this one in a rotation.
    pub replaced_by: Option<Id>,
    /// Space-separated networks the key may be used from; `None`: any address.
    pub allowed_ips: Option<String>,
    /// A decoy: every use is refused as an unknown key and audited.
    pub canary: bool,
    pub last_used_ip: Option<String>,
    pub last_used_user_agent: Option<String>,
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
    pub allowed_ips: Option<&'a str>,
    pub canary: bool,
}

const COLUMNS: &str = "id, user_id, organization_id, name, description, key_hash, prefix, scopes, \
                       expires_in_days, created_at, expires_at, revoked_at, last_used_at, usage_count, \
                       replaced_by, allowed_ips, canary, last_used_ip, last_used_user_agent";

fn from_row(row: &Row<'_>) -> StoreResult<ApiKey> {
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
        replaced_by: row.get(14)?,
        allowed_ips: row.get(15)?,
        canary: row.get(16)?,
        last_used_ip: row.get(17)?,
        last_used_user_agent: row.get(18)?,
    })
}

pub fn create(db: &Db<'_>, key: &NewApiKey<'_>) -> StoreResult<ApiKey> {
    let at = now();
    let expires_at = key.expires_in_days.map(|days| at + days * 86_400);
    let id = super::ids::next(db, super::ids::Counter::ApiKeys)?;
    db.execute(
        "INSERT INTO api_keys (id, user_id, organization_id, name, description, key_hash, prefix,
                               scopes, expires_in_days, created_at, expires_at, allowed_ips, canary)
         VALUES (?13, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        args![
            key.user_id,
            key.organization_id,
            key.name,
            key.description,
            key.key_hash,
            key.prefix,
            key.scopes,
            key.expires_in_days,
            at,
            expires_at,
            key.allowed_ips,
            key.canary,
            id
        ],
    )?;
    count(db, key.organization_id, key.user_id, 1, 0)?;
    get(db, id)
}

pub fn get(db: &Db<'_>, id: Id) -> StoreResult<ApiKey> {
    db.query_row(
        &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
        args![id],
        from_row,
    )
}

/// Every key that could still authenticate or answer `revoked`/`expired`.
pub fn all(db: &Db<'_>) -> StoreResult<Vec<ApiKey>> {
    db.query_map(
        &format!("SELECT {COLUMNS} FROM api_keys"),
        args![],
        from_row,
    )
}

/// A key's status at a time, for lists filtered by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Expired,
    Revoked,
}

/// A key's state as the indexes `api_keys_by_state` and `api_keys_by_owner_state` hold it: 0
/// live (active or expired), 1 revoked.
const STATE: &str = "(CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END)";

/// One page of a user's keys (or, with `user_id` None, of the organization's), only those of
/// `status` when given, and only the active ones expiring by `expiring_by` when given,
/// searched by name, prefix and the owner's email.
///
/// Without a search or `expiring_by`, the total is read from `key_counts` (the expired keys
/// counted through the live keys' expiry index), and each status's page walks an index of
/// its own keys.
pub fn page(
    db: &Db<'_>,
    organization_id: Id,
    user_id: Option<Id>,
    status: Option<Status>,
    expiring_by: Option<UnixTime>,
    listing: &super::Listing,
) -> StoreResult<(u64, Vec<ApiKey>)> {
    let at = now();
    let mut filter = String::from("organization_id = ?1");
    let mut params: Vec<&dyn super::sql::Param> = vec![&organization_id];
    if let Some(user_id) = &user_id {
        params.push(user_id);
        filter.push_str(&format!(" AND user_id = ?{}", params.len()));
    }
    if matches!(status, Some(Status::Expired | Status::Active)) || expiring_by.is_some() {
        params.push(&at);
    }
    let now_at = params.len();
    filter.push_str(&match status {
        None => String::new(),
        // As the indexes of the keys by state say it (schema v22), on both databases.
        Some(Status::Revoked) => format!(" AND {STATE} = 1"),
        Some(Status::Expired) => {
            format!(" AND {STATE} = 0 AND expires_at IS NOT NULL AND expires_at <= ?{now_at}")
        }
        Some(Status::Active) => {
            format!(" AND {STATE} = 0 AND (expires_at IS NULL OR expires_at > ?{now_at})")
        }
    });
    if let Some(by) = &expiring_by {
        // Keys to act on: not already replaced in a rotation, not decoys.
        params.push(by);
        filter.push_str(&format!(
            " AND revoked_at IS NULL AND expires_at > ?{now_at} AND expires_at <= ?{} \
             AND replaced_by IS NULL AND canary = 0",
            params.len()
        ));
    }
    let kept = match (&listing.search, expiring_by) {
        (None, None) => Some(kept_total(user_id.is_some(), status, now_at)),
        _ => None,
    };
    super::list(
        db,
        super::ListOf {
            from: "api_keys",
            columns: COLUMNS,
            filter: &filter,
            params: &params,
            id: "id",
            searched: &[
                "name",
                "prefix",
                "(SELECT u.email FROM users u WHERE u.id = api_keys.user_id)",
            ],
            kept: kept.as_deref(),
            row: from_row,
        },
        listing,
    )
}

/// The SQL of how many of the organization's keys (?1), or of the owner's (?2, `by_owner`),
/// have `status` (all with `None`) at ?`now_at`: the kept totals, less the live keys that have
/// expired by then, counted over their expiry index.
fn kept_total(by_owner: bool, status: Option<Status>, now_at: usize) -> String {
    let owner = if by_owner { "?2" } else { "0" };
    let kept = |field: &str| {
        format!(
            "COALESCE((SELECT {field} FROM key_counts \
             WHERE organization_id = ?1 AND user_id = {owner}), 0)"
        )
    };
    let whose = if by_owner {
        "user_id = ?2 AND organization_id = ?1"
    } else {
        "organization_id = ?1"
    };
    let expired = format!(
        "(SELECT COUNT(*) FROM api_keys \
         WHERE {whose} AND revoked_at IS NULL AND expires_at <= ?{now_at})"
    );
    match status {
        None => kept("keys"),
        Some(Status::Revoked) => kept("revoked"),
        Some(Status::Expired) => expired,
        Some(Status::Active) => format!("({} - {} - {expired})", kept("keys"), kept("revoked")),
    }
}

/// Revokes the key; `false` when it was already revoked.
pub fn revoke(db: &Db<'_>, id: Id, by: Option<Id>) -> StoreResult<bool> {
    let owner: Option<(Id, Id)> = db.query_opt(
        "UPDATE api_keys SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1 AND revoked_at IS NULL
         RETURNING organization_id, user_id",
        args![id, now(), by],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    match owner {
        Some((organization_id, user_id)) => {
            count(db, organization_id, user_id, 0, 1)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Revokes every live key of a user (deactivation); returns their ids.
pub fn revoke_all_for_user(db: &Db<'_>, user_id: Id, by: Option<Id>) -> StoreResult<Vec<Id>> {
    let revoked: Vec<(Id, Id)> = db.query_map(
        "UPDATE api_keys SET revoked_at = ?2, revoked_by = ?3
         WHERE user_id = ?1 AND revoked_at IS NULL RETURNING id, organization_id",
        args![user_id, now(), by],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if let Some(&(_, organization_id)) = revoked.first() {
        count(db, organization_id, user_id, 0, revoked.len() as i64)?;
    }
    Ok(revoked.into_iter().map(|(id, _)| id).collect())
}

/// Moves the kept totals of the owner's keys and of the organization's (`key_counts`, user 0)
/// by `keys` created and `revoked`.
fn count(
    db: &Db<'_>,
    organization_id: Id,
    user_id: Id,
    keys: i64,
    revoked: i64,
) -> StoreResult<()> {
    for owner in [user_id, 0] {
        db.execute(
            "INSERT INTO key_counts (organization_id, user_id, keys, revoked) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (organization_id, user_id) DO UPDATE
             SET keys = key_counts.keys + ?3, revoked = key_counts.revoked + ?4",
            args![organization_id, owner, keys, revoked],
        )?;
    }
    Ok(())
}

pub fn find_by_prefix(db: &Db<'_>, prefix: &str) -> StoreResult<Vec<ApiKey>> {
    db.query_map(
        &format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = ?1"),
        args![prefix],
        from_row,
    )
}

/// Takes `old` out of service for its successor, if nobody did first: at once (`overlap`
/// 0, revoked) or at the end of the overlap (its expiry brought forward, never put back).
/// `false` when the key was already revoked or replaced.
pub fn replace(
    db: &Db<'_>,
    old: Id,
    successor: Id,
    overlap_secs: i64,
    by: Option<Id>,
) -> StoreResult<bool> {
    let at = now();
    let changed = if overlap_secs == 0 {
        let owner: Option<(Id, Id)> = db.query_opt(
            "UPDATE api_keys SET revoked_at = ?2, revoked_by = ?3, replaced_by = ?4
             WHERE id = ?1 AND revoked_at IS NULL AND replaced_by IS NULL
             RETURNING organization_id, user_id",
            args![old, at, by, successor],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if let Some((organization_id, user_id)) = owner {
            count(db, organization_id, user_id, 0, 1)?;
        }
        u64::from(owner.is_some())
    } else {
        let until = at.saturating_add(overlap_secs);
        db.execute(
            "UPDATE api_keys
             SET expires_at = CASE WHEN expires_at < ?2 THEN expires_at ELSE ?2 END, replaced_by = ?3
             WHERE id = ?1 AND revoked_at IS NULL AND replaced_by IS NULL",
            args![old, until, successor],
        )?
    };
    Ok(changed == 1)
}

/// The editable fields: name, description and the address allowlist.
pub fn update(
    db: &Db<'_>,
    id: Id,
    name: &str,
    description: &str,
    allowed_ips: Option<&str>,
) -> StoreResult<()> {
    db.execute(
        "UPDATE api_keys SET name = ?2, description = ?3, allowed_ips = ?4 WHERE id = ?1",
        args![id, name, description, allowed_ips],
    )?;
    Ok(())
}

/// Puts limits back on a live key (a restore): its end no later than `until`, and the
/// allowlist `allowed_ips` if one is given. `true` when something changed.
pub fn limit(
    db: &Db<'_>,
    id: Id,
    until: Option<UnixTime>,
    allowed_ips: Option<&str>,
) -> StoreResult<bool> {
    let changed = db.execute(
        "UPDATE api_keys
         SET expires_at = CASE WHEN CAST(?2 AS BIGINT) IS NULL OR expires_at < ?2
                               THEN expires_at ELSE ?2 END,
             allowed_ips = COALESCE(CAST(?3 AS TEXT), allowed_ips)
         WHERE id = ?1 AND revoked_at IS NULL
           AND ((CAST(?2 AS BIGINT) IS NOT NULL AND (expires_at IS NULL OR expires_at > ?2))
                OR (CAST(?3 AS TEXT) IS NOT NULL AND allowed_ips IS DISTINCT FROM ?3))",
        args![id, until, allowed_ips],
    )?;
    Ok(changed == 1)
}

/// The keys whose SHA-256 (hex) is one of `hashes`.
pub fn find_by_hashes(db: &Db<'_>, hashes: &[String]) -> StoreResult<Vec<ApiKey>> {
    let select = format!("SELECT {COLUMNS} FROM api_keys WHERE key_hash = ?1");
    let mut keys = Vec::new();
    for hash in hashes {
        keys.extend(db.query_opt(&select, args![hash], from_row)?);
    }
    Ok(keys)
}

pub use crate::domain::KeyUsage;

/// Adds counted uses.
pub fn record_usage(db: &Db<'_>, usage: &[KeyUsage]) -> StoreResult<()> {
    for u in usage {
        db.execute(
            "UPDATE api_keys
             SET usage_count = usage_count + ?2,
                 last_used_at = CASE WHEN last_used_at > ?3 THEN last_used_at ELSE ?3 END
             WHERE id = ?1",
            args![u.id, u.uses, u.last_used_at],
        )?;
        if let Some((ip, user_agent)) = &u.last_client {
            db.execute(
                "UPDATE api_keys SET last_used_ip = ?2, last_used_user_agent = ?3 WHERE id = ?1",
                args![u.id, ip, user_agent],
            )?;
        }
    }
    Ok(())
}

/// Adds counted uses of scopes: `(key id, scope, uses, last used at)`.
pub fn record_scope_usage(db: &Db<'_>, usage: &[(Id, &str, u64, UnixTime)]) -> StoreResult<()> {
    for (id, scope, uses, at) in usage {
        db.execute(
            "INSERT INTO api_key_scope_usage (api_key_id, scope, count, last_used_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (api_key_id, scope) DO UPDATE
             SET count = api_key_scope_usage.count + excluded.count,
                 last_used_at = CASE WHEN api_key_scope_usage.last_used_at > excluded.last_used_at
                                     THEN api_key_scope_usage.last_used_at
                                     ELSE excluded.last_used_at END",
            args![id, scope, uses, at],
        )?;
    }
    Ok(())
}

/// Per key: `(scope, uses, last used at)` of each scope it used at least once.
pub type ScopeUsage = std::collections::HashMap<Id, Vec<(String, i64, UnixTime)>>;

/// The scope usage of the keys `ids`.
pub fn scope_usage(db: &Db<'_>, ids: &[Id]) -> StoreResult<ScopeUsage> {
    let mut out: ScopeUsage = std::collections::HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    // One query for the whole page, not one per key.
    let params: Vec<&dyn super::sql::Param> =
        ids.iter().map(|id| id as &dyn super::sql::Param).collect();
    let rows: Vec<(Id, String, i64, UnixTime)> = db.query_map(
        &format!(
            "SELECT api_key_id, scope, count, last_used_at FROM api_key_scope_usage
             WHERE api_key_id IN ({})",
            super::placeholders(1, ids.len())
        ),
        &params,
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    for (id, scope, count, at) in rows {
        out.entry(id).or_default().push((scope, count, at));
    }
    Ok(out)
}

/// The organization's keys usable now (neither revoked nor expired), oldest first.
pub fn usable_of_organization(db: &Db<'_>, organization_id: Id) -> StoreResult<Vec<ApiKey>> {
    db.query_map(
        &format!(
            "SELECT {COLUMNS} FROM api_keys WHERE organization_id = ?1 AND revoked_at IS NULL
             AND (expires_at IS NULL OR expires_at > ?2) ORDER BY id"
        ),
        args![organization_id, now()],
        from_row,
    )
}
