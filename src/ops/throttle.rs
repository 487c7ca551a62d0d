//! The login throttle as logins use it: in memory with one server (SQLite), in the database
//! when several servers share one (PostgreSQL), so that 50 parallel guesses spread over any
//! number of servers still reach the password check at most `max_failed_logins` times.
//! An administrator's unlock (`accounts::unlock`) is the one thing that ends a lock early: it
//! clears the shared counts, and every server drops its copy (`feed::apply`).

use std::net::IpAddr;

use crate::auth::throttle::{self as local, address_key, Key, Refused};
use crate::domain::{now, Id};
use crate::error::ApiError;
use crate::ops::AppState;
use crate::store::throttle::{self as shared, Outcome, Reservation, Rules};
use crate::store::Dialect;

/// A reserved attempt. Dropped without a verdict, its place is given back without a failure.
pub enum Attempt<'a> {
    Local(local::Attempt<'a>),
    Shared(Shared),
}

pub struct Shared {
    app: AppState,
    keys: Vec<(String, u32)>,
    ids: Vec<Id>,
    settled: bool,
}

fn rules(app: &AppState) -> Rules {
    Rules {
        window: app.config.auth.failure_window.0.as_secs() as i64,
        lockout: app.config.auth.lockout.0.as_secs() as i64,
    }
}

/// The time the shared counts are kept in: the database's clock, the one clock every
/// server reads, so that no server's own clock shortens another's window or lockout.
fn database_now(tx: &crate::store::Db<'_>) -> crate::store::StoreResult<i64> {
    Ok(crate::store::feed::clock_ms(tx)?.div_euclid(1000))
}

fn key_text(key: &Key) -> String {
    // Control characters (a NUL in a typed email) are not text PostgreSQL stores: replaced,
    // so that such an attempt counts like any other instead of failing.
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect()
    };
    match key {
        Key::Account(email) => format!("account:{}", clean(email)),
        Key::Address(ip) => format!("address:{ip}"),
    }
}

/// Forgets `account`'s failures and ends its lock in the shared counts (inside the unlock's
/// change; unused with one server, where the counts are this server's own).
pub(crate) fn clear_account(
    tx: &crate::store::Db<'_>,
    account: &str,
) -> crate::store::StoreResult<()> {
    shared::clear(tx, &key_text(&Key::Account(account.into())))
}

fn key_of(text: &str) -> Option<Key> {
    match text.split_once(':')? {
        ("account", email) => Some(Key::Account(email.into())),
        ("address", ip) => ip.parse().ok().map(Key::Address),
        _ => None,
    }
}

/// Reserves an attempt for `account` (a normalised email) from `address`, or says how long
/// to wait. On PostgreSQL the reservation is one write transaction; its failure (the database
/// gone) refuses the login with `503` rather than letting it past an uncounted check. A login
/// of a locked account or from a locked address never waits for the writers' lock: the locks
/// are read first, and once read are held in memory until they end (or an administrator's
/// unlock drops them), so a flood of refused logins costs one read per key and server, then
/// nothing.
pub async fn begin<'a>(
    app: &'a AppState,
    account: &str,
    address: Option<IpAddr>,
) -> Result<Result<Attempt<'a>, Refused>, ApiError> {
    if app.store.dialect() == Dialect::Sqlite {
        return Ok(app
            .auth
            .throttle
            .begin(account, address, now())
            .map(Attempt::Local));
    }
    let mut keys = vec![(
        key_text(&Key::Account(account.into())),
        app.config.auth.max_failed_logins,
    )];
    if let Some(ip) = address {
        keys.push((
            key_text(&Key::Address(address_key(ip))),
            app.config.auth.max_failed_logins_per_address,
        ));
    }
    let local = &app.auth.throttle;
    // The account as the shared counts hold it (control characters replaced).
    let account = match key_of(&keys[0].0) {
        Some(Key::Account(clean)) => clean,
        _ => account.into(),
    };
    if let Some(refused) = local.refuse_if_locked(&account, address, now()) {
        return Ok(Err(refused));
    }
    let asked = keys.clone();
    let unlocks = local.unlocks();
    let locks = app
        .store
        .read(move |db| shared::locks(db, &asked, database_now(db)?))
        .await?;
    if let Some(left) = locks.iter().map(|lock| lock.left).max() {
        let at = now();
        for lock in &locks {
            if let Some(key) = key_of(&lock.key) {
                // A second short, so that rounding never holds a lock past its end here.
                local.remember_lock(key, at + lock.left - 1, at - lock.audited_ago, at, unlocks);
            }
        }
        // Refused from what was just read, in the lock's last second too; audited through
        // the entries just remembered, once a minute.
        let audit = local
            .refuse_if_locked(&account, address, at)
            .map(|refused| refused.audit)
            .unwrap_or_default();
        return Ok(Err(Refused {
            retry_after: left.max(1) as u64,
            audit,
        }));
    }
    let (rules, asked) = (rules(app), keys.clone());
    let reservation = app
        .store
        .write(move |tx| shared::reserve(tx, &asked, rules, database_now(tx)?))
        .await?;
    Ok(match reservation {
        Reservation::Granted(ids) => Ok(Attempt::Shared(Shared {
            app: app.clone(),
            keys,
            ids,
            settled: false,
        })),
        Reservation::Refused { retry_after, audit } => Err(Refused {
            retry_after,
            audit: audit
                .into_iter()
                .filter_map(|(key, n)| key_of(&key).map(|k| (k, n)))
                .collect(),
        }),
    })
}

impl Shared {
    async fn settle(mut self, outcome: Outcome) {
        self.settled = true;
        let (keys, ids, rules) = (
            std::mem::take(&mut self.keys),
            std::mem::take(&mut self.ids),
            rules(&self.app),
        );
        let result = self
            .app
            .store
            .write(move |tx| shared::settle(tx, &keys, &ids, outcome, rules, database_now(tx)?))
            .await;
        if let Err(e) = result {
            // The reservation expires by itself (`RESERVATION_TTL`); a failure not counted
            // is the one thing lost, and only while the database is unavailable.
            tracing::warn!(error = %e, "settling a login attempt in the database failed");
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.settled || self.ids.is_empty() {
            return;
        }
        let (app, keys, ids) = (
            self.app.clone(),
            std::mem::take(&mut self.keys),
            std::mem::take(&mut self.ids),
        );
        let rules = rules(&app);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let released = app
                    .store
                    .write(move |tx| {
                        shared::settle(tx, &keys, &ids, Outcome::Released, rules, now())
                    })
                    .await;
                if let Err(e) = released {
                    tracing::warn!(error = %e, "releasing a login attempt in the database failed");
                }
            });
        }
    }
}

impl Attempt<'_> {
    /// A wrong password or code: counts against the account and the address.
    pub async fn failed(self) {
        match self {
            Attempt::Local(a) => a.failed(now()),
            Attempt::Shared(s) => s.settle(Outcome::Failed).await,
        }
    }

    /// A successful login clears the account's failures.
    pub async fn succeeded(self) {
        match self {
            Attempt::Local(a) => a.succeeded(now()),
            Attempt::Shared(s) => s.settle(Outcome::Succeeded).await,
        }
    }

    /// Neither: the place is given back.
    pub async fn released(self) {
        match self {
            Attempt::Local(a) => drop(a),
            Attempt::Shared(s) => s.settle(Outcome::Released).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_text() {
        for key in [
            Key::Account("ada@example.com".into()),
            Key::Address("10.0.0.1".parse().unwrap()),
            Key::Address("2001:db8::".parse().unwrap()),
        ] {
            assert_eq!(key_of(&key_text(&key)), Some(key));
        }
        assert_eq!(key_of("other:x"), None);
    }
}
