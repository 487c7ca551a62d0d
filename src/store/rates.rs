//! The `rate_counts` table: each server's request counts per key or user and hourly window,
//! published every second by servers that share a database, so that each can add what the
//! others counted to its own.

use super::{args, Db, StoreResult};
use crate::domain::UnixTime;

/// One counter of this server: `(subject, kind, window start, count)`.
pub type Count = (String, &'static str, UnixTime, u32);

/// Writes this server's counts and returns, for each, what the other servers counted in the
/// same window.
pub fn publish(db: &Db<'_>, server: &str, counts: &[Count]) -> StoreResult<Vec<u32>> {
    let mut others = Vec::with_capacity(counts.len());
    for (subject, kind, window, count) in counts {
        db.execute(
            "INSERT INTO rate_counts (subject, kind, window_start, server, count)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (subject, kind, window_start, server) DO UPDATE SET count = excluded.count",
            args![subject, kind, window, server, count],
        )?;
        let theirs: i64 = db.query_row(
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM rate_counts
             WHERE subject = ?1 AND kind = ?2 AND window_start = ?3 AND server <> ?4",
            args![subject, kind, window, server],
            |r| r.get(0),
        )?;
        others.push(u32::try_from(theirs).unwrap_or(u32::MAX));
    }
    Ok(others)
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
            .write_blocking(|db| {
                let w = 1_800_000_000;
                let c = |count| vec![("key:1".to_string(), "general", w, count)];
                assert_eq!(publish(db, "a", &c(5))?, vec![0]);
                assert_eq!(publish(db, "b", &c(3))?, vec![5]);
                assert_eq!(publish(db, "c", &c(1))?, vec![8]);
                // A server's count is replaced, not added to.
                assert_eq!(publish(db, "a", &c(6))?, vec![4]);
                let other_window = vec![("key:1".to_string(), "general", w + 3600, 2)];
                assert_eq!(publish(db, "b", &other_window)?, vec![0]);
                assert_eq!(prune(db, w + 3600)?, 3);
                Ok(())
            })
            .unwrap();
    }
}
