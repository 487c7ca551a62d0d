//! Schema versions. SQLite: through `PRAGMA user_version`, `schema.sql` is version 1, then
//! each step in `MIGRATIONS` runs once, in order, inside the caller's transaction. PostgreSQL:
//! through the `schema_version` table; a new database starts at the version of
//! `POSTGRES_BASELINE` (the same tables as SQLite's at that version), then takes the steps of
//! `POSTGRES_MIGRATIONS`, numbered like SQLite's.

use rusqlite::Connection;

use super::{args, Db, Dialect, StoreError, StoreResult};

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
    (9, include_str!("migrations/v9_credit_totals.sql")),
    (10, include_str!("migrations/v10_shared_login_throttle.sql")),
    (11, include_str!("migrations/v11_shared_rate_counts.sql")),
    (12, include_str!("migrations/v12_restore_safe_ids.sql")),
    (13, include_str!("migrations/v13_audit_stream.sql")),
    (14, include_str!("migrations/v14_sso_providers.sql")),
    (15, include_str!("migrations/v15_sso_sign_ins.sql")),
    (16, include_str!("migrations/v16_temporary_passwords.sql")),
    (
        17,
        include_str!("migrations/v17_service_accounts_and_policy.sql"),
    ),
    (18, include_str!("migrations/v18_key_expiry_notices.sql")),
    (19, include_str!("migrations/v19_audit_filter_indexes.sql")),
    (20, include_str!("migrations/v20_passkeys.sql")),
    (21, include_str!("migrations/v21_audit_positions.sql")),
    (22, include_str!("migrations/v22_key_counts.sql")),
];

pub const SCHEMA_VERSION: u32 = 1 + MIGRATIONS.len() as u32;

/// PostgreSQL support started at this version.
const POSTGRES_BASELINE: (u32, &str) = (9, include_str!("migrations/postgres/v9.sql"));

/// Steps after the PostgreSQL baseline, each the same version as SQLite's step of that number.
const POSTGRES_MIGRATIONS: &[(u32, &str)] = &[
    (
        10,
        include_str!("migrations/postgres/v10_shared_login_throttle.sql"),
    ),
    (
        11,
        include_str!("migrations/postgres/v11_shared_rate_counts.sql"),
    ),
    (
        12,
        include_str!("migrations/postgres/v12_restore_safe_ids.sql"),
    ),
    (13, include_str!("migrations/postgres/v13_audit_stream.sql")),
    (
        14,
        include_str!("migrations/postgres/v14_sso_providers.sql"),
    ),
    (15, include_str!("migrations/postgres/v15_sso_sign_ins.sql")),
    (
        16,
        include_str!("migrations/postgres/v16_temporary_passwords.sql"),
    ),
    (
        17,
        include_str!("migrations/postgres/v17_service_accounts_and_policy.sql"),
    ),
    (
        18,
        include_str!("migrations/postgres/v18_key_expiry_notices.sql"),
    ),
    (
        19,
        include_str!("migrations/postgres/v19_audit_filter_indexes.sql"),
    ),
    (20, include_str!("migrations/postgres/v20_passkeys.sql")),
    (
        21,
        include_str!("migrations/postgres/v21_audit_positions.sql"),
    ),
    (22, include_str!("migrations/postgres/v22_key_counts.sql")),
];

pub(super) fn migrate(db: &Db<'_>) -> StoreResult<()> {
    match (db.dialect(), db.sqlite_conn()) {
        (Dialect::Sqlite, Some(conn)) => migrate_sqlite(conn),
        _ => migrate_postgres(db),
    }
}

fn newer(current: u32) -> StoreError {
    StoreError::Migration {
        version: current,
        cause: format!(
            "the database is at schema version {current}, newer than this binary's {SCHEMA_VERSION}; \
             run a newer claribi"
        ),
    }
}

fn migrate_postgres(db: &Db<'_>) -> StoreResult<()> {
    db.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let current: Option<u32> =
        db.query_opt("SELECT version FROM schema_version", args![], |r| r.get(0))?;
    let current = match current {
        Some(v) if v > SCHEMA_VERSION => return Err(newer(v)),
        Some(v) => v,
        None => {
            let (version, sql) = POSTGRES_BASELINE;
            db.execute_batch(sql).map_err(|e| StoreError::Migration {
                version,
                cause: e.to_string(),
            })?;
            db.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                args![version],
            )?;
            version
        }
    };
    for &(version, sql) in POSTGRES_MIGRATIONS {
        if version > current {
            db.execute_batch(sql).map_err(|e| StoreError::Migration {
                version,
                cause: e.to_string(),
            })?;
            db.execute("UPDATE schema_version SET version = ?1", args![version])?;
        }
    }
    Ok(())
}

fn migrate_sqlite(tx: &Connection) -> StoreResult<()> {
    let current: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(newer(current));
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
fn after(tx: &Connection, version: u32) -> StoreResult<()> {
    match version {
        // The entries written before the log was chained get their hashes, in id order.
        7 => super::audit::chain_unhashed(&Db::sqlite(tx)),
        _ => Ok(()),
    }
}

fn apply(tx: &Connection, version: u32, sql: &str) -> StoreResult<()> {
    tx.execute_batch(sql)
        .map_err(StoreError::from)
        .and_then(|_| after(tx, version))
        .and_then(|_| Ok(tx.pragma_update(None, "user_version", version)?))
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
    fn the_postgres_baseline_is_at_this_binarys_version() {
        let last = POSTGRES_MIGRATIONS
            .last()
            .map_or(POSTGRES_BASELINE.0, |m| m.0);
        assert_eq!(
            last, SCHEMA_VERSION,
            "a SQLite step without its PostgreSQL step"
        );
    }

    #[test]
    fn a_new_database_is_at_the_latest_version_and_reopening_is_a_no_op() {
        let (dir, store) = open_temp();
        let version: u32 = store
            .read_blocking(|c| c.query_row("PRAGMA user_version", args![], |r| r.get(0)))
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
                c.query_row("SELECT email, mfa_enabled FROM users", args![], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
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
    fn the_months_credits_already_spent_become_running_totals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v8.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(BASELINE).unwrap();
            for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= 8) {
                apply(&conn, version, sql).unwrap();
            }
            // 2026-11-27T10:00:00Z and 2026-11-30T23:59:59Z (November), 2026-12-01T00:00:00Z.
            conn.execute_batch(
                "INSERT INTO organizations (id, name, created_at) VALUES (1, 'Acme', 0);
                 INSERT INTO credit_usage (organization_id, kind, credits, target_id, at) VALUES
                   (1, 'report_generation', 5, 1, 1795773600),
                   (1, 'dashboard_refresh', 1, 1, 1796083199),
                   (1, 'report_generation', 5, 2, 1796083200);",
            )
            .unwrap();
        }
        let store = crate::store::Store::open(&path, 1, std::time::Duration::from_secs(1)).unwrap();
        let (november, december) = crate::domain::month_bounds(1_795_773_600);
        store
            .read_blocking(|db| {
                use crate::store::usage::credits_used;
                assert_eq!(credits_used(db, 1, november)?, (5, 1));
                assert_eq!(credits_used(db, 1, december)?, (5, 0));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn the_audit_entries_of_an_older_database_are_given_their_positions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v20.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(BASELINE).unwrap();
            for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= 20) {
                apply(&conn, version, sql).unwrap();
            }
            conn.execute_batch(
                "INSERT INTO audit_log (id, at, organization_id, action, outcome, user_id) VALUES
                   (1, 0, 1, 'login.failed', 'failure', 7),
                   (2, 0, 2, 'login.failed', 'failure', NULL),
                   (3, 0, NULL, 'login.failed', 'failure', NULL),
                   (4, 0, 1, 'login.succeeded', 'success', 7),
                   (5, 0, 1, 'login.failed', 'failure', NULL),
                   (6, 0, 1, 'login.failed', 'failure', 7);",
            )
            .unwrap();
        }
        let store = crate::store::Store::open(&path, 1, std::time::Duration::from_secs(1)).unwrap();
        type Positions = (Option<i64>, Option<i64>, Option<i64>);
        let positions: Vec<Positions> = store
            .read_blocking(|db| {
                db.query_map(
                    "SELECT org_seq, action_seq, user_seq FROM audit_log ORDER BY id",
                    args![],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .unwrap();
        assert_eq!(
            positions,
            [
                (Some(1), Some(1), Some(1)),
                (Some(1), Some(1), None),
                (None, None, None),
                (Some(2), Some(1), Some(2)),
                (Some(3), Some(2), None),
                (Some(4), Some(3), Some(3)),
            ]
        );
        // The next entry follows on.
        let next: Positions = store
            .write_blocking(|db| {
                let entry = crate::store::audit::Entry {
                    organization_id: Some(1),
                    action: "login.failed",
                    user_id: Some(7),
                    ..Default::default()
                };
                let id = crate::store::audit::record(db, &entry)?;
                db.query_row(
                    "SELECT org_seq, action_seq, user_seq FROM audit_log WHERE id = ?1",
                    args![id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .unwrap();
        assert_eq!(next, (Some(5i64), Some(4i64), Some(4i64)));
    }

    #[test]
    fn a_database_from_a_newer_binary_is_refused() {
        let (dir, store) = open_temp();
        store
            .write_blocking(|db| {
                db.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
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
