//! User administration (administrators and the owner): the organization's accounts.
//!
//! GET|POST  /api/v1/users/          GET|PATCH /api/v1/users/{id}/   {role?, is_active?, name?}
//! POST      /api/v1/users/{id}/reset-mfa/   /unlock/   /set-password/ {password}

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::password_problem;
use super::{org_page, text, Call, Sortable};
use crate::domain::{Email, Id, Role, Secret, Timestamp};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::accounts;
use crate::ops::Caller;
use crate::store::users;

#[derive(Serialize, ToSchema)]
pub(super) struct UserDto {
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

/// The fields the list may be ordered by (`?ordering=`); by id (the order people joined)
/// without one.
pub(super) const SORTABLE: Sortable = Sortable {
    searched: "the email and the name",
    fields: &[
        ("email", "LOWER(email)"),
        // Users without a name after those with one, either way.
        ("name", "NULLIF(LOWER(name), '')"),
        // By rank, the owner first.
        (
            "role",
            "CASE role WHEN 'owner' THEN 0 WHEN 'administrator' THEN 1 WHEN 'analyst' THEN 2 \
             WHEN 'member' THEN 3 ELSE 4 END",
        ),
        ("created_at", "created_at"),
    ],
    default: crate::store::Order {
        column: "id",
        descending: false,
    },
};

/// GET /api/v1/users/
pub async fn list(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    org_page::<_, UserDto, _>(
        call,
        caller,
        &SORTABLE,
        super::Reads::OneStatement,
        users::page,
    )
    .await
}

/// GET /api/v1/users/{id}/
pub async fn get(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let org = caller.organization_id();
    let id = call.id()?;
    let user = call.app.store.read(move |c| users::get(c, id)).await?;
    // A service account is not a user here: /api/v1/service-accounts/ has it.
    if user.organization_id != org || user.service_account {
        return Err(ApiError::NotFound);
    }
    Ok(reply::ok(&UserDto::from(user)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateUser {
    #[schema(max_length = 254)]
    email: String,
    password: Secret,
    role: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    name: Option<String>,
}

/// POST /api/v1/users/
pub async fn create(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let body: CreateUser = call.json()?;
    // Every field's problem at once.
    let mut errors = FieldErrors::new();
    password_problem(&mut errors, "password", &body.password);
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
    let org = caller.organization_id();
    let user = accounts::create_user(
        call.app,
        &caller.actor(),
        org,
        email,
        name,
        role,
        body.password,
    )
    .await?;
    Ok(reply::created(&UserDto::from(user)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateUser {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    #[schema(max_length = 100)]
    name: Option<String>,
}

/// PATCH /api/v1/users/{id}/: a role change or deactivation holds from the next request.
pub async fn update(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
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
    let updated = accounts::update_user(call.app, &caller.actor(), id, wanted).await?;
    Ok(reply::ok(&UserDto::from(updated)))
}

/// POST /api/v1/users/{id}/unlock/: the user may sign in again at once.
pub async fn unlock(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let target_id = call.id()?;
    accounts::unlock(call.app, &caller.actor(), target_id).await?;
    Ok(reply::no_content())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetPasswordRequest {
    password: Secret,
}

/// POST /api/v1/users/{id}/set-password/: a temporary password, which the user replaces at
/// their next login before anything else.
pub async fn set_password(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let target_id = call.id()?;
    let request: SetPasswordRequest = call.json()?;
    let mut errors = FieldErrors::new();
    password_problem(&mut errors, "password", &request.password);
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    accounts::set_temporary_password(call.app, &caller.actor(), target_id, request.password)
        .await?;
    Ok(reply::no_content())
}

/// POST /api/v1/users/{id}/reset-mfa/: the user then logs in with the password alone.
pub async fn reset_mfa(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let target_id = call.id()?;
    accounts::reset_mfa(call.app, &caller.actor(), target_id).await?;
    Ok(reply::no_content())
}
