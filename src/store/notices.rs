//! `key_notices`: the notices of keys about to expire (contract 10.4), made once per key,
//! threshold, channel and recipient, claimed by one server at a time before it sends.

use super::{args, Db, StoreResult};
use crate::domain::{Id, UnixTime};

/// A key that may be crossing a threshold: usable, not a canary, not replaced, expiring
/// before the horizon.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub key_id: Id,
    pub user_id: Id,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// The nearest threshold an email notice, and a webhook notice, was already made for.
    pub noticed_email: Option<i64>,
    pub noticed_webhook: Option<i64>,
}

/// The keys expiring after `now` and by `horizon`, with the nearest threshold already noticed
/// on each channel: one query, served by `api_keys_by_expiry`.
pub fn candidates(db: &Db<'_>, now: UnixTime, horizon: UnixTime) -> StoreResult<Vec<Candidate>> {
    db.query_map(
        "SELECT k.id, k.user_id, k.created_at, k.expires_at,
                (SELECT MIN(n.threshold_days) FROM key_notices n
                 WHERE n.api_key_id = k.id AND n.channel = 'email'),
                (SELECT MIN(n.threshold_days) FROM key_notices n
                 WHERE n.api_key_id = k.id AND n.channel = 'webhook')
         FROM api_keys k
         WHERE k.revoked_at IS NULL AND k.expires_at > ?1 AND k.expires_at <= ?2
           AND k.canary = 0 AND k.replaced_by IS NULL
         ORDER BY k.id",
        args![now, horizon],
        |r| {
            Ok(Candidate {
                key_id: r.get(0)?,
                user_id: r.get(1)?,
                created_at: r.get(2)?,
                expires_at: r.get(3)?,
                noticed_email: r.get(4)?,
                noticed_webhook: r.get(5)?,
            })
        },
    )
}

/// Makes the notice unless it exists (another server made it first); `true` when made.
pub fn make(
    db: &Db<'_>,
    key_id: Id,
    threshold_days: i64,
    channel: &str,
    recipient: &str,
    now: UnixTime,
) -> StoreResult<bool> {
    let made = db.execute(
        "INSERT INTO key_notices (api_key_id, threshold_days, channel, recipient,
                                  next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (api_key_id, threshold_days, channel, recipient) DO NOTHING",
        args![key_id, threshold_days, channel, recipient, now],
    )?;
    Ok(made == 1)
}

/// A farther threshold's notices still waiting are dropped once a nearer one is crossed.
pub fn drop_farther(db: &Db<'_>, key_id: Id, threshold_days: i64) -> StoreResult<u64> {
    db.execute(
        "UPDATE key_notices SET state = 'dropped', claimed_until = NULL
         WHERE api_key_id = ?1 AND threshold_days > ?2 AND state = 'pending'",
        args![key_id, threshold_days],
    )
}

/// A notice due now, with what its message says.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: Id,
    pub threshold_days: i64,
    pub channel: String,
    pub recipient: String,
    pub attempts: i64,
    pub key_id: Id,
    pub key_name: String,
    pub prefix: String,
    pub expires_at: Option<UnixTime>,
    pub organization_id: Id,
    pub organization: String,
    pub owner_id: Id,
    pub owner_email: String,
    pub owner_name: String,
    pub owner_is_service_account: bool,
}

/// Up to `limit` notices due at `now` on `channels` (those this server sends) that no server
/// holds: a server without a channel never takes, and delays, another's notices.
pub fn due(db: &Db<'_>, now: UnixTime, limit: u32, channels: &[&str]) -> StoreResult<Vec<Due>> {
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    let mut params: Vec<&dyn super::sql::Param> = vec![&now, &limit];
    params.extend(channels.iter().map(|c| c as &dyn super::sql::Param));
    db.query_map(
        &format!(
            "SELECT n.id, n.threshold_days, n.channel, n.recipient, n.attempts,
                k.id, k.name, k.prefix, k.expires_at,
                o.id, o.name, u.id, u.email, u.name, u.service_account
         FROM key_notices n
         JOIN api_keys k ON k.id = n.api_key_id
         JOIN organizations o ON o.id = k.organization_id
         JOIN users u ON u.id = k.user_id
         WHERE n.state = 'pending' AND n.next_attempt_at <= ?1
           AND (n.claimed_until IS NULL OR n.claimed_until < ?1)
           AND n.channel IN ({})
         ORDER BY n.next_attempt_at, n.id
         LIMIT ?2",
            super::placeholders(3, channels.len())
        ),
        &params,
        |r| {
            Ok(Due {
                id: r.get(0)?,
                threshold_days: r.get(1)?,
                channel: r.get(2)?,
                recipient: r.get(3)?,
                attempts: r.get(4)?,
                key_id: r.get(5)?,
                key_name: r.get(6)?,
                prefix: r.get(7)?,
                expires_at: r.get(8)?,
                organization_id: r.get(9)?,
                organization: r.get(10)?,
                owner_id: r.get(11)?,
                owner_email: r.get(12)?,
                owner_name: r.get(13)?,
                owner_is_service_account: r.get(14)?,
            })
        },
    )
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Another server holds it, or it is no longer due.
    Taken,
    /// Ours, and its key is still usable and not replaced: send it.
    Send,
    /// Ours, but its key was revoked, rotated or expired: drop it.
    Drop,
}

/// Takes the notice under `token` until `until`, if no server holds it, and reads its key's
/// state as committed now (not as the batch read it).
pub fn claim(
    db: &Db<'_>,
    id: Id,
    now: UnixTime,
    until: UnixTime,
    token: &str,
) -> StoreResult<Claim> {
    let taken = db.execute(
        "UPDATE key_notices SET claimed_until = ?3, claimed_by = ?4
         WHERE id = ?1 AND state = 'pending' AND next_attempt_at <= ?2
           AND (claimed_until IS NULL OR claimed_until < ?2)",
        args![id, now, until, token],
    )?;
    if taken != 1 {
        return Ok(Claim::Taken);
    }
    let live: bool = db.query_row(
        "SELECT (k.revoked_at IS NULL AND k.replaced_by IS NULL
                 AND (k.expires_at IS NULL OR k.expires_at > ?2))
         FROM key_notices n JOIN api_keys k ON k.id = n.api_key_id WHERE n.id = ?1",
        args![id, now],
        |r| r.get(0),
    )?;
    Ok(if live { Claim::Send } else { Claim::Drop })
}

/// Sent, if the claim under `token` still holds: `false` when another server took the notice
/// over meanwhile (this send then overlapped its own).
pub fn sent(db: &Db<'_>, id: Id, token: &str, now: UnixTime) -> StoreResult<bool> {
    let marked = db.execute(
        "UPDATE key_notices SET state = 'sent', sent_at = ?3, attempts = attempts + 1,
                                claimed_until = NULL, claimed_by = NULL, last_error = NULL
         WHERE id = ?1 AND claimed_by = ?2",
        args![id, token, now],
    )?;
    Ok(marked == 1)
}

/// A send that failed: tried again from `next_attempt_at` (if the claim still holds).
pub fn failed(
    db: &Db<'_>,
    id: Id,
    token: &str,
    next_attempt_at: UnixTime,
    error: &str,
) -> StoreResult<()> {
    db.execute(
        "UPDATE key_notices SET attempts = attempts + 1, next_attempt_at = ?3,
                                claimed_until = NULL, claimed_by = NULL, last_error = ?4
         WHERE id = ?1 AND claimed_by = ?2",
        args![id, token, next_attempt_at, error],
    )?;
    Ok(())
}

/// A notice whose key was revoked, rotated or expired before it went out.
pub fn dropped(db: &Db<'_>, id: Id, token: &str) -> StoreResult<()> {
    db.execute(
        "UPDATE key_notices SET state = 'dropped', claimed_until = NULL, claimed_by = NULL
         WHERE id = ?1 AND claimed_by = ?2",
        args![id, token],
    )?;
    Ok(())
}

/// Where a key's email notices go: its owner, or for a service account's key its creator and
/// the organization's administrators (active people only, each once).
pub fn recipients(db: &Db<'_>, owner: Id) -> StoreResult<Vec<String>> {
    db.query_map(
        "SELECT DISTINCT p.email FROM users o
         JOIN users p ON p.organization_id = o.organization_id
         WHERE o.id = ?1 AND p.is_active = 1 AND p.service_account = 0
           AND ((o.service_account = 0 AND p.id = o.id)
             OR (o.service_account = 1
                 AND (p.id = o.created_by OR p.role IN ('administrator', 'owner'))))
         ORDER BY p.email",
        args![owner],
        |r| r.get(0),
    )
}
