//! Sign-in through the site's directory (contract 10.2): the organization's providers, who
//! each serves, the role a directory's groups give, and the users a sign-in finds, links or
//! creates. `ldap` talks to the directory; `sync` applies what it says to the users it
//! manages.
//!
//! - A provider serves the addresses of its `email_domains`, each domain in one enabled
//!   provider of the installation at most. The owner of an organization is never served: the
//!   break-glass account signs in with its own password and MFA whatever the providers say.
//! - The role of a served user is the highest role whose group the user is in, else the
//!   provider's `default_role`; with neither, the user may not sign in, and a sync deactivates
//!   an existing one.

pub mod ldap;
pub mod oidc;
pub mod sign_in;
pub mod sync;

use crate::domain::{Email, Id, Role, Secret, UnixTime};
use crate::error::ApiError;
use crate::ops::AppState;
use crate::store::sso::{self as stored, LdapSettings, OidcSettings, ProviderRow, StoredMapping};
use crate::store::StoreError;

use super::{change, Actor, Kind as Object};

/// One group-to-role rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// An LDAP group's full DN, or a value of an OpenID provider's groups claim (compared
    /// ignoring case).
    pub group: String,
    pub role: Role,
}

/// A provider's kind and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settings {
    Ldap(LdapSettings),
    Oidc(OidcSettings),
}

impl Settings {
    pub fn kind(&self) -> &'static str {
        match self {
            Settings::Ldap(_) => "ldap",
            Settings::Oidc(_) => "oidc",
        }
    }
}

/// What a create or a change sets: every field, validated (see the handler).
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub enabled: bool,
    pub email_domains: Vec<String>,
    pub role_mapping: Vec<Mapping>,
    pub default_role: Option<Role>,
    pub jit_provisioning: bool,
    pub enforce: bool,
    pub settings: Settings,
    /// The bind password or client secret; `None` on a change keeps the one stored.
    pub secret: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub id: Id,
    pub organization_id: Id,
    pub name: String,
    pub enabled: bool,
    pub email_domains: Vec<String>,
    pub role_mapping: Vec<Mapping>,
    pub default_role: Option<Role>,
    pub jit_provisioning: bool,
    pub enforce: bool,
    pub settings: Settings,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    sealed_secret: String,
}

fn corrupt(what: &str, id: Id) -> StoreError {
    StoreError::Database(format!("provider {id}: its stored {what} cannot be read"))
}

impl Provider {
    fn from_row(row: ProviderRow) -> Result<Provider, StoreError> {
        let id = row.id;
        let settings = match row.kind.as_str() {
            "ldap" => Settings::Ldap(
                serde_json::from_str(&row.settings).map_err(|_| corrupt("settings", id))?,
            ),
            "oidc" => Settings::Oidc(
                serde_json::from_str(&row.settings).map_err(|_| corrupt("settings", id))?,
            ),
            _ => return Err(corrupt("kind", id)),
        };
        let mapping: Vec<StoredMapping> =
            serde_json::from_str(&row.role_mapping).map_err(|_| corrupt("role mapping", id))?;
        let role_mapping = mapping
            .into_iter()
            .map(|m| {
                Ok(Mapping {
                    role: m.role.parse().map_err(|_| corrupt("role mapping", id))?,
                    group: m.group,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Provider {
            id,
            organization_id: row.organization_id,
            name: row.name,
            enabled: row.enabled,
            email_domains: serde_json::from_str(&row.email_domains)
                .map_err(|_| corrupt("domains", id))?,
            role_mapping,
            default_role: match row.default_role {
                Some(role) => Some(role.parse().map_err(|_| corrupt("default role", id))?),
                None => None,
            },
            jit_provisioning: row.jit_provisioning,
            enforce: row.enforce,
            settings,
            created_at: row.created_at,
            updated_at: row.updated_at,
            sealed_secret: row.secret,
        })
    }

    fn row(&self) -> ProviderRow {
        let mapping: Vec<StoredMapping> = self
            .role_mapping
            .iter()
            .map(|m| StoredMapping {
                group: m.group.clone(),
                role: m.role.as_str().to_string(),
            })
            .collect();
        ProviderRow {
            id: self.id,
            organization_id: self.organization_id,
            name: self.name.clone(),
            kind: self.settings.kind().into(),
            enabled: self.enabled,
            email_domains: serde_json::to_string(&self.email_domains).unwrap_or_default(),
            role_mapping: serde_json::to_string(&mapping).unwrap_or_default(),
            default_role: self.default_role.map(|r| r.as_str().to_string()),
            jit_provisioning: self.jit_provisioning,
            enforce: self.enforce,
            settings: match &self.settings {
                Settings::Ldap(l) => serde_json::to_string(l),
                Settings::Oidc(o) => serde_json::to_string(o),
            }
            .unwrap_or_default(),
            secret: self.sealed_secret.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    fn apply(&mut self, spec: Spec) {
        self.name = spec.name;
        self.enabled = spec.enabled;
        self.email_domains = spec.email_domains;
        self.role_mapping = spec.role_mapping;
        self.default_role = spec.default_role;
        self.jit_provisioning = spec.jit_provisioning;
        self.enforce = spec.enforce;
        self.settings = spec.settings;
    }

    /// The directory's settings, for an LDAP provider.
    pub fn ldap(&self) -> Option<&LdapSettings> {
        match &self.settings {
            Settings::Ldap(l) => Some(l),
            Settings::Oidc(_) => None,
        }
    }

    /// The OpenID provider's settings, for an OIDC provider.
    pub fn oidc(&self) -> Option<&OidcSettings> {
        match &self.settings {
            Settings::Oidc(o) => Some(o),
            Settings::Ldap(_) => None,
        }
    }

    /// Whether this provider serves `email` (by its domain).
    pub fn serves(&self, email: &Email) -> bool {
        let domain = email.as_str().rsplit('@').next().unwrap_or("");
        self.email_domains.iter().any(|d| d == domain)
    }

    /// The role `groups` give: the highest mapped, else the default; `None`: not allowed.
    pub fn role_for(&self, groups: &[String]) -> Option<Role> {
        self.role_mapping
            .iter()
            .filter(|m| groups.iter().any(|g| g.eq_ignore_ascii_case(&m.group)))
            .map(|m| m.role)
            .max()
            .or(self.default_role)
    }

    /// The bind password or client secret, opened.
    pub fn secret(&self, app: &AppState) -> Result<Secret, ApiError> {
        if self.sealed_secret.is_empty() {
            return Ok(Secret::new(String::new()));
        }
        app.auth
            .mfa_sealer
            .open_for(&sealing_owner(self.id), &self.sealed_secret)
            .map(Secret::new)
            .map_err(|_| {
                ApiError::Internal(format!(
                    "provider {}'s secret does not open with this data directory's mfa-key",
                    self.id
                ))
            })
    }

    /// Whether a secret is stored.
    pub fn has_secret(&self) -> bool {
        !self.sealed_secret.is_empty()
    }

    /// The scheduled sync's interval (a directory's; an OpenID provider has none to sync).
    pub fn sync_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.ldap().map_or(900, |l| l.sync_interval))
    }
}

/// The associated data a provider's secret is sealed with: 16 bytes, never a user's 8.
fn sealing_owner(id: Id) -> [u8; 16] {
    let mut owner = *b"sso-provider\0\0\0\0";
    owner[8..].copy_from_slice(&id.to_be_bytes());
    owner
}

fn seal(app: &AppState, id: Id, secret: &Secret) -> Result<String, ApiError> {
    app.auth
        .mfa_sealer
        .seal_for(&sealing_owner(id), secret.expose())
        .map_err(|e| ApiError::Internal(format!("sealing a provider's secret: {e}")))
}

/// Each domain in one enabled provider of the installation at most: `409` naming it.
fn domains_free(db: &crate::store::Db<'_>, provider: &Provider) -> Result<(), ApiError> {
    if !provider.enabled {
        return Ok(());
    }
    for other in stored::enabled(db)? {
        if other.id == provider.id {
            continue;
        }
        let theirs: Vec<String> = serde_json::from_str(&other.email_domains).unwrap_or_default();
        if let Some(domain) = provider.email_domains.iter().find(|d| theirs.contains(d)) {
            return Err(ApiError::Conflict(format!(
                "{domain} is served by another enabled provider ({}); disable that one first",
                other.name
            )));
        }
    }
    // A domain whose addresses are another organization's users is not this one's to serve.
    for domain in &provider.email_domains {
        if stored::domain_used_elsewhere(db, domain, provider.organization_id)? {
            return Err(ApiError::Conflict(format!(
                "users of another organization have addresses at {domain}"
            )));
        }
    }
    Ok(())
}

fn audit_details(provider: &Provider) -> String {
    serde_json::json!({
        "name": provider.name,
        "kind": provider.settings.kind(),
        "enabled": provider.enabled,
        "email_domains": provider.email_domains,
    })
    .to_string()
}

/// The organization's provider `id`; another organization's is not found.
fn of_organization(
    db: &crate::store::Db<'_>,
    organization_id: Id,
    id: Id,
) -> Result<Provider, ApiError> {
    match stored::get(db, id)? {
        Some(row) if row.organization_id == organization_id => Ok(Provider::from_row(row)?),
        _ => Err(ApiError::NotFound),
    }
}

pub async fn list(app: &AppState, organization_id: Id) -> Result<Vec<Provider>, ApiError> {
    let rows = app
        .store
        .read(move |db| stored::of_organization(db, organization_id))
        .await?;
    Ok(rows
        .into_iter()
        .map(Provider::from_row)
        .collect::<Result<_, _>>()?)
}

/// The organization's provider `id` (another organization's is not found).
pub async fn get(app: &AppState, organization_id: Id, id: Id) -> Result<Provider, ApiError> {
    app.store
        .read(move |db| Ok(of_organization(db, organization_id, id)))
        .await?
}

/// The provider `id` if it is enabled (else not found): a sign-in through it starts or ends.
pub async fn enabled(app: &AppState, id: Id) -> Result<Provider, ApiError> {
    match app.store.read(move |db| stored::get(db, id)).await? {
        Some(row) if row.enabled => Ok(Provider::from_row(row)?),
        _ => Err(ApiError::NotFound),
    }
}

/// Every enabled provider that serves `email` (the login page offers them).
pub async fn all_serving(app: &AppState, email: &Email) -> Result<Vec<Provider>, ApiError> {
    let rows = app.store.read(stored::enabled).await?;
    let mut serving = Vec::new();
    for row in rows {
        let provider = Provider::from_row(row)?;
        if provider.serves(email) {
            serving.push(provider);
        }
    }
    Ok(serving)
}

/// An OpenID provider's endpoints and keys, read from its issuer's discovery document (a
/// create or change reads them afresh, but one that leaves the provider disabled at the same
/// issuer); `400` naming `issuer` when they cannot be read.
async fn discovered(
    app: &AppState,
    spec: &mut Spec,
    before: Option<&Provider>,
) -> Result<Option<jsonwebtoken::jwk::JwkSet>, ApiError> {
    let Settings::Oidc(settings) = &mut spec.settings else {
        return Ok(None);
    };
    // Disabling a provider (whose issuer may be the trouble) needs no answer from it.
    let unchanged = before
        .and_then(Provider::oidc)
        .is_some_and(|o| o.issuer == settings.issuer);
    if !spec.enabled && unchanged {
        return Ok(None);
    }
    let found = oidc::discover(&app.http, &settings.issuer)
        .await
        .map_err(|why| ApiError::field("issuer", format!("cannot be read: {why}")))?;
    settings.authorization_endpoint = found.authorization_endpoint;
    settings.token_endpoint = found.token_endpoint;
    settings.jwks_uri = found.jwks_uri;
    Ok(Some(found.keys))
}

/// The enabled provider that serves `email`, if any: the login asks this first.
pub async fn serving(app: &AppState, email: &Email) -> Result<Option<Provider>, ApiError> {
    let rows = app.store.read(stored::enabled).await?;
    for row in rows {
        let provider = Provider::from_row(row)?;
        if provider.serves(email) {
            return Ok(Some(provider));
        }
    }
    Ok(None)
}

pub async fn create(
    app: &AppState,
    actor: &Actor,
    organization_id: Id,
    mut spec: Spec,
) -> Result<Provider, ApiError> {
    let keys = discovered(app, &mut spec, None).await?;
    let app2 = app.clone();
    let created = change(app, actor, move |c| {
        let mut provider = Provider {
            id: 0,
            organization_id,
            name: String::new(),
            enabled: false,
            email_domains: Vec::new(),
            role_mapping: Vec::new(),
            default_role: None,
            jit_provisioning: false,
            enforce: false,
            settings: spec.settings.clone(),
            created_at: 0,
            updated_at: 0,
            sealed_secret: String::new(),
        };
        let secret = spec.secret.clone();
        provider.apply(spec);
        domains_free(c.tx, &provider)?;
        let id = stored::create(c.tx, &provider.row())?;
        provider.id = id;
        if let Some(secret) = &secret {
            provider.sealed_secret = seal(&app2, id, secret)?;
        }
        stored::update(c.tx, &provider.row())?;
        stored::schedule_sync(c.tx, id, provider.sync_interval().as_millis() as i64)?;
        c.audit_in(
            organization_id,
            "sso_provider.created",
            "sso_provider",
            id,
            Some(audit_details(&provider)),
        )?;
        c.touch(Object::Organization, organization_id);
        let row = stored::get(c.tx, id)?.ok_or(ApiError::NotFound)?;
        Ok(Provider::from_row(row)?)
    })
    .await?;
    remember(app, &created, keys);
    Ok(created)
}

fn remember(app: &AppState, provider: &Provider, keys: Option<jsonwebtoken::jwk::JwkSet>) {
    if let (Some(settings), Some(keys)) = (provider.oidc(), keys) {
        oidc::remember_keys(app, provider.id, settings, keys);
    }
}

pub async fn update(
    app: &AppState,
    actor: &Actor,
    organization_id: Id,
    id: Id,
    mut spec: Spec,
) -> Result<Provider, ApiError> {
    let before = get(app, organization_id, id).await?;
    let keys = discovered(app, &mut spec, Some(&before)).await?;
    let app2 = app.clone();
    let updated = change(app, actor, move |c| {
        let mut provider = of_organization(c.tx, organization_id, id)?;
        if let Some(secret) = &spec.secret {
            provider.sealed_secret = seal(&app2, id, secret)?;
        }
        provider.apply(spec);
        domains_free(c.tx, &provider)?;
        stored::update(c.tx, &provider.row())?;
        c.audit_in(
            organization_id,
            "sso_provider.updated",
            "sso_provider",
            id,
            Some(audit_details(&provider)),
        )?;
        let row = stored::get(c.tx, id)?.ok_or(ApiError::NotFound)?;
        Ok(Provider::from_row(row)?)
    })
    .await?;
    remember(app, &updated, keys);
    Ok(updated)
}

/// Deletes the provider: its users stay, with the role they had, and sign in with a password
/// an administrator sets (they have none of their own).
pub async fn delete(
    app: &AppState,
    actor: &Actor,
    organization_id: Id,
    id: Id,
) -> Result<(), ApiError> {
    change(app, actor, move |c| {
        let provider = of_organization(c.tx, organization_id, id)?;
        stored::delete(c.tx, id)?;
        c.audit_in(
            organization_id,
            "sso_provider.deleted",
            "sso_provider",
            id,
            Some(audit_details(&provider)),
        )?;
        Ok(())
    })
    .await?;
    app.oidc_keys.forget(id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(mapping: &[(&str, Role)], default_role: Option<Role>) -> Provider {
        Provider {
            id: 1,
            organization_id: 1,
            name: "Directory".into(),
            enabled: true,
            email_domains: vec!["example.org".into()],
            role_mapping: mapping
                .iter()
                .map(|(group, role)| Mapping {
                    group: group.to_string(),
                    role: *role,
                })
                .collect(),
            default_role,
            jit_provisioning: true,
            enforce: false,
            settings: Settings::Ldap(LdapSettings {
                url: "ldaps://dc.example.org".into(),
                start_tls: false,
                bind_dn: "cn=svc".into(),
                user_base: "ou=people,dc=example,dc=org".into(),
                user_filter: "(&(objectClass=person)(mail={email}))".into(),
                email_attribute: "mail".into(),
                name_attribute: "cn".into(),
                group_attribute: "memberOf".into(),
                nested_groups: false,
                sync_interval: 900,
            }),
            created_at: 0,
            updated_at: 0,
            sealed_secret: String::new(),
        }
    }

    #[test]
    fn the_highest_mapped_role_wins_then_the_default_then_nothing() {
        let p = provider(
            &[
                ("cn=staff,ou=groups,dc=example,dc=org", Role::Viewer),
                (
                    "cn=BI-Admins,ou=groups,dc=example,dc=org",
                    Role::Administrator,
                ),
                ("cn=analysts,ou=groups,dc=example,dc=org", Role::Analyst),
            ],
            None,
        );
        let groups = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            p.role_for(&groups(&[
                "cn=staff,ou=groups,dc=example,dc=org",
                // DNs compare ignoring case, as directories do.
                "CN=bi-admins,OU=groups,DC=example,DC=org",
            ])),
            Some(Role::Administrator)
        );
        assert_eq!(
            p.role_for(&groups(&["cn=analysts,ou=groups,dc=example,dc=org"])),
            Some(Role::Analyst)
        );
        assert_eq!(p.role_for(&groups(&["cn=other"])), None);
        let with_default = provider(&[], Some(Role::Viewer));
        assert_eq!(with_default.role_for(&[]), Some(Role::Viewer));
    }

    #[test]
    fn a_provider_serves_its_domains_only() {
        let p = provider(&[], None);
        assert!(p.serves(&Email::parse("alice@example.org").unwrap()));
        assert!(!p.serves(&Email::parse("alice@sub.example.org").unwrap()));
        assert!(!p.serves(&Email::parse("alice@example.com").unwrap()));
    }

    #[test]
    fn what_is_stored_reads_back_the_same() {
        let mut p = provider(&[("cn=a", Role::Analyst)], Some(Role::Viewer));
        p.sealed_secret = "v1.sealed".into();
        let again = Provider::from_row(p.row()).unwrap();
        assert_eq!(again.row(), p.row());
    }
}
