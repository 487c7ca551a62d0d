//! `claribi migrate`: a stopped installation's SQLite database copied into an empty
//! PostgreSQL database, table by table, ids and all (so the audit log's hash chain, which
//! covers ids, holds on the other side), in one transaction, with the row counts compared
//! before it commits.

use super::{args, Dialect, Store, StoreError, StoreResult};

/// The tables copied, parents before the rows that refer to them. `servers` is not: it
/// lists running servers, and none runs during a migration.
const TABLES: &[&str] = &[
    "organizations",
    "security_policies",
    "users",
    "sessions",
    "recovery_codes",
    "password_history",
    "audit_log",
    "audit_heads",
    "meta",
    "api_keys",
    "api_key_scope_usage",
    "key_counts",
    "key_notices",
    "data_sources",
    "reports",
    "dashboards",
    "row_counts",
    "credit_usage",
    "credit_totals",
    "goals",
    "goal_milestones",
    "goal_progress",
    "public_links",
    "changes",
    "feed_head",
    "id_counters",
    "login_attempts",
    "login_locks",
    "rate_counts",
    "audit_stream",
    "sso_providers",
    "sso_identities",
    "sso_sign_ins",
    "sso_codes",
    "webauthn_credentials",
    "webauthn_challenges",
];

/// Rows copied per table, in `TABLES` order.
pub type Copied = Vec<(&'static str, u64)>;

/// Copies every row of `from` (SQLite) into `to` (PostgreSQL, migrated and empty).
pub fn sqlite_to_postgres(from: &Store, to: &Store) -> StoreResult<Copied> {
    if from.dialect() != Dialect::Sqlite || to.dialect() != Dialect::Postgres {
        return Err(StoreError::Database(
            "a migration copies an SQLite database into a PostgreSQL one".into(),
        ));
    }
    let pool = from.sqlite_pool()?;
    to.write_blocking(|db| {
        let source = pool.get()?;
        // One snapshot of the source for the whole copy.
        source.execute_batch("BEGIN")?;
        let copied = copy_tables(&source, db);
        // Only read: ending the snapshot either way changes nothing.
        let _ = source.execute_batch("COMMIT");
        copied
    })
}

/// Copies every table of `TABLES` from `source` into the empty PostgreSQL database `db`,
/// checking each table's row count on both sides.
fn copy_tables(source: &rusqlite::Connection, db: &super::Db<'_>) -> StoreResult<Copied> {
    for table in TABLES {
        let present: i64 =
            db.query_row(&format!("SELECT COUNT(*) FROM {table}"), args![], |r| {
                r.get(0)
            })?;
        // A new PostgreSQL database holds the feed's head row and the id counters (at 0),
        // and nothing else.
        let expected = match *table {
            "feed_head" => 1,
            "id_counters" => super::ids::Counter::ALL.len() as i64,
            _ => 0,
        };
        if present != expected {
            return Err(StoreError::Conflict(format!(
                "the PostgreSQL database is not empty ({table} has {present} rows): migrate into a new, empty database"
            )));
        }
    }
    db.execute("DELETE FROM feed_head", args![])?;
    db.execute("DELETE FROM id_counters", args![])?;
    let mut copied = Vec::with_capacity(TABLES.len());
    for &table in TABLES {
        let columns: Vec<String> = {
            let mut stmt = source.prepare(&format!("SELECT * FROM {table} LIMIT 0"))?;
            let names = stmt.column_names().iter().map(|c| c.to_string()).collect();
            drop(stmt.raw_query());
            names
        };
        // A key's successor has a later id: `replaced_by` is set once both are in.
        let deferred = if table == "api_keys" {
            let at = |name: &str| columns.iter().position(|c| c == name);
            at("id").zip(at("replaced_by"))
        } else {
            None
        };
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            columns.join(", "),
            (1..=columns.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut select = source.prepare(&format!("SELECT * FROM {table}"))?;
        let mut rows = select.query([])?;
        let mut n = 0u64;
        let mut later: Vec<(i64, i64)> = Vec::new();
        let null = rusqlite::types::Value::Null;
        while let Some(row) = rows.next()? {
            let values: Vec<rusqlite::types::Value> = (0..columns.len())
                .map(|i| row.get::<_, rusqlite::types::Value>(i))
                .collect::<Result<_, _>>()?;
            let mut params: Vec<&dyn super::sql::Param> =
                values.iter().map(|v| v as &dyn super::sql::Param).collect();
            if let Some((id_at, at)) = deferred {
                if let (
                    rusqlite::types::Value::Integer(id),
                    rusqlite::types::Value::Integer(successor),
                ) = (&values[id_at], &values[at])
                {
                    later.push((*id, *successor));
                }
                params[at] = &null;
            }
            db.execute(&insert, &params)?;
            n += 1;
        }
        for (id, successor) in later {
            db.execute(
                "UPDATE api_keys SET replaced_by = ?2 WHERE id = ?1",
                args![id, successor],
            )?;
        }
        let source_count: i64 =
            source.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        let target_count: i64 =
            db.query_row(&format!("SELECT COUNT(*) FROM {table}"), args![], |r| {
                r.get(0)
            })?;
        if source_count != target_count || target_count as u64 != n {
            return Err(StoreError::Database(format!(
                "{table}: {source_count} rows in SQLite, {target_count} in PostgreSQL; nothing was copied"
            )));
        }
        copied.push((table, n));
    }
    // Tables whose `id` PostgreSQL numbers (identity columns): their counters move past
    // the copied ids.
    let numbered: Vec<String> = db.query_map(
        "SELECT CAST(table_name AS TEXT) FROM information_schema.columns
         WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES'",
        args![],
        |r| r.get(0),
    )?;
    for table in numbered {
        db.query_row(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                               COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            ),
            args![],
            |_| Ok(()),
        )?;
    }
    // The planner's statistics of the copied tables, as PostgreSQL advises after a bulk load:
    // without them, until autovacuum gets to it, a list of revoked keys can walk the live ones.
    db.execute_batch("ANALYZE")?;
    Ok(copied)
}

impl super::sql::Param for rusqlite::types::Value {
    fn value(&self) -> super::sql::Value<'_> {
        use super::sql::Value;
        use rusqlite::types::Value as V;
        match self {
            V::Null => Value::Null,
            V::Integer(n) => Value::Int(*n),
            V::Real(f) => Value::Real(*f),
            V::Text(t) => Value::Text(t),
            V::Blob(b) => Value::Blob(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_of_the_schema_is_copied_or_named_as_left_out() {
        let (_dir, store) = crate::store::open_temp();
        let tables: Vec<String> = store
            .read_blocking(|db| {
                db.query_map(
                    "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
                    args![],
                    |r| r.get(0),
                )
            })
            .unwrap();
        for table in tables {
            assert!(
                TABLES.contains(&table.as_str()) || table == "servers",
                "{table} is neither copied by a migration nor left out on purpose"
            );
        }
    }
}
