//! The in-memory state that authenticates a request without a database round trip: users
//! (role, active), organization names and live sessions. Loaded at start, changed by the code
//! paths that change the database (before they answer), reloaded when a CLI command bumps the
//! epoch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::domain::{Id, Role, UnixTime};
use crate::store::{sessions::Session, users::User};

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

#[derive(Default)]
pub struct Live {
    users: RwLock<HashMap<Id, Arc<LiveUser>>>,
    organizations: RwLock<HashMap<Id, Arc<str>>>,
    sessions: RwLock<HashMap<Id, Arc<LiveSession>>>,
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
    /// Replaces everything with what the database holds.
    pub fn load(&self, users: &[User], organizations: Vec<(Id, String)>, sessions: &[Session]) {
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

    /// Drops sessions past their end.
    pub fn prune(&self, now: UnixTime) {
        write(&self.sessions).retain(|_, s| s.expires_at > now);
    }
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
