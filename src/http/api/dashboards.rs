//! Dashboards of the caller's organization: widgets as JSON, refreshes charged in credits.
//!
//! GET|POST        /api/v1/dashboards/             GET|PATCH|DELETE /api/v1/dashboards/{id}/
//! POST            /api/v1/dashboards/{id}/refresh/

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{org_page, text, Call, Sortable};
use crate::domain::{Id, Timestamp};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::content::{self, DashboardFields};
use crate::ops::Caller;
use crate::store::dashboards::{self, Dashboard};

/// Also the source of a shared dashboard's public view (`public_links`).
#[derive(Serialize, ToSchema)]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DashboardBody {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 1000)]
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

/// The fields the list may be ordered by (`?ordering=`), newest first without one.
pub(super) const SORTABLE: Sortable = Sortable::newest_first(
    "the name",
    &[
        ("name", "LOWER(name)"),
        ("created_at", "created_at"),
        ("updated_at", "updated_at"),
        ("last_refreshed_at", "last_refreshed_at"),
    ],
);

/// GET /api/v1/dashboards/
pub async fn list(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    org_page::<_, DashboardDto, _>(
        call,
        caller,
        &SORTABLE,
        super::Reads::OneStatement,
        dashboards::list,
    )
    .await
}

/// GET /api/v1/dashboards/{id}/
pub async fn get(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let (org, id) = (caller.organization_id(), call.id()?);
    let d = call
        .app
        .store
        .read(move |c| dashboards::get(c, org, id))
        .await?;
    Ok(reply::ok(&DashboardDto::from(d)))
}

/// POST /api/v1/dashboards/
pub async fn create(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
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
    let fields = DashboardFields {
        name,
        description,
        widgets,
    };
    let d = content::create_dashboard(call.app, &caller, fields).await?;
    Ok(reply::created(&DashboardDto::from(d)))
}

/// PATCH /api/v1/dashboards/{id}/
pub async fn update(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: DashboardBody = call.json()?;
    let (org, id) = (caller.organization_id(), call.id()?);
    let current = call
        .app
        .store
        .read(move |c| dashboards::get(c, org, id))
        .await?;
    if !caller.may_change(current.created_by) {
        return Err(ApiError::denied(
            "you may change only dashboards you created",
        ));
    }
    let mut errors = FieldErrors::new();
    let name = request
        .name
        .as_ref()
        .map(|name| text(&mut errors, "name", name, 1, 100));
    let description = request
        .description
        .as_ref()
        .map(|d| text(&mut errors, "description", d, 0, 1000));
    let widgets = request
        .widgets
        .as_ref()
        .map(|w| widgets_json(&mut errors, w));
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let d = content::update_dashboard(call.app, &caller, id, move |now| DashboardFields {
        name: name.unwrap_or(now.name),
        description: description.unwrap_or(now.description),
        widgets: widgets.unwrap_or(now.widgets),
    })
    .await?;
    Ok(reply::ok(&DashboardDto::from(d)))
}

/// DELETE /api/v1/dashboards/{id}/
pub async fn delete(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    content::delete_dashboard(call.app, &caller, call.id()?).await?;
    Ok(reply::no_content())
}

/// POST /api/v1/dashboards/{id}/refresh/
pub async fn refresh(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let (org, id) = (caller.organization_id(), call.id()?);
    call.app
        .store
        .read(move |c| dashboards::get(c, org, id))
        .await?;
    call.limit_generation(&caller)?;
    let d = content::refresh_dashboard(call.app, &caller, id).await?;
    Ok(reply::ok(&DashboardDto::from(d)))
}
