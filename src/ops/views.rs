//! Views of public links, counted in memory and written in batches with key usage: a public
//! read takes no write lock, even for a token that does not exist.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::Id;

/// Views not yet written, per link. Only links that exist are counted, so the map holds at
/// most one entry per link of the database.
#[derive(Default)]
pub struct ViewCounts {
    pending: Mutex<HashMap<Id, u64>>,
}

impl ViewCounts {
    pub fn count(&self, link: Id) {
        *self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(link)
            .or_default() += 1;
    }

    /// Views of `link` counted here and not yet written.
    pub fn pending(&self, link: Id) -> u64 {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&link)
            .copied()
            .unwrap_or(0)
    }

    /// Takes every count not yet written.
    pub fn drain(&self) -> Vec<(Id, u64)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .collect()
    }

    /// Puts counts back after a failed write, so that no view is lost.
    pub fn restore(&self, counts: &[(Id, u64)]) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (link, views) in counts {
            *pending.entry(*link).or_default() += views;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_counted_drained_and_restored() {
        let views = ViewCounts::default();
        views.count(3);
        views.count(3);
        views.count(4);
        assert_eq!(views.pending(3), 2);
        let mut drained = views.drain();
        drained.sort_unstable();
        assert_eq!(drained, vec![(3, 2), (4, 1)]);
        assert_eq!(views.pending(3), 0);
        views.restore(&drained);
        assert_eq!(views.pending(4), 1);
    }
}
