//! Data sources, reports and dashboards of the caller's organization.
//!
//! GET|POST        /api/v1/data-sources/           GET|DELETE /api/v1/data-sources/{id}/
//! GET             /api/v1/reports/                GET|DELETE /api/v1/reports/{id}/
//! POST            /api/v1/reports/generate/       {title, data_source_id, prompt?}
//! GET|POST        /api/v1/dashboards/             GET|PATCH|DELETE /api/v1/dashboards/{id}/
//! POST            /api/v1/dashboards/{id}/refresh/
//! GET             /api/v1/usage/

use serde::{Deserialize, Serialize};

use super::{details, org_page, text, Call};
use crate::auth::principal::Authorized;
use crate::domain::{now, Id, Timestamp};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::store::audit::{self, Outcome};
use crate::store::content::{self, Dashboard, DataSource, NewReport, Report};

const SOURCE_TYPES: [&str; 6] = [
    "file",
    "database",
    "api",
    "google_analytics",
    "google_sheets",
    "bigquery_query",
];

fn org(call: &Call<'_>) -> Result<Id, ApiError> {
    Ok(call.authorized()?.principal().organization_id)
}

// ---- data sources --------------------------------------------------------------------------

#[derive(Serialize)]
struct DataSourceDto {
    id: Id,
    name: String,
    source_type: String,
    status: String,
    created_by: Option<Id>,
    created_at: Timestamp,
}

impl From<DataSource> for DataSourceDto {
    fn from(d: DataSource) -> Self {
        DataSourceDto {
            id: d.id,
            name: d.name,
            source_type: d.source_type,
            status: d.status,
            created_by: d.created_by,
            created_at: Timestamp(d.created_at),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDataSource {
    name: String,
    source_type: String,
}

/// GET /api/v1/data-sources/
pub async fn list_data_sources(call: Call<'_>) -> Result<Response, ApiError> {
    org_page::<_, DataSourceDto, _>(call, content::list_data_sources).await
}

/// GET /api/v1/data-sources/{id}/
pub async fn get_data_source(call: Call<'_>) -> Result<Response, ApiError> {
    let (org, id) = (org(&call)?, call.id()?);
    let d = call
        .app
        .store
        .read(move |c| content::get_data_source(c, org, id))
        .await?;
    Ok(reply::ok(&DataSourceDto::from(d)))
}

/// POST /api/v1/data-sources/
pub async fn create_data_source(call: Call<'_>) -> Result<Response, ApiError> {
    let request: NewDataSource = call.json()?;
    let mut errors = FieldErrors::new();
    let name = text(&mut errors, "name", &request.name, 1, 100);
    if !SOURCE_TYPES.contains(&request.source_type.as_str()) {
        errors.insert(
            "source_type".into(),
            vec![format!("must be one of {}", SOURCE_TYPES.join(", "))],
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let p = call.authorized()?.principal();
    let (org, by) = (p.organization_id, p.user_id);
    let d = call
        .change(move |c| {
            Ok(content::create_data_source(
                c.tx,
                org,
                &name,
                &request.source_type,
                by,
            )?)
        })
        .await?;
    Ok(reply::created(&DataSourceDto::from(d)))
}

/// DELETE /api/v1/data-sources/{id}/
pub async fn delete_data_source(call: Call<'_>) -> Result<Response, ApiError> {
    let (org, id) = (org(&call)?, call.id()?);
    let mut entry = call.audit("data_source.deleted", Outcome::Success);
    entry.target_type = Some("data_source");
    entry.target_id = Some(id);
    call.change(move |c| {
        let tx = c.tx;
        let d = content::get_data_source(tx, org, id)?;
        content::delete_data_source(tx, org, id)?;
        entry.details = details(&[("name", &d.name)]);
        audit::record(tx, &entry)?;
        Ok(())
    })
    .await?;
    Ok(reply::no_content())
}

// ---- reports -------------------------------------------------------------------------------

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
pub async fn list_reports(call: Call<'_>) -> Result<Response, ApiError> {
    org_page::<_, ReportDto, _>(call, content::list_reports).await
}

/// GET /api/v1/reports/{id}/
pub async fn get_report(call: Call<'_>) -> Result<Response, ApiError> {
    let (org, id) = (org(&call)?, call.id()?);
    let r = call
        .app
        .store
        .read(move |c| content::get_report(c, org, id))
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

/// Counts a generation or refresh against the caller's hourly generation limit.
fn limit_generation(call: &Call<'_>, auth: &Authorized) -> Result<(), ApiError> {
    let now = now();
    let limit = call.app.config.rate_limits.generation_per_hour;
    auth.principal()
        .rates
        .generation
        .hit(now, limit)
        .map(|_| ())
        .map_err(|info| ApiError::Throttled {
            message: format!(
                "more than {limit} report generations and dashboard refreshes this hour"
            ),
            retry_after: (info.reset - now).max(1) as u64,
        })
}

/// POST /api/v1/reports/generate/
pub async fn generate_report(call: Call<'_>) -> Result<Response, ApiError> {
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
    limit_generation(&call, &auth)?;
    let p = auth.principal();
    let (org, by, source_id) = (p.organization_id, p.user_id, request.data_source_id);
    let credits = &call.app.config.credits;
    let (cost, allowance) = (credits.report_generation, credits.monthly_allowance);
    let organization = call.app.auth.live.organization_name(org).to_string();
    let report = call
        .change(move |c| {
            let tx = c.tx;
            let source = match content::get_data_source(tx, org, source_id) {
                Ok(source) => source,
                Err(crate::store::StoreError::NotFound) => {
                    return Err(ApiError::field(
                        "data_source_id",
                        "no such data source in your organization",
                    ))
                }
                Err(e) => return Err(e.into()),
            };
            let figures = content::figures(tx, org)?;
            let (summary, body) = compose(&organization, &source, &title, &prompt, figures);
            Ok(content::create_report(
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
    let question = if prompt.is_empty() {
        "No question was asked; this is an overview.".to_string()
    } else {
        format!("Question: {prompt}")
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
pub async fn delete_report(call: Call<'_>) -> Result<Response, ApiError> {
    let auth = call.authorized()?.clone();
    let (org, id) = (auth.principal().organization_id, call.id()?);
    let report = call
        .app
        .store
        .read(move |c| content::get_report(c, org, id))
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
        content::delete_report(tx, org, id)?;
        audit::record(tx, &entry)?;
        Ok(())
    })
    .await?;
    Ok(reply::no_content())
}

// ---- dashboards ----------------------------------------------------------------------------

#[derive(Serialize)]
pub(super) struct DashboardDto {
    id: Id,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) widgets: serde_json::Value,
    created_by: Option<Id>,
    created_at: Timestamp,
    pub(super) updated_at: Timestamp,
    pub(super) last_refreshed_at: Option<Timestamp>,
}

impl From<Dashboard> for DashboardDto {
    fn from(d: Dashboard) -> Self {
        DashboardDto {
            id: d.id,
            name: d.name,
            description: d.description,
            widgets: serde_json::from_str(&d.widgets).unwrap_or_default(),
            created_by: d.created_by,
            created_at: Timestamp(d.created_at),
            updated_at: Timestamp(d.updated_at),
            last_refreshed_at: d.last_refreshed_at.map(Timestamp),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DashboardBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    widgets: Option<Vec<serde_json::Value>>,
}

/// Widgets: at most 50 JSON objects, each with a string `type`.
fn widgets_json(errors: &mut FieldErrors, widgets: &[serde_json::Value]) -> String {
    if widgets.len() > 50 {
        errors.insert(
            "widgets".into(),
            vec!["must hold at most 50 widgets".into()],
        );
    }
    for (i, w) in widgets.iter().enumerate() {
        if !w.get("type").is_some_and(|t| t.is_string()) {
            errors
                .entry("widgets".into())
                .or_default()
                .push(format!("widget {i} must be an object with a string `type`"));
        }
    }
    serde_json::to_string(widgets).unwrap_or_else(|_| "[]".into())
}

/// GET /api/v1/dashboards/
pub async fn list_dashboards(call: Call<'_>) -> Result<Response, ApiError> {
    org_page::<_, DashboardDto, _>(call, content::list_dashboards).await
}

/// GET /api/v1/dashboards/{id}/
pub async fn get_dashboard(call: Call<'_>) -> Result<Response, ApiError> {
    let (org, id) = (org(&call)?, call.id()?);
    let d = call
        .app
        .store
        .read(move |c| content::get_dashboard(c, org, id))
        .await?;
    Ok(reply::ok(&DashboardDto::from(d)))
}

/// POST /api/v1/dashboards/
pub async fn create_dashboard(call: Call<'_>) -> Result<Response, ApiError> {
    let request: DashboardBody = call.json()?;
    let mut errors = FieldErrors::new();
    let name = match &request.name {
        Some(name) => text(&mut errors, "name", name, 1, 100),
        None => {
            errors.insert("name".into(), vec!["is required".into()]);
            String::new()
        }
    };
    let description = text(
        &mut errors,
        "description",
        request.description.as_deref().unwrap_or(""),
        0,
        1000,
    );
    let widgets = widgets_json(&mut errors, request.widgets.as_deref().unwrap_or(&[]));
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let p = call.authorized()?.principal();
    let (org, by) = (p.organization_id, p.user_id);
    let d = call
        .change(move |c| {
            Ok(content::create_dashboard(
                c.tx,
                org,
                &name,
                &description,
                &widgets,
                by,
            )?)
        })
        .await?;
    Ok(reply::created(&DashboardDto::from(d)))
}

/// PATCH /api/v1/dashboards/{id}/
pub async fn update_dashboard(call: Call<'_>) -> Result<Response, ApiError> {
    let request: DashboardBody = call.json()?;
    let auth = call.authorized()?.clone();
    let (org, id) = (auth.principal().organization_id, call.id()?);
    let current = call
        .app
        .store
        .read(move |c| content::get_dashboard(c, org, id))
        .await?;
    if !auth.may_change(current.created_by) {
        return Err(ApiError::denied(
            "you may change only dashboards you created",
        ));
    }
    let mut errors = FieldErrors::new();
    let name = match &request.name {
        Some(name) => text(&mut errors, "name", name, 1, 100),
        None => current.name,
    };
    let description = match &request.description {
        Some(d) => text(&mut errors, "description", d, 0, 1000),
        None => current.description,
    };
    let widgets = match &request.widgets {
        Some(w) => widgets_json(&mut errors, w),
        None => current.widgets,
    };
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let d = call
        .change(move |c| {
            Ok(content::update_dashboard(
                c.tx,
                org,
                id,
                &name,
                &description,
                &widgets,
            )?)
        })
        .await?;
    Ok(reply::ok(&DashboardDto::from(d)))
}

/// DELETE /api/v1/dashboards/{id}/
pub async fn delete_dashboard(call: Call<'_>) -> Result<Response, ApiError> {
    let auth = call.authorized()?.clone();
    let (org, id) = (auth.principal().organization_id, call.id()?);
    let current = call
        .app
        .store
        .read(move |c| content::get_dashboard(c, org, id))
        .await?;
    if !auth.may_change(current.created_by) {
        return Err(ApiError::denied(
            "you may delete only dashboards you created",
        ));
    }
    let mut entry = call.audit("dashboard.deleted", Outcome::Success);
    entry.target_type = Some("dashboard");
    entry.target_id = Some(id);
    entry.details = details(&[("name", &current.name)]);
    call.change(move |c| {
        let tx = c.tx;
        content::delete_dashboard(tx, org, id)?;
        audit::record(tx, &entry)?;
        Ok(())
    })
    .await?;
    Ok(reply::no_content())
}

/// POST /api/v1/dashboards/{id}/refresh/
pub async fn refresh_dashboard(call: Call<'_>) -> Result<Response, ApiError> {
    let auth = call.authorized()?.clone();
    let (org, id) = (auth.principal().organization_id, call.id()?);
    call.app
        .store
        .read(move |c| content::get_dashboard(c, org, id))
        .await?;
    limit_generation(&call, &auth)?;
    let credits = &call.app.config.credits;
    let (cost, allowance) = (credits.dashboard_refresh, credits.monthly_allowance);
    let d = call
        .change(move |c| Ok(content::refresh_dashboard(c.tx, org, id, cost, allowance)?))
        .await?;
    Ok(reply::ok(&DashboardDto::from(d)))
}

// ---- usage ---------------------------------------------------------------------------------

#[derive(Serialize)]
struct ByKind {
    report_generation: i64,
    dashboard_refresh: i64,
}

#[derive(Serialize)]
struct UsageDto {
    period_start: Timestamp,
    period_end: Timestamp,
    credits_included: i64,
    credits_used: i64,
    credits_remaining: i64,
    by_kind: ByKind,
}

/// GET /api/v1/usage/
pub async fn usage(call: Call<'_>) -> Result<Response, ApiError> {
    let org = org(&call)?;
    let (start, end) = content::month_bounds(now());
    let (reports, refreshes) = call
        .app
        .store
        .read(move |c| content::credits_used(c, org, start))
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
