//! An organization's security policy (contract 10.4): read, changed by the owner (audited
//! with the old and new values), applied to every key made or rotated, and what exists today
//! that breaks it. A change of policy revokes nothing on its own.

use super::{change, AppState, Caller};
use crate::auth::permission::parse_scopes;
use crate::auth::policy::{KeyTerms, RequireMfa, SecurityPolicy};
use crate::domain::{Id, Role};
use crate::error::ApiError;
use crate::store::organizations::{self, PolicyRow};
use crate::store::{api_keys, users, Db};

fn from_row(row: PolicyRow) -> Result<SecurityPolicy, ApiError> {
    Ok(SecurityPolicy {
        require_mfa: RequireMfa::parse(&row.require_mfa).ok_or_else(|| {
            ApiError::Internal(format!("stored require_mfa {:?}", row.require_mfa))
        })?,
        key_max_lifetime_days: row.key_max_lifetime_days,
        allow_never_expiring_keys: row.allow_never_expiring_keys,
        require_ip_allowlist_for_write_scopes: row.require_ip_allowlist_for_write_scopes,
        session_max_lifetime: row.session_max_lifetime,
    })
}

fn to_row(policy: &SecurityPolicy) -> PolicyRow {
    PolicyRow {
        require_mfa: policy.require_mfa.as_str().to_string(),
        key_max_lifetime_days: policy.key_max_lifetime_days,
        allow_never_expiring_keys: policy.allow_never_expiring_keys,
        require_ip_allowlist_for_write_scopes: policy.require_ip_allowlist_for_write_scopes,
        session_max_lifetime: policy.session_max_lifetime,
    }
}

/// The organization's policy, in the caller's transaction (the defaults when none was set).
pub fn of(db: &Db<'_>, organization_id: Id) -> Result<SecurityPolicy, ApiError> {
    organizations::policy(db, organization_id)?
        .map(from_row)
        .transpose()
        .map(Option::unwrap_or_default)
}

pub async fn get(app: &AppState, organization_id: Id) -> Result<SecurityPolicy, ApiError> {
    app.store
        .read(move |db| Ok(of(db, organization_id)))
        .await?
}

/// Refuses a key the organization's policy forbids: `403 policy_violation` naming the rule.
pub fn check_key(db: &Db<'_>, organization_id: Id, key: &KeyTerms<'_>) -> Result<(), ApiError> {
    match of(db, organization_id)?.key_breach(key) {
        Some(breach) => Err(ApiError::policy(breach.field, breach.rule, breach.message)),
        None => Ok(()),
    }
}

/// The policy as JSON for the audit log.
fn audited(policy: &SecurityPolicy) -> serde_json::Value {
    serde_json::json!({
        "require_mfa": policy.require_mfa.as_str(),
        "key_max_lifetime_days": policy.key_max_lifetime_days,
        "allow_never_expiring_keys": policy.allow_never_expiring_keys,
        "require_ip_allowlist_for_write_scopes": policy.require_ip_allowlist_for_write_scopes,
        "session_max_lifetime": policy.session_max_lifetime,
    })
}

/// What a change of policy sets; `None` leaves it, `Some(None)` clears what may be cleared.
#[derive(Debug, Clone, Default)]
pub struct PolicyEdit {
    pub require_mfa: Option<RequireMfa>,
    pub key_max_lifetime_days: Option<Option<i64>>,
    pub allow_never_expiring_keys: Option<bool>,
    pub require_ip_allowlist_for_write_scopes: Option<bool>,
    pub session_max_lifetime: Option<Option<i64>>,
}

impl PolicyEdit {
    fn apply(&self, mut policy: SecurityPolicy) -> SecurityPolicy {
        if let Some(r) = self.require_mfa {
            policy.require_mfa = r;
        }
        if let Some(d) = self.key_max_lifetime_days {
            policy.key_max_lifetime_days = d;
        }
        if let Some(a) = self.allow_never_expiring_keys {
            policy.allow_never_expiring_keys = a;
        }
        if let Some(r) = self.require_ip_allowlist_for_write_scopes {
            policy.require_ip_allowlist_for_write_scopes = r;
        }
        if let Some(s) = self.session_max_lifetime {
            policy.session_max_lifetime = s;
        }
        policy
    }
}

/// The owner changes the policy (the edit applied to it as committed, so that two changes at
/// once both count); audited `policy.changed` with the old and new values (nothing when it is
/// unchanged). Existing keys and sessions stay as they are: `violations` lists them.
pub async fn set(
    app: &AppState,
    caller: &Caller,
    edit: PolicyEdit,
) -> Result<SecurityPolicy, ApiError> {
    let (organization_id, caller_id) = (caller.organization_id(), caller.user_id());
    change(app, &caller.actor(), move |c| {
        // The owner as committed: a transfer of ownership that committed first counts.
        if users::get(c.tx, caller_id)?.role != Role::Owner {
            return Err(ApiError::denied(
                "only the owner changes the organization's security policy",
            ));
        }
        let before = of(c.tx, organization_id)?;
        let wanted = edit.apply(before.clone());
        if before != wanted {
            organizations::set_policy(c.tx, organization_id, &to_row(&wanted))?;
            let details = serde_json::json!({"old": audited(&before), "new": audited(&wanted)});
            c.audit(
                "policy.changed",
                "organization",
                organization_id,
                Some(details.to_string()),
            )?;
        }
        Ok(wanted)
    })
    .await
}

/// A key that breaks the policy today.
#[derive(Debug, Clone)]
pub struct KeyViolation {
    pub id: Id,
    pub prefix: String,
    /// The person who owns it, or the service account it acts as.
    pub owner_id: Id,
    pub owner_name: String,
    pub owner_email: Option<String>,
    pub service_account: bool,
    pub rule: &'static str,
}

/// A person who breaks the policy today.
#[derive(Debug, Clone)]
pub struct UserViolation {
    pub id: Id,
    pub email: String,
    pub rule: &'static str,
}

/// What exists today and breaks the organization's policy: usable keys, and active people
/// without the MFA it requires.
pub async fn violations(
    app: &AppState,
    organization_id: Id,
) -> Result<(Vec<KeyViolation>, Vec<UserViolation>), ApiError> {
    app.store
        .read(move |db| Ok(find_violations(db, organization_id)))
        .await?
}

fn find_violations(
    db: &Db<'_>,
    organization_id: Id,
) -> Result<(Vec<KeyViolation>, Vec<UserViolation>), ApiError> {
    let policy = of(db, organization_id)?;
    let people: Vec<users::User> = users::of_organization(db, organization_id)?;
    let user_violations = people
        .iter()
        .filter(|u| u.is_active && !u.mfa_enabled && policy.requires_mfa(u.role))
        .map(|u| UserViolation {
            id: u.id,
            email: u.email.clone(),
            rule: "require_mfa",
        })
        .collect();
    // A decoy never authenticates; a replaced key ends with its rotation's overlap.
    let usable: Vec<api_keys::ApiKey> = api_keys::usable_of_organization(db, organization_id)?
        .into_iter()
        .filter(|k| !k.canary && k.replaced_by.is_none())
        .collect();
    let mut owners: std::collections::HashMap<Id, users::User> =
        people.into_iter().map(|u| (u.id, u)).collect();
    // The service accounts that own keys, in one query.
    let mut accounts: Vec<Id> = usable
        .iter()
        .map(|k| k.user_id)
        .filter(|id| !owners.contains_key(id))
        .collect();
    accounts.sort_unstable();
    accounts.dedup();
    owners.extend(users::some(db, &accounts)?.into_iter().map(|u| (u.id, u)));
    let mut keys = Vec::new();
    for key in usable {
        let Some(owner) = owners.get(&key.user_id) else {
            continue;
        };
        let scopes = key.scopes.as_deref().map(parse_scopes);
        let terms = KeyTerms {
            expires_in_days: key.expires_in_days,
            scopes: scopes.as_deref(),
            role: owner.role,
            allowlisted: key.allowed_ips.is_some(),
        };
        if let Some(breach) = policy.key_breach(&terms) {
            keys.push(KeyViolation {
                id: key.id,
                prefix: key.prefix,
                owner_id: owner.id,
                owner_name: owner.name.clone(),
                owner_email: (!owner.service_account).then(|| owner.email.clone()),
                service_account: owner.service_account,
                rule: breach.rule,
            });
        }
    }
    Ok((keys, user_violations))
}

/// Must this user set up MFA before their session opens anything else?
pub fn mfa_enrollment_required(db: &Db<'_>, user: &users::User) -> Result<bool, ApiError> {
    Ok(!user.mfa_enabled && of(db, user.organization_id)?.requires_mfa(user.role))
}

/// The role a key made for `owner` acts with.
pub fn owner_role(db: &Db<'_>, owner: Id) -> Result<Role, ApiError> {
    Ok(users::get(db, owner)?.role)
}
