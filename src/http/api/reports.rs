//! Reports of the caller's organization: generated from a data source, charged in credits.
//!
//! GET             /api/v1/reports/                GET|DELETE /api/v1/reports/{id}/
//! POST            /api/v1/reports/generate/       {title, data_source_id, prompt?}

use serde::{Deserialize, Serialize};

use super::{details, org_page, text, Call};
use crate::domain::{Id, Timestamp};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::store::audit::{self, Outcome};
use crate::store::data_sources::{self, DataSource};
use crate::store::reports::{self, NewReport, Report};

#[derive(Serialize)]
struct ReportDto {
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

/// GET /api/v1/reports/
pub async fn list(call: Call<'_>) -> Result<Response, ApiError> {
    org_page::<_, ReportDto, _>(call, reports::list).await
}

/// GET /api/v1/reports/{id}/
pub async fn get(call: Call<'_>) -> Result<Response, ApiError> {
    let (org, id) = (call.organization_id()?, call.id()?);
    let r = call
        .app
        .store
        .read(move |c| reports::get(c, org, id))
        .await?;
    Ok(reply::ok(&ReportDto::from(r)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateRequest {
    title: String,
    data_source_id: Id,
    #[serde(default)]
    prompt: Option<String>,
}

/// POST /api/v1/reports/generate/
pub async fn generate(call: Call<'_>) -> Result<Response, ApiError> {
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
    let auth = call.authorized()?.clone();
    call.limit_generation()?;
    let p = auth.principal();
    let (org, by, source_id) = (p.organization_id, p.user_id, request.data_source_id);
    let credits = &call.app.config.credits;
    let (cost, allowance) = (credits.report_generation, credits.monthly_allowance);
    let organization = call.app.auth.live.organization_name(org).to_string();
    let report = call
        .change(move |c| {
            let tx = c.tx;
            let source = match data_sources::get(tx, org, source_id) {
                Ok(source) => source,
                Err(crate::store::StoreError::NotFound) => {
                    return Err(ApiError::field(
                        "data_source_id",
                        "no such data source in your organization",
                    ))
                }
                Err(e) => return Err(e.into()),
            };
            let figures = reports::figures(tx, org)?;
            let (summary, body) = compose(&organization, &source, &title, &prompt, figures);
            Ok(reports::create(
                tx,
                &NewReport {
                    organization_id: org,
                    title: &title,
                    data_source_id: source.id,
                    prompt: &prompt,
                    summary: &summary,
                    content: &body,
                    credits: cost,
                    created_by: by,
                },
                allowance,
            )?)
        })
        .await?;
    Ok(reply::created(&ReportDto::from(report)))
}

/// The report text: a deterministic account of what the installation knows.
fn compose(
    organization: &str,
    source: &DataSource,
    title: &str,
    prompt: &str,
    (reports, dashboards, goals, sources): (u64, u64, u64, u64),
) -> (String, String) {
    let summary = format!(
        "{title}: based on the {} data source \"{}\" of {organization}, which holds {reports} \
         earlier reports, {dashboards} dashboards, {goals} goals and {sources} data sources.",
        source.source_type.replace('_', " "),
        source.name
    );
    // The prompt is the organization's own: it stays in the report's `prompt` field and never
    // enters the content, which a public link shares.
    let question = if prompt.is_empty() {
        "No question was asked; this is an overview."
    } else {
        "This report answers the question recorded with it."
    };
    let content = format!(
        "# {title}\n\n{question}\n\n## Source\n- name: {}\n- type: {}\n- status: {}\n- connected: {}\n\n\
         ## Organization figures\n- reports before this one: {reports}\n- dashboards: {dashboards}\n\
         - goals: {goals}\n- data sources: {sources}\n",
        source.name,
        source.source_type,
        source.status,
        Timestamp(source.created_at)
    );
    (summary, content)
}

/// DELETE /api/v1/reports/{id}/
pub async fn delete(call: Call<'_>) -> Result<Response, ApiError> {
    let auth = call.authorized()?.clone();
    let (org, id) = (auth.principal().organization_id, call.id()?);
    let report = call
        .app
        .store
        .read(move |c| reports::get(c, org, id))
        .await?;
    if !auth.may_change(report.created_by) {
        return Err(ApiError::denied("you may delete only reports you created"));
    }
    let mut entry = call.audit("report.deleted", Outcome::Success);
    entry.target_type = Some("report");
    entry.target_id = Some(id);
    entry.details = details(&[("title", &report.title)]);
    call.change(move |c| {
        let tx = c.tx;
        reports::delete(tx, org, id)?;
        audit::record(tx, &entry)?;
        Ok(())
    })
    .await?;
    Ok(reply::no_content())
}
