//! `webauthn_credentials` and `webauthn_challenges` (contract 10.3): the passkeys a user
//! registered, and the ceremonies begun and not yet finished. What the records hold is
//! webauthn-rs's own JSON; this module neither reads nor builds it.

use super::{args, Db, Row, StoreError, StoreResult};
use crate::domain::{Id, UnixTime};

/// A registered passkey.
#[derive(Debug, Clone)]
pub struct Credential {
    pub id: Id,
    pub user_id: Id,
    pub name: String,
    /// The authenticator's credential id, base64url.
    pub credential_id: String,
    /// webauthn-rs's `Passkey`, JSON.
    pub passkey: String,
    pub passwordless: bool,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

const COLUMNS: &str =
    "id, user_id, name, credential_id, passkey, passwordless, created_at, last_used_at";

fn from_row(row: &Row<'_>) -> StoreResult<Credential> {
    Ok(Credential {
        id: row.get(0)?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        credential_id: row.get(3)?,
        passkey: row.get(4)?,
        passwordless: row.get(5)?,
        created_at: row.get(6)?,
        last_used_at: row.get(7)?,
    })
}

/// A passkey to store.
pub struct NewCredential<'a> {
    pub user_id: Id,
    pub name: &'a str,
    pub credential_id: &'a str,
    pub passkey: &'a str,
    pub passwordless: bool,
    pub now: UnixTime,
}

/// Stores a passkey; `Conflict` when the credential id is registered already (to anyone).
pub fn insert(db: &Db<'_>, new: &NewCredential<'_>) -> StoreResult<Credential> {
    let id: Id = db
        .query_row(
            "INSERT INTO webauthn_credentials
                 (user_id, name, credential_id, passkey, passwordless, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            args![
                new.user_id,
                new.name,
                new.credential_id,
                new.passkey,
                new.passwordless,
                new.now
            ],
            |r| r.get(0),
        )
        .map_err(|e| super::conflict_on_unique(e, "this passkey is registered already"))?;
    get(db, new.user_id, id)
}

/// One of `user_id`'s passkeys; another user's is not found.
pub fn get(db: &Db<'_>, user_id: Id, id: Id) -> StoreResult<Credential> {
    db.query_row(
        &format!("SELECT {COLUMNS} FROM webauthn_credentials WHERE id = ?1 AND user_id = ?2"),
        args![id, user_id],
        from_row,
    )
}

/// Every passkey of `user_id`, oldest first (a user has few: `MAX_PER_USER`).
pub fn of_user(db: &Db<'_>, user_id: Id) -> StoreResult<Vec<Credential>> {
    db.query_map(
        &format!("SELECT {COLUMNS} FROM webauthn_credentials WHERE user_id = ?1 ORDER BY id"),
        args![user_id],
        from_row,
    )
}

pub fn count_of_user(db: &Db<'_>, user_id: Id) -> StoreResult<i64> {
    db.query_row(
        "SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = ?1",
        args![user_id],
        |r| r.get(0),
    )
}

/// The passkey with this credential id, whoever holds it.
pub fn by_credential_id(db: &Db<'_>, credential_id: &str) -> StoreResult<Option<Credential>> {
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM webauthn_credentials WHERE credential_id = ?1"),
        args![credential_id],
        from_row,
    )
}

/// Records a use: the passkey's new state (its counter) and when. Conditional on the state
/// read before, so that two sign-ins with one counter value cannot both pass.
pub fn used(db: &Db<'_>, id: Id, before: &str, after: &str, now: UnixTime) -> StoreResult<bool> {
    let n = db.execute(
        "UPDATE webauthn_credentials SET passkey = ?3, last_used_at = ?4
         WHERE id = ?1 AND passkey = ?2",
        args![id, before, after, now],
    )?;
    Ok(n == 1)
}

pub fn delete(db: &Db<'_>, user_id: Id, id: Id) -> StoreResult<Credential> {
    let credential = get(db, user_id, id)?;
    db.execute(
        "DELETE FROM webauthn_credentials WHERE id = ?1 AND user_id = ?2",
        args![id, user_id],
    )?;
    Ok(credential)
}

/// Deletes every passkey of `user_id` (an MFA reset); answers their credential ids.
pub fn delete_all(db: &Db<'_>, user_id: Id) -> StoreResult<Vec<String>> {
    let ids = db.query_map(
        "SELECT credential_id FROM webauthn_credentials WHERE user_id = ?1",
        args![user_id],
        |r| r.get(0),
    )?;
    db.execute(
        "DELETE FROM webauthn_credentials WHERE user_id = ?1",
        args![user_id],
    )?;
    Ok(ids)
}

/// Deletes the passkey with this credential id if `user_id` still holds it (a restore).
pub fn delete_by_credential_id(db: &Db<'_>, user_id: Id, credential_id: &str) -> StoreResult<bool> {
    let n = db.execute(
        "DELETE FROM webauthn_credentials WHERE user_id = ?1 AND credential_id = ?2",
        args![user_id, credential_id],
    )?;
    Ok(n == 1)
}

/// The user's passkey user handle, made on first use.
pub fn handle(db: &Db<'_>, user_id: Id) -> StoreResult<Option<String>> {
    db.query_row(
        "SELECT webauthn_handle FROM users WHERE id = ?1",
        args![user_id],
        |r| r.get(0),
    )
}

/// Sets the user's handle unless one is set; answers the one that holds.
pub fn set_handle(db: &Db<'_>, user_id: Id, handle: &str) -> StoreResult<String> {
    db.execute(
        "UPDATE users SET webauthn_handle = ?2 WHERE id = ?1 AND webauthn_handle IS NULL",
        args![user_id, handle],
    )?;
    self::handle(db, user_id)?.ok_or(StoreError::NotFound)
}

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Registering a passkey, in a session.
    Register,
    /// A passkey as the second factor of a password login.
    Login,
    /// A sign-in without a password.
    Passkey,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::Login => "login",
            Purpose::Passkey => "passkey",
        }
    }
}

/// A ceremony begun.
pub struct Challenge<'a> {
    pub id: &'a str,
    pub user_id: Option<Id>,
    pub purpose: Purpose,
    pub state: &'a str,
    pub passwordless: bool,
    pub client_ip: Option<&'a str>,
    pub expires_at: UnixTime,
}

/// What may wait at once: in all (of one purpose), per client address, and per account (its
/// oldest ones give way to a new one).
pub struct Bounds {
    pub total: i64,
    pub per_client: i64,
    pub per_user: i64,
}

/// Whether a ceremony was stored.
#[derive(Debug, PartialEq, Eq)]
pub enum Begun {
    Stored,
    /// `per_client` ceremonies of this address wait already.
    ClientFull,
    /// `total` ceremonies of this purpose wait already.
    Full,
}

/// Stores a ceremony, after dropping those expired and, past `per_user`, the account's oldest
/// of this purpose: what requests can grow is bounded.
pub fn begin(
    db: &Db<'_>,
    challenge: &Challenge<'_>,
    now: UnixTime,
    bounds: &Bounds,
) -> StoreResult<Begun> {
    let purpose = challenge.purpose.as_str();
    db.execute(
        "DELETE FROM webauthn_challenges WHERE expires_at <= ?1",
        args![now],
    )?;
    if let Some(user_id) = challenge.user_id {
        db.execute(
            "DELETE FROM webauthn_challenges WHERE user_id = ?1 AND purpose = ?2 AND id NOT IN
                 (SELECT id FROM webauthn_challenges WHERE user_id = ?1 AND purpose = ?2
                  ORDER BY expires_at DESC, id LIMIT ?3)",
            args![user_id, purpose, bounds.per_user - 1],
        )?;
    }
    if let Some(ip) = challenge.client_ip {
        let waiting: i64 = db.query_row(
            "SELECT COUNT(*) FROM webauthn_challenges WHERE client_ip = ?1 AND purpose = ?2",
            args![ip, purpose],
            |r| r.get(0),
        )?;
        if waiting >= bounds.per_client {
            return Ok(Begun::ClientFull);
        }
    }
    let waiting: i64 = db.query_row(
        "SELECT COUNT(*) FROM webauthn_challenges WHERE purpose = ?1",
        args![purpose],
        |r| r.get(0),
    )?;
    if waiting >= bounds.total {
        return Ok(Begun::Full);
    }
    db.execute(
        "INSERT INTO webauthn_challenges
             (id, user_id, purpose, state, passwordless, client_ip, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        args![
            challenge.id,
            challenge.user_id,
            purpose,
            challenge.state,
            challenge.passwordless,
            challenge.client_ip,
            challenge.expires_at
        ],
    )?;
    Ok(Begun::Stored)
}

/// A ceremony taken to finish it.
pub struct Taken {
    pub user_id: Option<Id>,
    pub state: String,
    pub passwordless: bool,
}

/// Takes (deletes) the ceremony `id` of `purpose` for `user_id` (`None`: begun without an
/// account): each is finished at most once, and not after it expired.
pub fn take(
    db: &Db<'_>,
    id: &str,
    purpose: Purpose,
    user_id: Option<Id>,
    now: UnixTime,
) -> StoreResult<Option<Taken>> {
    let found = db.query_opt(
        "SELECT user_id, state, passwordless, expires_at FROM webauthn_challenges
         WHERE id = ?1 AND purpose = ?2",
        args![id, purpose.as_str()],
        |r| {
            Ok((
                Taken {
                    user_id: r.get(0)?,
                    state: r.get(1)?,
                    passwordless: r.get(2)?,
                },
                r.get::<i64>(3)?,
            ))
        },
    )?;
    let Some((taken, expires_at)) = found else {
        return Ok(None);
    };
    let deleted = db.execute("DELETE FROM webauthn_challenges WHERE id = ?1", args![id])?;
    if deleted != 1 || expires_at <= now || taken.user_id != user_id {
        return Ok(None);
    }
    Ok(Some(taken))
}
