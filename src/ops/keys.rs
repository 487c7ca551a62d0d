//! API keys: create, revoke, rotate (one successor, ever), revoke by prefix from the shell.
//! Who may see which key is the transport's question; what a change does is answered here.

use super::{change, Actor};
use crate::app::AppState;
use crate::auth::api_key;
use crate::auth::permission::Permission;
use crate::domain::Id;
use crate::error::ApiError;
use crate::store::api_keys::{self, ApiKey, NewApiKey};
use crate::store::feed::Kind;
use crate::store::Db;

/// What a new key is: validated by the transport.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub name: String,
    pub description: String,
    pub scopes: Option<Vec<Permission>>,
    pub expires_in_days: Option<i64>,
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

fn insert(
    tx: &Db<'_>,
    user_id: Id,
    organization_id: Id,
    spec: &KeySpec,
) -> Result<Created, ApiError> {
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
        },
    )?;
    Ok(Created {
        key,
        secret: generated.key,
    })
}

/// A new key of the caller's.
pub async fn create(app: &AppState, actor: &Actor, spec: KeySpec) -> Result<Created, ApiError> {
    let owner = actor
        .principal()
        .ok_or_else(|| ApiError::Internal("a key needs an owner".into()))?;
    let (user_id, organization_id) = (owner.user_id, owner.organization_id);
    change(app, actor, move |c| {
        let created = insert(c.tx, user_id, organization_id, &spec)?;
        c.audit(
            "api_key.created",
            "api_key",
            created.key.id,
            Some(details(&created.key)),
        )?;
        c.touch(Kind::ApiKey, created.key.id);
        Ok(created)
    })
    .await
}

/// Revokes a key; revoking a revoked key changes nothing and is no error.
pub async fn revoke(app: &AppState, actor: &Actor, key: &ApiKey) -> Result<(), ApiError> {
    let (id, details) = (key.id, details(key));
    let by = actor.principal().map(|p| p.user_id);
    change(app, actor, move |c| {
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

/// Replaces a key by a new one with the same name, description, scopes and expiry length, and
/// revokes the old one, in one transaction. The revoke is conditional: of concurrent
/// rotations (or a rotation racing a revoke) exactly one finds the key live; the others
/// answer `409` and create nothing.
pub async fn rotate(app: &AppState, actor: &Actor, old: &ApiKey) -> Result<Created, ApiError> {
    let spec = KeySpec {
        name: old.name.clone(),
        description: old.description.clone(),
        scopes: old
            .scopes
            .as_deref()
            .map(crate::auth::permission::parse_scopes),
        expires_in_days: old.expires_in_days,
    };
    let (old_id, user_id, organization_id) = (old.id, old.user_id, old.organization_id);
    let replaces = old.prefix.clone();
    let by = actor.principal().map(|p| p.user_id);
    change(app, actor, move |c| {
        if !api_keys::revoke(c.tx, old_id, by)? {
            return Err(ApiError::Conflict(
                "this key was already rotated or revoked".into(),
            ));
        }
        let created = insert(c.tx, user_id, organization_id, &spec)?;
        c.audit(
            "api_key.rotated",
            "api_key",
            created.key.id,
            Some(crate::domain::json_object(&[
                ("prefix", &created.key.prefix),
                ("replaces", &replaces),
            ])),
        )?;
        c.touch(Kind::ApiKey, old_id);
        c.touch(Kind::ApiKey, created.key.id);
        Ok(created)
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
