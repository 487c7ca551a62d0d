//! The `row_counts` table: per-organization counts of reports and dashboards, kept in the
//! transaction that adds or removes a row, so a list's total is read rather than counted.

use super::{args, Db, StoreResult};
use crate::domain::Id;

/// Moves the organization's count of `kind` by `delta`, never below zero.
pub(super) fn add_count(
    db: &Db<'_>,
    organization_id: Id,
    kind: &str,
    delta: i64,
) -> StoreResult<()> {
    db.execute(
        "INSERT INTO row_counts (organization_id, kind, count)
         VALUES (?1, ?2, CASE WHEN ?3 > 0 THEN ?3 ELSE 0 END)
         ON CONFLICT (organization_id, kind) DO UPDATE
         SET count = CASE WHEN row_counts.count + ?3 > 0 THEN row_counts.count + ?3 ELSE 0 END",
        args![organization_id, kind, delta],
    )?;
    Ok(())
}

/// The kept totals of the lists, as SQL expressions of the organization ?1 (`ListOf::kept`).
pub(super) const REPORTS: &str =
    "COALESCE((SELECT count FROM row_counts WHERE organization_id = ?1 AND kind = 'report'), 0)";
pub(super) const DASHBOARDS: &str =
    "COALESCE((SELECT count FROM row_counts WHERE organization_id = ?1 AND kind = 'dashboard'), 0)";

pub(super) fn count_of(db: &Db<'_>, organization_id: Id, kind: &str) -> StoreResult<u64> {
    Ok(db
        .query_opt(
            "SELECT count FROM row_counts WHERE organization_id = ?1 AND kind = ?2",
            args![organization_id, kind],
            |r| r.get(0),
        )?
        .unwrap_or(0))
}

/// Keeps `row_counts` exact after rows were added in bulk (seeding).
pub(super) fn recount(db: &Db<'_>, organization_id: Id) -> StoreResult<()> {
    for (kind, table) in [("report", "reports"), ("dashboard", "dashboards")] {
        db.execute(
            &format!(
                "INSERT INTO row_counts (organization_id, kind, count)
                 SELECT CAST(?1 AS BIGINT), CAST(?2 AS TEXT), COUNT(*) FROM {table}
                 WHERE organization_id = ?1
                 ON CONFLICT (organization_id, kind) DO UPDATE SET count = excluded.count"
            ),
            args![organization_id, kind],
        )?;
    }
    Ok(())
}
