//! API keys: created from a JWT session, shown once, revoked or rotated at once.
//!
//! POST   /api/auth/api-keys/              {name, description?, scopes?, expires_in_days?}
//! GET    /api/auth/api-keys/              ?all=true for administrators
//! GET    /api/auth/api-keys/{id}/
//! DELETE /api/auth/api-keys/{id}/
//! POST   /api/auth/api-keys/{id}/rotate/
//! GET    /api/v1/auth/verify/             any credential

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{text, Call, PageRequest};
use crate::auth::permission::Permission;
use crate::auth::principal::{Authorized, Principal};
use crate::domain::{now, Id, Timestamp, UnixTime};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::keys::{self, KeySpec};
use crate::store::api_keys::{self, ApiKey};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateRequest {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    expires_in_days: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct KeyDto {
    id: Id,
    name: String,
    description: String,
    /// The whole key: in the create and rotate answers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    prefix: String,
    scopes: Option<Vec<String>>,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    last_used_at: Option<Timestamp>,
    usage_count: i64,
    status: &'static str,
}

impl KeyDto {
    fn new(key: ApiKey, secret: Option<String>, now: UnixTime) -> Self {
        let status = if key.revoked_at.is_some() {
            "revoked"
        } else if key.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        };
        KeyDto {
            id: key.id,
            name: key.name,
            description: key.description,
            key: secret,
            prefix: key.prefix,
            scopes: key
                .scopes
                .map(|s| s.split_whitespace().map(str::to_string).collect()),
            created_at: Timestamp(key.created_at),
            expires_at: key.expires_at.map(Timestamp),
            last_used_at: key.last_used_at.map(Timestamp),
            usage_count: key.usage_count,
            status,
        }
    }
}

fn validate(request: CreateRequest, creator: &Principal) -> Result<KeySpec, ApiError> {
    let mut errors = FieldErrors::new();
    let name = text(&mut errors, "name", &request.name, 1, 100);
    let description = text(
        &mut errors,
        "description",
        request.description.as_deref().unwrap_or(""),
        0,
        500,
    );
    if let Some(days) = request.expires_in_days {
        if ![30, 90, 365].contains(&days) {
            errors.insert(
                "expires_in_days".into(),
                vec!["must be 30, 90, 365 or null (never)".into()],
            );
        }
    }
    let scopes = match request.scopes {
        None => None,
        Some(names) if names.is_empty() => {
            errors.insert(
                "scopes".into(),
                vec!["must not be empty; leave it out for full access".into()],
            );
            None
        }
        Some(names) => {
            let mut scopes = Vec::new();
            for name in &names {
                match name.parse::<Permission>() {
                    Ok(scope) if !scopes.contains(&scope) => scopes.push(scope),
                    Ok(_) => {}
                    Err(()) => errors
                        .entry("scopes".into())
                        .or_default()
                        .push(format!("unknown scope `{name}`")),
                }
            }
            Some(scopes)
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    if let Some(scopes) = &scopes {
        let beyond: Vec<&str> = scopes
            .iter()
            .filter(|s| s.reach(creator.role).is_none())
            .map(|s| s.as_str())
            .collect();
        if !beyond.is_empty() {
            return Err(ApiError::ScopeExceedsRole(format!(
                "your role ({}) can never use: {}",
                creator.role,
                beyond.join(", ")
            )));
        }
    }
    Ok(KeySpec {
        name,
        description,
        scopes,
        expires_in_days: request.expires_in_days,
    })
}

/// POST /api/auth/api-keys/
pub async fn create(call: Call<'_>) -> Result<Response, ApiError> {
    let request: CreateRequest = call.json()?;
    let spec = validate(request, call.authorized()?.principal())?;
    let created = keys::create(call.app, &call.actor(), spec).await?;
    Ok(reply::created(&KeyDto::new(
        created.key,
        Some(created.secret),
        now(),
    )))
}

/// A key the caller may see: their own, or any of the organization's for administrators.
async fn visible_key(call: &Call<'_>, auth: &Authorized) -> Result<ApiKey, ApiError> {
    let id = call.id()?;
    let caller = auth.principal();
    let key = call.app.store.read(move |c| api_keys::get(c, id)).await?;
    let own = key.user_id == caller.user_id;
    let admin_reach = caller.role.is_admin() && key.organization_id == caller.organization_id;
    if own || admin_reach {
        Ok(key)
    } else {
        Err(ApiError::NotFound)
    }
}

/// GET /api/auth/api-keys/
pub async fn list(call: Call<'_>) -> Result<Response, ApiError> {
    let page = PageRequest::from(call.ctx)?;
    let caller = call.authorized()?.principal().clone();
    let all = match call.ctx.query_param("all").as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(ApiError::field("all", "must be true or false")),
    };
    if all && !caller.role.is_admin() {
        return Err(ApiError::denied(
            "only administrators may list the organization's keys",
        ));
    }
    let user = (!all).then_some(caller.user_id);
    let (organization, offset, size) = (caller.organization_id, page.offset(), page.size);
    let (count, keys) = call
        .app
        .store
        .read(move |c| api_keys::page(c, organization, user, offset, size))
        .await?;
    let now = now();
    let results = keys
        .into_iter()
        .map(|k| KeyDto::new(k, None, now))
        .collect();
    Ok(reply::ok(&page.wrap(&call, count, results)?))
}

/// GET /api/auth/api-keys/{id}/
pub async fn get(call: Call<'_>) -> Result<Response, ApiError> {
    let auth = call.authorized()?.clone();
    let key = visible_key(&call, &auth).await?;
    Ok(reply::ok(&KeyDto::new(key, None, now())))
}

/// DELETE /api/auth/api-keys/{id}/
pub async fn revoke(call: Call<'_>) -> Result<Response, ApiError> {
    let auth = call.authorized()?.clone();
    let key = visible_key(&call, &auth).await?;
    // The answer leaves once the key is refused here and on every other server.
    keys::revoke(call.app, &call.actor(), &key).await?;
    Ok(reply::no_content())
}

/// POST /api/auth/api-keys/{id}/rotate/: only the key's creator; the successor is theirs.
pub async fn rotate(call: Call<'_>) -> Result<Response, ApiError> {
    let auth = call.authorized()?.clone();
    let old = visible_key(&call, &auth).await?;
    if old.user_id != auth.principal().user_id {
        return Err(ApiError::denied(
            "only the key's creator may rotate it; administrators may revoke it",
        ));
    }
    if old.revoked_at.is_some() {
        return Err(ApiError::Conflict("a revoked key cannot be rotated".into()));
    }
    let created = keys::rotate(call.app, &call.actor(), &old).await?;
    Ok(reply::created(&KeyDto::new(
        created.key,
        Some(created.secret),
        now(),
    )))
}

#[derive(Serialize, ToSchema)]
pub(super) struct VerifyUser {
    id: Id,
    email: String,
    role: &'static str,
}

#[derive(Serialize, ToSchema)]
pub(super) struct VerifyOrganization {
    id: Id,
    name: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct VerifyKey {
    id: Id,
    name: String,
    prefix: String,
    scopes: Option<Vec<String>>,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct VerifyResponse {
    valid: bool,
    auth_method: &'static str,
    user: VerifyUser,
    organization: VerifyOrganization,
    api_key: Option<VerifyKey>,
    permissions: Vec<&'static str>,
}

/// GET /api/v1/auth/verify/
pub fn verify(call: Call<'_>) -> Result<Response, ApiError> {
    let principal = call.authorized()?.principal();
    let live = &call.app.auth.live;
    let user = live
        .user(principal.user_id)
        .ok_or(ApiError::TokenNotValid)?;
    let api_key = principal.key.as_ref().map(|key| VerifyKey {
        id: key.id,
        name: key.name.to_string(),
        prefix: key.prefix.to_string(),
        scopes: key
            .scopes
            .as_ref()
            .map(|s| s.iter().map(|p| p.as_str().to_string()).collect()),
        created_at: Timestamp(key.created_at),
        expires_at: key.expires_at.map(Timestamp),
    });
    Ok(reply::ok(&VerifyResponse {
        valid: true,
        auth_method: principal.method.as_str(),
        user: VerifyUser {
            id: user.id,
            email: user.email.to_string(),
            role: user.role.as_str(),
        },
        organization: VerifyOrganization {
            id: user.organization_id,
            name: live.organization_name(user.organization_id).to_string(),
        },
        api_key,
        permissions: principal.permissions(),
    }))
}
