//! The caller's organization's credits this calendar month, used and remaining, by kind.
//!
//! GET             /api/v1/usage/

use serde::Serialize;
use utoipa::ToSchema;

use super::Call;
use crate::domain::{month_bounds, now, Timestamp};
use crate::error::ApiError;
use crate::http::reply::{self, Response};
use crate::ops::Caller;
use crate::store::usage;

#[derive(Serialize, ToSchema)]
pub(super) struct ByKind {
    report_generation: i64,
    dashboard_refresh: i64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct UsageDto {
    period_start: Timestamp,
    period_end: Timestamp,
    credits_included: i64,
    credits_used: i64,
    credits_remaining: i64,
    by_kind: ByKind,
}

/// GET /api/v1/usage/
pub async fn get(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let org = caller.organization_id();
    let (start, end) = month_bounds(now());
    let (reports, refreshes) = call
        .app
        .store
        .read(move |c| usage::credits_used(c, org, start))
        .await?;
    let included = call.app.config.credits.monthly_allowance;
    let used = reports + refreshes;
    Ok(reply::ok(&UsageDto {
        period_start: Timestamp(start),
        period_end: Timestamp(end),
        credits_included: included,
        credits_used: used,
        credits_remaining: (included - used).max(0),
        by_kind: ByKind {
            report_generation: reports,
            dashboard_refresh: refreshes,
        },
    }))
}
