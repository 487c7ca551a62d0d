//! The organization's sign-in providers (contract 10.2), for its owner and administrators in
//! an interactive session. Secrets are write-only: never answered, sealed at rest.
//!
//! GET|POST  /api/v1/organization/sso-providers/
//! GET|PATCH|DELETE /api/v1/organization/sso-providers/{id}/
//! POST      /api/v1/organization/sso-providers/{id}/sync/?dry_run=true

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Call;
use crate::domain::{Id, Role, Secret, Timestamp};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::sso::{self, sync, Mapping, Provider, Spec};
use crate::store::sso::LdapSettings;

#[derive(Serialize, ToSchema)]
pub(super) struct MappingDto {
    /// An LDAP group's full DN, as `memberOf` names it (compared ignoring case).
    group: String,
    role: &'static str,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ProviderDto {
    id: Id,
    name: String,
    /// `ldap` (OpenID Connect providers are not available in this version).
    kind: &'static str,
    enabled: bool,
    email_domains: Vec<String>,
    role_mapping: Vec<MappingDto>,
    default_role: Option<&'static str>,
    jit_provisioning: bool,
    enforce: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
    url: String,
    start_tls: bool,
    bind_dn: String,
    /// Whether a bind password is stored (it is never answered).
    bind_password_set: bool,
    user_base: String,
    user_filter: String,
    email_attribute: String,
    name_attribute: String,
    group_attribute: String,
    nested_groups: bool,
    /// Like `15m`.
    sync_interval: String,
}

impl ProviderDto {
    fn from(p: Provider, bind_password_set: bool) -> Self {
        ProviderDto {
            id: p.id,
            name: p.name,
            kind: "ldap",
            enabled: p.enabled,
            email_domains: p.email_domains,
            role_mapping: p
                .role_mapping
                .into_iter()
                .map(|m| MappingDto {
                    group: m.group,
                    role: m.role.as_str(),
                })
                .collect(),
            default_role: p.default_role.map(Role::as_str),
            jit_provisioning: p.jit_provisioning,
            enforce: p.enforce,
            created_at: Timestamp(p.created_at),
            updated_at: Timestamp(p.updated_at),
            url: p.ldap.url,
            start_tls: p.ldap.start_tls,
            bind_dn: p.ldap.bind_dn,
            bind_password_set,
            user_base: p.ldap.user_base,
            user_filter: p.ldap.user_filter,
            email_attribute: p.ldap.email_attribute,
            name_attribute: p.ldap.name_attribute,
            group_attribute: p.ldap.group_attribute,
            nested_groups: p.ldap.nested_groups,
            sync_interval: humantime::format_duration(std::time::Duration::from_secs(
                p.ldap.sync_interval,
            ))
            .to_string(),
        }
    }
}

fn dto(p: Provider) -> ProviderDto {
    let set = p.has_secret();
    ProviderDto::from(p, set)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MappingBody {
    group: String,
    role: String,
}

/// A provider as created, or the fields a `PATCH` changes.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ProviderBody {
    #[schema(max_length = 100)]
    name: Option<String>,
    /// `ldap`.
    kind: Option<String>,
    enabled: Option<bool>,
    email_domains: Option<Vec<String>>,
    role_mapping: Option<Vec<MappingBody>>,
    #[serde(default, deserialize_with = "present")]
    default_role: Option<Option<String>>,
    jit_provisioning: Option<bool>,
    enforce: Option<bool>,
    /// `ldaps://host[:port]`, or `ldap://host[:port]` with `start_tls`.
    url: Option<String>,
    start_tls: Option<bool>,
    bind_dn: Option<String>,
    /// Write-only.
    bind_password: Option<Secret>,
    user_base: Option<String>,
    /// Default `(&(objectClass=person)(mail={email}))`; `{email}` is escaped (RFC 4515).
    user_filter: Option<String>,
    email_attribute: Option<String>,
    name_attribute: Option<String>,
    group_attribute: Option<String>,
    nested_groups: Option<bool>,
    /// Default `15m`; at least `1m`.
    sync_interval: Option<String>,
}

/// Tells `"field": null` (Some(None)) from an absent field (None).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

const MAX_DOMAINS: usize = 50;
const MAX_MAPPINGS: usize = 100;
const MAX_DN: usize = 1024;

/// A directory attribute's name: letters, digits and `-` (or an OID), at most 64.
fn attribute_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `example.org`: lower-case labels of letters, digits and `-`, at least two.
fn domain(value: &str) -> Option<String> {
    let value = value.trim().to_ascii_lowercase();
    let labels: Vec<&str> = value.split('.').collect();
    let ok = value.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    ok.then_some(value)
}

/// A distinguished name or filter: not empty, bounded, no control characters.
fn bounded_text(errors: &mut FieldErrors, field: &str, value: &str) -> String {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_DN || value.chars().any(char::is_control) {
        errors.insert(
            field.into(),
            vec![format!(
                "must be 1 to {MAX_DN} characters without control characters"
            )],
        );
    }
    value.to_string()
}

fn role(errors: &mut FieldErrors, field: &str, value: &str) -> Option<Role> {
    match value.parse::<Role>() {
        Ok(Role::Owner) => {
            errors.insert(
                field.into(),
                vec!["a provider never gives the owner's role".into()],
            );
            None
        }
        Ok(role) => Some(role),
        Err(why) => {
            errors.insert(field.into(), vec![why.into()]);
            None
        }
    }
}

/// The whole provider `body` describes, over `before` for a `PATCH`: every field's problem
/// at once.
fn spec(body: ProviderBody, before: Option<&Provider>) -> Result<Spec, ApiError> {
    let mut errors = FieldErrors::new();
    let kind = body.kind.as_deref().unwrap_or("ldap");
    match (kind, before) {
        ("ldap", _) => {}
        ("oidc", None) => {
            errors.insert(
                "kind".into(),
                vec!["OpenID Connect providers are not available in this version; use ldap".into()],
            );
        }
        (_, Some(_)) => {
            errors.insert(
                "kind".into(),
                vec!["a provider's kind cannot change".into()],
            );
        }
        _ => {
            errors.insert("kind".into(), vec!["must be ldap or oidc".into()]);
        }
    }
    let old = before.map(|p| &p.ldap);
    let name = match body.name.or_else(|| before.map(|p| p.name.clone())) {
        Some(name) => super::text(&mut errors, "name", &name, 1, 100),
        None => {
            errors.insert("name".into(), vec!["is required".into()]);
            String::new()
        }
    };
    let domains = body
        .email_domains
        .or_else(|| before.map(|p| p.email_domains.clone()))
        .unwrap_or_default();
    let mut email_domains = Vec::new();
    if domains.is_empty() || domains.len() > MAX_DOMAINS {
        errors.insert(
            "email_domains".into(),
            vec![format!("must list 1 to {MAX_DOMAINS} domains")],
        );
    }
    for d in &domains {
        match domain(d) {
            Some(d) if !email_domains.contains(&d) => email_domains.push(d),
            Some(_) => {}
            None => {
                errors.insert(
                    "email_domains".into(),
                    vec![format!("{d:?} is not a domain like example.org")],
                );
            }
        }
    }
    let mut role_mapping = Vec::new();
    match body.role_mapping {
        Some(mapping) => {
            if mapping.len() > MAX_MAPPINGS {
                errors.insert(
                    "role_mapping".into(),
                    vec![format!("at most {MAX_MAPPINGS} entries")],
                );
            }
            for m in mapping {
                let group = bounded_text(&mut errors, "role_mapping", &m.group);
                if let Some(role) = role(&mut errors, "role_mapping", &m.role) {
                    role_mapping.push(Mapping { group, role });
                }
            }
        }
        None => role_mapping = before.map(|p| p.role_mapping.clone()).unwrap_or_default(),
    }
    let default_role = match body.default_role {
        Some(Some(r)) => role(&mut errors, "default_role", &r),
        Some(None) => None,
        None => before.and_then(|p| p.default_role),
    };
    let url = match body.url.or_else(|| old.map(|l| l.url.clone())) {
        Some(url) => url.trim().to_string(),
        None => {
            errors.insert("url".into(), vec!["is required".into()]);
            String::new()
        }
    };
    let start_tls = body
        .start_tls
        .or_else(|| old.map(|l| l.start_tls))
        .unwrap_or(false);
    let host_part = url
        .strip_prefix("ldaps://")
        .or_else(|| url.strip_prefix("ldap://"))
        .unwrap_or("");
    if !url.is_empty() {
        let host_ok = !host_part.is_empty()
            && !host_part.contains('/')
            && !host_part.contains('@')
            && host_part.len() <= 260
            && host_part.bytes().all(|b| b.is_ascii_graphic());
        if !host_ok {
            errors.insert(
                "url".into(),
                vec!["must be ldaps://host[:port] or ldap://host[:port]".into()],
            );
        } else if url.starts_with("ldap://") && !start_tls {
            errors.insert(
                "url".into(),
                vec!["ldap:// sends passwords in the clear: use ldaps:// or set start_tls".into()],
            );
        } else if url.starts_with("ldaps://") && start_tls {
            errors.insert(
                "start_tls".into(),
                vec!["is for ldap:// (ldaps:// is TLS from the start)".into()],
            );
        }
    }
    let required =
        |errors: &mut FieldErrors, field: &str, given: Option<String>, kept: Option<&String>| {
            match given.or_else(|| kept.cloned()) {
                Some(v) => bounded_text(errors, field, &v),
                None => {
                    errors.insert(field.into(), vec!["is required".into()]);
                    String::new()
                }
            }
        };
    let bind_dn = required(
        &mut errors,
        "bind_dn",
        body.bind_dn,
        old.map(|l| &l.bind_dn),
    );
    let user_base = required(
        &mut errors,
        "user_base",
        body.user_base,
        old.map(|l| &l.user_base),
    );
    let user_filter = bounded_text(
        &mut errors,
        "user_filter",
        &body
            .user_filter
            .or_else(|| old.map(|l| l.user_filter.clone()))
            .unwrap_or_else(|| "(&(objectClass=person)(mail={email}))".into()),
    );
    if !(user_filter.starts_with('(')
        && user_filter.ends_with(')')
        && user_filter.contains("{email}"))
    {
        errors.insert(
            "user_filter".into(),
            vec!["must be an LDAP filter in parentheses holding {email}".into()],
        );
    }
    let mut attribute =
        |field: &str, given: Option<String>, kept: Option<&String>, default: &str| {
            let value = given
                .or_else(|| kept.cloned())
                .unwrap_or_else(|| default.into());
            if !attribute_name(&value) {
                errors.insert(field.into(), vec!["must be an attribute name".into()]);
            }
            value
        };
    let email_attribute = attribute(
        "email_attribute",
        body.email_attribute,
        old.map(|l| &l.email_attribute),
        "mail",
    );
    let name_attribute = attribute(
        "name_attribute",
        body.name_attribute,
        old.map(|l| &l.name_attribute),
        "cn",
    );
    let group_attribute = attribute(
        "group_attribute",
        body.group_attribute,
        old.map(|l| &l.group_attribute),
        "memberOf",
    );
    let sync_interval = match body.sync_interval {
        Some(text) => match humantime::parse_duration(text.trim()) {
            Ok(d)
                if d >= std::time::Duration::from_secs(60)
                    && d <= std::time::Duration::from_secs(7 * 86_400) =>
            {
                d.as_secs()
            }
            _ => {
                errors.insert(
                    "sync_interval".into(),
                    vec!["must be a duration from 1m to 7d, like \"15m\"".into()],
                );
                0
            }
        },
        None => old.map_or(900, |l| l.sync_interval),
    };
    let secret = body.bind_password;
    // The stored password is for the directory it was given for: another address or account
    // needs it given again, so that it never goes to a host it was not meant for.
    let moved =
        old.is_some_and(|l| l.url != url || l.start_tls != start_tls || l.bind_dn != bind_dn);
    if moved && secret.is_none() {
        errors.insert(
            "bind_password".into(),
            vec!["is required again when url, start_tls or bind_dn change".into()],
        );
    }
    if let Some(secret) = &secret {
        if secret.expose().is_empty() || secret.expose().len() > MAX_DN {
            errors.insert(
                "bind_password".into(),
                vec![format!("must be 1 to {MAX_DN} characters")],
            );
        }
    } else if before.is_none() {
        errors.insert("bind_password".into(), vec!["is required".into()]);
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    Ok(Spec {
        name,
        enabled: body
            .enabled
            .or_else(|| before.map(|p| p.enabled))
            .unwrap_or(true),
        email_domains,
        role_mapping,
        default_role,
        jit_provisioning: body
            .jit_provisioning
            .or_else(|| before.map(|p| p.jit_provisioning))
            .unwrap_or(false),
        enforce: body
            .enforce
            .or_else(|| before.map(|p| p.enforce))
            .unwrap_or(false),
        ldap: LdapSettings {
            url,
            start_tls,
            bind_dn,
            user_base,
            user_filter,
            email_attribute,
            name_attribute,
            group_attribute,
            nested_groups: body
                .nested_groups
                .or_else(|| old.map(|l| l.nested_groups))
                .unwrap_or(false),
            sync_interval,
        },
        secret,
    })
}

/// GET /api/v1/organization/sso-providers/ (an organization has a handful: read whole, then
/// paged like every list)
pub async fn list(call: Call<'_>) -> Result<Response, ApiError> {
    let page = super::PageRequest::from(call.ctx)?;
    let org = call.organization_id()?;
    let providers = sso::list(call.app, org).await?;
    let count = providers.len() as u64;
    let results: Vec<ProviderDto> = providers
        .into_iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.size).unwrap_or(usize::MAX))
        .map(dto)
        .collect();
    Ok(reply::ok(&page.wrap(&call, count, results)?))
}

/// POST /api/v1/organization/sso-providers/
pub async fn create(call: Call<'_>) -> Result<Response, ApiError> {
    let body: ProviderBody = call.json()?;
    let spec = spec(body, None)?;
    let org = call.organization_id()?;
    let provider = sso::create(call.app, &call.actor(), org, spec).await?;
    Ok(reply::created(&dto(provider)))
}

/// GET /api/v1/organization/sso-providers/{id}/
pub async fn get(call: Call<'_>) -> Result<Response, ApiError> {
    let org = call.organization_id()?;
    let provider = sso::get(call.app, org, call.id()?).await?;
    Ok(reply::ok(&dto(provider)))
}

/// PATCH /api/v1/organization/sso-providers/{id}/
pub async fn update(call: Call<'_>) -> Result<Response, ApiError> {
    let body: ProviderBody = call.json()?;
    let org = call.organization_id()?;
    let id = call.id()?;
    let before = sso::get(call.app, org, id).await?;
    let spec = spec(body, Some(&before))?;
    let provider = sso::update(call.app, &call.actor(), org, id, spec).await?;
    Ok(reply::ok(&dto(provider)))
}

/// DELETE /api/v1/organization/sso-providers/{id}/
pub async fn delete(call: Call<'_>) -> Result<Response, ApiError> {
    let org = call.organization_id()?;
    sso::delete(call.app, &call.actor(), org, call.id()?).await?;
    Ok(reply::no_content())
}

#[derive(Serialize, ToSchema)]
pub(super) struct RoleChangedDto {
    email: String,
    from: &'static str,
    to: &'static str,
}

#[derive(Serialize, ToSchema)]
pub(super) struct SyncDto {
    deactivated: Vec<String>,
    role_changed: Vec<RoleChangedDto>,
    unchanged: u64,
    dry_run: bool,
}

/// POST /api/v1/organization/sso-providers/{id}/sync/?dry_run=true
pub async fn sync(call: Call<'_>) -> Result<Response, ApiError> {
    let dry_run = match call.ctx.query_param("dry_run").as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(ApiError::field("dry_run", "must be true or false")),
    };
    let org = call.organization_id()?;
    let provider = sso::get(call.app, org, call.id()?).await?;
    let report = sync::run(call.app, &call.actor(), &provider, dry_run).await?;
    Ok(reply::ok(&SyncDto {
        deactivated: report.deactivated,
        role_changed: report
            .role_changed
            .into_iter()
            .map(|c| RoleChangedDto {
                email: c.email,
                from: c.from.as_str(),
                to: c.to.as_str(),
            })
            .collect(),
        unchanged: report.unchanged,
        dry_run,
    }))
}
