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
use crate::ops::sso::{self, sync, Mapping, Provider, Settings, Spec};
use crate::ops::Caller;
use crate::store::sso::{LdapSettings, OidcSettings};

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
    /// `oidc` or `ldap`; the kind's own fields follow, the other kind's are absent.
    kind: &'static str,
    enabled: bool,
    email_domains: Vec<String>,
    role_mapping: Vec<MappingDto>,
    default_role: Option<&'static str>,
    jit_provisioning: bool,
    enforce: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    /// Whether a client secret is stored (it is never answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_set: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups_claim: Option<String>,
    /// Where the browser goes to sign in: `<public_url>/api/auth/sso/{id}/start/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    start_url: Option<String>,
    /// The address to register at the provider as the redirect URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_tls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bind_dn: Option<String>,
    /// Whether a bind password is stored (it is never answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    bind_password_set: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_base: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nested_groups: Option<bool>,
    /// Like `15m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_interval: Option<String>,
}

impl ProviderDto {
    fn from(p: Provider, origin: &str) -> Self {
        let secret_set = p.has_secret();
        let mut dto = ProviderDto {
            id: p.id,
            name: p.name,
            kind: p.settings.kind(),
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
            issuer: None,
            client_id: None,
            client_secret_set: None,
            scopes: None,
            groups_claim: None,
            start_url: None,
            redirect_uri: None,
            url: None,
            start_tls: None,
            bind_dn: None,
            bind_password_set: None,
            user_base: None,
            user_filter: None,
            email_attribute: None,
            name_attribute: None,
            group_attribute: None,
            nested_groups: None,
            sync_interval: None,
        };
        match p.settings {
            Settings::Oidc(o) => {
                dto.start_url = Some(start_url(origin, p.id));
                dto.redirect_uri = Some(redirect_uri(origin));
                dto.issuer = Some(o.issuer);
                dto.client_id = Some(o.client_id);
                dto.client_secret_set = Some(secret_set);
                dto.scopes = Some(o.scopes);
                dto.groups_claim = Some(o.groups_claim);
            }
            Settings::Ldap(l) => {
                dto.url = Some(l.url);
                dto.start_tls = Some(l.start_tls);
                dto.bind_dn = Some(l.bind_dn);
                dto.bind_password_set = Some(secret_set);
                dto.user_base = Some(l.user_base);
                dto.user_filter = Some(l.user_filter);
                dto.email_attribute = Some(l.email_attribute);
                dto.name_attribute = Some(l.name_attribute);
                dto.group_attribute = Some(l.group_attribute);
                dto.nested_groups = Some(l.nested_groups);
                dto.sync_interval = Some(
                    humantime::format_duration(std::time::Duration::from_secs(l.sync_interval))
                        .to_string(),
                );
            }
        }
        dto
    }
}

/// Where a browser starts a sign-in through provider `id`.
fn start_url(origin: &str, id: Id) -> String {
    format!("{origin}/api/auth/sso/{id}/start/")
}

/// Where an OpenID provider sends the browser back (register it at the provider).
fn redirect_uri(origin: &str) -> String {
    format!("{origin}/api/auth/sso/callback/")
}

fn dto(call: &Call<'_>, p: Provider) -> ProviderDto {
    ProviderDto::from(p, &call.origin())
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
    /// `oidc` or `ldap`; required on a create, never changed.
    kind: Option<String>,
    enabled: Option<bool>,
    email_domains: Option<Vec<String>>,
    role_mapping: Option<Vec<MappingBody>>,
    #[serde(default, deserialize_with = "present")]
    default_role: Option<Option<String>>,
    jit_provisioning: Option<bool>,
    enforce: Option<bool>,
    /// OpenID Connect: the issuer (`https://`, or `http://` on a loopback address), whose
    /// discovery document and keys are read on every create and change.
    issuer: Option<String>,
    /// OpenID Connect.
    client_id: Option<String>,
    /// OpenID Connect; write-only.
    client_secret: Option<Secret>,
    /// OpenID Connect; default `["openid", "email", "profile"]`.
    scopes: Option<Vec<String>>,
    /// OpenID Connect: the ID token claim listing the user's groups; default `groups`.
    groups_claim: Option<String>,
    /// LDAP: `ldaps://host[:port]`, or `ldap://host[:port]` with `start_tls`.
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
fn spec(mut body: ProviderBody, before: Option<&Provider>) -> Result<Spec, ApiError> {
    let mut errors = FieldErrors::new();
    let kind = match (body.kind.as_deref(), before) {
        (None, Some(p)) => p.settings.kind(),
        (Some(kind), Some(p)) if kind != p.settings.kind() => {
            errors.insert(
                "kind".into(),
                vec!["a provider's kind cannot change".into()],
            );
            p.settings.kind()
        }
        (Some("ldap"), _) => "ldap",
        (Some("oidc"), _) => "oidc",
        (None, None) => {
            errors.insert("kind".into(), vec!["is required: ldap or oidc".into()]);
            ""
        }
        (Some(_), _) => {
            errors.insert("kind".into(), vec!["must be ldap or oidc".into()]);
            ""
        }
    };
    let name = match body.name.take().or_else(|| before.map(|p| p.name.clone())) {
        Some(name) => super::text(&mut errors, "name", &name, 1, 100),
        None => {
            errors.insert("name".into(), vec!["is required".into()]);
            String::new()
        }
    };
    let domains = body
        .email_domains
        .take()
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
    match body.role_mapping.take() {
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
    let default_role = match body.default_role.take() {
        Some(Some(r)) => role(&mut errors, "default_role", &r),
        Some(None) => None,
        None => before.and_then(|p| p.default_role),
    };
    let (settings, secret) = match kind {
        "oidc" => oidc_settings(&mut errors, &mut body, before),
        _ => ldap_settings(&mut errors, &mut body, before),
    };
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
        settings,
        secret,
    })
}

/// Fields of the other kind, named: a provider has only its own kind's settings.
fn foreign(errors: &mut FieldErrors, kind: &str, given: &[(&str, bool)]) {
    for (field, present) in given {
        if *present {
            errors.insert(
                (*field).into(),
                vec![format!("is not a setting of an {kind} provider")],
            );
        }
    }
}

/// A secret given, or kept: required on a create, and again when `moved` (the settings it
/// was given for changed, so that it never goes where it was not meant to).
fn secret_field(
    errors: &mut FieldErrors,
    field: &str,
    given: Option<Secret>,
    creating: bool,
    moved: Option<&str>,
) -> Option<Secret> {
    match &given {
        Some(secret) if secret.expose().is_empty() || secret.expose().len() > MAX_DN => {
            errors.insert(
                field.into(),
                vec![format!("must be 1 to {MAX_DN} characters")],
            );
        }
        Some(_) => {}
        None if creating => {
            errors.insert(field.into(), vec!["is required".into()]);
        }
        None => {
            if let Some(moved) = moved {
                errors.insert(
                    field.into(),
                    vec![format!("is required again when {moved} change")],
                );
            }
        }
    }
    given
}

/// An OpenID provider's settings (its endpoints are discovery's: `ops::sso` reads them).
fn oidc_settings(
    errors: &mut FieldErrors,
    body: &mut ProviderBody,
    before: Option<&Provider>,
) -> (Settings, Option<Secret>) {
    foreign(
        errors,
        "oidc",
        &[
            ("url", body.url.is_some()),
            ("start_tls", body.start_tls.is_some()),
            ("bind_dn", body.bind_dn.is_some()),
            ("bind_password", body.bind_password.is_some()),
            ("user_base", body.user_base.is_some()),
            ("user_filter", body.user_filter.is_some()),
            ("email_attribute", body.email_attribute.is_some()),
            ("name_attribute", body.name_attribute.is_some()),
            ("group_attribute", body.group_attribute.is_some()),
            ("nested_groups", body.nested_groups.is_some()),
            ("sync_interval", body.sync_interval.is_some()),
        ],
    );
    let old = before.and_then(Provider::oidc);
    let issuer = match body.issuer.take().or_else(|| old.map(|o| o.issuer.clone())) {
        Some(issuer) => {
            let issuer = issuer.trim().to_string();
            if issuer.len() > MAX_DN {
                errors.insert(
                    "issuer".into(),
                    vec![format!("must be at most {MAX_DN} characters")],
                );
            } else if let Err(why) = sso::oidc::acceptable_url(&issuer) {
                errors.insert("issuer".into(), vec![why]);
            }
            issuer
        }
        None => {
            errors.insert("issuer".into(), vec!["is required".into()]);
            String::new()
        }
    };
    let client_id = match body
        .client_id
        .take()
        .or_else(|| old.map(|o| o.client_id.clone()))
    {
        Some(id) => bounded_text(errors, "client_id", &id),
        None => {
            errors.insert("client_id".into(), vec!["is required".into()]);
            String::new()
        }
    };
    let scopes = body
        .scopes
        .take()
        .or_else(|| old.map(|o| o.scopes.clone()))
        .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
    // RFC 6749 3.3: a scope is printable ASCII but space, `"` and `\`.
    let scope_ok = |s: &String| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    };
    if scopes.len() > 20 || !scopes.iter().all(scope_ok) {
        errors.insert(
            "scopes".into(),
            vec!["must be at most 20 scopes, each printable without spaces or quotes".into()],
        );
    } else if !scopes.iter().any(|s| s == "openid") {
        errors.insert("scopes".into(), vec!["must include openid".into()]);
    }
    let groups_claim = body
        .groups_claim
        .take()
        .or_else(|| old.map(|o| o.groups_claim.clone()))
        .unwrap_or_else(|| "groups".into());
    if groups_claim.is_empty()
        || groups_claim.len() > 100
        || groups_claim.chars().any(char::is_control)
    {
        errors.insert(
            "groups_claim".into(),
            vec!["must be a claim name of 1 to 100 characters".into()],
        );
    }
    let moved = old.is_some_and(|o| o.issuer != issuer || o.client_id != client_id);
    let secret = secret_field(
        errors,
        "client_secret",
        body.client_secret.take(),
        before.is_none(),
        moved.then_some("issuer or client_id"),
    );
    let settings = OidcSettings {
        issuer,
        client_id,
        scopes,
        groups_claim,
        authorization_endpoint: old
            .map(|o| o.authorization_endpoint.clone())
            .unwrap_or_default(),
        token_endpoint: old.map(|o| o.token_endpoint.clone()).unwrap_or_default(),
        jwks_uri: old.map(|o| o.jwks_uri.clone()).unwrap_or_default(),
    };
    (Settings::Oidc(settings), secret)
}

/// A directory's settings.
fn ldap_settings(
    errors: &mut FieldErrors,
    body: &mut ProviderBody,
    before: Option<&Provider>,
) -> (Settings, Option<Secret>) {
    foreign(
        errors,
        "ldap",
        &[
            ("issuer", body.issuer.is_some()),
            ("client_id", body.client_id.is_some()),
            ("client_secret", body.client_secret.is_some()),
            ("scopes", body.scopes.is_some()),
            ("groups_claim", body.groups_claim.is_some()),
        ],
    );
    let old = before.and_then(Provider::ldap);
    let url = match body.url.take().or_else(|| old.map(|l| l.url.clone())) {
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
        errors,
        "bind_dn",
        body.bind_dn.take(),
        old.map(|l| &l.bind_dn),
    );
    let user_base = required(
        errors,
        "user_base",
        body.user_base.take(),
        old.map(|l| &l.user_base),
    );
    let user_filter = bounded_text(
        errors,
        "user_filter",
        &body
            .user_filter
            .take()
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
        body.email_attribute.take(),
        old.map(|l| &l.email_attribute),
        "mail",
    );
    let name_attribute = attribute(
        "name_attribute",
        body.name_attribute.take(),
        old.map(|l| &l.name_attribute),
        "cn",
    );
    let group_attribute = attribute(
        "group_attribute",
        body.group_attribute.take(),
        old.map(|l| &l.group_attribute),
        "memberOf",
    );
    let sync_interval = match body.sync_interval.take() {
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
    let moved =
        old.is_some_and(|l| l.url != url || l.start_tls != start_tls || l.bind_dn != bind_dn);
    let secret = secret_field(
        errors,
        "bind_password",
        body.bind_password.take(),
        before.is_none(),
        moved.then_some("url, start_tls or bind_dn"),
    );
    let settings = LdapSettings {
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
    };
    (Settings::Ldap(settings), secret)
}

/// GET /api/v1/organization/sso-providers/ (an organization has a handful: read whole, then
/// paged like every list)
pub async fn list(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let page = super::PageRequest::from(call.ctx)?;
    let org = caller.organization_id();
    let providers = sso::list(call.app, org).await?;
    let count = providers.len() as u64;
    let results: Vec<ProviderDto> = providers
        .into_iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.size).unwrap_or(usize::MAX))
        .map(|p| dto(&call, p))
        .collect();
    Ok(reply::ok(&page.wrap(&call, count, results)?))
}

/// POST /api/v1/organization/sso-providers/
pub async fn create(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let body: ProviderBody = call.json()?;
    let spec = spec(body, None)?;
    let org = caller.organization_id();
    let provider = sso::create(call.app, &caller.actor(), org, spec).await?;
    Ok(reply::created(&dto(&call, provider)))
}

/// GET /api/v1/organization/sso-providers/{id}/
pub async fn get(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let org = caller.organization_id();
    let provider = sso::get(call.app, org, call.id()?).await?;
    Ok(reply::ok(&dto(&call, provider)))
}

/// PATCH /api/v1/organization/sso-providers/{id}/
pub async fn update(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let body: ProviderBody = call.json()?;
    let org = caller.organization_id();
    let id = call.id()?;
    let before = sso::get(call.app, org, id).await?;
    let spec = spec(body, Some(&before))?;
    let provider = sso::update(call.app, &caller.actor(), org, id, spec).await?;
    Ok(reply::ok(&dto(&call, provider)))
}

/// DELETE /api/v1/organization/sso-providers/{id}/
pub async fn delete(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let org = caller.organization_id();
    sso::delete(call.app, &caller.actor(), org, call.id()?).await?;
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
pub async fn sync(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let dry_run = match call.ctx.query_param("dry_run").as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(ApiError::field("dry_run", "must be true or false")),
    };
    let org = caller.organization_id();
    let provider = sso::get(call.app, org, call.id()?).await?;
    let report = sync::run(call.app, &caller.actor(), &provider, dry_run).await?;
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
