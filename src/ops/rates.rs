//! Rate limits across servers that share a database: every second each server publishes what
//! it counted per key and user in the current hour and reads what the others counted, which
//! its counters add to their own (`auth::rate`). A limit therefore holds across servers with at
//! most a second of lag; with one server (SQLite) nothing of this runs.

use std::time::{Duration, Instant};

use crate::app::AppState;
use crate::auth::rate::{RateCounter, RateCounters};
use crate::domain::now;
use crate::store::rates;

/// How often counts are published and read. A count is published within this of its request
/// and read by another server within this of its publication: a limit lags at most twice
/// this, one second, behind the requests of every server.
pub const EVERY: Duration = Duration::from_millis(500);

fn counter<'a>(rates: &'a RateCounters, kind: &str) -> &'a RateCounter {
    if kind == "general" {
        &rates.general
    } else {
        &rates.generation
    }
}

/// Runs for the life of the server.
pub async fn share_periodically(app: AppState) {
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = Instant::now();
    let mut failing = false;
    loop {
        ticker.tick().await;
        let at = now();
        let mut counted = Vec::new();
        let mut counts = Vec::new();
        for (subject, rates) in app.auth.live.rate_subjects() {
            for kind in ["general", "generation"] {
                if let Some((window, n)) = counter(&rates, kind).local(at) {
                    counts.push((subject.clone(), kind, window, n));
                    counted.push((rates.clone(), kind, window));
                }
            }
        }
        let prune = last_prune.elapsed() >= Duration::from_secs(3600);
        if counts.is_empty() && !prune {
            continue;
        }
        let server = app.server_id.clone();
        let throttle_rules = crate::store::throttle::Rules {
            window: app.config.auth.failure_window.0.as_secs() as i64,
            lockout: app.config.auth.lockout.0.as_secs() as i64,
        };
        let written = app
            .store
            .write(move |tx| {
                if prune {
                    rates::prune(tx, at - at.rem_euclid(3600))?;
                    // The shared login throttle's rows no rule looks at any more, too.
                    crate::store::throttle::prune(tx, throttle_rules, at)?;
                }
                rates::publish(tx, &server, &counts)
            })
            .await;
        match written {
            Ok(others) => {
                if prune {
                    last_prune = Instant::now();
                }
                failing = false;
                for ((rates, kind, window), n) in counted.iter().zip(others) {
                    counter(rates, kind).set_others(*window, n);
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "sharing rate-limit counts failed; each server counts alone until it works");
            }
            Err(_) => {}
        }
    }
}
