//! The `meta` table: the live-state epoch that CLI commands bump so that a running server
//! reloads users and sessions it did not change itself.

use rusqlite::Connection;

use super::StoreResult;

pub fn live_epoch(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row(
        "SELECT value FROM meta WHERE key = 'live_epoch'",
        [],
        |row| row.get(0),
    )?)
}

pub fn bump_live_epoch(conn: &Connection) -> StoreResult<()> {
    conn.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'live_epoch'",
        [],
    )?;
    Ok(())
}
