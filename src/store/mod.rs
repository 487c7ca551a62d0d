//! Everything that knows SQL, on SQLite (rusqlite) or PostgreSQL: the pools, the
//! blocking-thread bridge, migrations, then one file per table family. Nothing here knows warp.

pub mod api_keys;
pub mod audit;
pub mod audit_stream;
pub mod backup;
pub mod copy;
pub mod credentials;
pub mod dashboards;
pub mod data_sources;
pub mod feed;
pub mod goals;
pub mod ids;
pub mod meta;
mod migrate;
pub mod notices;
pub mod organizations;
pub mod passkeys;
mod postgres_pool;
pub mod public_links;
pub mod rates;
pub mod reports;
mod row_counts;
pub mod service_accounts;
pub mod sessions;
pub mod sql;
pub mod sso;
pub mod throttle;
pub mod usage;
pub mod users;

use std::path::Path;
use std::time::Duration;

use r2d2::{CustomizeConnection, Pool};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, TransactionBehavior};

pub(crate) use sql::args;
pub use sql::{Db, Dialect, Row};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// A UNIQUE constraint refused the row (see `conflict_on_unique`).
    #[error("unique constraint: {0}")]
    Unique(String),
    #[error("database: {0}")]
    Database(String),
    #[error("database task failed: {0}")]
    Task(String),
    /// The organization's monthly credits would go below zero.
    #[error("{0}")]
    InsufficientCredits(String),
    #[error("migration to schema version {version} failed: {cause}")]
    Migration { version: u32, cause: String },
    /// The database cannot be read or written right now, for a reason outside this process
    /// that ends by itself or by an operator's hand: locked by another process past the busy
    /// timeout, a read-only file system, a full disk, an I/O error, no connection to be had
    /// (PostgreSQL stopped or unreachable). Answered `503` with `Retry-After`. The transaction
    /// rolled back, except that an I/O error while committing may leave a commit that a
    /// restart's recovery finds.
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
    pool: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(Pool<SqliteConnectionManager>),
    Postgres(Pool<postgres_pool::Manager>),
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
        // cache_size: at most 128 KiB of pages per connection (SQLite's default is 2 MiB), so
        // the pool's caches stay within a few hundred KiB however large the database grows
        // (they filled to their limit as the soak's database grew: +2 MiB at 512 KiB each);
        // the pages beyond are in the kernel's page cache, a read away.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -128;",
        )?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    }
}

thread_local! {
    /// Set while this thread runs store work: a thread of the blocking pool (or one the store
    /// started), where the PostgreSQL client may block.
    static ON_BLOCKING_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` on the blocking pool, on a thread marked as one where the store may block: the
/// `_blocking` methods run there in place.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(move || {
        let _blocking = OnBlockingThread::enter();
        work()
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))
}

/// Marks the current thread as one that may block, until dropped.
struct OnBlockingThread(bool);

impl OnBlockingThread {
    fn enter() -> Self {
        OnBlockingThread(ON_BLOCKING_THREAD.with(|b| b.replace(true)))
    }
}

impl Drop for OnBlockingThread {
    fn drop(&mut self) {
        ON_BLOCKING_THREAD.with(|b| b.set(self.0));
    }
}

/// How long a PostgreSQL connection is waited for at most (every one busy, or the database
/// out of reach) before the request is answered `503`. r2d2 retries a failed connection at
/// most every half of it.
const POOL_WAIT: Duration = Duration::from_secs(2);

/// Every write transaction on PostgreSQL takes this advisory lock first, so that writers run
/// one at a time as on SQLite: a charge sees every earlier charge, a login throttle counts
/// exactly, and feed sequence numbers commit in order. (The lock's key is "claribi" in ASCII.)
const BEGIN_WRITE: &str = "BEGIN; SELECT pg_advisory_xact_lock(27985188481491561)";

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to
    /// date.
    pub fn open(path: &Path, pool_size: u32, busy_timeout: Duration) -> StoreResult<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Database(format!("creating {}: {e}", dir.display())))?;
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
        let store = Store {
            pool: Backend::Sqlite(pool),
        };
        store.write_blocking(migrate::migrate)?;
        Ok(store)
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user:password@host:port/db`)
    /// and brings its schema up to date. `timeout` bounds a connection attempt and a wait for a
    /// pooled connection, like SQLite's busy timeout.
    /// On PostgreSQL the pool waits at most `POOL_WAIT` for a connection, and a failed
    /// connection attempt is retried at most every half of it, so that a database that comes
    /// back is found within a second (statements still wait `timeout` for a lock).
    pub fn open_postgres(url: &str, pool_size: u32, timeout: Duration) -> StoreResult<Store> {
        let manager = postgres_pool::Manager::new(url, timeout)?;
        let pool = Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            // A connection that PostgreSQL closed (restart, failover) is noticed by
            // `has_broken` after its failed statement, and replaced.
            .test_on_check_out(false)
            .connection_timeout(POOL_WAIT)
            // The pool does not refuse to start without the database: the first use reports it.
            .build_unchecked(manager);
        let store = Store {
            pool: Backend::Postgres(pool),
        };
        store.write_blocking(migrate::migrate)?;
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        match self.pool {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    // Two ways in, each for reads and writes: `read` and `write` from the async runtime (they
    // run on the blocking pool), `read_blocking` and `write_blocking` from a thread that may
    // block (the shell, the start, a blocking-pool thread, the SIEM sender). Plus
    // `write_own_rows_blocking` for rows only this server writes.

    /// Runs `f` in one read transaction on a pooled connection, on a blocking thread: every
    /// statement of `f` sees the same snapshot (a count and the page it goes with agree).
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db<'_>) -> StoreResult<T> + Send + 'static,
    {
        let store = self.clone();
        // On a thread `blocking` marked: in place, without `off_runtime`'s check.
        blocking(move || store.read_in_place(f)).await?
    }

    /// `read` for an `f` that runs one statement (a list's page with its total): without a
    /// transaction around it, the statement being its own snapshot, so one round trip to
    /// PostgreSQL instead of three. A second statement of `f` would see a later snapshot.
    pub async fn read_statement<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db<'_>) -> StoreResult<T> + Send + 'static,
    {
        let store = self.clone();
        blocking(move || {
            let _blocking = OnBlockingThread::enter();
            match &store.pool {
                Backend::Sqlite(pool) => {
                    let conn = pool.get()?;
                    f(&Db::sqlite(&conn))
                }
                Backend::Postgres(pool) => {
                    let mut conn = pool.get()?;
                    f(&Db::postgres(&mut conn))
                }
            }
        })
        .await?
    }

    /// Runs `f` in one write transaction on a blocking thread (SQLite: `BEGIN IMMEDIATE`;
    /// PostgreSQL: the write lock, see `BEGIN_WRITE`); commits when `f` returns `Ok`, rolls back
    /// otherwise.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db<'_>) -> StoreResult<T> + Send + 'static,
    {
        let store = self.clone();
        blocking(move || store.transaction(BEGIN_WRITE, f)).await?
    }

    /// `read` on a thread that may block.
    pub fn read_blocking<T: Send>(
        &self,
        f: impl FnOnce(&Db<'_>) -> StoreResult<T> + Send,
    ) -> StoreResult<T> {
        self.off_runtime(|| self.read_in_place(f))
    }

    /// `write` on a thread that may block; `f` may fail with the caller's own error type (the
    /// transaction rolls back on any `Err`).
    pub fn write_blocking<T: Send, E: From<StoreError> + Send>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, E> + Send,
    ) -> Result<T, E> {
        self.off_runtime(|| self.transaction(BEGIN_WRITE, f))
    }

    /// `write_blocking` without the writers' lock on PostgreSQL: for rows only this server
    /// writes (its heartbeat, its rate counts), which no other writer's order depends on. On
    /// SQLite the same as `write_blocking`.
    pub fn write_own_rows_blocking<T: Send, E: From<StoreError> + Send>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, E> + Send,
    ) -> Result<T, E> {
        self.off_runtime(|| self.transaction("BEGIN", f))
    }

    /// The synchronous PostgreSQL client runs a runtime of its own, which cannot be started on
    /// a thread that drives async tasks (the shell's commands call the store from one): there,
    /// the work goes to a thread of its own. SQLite, threads that `blocking` started and
    /// threads of no runtime run it in place.
    fn off_runtime<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        let on_runtime = matches!(self.pool, Backend::Postgres(_))
            && tokio::runtime::Handle::try_current().is_ok()
            && !ON_BLOCKING_THREAD.with(|b| b.get());
        if !on_runtime {
            return work();
        }
        std::thread::scope(|scope| match scope.spawn(work).join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    }

    fn transaction<T, E: From<StoreError>>(
        &self,
        begin: &str,
        f: impl FnOnce(&Db<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let _blocking = OnBlockingThread::enter();
        match &self.pool {
            Backend::Sqlite(pool) => {
                let mut conn = pool.get().map_err(StoreError::from)?;
                // IMMEDIATE takes the write lock up front: two writers never deadlock on an
                // upgrade.
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(StoreError::from)?;
                let value = f(&Db::sqlite(&tx))?;
                tx.commit().map_err(StoreError::from)?;
                Ok(value)
            }
            Backend::Postgres(pool) => {
                let mut conn = pool.get().map_err(StoreError::from)?;
                let mut tx = postgres_pool::Transaction::begin(&mut conn, begin)?;
                let (value, failed) = {
                    let db = Db::postgres(tx.conn());
                    (f(&db)?, db.failed())
                };
                if failed {
                    // Its error was handled above, but PostgreSQL has ended the transaction.
                    return Err(StoreError::Database(
                        "a statement failed inside the transaction; nothing was written".into(),
                    )
                    .into());
                }
                tx.commit()?;
                Ok(value)
            }
        }
    }

    fn read_in_place<T>(&self, f: impl FnOnce(&Db<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let _blocking = OnBlockingThread::enter();
        match &self.pool {
            Backend::Sqlite(pool) => {
                let conn = pool.get()?;
                let snapshot = Snapshot::begin(&conn)?;
                let value = f(&Db::sqlite(&conn))?;
                snapshot.end()?;
                Ok(value)
            }
            Backend::Postgres(pool) => {
                let mut conn = pool.get()?;
                // One snapshot for every statement of `f`, as SQLite's read transaction gives.
                let mut tx = postgres_pool::Transaction::begin(
                    &mut conn,
                    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                )?;
                let value = f(&Db::postgres(tx.conn()))?;
                tx.commit()?;
                Ok(value)
            }
        }
    }

    /// `SELECT 1` through the pool: the readiness probe.
    pub async fn ping(&self) -> StoreResult<()> {
        self.read(|db| db.query_row("SELECT 1", args![], |_| Ok(())))
            .await
    }

    /// The SQLite pool, for what only SQLite has (the online backup).
    pub(super) fn sqlite_pool(&self) -> StoreResult<&Pool<SqliteConnectionManager>> {
        match &self.pool {
            Backend::Sqlite(pool) => Ok(pool),
            Backend::Postgres(_) => Err(StoreError::Database(
                "this is done on SQLite only; on PostgreSQL use its own tools (pg_dump)".into(),
            )),
        }
    }

    /// A consistent copy of the live database into `out`, through SQLite's online backup.
    pub fn backup_to(&self, out: &Path) -> StoreResult<()> {
        let conn = self.sqlite_pool()?.get()?;
        let mut target = Connection::open(out)?;
        {
            // One step copies every page inside one read transaction: writers go on (WAL), and
            // a busy database cannot make the copy start over without end, as steps of a few
            // pages would (each write by another connection restarts them).
            let backup = rusqlite::backup::Backup::new(&conn, &mut target)?;
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => {}
                other => {
                    return Err(StoreError::Database(format!(
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

/// How a list is read: its page, an optional search and its order.
#[derive(Debug, Clone)]
pub struct Listing {
    pub offset: u64,
    pub limit: u64,
    /// A case-insensitive substring of any of the list's searched columns.
    pub search: Option<String>,
    pub order: Order,
}

/// A list's order: a column (or expression) the list allows, then its id the same way, so
/// that rows with equal values keep one order from page to page. Empty values come last
/// either way, on both databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub column: &'static str,
    pub descending: bool,
}

/// `?first, ?first+1, ...`: the placeholders of an `IN (...)` list of `n` values.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `%text%` for `LIKE ... ESCAPE '!'`, with `%`, `_` and `!` taken literally. (Not a
/// backslash: a PostgreSQL without `standard_conforming_strings` reads `'\'` as unclosed.)
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '!') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// What a list reads: `SELECT columns FROM from WHERE filter`, `filter` taking `params` as
/// ?1..?n, the id column `id` (qualified where `from` joins). The search looks in `searched`;
/// `kept` is an SQL expression of the total without a search, taking the same parameters
/// (every one of them), where the total is kept rather than counted.
pub(crate) struct ListOf<'a, T> {
    pub from: &'a str,
    pub columns: &'a str,
    pub filter: &'a str,
    pub params: &'a [&'a dyn sql::Param],
    pub id: &'a str,
    pub searched: &'a [&'a str],
    pub kept: Option<&'a str>,
    pub row: fn(&Row<'_>) -> StoreResult<T>,
}

/// One page of a list with its search and order, and its total, in one statement (the total
/// a column before the row's, so that both come from one snapshot, in one round trip to
/// PostgreSQL); a page past the end asks for the total alone.
pub(crate) fn list<T>(
    db: &Db<'_>,
    of: ListOf<'_, T>,
    listing: &Listing,
) -> StoreResult<(u64, Vec<T>)> {
    let mut params = of.params.to_vec();
    let pattern = listing.search.as_deref().map(like_pattern);
    let filter = match &pattern {
        Some(pattern) if !of.searched.is_empty() => {
            params.push(pattern);
            let n = params.len();
            let any: Vec<String> = of
                .searched
                .iter()
                // The database lowers both sides, so that they agree (SQLite: ASCII letters).
                .map(|column| format!("LOWER({column}) LIKE LOWER(?{n}) ESCAPE '!'"))
                .collect();
            format!("{} AND ({})", of.filter, any.join(" OR "))
        }
        _ => of.filter.to_string(),
    };
    let total = match (of.kept, &pattern) {
        (Some(kept), None) => kept.to_string(),
        _ => format!("(SELECT COUNT(*) FROM {} WHERE {filter})", of.from),
    };
    let way = if listing.order.descending {
        "DESC"
    } else {
        "ASC"
    };
    let order = if listing.order.column == "id" {
        format!("{} {way}", of.id)
    } else {
        format!("{} {way} NULLS LAST, {} {way}", listing.order.column, of.id)
    };
    page(db, &total, of.row, &params, listing, |n| {
        format!(
            "SELECT {total}, {} FROM {} WHERE {filter} ORDER BY {order} LIMIT ?{} OFFSET ?{}",
            of.columns,
            of.from,
            n + 1,
            n + 2
        )
    })
}

/// Runs a page's statement, `select(n)`: the list's total `total` (an SQL expression of
/// `params`), then `row`'s columns, the limit and the offset being ?n+1 and ?n+2. Without a
/// row to carry it, the total is read alone.
pub(crate) fn page<T>(
    db: &Db<'_>,
    total: &str,
    row: fn(&Row<'_>) -> StoreResult<T>,
    params: &[&dyn sql::Param],
    listing: &Listing,
    select: impl FnOnce(usize) -> String,
) -> StoreResult<(u64, Vec<T>)> {
    // Both databases bind signed integers: saturated (see `Param for u64`), which is exact
    // here (an offset of i64::MAX is past the end of any table).
    let mut all = params.to_vec();
    all.extend([&listing.limit as &dyn sql::Param, &listing.offset]);
    let mut count = None;
    let rows = db.query_map(&select(params.len()), &all, |r| {
        if count.is_none() {
            count = Some(r.get::<u64>(0)?);
        }
        row(&r.shifted(1))
    })?;
    let count = match count {
        Some(count) => count,
        None => db.query_row(&format!("SELECT {total}"), params, |r| r.get(0))?,
    };
    Ok((count, rows))
}

/// Maps a UNIQUE violation to `Conflict(what)`, anything else unchanged.
pub(crate) fn conflict_on_unique(error: StoreError, what: &str) -> StoreError {
    match error {
        StoreError::Unique(_) => StoreError::Conflict(what.to_string()),
        other => other,
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
            .write_blocking(|db| db.execute_batch("CREATE TABLE t (x)"))
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
            .read_blocking(|db| db.query_row("SELECT 1", args![], |_| Ok(())))
            .unwrap();
        other.execute_batch("ROLLBACK").unwrap();
        store
            .write_blocking(|db| db.execute_batch("CREATE TABLE t (x)"))
            .unwrap();
    }

    #[test]
    fn other_sqlite_errors_stay_internal() {
        let err = StoreError::from(rusqlite::Error::InvalidColumnIndex(3));
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    }
}
