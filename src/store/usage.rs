//! Credits spent by report generations and dashboard refreshes, counted against the calendar
//! month's allowance: `credit_usage` itemizes each charge, `credit_totals` keeps each month's
//! sums, so that neither a charge nor the usage page reads more than one row of them.

use super::{args, Db, StoreError, StoreResult};
use crate::domain::{month_bounds, now, Id, UnixTime};

/// Credits used in the calendar month starting at `month_start`, by kind:
/// (report_generation, dashboard_refresh).
pub fn credits_used(
    db: &Db<'_>,
    organization_id: Id,
    month_start: UnixTime,
) -> StoreResult<(i64, i64)> {
    Ok(db
        .query_opt(
            "SELECT report_generation, dashboard_refresh FROM credit_totals
             WHERE organization_id = ?1 AND month_start = ?2",
            args![organization_id, month_start],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .unwrap_or((0, 0)))
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
    let (on_reports, on_refreshes) = match kind {
        "report_generation" => (credits, 0),
        "dashboard_refresh" => (0, credits),
        other => {
            return Err(StoreError::Database(format!(
                "unknown kind of charge {other:?}"
            )))
        }
    };
    db.execute(
        "INSERT INTO credit_usage (organization_id, kind, credits, target_id, at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![organization_id, kind, credits, target_id, at],
    )?;
    db.execute(
        "INSERT INTO credit_totals (organization_id, month_start, report_generation, dashboard_refresh)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (organization_id, month_start) DO UPDATE SET
             report_generation = credit_totals.report_generation + excluded.report_generation,
             dashboard_refresh = credit_totals.dashboard_refresh + excluded.dashboard_refresh",
        args![organization_id, start, on_reports, on_refreshes],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_by_month_and_kind_and_stop_at_the_allowance() {
        let (_dir, store) = crate::store::open_temp();
        let (start, _) = month_bounds(now());
        store
            .write_blocking(|db| -> crate::store::StoreResult<_> {
                let org = super::super::organizations::create(db, "Acme")?;
                charge(db, org, "report_generation", 3, 1, 10)?;
                charge(db, org, "dashboard_refresh", 2, 1, 10)?;
                charge(db, org, "report_generation", 4, 2, 10)?;
                assert_eq!(credits_used(db, org, start)?, (7, 2));
                // One credit remains: two are refused, and nothing of the refusal is kept.
                let refused = charge(db, org, "report_generation", 2, 3, 10);
                assert!(matches!(refused, Err(StoreError::InsufficientCredits(_))));
                assert_eq!(credits_used(db, org, start)?, (7, 2));
                // Another month, another organization: nothing used.
                assert_eq!(credits_used(db, org, start - 86_400 * 31)?, (0, 0));
                assert_eq!(credits_used(db, org + 1, start)?, (0, 0));
                Ok(())
            })
            .unwrap();
    }
}
