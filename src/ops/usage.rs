//! What requests count in memory and the database learns later: API-key uses (per key and per
//! scope), first uses, public-link views and refused uses of known keys, written every two
//! seconds; and the live state's upkeep.

use std::sync::Arc;

use super::{App, AppState};
use crate::store::api_keys;
use crate::store::audit::{self, Entry, Outcome};

/// Writes the API-key uses (per key and per scope) and public-link views counted in
/// memory since the last flush, and audits first uses of keys and refused uses of known
/// ones (canary keys, keys past their rotation's overlap, addresses outside an allowlist).
pub async fn flush(app: &App) {
    let usage = app.auth.live.drain_usage();
    let views = app.views.drain();
    let refused = app.auth.refusals.drain(crate::domain::now());
    if usage.counts.is_empty()
        && usage.scopes.is_empty()
        && usage.first_uses.is_empty()
        && views.is_empty()
        && refused.is_empty()
    {
        app.auth.live.compact_revoked();
        return;
    }
    let (counted, kept_refused) = (views.clone(), refused.clone());
    let usage = Arc::new(usage);
    let counted_usage = usage.clone();
    let written = app
        .store
        .write(move |tx| {
            let usage = &*counted_usage;
            crate::store::public_links::record_views(tx, &counted)?;
            api_keys::record_usage(tx, &usage.counts)?;
            api_keys::record_scope_usage(tx, &usage.scopes)?;
            for (key_id, user_id, organization_id, prefix) in &usage.first_uses {
                audit::record(
                    tx,
                    &Entry {
                        organization_id: Some(*organization_id),
                        action: "api_key.first_used",
                        outcome: Outcome::Success,
                        user_id: Some(*user_id),
                        api_key_prefix: Some(prefix.to_string()),
                        target_type: Some("api_key"),
                        target_id: Some(*key_id),
                        ..Entry::default()
                    },
                )?;
            }
            for r in &refused {
                audit::record(tx, &refused_entry(r))?;
            }
            Ok(())
        })
        .await;
    match written {
        // Every use is written: revoked keys need no counters any more.
        Ok(()) => app.auth.live.compact_revoked(),
        // Put back for the next flush: a database that is locked or full for a while
        // loses no count.
        Err(e @ crate::store::StoreError::Unavailable { .. }) => {
            app.auth.live.restore_usage(&usage);
            app.views.restore(&views);
            app.auth.refusals.restore(kept_refused);
            tracing::warn!(error = %e, "recording API key usage and link views waits for the database");
        }
        // Anything else would fail again with the same batch: it is dropped, not retried.
        Err(e) => {
            tracing::error!(error = %e, "recording API key usage and link views failed; this batch is dropped")
        }
    }
}

/// The audit entry of refused uses of a known key: who presented it is unknown, so the entry
/// names the key (its owner, except for a canary, whose owner only planted it).
fn refused_entry(r: &crate::auth::refusals::Refused) -> Entry {
    use crate::auth::refusals::Refusal;
    let mut details = serde_json::json!({
        "prefix": &*r.key.prefix,
        "count": r.count,
        "first_at": crate::domain::Timestamp(r.first_at),
        "last_at": crate::domain::Timestamp(r.last_at),
    });
    if let Some(method) = &r.method {
        details["method"] = method.as_str().into();
    }
    if let Some(route) = r.route {
        details["route"] = route.into();
    }
    Entry {
        organization_id: Some(r.key.organization_id),
        action: r.refusal.action(),
        outcome: Outcome::Denied,
        user_id: (r.refusal != Refusal::CanaryUsed).then_some(r.key.user_id),
        api_key_prefix: Some(r.key.prefix.to_string()),
        ip: r.ip.map(|ip| ip.to_string()),
        user_agent: r.user_agent.clone(),
        target_type: Some("api_key"),
        target_id: Some(r.key.id),
        details: details.to_string(),
    }
}

/// Every two seconds: write the API-key usage, link views and refused key uses counted in
/// memory.
pub async fn flush_periodically(app: AppState) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(2));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        flush(&app).await;
    }
}

/// Every ten minutes: forget sessions past their end.
pub async fn forget_ended_periodically(app: AppState) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(600));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // A walk of every session: on a blocking thread, not on the request workers.
        let live = app.clone();
        let pruned =
            tokio::task::spawn_blocking(move || live.auth.live.prune(crate::domain::now())).await;
        if let Err(e) = pruned {
            tracing::error!(error = %e, "forgetting ended sessions failed");
        }
    }
}
