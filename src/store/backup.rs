//! Database files as wholes: what a backup file is, putting the current database aside, and
//! installing a backup in its place (`claribi restore`). Backups themselves are written by
//! `Store::backup_to`, through SQLite's online backup.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::migrate::SCHEMA_VERSION;
use crate::data_dir::with_suffix;

/// What a backup file holds, read without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    pub schema_version: u32,
    /// The change-feed position the copy was taken at: it holds every change up to here.
    pub feed_position: i64,
    pub organizations: i64,
    pub users: i64,
}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Checks that `path` is an intact claribi database of a schema version this binary knows,
/// and says what it holds. The error says why not, in words for the shell.
pub fn inspect(path: &Path) -> Result<BackupInfo, String> {
    if !path.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let not_ours = |why: String| format!("{} is not a claribi database: {why}", path.display());
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| not_ours(e.to_string()))?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| not_ours(e.to_string()))?;
    if check != "ok" {
        return Err(format!("{} is damaged: {check}", path.display()));
    }
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| not_ours(e.to_string()))?;
    if version == 0 {
        return Err(not_ours("it has no schema version".into()));
    }
    if version > SCHEMA_VERSION {
        return Err(format!(
            "{} is at schema version {version}, newer than this binary's {SCHEMA_VERSION}: \
             restore it with a newer claribi",
            path.display()
        ));
    }
    for table in ["organizations", "users"] {
        if !has_table(&conn, table).map_err(|e| not_ours(e.to_string()))? {
            return Err(not_ours(format!("it has no `{table}` table")));
        }
    }
    let feed_position = if has_table(&conn, "feed_head").map_err(|e| not_ours(e.to_string()))? {
        conn.query_row("SELECT seq FROM feed_head WHERE id = 1", [], |r| r.get(0))
            .map_err(|e| not_ours(e.to_string()))?
    } else {
        // Before schema version 5 there was no feed: the copy precedes every entry.
        0
    };
    let count = |table: &str| {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| not_ours(e.to_string()))
    };
    Ok(BackupInfo {
        schema_version: version,
        feed_position,
        organizations: count("organizations")?,
        users: count("users")?,
    })
}

/// The change-feed position of the database at `path`, read without changing it; `None` when
/// it cannot be read (missing, damaged, older than the feed).
pub fn feed_position(path: &Path) -> Option<i64> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.query_row("SELECT seq FROM feed_head WHERE id = 1", [], |r| r.get(0))
        .ok()
}

/// The highest session, key and link ids the database at `path` ever handed out (its id
/// counters, or its rows' ids for a database older than the counters), read without changing
/// it; `None` when it cannot be read.
pub fn id_high_water(path: &Path) -> Option<Vec<(super::ids::Counter, i64)>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    super::ids::Counter::ALL
        .into_iter()
        .map(|counter| {
            let table = counter.name();
            let rows: i64 = conn
                .query_row(
                    &format!("SELECT COALESCE(MAX(id), 0) FROM {table}"),
                    [],
                    |r| r.get(0),
                )
                .ok()?;
            let counted: i64 = conn
                .query_row(
                    "SELECT last FROM id_counters WHERE name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap_or(0);
            Some((counter, rows.max(counted)))
        })
        .collect()
}

/// The newest audit entry's id in the database at `path`; `None` when it cannot be read.
pub fn audit_high_water(path: &Path) -> Option<i64> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.query_row("SELECT COALESCE(MAX(id), 0) FROM audit_log", [], |r| {
        r.get(0)
    })
    .ok()
}

/// Servers whose heartbeat in the database at `path` is at or after `since_ms`, as
/// "pid P on HOST (ADDRESS)"; nothing when the database cannot be read.
pub fn running_servers(path: &Path, since_ms: i64) -> Vec<String> {
    let Ok(conn) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return Vec::new();
    };
    let Ok(mut stmt) =
        conn.prepare("SELECT pid, host, address FROM servers WHERE heartbeat_ms >= ?1")
    else {
        return Vec::new();
    };
    stmt.query_map([since_ms], |r| {
        Ok(format!(
            "pid {} on {} ({})",
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?
        ))
    })
    .map(|rows| rows.filter_map(Result::ok).collect())
    .unwrap_or_default()
}

/// Why a database could not be made one file.
#[derive(Debug)]
pub enum SealError {
    /// Another process holds it: nothing was changed.
    InUse(String),
    /// It could not be opened or checkpointed (damaged, unreadable).
    Broken(String),
}

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SealError::InUse(why) | SealError::Broken(why) => f.write_str(why),
        }
    }
}

/// Makes the database at `path` one self-contained file: its write-ahead log checkpointed
/// into it and removed. Fails, changing nothing, while another connection holds it.
pub fn seal(path: &Path) -> Result<(), SealError> {
    let broken = |e: rusqlite::Error| SealError::Broken(format!("{}: {e}", path.display()));
    // Not an SQLite file at all: opening it read-write could drop its log, so leave it be.
    let mut header = [0u8; 16];
    let readable = std::fs::File::open(path).and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut header)
    });
    if readable.is_err() || &header != b"SQLite format 3\0" {
        return Err(SealError::Broken(format!(
            "{} is not an SQLite database file",
            path.display()
        )));
    }
    {
        let conn = Connection::open(path).map_err(broken)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(broken)?;
        let (busy, log, checkpointed): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::DatabaseBusy
                        || f.code == rusqlite::ErrorCode::DatabaseLocked =>
                {
                    SealError::InUse(format!(
                        "{} is in use by another process: stop it first",
                        path.display()
                    ))
                }
                other => broken(other),
            })?;
        if busy != 0 || log != checkpointed {
            return Err(SealError::InUse(format!(
                "{} is in use by another process (its log could not be checkpointed): stop it first",
                path.display()
            )));
        }
    }
    for suffix in ["-wal", "-shm"] {
        let side = with_suffix(path, suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(SealError::Broken(format!(
                    "removing {}: {e}",
                    side.display()
                )))
            }
        }
    }
    Ok(())
}

/// Moves the database at `path` to `to`, sealed into one file; a damaged database that cannot
/// be sealed is moved as it is, with its `-wal` and `-shm` files beside it under the same new
/// name. Refuses while another process holds it. Nothing to move: `false`.
pub fn set_aside(path: &Path, to: &Path) -> Result<bool, String> {
    if !path.exists() {
        return Ok(false);
    }
    let companions: &[&str] = match seal(path) {
        Ok(()) => &[],
        Err(SealError::InUse(why)) => return Err(why),
        Err(SealError::Broken(why)) => {
            tracing::warn!("{why}; moving the database aside as it is");
            &["-wal", "-shm"]
        }
    };
    std::fs::rename(path, to)
        .map_err(|e| format!("moving {} to {}: {e}", path.display(), to.display()))?;
    for suffix in companions {
        let side = with_suffix(path, suffix);
        if side.exists() {
            let target = with_suffix(to, suffix);
            std::fs::rename(&side, &target)
                .map_err(|e| format!("moving {} to {}: {e}", side.display(), target.display()))?;
        }
    }
    Ok(true)
}

/// Copies the backup at `from` into `to`, a new file the caller created (empty, private).
pub fn install(from: &Path, to: &Path) -> Result<(), String> {
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", from.display()))?;
    let mut target = Connection::open(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let backup = rusqlite::backup::Backup::new(&source, &mut target)
        .map_err(|e| format!("copying {}: {e}", from.display()))?;
    backup
        .run_to_completion(256, Duration::from_millis(0), None)
        .map_err(|e| format!("copying {}: {e}", from.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_temp;

    #[test]
    fn a_backup_is_recognized_and_other_files_are_refused() {
        let (dir, store) = open_temp();
        let copy = dir.path().join("copy.db");
        store.backup_to(&copy).unwrap();
        let info = inspect(&copy).unwrap();
        assert_eq!(info.schema_version, SCHEMA_VERSION);
        assert_eq!(info.feed_position, 0);

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a database at all, just some words").unwrap();
        assert!(inspect(&text)
            .unwrap_err()
            .contains("not a claribi database"));

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); PRAGMA user_version = 3;")
            .unwrap();
        assert!(inspect(&other)
            .unwrap_err()
            .contains("no `organizations` table"));

        let newer = dir.path().join("newer.db");
        store.backup_to(&newer).unwrap();
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(inspect(&newer)
            .unwrap_err()
            .contains("newer than this binary"));
    }

    #[test]
    fn setting_aside_seals_a_database_refuses_one_in_use_and_moves_a_damaged_one_whole() {
        let (dir, store) = open_temp();
        let path = dir.path().join("test.db");
        let aside = dir.path().join("aside.db");
        // In use: a reader holds a snapshot, so the log cannot be checkpointed away.
        let reader = Connection::open(&path).unwrap();
        reader
            .execute_batch("BEGIN; SELECT count(*) FROM users;")
            .unwrap();
        store
            .write_blocking(|db| db.execute_batch("UPDATE feed_head SET seq = 5"))
            .unwrap();
        assert!(set_aside(&path, &aside).unwrap_err().contains("in use"));
        assert!(path.exists() && !aside.exists());
        reader.execute_batch("COMMIT").unwrap();
        drop(reader);
        drop(store);
        assert!(set_aside(&path, &aside).unwrap());
        assert!(!path.exists() && !with_suffix(&path, "-wal").exists());
        assert_eq!(
            feed_position(&aside),
            Some(5),
            "what the log held is in the file"
        );

        let damaged = dir.path().join("damaged.db");
        std::fs::write(&damaged, b"this is not an SQLite file at all, just bytes").unwrap();
        std::fs::write(with_suffix(&damaged, "-wal"), b"a log").unwrap();
        let kept = dir.path().join("damaged.aside");
        assert!(set_aside(&damaged, &kept).unwrap());
        assert!(kept.exists() && with_suffix(&kept, "-wal").exists());
        assert!(!damaged.exists() && !with_suffix(&damaged, "-wal").exists());
    }
}
