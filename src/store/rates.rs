//! The `rate_counts` table: each server's request counts per key or user and hourly window,
//! published every second by servers that share a database, so that each can add what the
//! others counted to its own.

use super::{args, Db, StoreResult};
use crate::domain::UnixTime;

/// One counter of this server: `(subject, kind, window start, count)`.
pub type Count = (String, &'static str, UnixTime, u32);

/// Writes this server's counts (each replaces the server's last count of that window).
pub fn publish(db: &Db<'_>, server: &str, counts: &[Count]) -> StoreResult<()> {
    for (subject, kind, window, count) in counts {
        db.execute(
            "INSERT INTO rate_counts (subject, kind, window_start, server, count)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (subject, kind, window_start, server) DO UPDATE SET count = excluded.count",
            args![subject, kind, window, server, count],
        )?;
    }
    Ok(())
}

/// What the servers but `server` counted in `window`: `(subject, kind, count)`.
pub fn others(
    db: &Db<'_>,
    server: &str,
    window: UnixTime,
) -> StoreResult<Vec<(String, String, u32)>> {
    db.query_map(
        "SELECT subject, kind, CAST(SUM(count) AS BIGINT) FROM rate_counts
         WHERE window_start = ?1 AND server <> ?2 GROUP BY subject, kind",
        args![window, server],
        |r| {
            let n: i64 = r.get(2)?;
            Ok((r.get(0)?, r.get(1)?, u32::try_from(n).unwrap_or(u32::MAX)))
        },
    )
}

/// Drops the counts of windows before `window`.
pub fn prune(db: &Db<'_>, window: UnixTime) -> StoreResult<u64> {
    db.execute(
        "DELETE FROM rate_counts WHERE window_start < ?1",
        args![window],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_server_reads_the_sum_of_the_others_in_its_window() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write_blocking(|db| -> crate::store::StoreResult<_> {
                let w = 1_800_000_000;
                let c = |count| vec![("key:1".to_string(), "general", w, count)];
                publish(db, "a", &c(5))?;
                publish(db, "b", &c(3))?;
                publish(db, "c", &c(1))?;
                // A server's count is replaced, not added to.
                publish(db, "a", &c(6))?;
                assert_eq!(
                    others(db, "a", w)?,
                    vec![("key:1".into(), "general".into(), 4)]
                );
                assert_eq!(
                    others(db, "b", w)?,
                    vec![("key:1".into(), "general".into(), 7)]
                );
                publish(db, "b", &[("key:1".to_string(), "general", w + 3600, 2)])?;
                assert_eq!(others(db, "a", w + 3600)?.len(), 1);
                assert_eq!(prune(db, w + 3600)?, 3);
                Ok(())
            })
            .unwrap();
    }
}
