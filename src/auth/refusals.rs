//! Refused uses of known API keys that the audit log must show: a canary key, a key used
//! after its rotation's overlap, a key used from outside its allowlist. They are noted here on
//! the request path (no SQL there) and written by the usage flusher on its regular tick: a
//! refused use causes no write of its own, so a canary's answer cannot be told from an unknown
//! key's by the database work that follows it.
//!
//! Bounded, per key: identical uses (same key, refusal, address, user agent, method and route)
//! between two writes become one entry with a `count`; each key and refusal gets at most
//! `CLIENTS_PER_MINUTE` entries with their own client details a minute, and further uses are
//! folded into one entry per key and refusal and write, without address and user agent. A
//! flood of one key thus writes about one entry per flush, and cannot crowd out another key's
//! (another organization's) details. Every use is counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::domain::{Id, UnixTime};

/// Entries with their own client details per key and refusal and minute; then folded.
const CLIENTS_PER_MINUTE: u32 = 16;

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
struct Pending {
    entries: HashMap<Fingerprint, Refused>,
    /// Per key and refusal: the minute and how many detailed entries it started.
    budget: HashMap<(Id, Refusal), (UnixTime, u32)>,
}

#[derive(Default)]
pub struct Refusals {
    pending: Mutex<Pending>,
}

impl Refusals {
    pub fn note(&self, key: RefusedKey, refusal: Refusal, client: &Client<'_>, now: UnixTime) {
        let user_agent: String = client.user_agent.unwrap_or("").chars().take(256).collect();
        let method: String = client.method.chars().take(16).collect();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Pending { entries, budget } = &mut *pending;
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
        let mut folded = false;
        if !entries.contains_key(&print) {
            let minute = now / 60;
            let (at, used) = budget.entry((key.id, refusal)).or_insert((minute, 0));
            if *at != minute {
                (*at, *used) = (minute, 0);
            }
            if *used < CLIENTS_PER_MINUTE {
                *used += 1;
            } else {
                folded = true;
                print.client = None;
            }
        }
        entries
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
    }

    /// Takes every refused use noted since the last call.
    pub fn drain(&self, now: UnixTime) -> Vec<Refused> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        // Budgets of past minutes are done with: the map holds only keys refused lately.
        pending.budget.retain(|_, (minute, _)| *minute >= now / 60);
        pending.entries.drain().map(|(_, r)| r).collect()
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
                .entries
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
    fn identical_uses_are_one_entry_and_a_flood_is_folded_per_key() {
        let refusals = Refusals::default();
        let client = Client {
            ip: "10.0.0.1".parse().ok(),
            user_agent: Some("curl/8"),
            method: "GET",
            route: "auth/verify",
        };
        for _ in 0..3 {
            refusals.note(key(1), Refusal::CanaryUsed, &client, 120);
        }
        let drained = refusals.drain(120);
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].count, 3);
        assert_eq!(drained[0].user_agent.as_deref(), Some("curl/8"));
        assert!(refusals.drain(120).is_empty());

        // One key flooded with new user agents: 15 more detailed entries this minute (one
        // was used above), the rest folded into one. Another key keeps its own details.
        let agents: Vec<String> = (0..500).map(|i| format!("bot/{i}")).collect();
        for agent in &agents {
            let client = Client {
                user_agent: Some(agent),
                ..client
            };
            refusals.note(key(1), Refusal::CanaryUsed, &client, 121);
        }
        refusals.note(key(2), Refusal::IpDenied, &client, 121);
        let drained = refusals.drain(121);
        assert_eq!(drained.len(), 15 + 1 + 1);
        assert_eq!(
            drained.iter().map(|r| r.count).sum::<u64>(),
            agents.len() as u64 + 1,
            "every use is counted"
        );
        let folded = drained.iter().find(|r| r.user_agent.is_none()).unwrap();
        assert_eq!(folded.count, 485);
        assert!(drained
            .iter()
            .any(|r| r.key.id == 2 && r.user_agent.as_deref() == Some("curl/8")));
        // A new minute, a new budget.
        refusals.note(
            key(1),
            Refusal::CanaryUsed,
            &Client {
                user_agent: Some("bot/0"),
                ..client
            },
            180,
        );
        assert!(refusals.drain(180)[0].user_agent.is_some());
    }
}
