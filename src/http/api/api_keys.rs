//! API keys: created from a JWT session, shown once, revoked or rotated at once.
//!
//! POST   /api/auth/api-keys/              {name, description?, scopes?, expires_in_days?,
//!                                          allowed_ips?, canary?}
//! GET    /api/auth/api-keys/              ?all=true for administrators
//! GET    /api/auth/api-keys/{id}/
//! PATCH  /api/auth/api-keys/{id}/         {name?, description?, allowed_ips?}
//! DELETE /api/auth/api-keys/{id}/
//! POST   /api/auth/api-keys/{id}/rotate/  {overlap?}
//! POST   /api/auth/api-keys/leak-report/  {text}: administrators
//! GET    /api/v1/auth/verify/             any credential

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{text, Call, PageRequest};
use crate::auth::permission::Permission;
use crate::auth::principal::Principal;
use crate::domain::{now, Id, Timestamp, UnixTime};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::keys::{self, KeySpec};
use crate::ops::Caller;
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
    /// Addresses or CIDR ranges the key may be used from (at most 32); absent or `null`: any.
    #[serde(default)]
    #[schema(max_items = 32)]
    allowed_ips: Option<Vec<String>>,
    /// A decoy key (administrators): every use is refused as unknown and audited.
    #[serde(default)]
    canary: bool,
}

/// Uses of one scope of a scoped key.
#[derive(Serialize, ToSchema)]
pub(super) struct ScopeUse {
    count: i64,
    last_used_at: Option<Timestamp>,
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
    revoked_at: Option<Timestamp>,
    /// The creator's email (the organization view's owner column); `null` for a service
    /// account's key.
    owner_email: Option<String>,
    /// The service account the key acts as; `null` for a person's key.
    service_account: Option<ServiceAccountRef<'static>>,
    last_used_ip: Option<String>,
    last_used_user_agent: Option<String>,
    allowed_ips: Option<Vec<String>>,
    /// The key that replaced this one in a rotation.
    replaced_by: Option<Id>,
    /// Administrators only.
    #[serde(skip_serializing_if = "Option::is_none")]
    canary: Option<bool>,
    /// Per scope of a scoped key: how often and when last it was used (`{}` unscoped).
    scope_usage: std::collections::BTreeMap<String, ScopeUse>,
}

/// Whom a key acts as: a person (their email) or a service account.
#[derive(Clone)]
enum Owner {
    Person(String),
    ServiceAccount(ServiceAccountRef<'static>),
}

impl Owner {
    fn of(id: Id, email: &str, name: &str, service_account: bool) -> Owner {
        if service_account {
            Owner::ServiceAccount(ServiceAccountRef {
                id,
                name: name.to_string().into(),
            })
        } else {
            Owner::Person(email.to_string())
        }
    }
}

/// What a key's answer shows beyond its row: uses per scope, and whom it acts as.
#[derive(Default)]
pub(super) struct Extras {
    scopes: crate::store::api_keys::ScopeUsage,
    owners: std::collections::HashMap<Id, Owner>,
}

impl Extras {
    /// A key just made for `user_id`: no uses yet, and its owner as the live state knows them.
    pub(super) fn new_key_of(call: &Call<'_>, user_id: Id) -> Extras {
        let mut extras = Extras::default();
        if let Some(user) = call.app.auth.live.user(user_id) {
            extras.owners.insert(
                user_id,
                Owner::of(user.id, &user.email, &user.name, user.service_account),
            );
        }
        extras
    }
}

/// Reads the extras of `keys` in the caller's read transaction.
pub(super) fn extras(
    c: &crate::store::Db<'_>,
    keys: &[ApiKey],
) -> crate::store::StoreResult<Extras> {
    // Two queries for the whole page: its owners, and its keys' scope usage.
    let ids: Vec<Id> = keys.iter().map(|k| k.id).collect();
    let mut owner_ids: Vec<Id> = keys.iter().map(|k| k.user_id).collect();
    owner_ids.sort_unstable();
    owner_ids.dedup();
    let owners = crate::store::users::some(c, &owner_ids)?
        .into_iter()
        .map(|u| {
            let owner = Owner::of(u.id, &u.email, &u.name, u.service_account);
            (u.id, owner)
        })
        .collect();
    Ok(Extras {
        scopes: api_keys::scope_usage(c, &ids)?,
        owners,
    })
}

impl KeyDto {
    /// `admin`: the viewer is an administrator, who sees `canary`.
    pub(super) fn new(
        key: ApiKey,
        secret: Option<String>,
        now: UnixTime,
        usage: &Extras,
        admin: bool,
    ) -> Self {
        let status = keys::status(&key, now);
        let used = usage.scopes.get(&key.id);
        let scope_usage = key
            .scopes
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(|scope| {
                let (count, last) = used
                    .and_then(|u| u.iter().find(|(s, _, _)| s == scope))
                    .map_or((0, None), |(_, count, at)| (*count, Some(Timestamp(*at))));
                (
                    scope.to_string(),
                    ScopeUse {
                        count,
                        last_used_at: last,
                    },
                )
            })
            .collect();
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
            revoked_at: key.revoked_at.map(Timestamp),
            owner_email: match usage.owners.get(&key.user_id) {
                Some(Owner::Person(email)) => Some(email.clone()),
                _ => None,
            },
            service_account: match usage.owners.get(&key.user_id) {
                Some(Owner::ServiceAccount(account)) => Some(account.clone()),
                _ => None,
            },
            last_used_ip: key.last_used_ip,
            last_used_user_agent: key.last_used_user_agent,
            allowed_ips: key
                .allowed_ips
                .map(|ips| ips.split_whitespace().map(str::to_string).collect()),
            replaced_by: key.replaced_by,
            canary: admin.then_some(key.canary),
            scope_usage,
        }
    }
}

/// At most this many addresses or ranges per key.
const MAX_ALLOWED_IPS: usize = 32;

/// An allowlist as sent: `null` is none; otherwise 1 to 32 addresses or CIDR ranges.
fn allowed_ips(errors: &mut FieldErrors, raw: Option<Vec<String>>) -> Option<Vec<ipnet::IpNet>> {
    let raw = raw?;
    let mut problem = |p: String| errors.entry("allowed_ips".into()).or_default().push(p);
    if raw.is_empty() {
        problem("must not be empty; send null to allow every address".into());
        return None;
    }
    if raw.len() > MAX_ALLOWED_IPS {
        problem(format!("at most {MAX_ALLOWED_IPS} addresses or ranges"));
        return None;
    }
    let mut nets: Vec<ipnet::IpNet> = Vec::with_capacity(raw.len());
    for text in &raw {
        match crate::config::parse_ip_net(text) {
            Ok(net) if !nets.contains(&net) => nets.push(net),
            Ok(_) => {}
            Err(e) => problem(e),
        }
    }
    Some(nets)
}

/// A new key's request, checked field by field; `creator` made the request (only
/// administrators make canaries). Whether the scopes fit the role of whom the key acts as is
/// the operation's to say (`keys::create_for`), against that role as committed.
pub(super) fn validate(request: CreateRequest, creator: &Principal) -> Result<KeySpec, ApiError> {
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
        if !crate::auth::policy::KEY_LIFETIMES.contains(&days) {
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
    let allowed_ips = allowed_ips(&mut errors, request.allowed_ips);
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    if request.canary && !creator.role.is_admin() {
        return Err(ApiError::denied(
            "only administrators may create canary keys",
        ));
    }
    Ok(KeySpec {
        name,
        description,
        scopes,
        expires_in_days: request.expires_in_days,
        allowed_ips,
        canary: request.canary,
    })
}

/// POST /api/auth/api-keys/
pub async fn create(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: CreateRequest = call.json()?;
    let spec = validate(request, caller.principal())?;
    let admin = caller.principal().role.is_admin();
    let created = keys::create(call.app, &caller, spec).await?;
    let extras = Extras::new_key_of(&call, created.key.user_id);
    Ok(reply::created(&KeyDto::new(
        created.key,
        Some(created.secret),
        now(),
        &extras,
        admin,
    )))
}

/// A key the caller may see: their own, or any of the organization's for administrators.
async fn visible_key(call: &Call<'_>, caller: &Caller) -> Result<ApiKey, ApiError> {
    let id = call.id()?;
    let caller = caller.principal();
    let key = call.app.store.read(move |c| api_keys::get(c, id)).await?;
    let own = key.user_id == caller.user_id;
    let admin_reach = caller.role.is_admin() && key.organization_id == caller.organization_id;
    if own || admin_reach {
        Ok(key)
    } else {
        Err(ApiError::NotFound)
    }
}

/// The fields the list may be ordered by (`?ordering=`), newest first without one.
pub(super) const SORTABLE: super::Sortable = super::Sortable::newest_first(
    "the name, the prefix and the owner's email",
    &[
        ("name", "LOWER(name)"),
        ("prefix", "prefix"),
        ("created_at", "created_at"),
        ("expires_at", "expires_at"),
        ("last_used_at", "last_used_at"),
        ("usage_count", "usage_count"),
    ],
);

/// GET /api/auth/api-keys/
pub async fn list(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let caller = caller.principal().clone();
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
    page_of(&call, &caller, (!all).then_some(caller.user_id)).await
}

/// One page of the organization's keys, or of one owner's (a person or a service account),
/// filtered by `?status=` and searched and ordered as the query asks.
pub(super) async fn page_of(
    call: &Call<'_>,
    caller: &Principal,
    owner: Option<Id>,
) -> Result<Response, ApiError> {
    let page = PageRequest::from(call.ctx)?;
    let status = match call.ctx.query_param("status").as_deref() {
        None | Some("") => None,
        Some("active") => Some(api_keys::Status::Active),
        Some("expired") => Some(api_keys::Status::Expired),
        Some("revoked") => Some(api_keys::Status::Revoked),
        Some(_) => {
            return Err(ApiError::field(
                "status",
                "must be active, expired or revoked",
            ))
        }
    };
    // `?expiring_within=7d`: the active keys that expire within that time.
    let expiring_by = match call.ctx.query_param("expiring_within").as_deref() {
        None | Some("") => None,
        Some(text) => match humantime::parse_duration(text.trim()) {
            Ok(d)
                if d >= std::time::Duration::from_secs(60)
                    && d <= std::time::Duration::from_secs(3_650 * 86_400) =>
            {
                Some(now() + d.as_secs() as i64)
            }
            _ => {
                return Err(ApiError::field(
                    "expiring_within",
                    "must be a duration like \"7d\" or \"12h\" (1m to 3650d)",
                ))
            }
        },
    };
    let listing = page.listing(&SORTABLE)?;
    let organization = caller.organization_id;
    let (count, keys, usage) = call
        .app
        .store
        .read(move |c| {
            let (count, keys) =
                api_keys::page(c, organization, owner, status, expiring_by, &listing)?;
            let extras = extras(c, &keys)?;
            Ok((count, keys, extras))
        })
        .await?;
    let (now, admin) = (now(), caller.role.is_admin());
    let results = keys
        .into_iter()
        .map(|k| KeyDto::new(k, None, now, &usage, admin))
        .collect();
    Ok(reply::ok(&page.wrap(call, count, results)?))
}

/// One key as its owner or an administrator sees it, with its scope usage.
async fn key_view(call: &Call<'_>, caller: &Caller, key: ApiKey) -> Result<KeyDto, ApiError> {
    let one = key.clone();
    let usage = call
        .app
        .store
        .read(move |c| extras(c, std::slice::from_ref(&one)))
        .await?;
    let admin = caller.principal().role.is_admin();
    Ok(KeyDto::new(key, None, now(), &usage, admin))
}

/// GET /api/auth/api-keys/{id}/
pub async fn get(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let key = visible_key(&call, &caller).await?;
    Ok(reply::ok(&key_view(&call, &caller, key).await?))
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
    /// `null` removes the allowlist; absent leaves it as it is.
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 32)]
    allowed_ips: Option<Option<Vec<String>>>,
}

/// Tells `"field": null` (Some(None)) from an absent field (None).
pub(super) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// PATCH /api/auth/api-keys/{id}/: the key's creator or an administrator of its organization.
pub async fn update(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: UpdateRequest = call.json()?;
    let key = visible_key(&call, &caller).await?;
    let mut errors = FieldErrors::new();
    let edit = keys::KeyEdit {
        name: request.name.map(|n| text(&mut errors, "name", &n, 1, 100)),
        description: request
            .description
            .map(|d| text(&mut errors, "description", &d, 0, 500)),
        allowed_ips: request.allowed_ips.map(|ips| allowed_ips(&mut errors, ips)),
    };
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let updated = keys::update(call.app, &caller, &key, edit).await?;
    Ok(reply::ok(&key_view(&call, &caller, updated).await?))
}

/// DELETE /api/auth/api-keys/{id}/
pub async fn revoke(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let key = visible_key(&call, &caller).await?;
    // The answer leaves once the key is refused here and on every other server.
    keys::revoke(call.app, &caller, &key).await?;
    Ok(reply::no_content())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateRequest {
    /// How long the old key keeps working: one of `auth.rotation_overlaps` (default `"0s"`,
    /// `"1h"`, `"24h"`, `"7d"`); absent: `"0s"`, revoked at once.
    #[serde(default)]
    overlap: Option<String>,
}

/// POST /api/auth/api-keys/{id}/rotate/: only the key's creator; the successor is theirs.
pub async fn rotate(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: RotateRequest = if call.body.is_empty() {
        RotateRequest { overlap: None }
    } else {
        call.json()?
    };
    let config = &call.app.config.auth;
    let overlap = match request.overlap.as_deref().map(str::trim) {
        None => std::time::Duration::ZERO,
        Some(asked) => config.rotation_overlap(asked).ok_or_else(|| {
            ApiError::field(
                "overlap",
                format!("must be one of {}", config.rotation_overlaps.join(", ")),
            )
        })?,
    };
    let old = visible_key(&call, &caller).await?;
    if old.user_id != caller.principal().user_id {
        return Err(ApiError::denied(
            "only the key's creator may rotate it; administrators may revoke it",
        ));
    }
    if old.revoked_at.is_some() {
        return Err(ApiError::Conflict("a revoked key cannot be rotated".into()));
    }
    if old.replaced_by.is_some() {
        return Err(ApiError::Conflict("this key was already rotated".into()));
    }
    let created = keys::rotate(call.app, &caller, &old, overlap).await?;
    let extras = Extras::new_key_of(&call, created.key.user_id);
    Ok(reply::created(&KeyDto::new(
        created.key,
        Some(created.secret),
        now(),
        &extras,
        caller.principal().role.is_admin(),
    )))
}

/// The longest text a leak report may carry.
pub const MAX_LEAK_TEXT: usize = 1 << 20;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LeakReport {
    /// Pasted text or a log file, at most 1 MiB.
    #[schema(max_length = 1048576)]
    text: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct LeakFound {
    prefix: String,
    /// `null`: not a key of this organization.
    id: Option<Id>,
    /// `active`, `expired` or `revoked` before the report; `null` with `id`.
    status_before: Option<&'static str>,
    revoked: bool,
}

#[derive(Serialize, ToSchema)]
pub(super) struct LeakAnswer {
    found: Vec<LeakFound>,
}

/// POST /api/auth/api-keys/leak-report/: administrators; revokes the organization's active
/// keys found in the text and audits each key of the organization found.
pub async fn leak_report(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    if !caller.principal().role.is_admin() {
        return Err(ApiError::denied(
            "only administrators may report leaked keys",
        ));
    }
    let report: LeakReport = call.json()?;
    if report.text.len() > MAX_LEAK_TEXT {
        return Err(ApiError::field(
            "text",
            "must be at most 1 MiB (1048576 bytes)",
        ));
    }
    let found = keys::keys_in(&report.text);
    let leaked = keys::handle_leak(
        call.app,
        &caller.actor(),
        found,
        Some(caller.organization_id()),
        true,
    )
    .await?;
    let found = leaked
        .into_iter()
        .map(|l| LeakFound {
            prefix: l.prefix,
            id: l.key.map(|k| k.id),
            status_before: l.status_before,
            revoked: l.revoked,
        })
        .collect();
    Ok(reply::ok(&LeakAnswer { found }))
}

// The verify answer borrows from the live state: the hot path allocates only the body.
#[derive(Serialize, ToSchema)]
pub(super) struct VerifyUser<'a> {
    id: Id,
    email: &'a str,
    role: &'static str,
}

#[derive(Serialize, ToSchema)]
pub(super) struct VerifyOrganization<'a> {
    id: Id,
    name: &'a str,
}

#[derive(Serialize, ToSchema)]
pub(super) struct VerifyKey<'a> {
    id: Id,
    name: &'a str,
    prefix: &'a str,
    scopes: Option<Vec<&'static str>>,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
}

/// The service account a key acts as.
#[derive(Serialize, ToSchema, Clone)]
pub(super) struct ServiceAccountRef<'a> {
    id: Id,
    #[schema(value_type = String)]
    name: std::borrow::Cow<'a, str>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct VerifyResponse<'a> {
    valid: bool,
    auth_method: &'static str,
    /// The person; `null` for a service account's key.
    user: Option<VerifyUser<'a>>,
    /// The service account a key acts as; `null` for a person.
    service_account: Option<ServiceAccountRef<'a>>,
    organization: VerifyOrganization<'a>,
    api_key: Option<VerifyKey<'a>>,
    permissions: Vec<&'static str>,
}

/// GET /api/v1/auth/verify/
pub fn verify(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let principal = caller.principal();
    let live = &call.app.auth.live;
    let user = live
        .user(principal.user_id)
        .ok_or(ApiError::TokenNotValid)?;
    let organization = live.organization_name(user.organization_id);
    let api_key = principal.key.as_ref().map(|key| VerifyKey {
        id: key.id,
        name: &key.name,
        prefix: &key.prefix,
        scopes: key
            .scopes
            .as_ref()
            .map(|s| s.iter().map(|p| p.as_str()).collect()),
        created_at: Timestamp(key.created_at),
        expires_at: key.expires_at.map(Timestamp),
    });
    Ok(reply::ok(&VerifyResponse {
        valid: true,
        auth_method: principal.method.as_str(),
        user: (!user.service_account).then(|| VerifyUser {
            id: user.id,
            email: &user.email,
            role: user.role.as_str(),
        }),
        service_account: user.service_account.then(|| ServiceAccountRef {
            id: user.id,
            name: (&*user.name).into(),
        }),
        organization: VerifyOrganization {
            id: user.organization_id,
            name: &organization,
        },
        api_key,
        permissions: principal.permissions(),
    }))
}
