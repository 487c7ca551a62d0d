//! The `audit_stream` table: how far the audit log has been streamed to a SIEM (the last entry
//! id its receiver accepted), per destination, and which server streams it. One server at a
//! time holds the stream, under a lease on the database's clock (`feed::clock_ms`); another
//! takes it over once the lease has run out.

use super::{args, Db, StoreResult};
use crate::domain::Id;

/// Where the stream stands, as a claim read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The last entry the receiver accepted.
    pub position: Id,
    /// The newest entry of the log.
    pub newest: Id,
    /// Whether the claiming server holds the stream now.
    pub held: bool,
}

/// Takes or renews the stream to `destination` for `server`, for `lease_ms` from now on the
/// database's clock, unless another server holds it within its lease. A destination not seen
/// before starts at the log's beginning.
pub fn claim(db: &Db<'_>, destination: &str, server: &str, lease_ms: i64) -> StoreResult<Standing> {
    let now_ms = super::feed::clock_ms(db)?;
    db.execute(
        "INSERT INTO audit_stream (destination, position) VALUES (?1, 0)
         ON CONFLICT (destination) DO NOTHING",
        args![destination],
    )?;
    let held = db.execute(
        "UPDATE audit_stream SET holder = ?2, lease_until_ms = ?3
         WHERE destination = ?1 AND (holder = ?2 OR lease_until_ms < ?4)",
        args![destination, server, now_ms + lease_ms, now_ms],
    )? == 1;
    let position = db.query_row(
        "SELECT position FROM audit_stream WHERE destination = ?1",
        args![destination],
        |r| r.get(0),
    )?;
    Ok(Standing {
        position,
        newest: super::audit::newest_id(db)?,
        held,
    })
}

/// Records that the receiver accepted every entry up to `position`, if `server` still holds
/// the stream (a position never moves back).
pub fn accepted(db: &Db<'_>, destination: &str, server: &str, position: Id) -> StoreResult<bool> {
    Ok(db.execute(
        "UPDATE audit_stream SET position = ?3
         WHERE destination = ?1 AND holder = ?2 AND position < ?3",
        args![destination, server, position],
    )? == 1)
}

/// Lets the stream go at once (the server stops): another server takes it without waiting for
/// the lease to run out.
pub fn release(db: &Db<'_>, destination: &str, server: &str) -> StoreResult<()> {
    db.execute(
        "UPDATE audit_stream SET lease_until_ms = 0 WHERE destination = ?1 AND holder = ?2",
        args![destination, server],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::{self, Entry};

    #[test]
    fn one_server_holds_the_stream_until_its_lease_runs_out_or_it_lets_go() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write_blocking(|db| -> crate::store::StoreResult<_> {
                for _ in 0..3 {
                    audit::record(
                        db,
                        &Entry {
                            action: "login.failed",
                            details: "{}".into(),
                            ..Entry::default()
                        },
                    )?;
                }
                let a = claim(db, "tls://siem:6514", "a", 60_000)?;
                assert_eq!(
                    a,
                    Standing {
                        position: 0,
                        newest: 3,
                        held: true
                    }
                );
                assert!(
                    !claim(db, "tls://siem:6514", "b", 60_000)?.held,
                    "a holds it"
                );
                assert!(claim(db, "tls://siem:6514", "a", 60_000)?.held, "renewed");
                // Another destination is a stream of its own.
                assert!(claim(db, "tcp://other:514", "b", 60_000)?.held);

                assert!(accepted(db, "tls://siem:6514", "a", 2)?);
                assert!(!accepted(db, "tls://siem:6514", "a", 1)?, "never back");
                assert!(
                    !accepted(db, "tls://siem:6514", "b", 3)?,
                    "b does not hold it"
                );

                release(db, "tls://siem:6514", "a")?;
                let b = claim(db, "tls://siem:6514", "b", 60_000)?;
                assert_eq!((b.held, b.position), (true, 2), "b goes on where a stopped");
                assert!(!claim(db, "tls://siem:6514", "a", 60_000)?.held);
                // A lease that ran out (here: none at all) is taken over.
                claim(db, "tls://siem:6514", "b", -1)?;
                assert!(claim(db, "tls://siem:6514", "a", 60_000)?.held);
                Ok(())
            })
            .unwrap();
    }
}
