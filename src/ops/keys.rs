//! API keys: create, edit, revoke, rotate (one successor, ever, with an optional overlap),
//! revoke by prefix from the shell, and revoke the keys found in a leaked text. Who may see
//! which key is the transport's question; what a change does is answered here.

use super::{change, Actor, Caller};
use crate::auth::api_key;
use crate::auth::permission::Permission;
use crate::auth::policy::KeyTerms;
use crate::domain::Id;
use crate::error::ApiError;
use crate::ops::AppState;
use crate::store::api_keys::{self, ApiKey, NewApiKey};
use crate::store::feed::Kind;
use crate::store::{users, Db};
use ipnet::IpNet;

use super::policy;

/// What a new key is: validated by the transport.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub name: String,
    pub description: String,
    pub scopes: Option<Vec<Permission>>,
    pub expires_in_days: Option<i64>,
    /// The networks it may be used from; `None`: any.
    pub allowed_ips: Option<Vec<IpNet>>,
    /// A decoy that never authenticates (administrators only: the transport checks).
    pub canary: bool,
}

/// The stored form of an allowlist: space-separated, a single address as itself.
pub fn allowed_ips_text(nets: &Option<Vec<IpNet>>) -> Option<String> {
    nets.as_ref().map(|nets| {
        nets.iter()
            .map(|net| {
                if net.prefix_len() == net.max_prefix_len() {
                    net.addr().to_string()
                } else {
                    net.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// A stored allowlist (written by `allowed_ips_text`, so every entry parses; one that does
/// not matches no address rather than any).
pub fn parse_allowed_ips(text: &str) -> Vec<IpNet> {
    text.split_whitespace()
        .filter_map(|net| crate::config::parse_ip_net(net).ok())
        .collect()
}

/// A key just made, with the secret shown this once.
pub struct Created {
    pub key: ApiKey,
    pub secret: String,
}

fn scopes_text(scopes: &Option<Vec<Permission>>) -> Option<String> {
    scopes.as_ref().map(|s| {
        let mut names: Vec<&str> = s.iter().map(|p| p.as_str()).collect();
        names.sort_unstable();
        names.join(" ")
    })
}

fn details(key: &ApiKey) -> String {
    crate::domain::json_object(&[("prefix", &key.prefix), ("name", &key.name)])
}

/// Makes a key for `user_id`, checked against the owner as committed: still active (a
/// deactivation, of a person or a service account, between the transport's read and this
/// transaction would otherwise leave a live key behind it), scopes the owner's role can use
/// (a `fresh` key; a successor keeps its predecessor's), and a key the organization's policy
/// allows (a canary, which never authenticates, always may be made). Returns the key and
/// whether its owner is a service account.
fn insert(
    tx: &Db<'_>,
    user_id: Id,
    organization_id: Id,
    spec: &KeySpec,
    fresh: bool,
) -> Result<(Created, bool), ApiError> {
    let owner = users::get(tx, user_id)?;
    if owner.organization_id != organization_id {
        return Err(ApiError::NotFound);
    }
    if owner.service_account {
        if !crate::store::service_accounts::get(tx, organization_id, user_id)?
            .is_some_and(|a| a.is_active)
        {
            return Err(ApiError::Conflict(
                "the service account is deactivated or deleted".into(),
            ));
        }
    } else if !owner.is_active {
        return Err(ApiError::Conflict("the user is deactivated".into()));
    }
    if let (true, Some(scopes)) = (fresh, &spec.scopes) {
        let beyond: Vec<&str> = scopes
            .iter()
            .filter(|s| s.reach(owner.role).is_none())
            .map(|s| s.as_str())
            .collect();
        if !beyond.is_empty() {
            let whose = if owner.service_account {
                "the service account's role"
            } else {
                "your role"
            };
            return Err(ApiError::ScopeExceedsRole(format!(
                "{whose} ({}) can never use: {}",
                owner.role,
                beyond.join(", ")
            )));
        }
    }
    if !spec.canary {
        let terms = KeyTerms {
            expires_in_days: spec.expires_in_days,
            scopes: spec.scopes.as_deref(),
            role: owner.role,
            allowlisted: spec.allowed_ips.is_some(),
        };
        policy::check_key(tx, organization_id, &terms)?;
    }
    let generated = api_key::generate();
    let key = api_keys::create(
        tx,
        &NewApiKey {
            user_id,
            organization_id,
            name: &spec.name,
            description: &spec.description,
            key_hash: &api_key::hash_hex(&generated.hash),
            prefix: &generated.prefix,
            scopes: scopes_text(&spec.scopes).as_deref(),
            expires_in_days: spec.expires_in_days,
            allowed_ips: allowed_ips_text(&spec.allowed_ips).as_deref(),
            canary: spec.canary,
        },
    )?;
    Ok((
        Created {
            key,
            secret: generated.key,
        },
        owner.service_account,
    ))
}

/// A new key of the caller's.
pub async fn create(app: &AppState, caller: &Caller, spec: KeySpec) -> Result<Created, ApiError> {
    let actor = caller.actor();
    create_for(
        app,
        &actor,
        caller.organization_id(),
        caller.user_id(),
        spec,
    )
    .await
}

/// A new key that acts as `owner` of `organization_id`: the caller, or a service account
/// (which the transport or the shell found).
pub async fn create_for(
    app: &AppState,
    actor: &Actor,
    organization_id: Id,
    owner: Id,
    spec: KeySpec,
) -> Result<Created, ApiError> {
    change(app, actor, move |c| {
        let (created, for_service_account) = insert(c.tx, owner, organization_id, &spec, true)?;
        let mut details = serde_json::json!({
            "prefix": &created.key.prefix,
            "name": &created.key.name,
        });
        if for_service_account {
            details["service_account_id"] = owner.into();
        }
        if spec.canary {
            details["canary"] = true.into();
        }
        if let Some(ips) = &created.key.allowed_ips {
            details["allowed_ips"] = ips.split_whitespace().collect::<Vec<_>>().into();
        }
        c.audit_in(
            organization_id,
            "api_key.created",
            "api_key",
            created.key.id,
            Some(details.to_string()),
        )?;
        c.touch(Kind::ApiKey, created.key.id);
        Ok(created)
    })
    .await
}

/// Revokes a key; revoking a revoked key changes nothing and is no error.
pub async fn revoke(app: &AppState, caller: &Caller, key: &ApiKey) -> Result<(), ApiError> {
    let (id, details) = (key.id, details(key));
    let by = Some(caller.user_id());
    change(app, &caller.actor(), move |c| {
        if api_keys::revoke(c.tx, id, by)? {
            c.audit("api_key.revoked", "api_key", id, Some(details))?;
        }
        // Touched even when it was revoked already: a second revoke answers only once every
        // server has the first (two concurrent DELETEs, a retried request, a re-run command).
        c.touch(Kind::ApiKey, id);
        Ok(())
    })
    .await
}

/// Replaces a key by a new one with the same name, description, scopes, allowlist and expiry
/// length, in one transaction. The old key is revoked at once (`overlap` zero) or keeps
/// working until the overlap ends, pointing to its successor. The replacement is
/// conditional: of concurrent rotations (or a rotation racing a revoke) exactly one finds
/// the key live and not yet replaced; the others answer `409` and create nothing.
pub async fn rotate(
    app: &AppState,
    caller: &Caller,
    old: &ApiKey,
    overlap: std::time::Duration,
) -> Result<Created, ApiError> {
    let old_id = old.id;
    let overlap_secs = i64::try_from(overlap.as_secs()).unwrap_or(i64::MAX);
    let by = Some(caller.user_id());
    change(app, &caller.actor(), move |c| {
        // Copied from the key as committed, not as the request read it: an edit that
        // committed first (a narrower allowlist) is what the successor inherits.
        let old = api_keys::get(c.tx, old_id)?;
        let spec = KeySpec {
            name: old.name.clone(),
            description: old.description.clone(),
            scopes: old
                .scopes
                .as_deref()
                .map(crate::auth::permission::parse_scopes),
            expires_in_days: old.expires_in_days,
            allowed_ips: old.allowed_ips.as_deref().map(parse_allowed_ips),
            canary: old.canary,
        };
        let (created, _) = insert(c.tx, old.user_id, old.organization_id, &spec, false)?;
        if !api_keys::replace(c.tx, old_id, created.key.id, overlap_secs, by)? {
            return Err(ApiError::Conflict(
                "this key was already rotated or revoked".into(),
            ));
        }
        let mut details = serde_json::json!({
            "prefix": &created.key.prefix,
            "replaces": &old.prefix,
        });
        if overlap_secs > 0 {
            let until = api_keys::get(c.tx, old_id)?.expires_at;
            details["overlap_seconds"] = overlap_secs.into();
            details["old_key_until"] = serde_json::json!(until.map(crate::domain::Timestamp));
        }
        c.audit(
            "api_key.rotated",
            "api_key",
            created.key.id,
            Some(details.to_string()),
        )?;
        c.touch(Kind::ApiKey, old_id);
        c.touch(Kind::ApiKey, created.key.id);
        Ok(created)
    })
    .await
}

/// What `PATCH` may change; `None`: unchanged. `allowed_ips: Some(None)` removes the list.
#[derive(Debug, Clone, Default)]
pub struct KeyEdit {
    pub name: Option<String>,
    pub description: Option<String>,
    pub allowed_ips: Option<Option<Vec<IpNet>>>,
}

/// Edits a key's name, description or allowlist: in force on every server before the answer
/// (a narrowed allowlist refuses the next request from an address it no longer holds).
pub async fn update(
    app: &AppState,
    caller: &Caller,
    key: &ApiKey,
    edit: KeyEdit,
) -> Result<ApiKey, ApiError> {
    let id = key.id;
    change(app, &caller.actor(), move |c| {
        let now = api_keys::get(c.tx, id)?;
        let name = edit.name.clone().unwrap_or_else(|| now.name.clone());
        let description = edit
            .description
            .clone()
            .unwrap_or_else(|| now.description.clone());
        let allowed_ips = match &edit.allowed_ips {
            Some(nets) => allowed_ips_text(nets),
            None => now.allowed_ips.clone(),
        };
        if allowed_ips.is_none() && now.allowed_ips.is_some() && !now.canary {
            // Taking the allowlist away may put the key outside the policy.
            let scopes = now
                .scopes
                .as_deref()
                .map(crate::auth::permission::parse_scopes);
            let terms = KeyTerms {
                expires_in_days: now.expires_in_days,
                scopes: scopes.as_deref(),
                role: policy::owner_role(c.tx, now.user_id)?,
                allowlisted: false,
            };
            policy::check_key(c.tx, now.organization_id, &terms)?;
        }
        api_keys::update(c.tx, id, &name, &description, allowed_ips.as_deref())?;
        let mut changed = serde_json::Map::new();
        if name != now.name {
            changed.insert("name".into(), name.clone().into());
        }
        if description != now.description {
            changed.insert("description".into(), true.into());
        }
        if allowed_ips != now.allowed_ips {
            changed.insert(
                "allowed_ips".into(),
                allowed_ips
                    .as_deref()
                    .map(|t| t.split_whitespace().collect::<Vec<_>>())
                    .into(),
            );
        }
        let details = serde_json::json!({ "prefix": &now.prefix, "changed": changed });
        c.audit("api_key.updated", "api_key", id, Some(details.to_string()))?;
        c.touch(Kind::ApiKey, id);
        Ok(api_keys::get(c.tx, id)?)
    })
    .await
}

/// A key found in a leaked text, and what was done about it.
#[derive(Debug, Clone)]
pub struct Leaked {
    pub prefix: String,
    /// `None`: unknown here, or (for a request) another organization's.
    pub key: Option<ApiKey>,
    /// `active`, `expired` or `revoked` before the report; `None` with `key`.
    pub status_before: Option<&'static str>,
    pub revoked: bool,
}

/// `active`, `expired` or `revoked`, at `now`.
pub fn status(key: &ApiKey, now: crate::domain::UnixTime) -> &'static str {
    if key.revoked_at.is_some() {
        "revoked"
    } else if key.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    }
}

/// The well-formed keys (checksum checked) in `text`, each once, in order of appearance.
pub fn keys_in(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    api_key::find_in(text)
        .filter(|key| api_key::well_formed(key) && seen.insert(*key))
        .map(str::to_string)
        .collect()
}

/// Handles a leak: finds the keys in `texts`, and (with `revoke`) revokes the active ones
/// among them, auditing each as `api_key.leaked`. Only keys of `organization` are acted on
/// and named (`None`: the whole installation, from the shell).
pub async fn handle_leak(
    app: &AppState,
    actor: &Actor,
    keys: Vec<String>,
    organization: Option<Id>,
    revoke: bool,
) -> Result<Vec<Leaked>, ApiError> {
    let by = actor.principal().map(|p| p.user_id);
    let look = move |db: &Db<'_>| -> crate::store::StoreResult<Vec<Leaked>> {
        let hashes: Vec<String> = keys
            .iter()
            .map(|k| api_key::hash_hex(&api_key::hash(k)))
            .collect();
        let stored = api_keys::find_by_hashes(db, &hashes)?;
        let now = crate::domain::now();
        Ok(keys
            .iter()
            .zip(&hashes)
            .map(|(key, hash)| {
                let found = stored
                    .iter()
                    .find(|k| &k.key_hash == hash)
                    .filter(|k| organization.is_none_or(|org| k.organization_id == org))
                    .cloned();
                Leaked {
                    prefix: api_key::display_prefix(key),
                    status_before: found.as_ref().map(|k| status(k, now)),
                    key: found,
                    revoked: false,
                }
            })
            .collect())
    };
    if !revoke {
        return Ok(app.store.read(look).await?);
    }
    change(app, actor, move |c| {
        let mut found = look(c.tx)?;
        for leak in &mut found {
            let Some(key) = &leak.key else { continue };
            if leak.status_before == Some("active") {
                leak.revoked = api_keys::revoke(c.tx, key.id, by)?;
            }
            let details = serde_json::json!({
                "prefix": &key.prefix,
                "status_before": leak.status_before,
                "revoked": leak.revoked,
            });
            c.audit_in(
                key.organization_id,
                "api_key.leaked",
                "api_key",
                key.id,
                Some(details.to_string()),
            )?;
            c.touch(Kind::ApiKey, key.id);
        }
        Ok(found)
    })
    .await
}

/// `claribi api-key revoke --prefix P`: `false` when the key was already revoked.
pub async fn revoke_by_prefix(
    app: &AppState,
    actor: &Actor,
    prefix: &str,
) -> Result<bool, ApiError> {
    let prefix = prefix.to_string();
    change(app, actor, move |c| {
        let keys = api_keys::find_by_prefix(c.tx, &prefix)?;
        let key = match keys.as_slice() {
            [] => {
                return Err(ApiError::field(
                    "prefix",
                    format!("no API key has the prefix {prefix}"),
                ))
            }
            [key] => key,
            _ => {
                return Err(ApiError::field(
                    "prefix",
                    format!(
                        "{} keys share the prefix {prefix}; revoke them from the web page",
                        keys.len()
                    ),
                ))
            }
        };
        c.touch(Kind::ApiKey, key.id);
        if !api_keys::revoke(c.tx, key.id, None)? {
            return Ok(false);
        }
        let mut entry = c
            .actor()
            .entry("api_key.revoked", crate::store::audit::Outcome::Success);
        entry.organization_id = Some(key.organization_id);
        entry.api_key_prefix = Some(key.prefix.clone());
        entry.target_type = Some("api_key");
        entry.target_id = Some(key.id);
        c.record(&entry)?;
        Ok(true)
    })
    .await
}
