//! The caller's organization: its name, and the owner handing ownership to another user.
//!
//! GET|PATCH /api/v1/organization/   POST /api/v1/organization/transfer-ownership/

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::password_field;
use super::{text, Call};
use crate::domain::{Id, Secret, Timestamp};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::Caller;
use crate::ops::{accounts, sessions};
use crate::store::{organizations, users};

#[derive(Serialize, ToSchema)]
pub(super) struct OrganizationDto {
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
pub async fn get(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let org = caller.organization_id();
    let o = call
        .app
        .store
        .read(move |c| organizations::get(c, org))
        .await?;
    Ok(reply::ok(&OrganizationDto::from(o)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Rename {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
}

/// PATCH /api/v1/organization/
pub async fn rename(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let body: Rename = call.json()?;
    let mut errors = FieldErrors::new();
    let name = text(&mut errors, "name", &body.name, 1, 100);
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let org = caller.organization_id();
    let o = accounts::rename_organization(call.app, &caller.actor(), org, name).await?;
    Ok(reply::ok(&OrganizationDto::from(o)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Transfer {
    user_id: Id,
    password: Secret,
}

/// POST /api/v1/organization/transfer-ownership/: the old owner becomes an administrator.
pub async fn transfer(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let body: Transfer = call.json()?;
    password_field("password", &body.password)?;
    let owner_id = caller.principal().user_id;
    let owner = call
        .app
        .store
        .read(move |c| users::get(c, owner_id))
        .await?;
    let actor = caller.actor();
    // A wrong password here counts as a failed login of the owner's account.
    sessions::recheck_password(call.app, &actor, &owner, "password", body.password, None).await?;
    accounts::transfer_ownership(call.app, &actor, owner_id, body.user_id).await?;
    Ok(reply::no_content())
}
