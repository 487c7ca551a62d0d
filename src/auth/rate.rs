//! Hourly request limits per API key (per user for JWT sessions): fixed windows aligned to the
//! clock hour, counted with atomics so the hot path takes no lock. Servers that share a
//! database add what the others counted in the window, as last read (every 250 ms, see
//! `ops::rates`); the counters that counted since the last publication queue themselves
//! (`Moved`), so that publishing costs the keys and users in use, not those held.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::domain::{Id, UnixTime};

const WINDOW: i64 = 3600;

/// What the `X-RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    /// Unix seconds at which the window starts anew.
    pub reset: UnixTime,
}

#[derive(Debug, Default)]
pub struct RateCounter {
    window: AtomicI64,
    /// Counted by this server in `window`.
    count: AtomicU32,
    /// Counted by the other servers in `others_window`, as last read from the database.
    others: AtomicU32,
    others_window: AtomicI64,
    /// The window (in hours) and count last published, packed: `hours << 32 | count`.
    published: std::sync::atomic::AtomicU64,
}

impl RateCounter {
    /// Counts one request; `Err` when it is past `limit` in this window.
    pub fn hit(&self, now: UnixTime, limit: u32) -> Result<RateInfo, RateInfo> {
        let window = now - now.rem_euclid(WINDOW);
        let seen = self.window.load(Ordering::Acquire);
        if seen != window
            && self
                .window
                .compare_exchange(seen, window, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.count.store(0, Ordering::Release);
        }
        let others = if self.others_window.load(Ordering::Acquire) == window {
            self.others.load(Ordering::Acquire)
        } else {
            0
        };
        let used = self
            .count
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1)
            .saturating_add(others);
        let info = RateInfo {
            limit,
            remaining: limit.saturating_sub(used),
            reset: window + WINDOW,
        };
        if used > limit {
            Err(info)
        } else {
            Ok(info)
        }
    }
}

impl RateCounter {
    /// The window this server counted in at `now` and its count there, if it counted any
    /// since the count it last published.
    pub fn unpublished(&self, now: UnixTime) -> Option<(UnixTime, u32)> {
        let window = now - now.rem_euclid(WINDOW);
        let count = self.count.load(Ordering::Acquire);
        let packed = ((window / WINDOW) as u64) << 32 | u64::from(count);
        (self.window.load(Ordering::Acquire) == window
            && count > 0
            && self.published.load(Ordering::Acquire) != packed)
            .then_some((window, count))
    }

    /// Notes `count` of `window` as published.
    pub fn published(&self, window: UnixTime, count: u32) {
        let packed = ((window / WINDOW) as u64) << 32 | u64::from(count);
        self.published.store(packed, Ordering::Release);
    }

    /// What the other servers counted in `window`: added to this server's count in that
    /// window, whether or not this server has counted in it yet.
    pub fn set_others(&self, window: UnixTime, count: u32) {
        self.others.store(count, Ordering::Release);
        self.others_window.store(window, Ordering::Release);
    }
}

/// The two limits of one key or user.
#[derive(Debug, Default)]
pub struct RateCounters {
    /// Every request.
    pub general: RateCounter,
    /// Report generations and dashboard refreshes.
    pub generation: RateCounter,
    /// Whose, and where they queue themselves when they count (`None`: counted here only).
    owner: Option<(RateSubject, Arc<Moved>)>,
    /// In `Moved`'s queue, until the sharer takes it.
    queued: AtomicBool,
}

impl RateCounters {
    /// The counters of `subject`, queued in `moved` when they count while counts are shared.
    pub fn new(subject: RateSubject, moved: Arc<Moved>) -> Self {
        RateCounters {
            owner: Some((subject, moved)),
            ..RateCounters::default()
        }
    }

    pub fn subject(&self) -> Option<RateSubject> {
        self.owner.as_ref().map(|(subject, _)| *subject)
    }

    /// Counts one request against the general limit (see `RateCounter::hit`).
    pub fn hit_general(self: &Arc<Self>, now: UnixTime, limit: u32) -> Result<RateInfo, RateInfo> {
        self.learn_others(now);
        let info = self.general.hit(now, limit);
        self.moved();
        info
    }

    /// Counts one report generation or dashboard refresh (see `RateCounter::hit`).
    pub fn hit_generation(
        self: &Arc<Self>,
        now: UnixTime,
        limit: u32,
    ) -> Result<RateInfo, RateInfo> {
        self.learn_others(now);
        let info = self.generation.hit(now, limit);
        self.moved();
        info
    }

    /// At the first count of a window on this server, what the other servers counted for
    /// these in it, as the sharer last read (`Moved::set_others`): from then on the sharer
    /// sets it at each round, since these counted here. Once per window: an atomic load after.
    fn learn_others(&self, now: UnixTime) {
        let Some((subject, moved)) = &self.owner else {
            return;
        };
        let window = now - now.rem_euclid(WINDOW);
        if !moved.on.load(Ordering::Relaxed)
            || self.general.others_window.load(Ordering::Acquire) == window
        {
            return;
        }
        let others = read(&moved.others);
        let (general, generation) = match others.get(subject) {
            Some(&(at, general, generation)) if at == window => (general, generation),
            _ => (0, 0),
        };
        self.generation.set_others(window, generation);
        self.general.set_others(window, general);
    }

    /// After a count: in the sharer's queue once until it takes these. The swap releases the
    /// count before it, which the sharer's swap of `queued` acquires before it reads the
    /// counts: a count is either read by the sharer that takes these or queues them again.
    fn moved(self: &Arc<Self>) {
        if let Some((_, moved)) = &self.owner {
            if moved.on.load(Ordering::Relaxed)
                && !self.queued.load(Ordering::Acquire)
                && !self.queued.swap(true, Ordering::AcqRel)
            {
                lock(&moved.queue).push(self.clone());
            }
        }
    }
}

/// Whose request counters: an API key's, or a user's (JWT sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateSubject {
    Key(Id),
    User(Id),
}

impl RateSubject {
    /// `key:<id>` or `user:<id>`, as the database names it.
    pub fn name(self) -> String {
        match self {
            RateSubject::Key(id) => format!("key:{id}"),
            RateSubject::User(id) => format!("user:{id}"),
        }
    }

    pub fn parse(name: &str) -> Option<RateSubject> {
        match name.split_once(':')? {
            ("key", id) => id.parse().ok().map(RateSubject::Key),
            ("user", id) => id.parse().ok().map(RateSubject::User),
            _ => None,
        }
    }
}

/// The counters that counted since the sharer last took them, each once: with one server
/// (`start` never called) nothing is queued.
#[derive(Debug, Default)]
pub struct Moved {
    on: AtomicBool,
    queue: Mutex<Vec<Arc<RateCounters>>>,
    /// What the other servers counted per key and user, as last read: (window, general,
    /// generation). Read by a counter at its first count of a window here.
    others: RwLock<HashMap<RateSubject, (UnixTime, u32, u32)>>,
}

impl Moved {
    /// From now on, counters that count queue themselves.
    pub fn start(&self) {
        self.on.store(true, Ordering::Release);
    }

    /// The counters queued since the last call, out of the queue: the next count of any of
    /// them queues it again.
    pub fn take(&self) -> Vec<Arc<RateCounters>> {
        let taken = std::mem::take(&mut *lock(&self.queue));
        for rates in &taken {
            rates.queued.swap(false, Ordering::AcqRel);
        }
        taken
    }

    /// What the other servers counted in `window`, as just read: replaces the last reading.
    pub fn set_others(&self, window: UnixTime, counts: HashMap<RateSubject, (u32, u32)>) {
        let counts = counts
            .into_iter()
            .map(|(subject, (general, generation))| (subject, (window, general, generation)))
            .collect();
        *self.others.write().unwrap_or_else(|e| e.into_inner()) = counts;
    }

    /// Queues again counters whose counts could not be published.
    pub fn put_back(&self, counters: Vec<Arc<RateCounters>>) {
        let mut queue = lock(&self.queue);
        for rates in counters {
            if !rates.queued.swap(true, Ordering::AcqRel) {
                queue.push(rates);
            }
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // A replacement of the whole map cannot leave it half-written.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A push or a take cannot leave the queue half-changed.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_queue_once_while_shared_and_again_after_they_are_taken() {
        let moved = Arc::new(Moved::default());
        let key = Arc::new(RateCounters::new(RateSubject::Key(7), moved.clone()));
        let user = Arc::new(RateCounters::new(RateSubject::User(3), moved.clone()));
        // Counts alone until sharing starts.
        key.hit_general(3600, 10).unwrap();
        assert!(moved.take().is_empty());
        moved.start();
        for _ in 0..3 {
            key.hit_general(3600, 10).unwrap();
        }
        user.hit_generation(3600, 10).unwrap();
        let taken = moved.take();
        let subjects: Vec<_> = taken.iter().map(|r| r.subject()).collect();
        assert_eq!(
            subjects,
            [Some(RateSubject::Key(7)), Some(RateSubject::User(3))]
        );
        assert_eq!(taken[0].general.unpublished(3600), Some((3600, 4)));
        assert!(moved.take().is_empty(), "nothing counted since");
        key.hit_general(3600, 10).unwrap();
        assert_eq!(moved.take().len(), 1);
        // What could not be published is queued again, once.
        moved.put_back(vec![user.clone(), user.clone()]);
        user.hit_general(3600, 10).unwrap();
        assert_eq!(moved.take().len(), 1);
    }

    #[test]
    fn a_first_count_here_includes_what_the_other_servers_counted() {
        let moved = Arc::new(Moved::default());
        moved.start();
        moved.set_others(3600, HashMap::from([(RateSubject::Key(9), (8, 1))]));
        let key = Arc::new(RateCounters::new(RateSubject::Key(9), moved.clone()));
        let info = key.hit_general(3601, 10).unwrap();
        assert_eq!(info.remaining, 1, "8 elsewhere and this one");
        assert!(
            key.hit_generation(3602, 1).is_err(),
            "1 elsewhere and this one"
        );
        // The next window starts from the others' count of that window (none read yet).
        assert_eq!(key.hit_general(7200, 10).unwrap().remaining, 9);
    }

    #[test]
    fn counts_within_the_hour_and_starts_again_after_it() {
        let c = RateCounter::default();
        let hour_start: i64 = 1_800_000_000; // a multiple of 3600
        let t = hour_start + 10;
        assert_eq!(c.hit(t, 2).map(|i| i.remaining), Ok(1));
        assert_eq!(c.hit(t + 1, 2).map(|i| i.remaining), Ok(0));
        let over = c.hit(t + 2, 2).unwrap_err();
        assert_eq!((over.remaining, over.reset), (0, hour_start + 3600));
        assert!(c.hit(t + 3600, 2).is_ok(), "a new window");
    }

    #[test]
    fn the_other_servers_counts_are_added_within_their_window() {
        let c = RateCounter::default();
        let hour_start: i64 = 1_800_000_000;
        assert_eq!(c.hit(hour_start, 10).map(|i| i.remaining), Ok(9));
        assert_eq!(c.unpublished(hour_start + 5), Some((hour_start, 1)));
        c.published(hour_start, 1);
        assert_eq!(
            c.unpublished(hour_start + 5),
            None,
            "nothing new to publish"
        );
        c.set_others(hour_start, 7);
        assert_eq!(c.hit(hour_start + 1, 10).map(|i| i.remaining), Ok(1));
        assert!(c.hit(hour_start + 2, 10).is_ok());
        assert!(c.hit(hour_start + 3, 10).is_err());
        // Another window's count does not apply; the others' count of a new window applies
        // before this server's first request in it.
        assert!(
            c.hit(hour_start + 3600, 10).is_ok(),
            "a new window starts clean"
        );
        c.set_others(hour_start + 7200, 9);
        assert_eq!(c.hit(hour_start + 7200, 10).map(|i| i.remaining), Ok(0));
        assert!(c.hit(hour_start + 7201, 10).is_err());
    }
}
