//! The `credit_usage` table: credits spent by report generations and dashboard refreshes,
//! counted against the calendar month's allowance.

use rusqlite::params;

use super::{Db, StoreError, StoreResult};
use crate::domain::{month_bounds, now, Id, UnixTime};

/// Credits used since `since`, by kind: (report_generation, dashboard_refresh).
pub fn credits_used(db: &Db<'_>, organization_id: Id, since: UnixTime) -> StoreResult<(i64, i64)> {
    Ok(db.conn.query_row(
        "SELECT COALESCE(SUM(CASE kind WHEN 'report_generation' THEN credits END), 0),
                COALESCE(SUM(CASE kind WHEN 'dashboard_refresh' THEN credits END), 0)
         FROM credit_usage WHERE organization_id = ?1 AND at >= ?2",
        params![organization_id, since],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// Records `credits` spent, refusing when the month's allowance would go below zero. Runs in
/// the caller's write transaction, so concurrent charges cannot overspend.
pub(super) fn charge(
    db: &Db<'_>,
    organization_id: Id,
    kind: &str,
    credits: i64,
    target_id: Id,
    allowance: i64,
) -> StoreResult<()> {
    let at = now();
    let (start, _) = month_bounds(at);
    let (reports, refreshes) = credits_used(db, organization_id, start)?;
    let remaining = allowance - reports - refreshes;
    if credits > remaining {
        return Err(StoreError::InsufficientCredits(format!(
            "this needs {credits} credits and {} remain this month",
            remaining.max(0)
        )));
    }
    db.conn.execute(
        "INSERT INTO credit_usage (organization_id, kind, credits, target_id, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![organization_id, kind, credits, target_id, at],
    )?;
    Ok(())
}
