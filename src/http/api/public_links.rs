//! Public share links of reports and dashboards, and the reads they open without credentials.
//!
//! POST|GET|DELETE /api/v1/reports/{id}/public-link/     {expires_in_days?: 1..365 | null}
//! POST|GET|DELETE /api/v1/dashboards/{id}/public-link/
//! GET /public/reports/{token}/   GET /public/dashboards/{token}/   GET /s/{token}

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::{dashboards::DashboardDto, Call};
use crate::domain::{now, Timestamp, UnixTime};
use crate::error::ApiError;
use crate::http::reply::{self, Response};
use crate::http::shared_page;
use crate::ops::content;
use crate::ops::Caller;
use crate::store::public_links::Shared;
use crate::store::public_links::{self, PublicLink};
use crate::store::{dashboards, reports};
use warp::http::{header, HeaderValue};

/// Absent and `null` differ: absent is 30 days, `null` never.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LinkBody {
    #[serde(default, deserialize_with = "present")]
    expires_in_days: Option<Option<i64>>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct LinkDto {
    token: String,
    url: String,
    expires_at: Option<Timestamp>,
    created_at: Timestamp,
    view_count: i64,
}

fn link_dto(call: &Call<'_>, link: PublicLink) -> LinkDto {
    let origin = call.origin();
    LinkDto {
        url: format!("{origin}/s/{}", link.token),
        token: link.token,
        expires_at: link.expires_at.map(Timestamp),
        created_at: Timestamp(link.created_at),
        view_count: link.view_count
            + i64::try_from(call.app.views.pending(link.id)).unwrap_or(i64::MAX),
    }
}

/// POST .../{id}/public-link/
pub async fn create(call: Call<'_>, caller: Caller, kind: Shared) -> Result<Response, ApiError> {
    let body: LinkBody = if call.body.is_empty() {
        LinkBody::default()
    } else {
        call.json()?
    };
    let days = match body.expires_in_days {
        None => Some(30),
        Some(None) => None,
        Some(Some(d)) if (1..=365).contains(&d) => Some(d),
        Some(Some(_)) => {
            return Err(ApiError::field(
                "expires_in_days",
                "must be between 1 and 365, or null for never",
            ))
        }
    };
    let expires_at: Option<UnixTime> = days.map(|d| now() + d * 86_400);
    let link = content::share(call.app, &caller, kind, call.id()?, expires_at).await?;
    Ok(reply::created(&link_dto(&call, link)))
}

/// GET .../{id}/public-link/
pub async fn show(call: Call<'_>, caller: Caller, kind: Shared) -> Result<Response, ApiError> {
    let (org, id) = (caller.organization_id(), call.id()?);
    let link = call
        .app
        .store
        .read(move |c| {
            public_links::shared_exists(c, org, kind, id)?;
            public_links::current(c, kind.as_str(), id)
        })
        .await?;
    Ok(reply::ok(&link_dto(&call, link)))
}

/// DELETE .../{id}/public-link/
pub async fn revoke(call: Call<'_>, caller: Caller, kind: Shared) -> Result<Response, ApiError> {
    content::unshare(call.app, &caller, kind, call.id()?).await?;
    Ok(reply::no_content())
}

#[derive(Serialize, ToSchema)]
pub(super) struct PublicReport {
    title: String,
    summary: String,
    content: String,
    created_at: Timestamp,
    completed_at: Option<Timestamp>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct PublicDashboard {
    name: String,
    description: String,
    widgets: serde_json::Value,
    updated_at: Timestamp,
    last_refreshed_at: Option<Timestamp>,
}

/// GET /public/reports/{token}/ and /public/dashboards/{token}/: no credentials, a view counted.
pub async fn read(call: Call<'_>, kind: Shared) -> Result<Response, ApiError> {
    let token = call.params.token.clone().ok_or(ApiError::NotFound)?;
    let app = call.app;
    let shared = app
        .store
        .read(move |tx| {
            let link = public_links::find(tx, kind.as_str(), &token)?;
            Ok((
                link.id,
                match kind {
                    Shared::Report => {
                        let r = reports::get(tx, link.organization_id, link.resource_id)?;
                        View::Report(PublicReport {
                            title: r.title,
                            summary: r.summary,
                            content: r.content,
                            created_at: Timestamp(r.created_at),
                            completed_at: r.completed_at.map(Timestamp),
                        })
                    }
                    Shared::Dashboard => {
                        let d = dashboards::get(tx, link.organization_id, link.resource_id)?;
                        let dto = DashboardDto::from(d);
                        View::Dashboard(dto.into())
                    }
                },
            ))
        })
        .await?;
    let (link, shared) = shared;
    app.views.count(link);
    match shared {
        View::Report(r) => Ok(reply::ok(&r)),
        View::Dashboard(d) => Ok(reply::ok(&d)),
    }
}

enum View {
    Report(PublicReport),
    Dashboard(PublicDashboard),
}

impl From<DashboardDto> for PublicDashboard {
    fn from(d: DashboardDto) -> Self {
        let DashboardDto {
            name,
            description,
            widgets,
            updated_at,
            last_refreshed_at,
            ..
        } = d;
        PublicDashboard {
            name,
            description,
            widgets,
            updated_at,
            last_refreshed_at,
        }
    }
}

/// GET /s/{token}: the shared report or dashboard as a read-only HTML page (`shared_page`: no
/// script, no HTML from the shared text, the console's stylesheet). A view is counted as for the JSON reads. The page and both forms of
/// its `404` vary with `Accept` and are never stored, so that no cache outlives a revocation
/// or mixes the two forms.
pub async fn page(call: Call<'_>) -> Result<Response, ApiError> {
    let ctx = call.ctx;
    let mut response = match read_page(call).await {
        Ok(mut response) => {
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(shared_page::POLICY),
            );
            response
        }
        // A person who follows a dead link reads why; a client asking for JSON gets the
        // error's usual shape.
        Err(ApiError::NotFound) if !crate::http::prefers_json(ctx) => {
            crate::http::pages::link_gone(ctx)
        }
        Err(ApiError::NotFound) => reply::error(&ApiError::NotFound, &ctx.id),
        // Other errors (unavailable, internal) go the pipeline's way, logged there.
        Err(e) => return Err(e),
    };
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn read_page(call: Call<'_>) -> Result<Response, ApiError> {
    let token = call.params.token.clone().ok_or(ApiError::NotFound)?;
    let app = call.app;
    let (link, html) = app
        .store
        .read(move |tx| {
            let kind = public_links::resource_type(tx, &token)?;
            let link = public_links::find(tx, &kind, &token)?;
            Ok((
                link.id,
                if kind == "report" {
                    let r = reports::get(tx, link.organization_id, link.resource_id)?;
                    shared_page::report(&r)
                } else {
                    let d = dashboards::get(tx, link.organization_id, link.resource_id)?;
                    shared_page::dashboard(&d)
                },
            ))
        })
        .await?;
    app.views.count(link);
    Ok(reply::text(html, "text/html; charset=utf-8"))
}
