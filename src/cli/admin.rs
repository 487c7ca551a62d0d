//! `org create`, `user create|set-password|reset-mfa|deactivate|activate`, `api-key revoke`
//! `backup` and `restore`: administration from the shell, through the same operations as the API, on the
//! same database as a running server. A change that reaches the live state returns once every
//! running server has confirmed it (or exits 1 naming the one that did not).

use std::path::Path;
use std::sync::Arc;

use super::Failure;
use crate::app::{App, AppState};
use crate::config::Config;
use crate::domain::{Email, Role, Secret};
use crate::error::ApiError;
use crate::ops::{accounts, keys, Actor};
use crate::store::organizations;

const SHELL: Actor = Actor::System("cli");

/// Opens the application and runs `f` on a small runtime of its own (the operations are
/// async; the hashing threads and the database pool are the application's).
fn with_app<T, F, Fut>(config: Config, f: F) -> Result<T, Failure>
where
    F: FnOnce(AppState) -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::runtime)?;
    let app: AppState = Arc::new(App::open(config).map_err(Failure::runtime)?);
    runtime.block_on(f(app))
}

/// What an operation's refusal means at the shell: the input was wrong (2), or the change
/// could not be made or confirmed (1).
fn failure(error: ApiError) -> Failure {
    match error {
        ApiError::Invalid { message, .. } => Failure::usage(message),
        ApiError::Conflict(what) | ApiError::PermissionDenied(what) => Failure::usage(what),
        ApiError::Internal(cause) => Failure::runtime(cause),
        other => Failure::runtime(other),
    }
}

fn email(raw: &str) -> Result<Email, Failure> {
    Email::parse(raw).map_err(|why| Failure::usage(format!("--email {why}")))
}

fn find_organization(app: &AppState, name: &str) -> Result<crate::domain::Id, Failure> {
    let wanted = name.to_string();
    app.store
        .read_blocking(|c| organizations::find_by_name(c, &wanted))
        .map_err(Failure::runtime)?
        .ok_or_else(|| Failure::usage(format!("no organization is named {name:?}")))
}

pub fn create_org(
    config: Config,
    name: &str,
    owner_email: &str,
    password: Secret,
) -> Result<(), Failure> {
    let name = crate::domain::clean_text(name, 1, 100)
        .map_err(|e| Failure::usage(format!("--name {}", e.describe())))?;
    let owner = email(owner_email)?;
    with_app(config, |app| async move {
        let hash = accounts::hash_new_password(&app, "password", password, owner.as_str())
            .await
            .map_err(failure)?;
        let (org, _) = accounts::create_organization(
            &app,
            &SHELL,
            name.clone(),
            owner.clone(),
            String::new(),
            hash,
        )
        .await
        .map_err(failure)?;
        println!("created organization {name:?} (id {org}) with owner {owner}");
        Ok(())
    })
}

pub fn create_user(
    config: Config,
    org: &str,
    email_raw: &str,
    role: &str,
    name: &str,
    password: Secret,
) -> Result<(), Failure> {
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
    let org = org.to_string();
    with_app(config, |app| async move {
        let organization = find_organization(&app, &org)?;
        let user = accounts::create_user(&app, &SHELL, organization, email, name, role, password)
            .await
            .map_err(failure)?;
        println!(
            "created user {} (id {}) with role {}",
            user.email, user.id, user.role
        );
        Ok(())
    })
}

pub fn set_password(config: Config, email_raw: &str, password: Secret) -> Result<(), Failure> {
    let email = email(email_raw)?;
    with_app(config, |app| async move {
        let user = accounts::find_by_email(&app, &email)
            .await
            .map_err(failure)?;
        let hash = accounts::checked_new_password(&app, &user, "password", password)
            .await
            .map_err(failure)?;
        let ended = accounts::set_password(&app, &SHELL, user.id, hash, None)
            .await
            .map_err(failure)?;
        println!("password of {email} changed; {ended} session(s) ended");
        Ok(())
    })
}

pub fn reset_mfa(config: Config, email_raw: &str) -> Result<(), Failure> {
    let email = email(email_raw)?;
    with_app(config, |app| async move {
        let user = accounts::find_by_email(&app, &email)
            .await
            .map_err(failure)?;
        accounts::reset_mfa(&app, &SHELL, user.id)
            .await
            .map_err(failure)?;
        println!("MFA of {email} turned off");
        Ok(())
    })
}

/// `user deactivate` (every session ends, every key is revoked) and `user activate`.
pub fn set_active(config: Config, email_raw: &str, active: bool) -> Result<(), Failure> {
    let email = email(email_raw)?;
    with_app(config, |app| async move {
        let user = accounts::find_by_email(&app, &email)
            .await
            .map_err(failure)?;
        let wanted = accounts::UserChange {
            is_active: Some(active),
            ..accounts::UserChange::default()
        };
        accounts::update_user(&app, &SHELL, user.id, wanted)
            .await
            .map_err(failure)?;
        if active {
            println!("{email} is active again");
        } else {
            println!("{email} deactivated: their sessions ended and their API keys are revoked");
        }
        Ok(())
    })
}

pub fn revoke_key(config: Config, prefix: &str) -> Result<(), Failure> {
    let prefix = prefix.trim().to_string();
    with_app(config, |app| async move {
        let revoked = keys::revoke_by_prefix(&app, &SHELL, &prefix)
            .await
            .map_err(failure)?;
        if revoked {
            println!("revoked the API key {prefix}");
        } else {
            println!("the API key {prefix} was already revoked");
        }
        Ok(())
    })
}

pub fn backup(config: Config, out: &Path) -> Result<(), Failure> {
    if out.exists() {
        return Err(Failure::usage(format!(
            "{} exists; choose a new file name",
            out.display()
        )));
    }
    let app = App::open(config).map_err(Failure::runtime)?;
    // Created first with mode 0600: the copy holds password hashes and the audit log.
    crate::data_dir::create_private_new(out).map_err(Failure::runtime)?;
    app.store.backup_to(out).map_err(Failure::runtime)?;
    println!("backup written to {}", out.display());
    Ok(())
}

/// `claribi restore --from FILE`: checks the file, refuses while a server runs on the
/// database, keeps the current database as `<db>.before-restore-<time>`, puts the backup in its
/// place (migrated to this binary's schema) and re-applies the revocation journal.
pub fn restore(config: Config, from: &Path) -> Result<(), Failure> {
    use crate::store::backup;
    let info = backup::inspect(from).map_err(Failure::usage)?;
    let database = config.database.path(&config.server);
    if database.exists() {
        let store = crate::store::Store::open(&database, 1, config.database.busy_timeout.0)
            .map_err(Failure::runtime)?;
        let since = crate::ops::feed::now_ms() - config.cluster.lease.0.as_millis() as i64;
        let running = store
            .read_blocking(|c| crate::store::feed::live_servers(c, since, ""))
            .map_err(Failure::runtime)?;
        if let Some(s) = running.first() {
            return Err(Failure::runtime(format!(
                "a server is running on this database (pid {} on {}, {}): stop it first",
                s.pid, s.host, s.address
            )));
        }
    }
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(Failure::runtime)?;
    let mut aside = database.as_os_str().to_owned();
    aside.push(format!(".before-restore-{stamp}"));
    let aside = std::path::PathBuf::from(aside);
    if aside.exists() {
        return Err(Failure::runtime(format!(
            "{} exists; wait a second and run restore again",
            aside.display()
        )));
    }
    let kept = backup::set_aside(&database, &aside).map_err(Failure::runtime)?;
    let installed = crate::data_dir::prepare_database(&database)
        .and_then(|()| backup::install(from, &database));
    if let Err(e) = installed {
        // Leave the installation as it was.
        let _ = std::fs::remove_file(&database);
        if kept {
            let _ = std::fs::rename(&aside, &database);
        }
        return Err(Failure::runtime(e));
    }
    let journal_path = config.server.data_dir.join(crate::ops::journal::FILE_NAME);
    let (entries, skipped) = crate::ops::journal::read(&journal_path).map_err(Failure::runtime)?;
    let file = from
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let position = info.feed_position;
    let done = with_app(config, move |app| async move {
        crate::ops::restore::reapply(&app, file, position, entries)
            .await
            .map_err(failure)
    })?;
    println!(
        "restored {} (schema version {}, {} organizations, {} users, feed position {position})",
        from.display(),
        info.schema_version,
        info.organizations,
        info.users
    );
    if kept {
        println!("the previous database is kept at {}", aside.display());
    }
    println!(
        "re-applied {} of {} revocations journaled after the backup ({})",
        done.applied,
        done.considered,
        journal_path.display()
    );
    if skipped > 0 {
        println!("skipped {skipped} unreadable journal lines (writes cut short by a crash)");
    }
    Ok(())
}
