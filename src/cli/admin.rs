//! `org create`, `user create`, `user set-password` and `backup`: administration from the
//! shell, against the same database as the server (also while it runs).

use std::path::Path;

use super::Failure;
use crate::app::App;
use crate::config::Config;
use crate::domain::{Email, Role, Secret};
use crate::store::audit::{self, Entry, Outcome};
use crate::store::{api_keys, meta, organizations, sessions, users, StoreError};

fn open(config: Config) -> Result<App, Failure> {
    App::open(config).map_err(Failure::runtime)
}

fn email(raw: &str) -> Result<Email, Failure> {
    Email::parse(raw).map_err(|why| Failure::usage(format!("--email {why}")))
}

fn hash(app: &App, password: &Secret, email: &Email) -> Result<String, Failure> {
    app.hasher
        .check_strength(password, email.as_str())
        .map_err(|weak| Failure::usage(format!("the password {}", weak.0)))?;
    app.hasher.hash_blocking(password).map_err(Failure::runtime)
}

fn store_failure(error: StoreError) -> Failure {
    match error {
        StoreError::Conflict(what) => Failure::usage(what),
        other => Failure::runtime(other),
    }
}

pub fn create_org(
    config: Config,
    name: &str,
    owner_email: &str,
    password: Secret,
) -> Result<(), Failure> {
    let app = open(config)?;
    let name = crate::domain::clean_text(name, 1, 100)
        .map_err(|e| Failure::usage(format!("--name {}", e.describe())))?;
    let owner = email(owner_email)?;
    let hash = hash(&app, &password, &owner)?;
    let org = app
        .store
        .write_blocking(|tx| {
            if organizations::find_by_name(tx, &name)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "an organization named {name:?} already exists"
                )));
            }
            let org = organizations::create(tx, &name)?;
            users::create(
                tx,
                &users::NewUser {
                    organization_id: org,
                    email: &owner,
                    name: "",
                    role: Role::Owner,
                    password_hash: &hash,
                },
            )?;
            meta::bump_live_epoch(tx)?;
            Ok(org)
        })
        .map_err(store_failure)?;
    println!("created organization {name:?} (id {org}) with owner {owner}");
    Ok(())
}

pub fn create_user(
    config: Config,
    org: &str,
    email_raw: &str,
    role: &str,
    name: &str,
    password: Secret,
) -> Result<(), Failure> {
    let app = open(config)?;
    let email = email(email_raw)?;
    let role: Role = role
        .parse()
        .map_err(|why| Failure::usage(format!("--role {why}")))?;
    if role == Role::Owner {
        return Err(Failure::usage(
            "--role owner: an organization has exactly one owner; create it with `org create`",
        ));
    }
    let name = crate::domain::clean_text(name, 0, 100)
        .map_err(|e| Failure::usage(format!("--name {}", e.describe())))?;
    let hash = hash(&app, &password, &email)?;
    let id = app
        .store
        .write_blocking(|tx| {
            let org = organizations::find_by_name(tx, org)?
                .ok_or_else(|| StoreError::Conflict(format!("no organization is named {org:?}")))?;
            let id = users::create(
                tx,
                &users::NewUser {
                    organization_id: org,
                    email: &email,
                    name: &name,
                    role,
                    password_hash: &hash,
                },
            )?;
            meta::bump_live_epoch(tx)?;
            Ok(id)
        })
        .map_err(store_failure)?;
    println!("created user {email} (id {id}) with role {role}");
    Ok(())
}

pub fn set_password(config: Config, email_raw: &str, password: Secret) -> Result<(), Failure> {
    let app = open(config)?;
    let email = email(email_raw)?;
    let hash = hash(&app, &password, &email)?;
    let revoked = app
        .store
        .write_blocking(|tx| {
            let user = find(tx, &email)?;
            users::set_password(tx, user.id, &hash)?;
            let revoked = sessions::revoke_all_for_user(tx, user.id, None)?;
            audit::record(tx, &cli_entry("password.changed", &user))?;
            // A running server reloads users and sessions within a second.
            meta::bump_live_epoch(tx)?;
            Ok(revoked.len())
        })
        .map_err(store_failure)?;
    println!("password of {email} changed; {revoked} session(s) ended");
    Ok(())
}

pub fn reset_mfa(config: Config, email_raw: &str) -> Result<(), Failure> {
    let app = open(config)?;
    let email = email(email_raw)?;
    app.store
        .write_blocking(|tx| {
            let user = find(tx, &email)?;
            users::set_mfa_enabled(tx, user.id, false)?;
            audit::record(tx, &cli_entry("mfa.reset", &user))?;
            meta::bump_live_epoch(tx)
        })
        .map_err(store_failure)?;
    println!("MFA of {email} turned off");
    Ok(())
}

fn find(conn: &rusqlite::Connection, email: &Email) -> Result<users::User, StoreError> {
    users::find_by_email(conn, email)?
        .ok_or_else(|| StoreError::Conflict(format!("no user has the email {email}")))
}

/// An audit entry for a change made from the shell (no user, no address).
fn cli_entry(action: &'static str, target: &users::User) -> Entry {
    Entry {
        organization_id: Some(target.organization_id),
        action,
        outcome: Outcome::Success,
        target_type: Some("user"),
        target_id: Some(target.id),
        details: r#"{"via":"cli"}"#.into(),
        ..Entry::default()
    }
}

pub fn revoke_key(config: Config, prefix: &str) -> Result<(), Failure> {
    let app = open(config)?;
    let prefix = prefix.trim();
    let revoked = app
        .store
        .write_blocking(|tx| {
            let keys = api_keys::find_by_prefix(tx, prefix)?;
            let key = match keys.as_slice() {
                [] => {
                    return Err(StoreError::Conflict(format!(
                        "no API key has the prefix {prefix}"
                    )))
                }
                [key] => key,
                _ => {
                    return Err(StoreError::Conflict(format!(
                        "{} keys share the prefix {prefix}; revoke them from the web page",
                        keys.len()
                    )))
                }
            };
            let revoked = api_keys::revoke(tx, key.id, None)?;
            if revoked {
                audit::record(
                    tx,
                    &Entry {
                        organization_id: Some(key.organization_id),
                        action: "api_key.revoked",
                        outcome: Outcome::Success,
                        api_key_prefix: Some(key.prefix.clone()),
                        target_type: Some("api_key"),
                        target_id: Some(key.id),
                        details: r#"{"via":"cli"}"#.into(),
                        ..Entry::default()
                    },
                )?;
                meta::bump_live_epoch(tx)?;
            }
            Ok(revoked)
        })
        .map_err(store_failure)?;
    if revoked {
        println!("revoked the API key {prefix}");
    } else {
        println!("the API key {prefix} was already revoked");
    }
    Ok(())
}

pub fn backup(config: Config, out: &Path) -> Result<(), Failure> {
    if out.exists() {
        return Err(Failure::usage(format!(
            "{} exists; choose a new file name",
            out.display()
        )));
    }
    let app = open(config)?;
    app.store.backup_to(out).map_err(Failure::runtime)?;
    println!("backup written to {}", out.display());
    Ok(())
}
