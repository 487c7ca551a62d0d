//! Goals with milestones and recorded progress.
//!
//! GET|POST /api/v1/goals/        GET|PATCH /api/v1/goals/{id}/
//! GET|POST /api/v1/goals/{id}/progress/   {value}

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{org_page, text, Call, Sortable};
use crate::domain::{Id, Timestamp};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::content::{self, GoalSpec};
use crate::ops::Caller;
use crate::store::goals::{self, Goal};

#[derive(Serialize, ToSchema)]
pub(super) struct MilestoneDto {
    id: Id,
    name: String,
    target_value: f64,
    reached_at: Option<Timestamp>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct GoalDto {
    id: Id,
    name: String,
    description: String,
    unit: String,
    target_value: f64,
    current_value: f64,
    due_date: Option<String>,
    milestones: Vec<MilestoneDto>,
    created_by: Option<Id>,
    created_at: Timestamp,
}

impl From<Goal> for GoalDto {
    fn from(g: Goal) -> Self {
        GoalDto {
            id: g.id,
            name: g.name,
            description: g.description,
            unit: g.unit,
            target_value: g.target_value,
            current_value: g.current_value,
            due_date: g.due_date,
            milestones: g
                .milestones
                .into_iter()
                .map(|m| MilestoneDto {
                    id: m.id,
                    name: m.name,
                    target_value: m.target_value,
                    reached_at: m.reached_at.map(Timestamp),
                })
                .collect(),
            created_by: g.created_by,
            created_at: Timestamp(g.created_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MilestoneBody {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    target_value: f64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GoalBody {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    description: Option<String>,
    #[serde(default)]
    #[schema(max_length = 50)]
    unit: Option<String>,
    #[serde(default)]
    target_value: Option<f64>,
    #[serde(default)]
    current_value: Option<f64>,
    #[serde(default)]
    due_date: Option<String>,
    #[serde(default)]
    #[schema(max_items = 50)]
    milestones: Option<Vec<MilestoneBody>>,
}

fn finite(errors: &mut FieldErrors, field: &str, value: f64) {
    if !value.is_finite() {
        errors.insert(field.into(), vec!["must be a finite number".into()]);
    }
}

/// Validates a body against `current` (PATCH) or as a new goal (`None`).
fn validate(body: &GoalBody, current: Option<&Goal>) -> Result<GoalSpec, ApiError> {
    let mut errors = FieldErrors::new();
    let name = match (&body.name, current) {
        (Some(n), _) => text(&mut errors, "name", n, 1, 200),
        (None, Some(g)) => g.name.clone(),
        (None, None) => {
            errors.insert("name".into(), vec!["is required".into()]);
            String::new()
        }
    };
    let description = match (&body.description, current) {
        (Some(d), _) => text(&mut errors, "description", d, 0, 2000),
        (None, Some(g)) => g.description.clone(),
        (None, None) => String::new(),
    };
    let unit = match (&body.unit, current) {
        (Some(u), _) => text(&mut errors, "unit", u, 0, 50),
        (None, Some(g)) => g.unit.clone(),
        (None, None) => String::new(),
    };
    let target_value = match (body.target_value, current) {
        (Some(v), _) => {
            finite(&mut errors, "target_value", v);
            v
        }
        (None, Some(g)) => g.target_value,
        (None, None) => {
            errors.insert("target_value".into(), vec!["is required".into()]);
            0.0
        }
    };
    if let Some(v) = body.current_value {
        finite(&mut errors, "current_value", v);
    }
    let due_date = match (&body.due_date, current) {
        (Some(d), _) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            if time::Date::parse(d, format).is_err() {
                errors.insert(
                    "due_date".into(),
                    vec!["must be a date like 2026-12-31".into()],
                );
            }
            Some(d.clone())
        }
        (None, Some(g)) => g.due_date.clone(),
        (None, None) => None,
    };
    let milestones = body.milestones.as_ref().map(|list| {
        if list.len() > 50 {
            errors.insert("milestones".into(), vec!["at most 50".into()]);
        }
        list.iter()
            .map(|m| {
                let name = text(&mut errors, "milestones", &m.name, 1, 200);
                finite(&mut errors, "milestones", m.target_value);
                (name, m.target_value)
            })
            .collect()
    });
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    Ok(GoalSpec {
        name,
        description,
        unit,
        target_value,
        due_date,
        milestones,
    })
}

/// The fields the list may be ordered by (`?ordering=`), newest first without one.
pub(super) const SORTABLE: Sortable = Sortable::newest_first(
    "the name",
    &[
        ("name", "LOWER(name)"),
        ("target_value", "target_value"),
        ("current_value", "current_value"),
        ("due_date", "due_date"),
        ("created_at", "created_at"),
    ],
);

/// GET /api/v1/goals/
pub async fn list(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    org_page::<_, GoalDto, _>(call, caller, &SORTABLE, super::Reads::More, goals::list).await
}

/// GET /api/v1/goals/{id}/
pub async fn get(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let (org, id) = (caller.principal().organization_id, call.id()?);
    let g = call.app.store.read(move |c| goals::get(c, org, id)).await?;
    Ok(reply::ok(&GoalDto::from(g)))
}

/// POST /api/v1/goals/
pub async fn create(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let body: GoalBody = call.json()?;
    let valid = validate(&body, None)?;
    let current = body.current_value.unwrap_or(0.0);
    let g = content::create_goal(call.app, &caller, valid, current).await?;
    Ok(reply::created(&GoalDto::from(g)))
}

/// PATCH /api/v1/goals/{id}/
pub async fn update(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let body: GoalBody = call.json()?;
    if body.current_value.is_some() {
        return Err(ApiError::field(
            "current_value",
            "record progress with POST .../progress/",
        ));
    }
    let (org, id) = (caller.principal().organization_id, call.id()?);
    let current = call.app.store.read(move |c| goals::get(c, org, id)).await?;
    let valid = validate(&body, Some(&current))?;
    let g = content::update_goal(call.app, &caller, id, valid).await?;
    Ok(reply::ok(&GoalDto::from(g)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ProgressBody {
    value: f64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct HistoryEntry {
    at: Timestamp,
    value: f64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ProgressDto {
    goal_id: Id,
    target_value: f64,
    current_value: f64,
    percent: f64,
    milestones_reached: usize,
    milestones_total: usize,
    history: Vec<HistoryEntry>,
}

fn progress_dto(g: Goal, history: Vec<(i64, f64)>) -> ProgressDto {
    let percent = if g.target_value == 0.0 {
        if g.current_value >= 0.0 {
            100.0
        } else {
            0.0
        }
    } else {
        // Finite whatever the values: a ratio too large for f64 is the largest finite one
        // (JSON has no infinity; it would be written as null).
        let ratio = (g.current_value / g.target_value * 100.0).max(0.0);
        let rounded = (ratio * 10.0).round() / 10.0;
        match (rounded.is_finite(), ratio.is_finite()) {
            (true, _) => rounded,
            (false, true) => ratio,
            (false, false) => f64::MAX,
        }
    };
    ProgressDto {
        goal_id: g.id,
        target_value: g.target_value,
        current_value: g.current_value,
        percent,
        milestones_reached: g
            .milestones
            .iter()
            .filter(|m| m.reached_at.is_some())
            .count(),
        milestones_total: g.milestones.len(),
        history: history
            .into_iter()
            .map(|(at, value)| HistoryEntry {
                at: Timestamp(at),
                value,
            })
            .collect(),
    }
}

/// GET /api/v1/goals/{id}/progress/
pub async fn progress(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let (org, id) = (caller.principal().organization_id, call.id()?);
    let (g, history) = call
        .app
        .store
        .read(move |c| Ok((goals::get(c, org, id)?, goals::history(c, id)?)))
        .await?;
    Ok(reply::ok(&progress_dto(g, history)))
}

/// POST /api/v1/goals/{id}/progress/
pub async fn record_progress(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let body: ProgressBody = call.json()?;
    if !body.value.is_finite() {
        return Err(ApiError::field("value", "must be a finite number"));
    }
    let (g, history) = content::record_progress(call.app, &caller, call.id()?, body.value).await?;
    Ok(reply::created(&progress_dto(g, history)))
}
