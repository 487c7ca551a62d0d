//! Login throttling per account and per client address. An attempt reserves its place before
//! the password is checked, so parallel guesses cannot slip past the limit: with `max` failures
//! allowed, at most `max` attempts are ever judged before the lock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::domain::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Debug, Default)]
struct Counter {
    failures: Vec<UnixTime>,
    in_flight: u32,
    locked_until: UnixTime,
}

impl Counter {
    fn idle(&self, now: UnixTime) -> bool {
        self.failures.is_empty() && self.in_flight == 0 && self.locked_until <= now
    }
}

pub struct LoginThrottle {
    counters: Mutex<HashMap<Key, Counter>>,
    max_per_account: u32,
    max_per_address: u32,
    window: i64,
    lockout: i64,
}

/// Seconds until another attempt may be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

/// A reserved attempt. Dropping it without a verdict releases the place without counting a
/// failure (the password was right but a code is still needed, or the check never ran).
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: Vec<(Key, u32)>,
    settled: bool,
}

impl LoginThrottle {
    pub fn new(
        max_per_account: u32,
        max_per_address: u32,
        window_secs: i64,
        lockout_secs: i64,
    ) -> Self {
        LoginThrottle {
            counters: Mutex::new(HashMap::new()),
            max_per_account,
            max_per_address,
            window: window_secs,
            lockout: lockout_secs,
        }
    }

    /// Reserves an attempt for `account` (a normalised email) from `address`, or says how
    /// long to wait.
    pub fn begin(
        &self,
        account: &str,
        address: Option<IpAddr>,
        now: UnixTime,
    ) -> Result<Attempt<'_>, RetryAfter> {
        let mut keys = vec![(Key::Account(account.to_string()), self.max_per_account)];
        if let Some(ip) = address {
            keys.push((Key::Address(ip), self.max_per_address));
        }
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        if counters.len() > 100_000 {
            counters.retain(|_, c| !c.idle(now));
        }
        let mut wait = 0u64;
        for (key, max) in &keys {
            let Some(counter) = counters.get_mut(key) else {
                continue;
            };
            counter.failures.retain(|at| now - at < self.window);
            if counter.locked_until > now {
                wait = wait.max((counter.locked_until - now) as u64);
            } else if counter.failures.len() as u32 + counter.in_flight >= *max {
                let oldest = counter.failures.first().copied().unwrap_or(now);
                wait = wait.max((oldest + self.window - now).max(1) as u64);
            }
        }
        if wait > 0 {
            return Err(RetryAfter(wait));
        }
        for (key, _) in &keys {
            counters.entry(key.clone()).or_default().in_flight += 1;
        }
        Ok(Attempt {
            throttle: self,
            keys,
            settled: false,
        })
    }

    fn settle(&self, keys: &[(Key, u32)], failed: bool, clear_account: bool, now: UnixTime) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        for (key, max) in keys {
            let Some(counter) = counters.get_mut(key) else {
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
            if counter.idle(now) {
                counters.remove(key);
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

    #[test]
    fn locks_after_max_failures_then_recovers() {
        let t = LoginThrottle::new(3, 50, 900, 60);
        for _ in 0..3 {
            t.begin("a@x", ip(), 1000).unwrap().failed(1000);
        }
        assert_eq!(t.begin("a@x", ip(), 1001).err(), Some(RetryAfter(59)));
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
}
