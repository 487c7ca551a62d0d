//! Login throttling per account and per client address. An attempt reserves its place before
//! the password is checked, under the locks of the shards it counts in, so parallel guesses
//! cannot slip past the limit: with `max` failures allowed, at most `max` attempts are ever
//! judged before the lock.
//!
//! The state is bounded whatever an attacker sends: entries expire on time (a sweep at most
//! once a minute drops those with no failure in the window and no lock), the map holds at most
//! `capacity` entries and IPv6 clients count per /64. At the bound a newcomer takes the place
//! of the entry least worth keeping (no attempt in flight; unlocked before locked; fewest
//! failures; the oldest last failure), so a login of an account and from an address that have
//! not failed is never refused, and what goes first is what an attacker's fresh emails leave:
//! single old failures. A shard holds at most `SHARD_SIZE` entries, so that choice is a short
//! walk under one shard's lock.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::domain::UnixTime;

/// Entries kept at most, over all shards, unless configured (`auth.throttle_max_entries`):
/// about 40 MB at the worst. (The server takes its figure from the configuration.)
#[cfg(test)]
pub const CAPACITY: usize = 100_000;
/// Shards at least, so that parallel logins rarely meet on one lock.
const MIN_SHARDS: usize = 16;
/// Entries per shard at most: the walk that picks whom to evict stays this short.
const SHARD_SIZE: usize = 4096;
/// A shard drops expired entries at most this often (seconds), or once per failure window
/// when that is shorter.
const SWEEP_EVERY: i64 = 60;
/// A refused attempt is audited at most once per key and this many seconds.
const AUDIT_EVERY: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Account(Box<str>),
    /// An IPv4 address, or the /64 of an IPv6 address.
    Address(IpAddr),
}

/// The address as the throttle counts it: IPv4 (mapped ones too), IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Debug, Default)]
struct Counter {
    /// Failures within the window, oldest first (at most `max` of them).
    failures: Vec<UnixTime>,
    in_flight: u32,
    locked_until: UnixTime,
    /// Refused attempts not yet audited, and when the last audit of them was.
    refused: u32,
    refused_audited_at: UnixTime,
}

impl Counter {
    /// Nothing left to count, lock or audit: an entry whose refusals were audited within the
    /// minute stays, so that its next refusals wait for the minute even across lockouts.
    fn idle(&self, now: UnixTime, window: i64) -> bool {
        self.in_flight == 0
            && self.locked_until <= now
            && self.failures.last().is_none_or(|at| now - at >= window)
            && now - self.refused_audited_at >= AUDIT_EVERY
    }

    /// Counts one refused attempt; when the last audit of them is a minute old, answers the
    /// number refused since, to be audited now.
    fn refused_once(&mut self, now: UnixTime) -> Option<u32> {
        self.refused = self.refused.saturating_add(1);
        if now - self.refused_audited_at < AUDIT_EVERY {
            return None;
        }
        let count = std::mem::take(&mut self.refused);
        self.refused_audited_at = now;
        Some(count)
    }

    /// What keeping this entry is worth, lowest first to go: a lock outweighs any number of
    /// failures, more failures outweigh fewer, a recent failure an older one.
    fn worth(&self, now: UnixTime) -> (bool, usize, UnixTime) {
        (
            self.locked_until > now,
            self.failures.len(),
            self.failures.last().copied().unwrap_or(UnixTime::MIN),
        )
    }
}

#[derive(Default)]
struct Shard {
    counters: HashMap<Key, Counter>,
}

pub struct LoginThrottle {
    shards: Vec<Mutex<Shard>>,
    /// When every shard was last swept.
    swept_at: std::sync::atomic::AtomicI64,
    hasher: std::collections::hash_map::RandomState,
    per_shard: usize,
    /// Entries forgotten at the bound, for the log.
    evicted: std::sync::atomic::AtomicU64,
    /// Unlocks so far (`unlock_account`), moved under the account's shard lock: a lock read
    /// from the database before an unlock is not remembered after it (`remember_lock`).
    unlocks: std::sync::atomic::AtomicU64,
    max_per_account: u32,
    max_per_address: u32,
    window: i64,
    lockout: i64,
}

/// Why an attempt may not go on, and what of it is to be audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Seconds until another attempt may be made.
    pub retry_after: u64,
    /// Keys whose refusals are due for an audit entry, with the number refused since the last.
    pub audit: Vec<(Key, u32)>,
}

/// A reserved attempt. Dropping it without a verdict releases the place without counting a
/// failure (the password was right but a code is still needed, or the check never ran).
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: Vec<(Key, u32)>,
    settled: bool,
}

impl LoginThrottle {
    #[cfg(test)]
    pub fn new(
        max_per_account: u32,
        max_per_address: u32,
        window_secs: i64,
        lockout_secs: i64,
    ) -> Self {
        Self::with_capacity(
            max_per_account,
            max_per_address,
            window_secs,
            lockout_secs,
            CAPACITY,
        )
    }

    pub fn with_capacity(
        max_per_account: u32,
        max_per_address: u32,
        window_secs: i64,
        lockout_secs: i64,
        capacity: usize,
    ) -> Self {
        let capacity = capacity.max(1);
        let shards = capacity.div_ceil(SHARD_SIZE).max(MIN_SHARDS);
        LoginThrottle {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            swept_at: std::sync::atomic::AtomicI64::new(0),
            hasher: std::collections::hash_map::RandomState::new(),
            per_shard: capacity.div_ceil(shards).max(1),
            evicted: std::sync::atomic::AtomicU64::new(0),
            unlocks: std::sync::atomic::AtomicU64::new(0),
            max_per_account,
            max_per_address,
            window: window_secs,
            lockout: lockout_secs,
        }
    }

    fn index(&self, key: &Key) -> usize {
        (self.hasher.hash_one(key) as usize) % self.shards.len()
    }

    fn shard(&self, key: &Key) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[self.index(key)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Sweeps every shard, one lock at a time, when a sweep is due.
    fn sweep_if_due(&self, now: UnixTime) {
        use std::sync::atomic::Ordering;
        let last = self.swept_at.load(Ordering::Acquire);
        if now - last < SWEEP_EVERY.min(self.window.max(1))
            || self
                .swept_at
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            self.sweep(&mut shard, now);
        }
    }

    fn sweep(&self, shard: &mut Shard, now: UnixTime) {
        let window = self.window;
        shard.counters.retain(|_, c| {
            c.failures.retain(|at| now - at < window);
            !c.idle(now, window)
        });
    }

    /// Makes room for one more entry in a full shard: expired entries go first, then the one
    /// least worth keeping. An entry with an attempt in flight is never chosen (its verdict
    /// must find it); when every entry has one, the shard grows past its bound by the
    /// attempts in flight, which `max_pending_password_checks` bounds.
    fn make_room(&self, shard: &mut Shard, now: UnixTime) {
        self.sweep(shard, now);
        if shard.counters.len() < self.per_shard {
            return;
        }
        let least = shard
            .counters
            .iter()
            .filter(|(_, c)| c.in_flight == 0)
            .min_by_key(|(_, c)| c.worth(now))
            .map(|(key, _)| key.clone());
        if let Some(key) = least {
            shard.counters.remove(&key);
            let before = self
                .evicted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if (before + 1).is_power_of_two() {
                tracing::warn!(
                    forgotten = before + 1,
                    "login throttle at its bound (auth.throttle_max_entries); forgetting the \
                     entries least worth keeping"
                );
            }
        }
    }

    /// How many entries are held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).counters.len())
            .sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every expired entry now (the periodic sweeps do the same, lazily).
    #[cfg(test)]
    pub fn sweep_all(&self, now: UnixTime) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            self.sweep(&mut shard, now);
            shard.counters.shrink_to_fit();
        }
    }

    /// Reserves an attempt for `account` (a normalised email) from `address`, or says how
    /// long to wait.
    pub fn begin(
        &self,
        account: &str,
        address: Option<IpAddr>,
        now: UnixTime,
    ) -> Result<Attempt<'_>, Refused> {
        let mut keys = vec![(Key::Account(account.into()), self.max_per_account)];
        if let Some(ip) = address {
            keys.push((Key::Address(address_key(ip)), self.max_per_address));
        }
        self.sweep_if_due(now);
        // The check and the reservation happen under the locks of every shard involved
        // (taken in index order), so parallel attempts cannot all pass the same check.
        let index: Vec<usize> = keys.iter().map(|(k, _)| self.index(k)).collect();
        let mut order = index.clone();
        order.sort_unstable();
        order.dedup();
        let mut guards: Vec<(usize, std::sync::MutexGuard<'_, Shard>)> = order
            .iter()
            .map(|&i| (i, self.shards[i].lock().unwrap_or_else(|e| e.into_inner())))
            .collect();
        let mut wait = 0u64;
        for ((key, max), i) in keys.iter().zip(&index) {
            let Some((_, shard)) = guards.iter_mut().find(|(j, _)| j == i) else {
                continue;
            };
            if let Some(counter) = shard.counters.get_mut(key) {
                counter.failures.retain(|at| now - at < self.window);
                if counter.locked_until > now {
                    wait = wait.max((counter.locked_until - now) as u64);
                } else if counter.failures.len() as u32 + counter.in_flight >= *max {
                    let oldest = counter.failures.first().copied().unwrap_or(now);
                    wait = wait.max((oldest + self.window - now).max(1) as u64);
                }
            }
        }
        if wait > 0 {
            let mut audit = Vec::new();
            for ((key, _), i) in keys.iter().zip(&index) {
                let Some((_, shard)) = guards.iter_mut().find(|(j, _)| j == i) else {
                    continue;
                };
                if let Some(count) = shard
                    .counters
                    .get_mut(key)
                    .and_then(|counter| counter.refused_once(now))
                {
                    audit.push((key.clone(), count));
                }
            }
            return Err(Refused {
                retry_after: wait,
                audit,
            });
        }
        for ((key, _), i) in keys.iter().zip(&index) {
            if let Some((_, shard)) = guards.iter_mut().find(|(j, _)| j == i) {
                if !shard.counters.contains_key(key) && shard.counters.len() >= self.per_shard {
                    self.make_room(shard, now);
                }
                shard.counters.entry(key.clone()).or_default().in_flight += 1;
            }
        }
        drop(guards);
        Ok(Attempt {
            throttle: self,
            keys,
            settled: false,
        })
    }

    /// With several servers (PostgreSQL) the counts live in the database and this throttle
    /// holds only the locks read from there, so that a refused login costs no database work:
    /// `Some` when `account` or `address` is known locked at `now`, with the refusals due for
    /// an audit entry (at most once per key and minute on this server).
    pub fn refuse_if_locked(
        &self,
        account: &str,
        address: Option<IpAddr>,
        now: UnixTime,
    ) -> Option<Refused> {
        let mut keys = vec![Key::Account(account.into())];
        if let Some(ip) = address {
            keys.push(Key::Address(address_key(ip)));
        }
        self.sweep_if_due(now);
        let wait = keys
            .iter()
            .filter_map(|key| {
                let until = self.shard(key).counters.get(key)?.locked_until;
                (until > now).then_some(until - now)
            })
            .max()?;
        let mut audit = Vec::new();
        for key in keys {
            let count = self
                .shard(&key)
                .counters
                .get_mut(&key)
                .and_then(|counter| counter.refused_once(now));
            if let Some(count) = count {
                audit.push((key, count));
            }
        }
        Some(Refused {
            retry_after: wait as u64,
            audit,
        })
    }

    /// Ends `account`'s lockout and forgets its failures (an administrator's unlock). Its
    /// attempts in flight and the minute of its last refusal audit stay. With several servers
    /// this drops the copy of the database's lock (the unlock cleared the database's counts).
    pub fn unlock_account(&self, account: &str) {
        let key = Key::Account(account.into());
        let mut shard = self.shard(&key);
        self.unlocks
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Some(counter) = shard.counters.get_mut(&key) {
            counter.failures.clear();
            counter.locked_until = 0;
        }
    }

    /// The number of unlocks so far: taken before a read of the shared counts, and given to
    /// `remember_lock` with what the read found.
    pub fn unlocks(&self) -> u64 {
        self.unlocks.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Holds a lock read from the shared counts (see `refuse_if_locked`) until `until`, and when
    /// the shared counts last audited the key's refusals, so that this server's audits of them
    /// keep to once a minute with those. An account's lock is not held when an unlock came
    /// since `unlocks_before_read` (`unlocks`): the read may predate it, and holding what it
    /// saw would lock the account here again until the lock's end.
    pub fn remember_lock(
        &self,
        key: Key,
        until: UnixTime,
        audited_at: UnixTime,
        now: UnixTime,
        unlocks_before_read: u64,
    ) {
        if until <= now {
            return;
        }
        let mut shard = self.shard(&key);
        if matches!(key, Key::Account(_)) && self.unlocks() != unlocks_before_read {
            return;
        }
        if !shard.counters.contains_key(&key) && shard.counters.len() >= self.per_shard {
            self.make_room(&mut shard, now);
        }
        let counter = shard.counters.entry(key).or_default();
        counter.locked_until = counter.locked_until.max(until);
        counter.refused_audited_at = counter.refused_audited_at.max(audited_at);
    }

    fn settle(&self, keys: &[(Key, u32)], failed: bool, clear_account: bool, now: UnixTime) {
        for (key, max) in keys {
            let mut shard = self.shard(key);
            let Some(counter) = shard.counters.get_mut(key) else {
                continue;
            };
            counter.in_flight = counter.in_flight.saturating_sub(1);
            if failed {
                counter.failures.push(now);
                counter.failures.retain(|at| now - at < self.window);
                if counter.failures.len() as u32 >= *max {
                    counter.locked_until = now + self.lockout;
                    counter.failures.clear();
                }
            } else if clear_account && matches!(key, Key::Account(_)) {
                counter.failures.clear();
            }
            if counter.idle(now, self.window) && counter.refused == 0 {
                shard.counters.remove(key);
            }
        }
    }
}

impl Attempt<'_> {
    /// A wrong password or code: counts against the account and the address.
    pub fn failed(mut self, now: UnixTime) {
        self.settled = true;
        self.throttle.settle(&self.keys, true, false, now);
    }

    /// A successful login clears the account's failures.
    pub fn succeeded(mut self, now: UnixTime) {
        self.settled = true;
        self.throttle.settle(&self.keys, false, true, now);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle
                .settle(&self.keys, false, false, crate::domain::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip() -> Option<IpAddr> {
        Some("127.0.0.1".parse().unwrap())
    }

    fn wait(r: Result<Attempt<'_>, Refused>) -> Option<u64> {
        r.err().map(|e| e.retry_after)
    }

    #[test]
    fn locks_after_max_failures_then_recovers() {
        let t = LoginThrottle::new(3, 50, 900, 60);
        for _ in 0..3 {
            t.begin("a@x", ip(), 1000).unwrap().failed(1000);
        }
        assert_eq!(wait(t.begin("a@x", ip(), 1001)), Some(59));
        assert!(t.begin("b@x", ip(), 1001).is_ok(), "other accounts go on");
        assert!(t.begin("a@x", ip(), 1060).is_ok(), "after the lockout");
    }

    #[test]
    fn parallel_attempts_cannot_exceed_the_limit() {
        let t = LoginThrottle::new(5, 50, 900, 900);
        let held: Vec<_> = (0..50)
            .filter_map(|_| t.begin("a@x", ip(), 1000).ok())
            .collect();
        assert_eq!(held.len(), 5);
        for a in held {
            a.failed(1000);
        }
        assert!(t.begin("a@x", ip(), 1000).is_err());
    }

    #[test]
    fn success_clears_and_neutral_attempts_do_not_count() {
        let t = LoginThrottle::new(3, 50, 900, 60);
        t.begin("a@x", ip(), 1000).unwrap().failed(1000);
        t.begin("a@x", ip(), 1000).unwrap().failed(1000);
        t.begin("a@x", ip(), 1000).unwrap().succeeded(1000);
        for _ in 0..10 {
            drop(t.begin("a@x", ip(), 1000).unwrap());
        }
        t.begin("a@x", ip(), 1000).unwrap().failed(1000);
        t.begin("a@x", ip(), 1000).unwrap().failed(1000);
        assert!(t.begin("a@x", ip(), 1000).is_ok());
    }

    #[test]
    fn the_address_limit_spans_accounts() {
        let t = LoginThrottle::new(5, 3, 900, 60);
        for n in 0..3 {
            t.begin(&format!("u{n}@x"), ip(), 1000)
                .unwrap()
                .failed(1000);
        }
        assert!(t.begin("fresh@x", ip(), 1000).is_err());
        assert!(t
            .begin("fresh@x", Some("10.0.0.1".parse().unwrap()), 1000)
            .is_ok());
    }

    #[test]
    fn entries_with_one_old_failure_expire_on_time() {
        let t = LoginThrottle::new(5, 1_000_000, 900, 900);
        for n in 0..1000 {
            t.begin(&format!("user{n}@x"), ip(), 1000)
                .unwrap()
                .failed(1000);
        }
        assert_eq!(t.len(), 1001);
        // The next login after the window has passed sweeps everything.
        drop(t.begin("later@x", None, 1000 + 900 + 61));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let t = LoginThrottle::new(100, 3, 900, 60);
        for n in 1..=3 {
            let ip: IpAddr = format!("2001:db8:1:2::{n}").parse().unwrap();
            t.begin(&format!("u{n}@x"), Some(ip), 1000)
                .unwrap()
                .failed(1000);
        }
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(t.begin("v@x", Some(same_64), 1000).is_err());
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(t.begin("v@x", Some(other_64), 1000).is_ok());
        assert_eq!(
            address_key("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn at_the_bound_the_least_worth_goes_and_a_clean_login_is_never_refused() {
        let capacity = 64;
        let t = LoginThrottle::with_capacity(3, 1_000_000, 900, 900, capacity);
        // A victim locked out, and one with two failures.
        for _ in 0..3 {
            t.begin("locked@x", None, 1000).unwrap().failed(1000);
        }
        t.begin("victim@x", None, 1000).unwrap().failed(1000);
        t.begin("victim@x", None, 1000).unwrap().failed(1000);
        // The attacker fills the map many times over with one failure per fresh email.
        for n in 0..10_000 {
            let attempt = t.begin(&format!("spam{n}@x"), None, 1001);
            assert!(attempt.is_ok(), "newcomer {n} refused at the bound");
            attempt.unwrap().failed(1001);
        }
        assert!(t.len() <= capacity, "{} entries", t.len());
        // A login of an account that never failed goes on.
        assert!(t.begin("fresh@x", None, 1002).is_ok());
        // The lock held: still refused.
        assert!(t.begin("locked@x", None, 1002).is_err());
        // The two failures outweighed the attacker's single ones: one more locks the account.
        t.begin("victim@x", None, 1002).unwrap().failed(1002);
        assert!(t.begin("victim@x", None, 1003).is_err());
    }

    #[test]
    fn an_entry_with_an_attempt_in_flight_is_never_evicted() {
        let t = LoginThrottle::with_capacity(3, 1_000_000, 900, 900, 16);
        let held: Vec<_> = (0..16)
            .map(|n| t.begin(&format!("held{n}@x"), None, 1000).unwrap())
            .collect();
        // Newcomers fill every shard meanwhile; none of them is refused.
        for n in 0..1000 {
            t.begin(&format!("newcomer{n}@x"), None, 1000)
                .unwrap()
                .failed(1000);
        }
        for a in held {
            a.failed(1001);
        }
        // Each verdict found its entry: two more failures lock every one of them.
        for n in 0..16 {
            let who = format!("held{n}@x");
            t.begin(&who, None, 1001).unwrap().failed(1001);
            t.begin(&who, None, 1001).unwrap().failed(1001);
            assert!(t.begin(&who, None, 1002).is_err(), "{who} lost a failure");
        }
    }

    #[test]
    fn large_bounds_are_spread_over_more_shards() {
        let t = LoginThrottle::with_capacity(3, 3, 900, 900, 1_000_000);
        assert!(t.shards.len() * SHARD_SIZE >= 1_000_000);
        assert!(t.per_shard <= SHARD_SIZE);
        assert_eq!(LoginThrottle::new(3, 3, 900, 900).shards.len(), 25);
    }

    #[test]
    fn a_remembered_lock_refuses_without_a_count_and_ends_on_time() {
        let t = LoginThrottle::new(3, 10, 900, 300);
        let now = 1_000;
        assert_eq!(t.refuse_if_locked("ada@example.com", ip(), now), None);
        assert!(t.is_empty(), "an unlocked check leaves nothing behind");
        t.remember_lock(
            Key::Account("ada@example.com".into()),
            now + 120,
            0,
            now,
            t.unlocks(),
        );
        let refused = t.refuse_if_locked("ada@example.com", ip(), now).unwrap();
        assert_eq!(refused.retry_after, 120);
        assert_eq!(
            refused.audit,
            vec![(Key::Account("ada@example.com".into()), 1)]
        );
        let refused = t
            .refuse_if_locked("ada@example.com", ip(), now + 1)
            .unwrap();
        assert!(refused.audit.is_empty(), "audited at most once a minute");
        // Another account from the same address is not locked.
        assert_eq!(t.refuse_if_locked("bob@example.com", ip(), now), None);
        assert_eq!(t.refuse_if_locked("ada@example.com", ip(), now + 120), None);
        // A lock already over is not held.
        t.remember_lock(
            Key::Account("eve@example.com".into()),
            now,
            0,
            now,
            t.unlocks(),
        );
        assert_eq!(t.refuse_if_locked("eve@example.com", ip(), now), None);
        // Refusals the shared counts audited 30 s ago wait for the rest of their minute, and
        // the minute holds across a second lockout.
        let eve = || Key::Account("eve@example.com".into());
        t.remember_lock(eve(), now + 10, now - 30, now, t.unlocks());
        assert!(t
            .refuse_if_locked("eve@example.com", None, now)
            .unwrap()
            .audit
            .is_empty());
        t.sweep_all(now + 20);
        t.remember_lock(eve(), now + 40, 0, now + 20, t.unlocks());
        assert!(t
            .refuse_if_locked("eve@example.com", None, now + 29)
            .unwrap()
            .audit
            .is_empty());
        assert_eq!(
            t.refuse_if_locked("eve@example.com", None, now + 30)
                .unwrap()
                .audit,
            vec![(eve(), 3)]
        );
    }

    #[test]
    fn refusals_are_audited_once_a_minute_with_their_count() {
        let t = LoginThrottle::new(1, 50, 900, 900);
        t.begin("a@x", ip(), 1000).unwrap().failed(1000);
        let first = t.begin("a@x", ip(), 1001).err().unwrap();
        let localhost = Key::Address("127.0.0.1".parse().unwrap());
        assert_eq!(
            first.audit,
            vec![(Key::Account("a@x".into()), 1), (localhost.clone(), 1)]
        );
        for s in 2..30 {
            assert!(t
                .begin("a@x", ip(), 1000 + s)
                .err()
                .unwrap()
                .audit
                .is_empty());
        }
        let later = t.begin("a@x", ip(), 1061).err().unwrap();
        assert_eq!(
            later.audit,
            vec![(Key::Account("a@x".into()), 29), (localhost, 29)]
        );
    }

    #[test]
    fn an_unlock_ends_the_lockout_and_the_failures_of_that_account_only() {
        let t = LoginThrottle::new(3, 100, 900, 900);
        let fail = |who: &str, times: usize, at: UnixTime| {
            for _ in 0..times {
                t.begin(who, None, at).unwrap().failed(at);
            }
        };
        fail("ada@example.com", 3, 1_000);
        fail("bob@example.com", 3, 1_000);
        assert!(
            t.begin("ada@example.com", None, 1_001).is_err(),
            "ada locked"
        );
        t.unlock_account("ada@example.com");
        assert!(
            t.begin("ada@example.com", None, 1_002).is_ok(),
            "ada unlocked"
        );
        assert!(
            t.begin("bob@example.com", None, 1_002).is_err(),
            "bob still locked"
        );
        // Failures short of a lock are forgotten too: two before and two after are not three.
        fail("cy@example.com", 2, 1_000);
        t.unlock_account("cy@example.com");
        fail("cy@example.com", 2, 1_003);
        assert!(t.begin("cy@example.com", None, 1_004).is_ok());
    }

    #[test]
    fn a_lock_read_before_an_unlock_is_not_held_after_it() {
        let t = LoginThrottle::new(3, 100, 900, 900);
        let before_read = t.unlocks();
        // The unlock is applied while the read of the shared counts is under way...
        t.unlock_account("ada@example.com");
        // ...and the lock that read saw is not held here.
        t.remember_lock(
            Key::Account("ada@example.com".into()),
            1_900,
            0,
            1_000,
            before_read,
        );
        assert!(t.refuse_if_locked("ada@example.com", None, 1_001).is_none());
        // An address's lock is not an account's: it is held.
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        t.remember_lock(Key::Address(ip), 1_900, 0, 1_000, before_read);
        assert!(t
            .refuse_if_locked("x@example.com", Some(ip), 1_001)
            .is_some());
        // Read after the unlock, it is held.
        t.remember_lock(
            Key::Account("ada@example.com".into()),
            1_900,
            0,
            1_000,
            t.unlocks(),
        );
        assert!(t.refuse_if_locked("ada@example.com", None, 1_001).is_some());
    }
}
