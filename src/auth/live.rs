//! The in-memory state that authenticates a request without a database round trip: users
//! (role, active), organization names, sessions and API keys. It changes only through
//! `apply`, one object at a time, each object stamped with the feed sequence number of the
//! state it holds: an older state never replaces a newer one, so nothing applied is undone.
//! Counters (rate limits, key usage) belong to their key or user and survive every update.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ipnet::IpNet;

use super::api_key::KeyHash;
use super::permission::{Permission, SCOPES};
use super::rate::{Moved, RateCounters};
use crate::domain::{Id, Role, UnixTime};

/// Sessions write `last_seen_at` at most this often.
const TOUCH_EVERY: i64 = 60;

/// A feed sequence number: the state an object holds includes every change up to it.
pub type Seq = i64;

/// The state of one object, as the database holds it: the input of `apply`.
#[derive(Debug, Clone)]
pub enum Update {
    User(UserState),
    Session(SessionState),
    Key(KeyState),
    Organization { id: Id, name: String },
}

#[derive(Debug, Clone)]
pub struct UserState {
    pub id: Id,
    pub organization_id: Id,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub is_active: bool,
    pub mfa_enabled: bool,
    /// Until the user replaces it, their sessions open only the password change and `me`.
    pub password_temporary: bool,
    /// A service account: its keys act as it; it has no email and never logs in.
    pub service_account: bool,
}

#[derive(Debug, Clone)]
pub struct SessionState {
    pub id: Id,
    pub user_id: Id,
    pub expires_at: UnixTime,
    pub last_seen_at: UnixTime,
    pub revoked: bool,
    /// The secret its tokens must carry (`None` for sessions made before sessions had one).
    pub secret: Option<super::token::SessionSecret>,
    /// Opened while the organization required MFA its user did not have.
    pub mfa_enrollment_required: bool,
}

#[derive(Debug, Clone)]
pub struct KeyState {
    pub id: Id,
    pub user_id: Id,
    pub organization_id: Id,
    pub name: String,
    pub prefix: String,
    pub hash: KeyHash,
    pub scopes: Option<Vec<Permission>>,
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    pub revoked: bool,
    pub last_used_at: Option<UnixTime>,
    pub ever_used: bool,
    /// Replaced in a rotation (it may still work until the end of its overlap).
    pub replaced: bool,
    /// The networks it may be used from; `None`: any.
    pub allowed_ips: Option<Vec<IpNet>>,
    pub canary: bool,
}

#[derive(Debug)]
pub struct LiveUser {
    pub id: Id,
    pub organization_id: Id,
    pub email: Arc<str>,
    pub name: Arc<str>,
    pub role: Role,
    pub is_active: bool,
    pub mfa_enabled: bool,
    pub password_temporary: bool,
    pub service_account: bool,
    seq: Seq,
}

impl LiveUser {
    fn new(u: UserState, seq: Seq) -> Self {
        LiveUser {
            id: u.id,
            organization_id: u.organization_id,
            email: u.email.into(),
            name: u.name.into(),
            role: u.role,
            is_active: u.is_active,
            mfa_enabled: u.mfa_enabled,
            password_temporary: u.password_temporary,
            service_account: u.service_account,
            seq,
        }
    }
}

#[derive(Debug)]
pub struct LiveSession {
    pub user_id: Id,
    pub expires_at: UnixTime,
    pub secret: Option<super::token::SessionSecret>,
    /// Until its user has MFA, it opens only MFA enrolment and `me`.
    pub mfa_enrollment_required: bool,
    seq: Seq,
    /// Shared by every state of this session.
    last_seen_written: Arc<AtomicI64>,
}

impl LiveSession {
    /// True once a minute per session: the caller then writes `last_seen_at`.
    pub fn due_for_touch(&self, now: UnixTime) -> bool {
        let last = self.last_seen_written.load(Ordering::Relaxed);
        now - last >= TOUCH_EVERY
            && self
                .last_seen_written
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Usable now: not past its end (a revoked session is not held at all).
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.expires_at > now
    }
}

/// The windows of `Active::expiring`, in days (the metric's `within` label).
pub const EXPIRING_WITHIN: [i64; 3] = [1, 7, 30];

/// What the live state holds that is usable now, for the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Active {
    pub sessions: usize,
    pub keys: usize,
    /// Active keys expiring within each of `EXPIRING_WITHIN`.
    pub expiring: [usize; 3],
}

/// The keys with uses counted since the last flush, each once: what the flush visits, so that
/// its cost is the keys used, not the keys held.
#[derive(Debug, Default)]
pub struct UsedKeys(Mutex<Vec<Arc<KeyCounters>>>);

impl UsedKeys {
    fn push(&self, counters: Arc<KeyCounters>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(counters);
    }

    fn take(&self) -> Vec<Arc<KeyCounters>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// What is counted for a key between its states: request counters and usage not yet written.
#[derive(Debug, Default)]
pub struct KeyCounters {
    pub rates: Arc<RateCounters>,
    /// Whose: what the flush writes them under.
    key_id: Id,
    user_id: Id,
    organization_id: Id,
    prefix: Arc<str>,
    /// Where the key queues itself at its first count since the last flush (`queued`).
    used: Arc<UsedKeys>,
    queued: AtomicBool,
    uses: AtomicU64,
    last_used: AtomicI64,
    ever_used: AtomicBool,
    /// The first use since creation is still to be audited.
    first_use_pending: AtomicBool,
    /// The address and user agent of the latest use, and whether they changed since the
    /// last write.
    last_client: Mutex<Option<(IpAddr, Box<str>)>>,
    client_changed: AtomicBool,
    /// Uses per scope (indexed like `SCOPES`) since the last write, and when last.
    scope_uses: [AtomicU64; SCOPES.len()],
    scope_last: [AtomicI64; SCOPES.len()],
}

impl KeyCounters {
    /// Nothing counted that a flush has still to write.
    fn idle(&self) -> bool {
        self.uses.load(Ordering::Acquire) == 0
            && !self.client_changed.load(Ordering::Acquire)
            && !self.first_use_pending.load(Ordering::Acquire)
            && self
                .scope_uses
                .iter()
                .all(|u| u.load(Ordering::Acquire) == 0)
    }

    /// Notes the client of a use. Skipped when another request of the same key is noting
    /// its own at this instant: "last" is then either of them.
    fn note_client(&self, ip: Option<IpAddr>, user_agent: Option<&str>) {
        let (Some(ip), Ok(mut last)) = (ip, self.last_client.try_lock()) else {
            return;
        };
        let user_agent = user_agent.unwrap_or("");
        if last
            .as_ref()
            .is_some_and(|(i, ua)| *i == ip && **ua == *user_agent)
        {
            return;
        }
        let kept: String = user_agent.chars().take(256).collect();
        *last = Some((ip, kept.into_boxed_str()));
        self.client_changed.store(true, Ordering::Release);
    }

    /// Counts a use of `scope` (a scoped key's request that needed it).
    pub fn record_scope(self: &Arc<Self>, scope: Permission, now: UnixTime) {
        if let Some(i) = SCOPES.iter().position(|s| *s == scope) {
            self.scope_uses[i].fetch_add(1, Ordering::Relaxed);
            self.scope_last[i].fetch_max(now, Ordering::Relaxed);
            self.queue();
        }
    }

    /// After a count: in the flush's queue once until the flush takes it. The swap releases
    /// the count before it, which the flush's swap of `queued` acquires before it reads the
    /// counts: a count is either seen by the flush that dequeues the key or queues it again.
    fn queue(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.used.push(self.clone());
        }
    }
}

/// An API key as the hot path needs it.
#[derive(Debug)]
pub struct LiveKey {
    pub id: Id,
    pub user_id: Id,
    pub organization_id: Id,
    pub name: Arc<str>,
    pub prefix: Arc<str>,
    pub scopes: Option<Arc<[Permission]>>,
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    pub revoked: bool,
    pub replaced: bool,
    pub allowed_ips: Option<Arc<[IpNet]>>,
    pub canary: bool,
    seq: Seq,
    pub counters: Arc<KeyCounters>,
}

impl LiveKey {
    /// May the key be used from `ip`? Without an allowlist, from anywhere; with one, only
    /// from a known address inside it.
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        match (&self.allowed_ips, ip) {
            (None, _) => true,
            (Some(nets), Some(ip)) => nets.iter().any(|net| net.contains(&ip)),
            (Some(_), None) => false,
        }
    }

    pub fn record_use(&self, now: UnixTime, ip: Option<IpAddr>, user_agent: Option<&str>) {
        let c = &self.counters;
        c.note_client(ip, user_agent);
        c.uses.fetch_add(1, Ordering::Relaxed);
        c.last_used.fetch_max(now, Ordering::Relaxed);
        if !c.ever_used.load(Ordering::Relaxed) && !c.ever_used.swap(true, Ordering::AcqRel) {
            c.first_use_pending.store(true, Ordering::Release);
        }
        c.queue();
    }
}

pub use crate::auth::rate::RateSubject;

/// Uses counted since the last flush.
pub struct Usage {
    pub counts: Vec<crate::domain::KeyUsage>,
    /// `(key id, scope, uses, last used at)`.
    pub scopes: Vec<(Id, &'static str, u64, UnixTime)>,
    /// Keys used for the first time: `(key id, user id, organization id, prefix)`.
    pub first_uses: Vec<(Id, Id, Id, Arc<str>)>,
    /// The counters these came from, for `restore_usage`.
    drained: Vec<Arc<KeyCounters>>,
}

pub struct Live {
    /// Unix milliseconds until which this state counts as current: a follower moves it on
    /// after each successful read of the feed. `i64::MAX` when nothing follows (one process
    /// that makes every change itself, or a command-line tool).
    current_until_ms: AtomicI64,
    /// The feed position every change up to which is applied here.
    applied_seq: AtomicI64,
    users: RwLock<HashMap<Id, Arc<LiveUser>>>,
    organizations: RwLock<HashMap<Id, (Arc<str>, Seq)>>,
    sessions: RwLock<HashMap<Id, Arc<LiveSession>>>,
    /// Revoked sessions until their end: the feed position of the revocation (so that an
    /// older state cannot bring them back) and the end. Logins logged out all day leave 24
    /// bytes each here, not a session. Lock order: `sessions`, then this.
    revoked_sessions: RwLock<HashMap<Id, (Seq, UnixTime)>>,
    keys: RwLock<HashMap<KeyHash, Arc<LiveKey>>>,
    /// Keys revoked for good (neither rotated nor canaries) whose uses are all written: all
    /// that is left of them is what answers `api_key_revoked` and keeps an older state from
    /// bringing them back, the feed position of their revocation. Tens of bytes each instead of
    /// a whole key with its counters, so that keys made and revoked all day do not add up.
    /// Lock order: `keys`, then this.
    revoked_keys: RwLock<HashMap<KeyHash, Seq>>,
    /// Keys revoked for good but still held whole, their uses not yet written: what
    /// `compact_revoked` visits.
    revoked_whole: Mutex<Vec<KeyHash>>,
    used: Arc<UsedKeys>,
    user_rates: RwLock<HashMap<Id, Arc<RateCounters>>>,
    /// Where request counters queue themselves when they count, for the servers that share
    /// a database (`ops::rates`).
    moved_rates: Arc<Moved>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            current_until_ms: AtomicI64::new(i64::MAX),
            applied_seq: AtomicI64::new(0),
            users: RwLock::default(),
            organizations: RwLock::default(),
            sessions: RwLock::default(),
            revoked_sessions: RwLock::default(),
            keys: RwLock::default(),
            revoked_keys: RwLock::default(),
            revoked_whole: Mutex::default(),
            used: Arc::default(),
            user_rates: RwLock::default(),
            moved_rates: Arc::default(),
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps half-written (every write is a
    // single insert or remove), so a poisoned lock is still safe to use.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Live {
    /// Brings in the state of one object, read at feed position `seq`, unless the object
    /// already holds a state at least that recent. Returns whether anything changed.
    pub fn apply(&self, update: Update, seq: Seq) -> bool {
        match update {
            Update::User(user) => {
                let mut users = write(&self.users);
                if users.get(&user.id).is_some_and(|u| u.seq >= seq) {
                    return false;
                }
                users.insert(user.id, Arc::new(LiveUser::new(user, seq)));
            }
            Update::Organization { id, name } => {
                let mut organizations = write(&self.organizations);
                if organizations.get(&id).is_some_and(|(_, at)| *at >= seq) {
                    return false;
                }
                organizations.insert(id, (name.into(), seq));
            }
            Update::Session(s) => {
                let mut sessions = write(&self.sessions);
                let mut revoked = write(&self.revoked_sessions);
                if revoked.get(&s.id).is_some_and(|&(at, _)| at >= seq) {
                    return false;
                }
                let seen = match sessions.get(&s.id) {
                    Some(old) if old.seq >= seq => return false,
                    Some(old) => old.last_seen_written.clone(),
                    None => Arc::new(AtomicI64::new(s.last_seen_at)),
                };
                if s.revoked {
                    sessions.remove(&s.id);
                    revoked.insert(s.id, (seq, s.expires_at));
                } else {
                    sessions.insert(
                        s.id,
                        Arc::new(LiveSession {
                            user_id: s.user_id,
                            expires_at: s.expires_at,
                            secret: s.secret,
                            mfa_enrollment_required: s.mfa_enrollment_required,
                            seq,
                            last_seen_written: seen,
                        }),
                    );
                }
            }
            Update::Key(k) => {
                let for_good = k.revoked && !k.replaced && !k.canary;
                let mut keys = write(&self.keys);
                let mut revoked = write(&self.revoked_keys);
                if revoked.get(&k.hash).is_some_and(|&at| at >= seq) {
                    return false;
                }
                let counters = match keys.get(&k.hash) {
                    Some(old) if old.seq >= seq => return false,
                    // Its uses may not be written yet: kept whole until they are.
                    Some(old) => old.counters.clone(),
                    None if for_good => {
                        revoked.insert(k.hash, seq);
                        return true;
                    }
                    None => Arc::new(KeyCounters {
                        rates: Arc::new(RateCounters::new(
                            RateSubject::Key(k.id),
                            self.moved_rates.clone(),
                        )),
                        key_id: k.id,
                        user_id: k.user_id,
                        organization_id: k.organization_id,
                        prefix: k.prefix.as_str().into(),
                        used: self.used.clone(),
                        last_used: AtomicI64::new(k.last_used_at.unwrap_or(0)),
                        ever_used: AtomicBool::new(k.ever_used),
                        ..KeyCounters::default()
                    }),
                };
                revoked.remove(&k.hash);
                if for_good {
                    lock(&self.revoked_whole).push(k.hash);
                }
                keys.insert(
                    k.hash,
                    Arc::new(LiveKey {
                        id: k.id,
                        user_id: k.user_id,
                        organization_id: k.organization_id,
                        name: k.name.into(),
                        // The key's counters hold the same prefix: one allocation for both.
                        prefix: counters.prefix.clone(),
                        scopes: k.scopes.map(Into::into),
                        created_at: k.created_at,
                        expires_at: k.expires_at,
                        revoked: k.revoked,
                        replaced: k.replaced,
                        allowed_ips: k.allowed_ips.map(Into::into),
                        canary: k.canary,
                        seq,
                        counters,
                    }),
                );
            }
        }
        true
    }

    /// Whether this state may still answer for the database at `now_ms`.
    pub fn is_current(&self, now_ms: i64) -> bool {
        now_ms < self.current_until_ms.load(Ordering::Acquire)
    }

    /// Set by the follower: current until `until_ms` unless it reads the feed again.
    pub fn current_until(&self, until_ms: i64) {
        self.current_until_ms.store(until_ms, Ordering::Release);
    }

    /// The feed position applied so far.
    pub fn applied(&self) -> Seq {
        self.applied_seq.load(Ordering::Acquire)
    }

    /// Notes that every change up to `seq` is applied (never moves back).
    pub fn advance(&self, seq: Seq) {
        self.applied_seq.fetch_max(seq, Ordering::AcqRel);
    }

    pub fn user(&self, id: Id) -> Option<Arc<LiveUser>> {
        read(&self.users).get(&id).cloned()
    }

    pub fn organization_name(&self, id: Id) -> Arc<str> {
        read(&self.organizations)
            .get(&id)
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| Arc::from(""))
    }

    pub fn session(&self, id: Id) -> Option<Arc<LiveSession>> {
        read(&self.sessions).get(&id).cloned()
    }

    pub fn key(&self, hash: &KeyHash) -> Option<Arc<LiveKey>> {
        read(&self.keys).get(hash).cloned()
    }

    /// Whether `hash` is a key revoked for good and kept only as that (see `revoked_keys`).
    pub fn revoked_for_good(&self, hash: &KeyHash) -> bool {
        read(&self.revoked_keys).contains_key(hash)
    }

    /// After a flush has written every use: keys revoked for good whose counters hold nothing
    /// unwritten are reduced to their revocation (`revoked_keys`). Visits only the keys
    /// revoked for good since (`revoked_whole`), not every key held.
    pub fn compact_revoked(&self) {
        let mut candidates = std::mem::take(&mut *lock(&self.revoked_whole));
        if candidates.is_empty() {
            return;
        }
        // A key updated again while it waited was listed again.
        candidates.sort_unstable();
        candidates.dedup();
        let for_good = |k: &LiveKey| k.revoked && !k.replaced && !k.canary;
        let (mut ready, mut waiting) = (Vec::new(), Vec::new());
        {
            let keys = read(&self.keys);
            for hash in candidates {
                match keys.get(&hash) {
                    Some(k) if for_good(k) && k.counters.idle() => ready.push(hash),
                    // Uses still to write: again after the next flush.
                    Some(k) if for_good(k) => waiting.push(hash),
                    _ => {}
                }
            }
        }
        if !ready.is_empty() {
            let mut keys = write(&self.keys);
            let mut revoked = write(&self.revoked_keys);
            for hash in ready {
                match keys.get(&hash) {
                    Some(k) if for_good(k) && k.counters.idle() => {
                        let seq = k.seq;
                        keys.remove(&hash);
                        revoked.insert(hash, seq);
                    }
                    Some(k) if for_good(k) => waiting.push(hash),
                    _ => {}
                }
            }
        }
        if !waiting.is_empty() {
            lock(&self.revoked_whole).extend(waiting);
        }
    }

    /// The request counters of a JWT user.
    pub fn user_rates(&self, user_id: Id) -> Arc<RateCounters> {
        if let Some(rates) = read(&self.user_rates).get(&user_id) {
            return rates.clone();
        }
        write(&self.user_rates)
            .entry(user_id)
            .or_insert_with(|| {
                Arc::new(RateCounters::new(
                    RateSubject::User(user_id),
                    self.moved_rates.clone(),
                ))
            })
            .clone()
    }

    /// Where the request counters of keys and users queue themselves when they count, once
    /// `Moved::start` is called: what servers that share a database publish.
    pub fn moved_rates(&self) -> &Arc<Moved> {
        &self.moved_rates
    }

    /// Takes the uses counted since the last call, from the keys used since (`used`): its
    /// cost is the keys used, not the keys held.
    pub fn drain_usage(&self) -> Usage {
        let mut usage = Usage {
            counts: Vec::new(),
            scopes: Vec::new(),
            first_uses: Vec::new(),
            drained: Vec::new(),
        };
        for c in self.used.take() {
            // Before reading the counts: a count after this queues the key again.
            c.queued.swap(false, Ordering::AcqRel);
            let uses = c.uses.swap(0, Ordering::AcqRel);
            let last_client = if c.client_changed.swap(false, Ordering::AcqRel) {
                lock(&c.last_client)
                    .as_ref()
                    .map(|(ip, ua)| (ip.to_string(), ua.to_string()))
            } else {
                None
            };
            let mut any = false;
            if uses > 0 || last_client.is_some() {
                any = true;
                usage.counts.push(crate::domain::KeyUsage {
                    id: c.key_id,
                    uses,
                    last_used_at: c.last_used.load(Ordering::Acquire),
                    last_client,
                });
            }
            for (i, scope) in SCOPES.iter().enumerate() {
                let uses = c.scope_uses[i].swap(0, Ordering::AcqRel);
                if uses > 0 {
                    any = true;
                    let at = c.scope_last[i].load(Ordering::Acquire);
                    usage.scopes.push((c.key_id, scope.as_str(), uses, at));
                }
            }
            if c.first_use_pending.swap(false, Ordering::AcqRel) {
                any = true;
                usage
                    .first_uses
                    .push((c.key_id, c.user_id, c.organization_id, c.prefix.clone()));
            }
            if any {
                usage.drained.push(c);
            }
        }
        usage
    }

    /// Puts back uses that `drain_usage` took and that could not be written (the database
    /// was unavailable), so that the next flush writes them.
    pub fn restore_usage(&self, usage: &Usage) {
        let by_id: HashMap<Id, &Arc<KeyCounters>> =
            usage.drained.iter().map(|c| (c.key_id, c)).collect();
        for u in &usage.counts {
            if let Some(c) = by_id.get(&u.id) {
                c.uses.fetch_add(u.uses, Ordering::AcqRel);
                c.last_used.fetch_max(u.last_used_at, Ordering::AcqRel);
                if u.last_client.is_some() {
                    c.client_changed.store(true, Ordering::Release);
                }
            }
        }
        for &(id, scope, uses, at) in &usage.scopes {
            let (Some(c), Some(i)) = (
                by_id.get(&id),
                SCOPES.iter().position(|s| s.as_str() == scope),
            ) else {
                continue;
            };
            c.scope_uses[i].fetch_add(uses, Ordering::AcqRel);
            c.scope_last[i].fetch_max(at, Ordering::AcqRel);
        }
        for (id, ..) in &usage.first_uses {
            if let Some(c) = by_id.get(id) {
                c.first_use_pending.store(true, Ordering::Release);
            }
        }
        for c in &usage.drained {
            c.queue();
        }
    }

    /// How many sessions and keys are usable now (neither revoked nor past their end).
    pub fn active(&self, now: UnixTime) -> Active {
        let sessions = read(&self.sessions)
            .values()
            .filter(|s| s.is_live(now))
            .count();
        let mut active = Active {
            sessions,
            ..Active::default()
        };
        for key in read(&self.keys).values() {
            if key.revoked || key.canary || key.expires_at.is_some_and(|at| at <= now) {
                continue;
            }
            active.keys += 1;
            if let Some(at) = key.expires_at {
                for (count, days) in active.expiring.iter_mut().zip(EXPIRING_WITHIN) {
                    if at - now <= days * 86_400 {
                        *count += 1;
                    }
                }
            }
        }
        active
    }

    /// Drops sessions past their end (revoked ones included: an ended session cannot be
    /// brought back by any state, since its end is checked on every use).
    /// The ended ones are found under a read lock and removed a batch at a time, so that
    /// logins and logouts wait for a batch, not for a walk of every session.
    pub fn prune(&self, now: UnixTime) {
        const BATCH: usize = 1024;
        let ended: Vec<Id> = read(&self.sessions)
            .iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for batch in ended.chunks(BATCH) {
            let mut sessions = write(&self.sessions);
            for id in batch {
                if sessions.get(id).is_some_and(|s| s.expires_at <= now) {
                    sessions.remove(id);
                }
            }
        }
        let ended: Vec<Id> = read(&self.revoked_sessions)
            .iter()
            .filter(|(_, &(_, end))| end <= now)
            .map(|(id, _)| *id)
            .collect();
        for batch in ended.chunks(BATCH) {
            let mut revoked = write(&self.revoked_sessions);
            for id in batch {
                if revoked.get(id).is_some_and(|&(_, end)| end <= now) {
                    revoked.remove(id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(revoked: bool) -> Update {
        Update::Key(KeyState {
            id: 1,
            user_id: 2,
            organization_id: 3,
            name: "k".into(),
            prefix: "claribi_key_abcdefgh".into(),
            hash: [7; 32],
            scopes: None,
            created_at: 0,
            expires_at: None,
            revoked,
            last_used_at: None,
            ever_used: false,
            replaced: false,
            allowed_ips: None,
            canary: false,
        })
    }

    fn session(revoked: bool) -> Update {
        Update::Session(SessionState {
            id: 5,
            user_id: 2,
            expires_at: i64::MAX,
            last_seen_at: 1000,
            revoked,
            secret: None,
            mfa_enrollment_required: false,
        })
    }

    #[test]
    fn keys_revoked_for_good_shrink_to_their_revocation_and_stay_revoked() {
        let live = Live::default();
        // Revoked before this server ever held it (a listing at start): only the revocation.
        assert!(live.apply(key(true), 5));
        assert!(live.key(&[7; 32]).is_none());
        assert!(live.revoked_for_good(&[7; 32]));
        // An older state (a snapshot that raced the revoke) does not bring it back.
        assert!(!live.apply(key(false), 4));
        assert!(live.key(&[7; 32]).is_none());

        // Held live, used, then revoked: kept whole until its uses are written.
        let live = Live::default();
        live.apply(key(false), 1);
        live.key(&[7; 32]).unwrap().record_use(10, None, None);
        live.apply(key(true), 2);
        live.compact_revoked();
        assert!(live.key(&[7; 32]).is_some(), "its use is not written yet");
        let usage = live.drain_usage();
        assert_eq!(usage.counts.len(), 1);
        live.compact_revoked();
        assert!(live.key(&[7; 32]).is_none());
        assert!(live.revoked_for_good(&[7; 32]));
        assert!(!live.apply(key(false), 1));
    }

    fn numbered_key(n: u32) -> Update {
        let Update::Key(mut k) = key(false) else {
            unreachable!()
        };
        k.id = Id::from(n);
        k.hash = [0; 32];
        k.hash[..4].copy_from_slice(&n.to_be_bytes());
        Update::Key(k)
    }

    fn held(live: &Live, n: u32) -> Arc<LiveKey> {
        let mut hash = [0; 32];
        hash[..4].copy_from_slice(&n.to_be_bytes());
        live.key(&hash).unwrap()
    }

    #[test]
    fn the_flush_visits_the_keys_used_since_the_last_one_and_no_other() {
        let live = Live::default();
        for n in 1..=1000 {
            live.apply(numbered_key(n), 1);
        }
        held(&live, 3).record_use(10, None, None);
        held(&live, 700).record_use(11, None, None);
        held(&live, 700).record_use(12, None, None);
        held(&live, 700)
            .counters
            .record_scope(Permission::ReportsRead, 12);
        assert_eq!(live.used.0.lock().unwrap().len(), 2, "each used key once");
        let usage = live.drain_usage();
        let mut uses: Vec<(Id, u64)> = usage.counts.iter().map(|u| (u.id, u.uses)).collect();
        uses.sort_unstable();
        assert_eq!(uses, vec![(3, 1), (700, 2)]);
        assert_eq!(usage.scopes, vec![(700, "reports:read", 1, 12)]);
        assert!(live.used.0.lock().unwrap().is_empty());
        let again = live.drain_usage();
        assert!(again.counts.is_empty() && again.scopes.is_empty() && again.first_uses.is_empty());
        // A use after the flush queues its key again.
        held(&live, 3).record_use(13, None, None);
        assert_eq!(live.drain_usage().counts.len(), 1);
    }

    #[test]
    fn uses_put_back_after_a_failed_write_are_written_by_the_next_flush() {
        let live = Live::default();
        live.apply(numbered_key(1), 1);
        live.apply(numbered_key(2), 1);
        held(&live, 1).record_use(10, "10.0.0.1".parse().ok(), Some("etl"));
        held(&live, 2).record_use(11, None, None);
        held(&live, 2)
            .counters
            .record_scope(Permission::ReportsRead, 11);
        let first = live.drain_usage();
        live.restore_usage(&first);
        held(&live, 2).record_use(12, None, None);
        let second = live.drain_usage();
        let mut counts = second.counts.clone();
        counts.sort_by_key(|u| u.id);
        assert_eq!(
            counts.iter().map(|u| (u.id, u.uses)).collect::<Vec<_>>(),
            vec![(1, 1), (2, 2)]
        );
        assert!(counts[0].last_client.is_some());
        assert_eq!(second.scopes, vec![(2, "reports:read", 1, 11)]);
        assert_eq!(second.first_uses.len(), 2);
    }

    /// Threads count while flushes run alongside: every use is in exactly one flush.
    #[test]
    fn no_use_is_lost_or_counted_twice_by_a_flush_running_alongside() {
        const THREADS: u64 = 4;
        const USES: u64 = 20_000;
        let live = Arc::new(Live::default());
        for n in 1..=3 {
            live.apply(numbered_key(n), 1);
        }
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (live, done) = (live.clone(), done.clone());
                std::thread::spawn(move || {
                    let key = held(&live, (t % 3) as u32 + 1);
                    for i in 0..USES {
                        key.record_use(i as i64, None, None);
                        key.counters.record_scope(Permission::ReportsRead, i as i64);
                    }
                    done.fetch_add(1, Ordering::AcqRel);
                })
            })
            .collect();
        let (mut uses, mut scoped) = (0, 0);
        let mut count = |usage: Usage| {
            uses += usage.counts.iter().map(|u| u.uses).sum::<u64>();
            scoped += usage.scopes.iter().map(|s| s.2).sum::<u64>();
        };
        while done.load(Ordering::Acquire) < THREADS as usize {
            count(live.drain_usage());
        }
        for w in workers {
            w.join().unwrap();
        }
        count(live.drain_usage());
        assert_eq!((uses, scoped), (THREADS * USES, THREADS * USES));
    }

    #[test]
    fn an_older_state_never_replaces_a_newer_one() {
        let live = Live::default();
        assert!(live.apply(key(false), 10));
        assert!(live.apply(key(true), 12));
        // A follower that read the key before the revoke applies what it read: ignored.
        assert!(!live.apply(key(false), 11));
        assert!(live.key(&[7; 32]).unwrap().revoked);
        assert!(live.apply(session(false), 10));
        assert!(live.session(5).unwrap().is_live(0));
        assert!(live.apply(session(true), 12));
        assert!(
            live.session(5).is_none(),
            "a revoked session leaves only its tombstone"
        );
        assert!(!live.apply(session(false), 11));
        assert!(live.session(5).is_none());
        // A revocation seen before any state of the session holds too.
        let fresh = Live::default();
        assert!(fresh.apply(session(true), 3));
        assert!(!fresh.apply(session(false), 2));
        assert!(fresh.session(5).is_none());
    }

    #[test]
    fn counters_stay_with_their_key_across_updates() {
        let live = Live::default();
        live.apply(key(false), 1);
        let first = live.key(&[7; 32]).unwrap();
        first.counters.rates.general.hit(3600, 10).unwrap();
        first.record_use(3600, "10.0.0.1".parse().ok(), Some("etl/1.0"));
        live.apply(key(false), 2);
        let second = live.key(&[7; 32]).unwrap();
        assert!(Arc::ptr_eq(&first.counters, &second.counters));
        assert_eq!(
            second
                .counters
                .rates
                .general
                .hit(3600, 10)
                .unwrap()
                .remaining,
            8
        );
        second.counters.record_scope(Permission::ReportsRead, 3601);
        second.counters.record_scope(Permission::UsersManage, 3601);
        let usage = live.drain_usage();
        assert_eq!(
            usage.counts,
            vec![crate::domain::KeyUsage {
                id: 1,
                uses: 1,
                last_used_at: 3600,
                last_client: Some(("10.0.0.1".into(), "etl/1.0".into())),
            }]
        );
        assert_eq!(usage.scopes, vec![(1, "reports:read", 1, 3601)]);
        assert_eq!(usage.first_uses.len(), 1);
        // The same client again is no change to write.
        second.record_use(3602, "10.0.0.1".parse().ok(), Some("etl/1.0"));
        assert_eq!(live.drain_usage().counts[0].last_client, None);
    }

    #[test]
    fn touches_once_a_minute_across_states() {
        let live = Live::default();
        live.apply(session(false), 1);
        let s = live.session(5).unwrap();
        assert!(!s.due_for_touch(1030));
        assert!(s.due_for_touch(1060));
        live.apply(session(false), 2);
        let s = live.session(5).unwrap();
        assert!(!s.due_for_touch(1061));
        assert!(s.due_for_touch(1125));
    }
}
