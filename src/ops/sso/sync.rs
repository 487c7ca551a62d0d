//! A directory sync: the users a provider manages, compared with what its directory says now.
//! A user the directory no longer returns, disables, or no longer maps to a role is
//! deactivated (sessions ended and keys revoked, in force on every server before the sync
//! answers); a user whose groups now give another role gets it. Runs every provider's
//! `sync_interval` (one server of several takes each due sync), on
//! `POST .../sso-providers/{id}/sync/` and with `claribi directory sync`.
//!
//! The safety rule: a sync that cannot reach the directory, or whose answer would deactivate
//! every user the provider manages at once (a wrong base DN, a filter that matches no one, an
//! empty answer), changes nothing and says why.

use std::collections::HashMap;

use super::ldap::{Directory, DirectoryError, Person};
use super::Provider;
use crate::domain::{Email, Id, Role};
use crate::error::ApiError;
use crate::ops::accounts::{self, UserChange};
use crate::ops::Actor;
use crate::ops::AppState;
use crate::store::audit::Outcome;
use crate::store::users;

/// Users changed per transaction.
const CHUNK: usize = 500;

/// A role a sync changed (or, in a dry run, would change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    pub email: String,
    pub from: Role,
    pub to: Role,
}

/// What a sync did (or would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub deactivated: Vec<String>,
    pub role_changed: Vec<RoleChange>,
    pub unchanged: u64,
}

/// Why a user is deactivated (for the log).
fn verdict(provider: &Provider, person: Option<&Person>) -> Result<Role, &'static str> {
    let person = person.ok_or("no longer in the directory")?;
    if person.disabled {
        return Err("disabled in the directory");
    }
    provider
        .role_for(&person.groups)
        .ok_or("in no group that maps to a role")
}

pub(crate) fn directory_error(e: DirectoryError) -> ApiError {
    tracing::warn!(error = %e, "a directory did not answer");
    ApiError::DirectoryUnavailable(format!("{e}: nothing was changed"))
}

/// Compares the provider's managed users with the directory and applies the differences
/// (none with `dry_run`), as `actor`.
pub async fn run(
    app: &AppState,
    actor: &Actor,
    provider: &Provider,
    dry_run: bool,
) -> Result<Report, ApiError> {
    if !provider.enabled {
        return Err(ApiError::Conflict(
            "the provider is disabled: enable it before syncing".into(),
        ));
    }
    let Some(settings) = provider.ldap() else {
        return Err(ApiError::Conflict(
            "only a directory (ldap) provider syncs: an OpenID provider's users are checked at \
             each sign-in"
                .into(),
        ));
    };
    let directory = Directory::new(settings, provider.secret(app)?, app.directory_tls.clone());
    let people = directory.everyone().await.map_err(directory_error)?;
    // A linked user is found by who they are in the directory; others by address, unless two
    // entries share it (then nothing is decided about that user).
    let by_dn: HashMap<String, &Person> = people.iter().map(|p| (p.dn.to_lowercase(), p)).collect();
    let mut by_email: HashMap<&str, Option<&Person>> = HashMap::new();
    for person in &people {
        by_email
            .entry(person.email.as_str())
            .and_modify(|found| *found = None)
            .or_insert(Some(person));
    }

    // Managed: the organization's active users the provider serves or has linked, but the
    // owner, whom no provider manages.
    let (org, provider_id) = (provider.organization_id, provider.id);
    let (users, links) = app
        .store
        .read(move |db| {
            Ok((
                users::of_organization(db, org)?,
                crate::store::sso::links(db, provider_id)?,
            ))
        })
        .await?;
    let links: HashMap<Id, String> = links.into_iter().collect();
    let managed: Vec<&users::User> = users
        .iter()
        .filter(|u| u.is_active && u.role != Role::Owner)
        .filter(|u| {
            links.contains_key(&u.id) || Email::parse(&u.email).is_ok_and(|e| provider.serves(&e))
        })
        .collect();

    let mut report = Report::default();
    let mut deactivate: Vec<(Id, &str)> = Vec::new();
    let mut change_role: Vec<(Id, Role)> = Vec::new();
    for user in &managed {
        let person = match links.get(&user.id) {
            Some(subject) => by_dn.get(subject).copied(),
            None => match by_email.get(user.email.as_str()) {
                Some(Some(person)) => Some(*person),
                Some(None) => {
                    tracing::warn!(user = %user.email, "directory sync: two entries have this address; left as it is");
                    report.unchanged += 1;
                    continue;
                }
                None => None,
            },
        };
        match verdict(provider, person) {
            Err(why) => {
                tracing::info!(user = %user.email, why, "directory sync: deactivating");
                deactivate.push((user.id, why));
                report.deactivated.push(user.email.clone());
            }
            Ok(role) if role != user.role => {
                change_role.push((user.id, role));
                report.role_changed.push(RoleChange {
                    email: user.email.clone(),
                    from: user.role,
                    to: role,
                });
            }
            Ok(_) => report.unchanged += 1,
        }
    }
    if !managed.is_empty() && deactivate.len() == managed.len() {
        return Err(ApiError::Conflict(format!(
            "the directory's answer would deactivate all {} users this provider manages \
             ({} entries found under {}): nothing was changed; check the base DN, the filter \
             and the service account's rights",
            managed.len(),
            people.len(),
            settings.user_base
        )));
    }
    if !dry_run {
        // In transactions of `CHUNK` users, each confirmed once by every server: a sync of
        // thousands is a handful of changes, not thousands.
        let changes: Vec<(Id, UserChange)> = change_role
            .into_iter()
            .map(|(id, role)| {
                let wanted = UserChange {
                    role: Some(role),
                    ..UserChange::default()
                };
                (id, wanted)
            })
            .chain(deactivate.into_iter().map(|(id, _)| {
                let wanted = UserChange {
                    is_active: Some(false),
                    ..UserChange::default()
                };
                (id, wanted)
            }))
            .collect();
        for chunk in changes.chunks(CHUNK) {
            accounts::update_users(app, actor, chunk.to_vec()).await?;
        }
    }
    let details = serde_json::json!({
        "provider": provider.id,
        "dry_run": dry_run,
        "deactivated": report.deactivated.len(),
        "role_changed": report.role_changed.len(),
        "unchanged": report.unchanged,
    })
    .to_string();
    let mut entry = actor.entry("directory.synced", Outcome::Success);
    entry.organization_id = Some(org);
    entry.target_type = Some("sso_provider");
    entry.target_id = Some(provider.id);
    entry.details = details;
    crate::ops::sessions::record(app, entry).await;
    Ok(report)
}

/// Every enabled LDAP provider's scheduled sync, for the life of the server: each minute,
/// the due ones (of several servers, the one that takes a sync runs it).
pub async fn run_periodically(app: AppState) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(30));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let actor = Actor::System("directory sync");
    loop {
        ticker.tick().await;
        let providers = match app.store.read(crate::store::sso::enabled).await {
            Ok(rows) => rows,
            Err(_) => continue,
        };
        for row in providers {
            let Ok(provider) = Provider::from_row(row) else {
                continue;
            };
            if provider.ldap().is_none() {
                continue;
            }
            let (id, every) = (provider.id, provider.sync_interval().as_millis() as i64);
            let due = app
                .store
                .write(move |db| crate::store::sso::take_due_sync(db, id, every))
                .await;
            if !matches!(due, Ok(true)) {
                continue;
            }
            match run(&app, &actor, &provider, false).await {
                Ok(report) => tracing::info!(
                    provider = provider.id,
                    deactivated = report.deactivated.len(),
                    role_changed = report.role_changed.len(),
                    unchanged = report.unchanged,
                    "directory synced"
                ),
                Err(e) => {
                    tracing::warn!(provider = provider.id, error = %e, "directory sync changed nothing")
                }
            }
        }
    }
}
