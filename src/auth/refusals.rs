//! Refused uses of known API keys that the audit log must show: a canary key, a key used
//! after its rotation's overlap, a key used from outside its allowlist. They are noted here on
//! the request path (no SQL there) and written by the usage flusher, which is woken at once.
//!
//! Bounded: identical uses (same key, refusal, address, user agent, method and route) between
//! two writes become one entry with a `count`; past `MAX_PENDING` different ones, further uses
//! of a key are folded into one entry per key and refusal, without address and user agent.
//! Every use is counted; none grows memory without bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::domain::{Id, UnixTime};

/// Different refused uses kept between two writes before they are folded per key.
const MAX_PENDING: usize = 1024;

/// Why a known key was refused, as its audit action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// `401 api_key_invalid`, like an unknown key.
    CanaryUsed,
    /// `401 api_key_revoked` or `api_key_expired` for a key replaced in a rotation.
    UsedAfterRotation,
    /// `403 ip_not_allowed`.
    IpDenied,
}

impl Refusal {
    pub fn action(self) -> &'static str {
        match self {
            Refusal::CanaryUsed => "api_key.canary_used",
            Refusal::UsedAfterRotation => "api_key.used_after_rotation",
            Refusal::IpDenied => "api_key.ip_denied",
        }
    }
}

/// The request a refused key came with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Client<'a> {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
    pub method: &'a str,
    /// The route's pattern, never the raw path.
    pub route: &'static str,
}

/// The key a refused use presented.
#[derive(Debug, Clone)]
pub struct RefusedKey {
    pub id: Id,
    pub user_id: Id,
    pub organization_id: Id,
    pub prefix: Arc<str>,
}

/// Address, user agent, method and route of a refused use.
type ClientPrint = (Option<IpAddr>, Box<str>, Box<str>, &'static str);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Fingerprint {
    key_id: Id,
    refusal: Refusal,
    /// `None` in a folded entry.
    client: Option<ClientPrint>,
}

/// One entry to write: what was refused, how often, when first and last.
#[derive(Debug, Clone)]
pub struct Refused {
    pub key: RefusedKey,
    pub refusal: Refusal,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub method: Option<String>,
    pub route: Option<&'static str>,
    pub count: u64,
    pub first_at: UnixTime,
    pub last_at: UnixTime,
}

#[derive(Default)]
pub struct Refusals {
    pending: Mutex<HashMap<Fingerprint, Refused>>,
    wake: Notify,
}

impl Refusals {
    pub fn note(&self, key: RefusedKey, refusal: Refusal, client: &Client<'_>, now: UnixTime) {
        let user_agent: String = client.user_agent.unwrap_or("").chars().take(256).collect();
        let method: String = client.method.chars().take(16).collect();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut print = Fingerprint {
            key_id: key.id,
            refusal,
            client: Some((
                client.ip,
                user_agent.clone().into(),
                method.clone().into(),
                client.route,
            )),
        };
        let folded = pending.len() >= MAX_PENDING && !pending.contains_key(&print);
        if folded {
            print.client = None;
        }
        pending
            .entry(print)
            .and_modify(|r| {
                r.count += 1;
                r.last_at = r.last_at.max(now);
            })
            .or_insert_with(|| Refused {
                key,
                refusal,
                ip: (!folded).then_some(client.ip).flatten(),
                user_agent: (!folded && !user_agent.is_empty()).then_some(user_agent),
                method: (!folded).then_some(method),
                route: (!folded).then_some(client.route),
                count: 1,
                first_at: now,
                last_at: now,
            });
        drop(pending);
        self.wake.notify_one();
    }

    /// Takes every refused use noted since the last call.
    pub fn drain(&self) -> Vec<Refused> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.drain().map(|(_, r)| r).collect()
    }

    /// Puts back entries that could not be written (they are merged with newer ones).
    pub fn restore(&self, entries: Vec<Refused>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for r in entries {
            let print = Fingerprint {
                key_id: r.key.id,
                refusal: r.refusal,
                client: None,
            };
            pending
                .entry(print)
                .and_modify(|p| {
                    p.count += r.count;
                    p.first_at = p.first_at.min(r.first_at);
                })
                .or_insert(Refused {
                    ip: None,
                    user_agent: None,
                    method: None,
                    route: None,
                    ..r
                });
        }
    }

    /// Completes when a refused use was noted since the last wake-up.
    pub async fn noted(&self) {
        self.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: Id) -> RefusedKey {
        RefusedKey {
            id,
            user_id: 1,
            organization_id: 1,
            prefix: "claribi_key_abcdefgh".into(),
        }
    }

    #[test]
    fn identical_uses_are_counted_in_one_entry_and_the_map_stays_bounded() {
        let refusals = Refusals::default();
        let client = Client {
            ip: "10.0.0.1".parse().ok(),
            user_agent: Some("curl/8"),
            method: "GET",
            route: "auth/verify",
        };
        for _ in 0..3 {
            refusals.note(key(1), Refusal::CanaryUsed, &client, 100);
        }
        let drained = refusals.drain();
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].count, 3);
        assert_eq!(drained[0].user_agent.as_deref(), Some("curl/8"));
        assert!(refusals.drain().is_empty());

        let agents: Vec<String> = (0..MAX_PENDING + 500).map(|i| format!("bot/{i}")).collect();
        for agent in &agents {
            let client = Client {
                user_agent: Some(agent),
                ..client
            };
            refusals.note(key(2), Refusal::IpDenied, &client, 100);
        }
        let drained = refusals.drain();
        assert_eq!(drained.len(), MAX_PENDING + 1);
        assert_eq!(
            drained.iter().map(|r| r.count).sum::<u64>(),
            agents.len() as u64,
            "every use is counted"
        );
        let folded = drained.iter().find(|r| r.user_agent.is_none()).unwrap();
        assert_eq!(folded.count, 500);
    }
}
