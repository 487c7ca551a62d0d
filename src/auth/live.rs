//! The in-memory state that authenticates a request without a database round trip: users
//! (role, active), organization names and live sessions. Loaded at start, changed by the code
//! paths that change the database (before they answer), reloaded when a CLI command bumps the
//! epoch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::api_key::{parse_hash_hex, KeyHash};
use super::permission::Permission;
use super::rate::RateCounters;
use crate::domain::{Id, Role, UnixTime};
use crate::store::{api_keys::ApiKey, sessions::Session, users::User};

/// Sessions write `last_seen_at` at most this often.
const TOUCH_EVERY: i64 = 60;

#[derive(Debug, Clone)]
pub struct LiveUser {
    pub id: Id,
    pub organization_id: Id,
    pub email: Arc<str>,
    pub name: Arc<str>,
    pub role: Role,
    pub is_active: bool,
    pub mfa_enabled: bool,
}

impl From<&User> for LiveUser {
    fn from(u: &User) -> Self {
        LiveUser {
            id: u.id,
            organization_id: u.organization_id,
            email: u.email.as_str().into(),
            name: u.name.as_str().into(),
            role: u.role,
            is_active: u.is_active,
            mfa_enabled: u.mfa_enabled,
        }
    }
}

#[derive(Debug)]
pub struct LiveSession {
    pub user_id: Id,
    pub expires_at: UnixTime,
    last_seen_written: AtomicI64,
}

impl LiveSession {
    /// True once a minute per session: the caller then writes `last_seen_at`.
    pub fn due_for_touch(&self, now: UnixTime) -> bool {
        let last = self.last_seen_written.load(Ordering::Relaxed);
        now - last >= TOUCH_EVERY
            && self
                .last_seen_written
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }
}

/// An API key as the hot path needs it; usage is counted here and written in batches.
#[derive(Debug)]
pub struct LiveKey {
    pub id: Id,
    pub user_id: Id,
    pub organization_id: Id,
    pub name: Arc<str>,
    pub prefix: Arc<str>,
    pub scopes: Option<Arc<[Permission]>>,
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    revoked: AtomicBool,
    pub rates: Arc<RateCounters>,
    /// Uses not yet written.
    uses: AtomicU64,
    last_used: AtomicI64,
    ever_used: AtomicBool,
    /// The first use since creation is still to be audited.
    first_use_pending: AtomicBool,
}

impl LiveKey {
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }

    pub fn record_use(&self, now: UnixTime) {
        self.uses.fetch_add(1, Ordering::Relaxed);
        self.last_used.fetch_max(now, Ordering::Relaxed);
        if !self.ever_used.load(Ordering::Relaxed) && !self.ever_used.swap(true, Ordering::AcqRel) {
            self.first_use_pending.store(true, Ordering::Release);
        }
    }
}

/// Uses counted since the last flush.
pub struct Usage {
    /// `(key id, uses, last used at)`.
    pub counts: Vec<(Id, u64, UnixTime)>,
    /// Keys used for the first time: `(key id, user id, organization id, prefix)`.
    pub first_uses: Vec<(Id, Id, Id, Arc<str>)>,
}

#[derive(Default)]
pub struct Live {
    users: RwLock<HashMap<Id, Arc<LiveUser>>>,
    organizations: RwLock<HashMap<Id, Arc<str>>>,
    sessions: RwLock<HashMap<Id, Arc<LiveSession>>>,
    keys: RwLock<HashMap<KeyHash, Arc<LiveKey>>>,
    key_hashes: RwLock<HashMap<Id, KeyHash>>,
    user_rates: RwLock<HashMap<Id, Arc<RateCounters>>>,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps half-written (every write is a
    // single insert or remove), so a poisoned lock is still safe to use.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Live {
    /// Replaces everything with what the database holds. Flush usage first: counts not yet
    /// written are dropped with the old keys.
    pub fn load(
        &self,
        users: &[User],
        organizations: Vec<(Id, String)>,
        sessions: &[Session],
        keys: &[ApiKey],
    ) {
        let mut by_hash = HashMap::new();
        let mut hashes = HashMap::new();
        for key in keys {
            if let Some((hash, live)) = live_key(key) {
                hashes.insert(key.id, hash);
                by_hash.insert(hash, Arc::new(live));
            }
        }
        *write(&self.keys) = by_hash;
        *write(&self.key_hashes) = hashes;
        let users: HashMap<_, _> = users
            .iter()
            .map(|u| (u.id, Arc::new(LiveUser::from(u))))
            .collect();
        let organizations = organizations
            .into_iter()
            .map(|(id, name)| (id, Arc::from(name.as_str())))
            .collect();
        let sessions = sessions
            .iter()
            .filter(|s| s.revoked_at.is_none())
            .map(|s| (s.id, Arc::new(live_session(s))))
            .collect();
        *write(&self.users) = users;
        *write(&self.organizations) = organizations;
        *write(&self.sessions) = sessions;
    }

    pub fn user(&self, id: Id) -> Option<Arc<LiveUser>> {
        read(&self.users).get(&id).cloned()
    }

    pub fn organization_name(&self, id: Id) -> Arc<str> {
        read(&self.organizations)
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    pub fn session(&self, id: Id) -> Option<Arc<LiveSession>> {
        read(&self.sessions).get(&id).cloned()
    }

    pub fn put_user(&self, user: &User) {
        write(&self.users).insert(user.id, Arc::new(LiveUser::from(user)));
    }

    /// Adds a user (and its organization's name) that a CLI command created and the epoch
    /// reload has not brought in yet. Never replaces: a newer change may already be here.
    pub fn adopt_user(&self, user: &User, organization_name: &str) {
        write(&self.users)
            .entry(user.id)
            .or_insert_with(|| Arc::new(LiveUser::from(user)));
        write(&self.organizations)
            .entry(user.organization_id)
            .or_insert_with(|| Arc::from(organization_name));
    }

    pub fn put_organization(&self, id: Id, name: &str) {
        write(&self.organizations).insert(id, Arc::from(name));
    }

    pub fn put_session(&self, session: &Session) {
        if session.revoked_at.is_none() {
            write(&self.sessions).insert(session.id, Arc::new(live_session(session)));
        }
    }

    pub fn revoke_sessions(&self, ids: &[Id]) {
        let mut sessions = write(&self.sessions);
        for id in ids {
            sessions.remove(id);
        }
    }

    pub fn key(&self, hash: &KeyHash) -> Option<Arc<LiveKey>> {
        read(&self.keys).get(hash).cloned()
    }

    pub fn put_key(&self, key: &ApiKey) {
        if let Some((hash, live)) = live_key(key) {
            write(&self.key_hashes).insert(key.id, hash);
            write(&self.keys).insert(hash, Arc::new(live));
        }
    }

    /// Marks keys revoked: their next request answers `api_key_revoked`.
    pub fn revoke_keys(&self, ids: &[Id]) {
        let hashes = read(&self.key_hashes);
        let keys = read(&self.keys);
        for id in ids {
            if let Some(key) = hashes.get(id).and_then(|h| keys.get(h)) {
                key.revoked.store(true, Ordering::Release);
            }
        }
    }

    /// The request counters of a JWT user.
    pub fn user_rates(&self, user_id: Id) -> Arc<RateCounters> {
        if let Some(rates) = read(&self.user_rates).get(&user_id) {
            return rates.clone();
        }
        write(&self.user_rates).entry(user_id).or_default().clone()
    }

    /// Takes the uses counted since the last call.
    pub fn drain_usage(&self) -> Usage {
        let mut usage = Usage {
            counts: Vec::new(),
            first_uses: Vec::new(),
        };
        for key in read(&self.keys).values() {
            let uses = key.uses.swap(0, Ordering::AcqRel);
            if uses > 0 {
                usage
                    .counts
                    .push((key.id, uses, key.last_used.load(Ordering::Acquire)));
            }
            if key.first_use_pending.swap(false, Ordering::AcqRel) {
                usage.first_uses.push((
                    key.id,
                    key.user_id,
                    key.organization_id,
                    key.prefix.clone(),
                ));
            }
        }
        usage
    }

    /// Drops sessions past their end.
    pub fn prune(&self, now: UnixTime) {
        write(&self.sessions).retain(|_, s| s.expires_at > now);
    }
}

fn live_key(key: &ApiKey) -> Option<(KeyHash, LiveKey)> {
    let hash = parse_hash_hex(&key.key_hash)?;
    let scopes = key.scopes.as_deref().map(|text| {
        text.split_whitespace()
            .filter_map(|s| s.parse::<Permission>().ok())
            .collect::<Vec<_>>()
            .into()
    });
    Some((
        hash,
        LiveKey {
            id: key.id,
            user_id: key.user_id,
            organization_id: key.organization_id,
            name: key.name.as_str().into(),
            prefix: key.prefix.as_str().into(),
            scopes,
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked: AtomicBool::new(key.revoked_at.is_some()),
            rates: Arc::default(),
            uses: AtomicU64::new(0),
            last_used: AtomicI64::new(key.last_used_at.unwrap_or(0)),
            ever_used: AtomicBool::new(key.usage_count > 0),
            first_use_pending: AtomicBool::new(false),
        },
    ))
}

fn live_session(s: &Session) -> LiveSession {
    LiveSession {
        user_id: s.user_id,
        expires_at: s.expires_at,
        last_seen_written: AtomicI64::new(s.last_seen_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touches_once_a_minute() {
        let s = LiveSession {
            user_id: 1,
            expires_at: 0,
            last_seen_written: AtomicI64::new(1000),
        };
        assert!(!s.due_for_touch(1030));
        assert!(s.due_for_touch(1060));
        assert!(!s.due_for_touch(1061));
        assert!(s.due_for_touch(1125));
    }
}
