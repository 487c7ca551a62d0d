//! The audit log streamed to a SIEM (contract 10.5): every entry, as one RFC 5424 message
//! (`rfc5424`), in id order, at least once, to `audit.syslog_url`.
//!
//! - **Where it stands** is in the database (`store::audit_stream`): the last entry the receiver
//!   accepted. A restart, or a receiver that was down, resumes after it. Entries wait in the
//!   database; in memory are only the batch being written (`BATCH` entries) and a mark per
//!   batch not yet confirmed (at most `WINDOW` entries ahead of the last confirmation).
//! - **Accepted** means: written, acknowledged by the receiver's TCP, and the connection still
//!   open `SETTLE` later (`transport`). A connection that breaks or that the receiver closes
//!   sends again from the last confirmed entry: the receiver may see an entry twice (its `id`
//!   tells), never a gap. UDP confirms nothing: an entry sent is counted as accepted.
//! - **One server sends at a time**, the one that holds the stream's lease (`cluster.lease`
//!   long, renewed every second or quarter lease); it stops sending half a lease after its
//!   last renewal, and another takes over once the lease has run out, or at once after a
//!   clean stop.
//! - It runs on a thread of its own with blocking I/O: nothing of it runs on the async workers
//!   or holds a request.

pub mod rfc5424;
mod transport;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, SyslogUrl};
use crate::domain::Id;
use crate::store::{audit, audit_stream, Store};
use transport::Connection;

/// Entries read from the database and written per round.
const BATCH: u32 = 500;
/// Entries written but not confirmed at most: past it, the stream waits for confirmations.
const WINDOW: Id = 20_000;
/// How long a connection must stay open after the receiver's TCP acknowledged a write before
/// the entries written are counted as accepted.
const SETTLE: Duration = Duration::from_millis(500);
/// How often an idle stream looks for new entries.
const POLL: Duration = Duration::from_millis(200);
/// How often the lease is renewed and the lag read, at most (a quarter of the lease when
/// that is shorter: the holder stops sending half a lease after its last renewal).
const RENEW: Duration = Duration::from_secs(1);
/// The largest message sent over UDP (an IPv4 datagram's payload at most).
const MAX_DATAGRAM: usize = 65_507;
/// A receiver that acknowledges nothing of a write for this long is taken for gone (a peer
/// that vanished without a word leaves writes sitting in the send queue).
const ACK_DEADLINE: Duration = Duration::from_secs(30);
/// The most an unreachable receiver is waited for between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What the stream is doing, for `/readyz` and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// `audit.syslog_url` is empty.
    Off = 0,
    Starting = 1,
    /// This server sends.
    Sending = 2,
    /// Another server holds the stream.
    Standby = 3,
    /// This server holds the stream but cannot reach the receiver (or the database).
    Unreachable = 4,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Off => "off",
            State::Starting => "starting",
            State::Sending => "sending",
            State::Standby => "standby",
            State::Unreachable => "unreachable",
        }
    }
}

/// Shared between the stream's thread and whoever reports on it.
#[derive(Debug, Default)]
pub struct Status {
    state: AtomicU8,
    /// Entries of the log after the last one the receiver accepted, as last read.
    lag: AtomicI64,
}

impl Status {
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            1 => State::Starting,
            2 => State::Sending,
            3 => State::Standby,
            4 => State::Unreachable,
            _ => State::Off,
        }
    }

    /// The lag in entries, `None` when the stream is off.
    pub fn lag(&self) -> Option<i64> {
        (self.state() != State::Off).then(|| self.lag.load(Ordering::Relaxed))
    }

    fn set(&self, state: State) {
        self.state.store(state as u8, Ordering::Relaxed);
    }
}

/// What the stream needs, read from the configuration once at start.
pub struct Settings {
    url: SyslogUrl,
    tls: Option<Arc<rustls::ClientConfig>>,
    lease: Duration,
    server_id: String,
}

impl Settings {
    /// `None` when `audit.syslog_url` is empty; an error when the CA file cannot be used.
    pub fn from_config(config: &Config, server_id: &str) -> Result<Option<Settings>, String> {
        let Some(url) = config.audit.syslog_url.clone() else {
            return Ok(None);
        };
        let tls = match url.transport {
            crate::config::SyslogTransport::Tls => Some(super::tls::client_config(
                &config.audit.syslog_ca_file,
                "audit.syslog_ca_file",
            )?),
            _ => None,
        };
        Ok(Some(Settings {
            url,
            tls,
            lease: config.cluster.lease.0,
            server_id: server_id.to_string(),
        }))
    }
}

/// The running stream; `stop` ends it.
pub struct Running {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Running {
    /// Stops the stream: what the receiver has taken is recorded and the lease let go, so that
    /// another server goes on at once. Blocks (up to a write's timeout).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Starts streaming on a thread of its own.
pub fn start(store: Store, settings: Settings, status: Arc<Status>) -> std::io::Result<Running> {
    status.set(State::Starting);
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("claribi-siem".into())
        .spawn(move || Sender::new(store, settings, status).run(&stopping))?;
    Ok(Running { stop, thread })
}

/// A batch written and not yet confirmed: the last entry it holds, the connection's byte count
/// after it, and when the receiver's TCP was first seen to have acknowledged that many.
struct Pending {
    upto: Id,
    end: u64,
    written_at: Instant,
    acknowledged_at: Option<Instant>,
}

struct Sender {
    store: Store,
    destination: String,
    settings: Settings,
    status: Arc<Status>,
    origin: rfc5424::Origin,
    connection: Option<Connection>,
    /// Whether this server holds the stream, and when its lease was last renewed.
    renewed: Option<Instant>,
    /// The last entry confirmed as accepted, the last recorded in the database, and the last
    /// written to the connection.
    accepted: Id,
    recorded: Id,
    sent: Id,
    /// The newest entry of the log, as last read.
    newest: Id,
    pending: VecDeque<Pending>,
    /// When the receiver is tried again, and how long after that the next time.
    retry_at: Instant,
    backoff: Duration,
    /// A failure of the database, and of the receiver, already logged (once per outage, not
    /// once per attempt).
    database_complained: bool,
    complained: bool,
}

impl Sender {
    fn new(store: Store, settings: Settings, status: Arc<Status>) -> Sender {
        Sender {
            store,
            destination: settings.url.to_string(),
            settings,
            status,
            origin: rfc5424::Origin::of_this_process(),
            connection: None,
            renewed: None,
            accepted: 0,
            recorded: 0,
            sent: 0,
            newest: 0,
            pending: VecDeque::new(),
            retry_at: Instant::now(),
            backoff: Duration::from_secs(1),
            database_complained: false,
            complained: false,
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut next_claim = Instant::now();
        let mut last_record = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() >= next_claim {
                self.claim();
                next_claim = Instant::now() + RENEW.min(self.settings.lease / 4);
            }
            if !self.holds() {
                self.disconnect();
                std::thread::sleep(POLL);
                continue;
            }
            self.confirm();
            if last_record.elapsed() >= Duration::from_millis(250) {
                self.record();
                last_record = Instant::now();
            }
            if !self.send_more() {
                // Nothing to send (or waiting for the receiver): a confirmation is due sooner
                // than new entries are.
                let wait = if self.pending.is_empty() {
                    POLL
                } else {
                    Duration::from_millis(50)
                };
                std::thread::sleep(wait);
            }
        }
        if self.holds() {
            // What the receiver's TCP acknowledges within a second is counted without waiting
            // for it to settle: the receiver stays up while this server stops.
            let deadline = Instant::now() + Duration::from_secs(1);
            while let Some(connection) = self.connection.as_mut() {
                if !connection.alive() {
                    break;
                }
                let written = connection.written();
                let acknowledged = connection.acknowledged().unwrap_or(0);
                while self.pending.front().is_some_and(|p| p.end <= acknowledged) {
                    if let Some(front) = self.pending.pop_front() {
                        self.accepted = front.upto;
                    }
                }
                if acknowledged >= written || Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            self.record();
            let (destination, server) = (self.destination.clone(), self.settings.server_id.clone());
            let _ = self
                .store
                .write_own_rows_blocking(|db| audit_stream::release(db, &destination, &server));
        }
        if let Some(connection) = self.connection.take() {
            connection.close();
        }
    }

    /// Within a lease renewed less than half a lease ago, on this server's own clock: past
    /// that another server may take over soon, and this one stops sending first.
    fn holds(&self) -> bool {
        self.renewed
            .is_some_and(|at| at.elapsed() < self.settings.lease / 2)
    }

    fn claim(&mut self) {
        let lease_ms = self.settings.lease.as_millis() as i64;
        let (destination, server) = (&self.destination, &self.settings.server_id);
        // The lease runs from the database's clock inside the claim: this server counts it
        // from before it asked, so that its count never outlasts the database's.
        let asked = Instant::now();
        let claimed = self
            .store
            .write_own_rows_blocking(|db| audit_stream::claim(db, destination, server, lease_ms));
        match claimed {
            Ok(standing) if standing.held => {
                if !self.holds() {
                    // Taken (again): from where the database says the receiver stands.
                    self.accepted = standing.position;
                    self.recorded = standing.position;
                    self.sent = standing.position;
                    self.pending.clear();
                    tracing::info!(
                        destination = %self.destination,
                        after_id = standing.position,
                        "this server streams the audit log"
                    );
                }
                self.renewed = Some(asked);
                self.database_complained = false;
                self.newest = standing.newest;
                self.show_lag();
                if self.status.state() == State::Starting || self.status.state() == State::Standby {
                    self.status.set(State::Sending);
                }
            }
            Ok(standing) => {
                self.renewed = None;
                self.database_complained = false;
                self.status
                    .lag
                    .store(standing.newest - standing.position, Ordering::Relaxed);
                self.status.set(State::Standby);
            }
            Err(e) => {
                if !self.database_complained {
                    tracing::warn!(error = %e, "the audit stream cannot reach the database; it goes on when it can");
                    self.database_complained = true;
                }
                if !self.holds() {
                    self.status.set(State::Unreachable);
                }
            }
        }
    }

    /// Counts as accepted what the receiver's TCP acknowledged at least `SETTLE` ago on a
    /// connection still open.
    fn confirm(&mut self) {
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        if !connection.confirms() {
            self.accepted = self.sent;
            self.pending.clear();
            self.show_lag();
            return;
        }
        if !connection.alive() {
            self.lost("the receiver closed the connection");
            return;
        }
        match connection.acknowledged() {
            Ok(acknowledged) => {
                let now = Instant::now();
                for pending in self.pending.iter_mut() {
                    if pending.end > acknowledged {
                        break;
                    }
                    pending.acknowledged_at.get_or_insert(now);
                }
            }
            Err(_) => {
                self.lost("the connection broke");
                return;
            }
        }
        if self
            .pending
            .front()
            .is_some_and(|p| p.acknowledged_at.is_none() && p.written_at.elapsed() > ACK_DEADLINE)
        {
            self.lost("the receiver acknowledged nothing for 30 s");
            return;
        }
        while let Some(front) = self.pending.front() {
            match front.acknowledged_at {
                Some(at) if at.elapsed() >= SETTLE => {
                    self.accepted = front.upto;
                    self.pending.pop_front();
                }
                _ => break,
            }
        }
        self.show_lag();
    }

    fn show_lag(&self) {
        let lag = self.newest.max(self.sent) - self.accepted;
        self.status.lag.store(lag.max(0), Ordering::Relaxed);
    }

    /// Writes the position accepted to the database, if it moved.
    fn record(&mut self) {
        if self.accepted <= self.recorded {
            return;
        }
        let (destination, server, position) =
            (&self.destination, &self.settings.server_id, self.accepted);
        match self
            .store
            .write_own_rows_blocking(|db| audit_stream::accepted(db, destination, server, position))
        {
            Ok(true) => self.recorded = position,
            // Another server took the stream over: it goes on from what was recorded.
            Ok(false) => self.renewed = None,
            Err(_) => {}
        }
    }

    /// Writes the next batch; false when there was nothing to write or it could not be.
    fn send_more(&mut self) -> bool {
        if self.sent - self.accepted >= WINDOW {
            return false;
        }
        if self.connection.is_none() && !self.connect() {
            return false;
        }
        let after = self.sent;
        let batch = match self
            .store
            .read_blocking(|db| audit::after(db, after, BATCH))
        {
            Ok(batch) => batch,
            Err(e) => {
                if !self.database_complained {
                    tracing::warn!(error = %e, "the audit stream cannot read the log; it goes on when it can");
                    self.database_complained = true;
                }
                return false;
            }
        };
        let Some(last) = batch.last().map(|e| e.id) else {
            return false;
        };
        // The reads above may have taken a while: past half a lease, another server may be
        // about to take over, and this one writes nothing more.
        if !self.holds() {
            return false;
        }
        let Some(connection) = self.connection.as_mut() else {
            return false;
        };
        let written = if connection.confirms() {
            let mut frames = Vec::with_capacity(batch.len() * 512);
            for entry in &batch {
                rfc5424::octet_counted(&rfc5424::message(entry, &self.origin), &mut frames);
            }
            connection.send(&frames)
        } else {
            batch.iter().try_for_each(|entry| {
                let message = rfc5424::message(entry, &self.origin);
                if message.len() > MAX_DATAGRAM {
                    // Never sent whole over UDP: skipped rather than retried for ever.
                    tracing::warn!(
                        id = entry.id,
                        bytes = message.len(),
                        "an audit entry too large for a UDP datagram was not sent"
                    );
                    return Ok(());
                }
                connection.send(message.as_bytes())
            })
        };
        if let Err(e) = written {
            self.lost(&e.to_string());
            return false;
        }
        self.sent = last;
        self.pending.push_back(Pending {
            upto: last,
            end: connection.written(),
            written_at: Instant::now(),
            acknowledged_at: None,
        });
        if self.complained {
            tracing::info!(destination = %self.destination, "the audit stream reaches its receiver again");
            self.complained = false;
        }
        self.status.set(State::Sending);
        true
    }

    fn connect(&mut self) -> bool {
        if Instant::now() < self.retry_at {
            return false;
        }
        match Connection::open(&self.settings.url, self.settings.tls.as_ref()) {
            Ok(connection) => {
                self.connection = Some(connection);
                self.backoff = Duration::from_secs(1);
                true
            }
            Err(e) => {
                self.failed(&e.to_string());
                false
            }
        }
    }

    /// The connection is gone: what it did not confirm is sent again on the next one.
    fn lost(&mut self, why: &str) {
        self.disconnect();
        self.failed(why);
    }

    fn disconnect(&mut self) {
        self.connection = None;
        self.sent = self.accepted;
        self.pending.clear();
    }

    fn failed(&mut self, why: &str) {
        if !self.complained {
            tracing::warn!(
                destination = %self.destination,
                error = why,
                "the audit stream cannot reach its receiver; entries wait in the database and are sent when it is back"
            );
            self.complained = true;
        }
        self.status.set(State::Unreachable);
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}
