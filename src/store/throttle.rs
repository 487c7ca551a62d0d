//! The login throttle's counts in the database (`login_attempts`, `login_locks`), for servers
//! that share one: every step runs in a write transaction, and writers take turns (see
//! `BEGIN_WRITE`), so parallel attempts on any number of servers cannot pass one check
//! together. The same rules as the in-memory throttle (`auth::throttle`).

use super::{args, Db, StoreResult};
use crate::domain::{Id, UnixTime};

/// A reservation older than this is from a server that died while it checked a password.
pub const RESERVATION_TTL: i64 = 60;

/// A refused attempt is audited at most once per key and this many seconds.
const AUDIT_EVERY: i64 = 60;

/// The rules: attempts per key within `window` seconds, locked `lockout` seconds past them.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub window: i64,
    pub lockout: i64,
}

/// What `reserve` decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The places taken, one per key, to be settled.
    Granted(Vec<Id>),
    /// Seconds until another attempt may be made, and the keys whose refusals are due for an
    /// audit entry with the number refused since the last.
    Refused {
        retry_after: u64,
        audit: Vec<(String, u32)>,
    },
}

/// A lock in force, as `locks` reads it.
#[derive(Debug, PartialEq, Eq)]
pub struct Lock {
    pub key: String,
    /// Seconds it has left.
    pub left: i64,
    /// Seconds since its refusals were last audited.
    pub audited_ago: i64,
}

/// Forgets `key`'s failures and ends its lock (an administrator's unlock of an account). The
/// attempts in flight keep their reservations, so that no more than the limit are judged
/// at once, and the minute of the last refusal audit stays.
pub fn clear(db: &Db<'_>, key: &str) -> StoreResult<()> {
    db.execute(
        "DELETE FROM login_attempts WHERE key = ?1 AND kind = 'failure'",
        args![key],
    )?;
    db.execute(
        "UPDATE login_locks SET locked_until = 0 WHERE key = ?1",
        args![key],
    )?;
    Ok(())
}

/// The locks among `keys` in force at `now`: a read, so that a login of a locked account or
/// from a locked address is refused without the writers' lock.
pub fn locks(db: &Db<'_>, keys: &[(String, u32)], now: UnixTime) -> StoreResult<Vec<Lock>> {
    let mut locks = Vec::new();
    for (key, _) in keys {
        let row: Option<(i64, i64)> = db.query_opt(
            "SELECT locked_until, refused_audited_at FROM login_locks WHERE key = ?1",
            args![key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if let Some((until, audited_at)) = row.filter(|(until, _)| *until > now) {
            locks.push(Lock {
                key: key.clone(),
                left: until - now,
                audited_ago: now - audited_at,
            });
        }
    }
    Ok(locks)
}

/// Checks every `(key, max)` and, if all allow it, reserves a place in each.
pub fn reserve(
    db: &Db<'_>,
    keys: &[(String, u32)],
    rules: Rules,
    now: UnixTime,
) -> StoreResult<Reservation> {
    let mut wait = 0i64;
    // Keys with a count of their own: only their refusals are counted for the audit (as the
    // in-memory throttle counts only keys it holds), so that refused guesses at new accounts
    // leave nothing behind.
    let mut counted = Vec::new();
    for (key, max) in keys {
        let locked_until: Option<i64> = db.query_opt(
            "SELECT locked_until FROM login_locks WHERE key = ?1",
            args![key],
            |r| r.get(0),
        )?;
        if locked_until.is_some() {
            counted.push(key);
        }
        let locked_until = locked_until.unwrap_or(0);
        if locked_until > now {
            wait = wait.max(locked_until - now);
            continue;
        }
        let (count, oldest): (i64, Option<i64>) = db.query_row(
            "SELECT COUNT(*), MIN(CASE WHEN kind = 'failure' THEN at END) FROM login_attempts
             WHERE key = ?1 AND ((kind = 'failure' AND at > ?2) OR (kind = 'reserved' AND at > ?3))",
            args![key, now - rules.window, now - RESERVATION_TTL],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if count > 0 && !counted.contains(&key) {
            counted.push(key);
        }
        if count >= i64::from(*max) {
            let until = oldest.map_or(RESERVATION_TTL, |at| at + rules.window - now);
            wait = wait.max(until.max(1));
        }
    }
    if wait > 0 {
        let mut audit = Vec::new();
        for key in counted {
            let (refused, audited_at): (i64, i64) = db.query_row(
                "INSERT INTO login_locks (key, refused) VALUES (?1, 1)
                 ON CONFLICT (key) DO UPDATE SET refused = login_locks.refused + 1
                 RETURNING refused, refused_audited_at",
                args![key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if now - audited_at >= AUDIT_EVERY {
                db.execute(
                    "UPDATE login_locks SET refused = 0, refused_audited_at = ?2 WHERE key = ?1",
                    args![key, now],
                )?;
                audit.push((key.clone(), u32::try_from(refused).unwrap_or(u32::MAX)));
            }
        }
        return Ok(Reservation::Refused {
            retry_after: wait as u64,
            audit,
        });
    }
    let mut ids = Vec::with_capacity(keys.len());
    for (key, _) in keys {
        ids.push(db.query_row(
            "INSERT INTO login_attempts (key, kind, at) VALUES (?1, 'reserved', ?2) RETURNING id",
            args![key, now],
            |r| r.get(0),
        )?);
    }
    Ok(Reservation::Granted(ids))
}

/// How a reserved attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A wrong password or code: counted, and the key locked at its limit.
    Failed,
    /// The account's failures are cleared.
    Succeeded,
    /// Neither (the password was right but a code is still needed, or the check never ran).
    Released,
}

/// Settles the places `ids` reserved for `keys` (the same order).
pub fn settle(
    db: &Db<'_>,
    keys: &[(String, u32)],
    ids: &[Id],
    outcome: Outcome,
    rules: Rules,
    now: UnixTime,
) -> StoreResult<()> {
    for id in ids {
        db.execute("DELETE FROM login_attempts WHERE id = ?1", args![id])?;
    }
    for (key, max) in keys {
        // What no rule looks at any more goes: the table holds a window's worth at most.
        db.execute(
            "DELETE FROM login_attempts WHERE key = ?1
             AND ((kind = 'failure' AND at <= ?2) OR (kind = 'reserved' AND at <= ?3))",
            args![key, now - rules.window, now - RESERVATION_TTL],
        )?;
        match outcome {
            Outcome::Failed => {
                db.execute(
                    "INSERT INTO login_attempts (key, kind, at) VALUES (?1, 'failure', ?2)",
                    args![key, now],
                )?;
                let failures: i64 = db.query_row(
                    "SELECT COUNT(*) FROM login_attempts WHERE key = ?1 AND kind = 'failure'",
                    args![key],
                    |r| r.get(0),
                )?;
                if failures >= i64::from(*max) {
                    db.execute(
                        "INSERT INTO login_locks (key, locked_until) VALUES (?1, ?2)
                         ON CONFLICT (key) DO UPDATE SET locked_until = excluded.locked_until",
                        args![key, now + rules.lockout],
                    )?;
                    db.execute(
                        "DELETE FROM login_attempts WHERE key = ?1 AND kind = 'failure'",
                        args![key],
                    )?;
                }
            }
            Outcome::Succeeded if key.starts_with("account:") => {
                db.execute(
                    "DELETE FROM login_attempts WHERE key = ?1 AND kind = 'failure'",
                    args![key],
                )?;
            }
            Outcome::Succeeded | Outcome::Released => {}
        }
    }
    Ok(())
}

/// Drops what no rule looks at any more, for keys no attempt came back to.
pub fn prune(db: &Db<'_>, rules: Rules, now: UnixTime) -> StoreResult<()> {
    db.execute(
        "DELETE FROM login_attempts WHERE at <= ?1",
        args![now - rules.window.max(RESERVATION_TTL)],
    )?;
    db.execute(
        "DELETE FROM login_locks WHERE locked_until <= ?1 AND refused_audited_at <= ?2",
        args![now, now - AUDIT_EVERY],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        window: 900,
        lockout: 300,
    };

    fn keys() -> Vec<(String, u32)> {
        vec![
            ("account:ada@example.com".into(), 3),
            ("address:10.0.0.1".into(), 10),
        ]
    }

    #[test]
    fn reservations_count_until_settled_and_failures_lock_at_the_limit() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write_blocking(|db| -> crate::store::StoreResult<_> {
                let now = 10_000;
                let mut granted = Vec::new();
                for _ in 0..3 {
                    match reserve(db, &keys(), RULES, now)? {
                        Reservation::Granted(ids) => granted.push(ids),
                        other => panic!("{other:?}"),
                    }
                }
                // Three checks in flight for an account that allows three: the fourth waits,
                // and its refusal is audited (for both keys it counted in).
                let Reservation::Refused { audit, .. } = reserve(db, &keys(), RULES, now)? else {
                    panic!("a fourth check in flight");
                };
                assert_eq!(audit.len(), 2);
                // One is released (a code still needed): a place again.
                settle(
                    db,
                    &keys(),
                    &granted.pop().unwrap(),
                    Outcome::Released,
                    RULES,
                    now,
                )?;
                let Reservation::Granted(ids) = reserve(db, &keys(), RULES, now)? else {
                    panic!("no place after a release");
                };
                granted.push(ids);
                for ids in &granted {
                    settle(db, &keys(), ids, Outcome::Failed, RULES, now)?;
                }
                // Three failures: locked for the lockout, whatever the window says.
                let Reservation::Refused { retry_after, audit } =
                    reserve(db, &keys(), RULES, now + 1)?
                else {
                    panic!("not locked");
                };
                assert_eq!(retry_after, 299);
                assert!(audit.is_empty(), "audited at most once a minute");
                let Reservation::Refused { audit, .. } = reserve(db, &keys(), RULES, now + 61)?
                else {
                    panic!("not locked");
                };
                // Both keys' refusals since the last audit (as the in-memory throttle counts).
                assert_eq!(
                    audit,
                    vec![
                        ("account:ada@example.com".to_string(), 2),
                        ("address:10.0.0.1".to_string(), 2)
                    ]
                );
                assert_eq!(
                    locks(db, &keys(), now + 100)?,
                    vec![Lock {
                        key: "account:ada@example.com".into(),
                        left: 200,
                        audited_ago: 39,
                    }]
                );
                assert!(matches!(
                    reserve(db, &keys(), RULES, now + 300)?,
                    Reservation::Granted(_)
                ));
                assert_eq!(locks(db, &keys(), now + 300)?, vec![]);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_success_clears_the_accounts_failures_and_a_dead_servers_reservation_expires() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write_blocking(|db| -> crate::store::StoreResult<_> {
                let now = 10_000;
                for _ in 0..2 {
                    let Reservation::Granted(ids) = reserve(db, &keys(), RULES, now)? else {
                        panic!()
                    };
                    settle(db, &keys(), &ids, Outcome::Failed, RULES, now)?;
                }
                let Reservation::Granted(ids) = reserve(db, &keys(), RULES, now)? else {
                    panic!()
                };
                settle(db, &keys(), &ids, Outcome::Succeeded, RULES, now)?;
                // The account starts over; the address keeps its two failures.
                let failures = |key: &str| -> StoreResult<i64> {
                    db.query_row(
                        "SELECT COUNT(*) FROM login_attempts WHERE key = ?1 AND kind = 'failure'",
                        args![key],
                        |r| r.get(0),
                    )
                };
                assert_eq!(failures("account:ada@example.com")?, 0);
                assert_eq!(failures("address:10.0.0.1")?, 2);
                // Reserved and never settled (the server was killed): counts for a minute.
                for _ in 0..3 {
                    assert!(matches!(
                        reserve(db, &keys(), RULES, now)?,
                        Reservation::Granted(_)
                    ));
                }
                assert!(matches!(
                    reserve(db, &keys(), RULES, now)?,
                    Reservation::Refused { .. }
                ));
                assert!(matches!(
                    reserve(db, &keys(), RULES, now + RESERVATION_TTL + 1)?,
                    Reservation::Granted(_)
                ));
                // A guess at a new account from an address at its limit is refused and leaves
                // nothing of the new account behind.
                let spray = vec![
                    ("account:new@example.com".to_string(), 3),
                    ("address:10.0.0.9".to_string(), 1),
                ];
                let Reservation::Granted(ids) = reserve(db, &spray, RULES, now)? else {
                    panic!()
                };
                settle(db, &spray, &ids, Outcome::Failed, RULES, now)?;
                let other = vec![
                    spray[1].clone(),
                    ("account:other@example.com".to_string(), 3),
                ];
                assert!(matches!(
                    reserve(db, &other, RULES, now + 1)?,
                    Reservation::Refused { .. }
                ));
                let rows: i64 = db.query_row(
                    "SELECT COUNT(*) FROM login_locks WHERE key = 'account:other@example.com'",
                    args![],
                    |r| r.get(0),
                )?;
                assert_eq!(rows, 0);
                prune(db, RULES, now + 10_000)?;
                let left: i64 =
                    db.query_row("SELECT COUNT(*) FROM login_attempts", args![], |r| r.get(0))?;
                assert_eq!(left, 0);
                Ok(())
            })
            .unwrap();
    }
}
