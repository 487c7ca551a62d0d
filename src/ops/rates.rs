//! Rate limits across servers that share a database: every 250 ms each server publishes what
//! it counted per key and user in the current hour and reads what the others counted, which
//! its counters add to their own (`auth::rate`). A limit therefore holds across servers with at
//! most a second of lag; with one server (SQLite) nothing of this runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::rate::{RateCounter, RateCounters, RateSubject};
use crate::domain::now;
use crate::ops::AppState;
use crate::store::rates;

/// How often counts are published and read. A count is published within this of its request
/// and read by another server within this of its publication: a limit lags at most twice
/// this (half a second, against the contract's one) behind the requests of every server.
pub const EVERY: Duration = Duration::from_millis(250);

fn counter<'a>(rates: &'a RateCounters, kind: &str) -> &'a RateCounter {
    if kind == "general" {
        &rates.general
    } else {
        &rates.generation
    }
}

/// Runs for the life of the server. Each round publishes the counters that counted since the
/// last (`Moved`), and sets what the other servers counted on the counters that counted here
/// this window; a counter that first counts here later reads the others' count of the round
/// (`Moved::set_others`) at that count. Its cost is the keys and users in use, never the live
/// state's size.
pub async fn share_periodically(app: AppState) {
    let moved = app.auth.live.moved_rates().clone();
    moved.start();
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = Instant::now();
    let mut failing = false;
    // The counters that counted here in `window`, by whose they are.
    let mut window = 0;
    let mut seen: HashMap<RateSubject, Arc<RateCounters>> = HashMap::new();
    loop {
        ticker.tick().await;
        let at = now();
        let this_window = at - at.rem_euclid(3600);
        if this_window != window {
            window = this_window;
            seen.clear();
        }
        let taken = moved.take();
        let mut counts = Vec::new();
        let mut counted = Vec::new();
        for rates in &taken {
            let Some(subject) = rates.subject() else {
                continue;
            };
            seen.insert(subject, rates.clone());
            for kind in ["general", "generation"] {
                if let Some((window, n)) = counter(rates, kind).unpublished(at) {
                    counts.push((subject.name(), kind, window, n));
                    counted.push((rates.clone(), kind, window, n));
                }
            }
        }
        let prune = last_prune.elapsed() >= Duration::from_secs(3600);
        let server = app.server_id.clone();
        let throttle_rules = crate::store::throttle::Rules {
            window: app.config.auth.failure_window.0.as_secs() as i64,
            lockout: app.config.auth.lockout.0.as_secs() as i64,
        };
        let store = app.store.clone();
        // Only this server's rows are written: no need to wait for the writers' lock.
        let shared = crate::store::blocking(move || {
            store.write_own_rows_blocking(|tx| {
                if prune {
                    rates::prune(tx, window)?;
                    // The shared login throttle's rows no rule looks at any more, too.
                    crate::store::throttle::prune(tx, throttle_rules, at)?;
                }
                rates::publish(tx, &server, &counts)?;
                rates::others(tx, &server, window)
            })
        })
        .await
        .map_err(|e| crate::store::StoreError::Task(e.to_string()))
        .and_then(|r| r);
        match shared {
            Ok(others) => {
                if prune {
                    last_prune = Instant::now();
                }
                failing = false;
                for (rates, kind, window, n) in &counted {
                    counter(rates, kind).published(*window, *n);
                }
                let mut counts: HashMap<RateSubject, (u32, u32)> = HashMap::new();
                for (subject, kind, n) in others {
                    let Some(subject) = RateSubject::parse(&subject) else {
                        continue;
                    };
                    let both = counts.entry(subject).or_default();
                    if kind == "general" {
                        both.0 = n;
                    } else {
                        both.1 = n;
                    }
                }
                for (subject, rates) in &seen {
                    let (general, generation) = counts.get(subject).copied().unwrap_or_default();
                    rates.general.set_others(window, general);
                    rates.generation.set_others(window, generation);
                }
                // For the counters that have not counted here yet: read at their first count.
                moved.set_others(window, counts);
            }
            Err(e) => {
                // Published at the next round that works.
                moved.put_back(taken);
                if !failing {
                    failing = true;
                    tracing::warn!(error = %e, "sharing rate-limit counts failed; each server counts alone until it works");
                }
            }
        }
    }
}
