//! PostgreSQL connections for r2d2, each with its prepared statements, and the transactions
//! the store runs on them. The synchronous `postgres` client fits the store as it is: every
//! store function runs on a blocking thread, on SQLite and PostgreSQL alike.

use std::str::FromStr;
use std::time::Duration;

use super::sql::PgConnection;
use super::{StoreError, StoreResult};

pub struct Manager {
    config: postgres::Config,
    /// How long a statement waits for a lock (the writers' lock, a row lock).
    lock_timeout: Duration,
}

impl Manager {
    pub fn new(url: &str, timeout: Duration) -> StoreResult<Self> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| StoreError::Database(format!("database.url: {e}")))?;
        config.connect_timeout(timeout.clamp(Duration::from_secs(1), Duration::from_secs(30)));
        config.application_name("claribi");
        // A half-open connection (the database host gone) is found within a minute.
        config.keepalives_idle(Duration::from_secs(30));
        Ok(Manager {
            config,
            lock_timeout: timeout.clamp(Duration::from_millis(100), Duration::from_secs(30)),
        })
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<PgConnection, StoreError> {
        let mut client = self.config.connect(postgres::NoTls)?;
        // A statement waits for a lock no longer than database.busy_timeout, as on SQLite.
        client.batch_execute(&format!(
            "SET lock_timeout = '{}ms'; SET idle_in_transaction_session_timeout = '60s'",
            self.lock_timeout.as_millis()
        ))?;
        Ok(PgConnection::new(client))
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), StoreError> {
        conn.batch("")
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.is_closed()
    }
}

/// A transaction on a pooled connection: begun with the given statements, committed by
/// `commit`, rolled back when dropped without it (an error in between).
pub struct Transaction<'c> {
    conn: &'c mut PgConnection,
    open: bool,
}

impl<'c> Transaction<'c> {
    pub fn begin(conn: &'c mut PgConnection, begin: &str) -> StoreResult<Self> {
        // Open before BEGIN runs: a lock statement that fails after BEGIN is rolled back too.
        let tx = Transaction { conn, open: true };
        tx.conn.batch(begin)?;
        Ok(tx)
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        self.conn
    }

    pub fn commit(mut self) -> StoreResult<()> {
        self.open = false;
        self.conn.batch("COMMIT")?;
        Ok(())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_closed() {
            if let Err(e) = self.conn.batch("ROLLBACK") {
                tracing::warn!(error = %e, "rolling back a PostgreSQL transaction failed");
            }
        }
    }
}
