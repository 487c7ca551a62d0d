//! The caller's organization: its name, the owner handing ownership to another user, and its
//! security policy.
//!
//! GET|PATCH /api/v1/organization/   POST /api/v1/organization/transfer-ownership/
//! GET|PATCH /api/v1/organization/security-policy/   GET .../security-policy/violations/

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::password_field;
use super::{text, Call};
use crate::auth::policy::{RequireMfa, SecurityPolicy, KEY_LIFETIMES};
use crate::domain::{Id, Secret, Timestamp};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::Caller;
use crate::ops::{accounts, policy, sessions};
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

/// The organization's security policy (contract 10.4).
#[derive(Serialize, ToSchema)]
pub(super) struct PolicyDto {
    /// `none`, `administrators` or `everyone`.
    require_mfa: &'static str,
    /// 30, 90 or 365: every key must expire within it; `null`: no limit.
    key_max_lifetime_days: Option<i64>,
    allow_never_expiring_keys: bool,
    require_ip_allowlist_for_write_scopes: bool,
    /// A duration like `"12h"`: the longest a new session lives; `null`: `auth.refresh_ttl`.
    session_max_lifetime: Option<String>,
}

impl From<SecurityPolicy> for PolicyDto {
    fn from(p: SecurityPolicy) -> Self {
        PolicyDto {
            require_mfa: p.require_mfa.as_str(),
            key_max_lifetime_days: p.key_max_lifetime_days,
            allow_never_expiring_keys: p.allow_never_expiring_keys,
            require_ip_allowlist_for_write_scopes: p.require_ip_allowlist_for_write_scopes,
            session_max_lifetime: p.session_max_lifetime.map(crate::domain::format_duration),
        }
    }
}

/// GET /api/v1/organization/security-policy/
pub async fn policy(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let current = policy::get(call.app, caller.organization_id()).await?;
    Ok(reply::ok(&PolicyDto::from(current)))
}

/// A change of policy: absent fields stay as they are; `null` clears the two that may be null.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyChange {
    #[serde(default)]
    require_mfa: Option<String>,
    #[serde(default, deserialize_with = "super::api_keys::present")]
    key_max_lifetime_days: Option<Option<i64>>,
    #[serde(default)]
    allow_never_expiring_keys: Option<bool>,
    #[serde(default)]
    require_ip_allowlist_for_write_scopes: Option<bool>,
    /// A duration from `"5m"` to `"365d"`, or `null`.
    #[serde(default, deserialize_with = "super::api_keys::present")]
    session_max_lifetime: Option<Option<String>>,
}

/// The shortest and longest `session_max_lifetime`, in seconds.
const SESSION_LIFETIMES: (u64, u64) = (5 * 60, 365 * 86_400);

/// PATCH /api/v1/organization/security-policy/: the owner, from a session.
pub async fn change_policy(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let body: PolicyChange = call.json()?;
    let mut errors = FieldErrors::new();
    let mut edit = policy::PolicyEdit {
        allow_never_expiring_keys: body.allow_never_expiring_keys,
        require_ip_allowlist_for_write_scopes: body.require_ip_allowlist_for_write_scopes,
        ..policy::PolicyEdit::default()
    };
    if let Some(text) = body.require_mfa {
        edit.require_mfa = RequireMfa::parse(&text);
        if edit.require_mfa.is_none() {
            errors.insert(
                "require_mfa".into(),
                vec!["must be none, administrators or everyone".into()],
            );
        }
    }
    if let Some(days) = body.key_max_lifetime_days {
        if days.is_some_and(|d| !KEY_LIFETIMES.contains(&d)) {
            errors.insert(
                "key_max_lifetime_days".into(),
                vec!["must be 30, 90, 365 or null (no limit)".into()],
            );
        }
        edit.key_max_lifetime_days = Some(days);
    }
    if let Some(lifetime) = body.session_max_lifetime {
        edit.session_max_lifetime = Some(match lifetime {
            None => None,
            Some(text) => match humantime::parse_duration(text.trim()) {
                Ok(d) if (SESSION_LIFETIMES.0..=SESSION_LIFETIMES.1).contains(&d.as_secs()) => {
                    Some(d.as_secs() as i64)
                }
                _ => {
                    errors.insert(
                        "session_max_lifetime".into(),
                        vec!["must be a duration from 5m to 365d, like \"12h\", or null".into()],
                    );
                    None
                }
            },
        });
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let set = policy::set(call.app, &caller, edit).await?;
    Ok(reply::ok(&PolicyDto::from(set)))
}

/// A key that breaks the policy today.
#[derive(Serialize, ToSchema)]
pub(super) struct KeyViolationDto {
    id: Id,
    prefix: String,
    /// The owner's email, or the name of the service account the key acts as.
    owner: String,
    owner_id: Id,
    /// The key acts as a service account.
    service_account: bool,
    /// The policy's field it breaks.
    rule: &'static str,
}

/// A person who breaks the policy today.
#[derive(Serialize, ToSchema)]
pub(super) struct UserViolationDto {
    id: Id,
    email: String,
    rule: &'static str,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ViolationsDto {
    keys: Vec<KeyViolationDto>,
    users: Vec<UserViolationDto>,
}

/// GET /api/v1/organization/security-policy/violations/
pub async fn violations(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let (keys, users) = policy::violations(call.app, caller.organization_id()).await?;
    Ok(reply::ok(&ViolationsDto {
        keys: keys
            .into_iter()
            .map(|k| KeyViolationDto {
                id: k.id,
                prefix: k.prefix,
                owner: k.owner_email.unwrap_or(k.owner_name),
                owner_id: k.owner_id,
                service_account: k.service_account,
                rule: k.rule,
            })
            .collect(),
        users: users
            .into_iter()
            .map(|u| UserViolationDto {
                id: u.id,
                email: u.email,
                rule: u.rule,
            })
            .collect(),
    }))
}
