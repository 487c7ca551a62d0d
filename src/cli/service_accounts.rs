//! `service-account create|list|deactivate|activate|delete|create-key` and `policy show`:
//! an organization's machine identities and its security policy, from the shell, through the
//! same operations as the API (contract 10.4).

use super::admin::{failure, find_organization, with_app, SHELL};
use super::Failure;
use crate::auth::permission::Permission;
use crate::config::Config;
use crate::domain::{clean_text, Id, Role};
use crate::ops::{keys, policy, service_accounts as ops, AppState};
use crate::store::service_accounts;
use crate::store::users::User;

/// The organization's service account of that name.
fn find(app: &AppState, org: Id, name: &str) -> Result<User, Failure> {
    let wanted = name.to_string();
    app.store
        .read_blocking(|c| service_accounts::find_by_name(c, org, &wanted))
        .map_err(Failure::runtime)?
        .ok_or_else(|| Failure::usage(format!("no service account is named {name:?}")))
}

fn role(raw: &str) -> Result<Role, Failure> {
    match raw.parse::<Role>() {
        Ok(Role::Owner) => Err(Failure::usage(
            "--role owner: a service account cannot be the owner",
        )),
        Ok(role) => Ok(role),
        Err(why) => Err(Failure::usage(format!("--role {why}"))),
    }
}

pub fn create(
    config: Config,
    org: &str,
    name: &str,
    role_raw: &str,
    description: &str,
) -> Result<(), Failure> {
    let role = role(role_raw)?;
    let name =
        clean_text(name, 1, 100).map_err(|e| Failure::usage(format!("--name {}", e.describe())))?;
    let description = clean_text(description, 0, 500)
        .map_err(|e| Failure::usage(format!("--description {}", e.describe())))?;
    let org = org.to_string();
    with_app(config, |app| async move {
        let organization = find_organization(&app, &org)?;
        let account = ops::create(&app, &SHELL, organization, name, role, description)
            .await
            .map_err(failure)?;
        println!(
            "created service account {:?} (id {}) with role {}",
            account.name, account.id, account.role
        );
        Ok(())
    })
}

pub fn list(config: Config, org: &str) -> Result<(), Failure> {
    let org = org.to_string();
    with_app(config, |app| async move {
        let organization = find_organization(&app, &org)?;
        let (accounts, counts) = app
            .store
            .read(move |c| {
                let accounts = service_accounts::of_organization(c, organization)?;
                let ids: Vec<Id> = accounts.iter().map(|a| a.id).collect();
                Ok((accounts, service_accounts::key_counts(c, &ids)?))
            })
            .await
            .map_err(Failure::runtime)?;
        println!(
            "{:>6}  {:<14} {:<9} {:>4}  name",
            "id", "role", "state", "keys"
        );
        for a in accounts {
            println!(
                "{:>6}  {:<14} {:<9} {:>4}  {}",
                a.id,
                a.role.as_str(),
                if a.is_active { "active" } else { "inactive" },
                counts.get(&a.id).copied().unwrap_or(0),
                a.name
            );
        }
        Ok(())
    })
}

/// `deactivate` (every key revoked at once) and `activate` (revoked keys stay revoked).
pub fn set_active(config: Config, org: &str, name: &str, active: bool) -> Result<(), Failure> {
    let (org, name) = (org.to_string(), name.to_string());
    with_app(config, |app| async move {
        let organization = find_organization(&app, &org)?;
        let account = find(&app, organization, &name)?;
        let edit = ops::Edit {
            is_active: Some(active),
            ..ops::Edit::default()
        };
        ops::update(&app, &SHELL, organization, account.id, edit)
            .await
            .map_err(failure)?;
        if active {
            println!("service account {name:?} is active again");
        } else {
            println!("service account {name:?} deactivated: its API keys are revoked");
        }
        Ok(())
    })
}

pub fn delete(config: Config, org: &str, name: &str) -> Result<(), Failure> {
    let (org, name) = (org.to_string(), name.to_string());
    with_app(config, |app| async move {
        let organization = find_organization(&app, &org)?;
        let account = find(&app, organization, &name)?;
        ops::delete(&app, &SHELL, organization, account.id)
            .await
            .map_err(failure)?;
        println!("service account {name:?} deleted: its API keys are revoked");
        Ok(())
    })
}

/// What `create-key` takes besides the account.
pub struct KeyArgs {
    pub key_name: String,
    pub scopes: Vec<String>,
    pub expires_in_days: Option<i64>,
    pub allowed_ips: Vec<String>,
}

/// A key that acts as the service account: the key alone on standard output (shown this once),
/// what it is on standard error.
pub fn create_key(config: Config, org: &str, name: &str, args: KeyArgs) -> Result<(), Failure> {
    let key_name = clean_text(&args.key_name, 1, 100)
        .map_err(|e| Failure::usage(format!("--key-name {}", e.describe())))?;
    if let Some(days) = args.expires_in_days {
        if !crate::auth::policy::KEY_LIFETIMES.contains(&days) {
            return Err(Failure::usage("--expires-in-days must be 30, 90 or 365"));
        }
    }
    let mut scopes: Vec<Permission> = Vec::new();
    for raw in &args.scopes {
        let scope: Permission = raw
            .parse()
            .map_err(|()| Failure::usage(format!("--scope: unknown scope `{raw}`")))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if args.allowed_ips.len() > 32 {
        return Err(Failure::usage(
            "--allowed-ip: at most 32 addresses or ranges",
        ));
    }
    let mut allowed = Vec::new();
    for raw in &args.allowed_ips {
        let net = crate::config::parse_ip_net(raw)
            .map_err(|why| Failure::usage(format!("--allowed-ip {raw}: {why}")))?;
        if !allowed.contains(&net) {
            allowed.push(net);
        }
    }
    let (org, name) = (org.to_string(), name.to_string());
    with_app(config, |app| async move {
        let organization = find_organization(&app, &org)?;
        // Active, and the scopes within its role: checked by the operation, as committed.
        let account = find(&app, organization, &name)?;
        let spec = keys::KeySpec {
            name: key_name,
            description: String::new(),
            scopes: (!scopes.is_empty()).then_some(scopes),
            expires_in_days: args.expires_in_days,
            allowed_ips: (!allowed.is_empty()).then_some(allowed),
            canary: false,
        };
        let created = keys::create_for(&app, &SHELL, organization, account.id, spec)
            .await
            .map_err(|e| match e {
                crate::error::ApiError::PolicyViolation { message, .. } => {
                    Failure::usage(format!("refused by the organization's policy: {message}"))
                }
                crate::error::ApiError::ScopeExceedsRole(why) => Failure::usage(why),
                other => failure(other),
            })?;
        eprintln!(
            "created key {} ({:?}) of service account {name:?}; it is shown this once:",
            created.key.prefix, created.key.name
        );
        println!("{}", created.secret);
        Ok(())
    })
}

/// The organization's policy, and what breaks it today. Exits 1 when something does.
pub fn show_policy(config: Config, org: &str) -> Result<(), Failure> {
    let org = org.to_string();
    with_app(config, |app| async move {
        let organization = find_organization(&app, &org)?;
        let current = policy::get(&app, organization).await.map_err(failure)?;
        let or_none = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        println!(
            "require_mfa                            {}",
            current.require_mfa.as_str()
        );
        println!(
            "key_max_lifetime_days                  {}",
            or_none(current.key_max_lifetime_days.map(|d| d.to_string()))
        );
        println!(
            "allow_never_expiring_keys              {}",
            current.allow_never_expiring_keys
        );
        println!(
            "require_ip_allowlist_for_write_scopes  {}",
            current.require_ip_allowlist_for_write_scopes
        );
        println!(
            "session_max_lifetime                   {}",
            or_none(
                current
                    .session_max_lifetime
                    .map(crate::domain::format_duration)
            )
        );
        let (keys, users) = policy::violations(&app, organization)
            .await
            .map_err(failure)?;
        if keys.is_empty() && users.is_empty() {
            println!("\nnothing breaks the policy");
            return Ok(());
        }
        println!("\nbreaking the policy today:");
        for k in &keys {
            let owner = k
                .owner_email
                .clone()
                .unwrap_or_else(|| format!("service account {:?}", k.owner_name));
            println!("  key {} of {owner}: {}", k.prefix, k.rule);
        }
        for u in &users {
            println!("  user {}: {}", u.email, u.rule);
        }
        Err(Failure::runtime(format!(
            "{} key(s) and {} user(s) break the policy",
            keys.len(),
            users.len()
        )))
    })
}
