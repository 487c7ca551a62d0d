//! The `row_counts` table: per-organization counts of reports and dashboards, kept in the
//! transaction that adds or removes a row, so a list's total is read rather than counted.

use rusqlite::{params, OptionalExtension};

use super::{Db, StoreResult};
use crate::domain::Id;

/// Moves the organization's count of `kind` by `delta`, never below zero.
pub(super) fn add_count(
    db: &Db<'_>,
    organization_id: Id,
    kind: &str,
    delta: i64,
) -> StoreResult<()> {
    db.conn.execute(
        "INSERT INTO row_counts (organization_id, kind, count) VALUES (?1, ?2, MAX(?3, 0))
         ON CONFLICT (organization_id, kind) DO UPDATE SET count = MAX(count + ?3, 0)",
        params![organization_id, kind, delta],
    )?;
    Ok(())
}

pub(super) fn count_of(db: &Db<'_>, organization_id: Id, kind: &str) -> StoreResult<u64> {
    Ok(db
        .conn
        .prepare_cached("SELECT count FROM row_counts WHERE organization_id = ?1 AND kind = ?2")?
        .query_row(params![organization_id, kind], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Keeps `row_counts` exact after rows were added in bulk (seeding).
pub(super) fn recount(db: &Db<'_>, organization_id: Id) -> StoreResult<()> {
    for (kind, table) in [("report", "reports"), ("dashboard", "dashboards")] {
        db.conn.execute(
            &format!(
                "INSERT INTO row_counts (organization_id, kind, count)
                 SELECT ?1, ?2, COUNT(*) FROM {table} WHERE organization_id = ?1
                 ON CONFLICT (organization_id, kind) DO UPDATE SET count = excluded.count"
            ),
            params![organization_id, kind],
        )?;
    }
    Ok(())
}
