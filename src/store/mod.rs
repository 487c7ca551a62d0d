//! Everything that knows rusqlite and SQL: the pool, the blocking-thread bridge, migrations,
//! then one file per table family. Nothing here knows warp.

pub mod api_keys;
pub mod audit;
pub mod backup;
pub mod credentials;
pub mod dashboards;
pub mod data_sources;
pub mod feed;
pub mod goals;
mod migrate;
pub mod organizations;
pub mod public_links;
pub mod reports;
mod row_counts;
pub mod sessions;
pub mod usage;
pub mod users;

use std::path::Path;
use std::time::Duration;

use r2d2::{CustomizeConnection, Pool};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Row, ToSql, TransactionBehavior};

pub use migrate::SCHEMA_VERSION;

/// The database inside one of the store's transactions, as code outside `store/` sees it: a
/// handle to pass to store functions, never a way to run SQL of its own. Read closures get a
/// read transaction's, write closures a `BEGIN IMMEDIATE` transaction's.
pub struct Db<'c> {
    pub(in crate::store) conn: &'c Connection,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("sqlite: {0}")]
    Sqlite(String),
    #[error("database task failed: {0}")]
    Task(String),
    /// The organization's monthly credits would go below zero.
    #[error("{0}")]
    InsufficientCredits(String),
    #[error("migration to schema version {version} failed: {cause}")]
    Migration { version: u32, cause: String },
    /// The database cannot be read or written right now, for a reason outside this process
    /// that ends by itself or by an operator's hand: locked by another process past the busy
    /// timeout, a read-only file system, a full disk, an I/O error, no connection to be had.
    /// Answered `503` with `Retry-After`. The transaction rolled back, except that an I/O
    /// error while committing may leave a commit that a restart's recovery finds.
    #[error("database unavailable ({trouble}): {cause}")]
    Unavailable { trouble: Trouble, cause: String },
}

/// Why the database is unavailable, for logs, metrics and `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    Locked,
    ReadOnly,
    Full,
    Io,
    NoConnection,
}

impl Trouble {
    pub fn as_str(self) -> &'static str {
        match self {
            Trouble::Locked => "locked",
            Trouble::ReadOnly => "read_only",
            Trouble::Full => "disk_full",
            Trouble::Io => "io_error",
            Trouble::NoConnection => "no_connection",
        }
    }

    /// Seconds a client should wait: a lock is usually gone in a moment, the rest needs an
    /// operator.
    pub fn retry_after(self) -> u64 {
        match self {
            Trouble::Locked | Trouble::NoConnection => 1,
            Trouble::ReadOnly | Trouble::Full | Trouble::Io => 5,
        }
    }
}

impl std::fmt::Display for Trouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The trouble an SQLite result code stands for, if it is one that ends by itself.
fn trouble_of(code: rusqlite::ErrorCode) -> Option<Trouble> {
    use rusqlite::ErrorCode as C;
    Some(match code {
        C::DatabaseBusy | C::DatabaseLocked => Trouble::Locked,
        C::ReadOnly => Trouble::ReadOnly,
        C::DiskFull => Trouble::Full,
        C::SystemIoFailure => Trouble::Io,
        C::CannotOpen => Trouble::NoConnection,
        _ => return None,
    })
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        let trouble = match &error {
            rusqlite::Error::QueryReturnedNoRows => return StoreError::NotFound,
            rusqlite::Error::SqliteFailure(e, _) => trouble_of(e.code),
            _ => None,
        };
        match trouble {
            Some(trouble) => StoreError::Unavailable {
                trouble,
                cause: error.to_string(),
            },
            None => StoreError::Sqlite(error.to_string()),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    /// r2d2 reports one thing: no connection within the pool's timeout (every connection
    /// busy, or a new one could not be opened). Either way the database is not there now.
    fn from(error: r2d2::Error) -> Self {
        StoreError::Unavailable {
            trouble: Trouble::NoConnection,
            cause: error.to_string(),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The database: a pool of connections, used from blocking threads only.
#[derive(Clone)]
pub struct Store {
    pool: Pool<SqliteConnectionManager>,
}

#[derive(Debug)]
struct ConnectionSetup {
    busy_timeout: Duration,
}

impl CustomizeConnection<Connection, rusqlite::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        conn.busy_timeout(self.busy_timeout)?;
        // WAL lets readers go on while one writer commits; FULL syncs the WAL on every commit,
        // so an acknowledged write survives a kill or a power loss.
        // cache_size: at most 512 KiB of pages per connection (SQLite's default is 2 MiB), so
        // the pool's caches stay within 4 MiB however large the database grows; the pages
        // beyond are in the kernel's page cache, a read away.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -512;",
        )?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path, pool_size: u32, busy_timeout: Duration) -> StoreResult<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Sqlite(format!("creating {}: {e}", dir.display())))?;
        }
        let manager = SqliteConnectionManager::file(path);
        let pool = Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            // A broken SQLite file handle is not something a probe query would catch.
            .test_on_check_out(false)
            // A request waits for a connection no longer than for the lock behind it: past
            // that the database is answered as unavailable (503), not left hanging.
            .connection_timeout(busy_timeout.clamp(Duration::from_secs(1), Duration::from_secs(30)))
            .connection_customizer(Box::new(ConnectionSetup { busy_timeout }))
            .build(manager)?;
        let store = Store { pool };
        store.write_blocking(|db| migrate::migrate(db.conn))?;
        Ok(store)
    }

    /// Runs `f` in one read transaction on a pooled connection, on a blocking thread: every
    /// statement of `f` sees the same snapshot (a count and the page it goes with agree).
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db<'_>) -> StoreResult<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on a blocking thread; commits when `f`
    /// returns `Ok`, rolls back otherwise.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db<'_>) -> StoreResult<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.write_blocking(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// `write_blocking` whose closure fails with the caller's own error type (the transaction
    /// rolls back on any `Err`).
    pub fn write_with<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let value = f(&Db { conn: &tx })?;
        tx.commit().map_err(StoreError::from)?;
        Ok(value)
    }

    /// `read` for callers that are already off the async threads (CLI, startup).
    pub fn read_blocking<T>(&self, f: impl FnOnce(&Db<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.pool.get()?;
        let snapshot = Snapshot::begin(&conn)?;
        let value = f(&Db { conn: &conn })?;
        snapshot.end()?;
        Ok(value)
    }

    /// `write` for callers that are already off the async threads (CLI, startup).
    pub fn write_blocking<T>(&self, f: impl FnOnce(&Db<'_>) -> StoreResult<T>) -> StoreResult<T> {
        // IMMEDIATE takes the write lock up front: two writers never deadlock on an upgrade.
        self.write_with(f)
    }

    /// `SELECT 1` through the pool: the readiness probe.
    pub async fn ping(&self) -> StoreResult<()> {
        self.read(|db| {
            db.conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    /// A consistent copy of the live database into `out`, through SQLite's online backup.
    pub fn backup_to(&self, out: &Path) -> StoreResult<()> {
        let conn = self.pool.get()?;
        let mut target = Connection::open(out)?;
        {
            // One step copies every page inside one read transaction: writers go on (WAL), and
            // a busy database cannot make the copy start over without end, as steps of a few
            // pages would (each write by another connection restarts them).
            let backup = rusqlite::backup::Backup::new(&conn, &mut target)?;
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => {}
                other => {
                    return Err(StoreError::Sqlite(format!(
                        "the backup did not complete in one step: {other:?}"
                    )))
                }
            }
        }
        target.execute_batch("PRAGMA journal_mode = DELETE;")?;
        Ok(())
    }
}

/// A read transaction: a shared lock from the first SELECT to `end`, never the write lock.
/// `BEGIN` and `COMMIT` are cached statements, so a read parses no SQL of its own; dropped
/// without `end` (an error in between), it rolls back.
struct Snapshot<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Snapshot<'c> {
    fn begin(conn: &'c Connection) -> StoreResult<Self> {
        conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
        Ok(Snapshot { conn, open: true })
    }

    fn end(mut self) -> StoreResult<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        if self.open {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "ending a read transaction failed");
            }
        }
    }
}

/// Where a page's total comes from.
pub(crate) enum Count<'a> {
    /// A `SELECT COUNT(*)` taking the same parameters as the page's select.
    Query(&'a str),
    /// Already known, e.g. from the `row_counts` table, so no table is scanned for it.
    Known(u64),
}

/// One page of a list and the total it is part of, for every paginated table: `select` takes
/// `params` followed by the limit and the offset as its last two parameters. Both statements
/// are cached per connection; run inside one read, the count and the page agree.
pub(crate) fn page<T>(
    db: &Db<'_>,
    count: Count<'_>,
    select: &str,
    params: &[&dyn ToSql],
    offset: u64,
    limit: u64,
    row: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<(u64, Vec<T>)> {
    let count = match count {
        Count::Known(n) => n,
        Count::Query(sql) => db
            .conn
            .prepare_cached(sql)?
            .query_row(params, |r| r.get(0))?,
    };
    // SQLite binds signed integers. Saturating is exact here: an offset of i64::MAX is past
    // the end of any table, and a limit of i64::MAX takes every row.
    let (limit, offset) = (
        i64::try_from(limit).unwrap_or(i64::MAX),
        i64::try_from(offset).unwrap_or(i64::MAX),
    );
    let mut all = params.to_vec();
    all.extend([&limit as &dyn ToSql, &offset]);
    let rows = db
        .conn
        .prepare_cached(select)?
        .query_map(&*all, row)?
        .collect::<Result<_, _>>()?;
    Ok((count, rows))
}

/// Maps a UNIQUE violation to `Conflict(what)`, anything else through `From`.
pub(crate) fn conflict_on_unique(error: rusqlite::Error, what: &str) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            StoreError::Conflict(what.to_string())
        }
        _ => error.into(),
    }
}

#[cfg(test)]
pub(crate) fn open_temp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("test.db"), 2, Duration::from_secs(5)).expect("open");
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_held_past_the_busy_timeout_is_trouble_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path, 2, Duration::from_millis(50)).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        let err = store
            .write_blocking(|db| {
                db.conn.execute_batch("CREATE TABLE t (x)")?;
                Ok(())
            })
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Unavailable {
                    trouble: Trouble::Locked,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        // Readers go on under another process's write lock (WAL).
        store
            .read_blocking(|db| Ok(db.conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .unwrap();
        other.execute_batch("ROLLBACK").unwrap();
        store
            .write_blocking(|db| Ok(db.conn.execute_batch("CREATE TABLE t (x)")?))
            .unwrap();
    }

    #[test]
    fn other_sqlite_errors_stay_internal() {
        let err = StoreError::from(rusqlite::Error::InvalidColumnIndex(3));
        assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
    }
}
