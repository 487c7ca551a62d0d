//! Scheduled backups of a SQLite database (`backup.interval`, `backup.dir`, `backup.keep`).

use super::{App, AppState};

/// Every `backup.interval`: a consistent copy of the database in `backup.dir`, named by its
/// time (`claribi-<UTC time>.db`, mode 0600), keeping the newest `backup.keep`. The first is
/// due an interval after the newest one there, so that restarts do not put backups off.
pub async fn back_up_periodically(app: AppState, interval: std::time::Duration) {
    let dir = app.config.backup.dir(&app.config.server);
    let since_last = newest_backup_age(&dir).unwrap_or(std::time::Duration::MAX);
    let first = tokio::time::Instant::now() + interval.saturating_sub(since_last);
    let mut ticker = tokio::time::interval_at(first, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let copying = app.clone();
        match tokio::task::spawn_blocking(move || back_up_once(&copying)).await {
            Ok(Ok(path)) => tracing::info!(path = %path.display(), "scheduled backup written"),
            Ok(Err(e)) => tracing::error!(error = %e, "scheduled backup failed"),
            Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
        }
    }
}

const BACKUP_PREFIX: &str = "claribi-";
const BACKUP_SUFFIX: &str = ".db";
const PARTIAL_SUFFIX: &str = ".partial";

/// `claribi-20261201T120000.123Z.db`: only files of exactly this form are scheduled backups
/// (counted, pruned); anything else in the directory is left alone.
fn is_scheduled_backup(name: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix(BACKUP_PREFIX)
        .and_then(|n| n.strip_suffix(BACKUP_SUFFIX))
    else {
        return false;
    };
    let bytes = stamp.as_bytes();
    bytes.len() == 20
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 => *b == b'T',
            15 => *b == b'.',
            19 => *b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

fn scheduled_backups(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|n| is_scheduled_backup(n))
        .collect();
    names.sort_unstable();
    names
}

fn newest_backup_age(dir: &std::path::Path) -> Option<std::time::Duration> {
    let newest = scheduled_backups(dir).pop()?;
    let modified = std::fs::metadata(dir.join(newest)).ok()?.modified().ok()?;
    modified.elapsed().ok()
}

fn back_up_once(app: &App) -> Result<std::path::PathBuf, String> {
    let dir = app.config.backup.dir(&app.config.server);
    crate::data_dir::create(&dir)?;
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
        ))
        .map_err(|e| e.to_string())?;
    let path = dir.join(format!("{BACKUP_PREFIX}{stamp}{BACKUP_SUFFIX}"));
    // Written under another name and renamed when complete: a copy cut short by a crash or a
    // stop is never taken for a backup, nor counted against `backup.keep`.
    let partial = dir.join(format!(
        "{BACKUP_PREFIX}{stamp}{BACKUP_SUFFIX}{PARTIAL_SUFFIX}"
    ));
    crate::data_dir::create_private_new(&partial)?;
    let written = app
        .store
        .backup_to(&partial)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            std::fs::File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(|e| e.to_string())
        })
        .and_then(|()| std::fs::rename(&partial, &path).map_err(|e| e.to_string()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    crate::data_dir::sync_dir(&path);
    prune_backups(&dir, app.config.backup.keep as usize)?;
    Ok(path)
}

/// Removes all but the newest `keep` scheduled backups (their names sort by time), and copies
/// left unfinished (an hour ago or more) by an earlier process.
fn prune_backups(dir: &std::path::Path, keep: usize) -> Result<(), String> {
    let names = scheduled_backups(dir);
    let excess = names.len().saturating_sub(keep);
    for name in &names[..excess] {
        std::fs::remove_file(dir.join(name)).map_err(|e| format!("removing {name}: {e}"))?;
    }
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let Some(name) = entry.ok().and_then(|e| e.file_name().into_string().ok()) else {
            continue;
        };
        let unfinished = name
            .strip_suffix(PARTIAL_SUFFIX)
            .is_some_and(is_scheduled_backup);
        // An hour old: not the copy another server on this directory is writing now.
        let stale = || {
            std::fs::metadata(dir.join(&name))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(3600))
        };
        if unfinished && stale() {
            let _ = std::fs::remove_file(dir.join(&name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_scheduled_backup;

    #[test]
    fn only_stamped_names_are_scheduled_backups() {
        assert!(is_scheduled_backup("claribi-20261201T120000.123Z.db"));
        for other in [
            "claribi-manual.db",
            "claribi-20261201T120000.123Z.db.partial",
            "claribi-20261201T120000Z.db",
            "claribi.db",
            "claribi-2026120xT120000.123Z.db",
        ] {
            assert!(!is_scheduled_backup(other), "{other}");
        }
    }
}
