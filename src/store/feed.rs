//! The change feed (`changes`, `feed_head`) and the servers that follow it (`servers`): SQL
//! only, and on PostgreSQL the connection that LISTENs for new entries. What an entry means to
//! the live state is decided above, in `ops::feed`.

use std::time::Duration;

use super::{args, Db, Dialect, Row, StoreError, StoreResult};
use crate::domain::{now, Id};

/// What kind of object a change touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    User,
    Session,
    ApiKey,
    Organization,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Session => "session",
            Kind::ApiKey => "api_key",
            Kind::Organization => "organization",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        Some(match text {
            "user" => Kind::User,
            "session" => Kind::Session,
            "api_key" => Kind::ApiKey,
            "organization" => Kind::Organization,
            _ => return None,
        })
    }
}

/// One entry of the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub kind: Kind,
    pub object_id: Id,
}

/// Appends an entry in the caller's transaction and returns its sequence number. The update of
/// `feed_head` takes that row's lock until commit, so sequence numbers commit in order.
pub fn append(db: &Db<'_>, kind: Kind, object_id: Id) -> StoreResult<i64> {
    let seq: i64 = db.query_row(
        "UPDATE feed_head SET seq = seq + 1 WHERE id = 1 RETURNING seq",
        args![],
        |row| row.get(0),
    )?;
    db.execute(
        "INSERT INTO changes (seq, kind, object_id, at) VALUES (?1, ?2, ?3, ?4)",
        args![seq, kind.as_str(), object_id, now()],
    )?;
    if db.dialect() == Dialect::Postgres {
        // The wake-up of the servers that follow the feed, sent at commit (once per
        // transaction: PostgreSQL folds equal notifications). The feed stays the truth.
        db.execute("NOTIFY claribi_feed", args![])?;
    }
    Ok(seq)
}

/// Moves the head on to at least `seq`: after a restore, the positions of changes made
/// after the backup (in the journal) are never given out again.
pub fn advance_to(db: &Db<'_>, seq: i64) -> StoreResult<()> {
    db.execute(
        "UPDATE feed_head SET seq = ?1 WHERE id = 1 AND seq < ?1",
        args![seq],
    )?;
    Ok(())
}

/// The sequence number of the last committed change (0 on a new database).
pub fn head(db: &Db<'_>) -> StoreResult<i64> {
    db.query_row("SELECT seq FROM feed_head WHERE id = 1", args![], |row| {
        row.get(0)
    })
}

/// Entries after `after`, oldest first, at most `limit`.
pub fn since(db: &Db<'_>, after: i64, limit: u32) -> StoreResult<Vec<Change>> {
    db.query_map(
        "SELECT seq, kind, object_id FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        args![after, limit],
        |row| {
            let (seq, kind): (i64, String) = (row.get(0)?, row.get(1)?);
            let kind = Kind::parse(&kind).ok_or_else(|| {
                StoreError::Database(format!("change {seq} has unknown kind {kind:?}"))
            })?;
            Ok(Change {
                seq,
                kind,
                object_id: row.get(2)?,
            })
        },
    )
}

/// Drops entries older than `before` (unix seconds) that every server named in `servers`
/// has applied. A server that finds its next entry gone lists everything again.
pub fn prune(db: &Db<'_>, before: i64) -> StoreResult<usize> {
    Ok(db.execute(
        "DELETE FROM changes WHERE at < ?1
           AND seq <= COALESCE((SELECT MIN(applied_seq) FROM servers), seq)",
        args![before],
    )? as usize)
}

/// A server following the feed, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub address: String,
    pub heartbeat_ms: i64,
    pub applied_seq: i64,
}

fn server_row(row: &Row<'_>) -> StoreResult<Server> {
    Ok(Server {
        id: row.get(0)?,
        host: row.get(1)?,
        pid: row.get(2)?,
        address: row.get(3)?,
        heartbeat_ms: row.get(4)?,
        applied_seq: row.get(5)?,
    })
}

/// The clock heartbeats are written and read by, in unix milliseconds: on SQLite (one
/// machine) this machine's, on PostgreSQL the database's, so that servers on several machines
/// compare leases on one clock whatever their own clocks say.
pub fn clock_ms(db: &Db<'_>) -> StoreResult<i64> {
    match db.dialect() {
        Dialect::Sqlite => Ok(crate::domain::now_ms()),
        Dialect::Postgres => db.query_row(
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            args![],
            |row| row.get(0),
        ),
    }
}

pub fn register(db: &Db<'_>, server: &Server) -> StoreResult<()> {
    db.execute(
        "INSERT INTO servers (id, host, pid, address, started_at, heartbeat_ms, applied_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms,
                                        applied_seq = excluded.applied_seq",
        args![
            server.id,
            server.host,
            server.pid,
            server.address,
            now(),
            server.heartbeat_ms,
            server.applied_seq
        ],
    )?;
    Ok(())
}

/// On PostgreSQL: a connection of its own that LISTENs for feed entries and calls `wake` for
/// each (and once after every connect: entries committed while it was away), on a thread of
/// its own for the life of the server; reconnects after a second when the connection is lost
/// (the follower's polls go on meanwhile).
pub fn listen(url: String, wake: impl Fn() + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("claribi-listen".into())
        .spawn(move || loop {
            let mut config = match url.parse::<postgres::Config>() {
                Ok(config) => config,
                Err(_) => return,
            };
            config.connect_timeout(Duration::from_secs(5));
            config.application_name("claribi listen");
            if let Ok(mut client) = config.connect(postgres::NoTls) {
                if client.batch_execute("LISTEN claribi_feed").is_ok() {
                    // Entries committed while this connection was away are read by the poll.
                    wake();
                    while !client.is_closed() {
                        let mut notifications = client.notifications();
                        let mut waiting = notifications.timeout_iter(Duration::from_secs(5));
                        match postgres::fallible_iterator::FallibleIterator::next(&mut waiting) {
                            Ok(Some(_)) => wake(),
                            Ok(None) => {}
                            Err(_) => break,
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "starting the feed listener failed; the feed is polled");
    }
}

/// Publishes what the server has applied. `false` when its row is gone (pruned as dead).
pub fn heartbeat(db: &Db<'_>, id: &str, applied_seq: i64, at_ms: i64) -> StoreResult<bool> {
    // Never the same value twice (two beats in one millisecond, a step of the clock back):
    // the other servers judge this one by whether the value changes.
    let changed = db.execute(
        "UPDATE servers SET heartbeat_ms = CASE WHEN heartbeat_ms >= ?2 THEN heartbeat_ms + 1
                                            ELSE ?2 END,
                            applied_seq = ?3
         WHERE id = ?1",
        args![id, at_ms, applied_seq],
    )?;
    Ok(changed == 1)
}

pub fn unregister(db: &Db<'_>, id: &str) -> StoreResult<()> {
    db.execute("DELETE FROM servers WHERE id = ?1", args![id])?;
    Ok(())
}

/// Servers whose last heartbeat is at or after `since_ms`, but `except`.
/// Every registered server but `except`, however long silent: whether a server still answers
/// is judged by watching its heartbeat change (`ops::feed::Peers`), never by a clock.
pub fn servers_except(db: &Db<'_>, except: &str) -> StoreResult<Vec<Server>> {
    db.query_map(
        "SELECT id, host, pid, address, heartbeat_ms, applied_seq FROM servers
         WHERE id <> ?1 ORDER BY id",
        args![except],
        server_row,
    )
}

/// Forgets servers silent since before `before_ms` (killed ones leave their row behind).
pub fn prune_servers(db: &Db<'_>, before_ms: i64) -> StoreResult<usize> {
    Ok(db.execute(
        "DELETE FROM servers WHERE heartbeat_ms < ?1",
        args![before_ms],
    )? as usize)
}

/// A server's row (tests).
#[cfg(test)]
pub fn server(db: &Db<'_>, id: &str) -> StoreResult<Option<Server>> {
    db.query_opt(
        "SELECT id, host, pid, address, heartbeat_ms, applied_seq FROM servers WHERE id = ?1",
        args![id],
        server_row,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_temp;

    #[test]
    fn entries_are_numbered_in_commit_order_and_read_back_in_order() {
        let (_dir, store) = open_temp();
        let first = store
            .write_blocking(|tx| append(tx, Kind::ApiKey, 7))
            .unwrap();
        let second = store
            .write_blocking(|tx| {
                append(tx, Kind::User, 3)?;
                append(tx, Kind::Session, 9)
            })
            .unwrap();
        assert_eq!((first, second), (1, 3));
        let read = store.read_blocking(|c| since(c, 1, 10)).unwrap();
        assert_eq!(
            read,
            vec![
                Change {
                    seq: 2,
                    kind: Kind::User,
                    object_id: 3
                },
                Change {
                    seq: 3,
                    kind: Kind::Session,
                    object_id: 9
                },
            ]
        );
        assert_eq!(store.read_blocking(head).unwrap(), 3);
    }

    #[test]
    fn a_rolled_back_change_leaves_no_entry_and_no_gap() {
        let (_dir, store) = open_temp();
        let failed: StoreResult<()> = store.write_blocking(|tx| {
            append(tx, Kind::ApiKey, 1)?;
            Err(StoreError::NotFound)
        });
        assert!(failed.is_err());
        let seq = store
            .write_blocking(|tx| append(tx, Kind::ApiKey, 2))
            .unwrap();
        assert_eq!(seq, 1);
    }

    #[test]
    fn servers_are_listed_however_old_their_heartbeat_and_pruned_after_it() {
        let (_dir, store) = open_temp();
        let row = |id: &str, at: i64| Server {
            id: id.into(),
            host: "h".into(),
            pid: 1,
            address: "127.0.0.1:1".into(),
            heartbeat_ms: at,
            applied_seq: 0,
        };
        store
            .write_blocking(|tx| {
                register(tx, &row("a", 1_000))?;
                register(tx, &row("b", 5_000))?;
                register(tx, &row("me", 5_000))
            })
            .unwrap();
        let others = store.read_blocking(|c| servers_except(c, "me")).unwrap();
        assert_eq!(
            others.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(store
            .write_blocking(|tx| heartbeat(tx, "a", 4, 6_000))
            .unwrap());
        assert_eq!(
            store
                .read_blocking(|c| server(c, "a"))
                .unwrap()
                .unwrap()
                .applied_seq,
            4
        );
        assert_eq!(
            store.write_blocking(|tx| prune_servers(tx, 5_500)).unwrap(),
            2
        );
    }
}
