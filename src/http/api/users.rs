//! User administration (administrators and the owner), the organization, and the audit log.
//!
//! GET|POST  /api/v1/users/          GET|PATCH /api/v1/users/{id}/   {role?, is_active?, name?}
//! POST      /api/v1/users/{id}/reset-mfa/
//! GET|PATCH /api/v1/organization/   POST /api/v1/organization/transfer-ownership/
//! GET       /api/v1/audit-logs/     GET /api/v1/audit-logs/export/?format=csv|json

use serde::{Deserialize, Serialize};

use super::auth::password_field;
use super::{org_page, text, Call, PageRequest};
use crate::auth::principal::Method;
use crate::domain::{Email, Id, Role, Secret, Timestamp};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::accounts::{self, busy};
use crate::store::{audit, organizations, users};

#[derive(Serialize)]
struct UserDto {
    id: Id,
    email: String,
    name: String,
    role: &'static str,
    is_active: bool,
    mfa_enabled: bool,
    created_at: Timestamp,
}

impl From<users::User> for UserDto {
    fn from(u: users::User) -> Self {
        UserDto {
            id: u.id,
            email: u.email,
            name: u.name,
            role: u.role.as_str(),
            is_active: u.is_active,
            mfa_enabled: u.mfa_enabled,
            created_at: Timestamp(u.created_at),
        }
    }
}

/// GET /api/v1/users/
pub async fn list(call: Call<'_>) -> Result<Response, ApiError> {
    org_page::<_, UserDto, _>(call, users::page).await
}

/// GET /api/v1/users/{id}/
pub async fn get(call: Call<'_>) -> Result<Response, ApiError> {
    let org = call.authorized()?.principal().organization_id;
    let id = call.id()?;
    let user = call.app.store.read(move |c| users::get(c, id)).await?;
    if user.organization_id != org {
        return Err(ApiError::NotFound);
    }
    Ok(reply::ok(&UserDto::from(user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    email: String,
    password: Secret,
    role: String,
    #[serde(default)]
    name: Option<String>,
}

/// POST /api/v1/users/
pub async fn create(call: Call<'_>) -> Result<Response, ApiError> {
    let body: CreateUser = call.json()?;
    password_field("password", &body.password)?;
    let mut errors = FieldErrors::new();
    let email = Email::parse(&body.email)
        .map_err(|why| errors.insert("email".into(), vec![why.into()]))
        .ok();
    let role = body
        .role
        .parse::<Role>()
        .map_err(|why| errors.insert("role".into(), vec![why.into()]))
        .ok();
    let name = text(
        &mut errors,
        "name",
        body.name.as_deref().unwrap_or(""),
        0,
        100,
    );
    let (Some(email), Some(role)) = (email, role) else {
        return Err(ApiError::fields(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let org = call.authorized()?.principal().organization_id;
    let user = accounts::create_user(
        call.app,
        &call.actor(),
        org,
        email,
        name,
        role,
        body.password,
    )
    .await?;
    Ok(reply::created(&UserDto::from(user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUser {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    name: Option<String>,
}

/// PATCH /api/v1/users/{id}/: a role change or deactivation holds from the next request.
pub async fn update(call: Call<'_>) -> Result<Response, ApiError> {
    let body: UpdateUser = call.json()?;
    let id = call.id()?;
    let mut errors = FieldErrors::new();
    let role = match &body.role {
        Some(r) => r
            .parse::<Role>()
            .map_err(|why| errors.insert("role".into(), vec![why.into()]))
            .ok(),
        None => None,
    };
    let name = body
        .name
        .as_deref()
        .map(|n| text(&mut errors, "name", n, 0, 100));
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let wanted = accounts::UserChange {
        role,
        is_active: body.is_active,
        name,
    };
    let updated = accounts::update_user(call.app, &call.actor(), id, wanted).await?;
    Ok(reply::ok(&UserDto::from(updated)))
}

/// POST /api/v1/users/{id}/reset-mfa/: the user then logs in with the password alone.
pub async fn reset_mfa(call: Call<'_>) -> Result<Response, ApiError> {
    let target_id = call.id()?;
    if call.authorized()?.principal().method == Method::ApiKey {
        return Err(ApiError::InteractiveSessionRequired);
    }
    accounts::reset_mfa(call.app, &call.actor(), target_id).await?;
    Ok(reply::no_content())
}

// ---- organization --------------------------------------------------------------------------

#[derive(Serialize)]
struct OrganizationDto {
    id: Id,
    name: String,
    created_at: Timestamp,
}

impl From<organizations::Organization> for OrganizationDto {
    fn from(o: organizations::Organization) -> Self {
        OrganizationDto {
            id: o.id,
            name: o.name,
            created_at: Timestamp(o.created_at),
        }
    }
}

/// GET /api/v1/organization/
pub async fn organization(call: Call<'_>) -> Result<Response, ApiError> {
    let org = call.authorized()?.principal().organization_id;
    let o = call
        .app
        .store
        .read(move |c| organizations::get(c, org))
        .await?;
    Ok(reply::ok(&OrganizationDto::from(o)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

/// PATCH /api/v1/organization/
pub async fn rename(call: Call<'_>) -> Result<Response, ApiError> {
    let body: Rename = call.json()?;
    let mut errors = FieldErrors::new();
    let name = text(&mut errors, "name", &body.name, 1, 100);
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let org = call.authorized()?.principal().organization_id;
    let o = accounts::rename_organization(call.app, &call.actor(), org, name).await?;
    Ok(reply::ok(&OrganizationDto::from(o)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Transfer {
    user_id: Id,
    password: Secret,
}

/// POST /api/v1/organization/transfer-ownership/: the old owner becomes an administrator.
pub async fn transfer(call: Call<'_>) -> Result<Response, ApiError> {
    let body: Transfer = call.json()?;
    password_field("password", &body.password)?;
    let owner_id = call.authorized()?.principal().user_id;
    let owner = call
        .app
        .store
        .read(move |c| users::get(c, owner_id))
        .await?;
    let ok = call
        .app
        .hasher
        .verify(body.password, Some(owner.password_hash.clone()))
        .await
        .map_err(busy)?;
    if !ok {
        return Err(ApiError::field("password", "is wrong"));
    }
    accounts::transfer_ownership(call.app, &call.actor(), owner_id, body.user_id).await?;
    Ok(reply::no_content())
}

// ---- audit log -----------------------------------------------------------------------------

#[derive(Serialize)]
struct AuditDto {
    id: Id,
    at: Timestamp,
    action: String,
    outcome: String,
    user_id: Option<Id>,
    api_key_prefix: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    target_type: Option<String>,
    target_id: Option<Id>,
    details: serde_json::Value,
}

impl From<audit::Stored> for AuditDto {
    fn from(e: audit::Stored) -> Self {
        AuditDto {
            id: e.id,
            at: Timestamp(e.at),
            action: e.action,
            outcome: e.outcome,
            user_id: e.user_id,
            api_key_prefix: e.api_key_prefix,
            ip: e.ip,
            user_agent: e.user_agent,
            target_type: e.target_type,
            target_id: e.target_id,
            details: serde_json::from_str(&e.details).unwrap_or_default(),
        }
    }
}

fn filters(call: &Call<'_>) -> Result<audit::Filter, ApiError> {
    let user_id = match call.ctx.query_param("user_id") {
        Some(v) if !v.is_empty() => Some(
            v.parse::<Id>()
                .map_err(|_| ApiError::field("user_id", "must be an integer"))?,
        ),
        _ => None,
    };
    Ok(audit::Filter {
        action: call.ctx.query_param("action").filter(|a| !a.is_empty()),
        user_id,
    })
}

/// GET /api/v1/audit-logs/
pub async fn audit_log(call: Call<'_>) -> Result<Response, ApiError> {
    let page = PageRequest::from(call.ctx)?;
    let filter = filters(&call)?;
    let org = call.authorized()?.principal().organization_id;
    let (offset, size) = (page.offset(), page.size);
    let (count, rows) = call
        .app
        .store
        .read(move |c| audit::page(c, org, &filter, offset, size))
        .await?;
    let results: Vec<AuditDto> = rows.into_iter().map(Into::into).collect();
    Ok(reply::ok(&page.wrap(&call, count, results)?))
}

/// GET /api/v1/audit-logs/export/?format=csv|json
pub async fn export(call: Call<'_>) -> Result<Response, ApiError> {
    let format = call
        .ctx
        .query_param("format")
        .unwrap_or_else(|| "json".into());
    if format != "csv" && format != "json" {
        return Err(ApiError::field("format", "must be csv or json"));
    }
    let filter = filters(&call)?;
    let org = call.authorized()?.principal().organization_id;
    let rows = call
        .app
        .store
        .read(move |c| audit::page(c, org, &filter, 0, u64::MAX >> 1))
        .await?
        .1;
    let entries: Vec<AuditDto> = rows.into_iter().map(Into::into).collect();
    if format == "json" {
        return Ok(reply::ok(&entries));
    }
    let mut csv = String::from(
        "id,at,action,outcome,user_id,api_key_prefix,ip,user_agent,target_type,target_id,details\n",
    );
    for e in &entries {
        let fields = [
            e.id.to_string(),
            e.at.to_string(),
            e.action.clone(),
            e.outcome.clone(),
            e.user_id.map(|v| v.to_string()).unwrap_or_default(),
            e.api_key_prefix.clone().unwrap_or_default(),
            e.ip.clone().unwrap_or_default(),
            e.user_agent.clone().unwrap_or_default(),
            e.target_type.clone().unwrap_or_default(),
            e.target_id.map(|v| v.to_string()).unwrap_or_default(),
            e.details.to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    Ok(reply::text(csv, "text/csv; charset=utf-8"))
}

/// RFC 4180 quoting; a leading formula character is defused for spreadsheets.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}
