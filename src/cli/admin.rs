//! `org create`, `user create|set-password|reset-mfa|deactivate|activate`, `api-key
//! revoke|leak-check`, `audit verify`, `backup` and `restore`: administration from the shell, through the same operations as the API, on the
//! same database as a running server. A change that reaches the live state returns once every
//! running server has confirmed it (or exits 1 naming the one that did not).

use std::path::Path;
use std::sync::Arc;

use super::Failure;
use crate::config::Config;
use crate::domain::{Email, Role, Secret};
use crate::error::ApiError;
use crate::ops::{accounts, keys, restore as ops_restore, Actor};
use crate::ops::{App, AppState};
use crate::store::organizations;

pub(super) const SHELL: Actor = Actor::System("cli");

/// Opens the application and runs `f` on a small runtime of its own (the operations are
/// async; the hashing threads and the database pool are the application's).
pub(super) fn with_app<T, F, Fut>(config: Config, f: F) -> Result<T, Failure>
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
pub(super) fn failure(error: ApiError) -> Failure {
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

pub(super) fn find_organization(app: &AppState, name: &str) -> Result<crate::domain::Id, Failure> {
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
            // Typed by the operator for the owner: a change is suggested, not required.
            accounts::OwnerPassword::SetByOther,
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

/// Reads `reader` in chunks of `chunk` bytes and adds every well-formed key in it to `found`,
/// once each, in order of appearance. A match that ends at the end of what was read so far may
/// go on in the next chunk (and then be no key): it is decided once more has been read, since
/// the tail of each chunk is read again.
fn scan(
    mut reader: impl std::io::Read,
    chunk: usize,
    found: &mut Vec<String>,
    seen: &mut std::collections::HashSet<String>,
) -> std::io::Result<()> {
    use crate::auth::api_key;
    // The longest match and the character after it.
    const TAIL: usize = api_key::PREFIX.len() + 36 + 1;
    let mut buffer: Vec<u8> = Vec::with_capacity(chunk + TAIL);
    let mut read = vec![0u8; chunk.max(1)];
    loop {
        let n = reader.read(&mut read)?;
        let end = n == 0;
        buffer.extend_from_slice(&read[..n]);
        let text = String::from_utf8_lossy(&buffer);
        for (at, key) in api_key::find_at(&text) {
            let open = at + key.len() == text.len() && !end;
            if !open && api_key::well_formed(key) && seen.insert(key.to_string()) {
                found.push(key.to_string());
            }
        }
        if end {
            return Ok(());
        }
        let keep = buffer.len().saturating_sub(TAIL);
        buffer.drain(..keep);
    }
}

/// `claribi api-key leak-check [FILE...] [--revoke]`: one line per key found; exit 1 when an
/// active key was found and left active.
pub fn leak_check(
    config: Config,
    files: &[std::path::PathBuf],
    revoke: bool,
) -> Result<(), Failure> {
    const CHUNK: usize = 64 * 1024;
    let (mut found, mut seen) = (Vec::new(), std::collections::HashSet::new());
    if files.is_empty() {
        scan(std::io::stdin().lock(), CHUNK, &mut found, &mut seen).map_err(Failure::runtime)?;
    }
    for path in files {
        let file = std::fs::File::open(path)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        scan(file, CHUNK, &mut found, &mut seen)
            .map_err(|e| Failure::runtime(format!("{}: {e}", path.display())))?;
    }
    with_app(config, |app| async move {
        let names: std::collections::HashMap<crate::domain::Id, String> = app
            .store
            .read(organizations::names)
            .await
            .map_err(Failure::runtime)?
            .into_iter()
            .collect();
        let leaked = keys::handle_leak(&app, &SHELL, found, None, revoke)
            .await
            .map_err(failure)?;
        let mut left_active = 0;
        for leak in &leaked {
            let Some(key) = &leak.key else {
                println!("{}  unknown: not a key of this installation", leak.prefix);
                continue;
            };
            let organization = names.get(&key.organization_id).map_or("?", String::as_str);
            let status = leak.status_before.unwrap_or("?");
            let outcome = if leak.revoked {
                "revoked now"
            } else if status == "active" {
                left_active += 1;
                "still active: run with --revoke"
            } else {
                "nothing to do"
            };
            println!(
                "{}  key {} {:?} of {organization:?}  {status}  {outcome}",
                leak.prefix, key.id, key.name
            );
        }
        eprintln!(
            "{} key(s) found; {} revoked; {left_active} left active",
            leaked.len(),
            leaked.iter().filter(|l| l.revoked).count()
        );
        if left_active > 0 {
            return Err(Failure::runtime(format!(
                "{left_active} active key(s) found in the text"
            )));
        }
        Ok(())
    })
}

/// `claribi audit verify`: exit 0 when every chain is intact, 1 naming the first entry that
/// does not match.
pub fn verify_audit(config: Config) -> Result<(), Failure> {
    let app = App::open(config).map_err(Failure::runtime)?;
    let verdict = app
        .store
        .read_blocking(|c| crate::store::audit::verify(c, crate::store::audit::Chains::All))
        .map_err(Failure::runtime)?;
    match verdict.first_invalid {
        None => {
            println!("audit log intact: {} entries verified", verdict.entries);
            Ok(())
        }
        Some(id) => Err(Failure::runtime(format!(
            "audit log entry {id} does not match its hash chain ({} entries walked): \
             it, or an entry before it, was changed or removed",
            verdict.entries
        ))),
    }
}

pub fn backup(config: Config, out: &Path) -> Result<(), Failure> {
    if config.database.is_postgres() {
        return Err(Failure::usage(
            "backup copies an SQLite database; this installation's database is PostgreSQL: back it up with PostgreSQL's tools (pg_dump)",
        ));
    }
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

/// The data directory's exclusive lock, held while a command changes a stopped installation:
/// refused while a server runs on it (every `serve` holds the lock shared).
pub(super) fn stopped_installation(data_dir: &Path) -> Result<std::fs::File, Failure> {
    crate::data_dir::try_lock_exclusive(data_dir)
        .map_err(Failure::runtime)?
        .ok_or_else(|| {
            Failure::runtime(format!(
                "a server is running on {}: stop it first",
                data_dir.display()
            ))
        })
}

/// `claribi migrate --to URL`: refuses while a server runs on the data directory, then copies
/// the SQLite database into the (empty) PostgreSQL database at `url`, in one transaction that
/// commits only if every table's row count matches.
pub fn migrate(config: Config, url: &str) -> Result<(), Failure> {
    use crate::store::{copy, Store};
    if config.database.is_postgres() {
        return Err(Failure::usage(
            "this installation already runs on PostgreSQL (database.url is set)",
        ));
    }
    // `--to -`: the URL (with its password) from standard input, out of the process list.
    let read;
    let url = if url == "-" {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Failure::runtime(format!("reading the URL: {e}")))?;
        read = line.trim().to_string();
        read.as_str()
    } else {
        url
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Failure::usage(
            "--to must be a PostgreSQL URL, postgres://user:password@host:port/dbname",
        ));
    }
    let data_dir = config.server.data_dir.clone();
    let _lock = stopped_installation(&data_dir)?;
    let database = config.database.path(&config.server);
    if !database.exists() {
        return Err(Failure::usage(format!(
            "{} does not exist",
            database.display()
        )));
    }
    let shown = crate::config::redact_url_password(url);
    let timeout = config.database.busy_timeout.0;
    let from = Store::open(&database, 1, timeout).map_err(Failure::runtime)?;
    let to = Store::open_postgres(url, 1, timeout)
        .map_err(|e| Failure::runtime(format!("{shown}: {e}")))?;
    let copied = copy::sqlite_to_postgres(&from, &to).map_err(|e| match e {
        crate::store::StoreError::Conflict(why) => Failure::usage(why),
        other => Failure::runtime(other),
    })?;
    println!("copied {} into {shown}:", database.display());
    for (table, rows) in &copied {
        println!("  {table:<20} {rows:>10} rows");
    }
    println!(
        "every table's row count matches. Next: set database.url (or CLARIBI_DATABASE__URL) to this \
         database, and copy jwt-secret and mfa-key from {} to the data directory of every server",
        data_dir.display()
    );
    Ok(())
}

/// How far the feed head moves on after a restore, past every position the replaced database,
/// the backup and the journal know of: positions given out after the restore are then new even
/// to backups of a database that was lost with the one replaced (no installation makes 2^32
/// changes between two journaled revocations).
const RESTORE_GAP: i64 = 1 << 32;

/// `claribi restore --from FILE`: checks the file and the journal, refuses while a server runs
/// on the data directory or the database, builds the restored database beside the current one
/// (the backup copied, migrated to this binary's schema, the journal re-applied), and only then
/// keeps the current database as `<db>.before-restore-<time>` and puts the new one in its
/// place. Any failure before that last step leaves the installation as it was.
pub fn restore(config: Config, from: &Path) -> Result<(), Failure> {
    use crate::ops::journal;
    use crate::store::backup;
    if config.database.is_postgres() {
        return Err(Failure::usage(
            "restore puts an SQLite backup in place; this installation's database is PostgreSQL: restore it with PostgreSQL's tools (pg_restore)",
        ));
    }
    backup::inspect(from).map_err(Failure::usage)?;
    let data_dir = config.server.data_dir.clone();
    let _lock = stopped_installation(&data_dir)?;
    let database = config.database.path(&config.server);
    let since = crate::domain::now_ms() - config.cluster.lease.0.as_millis() as i64;
    if let Some(server) = backup::running_servers(&database, since).first() {
        return Err(Failure::runtime(format!(
            "a server is running on this database ({server}): stop it first"
        )));
    }
    let journal_path = data_dir.join(journal::FILE_NAME);
    let had_journal = journal_path.exists();
    let (entries, skipped) = journal::read(&journal_path)
        .map_err(|e| Failure::runtime(format!("reading {}: {e}", journal_path.display())))?;
    let current_position = backup::feed_position(&database);
    let current_ids = backup::id_high_water(&database);
    let current_audit = backup::audit_high_water(&database);

    let with_suffix = |suffix: &str| crate::data_dir::with_suffix(&database, suffix);
    let staging = with_suffix(".restoring");
    let remove_staging = || {
        for path in [
            staging.clone(),
            with_suffix(".restoring-wal"),
            with_suffix(".restoring-shm"),
        ] {
            let _ = std::fs::remove_file(path);
        }
    };
    remove_staging();
    let built = (|| -> Result<(backup::BackupInfo, ops_restore::Reapplied), Failure> {
        crate::data_dir::create_private_new(&staging).map_err(Failure::runtime)?;
        backup::install(from, &staging).map_err(Failure::runtime)?;
        // What was installed, not what the file held a moment before.
        let info = backup::inspect(&staging).map_err(Failure::runtime)?;
        let last_journaled = entries.iter().map(|e| e.seq).max().unwrap_or(0);
        let base = current_position
            .unwrap_or(0)
            .max(last_journaled)
            .max(info.feed_position)
            + RESTORE_GAP;
        // The replaced database knows every id it handed out; without it (lost, damaged), ids
        // given out since the newest journaled one are unknown: the counters leap as the feed
        // head does.
        let ids = match &current_ids {
            Some(known) => known.clone(),
            None => backup::id_high_water(&staging)
                .unwrap_or_default()
                .into_iter()
                .map(|(counter, last)| (counter, last + RESTORE_GAP))
                .collect(),
        };
        // Likewise the audit log's ids, which a SIEM may already hold.
        let audit_id = match current_audit {
            Some(known) => known,
            None => backup::audit_high_water(&staging).unwrap_or(0) + RESTORE_GAP,
        };
        let floors = ops_restore::Floors {
            position: base,
            ids,
            audit_id,
        };
        let file = from
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut staged = config.clone();
        staged.database = config.database.at(staging.clone());
        let position = info.feed_position;
        let entries = entries.clone();
        let done = with_app(staged, move |app| async move {
            ops_restore::reapply(&app, file, position, entries, floors)
                .await
                .map_err(failure)
        })?;
        backup::seal(&staging).map_err(|e| Failure::runtime(e.to_string()))?;
        Ok((info, done))
    })();
    let (info, done) = match built {
        Ok(built) => built,
        Err(e) => {
            remove_staging();
            return Err(e);
        }
    };
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(Failure::runtime)?;
    let aside = with_suffix(&format!(".before-restore-{stamp}"));
    if aside.exists() {
        remove_staging();
        return Err(Failure::runtime(format!(
            "{} exists; wait a second and run restore again",
            aside.display()
        )));
    }
    let kept = match backup::set_aside(&database, &aside) {
        Ok(kept) => kept,
        Err(e) => {
            remove_staging();
            return Err(Failure::runtime(e));
        }
    };
    std::fs::rename(&staging, &database).map_err(|e| {
        Failure::runtime(format!(
            "moving {} to {}: {e} (the previous database is at {})",
            staging.display(),
            database.display(),
            aside.display()
        ))
    })?;
    crate::data_dir::sync_dir(&database);
    println!(
        "restored {} (schema version {}, {} organizations, {} users, feed position {})",
        from.display(),
        info.schema_version,
        info.organizations,
        info.users,
        info.feed_position
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
    if !had_journal {
        eprintln!(
            "warning: there is no {}: no revocation could be re-applied. If this installation \
             had one (a new host?), copy it here and restore again.",
            journal_path.display()
        );
    }
    if skipped > 0 {
        println!("skipped {skipped} unreadable journal lines (writes cut short by a crash)");
    }
    Ok(())
}

/// `directory sync --org ORG [--dry-run]`: every enabled LDAP provider of the organization,
/// synced now, with what changed (or would).
pub fn directory_sync(config: Config, org: &str, dry_run: bool) -> Result<(), Failure> {
    let named = org.to_string();
    with_app(config, |app| async move {
        let organization = match named.parse::<crate::domain::Id>() {
            Ok(id) => app
                .store
                .read(move |c| organizations::get(c, id))
                .await
                .map(|o| o.id)
                .map_err(|_| Failure::usage(format!("no organization has the id {id}")))?,
            Err(_) => find_organization(&app, &named)?,
        };
        let providers: Vec<_> = crate::ops::sso::list(&app, organization)
            .await
            .map_err(failure)?
            .into_iter()
            .filter(|p| p.enabled)
            .collect();
        if providers.is_empty() {
            return Err(Failure::usage(format!(
                "{named} has no enabled directory provider"
            )));
        }
        let actor = Actor::System("directory sync");
        let mut failed = None;
        for provider in &providers {
            match crate::ops::sso::sync::run(&app, &actor, provider, dry_run).await {
                Ok(report) => {
                    println!("{} (provider {}):", provider.name, provider.id);
                    for email in &report.deactivated {
                        println!("  deactivated   {email}");
                    }
                    for change in &report.role_changed {
                        println!(
                            "  role changed  {} {} -> {}",
                            change.email,
                            change.from.as_str(),
                            change.to.as_str()
                        );
                    }
                    println!("  unchanged     {}", report.unchanged);
                }
                Err(e) => {
                    eprintln!("{} (provider {}): {e}", provider.name, provider.id);
                    failed = Some(e);
                }
            }
        }
        if dry_run {
            println!("dry run: nothing was changed");
        }
        match failed {
            Some(e) => Err(Failure::runtime(format!("a sync changed nothing: {e}"))),
            None => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::scan;
    use crate::auth::api_key;

    fn scanned(text: &[u8], chunk: usize) -> Vec<String> {
        let (mut found, mut seen) = (Vec::new(), std::collections::HashSet::new());
        scan(text, chunk, &mut found, &mut seen).unwrap();
        found
    }

    #[test]
    fn keys_across_chunk_boundaries_are_found_once_and_look_alikes_never() {
        let (a, b) = (api_key::generate().key, api_key::generate().key);
        const CHUNK: usize = 64;
        // Every placement of a key around a boundary, with and without a word character glued
        // to its end (then it is no key).
        for offset in 0..=CHUNK + 60 {
            let mut text = vec![b' '; offset];
            text.extend_from_slice(a.as_bytes());
            text.extend_from_slice(b" then ");
            text.extend_from_slice(b.as_bytes());
            assert_eq!(
                scanned(&text, CHUNK),
                vec![a.clone(), b.clone()],
                "at {offset}"
            );
            text.push(b'x');
            assert_eq!(scanned(&text, CHUNK), vec![a.clone()], "glued at {offset}");
        }
        // The same key twice, the second one cut by a boundary and continued: the first stays.
        let mut text = a.clone().into_bytes();
        text.extend_from_slice(b" ");
        let pad = CHUNK * 2 - text.len() - a.len();
        text.extend(std::iter::repeat_n(b'.', pad));
        text.extend_from_slice(a.as_bytes());
        text.extend_from_slice(b"Z");
        assert_eq!(scanned(&text, CHUNK), vec![a.clone()]);
        // One byte at a time, and a look-alike with a wrong checksum.
        let mut text = format!("{a} claribi_key_{} {b}", "A".repeat(36)).into_bytes();
        text.push(b'\n');
        assert_eq!(scanned(&text, 1), vec![a, b]);
    }
}
