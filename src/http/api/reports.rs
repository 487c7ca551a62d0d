//! Reports of the caller's organization: generated from a data source, charged in credits.
//!
//! GET             /api/v1/reports/                GET|DELETE /api/v1/reports/{id}/
//! POST            /api/v1/reports/generate/       {title, data_source_id, prompt?}

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{org_page, text, Call, Sortable};
use crate::domain::{Id, Timestamp};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::content;
use crate::ops::Caller;
use crate::store::reports::{self, Report};

#[derive(Serialize, ToSchema)]
pub(super) struct ReportDto {
    id: Id,
    title: String,
    status: String,
    data_source_id: Option<Id>,
    prompt: String,
    summary: String,
    content: String,
    credits_used: i64,
    created_by: Option<Id>,
    created_at: Timestamp,
    completed_at: Option<Timestamp>,
}

impl From<Report> for ReportDto {
    fn from(r: Report) -> Self {
        ReportDto {
            id: r.id,
            title: r.title,
            status: r.status,
            data_source_id: r.data_source_id,
            prompt: r.prompt,
            summary: r.summary,
            content: r.content,
            credits_used: r.credits_used,
            created_by: r.created_by,
            created_at: Timestamp(r.created_at),
            completed_at: r.completed_at.map(Timestamp),
        }
    }
}

/// The fields the list may be ordered by (`?ordering=`), newest first without one.
pub(super) const SORTABLE: Sortable = Sortable::newest_first(
    "the title",
    &[
        ("title", "LOWER(title)"),
        ("status", "status"),
        ("credits_used", "credits_used"),
        ("created_at", "created_at"),
        ("completed_at", "completed_at"),
    ],
);

/// GET /api/v1/reports/
pub async fn list(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    org_page::<_, ReportDto, _>(
        call,
        caller,
        &SORTABLE,
        super::Reads::OneStatement,
        reports::list,
    )
    .await
}

/// GET /api/v1/reports/{id}/
pub async fn get(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let (org, id) = (caller.organization_id(), call.id()?);
    let r = call
        .app
        .store
        .read(move |c| reports::get(c, org, id))
        .await?;
    Ok(reply::ok(&ReportDto::from(r)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GenerateRequest {
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    data_source_id: Id,
    #[serde(default)]
    #[schema(max_length = 2000)]
    prompt: Option<String>,
}

/// POST /api/v1/reports/generate/
pub async fn generate(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: GenerateRequest = call.json()?;
    let mut errors = FieldErrors::new();
    let title = text(&mut errors, "title", &request.title, 1, 200);
    let prompt = text(
        &mut errors,
        "prompt",
        request.prompt.as_deref().unwrap_or(""),
        0,
        2000,
    );
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    call.limit_generation(&caller)?;
    let request = content::ReportRequest {
        title,
        prompt,
        data_source_id: request.data_source_id,
    };
    let report = content::generate_report(call.app, &caller, request).await?;
    Ok(reply::created(&ReportDto::from(report)))
}

/// DELETE /api/v1/reports/{id}/
pub async fn delete(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    content::delete_report(call.app, &caller, call.id()?).await?;
    Ok(reply::no_content())
}
