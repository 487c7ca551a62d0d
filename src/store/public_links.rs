//! The `public_links` table: share tokens of reports and dashboards, at most one working per
//! resource, with their expiry and view counts.

use super::{args, Row};

use super::{Db, StoreResult};
use crate::domain::{now, Id, UnixTime};

/// What a public link shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    Report,
    Dashboard,
}

impl Shared {
    /// The `resource_type` column's value, also the audit entries' target type.
    pub fn as_str(self) -> &'static str {
        match self {
            Shared::Report => "report",
            Shared::Dashboard => "dashboard",
        }
    }
}

/// The shared report or dashboard exists in the organization (`NotFound` otherwise).
pub fn shared_exists(db: &Db<'_>, organization_id: Id, shared: Shared, id: Id) -> StoreResult<()> {
    match shared {
        Shared::Report => super::reports::get(db, organization_id, id).map(|_| ()),
        Shared::Dashboard => super::dashboards::get(db, organization_id, id).map(|_| ()),
    }
}

#[derive(Debug, Clone)]
pub struct PublicLink {
    pub id: Id,
    pub organization_id: Id,
    pub resource_id: Id,
    pub token: String,
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    pub view_count: i64,
}

const COLUMNS: &str = "id, organization_id, resource_id, token, created_at, expires_at, view_count";

fn from_row(row: &Row<'_>) -> StoreResult<PublicLink> {
    Ok(PublicLink {
        id: row.get(0)?,
        organization_id: row.get(1)?,
        resource_id: row.get(2)?,
        token: row.get(3)?,
        created_at: row.get(4)?,
        expires_at: row.get(5)?,
        view_count: row.get(6)?,
    })
}

/// A link revoked by a change (for the revocation journal).
#[derive(Debug, Clone)]
pub struct Revoked {
    pub id: Id,
    pub token: String,
}

/// A new link for the resource, replacing (revoking) the one it had, and the links it revoked.
pub fn create(
    db: &Db<'_>,
    organization_id: Id,
    resource_type: &str,
    resource_id: Id,
    token: &str,
    expires_at: Option<UnixTime>,
    created_by: Id,
) -> StoreResult<(PublicLink, Vec<Revoked>)> {
    let replaced = revoke_all(db, resource_type, resource_id)?;
    let id = super::ids::next(db, super::ids::Counter::PublicLinks)?;
    let link = db.query_row(
        &format!(
            "INSERT INTO public_links (id, organization_id, resource_type, resource_id, token, created_by, created_at, expires_at)
             VALUES (?8, ?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {COLUMNS}"
        ),
        args![organization_id, resource_type, resource_id, token, created_by, now(), expires_at, id],
        from_row,
    )?;
    Ok((link, replaced))
}

/// The resource's link that still works, if any.
pub fn current(db: &Db<'_>, resource_type: &str, resource_id: Id) -> StoreResult<PublicLink> {
    db.query_row(
        &format!(
            "SELECT {COLUMNS} FROM public_links
             WHERE resource_type = ?1 AND resource_id = ?2 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > ?3)
             ORDER BY id DESC LIMIT 1"
        ),
        args![resource_type, resource_id, now()],
        from_row,
    )
}

/// Revokes every unrevoked link of the resource (a new link replaces them; a deleted resource
/// takes them along).
pub(super) fn revoke_all(
    db: &Db<'_>,
    resource_type: &str,
    resource_id: Id,
) -> StoreResult<Vec<Revoked>> {
    db.query_map(
        "UPDATE public_links SET revoked_at = ?3
         WHERE resource_type = ?1 AND resource_id = ?2 AND revoked_at IS NULL
         RETURNING id, token",
        args![resource_type, resource_id, now()],
        |r| {
            Ok(Revoked {
                id: r.get(0)?,
                token: r.get(1)?,
            })
        },
    )
}

/// Revokes the resource's working link (and any other it still had); `NotFound` when there is
/// no working one.
pub fn revoke(db: &Db<'_>, resource_type: &str, resource_id: Id) -> StoreResult<Vec<Revoked>> {
    current(db, resource_type, resource_id)?;
    revoke_all(db, resource_type, resource_id)
}

/// Revokes link `id` if it still works and its token hashes to `token_sha256` (a restore
/// re-applying the journal); whether it did.
pub fn revoke_if_same(db: &Db<'_>, id: Id, token_sha256: &str) -> StoreResult<bool> {
    use sha2::{Digest, Sha256};
    let token: Option<String> = db.query_opt(
        "SELECT token FROM public_links WHERE id = ?1 AND revoked_at IS NULL",
        args![id],
        |r| r.get(0),
    )?;
    let same =
        token.is_some_and(|t| crate::domain::hex(&Sha256::digest(t.as_bytes())) == token_sha256);
    if same {
        db.execute(
            "UPDATE public_links SET revoked_at = ?2 WHERE id = ?1",
            args![id, now()],
        )?;
    }
    Ok(same)
}

/// Resolves a token to its working link (a read: views are counted in memory).
pub fn find(db: &Db<'_>, resource_type: &str, token: &str) -> StoreResult<PublicLink> {
    db.query_row(
        &format!(
            "SELECT {COLUMNS} FROM public_links
             WHERE token = ?1 AND resource_type = ?2 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > ?3)"
        ),
        args![token, resource_type, now()],
        from_row,
    )
}

/// Adds views counted in memory: `(link id, views)`.
pub fn record_views(db: &Db<'_>, views: &[(Id, u64)]) -> StoreResult<()> {
    for (id, count) in views {
        db.execute(
            "UPDATE public_links SET view_count = view_count + ?2 WHERE id = ?1",
            args![id, count],
        )?;
    }
    Ok(())
}

/// The resource type of a working token, for `/s/{token}`.
pub fn resource_type(db: &Db<'_>, token: &str) -> StoreResult<String> {
    db.query_row(
        "SELECT resource_type FROM public_links WHERE token = ?1 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > ?2)",
        args![token, now()],
        |r| r.get(0),
    )
}
