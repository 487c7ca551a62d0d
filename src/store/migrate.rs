//! Schema versions through `PRAGMA user_version`: `schema.sql` is version 1, then each step in
//! `MIGRATIONS` runs once, in order, inside the caller's transaction.

use rusqlite::Connection;

use super::{StoreError, StoreResult};

const BASELINE: &str = include_str!("../../schema.sql");

/// Steps after the baseline: (version it produces, SQL). Append only; never edit a released one.
const MIGRATIONS: &[(u32, &str)] = &[
    (2, include_str!("migrations/v2_sessions_mfa_audit.sql")),
    (3, include_str!("migrations/v3_api_keys.sql")),
    (4, include_str!("migrations/v4_content.sql")),
    (5, include_str!("migrations/v5_change_feed.sql")),
    (
        6,
        include_str!("migrations/v6_unique_organization_names.sql"),
    ),
    (7, include_str!("migrations/v7_key_lifecycle.sql")),
    (8, include_str!("migrations/v8_password_set_by_other.sql")),
];

pub const SCHEMA_VERSION: u32 = 1 + MIGRATIONS.len() as u32;

pub(super) fn migrate(tx: &Connection) -> StoreResult<()> {
    let current: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Migration {
            version: current,
            cause: format!(
                "the database is at schema version {current}, newer than this binary's {SCHEMA_VERSION}; \
                 run a newer claribi"
            ),
        });
    }
    if current == 0 {
        apply(tx, 1, BASELINE)?;
    }
    for &(version, sql) in MIGRATIONS {
        if version > current.max(1) {
            apply(tx, version, sql)?;
        }
    }
    Ok(())
}

/// What a version needs beyond its SQL, run right after it.
fn after(tx: &Connection, version: u32) -> rusqlite::Result<()> {
    match version {
        // The entries written before the log was chained get their hashes, in id order.
        7 => super::audit::chain_unhashed(tx),
        _ => Ok(()),
    }
}

fn apply(tx: &Connection, version: u32, sql: &str) -> StoreResult<()> {
    tx.execute_batch(sql)
        .and_then(|_| after(tx, version))
        .and_then(|_| tx.pragma_update(None, "user_version", version))
        .map_err(|e| StoreError::Migration {
            version,
            cause: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_temp;

    #[test]
    fn a_new_database_is_at_the_latest_version_and_reopening_is_a_no_op() {
        let (dir, store) = open_temp();
        let version: u32 = store
            .read_blocking(|c| Ok(c.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(store);
        let again = crate::store::Store::open(
            &dir.path().join("test.db"),
            1,
            std::time::Duration::from_secs(1),
        );
        assert!(again.is_ok());
    }

    #[test]
    fn a_version_1_database_keeps_its_users_through_the_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(BASELINE).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute_batch(
                "INSERT INTO organizations (id, name, created_at) VALUES (1, 'Acme', 0);
                 INSERT INTO users (organization_id, email, role, password_hash, password_changed_at, created_at)
                 VALUES (1, 'ada@example.com', 'owner', 'h', 0, 0);",
            )
            .unwrap();
        }
        let store = crate::store::Store::open(&path, 1, std::time::Duration::from_secs(1)).unwrap();
        let (email, mfa): (String, bool) = store
            .read_blocking(|c| {
                Ok(c.conn
                    .query_row("SELECT email, mfa_enabled FROM users", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?)
            })
            .unwrap();
        assert_eq!((email.as_str(), mfa), ("ada@example.com", false));
    }

    #[test]
    fn organizations_that_shared_a_name_are_told_apart_by_the_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(BASELINE).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute_batch(
                "INSERT INTO organizations (id, name, created_at) VALUES (1, 'Acme', 0);
                 INSERT INTO organizations (id, name, created_at) VALUES (2, 'ACME', 0);
                 INSERT INTO organizations (id, name, created_at) VALUES (3, 'Globex', 0);",
            )
            .unwrap();
        }
        let store = crate::store::Store::open(&path, 1, std::time::Duration::from_secs(1)).unwrap();
        let names = store
            .read_blocking(crate::store::organizations::names)
            .unwrap();
        let mut names: Vec<String> = names.into_iter().map(|(_, n)| n).collect();
        names.sort();
        assert_eq!(names, ["ACME (organization 2)", "Acme", "Globex"]);
    }

    #[test]
    fn a_database_from_a_newer_binary_is_refused() {
        let (dir, store) = open_temp();
        store
            .write_blocking(|db| {
                Ok(db
                    .conn
                    .pragma_update(None, "user_version", SCHEMA_VERSION + 1)?)
            })
            .unwrap();
        drop(store);
        let again = crate::store::Store::open(
            &dir.path().join("test.db"),
            1,
            std::time::Duration::from_secs(1),
        );
        assert!(matches!(again, Err(StoreError::Migration { .. })));
    }
}
