//! Following the change feed: the states of changed objects for the live state, the listing
//! at start, the follower every server runs (it polls the feed head, applies what is new one
//! object at a time and publishes what it has applied with a heartbeat), and the wait of a
//! change for the other servers' confirmations.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::auth::api_key::parse_hash_hex;
use crate::auth::live::{KeyState, SessionState, Update, UserState};
use crate::domain::Id;
use crate::error::ApiError;
use crate::ops::AppState;
use crate::store::feed::{self, Kind};
use crate::store::{api_keys, organizations, sessions, users, Db, StoreError, StoreResult};

/// How often a server looks at the feed head. A poll is one indexed read of one row; 20 ms
/// keeps the confirmation of a change from the shell or another server to a few tens of
/// milliseconds (measured in docs/benchmarks.md) at a cost too small to see under load.
pub const POLL: Duration = Duration::from_millis(20);

/// On PostgreSQL a committed feed entry wakes every follower at once (LISTEN/NOTIFY); the
/// poll is what reads the feed when a notification is lost (a dropped listening connection),
/// and what keeps the lease when nothing changes. The sequence number stays the truth.
const POSTGRES_POLL: Duration = Duration::from_millis(250);

/// A server publishes its position at least this often, and at once when it has moved.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// How often a waiting change looks at what the other servers have applied.
const CONFIRM_POLL: Duration = Duration::from_millis(5);

/// Entries read at most per poll; a longer backlog is read over several polls.
const BATCH: u32 = 10_000;

/// Feed entries older than this are pruned once every server has applied them.
const KEEP_CHANGES: i64 = 7 * 86_400;

/// Milliseconds on this process's monotonic clock: what the server's own lease is kept in,
/// so that a step of the wall clock neither lengthens nor ends it.
pub fn mono_ms() -> i64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as i64
}

fn user_state(u: users::User) -> UserState {
    UserState {
        id: u.id,
        organization_id: u.organization_id,
        email: u.email,
        name: u.name,
        role: u.role,
        is_active: u.is_active,
        mfa_enabled: u.mfa_enabled,
        password_temporary: u.password_temporary,
        service_account: u.service_account,
    }
}

fn session_state(s: sessions::Session) -> SessionState {
    SessionState {
        id: s.id,
        user_id: s.user_id,
        expires_at: s.expires_at,
        last_seen_at: s.last_seen_at,
        revoked: s.revoked_at.is_some(),
        // Sessions made before sessions had secrets hold ''.
        secret: crate::auth::token::parse_session_secret(&s.secret),
        mfa_enrollment_required: s.mfa_enrollment_required,
    }
}

fn key_state(k: api_keys::ApiKey) -> StoreResult<KeyState> {
    let hash = parse_hash_hex(&k.key_hash)
        .ok_or_else(|| StoreError::Database(format!("API key {} has a malformed hash", k.id)))?;
    Ok(KeyState {
        id: k.id,
        user_id: k.user_id,
        organization_id: k.organization_id,
        name: k.name,
        prefix: k.prefix,
        hash,
        scopes: k
            .scopes
            .as_deref()
            .map(crate::auth::permission::parse_scopes),
        created_at: k.created_at,
        expires_at: k.expires_at,
        revoked: k.revoked_at.is_some(),
        last_used_at: k.last_used_at,
        ever_used: k.usage_count > 0,
        replaced: k.replaced_by.is_some(),
        allowed_ips: k.allowed_ips.as_deref().map(super::keys::parse_allowed_ips),
        canary: k.canary,
    })
}

fn found<T>(result: StoreResult<T>) -> StoreResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The current state of one object, for the live state.
pub fn read_object(conn: &Db<'_>, kind: Kind, id: Id) -> StoreResult<Option<Update>> {
    Ok(match kind {
        Kind::User => found(users::get(conn, id))?.map(|u| Update::User(user_state(u))),
        Kind::Session => found(sessions::get(conn, id))?.map(|s| Update::Session(session_state(s))),
        Kind::ApiKey => match found(api_keys::get(conn, id))? {
            Some(k) => Some(Update::Key(key_state(k)?)),
            None => None,
        },
        Kind::Organization => found(organizations::get(conn, id))?.map(|o| Update::Organization {
            id: o.id,
            name: o.name,
        }),
    })
}

/// Everything the live state mirrors, and the feed position it was read at (one snapshot).
pub fn list_all(conn: &Db<'_>) -> StoreResult<(i64, Vec<Update>)> {
    let head = feed::head(conn)?;
    let mut updates: Vec<Update> = Vec::new();
    updates.extend(
        organizations::names(conn)?
            .into_iter()
            .map(|(id, name)| Update::Organization { id, name }),
    );
    updates.extend(
        users::all(conn)?
            .into_iter()
            .map(|u| Update::User(user_state(u))),
    );
    updates.extend(
        sessions::unexpired(conn)?
            .into_iter()
            .map(|s| Update::Session(session_state(s))),
    );
    for key in api_keys::all(conn)? {
        updates.push(Update::Key(key_state(key)?));
    }
    Ok((head, updates))
}

/// What one poll found: the states to apply and the position they bring the server to.
struct Polled {
    seq: i64,
    updates: Vec<Update>,
}

fn poll(conn: &Db<'_>, applied: i64) -> StoreResult<Polled> {
    let head = feed::head(conn)?;
    if head < applied {
        // The database lost changes this server applied: a failover to a replica that lacked
        // the last commits, or a restore under a running server. Positions would be given
        // out again and the changes made with them missed: this server fails closed (no
        // heartbeat, no lease) until it is restarted, which lists everything afresh.
        return Err(StoreError::Database(format!(
            "the change feed went back from position {applied} to {head} (a failover to a replica without the last commits, or a restore): restart this server"
        )));
    }
    if head == applied {
        return Ok(Polled {
            seq: applied,
            updates: Vec::new(),
        });
    }
    let changes = feed::since(conn, applied, BATCH)?;
    if changes.first().is_none_or(|c| c.seq != applied + 1) {
        // The entries after our position were pruned (a server stopped for days): list
        // everything again. States are stamped, so this undoes nothing newer.
        let (seq, updates) = list_all(conn)?;
        return Ok(Polled { seq, updates });
    }
    let seq = changes.last().map_or(applied, |c| c.seq);
    let objects: BTreeSet<(Kind, Id)> = changes.iter().map(|c| (c.kind, c.object_id)).collect();
    let mut updates = Vec::with_capacity(objects.len());
    for (kind, id) in objects {
        updates.extend(read_object(conn, kind, id)?);
    }
    Ok(Polled { seq, updates })
}

/// What `start` leaves for the follower.
pub struct Started {
    /// This server's row as published.
    pub me: feed::Server,
    /// When, on this server's monotonic clock, its published heartbeats began to be written:
    /// no earlier than the latest one landed (see `follow`).
    pub beat_began: i64,
}

/// At start: the whole live state from one snapshot, and this server's row in `servers`.
/// Blocking.
pub fn start(app: &crate::ops::App, address: &str) -> StoreResult<Started> {
    let mut me = feed::Server {
        id: app.server_id.clone(),
        host: host_name(),
        pid: i64::from(std::process::id()),
        address: address.to_string(),
        heartbeat_ms: 0,
        applied_seq: 0,
    };
    // The lease runs from before the registration: it ends no later than a lease after the
    // other servers could first see the registration's heartbeat.
    let started = mono_ms();
    // Registered before the listing, at position 0: a change committed while this server
    // lists waits for it like for any other server, instead of missing it.
    me.heartbeat_ms = app.store.write_blocking(|tx| -> StoreResult<_> {
        let at = feed::clock_ms(tx)?;
        // Rows of servers silent for a day are from servers that were killed.
        feed::prune_servers(tx, at - 86_400_000)?;
        feed::register(
            tx,
            &feed::Server {
                heartbeat_ms: at,
                ..me.clone()
            },
        )?;
        Ok(at)
    })?;
    // The other servers' heartbeats are watched from now on: a server that was killed and left
    // its row behind is waited for at most until a lease from now, not a lease from the first
    // change confirmed.
    let me_id = me.id.clone();
    let others = app
        .store
        .read_blocking(|c| feed::servers_except(c, &me_id))?;
    app.peers.watch(others, mono_ms());
    let (seq, updates) = app.store.read_blocking(list_all)?;
    for update in updates {
        app.auth.live.apply(update, seq);
    }
    me.applied_seq = seq;
    let beat_began = mono_ms();
    me.heartbeat_ms = app.store.write_blocking(|tx| -> StoreResult<_> {
        let at = feed::clock_ms(tx)?;
        feed::heartbeat(tx, &me.id, seq, at)?;
        Ok(at)
    })?;
    app.auth
        .live
        .current_until(started + app.config.cluster.lease.0.as_millis() as i64);
    Ok(Started { me, beat_began })
}

/// At a clean stop: this server no longer counts among those that must confirm.
pub fn stop(app: &crate::ops::App) {
    let id = app.server_id.clone();
    let mut stopped = app.stopped.lock().unwrap_or_else(|e| e.into_inner());
    *stopped = true;
    if let Err(e) = app.store.write_blocking(|tx| feed::unregister(tx, &id)) {
        tracing::warn!(error = %e, "removing this server from the servers table failed");
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The other servers' heartbeats as this server has watched them: for each, the value last
/// read and when (on this server's monotonic clock) it was first read. A server's lease is
/// renewed only by a heartbeat that lands (see `follow`), so one whose value has stood still
/// for a lease of watching has stopped answering from its live state: judged on one
/// monotonic clock, no step of any wall clock shortens the wait for a stalled server. Holds
/// the servers of the latest listing only.
#[derive(Default)]
pub struct Peers {
    seen: std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>,
}

impl Peers {
    /// Starts watching `servers`, as read by a read that answered by `read_by`.
    pub fn watch(&self, servers: Vec<feed::Server>, read_by: i64) {
        self.still_answering(servers, 0, (read_by, read_by), 0);
    }

    /// Of `servers` (every other registered server, read by a read asked for at `asked` that
    /// answered by `answered`), those that have not applied `seq` and may still be answering.
    /// A new value is stamped with `answered` (it landed before then), and a value's age is
    /// judged at `asked` (the read saw every heartbeat that landed before then): both on the
    /// safe side.
    pub fn still_answering(
        &self,
        servers: Vec<feed::Server>,
        seq: i64,
        (asked, answered): (i64, i64),
        lease_ms: i64,
    ) -> Vec<feed::Server> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|id, _| servers.iter().any(|s| &s.id == id));
        servers
            .into_iter()
            .filter(|s| {
                let first_read = match seen.get_mut(&s.id) {
                    Some((beat, at)) if *beat == s.heartbeat_ms => *at,
                    Some(entry) => {
                        *entry = (s.heartbeat_ms, answered);
                        answered
                    }
                    None => {
                        seen.insert(s.id.clone(), (s.heartbeat_ms, answered));
                        answered
                    }
                };
                s.applied_seq < seq && asked - first_read < lease_ms
            })
            .collect()
    }
}

/// Reads of the feed made on behalf of requests while the lease has run out (see
/// `ensure_current`): one at a time, each shared by every request that arrived before it
/// started, whether it succeeded or failed.
#[derive(Default)]
pub struct CatchUp {
    /// Held while one read is under way.
    reading: tokio::sync::Mutex<()>,
    /// When the latest read started, and whether it read the feed to its head.
    last: std::sync::Mutex<Option<(Instant, bool)>>,
    /// The latest read of the feed (the follower's or a request's) failed: the database is
    /// out of reach. Past the lease, requests are then refused at once instead of each
    /// waiting for a connection that has just failed; the follower's next poll, every
    /// `POSTGRES_POLL`, is the probe that finds the way back and clears it.
    down: std::sync::atomic::AtomicBool,
}

impl CatchUp {
    /// Whether the latest read of the feed failed (see `down`).
    pub fn database_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::Acquire)
    }

    fn read_succeeded(&self, ok: bool) {
        let was_down = self.down.swap(!ok, std::sync::atomic::Ordering::AcqRel);
        if was_down && ok {
            tracing::info!("the database answers again");
        }
    }
}

/// Brings one object's state, read at feed position `seq` (from the feed, or by this server's
/// own change), into this server. With several servers the login throttle here holds only
/// copies of the locks the database holds (`ops::throttle`), and a user's change may be the
/// end of their lockout (`accounts::unlock` clears the database's counts): the copy goes with
/// it, and the account's next attempt reads the database again.
pub(crate) fn apply(app: &AppState, update: Update, seq: i64) {
    if let Update::User(user) = &update {
        if app.store.dialect() == crate::store::Dialect::Postgres {
            app.auth.throttle.unlock_account(&user.email);
        }
    }
    app.auth.live.apply(update, seq);
}

/// Makes sure this server's live state may answer for a request that arrived at `arrived`.
///
/// Within the lease (the normal case) that costs one atomic load. Past it the server could not
/// publish its position (the database refuses writes: locked, read-only, full) or could not
/// read the feed. It then reads the feed up to its head itself before it answers: a read that
/// started after the request arrived sees every change whose answer was sent before the
/// request, so the answer from the live state is as current as the promise of 9.1 needs,
/// whatever the other servers think of this one's lease. Only when that read fails does the
/// server fail closed (`503`): it cannot know what it missed.
pub async fn ensure_current(app: &AppState, arrived: Instant) -> Result<(), ApiError> {
    if app.auth.live.is_current(mono_ms()) {
        return Ok(());
    }
    if app.catch_up.database_down() {
        return Err(ApiError::NotCurrent);
    }
    let shared = |catch_up: &CatchUp| {
        catch_up
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .filter(|(started, _)| *started >= arrived)
            .map(|(_, ok)| ok)
    };
    let _reading = app.catch_up.reading.lock().await;
    // A read that started after this request arrived answers for it, either way.
    match shared(&app.catch_up) {
        Some(true) => return Ok(()),
        Some(false) => return Err(ApiError::NotCurrent),
        None => {}
    }
    let started = Instant::now();
    let (store, reader) = (app.store.clone(), app.clone());
    let read = crate::store::blocking(move || {
        // One snapshot, polled until its head: a backlog longer than a batch is read whole.
        store.read_blocking(|c| {
            let live = &reader.auth.live;
            loop {
                let applied = live.applied();
                let polled = poll(c, applied)?;
                let done = polled.seq == applied;
                for update in polled.updates {
                    apply(&reader, update, polled.seq);
                }
                live.advance(polled.seq);
                if done {
                    return Ok(());
                }
            }
        })
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))
    .and_then(|r| r);
    *app.catch_up.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((started, read.is_ok()));
    app.catch_up.read_succeeded(read.is_ok());
    read.map_err(|e| {
        tracing::warn!(error = %e, "past the lease and the change feed cannot be read; refusing");
        ApiError::NotCurrent
    })
}

/// Runs for the life of the server: polls the feed, applies what is new, heartbeats, and
/// keeps the live state's lease (past it, authenticated requests answer `503`).
///
/// The lease is renewed only by a poll whose position was then published: it runs until the
/// start of that poll plus `cluster.lease`. A server that reads but cannot publish therefore
/// stops answering no later than another server stops waiting for it (see `confirm`).
pub async fn follow(app: AppState, started: Started) {
    let Started { me, beat_began } = started;
    app.auth.live.advance(me.applied_seq);
    let lease_ms = app.config.cluster.lease.0.as_millis() as i64;
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let every = if app.config.database.is_postgres() {
        let woken = wake.clone();
        crate::store::feed::listen(app.config.database.url.clone(), move || woken.notify_one());
        POSTGRES_POLL
    } else {
        POLL
    };
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_beat = Instant::now();
    let mut published = me.applied_seq;
    // No earlier than the latest published heartbeat landed, on this server's clock.
    let mut last_beat_began = beat_began;
    let mut failing = false;
    let mut last_prune = Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = wake.notified() => {}
        }
        let started = mono_ms();
        let seq = match read_feed(&app).await {
            Ok(seq) => seq,
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, "reading the change feed failed; retrying");
                    failing = true;
                }
                continue;
            }
        };
        if failing {
            tracing::info!("reading the change feed works again");
            failing = false;
        }
        let moved = seq != published;
        if moved || last_beat.elapsed() >= HEARTBEAT {
            let beating = app.clone();
            let mut row = me.clone();
            row.applied_seq = seq;
            let began = mono_ms();
            let beat = crate::store::blocking(move || {
                // A stop that came first removed this server for good: nothing to write.
                let stopped = beating.stopped.lock().unwrap_or_else(|e| e.into_inner());
                if *stopped {
                    return Ok(());
                }
                // Only this server's row: no need to wait for the writers' lock.
                beating
                    .store
                    .write_own_rows_blocking(|tx| -> StoreResult<()> {
                        // The value only has to differ from the last: the other servers judge
                        // this one by whether its heartbeat changes (see `confirm`). The
                        // database's clock also tells an operator when it last beat.
                        row.heartbeat_ms = feed::clock_ms(tx)?;
                        if !feed::heartbeat(tx, &row.id, row.applied_seq, row.heartbeat_ms)? {
                            // Pruned as dead while paused: come back.
                            tracing::warn!("this server's row was gone; registering again");
                            feed::register(tx, &row)?;
                        }
                        Ok(())
                    })
            })
            .await;
            match beat {
                Ok(Ok(())) => {
                    let landed_by = mono_ms();
                    last_beat = Instant::now();
                    published = seq;
                    // Current as of the start of the poll whose position is now published, if
                    // this beat landed within a lease of the previous one (both bounds on this
                    // server's clock: the previous landed after its write began, this one
                    // before its write returned), so that no other server can have watched
                    // the previous value stand still for a lease in between. Otherwise the
                    // others may have stopped waiting for this one and answered changes that
                    // poll did not see: the next poll, which starts after this beat, renews
                    // the lease (requests read the feed themselves until then).
                    if landed_by - last_beat_began < lease_ms {
                        app.auth.live.current_until(started + lease_ms);
                    }
                    last_beat_began = began;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "publishing the applied position failed"),
                Err(e) => tracing::warn!(error = %e, "publishing the applied position failed"),
            }
        }
        if last_prune.elapsed() >= Duration::from_secs(3600) {
            last_prune = Instant::now();
            let before = crate::domain::now() - KEEP_CHANGES;
            if let Err(e) = app.store.write(move |tx| feed::prune(tx, before)).await {
                tracing::warn!(error = %e, "pruning the change feed failed");
            }
        }
    }
}

/// The follower's poll: reads the feed from where this server is (requests may have read it
/// further themselves, see `ensure_current`), applies what is new to the live state, and
/// answers the position read. While the database is out of reach this is also the probe
/// that finds it back (see `CatchUp::down`).
pub(crate) async fn read_feed(app: &AppState) -> StoreResult<i64> {
    let applied = app.auth.live.applied();
    let store = app.store.clone();
    let polled = crate::store::blocking(move || store.read_blocking(|c| poll(c, applied)))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))
        .and_then(|r| r);
    app.catch_up.read_succeeded(polled.is_ok());
    let polled = polled?;
    for update in polled.updates {
        apply(app, update, polled.seq);
    }
    app.auth.live.advance(polled.seq);
    Ok(polled.seq)
}

/// Waits until every other server with a live lease has applied `seq`, up to `timeout`;
/// a server whose heartbeat is older than the lease no longer counts (it stops answering
/// authenticated requests itself). Past `timeout`, names the servers that did not confirm.
///
/// Why waiting a lease is enough: a server's lease runs from the start of its last published
/// poll. Any poll that started after `seq` committed reads it, so a server that never
/// publishes `seq` has a lease that started before the commit and ends within `lease` of it.
pub async fn confirm(app: &AppState, seq: i64, timeout: Duration) -> Result<(), ApiError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let lease_ms = app.config.cluster.lease.0.as_millis() as i64;
    loop {
        let me = app.server_id.clone();
        let asked = mono_ms();
        let servers = app
            .store
            .read(move |c| feed::servers_except(c, &me))
            .await?;
        let pending = app
            .peers
            .still_answering(servers, seq, (asked, mono_ms()), lease_ms);
        if pending.is_empty() {
            tracing::debug!(
                seq,
                waited_us = started.elapsed().as_micros() as u64,
                "change confirmed by every server following the feed"
            );
            return Ok(());
        }
        if Instant::now() >= deadline {
            let names: Vec<String> = pending
                .iter()
                .map(|s| {
                    format!(
                        "{} (pid {} on {}, {}, at change {} of {seq})",
                        s.id, s.pid, s.host, s.address, s.applied_seq
                    )
                })
                .collect();
            return Err(ApiError::NotConfirmed {
                servers: names.join(", "),
                waited: timeout,
            });
        }
        tokio::time::sleep(CONFIRM_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(id: &str, heartbeat_ms: i64, applied_seq: i64) -> feed::Server {
        feed::Server {
            id: id.into(),
            host: "h".into(),
            pid: 1,
            address: "127.0.0.1:1".into(),
            heartbeat_ms,
            applied_seq,
        }
    }

    fn ids(servers: Vec<feed::Server>) -> Vec<String> {
        servers.into_iter().map(|s| s.id).collect()
    }

    #[test]
    fn a_server_is_waited_for_until_its_heartbeat_stands_still_a_lease_on_this_clock() {
        let peers = Peers::default();
        let lease = 3_000;
        // "b" beat long ago and "c" far in the future by the database's clock: neither value
        // says anything until it has been watched.
        let listing = |b_beat, c_beat| {
            vec![
                server("b", b_beat, 4),
                server("c", c_beat, 4),
                server("d", 0, 9),
            ]
        };
        assert_eq!(
            ids(peers.still_answering(listing(1, i64::MAX), 5, (10_000, 10_000), lease)),
            ["b", "c"]
        );
        // "c" keeps beating (its value changes, whatever the clock did); "b" stands still.
        assert_eq!(
            ids(peers.still_answering(listing(1, 7), 5, (12_999, 12_999), lease)),
            ["b", "c"]
        );
        assert_eq!(
            ids(peers.still_answering(listing(1, 8), 5, (13_000, 13_000), lease)),
            ["c"]
        );
        // A server that beats again is waited for again; one that applied the change is not.
        assert_eq!(
            ids(peers.still_answering(listing(2, 8), 5, (13_001, 13_001), lease)),
            ["b", "c"]
        );
        assert!(peers
            .still_answering(listing(2, 8), 4, (13_002, 13_002), lease)
            .is_empty());
        // A slow read: a value is stamped when the read answered and judged when it was asked,
        // so a read that took long never makes a heartbeat look older than it is.
        let slow = Peers::default();
        assert_eq!(
            ids(slow.still_answering(vec![server("e", 1, 0)], 5, (10_000, 10_500), lease)),
            ["e"]
        );
        assert_eq!(
            ids(slow.still_answering(vec![server("e", 1, 0)], 5, (13_400, 13_600), lease)),
            ["e"]
        );
        assert!(slow
            .still_answering(vec![server("e", 1, 0)], 5, (13_500, 13_501), lease)
            .is_empty());
        // Servers no longer listed are forgotten.
        peers.still_answering(vec![server("b", 2, 4)], 5, (13_003, 13_003), lease);
        assert_eq!(peers.seen.lock().unwrap().keys().collect::<Vec<_>>(), ["b"]);
    }
}
