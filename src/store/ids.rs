//! Ids that are never handed out twice. Sessions, API keys and public links are numbered from
//! `id_counters`, the highest id ever issued for each, not from the rows a table holds now:
//! after a restore (which moves the counters past every id it knows of), a new session never
//! takes the id of one that was logged out after the backup was taken.

use super::{args, Db, StoreResult};
use crate::domain::Id;

/// A family of rows numbered by `id_counters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Sessions,
    ApiKeys,
    PublicLinks,
}

impl Counter {
    pub const ALL: [Counter; 3] = [Counter::Sessions, Counter::ApiKeys, Counter::PublicLinks];

    /// The counter's name, which is also its table's.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Sessions => "sessions",
            Counter::ApiKeys => "api_keys",
            Counter::PublicLinks => "public_links",
        }
    }
}

/// The next id of `counter`, taken inside the caller's write transaction.
pub fn next(db: &Db<'_>, counter: Counter) -> StoreResult<Id> {
    db.query_row(
        "UPDATE id_counters SET last = last + 1 WHERE name = ?1 RETURNING last",
        args![counter.name()],
        |r| r.get(0),
    )
}

/// The highest id of `counter` ever handed out here: its counter, or a row above it (rows
/// copied in by hand).
pub fn highest(db: &Db<'_>, counter: Counter) -> StoreResult<Id> {
    let table = counter.name();
    db.query_row(
        &format!(
            "SELECT CASE WHEN c.last > t.top THEN c.last ELSE t.top END
             FROM id_counters c, (SELECT COALESCE(MAX(id), 0) AS top FROM {table}) t
             WHERE c.name = ?1"
        ),
        args![table],
        |r| r.get(0),
    )
}

/// Moves `counter` to at least `last`: the next id is past it.
pub fn move_past(db: &Db<'_>, counter: Counter, last: Id) -> StoreResult<()> {
    db.execute(
        "UPDATE id_counters SET last = ?2 WHERE name = ?1 AND last < ?2",
        args![counter.name(), last],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_temp;

    #[test]
    fn ids_follow_the_highest_ever_issued_not_the_rows_left() {
        let (_dir, store) = open_temp();
        store
            .write_blocking(|db| -> crate::store::StoreResult<_> {
                assert_eq!(next(db, Counter::Sessions)?, 1);
                assert_eq!(next(db, Counter::Sessions)?, 2);
                // Another family counts on its own.
                assert_eq!(next(db, Counter::ApiKeys)?, 1);
                move_past(db, Counter::Sessions, 4_000)?;
                assert_eq!(next(db, Counter::Sessions)?, 4_001);
                // Never backwards.
                move_past(db, Counter::Sessions, 10)?;
                assert_eq!(highest(db, Counter::Sessions)?, 4_001);
                assert_eq!(next(db, Counter::Sessions)?, 4_002);
                Ok(())
            })
            .unwrap();
    }
}
