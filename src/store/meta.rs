//! The `meta` table: named integers about the installation itself.

use super::{args, Db, StoreResult};

pub fn get(db: &Db<'_>, key: &str) -> StoreResult<Option<i64>> {
    db.query_opt("SELECT value FROM meta WHERE key = ?1", args![key], |r| {
        r.get(0)
    })
}

pub fn set(db: &Db<'_>, key: &str, value: i64) -> StoreResult<()> {
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args![key, value],
    )?;
    Ok(())
}
