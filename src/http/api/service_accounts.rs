//! Service accounts (contract 10.4), administrators and the owner, from a JWT session.
//!
//! GET|POST         /api/v1/service-accounts/        {name, role, description?}
//! GET|PATCH|DELETE /api/v1/service-accounts/{id}/   {name?, description?, role?, is_active?}
//! GET|POST         /api/v1/service-accounts/{id}/keys/          (the body of section 4)
//! DELETE           /api/v1/service-accounts/{id}/keys/{key_id}/

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api_keys::{self, Extras, KeyDto};
use super::{text, Call, Sortable};
use crate::domain::{now, Id, Role, Timestamp};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::service_accounts::{self as ops, Edit};
use crate::ops::{keys, Caller};
use crate::store::users::User;
use crate::store::{api_keys as stored_keys, service_accounts};

#[derive(Serialize, ToSchema)]
pub(super) struct ServiceAccountDto {
    id: Id,
    name: String,
    role: &'static str,
    description: String,
    is_active: bool,
    /// The user who made it.
    created_by: Option<Id>,
    created_at: Timestamp,
    /// Its keys usable now (neither revoked nor expired).
    key_count: i64,
}

impl ServiceAccountDto {
    fn new(account: User, key_count: i64) -> Self {
        ServiceAccountDto {
            id: account.id,
            name: account.name,
            role: account.role.as_str(),
            description: account.description,
            is_active: account.is_active,
            created_by: account.created_by,
            created_at: Timestamp(account.created_at),
            key_count,
        }
    }
}

/// The fields the list may be ordered by (`?ordering=`); the oldest first without one.
pub(super) const SORTABLE: Sortable = Sortable {
    searched: "the name and the description",
    fields: &[
        ("name", "LOWER(name)"),
        (
            "role",
            "CASE role WHEN 'administrator' THEN 1 WHEN 'analyst' THEN 2 WHEN 'member' THEN 3 \
             ELSE 4 END",
        ),
        ("created_at", "created_at"),
    ],
    default: crate::store::Order {
        column: "id",
        descending: false,
    },
};

fn role(errors: &mut FieldErrors, raw: &str) -> Role {
    match raw.parse::<Role>() {
        Ok(Role::Owner) => {
            errors.insert(
                "role".into(),
                vec!["must be administrator, analyst, member or viewer (not owner)".into()],
            );
            Role::Viewer
        }
        Ok(role) => role,
        Err(_) => {
            errors.insert(
                "role".into(),
                vec!["must be one of administrator, analyst, member, viewer".into()],
            );
            Role::Viewer
        }
    }
}

/// The caller's organization's service account named by the path's first id.
async fn account(call: &Call<'_>, caller: &Caller) -> Result<User, ApiError> {
    let (org, id) = (caller.organization_id(), call.id()?);
    call.app
        .store
        .read(move |c| Ok(ops::find(c, org, id)))
        .await?
}

/// The answer for one account, with its key count read now.
async fn view(call: &Call<'_>, account: User) -> Result<ServiceAccountDto, ApiError> {
    let id = account.id;
    let counts = call
        .app
        .store
        .read(move |c| service_accounts::key_counts(c, &[id]))
        .await?;
    let count = counts.get(&id).copied().unwrap_or(0);
    Ok(ServiceAccountDto::new(account, count))
}

/// GET /api/v1/service-accounts/
pub async fn list(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let page = super::PageRequest::from(call.ctx)?;
    let listing = page.listing(&SORTABLE)?;
    let org = caller.organization_id();
    let (count, accounts, key_counts) = call
        .app
        .store
        .read(move |c| {
            let (count, accounts) = service_accounts::page(c, org, &listing)?;
            let ids: Vec<Id> = accounts.iter().map(|a| a.id).collect();
            let key_counts = service_accounts::key_counts(c, &ids)?;
            Ok((count, accounts, key_counts))
        })
        .await?;
    let results: Vec<ServiceAccountDto> = accounts
        .into_iter()
        .map(|a| {
            let keys = key_counts.get(&a.id).copied().unwrap_or(0);
            ServiceAccountDto::new(a, keys)
        })
        .collect();
    Ok(reply::ok(&page.wrap(&call, count, results)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateRequest {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// administrator, analyst, member or viewer; never above the caller's own role.
    role: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
}

/// POST /api/v1/service-accounts/
pub async fn create(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: CreateRequest = call.json()?;
    let mut errors = FieldErrors::new();
    let name = text(&mut errors, "name", &request.name, 1, 100);
    let role = role(&mut errors, &request.role);
    let description = text(
        &mut errors,
        "description",
        request.description.as_deref().unwrap_or(""),
        0,
        500,
    );
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let org = caller.organization_id();
    let account = ops::create(call.app, &caller.actor(), org, name, role, description).await?;
    Ok(reply::created(&ServiceAccountDto::new(account, 0)))
}

/// GET /api/v1/service-accounts/{id}/
pub async fn get(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let account = account(&call, &caller).await?;
    Ok(reply::ok(&view(&call, account).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateRequest {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
    #[serde(default)]
    role: Option<String>,
    /// `false` revokes every key of the account at once; `true` does not bring them back.
    #[serde(default)]
    is_active: Option<bool>,
}

/// PATCH /api/v1/service-accounts/{id}/
pub async fn update(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: UpdateRequest = call.json()?;
    let id = call.id()?;
    let mut errors = FieldErrors::new();
    let edit = Edit {
        name: request.name.map(|n| text(&mut errors, "name", &n, 1, 100)),
        description: request
            .description
            .map(|d| text(&mut errors, "description", &d, 0, 500)),
        role: request.role.map(|r| role(&mut errors, &r)),
        is_active: request.is_active,
    };
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let org = caller.organization_id();
    let account = ops::update(call.app, &caller.actor(), org, id, edit).await?;
    Ok(reply::ok(&view(&call, account).await?))
}

/// DELETE /api/v1/service-accounts/{id}/
pub async fn delete(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let id = call.id()?;
    ops::delete(call.app, &caller.actor(), caller.organization_id(), id).await?;
    Ok(reply::no_content())
}

/// POST /api/v1/service-accounts/{id}/keys/: a key that acts as the service account.
pub async fn create_key(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: api_keys::CreateRequest = call.json()?;
    let account = account(&call, &caller).await?;
    let spec = api_keys::validate(request, caller.principal())?;
    // Active, and the scopes within its role: checked by the operation, as committed.
    let (actor, org) = (caller.actor(), caller.organization_id());
    let created = keys::create_for(call.app, &actor, org, account.id, spec).await?;
    let extras = Extras::new_key_of(&call, account.id);
    Ok(reply::created(&KeyDto::new(
        created.key,
        Some(created.secret),
        now(),
        &extras,
        true,
    )))
}

/// GET /api/v1/service-accounts/{id}/keys/
pub async fn list_keys(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let account = account(&call, &caller).await?;
    api_keys::page_of(&call, caller.principal(), Some(account.id)).await
}

/// DELETE /api/v1/service-accounts/{id}/keys/{key_id}/
pub async fn revoke_key(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let account = account(&call, &caller).await?;
    let key_id = call.key_id()?;
    let key = call
        .app
        .store
        .read(move |c| stored_keys::get(c, key_id))
        .await?;
    if key.user_id != account.id {
        return Err(ApiError::NotFound);
    }
    keys::revoke(call.app, &caller, &key).await?;
    Ok(reply::no_content())
}
