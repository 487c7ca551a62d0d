//! Hourly request limits per API key (per user for JWT sessions): fixed windows aligned to the
//! clock hour, counted with atomics so the hot path takes no lock.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use crate::domain::UnixTime;

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
    count: AtomicU32,
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
        let used = self.count.fetch_add(1, Ordering::AcqRel).saturating_add(1);
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

/// The two limits of one key or user.
#[derive(Debug, Default)]
pub struct RateCounters {
    /// Every request.
    pub general: RateCounter,
    /// Report generations and dashboard refreshes.
    pub generation: RateCounter,
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
