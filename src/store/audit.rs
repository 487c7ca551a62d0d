//! The `audit_log` table: append-only records of security events. Details are JSON built by
//! the caller from non-secret values only.
//!
//! The log is hash-chained, one chain per organization (entries without one form their own):
//! each entry's `hash` is the hex SHA-256 of the previous entry's `hash` (64 zeros for the
//! first) followed by the entry's canonical content, `canonical` below. `audit_heads` holds the
//! newest entry of each chain. An entry is chained inside the transaction that writes it,
//! under the database's write lock, so concurrent writers append one after the other and the
//! chain cannot fork.

use super::{args, Row};
use sha2::{Digest, Sha256};

use super::{Db, StoreResult};
use crate::domain::{now, Id, UnixTime};

/// One event; `details` is a JSON object.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub organization_id: Option<Id>,
    pub action: &'static str,
    pub outcome: Outcome,
    pub user_id: Option<Id>,
    pub api_key_prefix: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub target_type: Option<&'static str>,
    pub target_id: Option<Id>,
    pub details: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Outcome {
    #[default]
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

pub fn record(db: &Db<'_>, entry: &Entry) -> StoreResult<Id> {
    record_numbered(db, entry, None)
}

/// `record`, numbered past `floor` (and past every entry there is): after a restore, the
/// ids the replaced log had handed out, which a SIEM may already hold, are never handed out
/// again with other content.
pub fn record_past(db: &Db<'_>, entry: &Entry, floor: Id) -> StoreResult<Id> {
    let top: Id = newest_id(db)?;
    let id = top.max(floor) + 1;
    let id = record_numbered(db, entry, Some(id))?;
    if db.dialect() == super::Dialect::Postgres {
        // An identity column's sequence does not see an explicit id: it moves here.
        db.query_row(
            "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), ?1)",
            args![id],
            |_| Ok(()),
        )?;
    }
    Ok(id)
}

/// The columns an insert writes, `audit_values!` their values: ?1 to ?11 as `record_numbered`
/// binds them, then the entry's positions (see `Position`), each one past the newest of its
/// kind, found by one index seek. The writers' lock orders every writer, so no two entries
/// take one position; an entry without an organization has none.
macro_rules! audit_columns {
    () => {
        "at, organization_id, action, outcome, user_id, api_key_prefix, ip, user_agent, \
         target_type, target_id, details, org_seq, action_seq, user_seq"
    };
}

macro_rules! audit_values {
    () => {
        "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
         CASE WHEN CAST(?2 AS BIGINT) IS NULL THEN NULL ELSE 1 + COALESCE(
             (SELECT MAX(org_seq) FROM audit_log WHERE organization_id = ?2), 0) END,
         CASE WHEN CAST(?2 AS BIGINT) IS NULL THEN NULL ELSE 1 + COALESCE(
             (SELECT MAX(action_seq) FROM audit_log WHERE organization_id = ?2 AND action = ?3),
             0) END,
         CASE WHEN CAST(?2 AS BIGINT) IS NULL OR CAST(?5 AS BIGINT) IS NULL THEN NULL ELSE 1 + COALESCE(
             (SELECT MAX(user_seq) FROM audit_log WHERE organization_id = ?2 AND user_id = ?5),
             0) END"
    };
}

fn record_numbered(db: &Db<'_>, entry: &Entry, id: Option<Id>) -> StoreResult<Id> {
    // A debug build (`cargo test` without `--release`) fails on an action missing from the
    // list, and so from the audit page's choices.
    debug_assert!(
        ACTIONS.contains(&entry.action),
        "audit action {} is not in ACTIONS",
        entry.action
    );
    let details = if entry.details.is_empty() {
        "{}"
    } else {
        entry.details.as_str()
    };
    let at = now();
    let user_agent = entry
        .user_agent
        .as_ref()
        .map(|ua| ua.chars().take(256).collect::<String>());
    let ua = user_agent.as_deref();
    let (action, outcome) = (entry.action, entry.outcome.as_str());
    let (org, user, key, ip) = (
        entry.organization_id,
        entry.user_id,
        entry.api_key_prefix.as_deref(),
        entry.ip.as_deref(),
    );
    let (target_type, target_id) = (entry.target_type, entry.target_id);
    let params = args![
        at,
        org,
        action,
        outcome,
        user,
        key,
        ip,
        ua,
        target_type,
        target_id,
        details,
        id
    ];
    let id: Id = match id {
        // An id chosen by `record_past`.
        Some(_) => db.query_row(
            concat!(
                "INSERT INTO audit_log (id, ",
                audit_columns!(),
                ") VALUES (?12, ",
                audit_values!(),
                ") RETURNING id"
            ),
            params,
            |r| r.get(0),
        )?,
        None => db.query_row(
            concat!(
                "INSERT INTO audit_log (",
                audit_columns!(),
                ") VALUES (",
                audit_values!(),
                ") RETURNING id"
            ),
            &params[..11],
            |r| r.get(0),
        )?,
    };
    let chain = chain_of(entry.organization_id);
    let previous: String = db
        .query_opt(
            "SELECT hash FROM audit_heads WHERE chain = ?1",
            args![chain],
            |row| row.get(0),
        )?
        .unwrap_or_else(|| GENESIS.to_string());
    let stored = Stored {
        id,
        at,
        organization_id: entry.organization_id,
        action: entry.action.to_string(),
        outcome: entry.outcome.as_str().to_string(),
        user_id: entry.user_id,
        api_key_prefix: entry.api_key_prefix.clone(),
        ip: entry.ip.clone(),
        user_agent,
        target_type: entry.target_type.map(str::to_string),
        target_id: entry.target_id,
        details: details.to_string(),
        hash: None,
        user_email: None,
        service_account_id: None,
    };
    let hash = chain_hash(&previous, &stored);
    db.execute(
        "UPDATE audit_log SET hash = ?2 WHERE id = ?1",
        args![id, hash],
    )?;
    advance_head(db, chain, id, &hash)?;
    Ok(id)
}

/// Every action an entry may name (the contract's list, 9.3's and 9.4's): the audit page
/// offers these (a unit test compares), and a debug build's `record` asserts it.
pub const ACTIONS: &[&str] = &[
    "login.succeeded",
    "login.failed",
    "login.throttled",
    "mfa.enabled",
    "mfa.disabled",
    "mfa.reset",
    "mfa.recovery_code_used",
    "mfa.recovery_codes_regenerated",
    "mfa.webauthn_added",
    "mfa.webauthn_removed",
    "mfa.webauthn_clone_suspected",
    "token.reuse_detected",
    "session.revoked",
    "password.changed",
    "api_key.created",
    "api_key.rotated",
    "api_key.revoked",
    "api_key.first_used",
    "api_key.updated",
    "api_key.used_after_rotation",
    "api_key.ip_denied",
    "api_key.canary_used",
    "api_key.leaked",
    "user.created",
    "user.role_changed",
    "user.deactivated",
    "user.activated",
    "user.unlocked",
    "user.password_set",
    "public_link.created",
    "public_link.revoked",
    "organization.renamed",
    "ownership.transferred",
    "report.deleted",
    "dashboard.deleted",
    "data_source.deleted",
    "backup.restored",
    "sso_provider.created",
    "sso_provider.updated",
    "sso_provider.deleted",
    "directory.synced",
    "service_account.created",
    "service_account.updated",
    "service_account.deleted",
    "policy.changed",
];

/// The hash the chain starts from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The `audit_heads` key of an organization's chain; 0 for entries without one.
fn chain_of(organization_id: Option<Id>) -> Id {
    organization_id.unwrap_or(0)
}

fn advance_head(db: &Db<'_>, chain: Id, id: Id, hash: &str) -> StoreResult<()> {
    db.execute(
        "INSERT INTO audit_heads (chain, last_id, hash, entries) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (chain) DO UPDATE
         SET last_id = excluded.last_id, hash = excluded.hash, entries = audit_heads.entries + 1",
        args![chain, id, hash],
    )?;
    Ok(())
}

/// The canonical content of an entry: a JSON array of its fields in a fixed order, the
/// details as the stored text.
pub fn canonical(e: &Stored) -> String {
    serde_json::json!([
        e.id,
        e.at,
        e.organization_id,
        e.action,
        e.outcome,
        e.user_id,
        e.api_key_prefix,
        e.ip,
        e.user_agent,
        e.target_type,
        e.target_id,
        e.details
    ])
    .to_string()
}

/// `hex(SHA-256(previous hash || canonical content))`.
pub fn chain_hash(previous: &str, entry: &Stored) -> String {
    let mut digest = Sha256::new();
    digest.update(previous.as_bytes());
    digest.update(canonical(entry).as_bytes());
    crate::domain::hex(&digest.finalize())
}

/// The newest entry of one chain, as walked or as `audit_heads` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    last_id: Id,
    hash: String,
    entries: u64,
}

/// Walks the log in id order, in batches of 1,000 (all chains, or one organization's), and
/// hands `each` every entry with the hash its content and its chain's predecessor give.
/// Returns each chain's head as walked.
fn walk(
    db: &Db<'_>,
    organization: Option<Id>,
    mut each: impl FnMut(&Stored, &str) -> StoreResult<()>,
) -> StoreResult<std::collections::HashMap<Id, Head>> {
    let mut heads: std::collections::HashMap<Id, Head> = Default::default();
    let select = format!(
        "SELECT {COLUMNS} FROM audit_log
         WHERE id > ?1 AND (CAST(?2 AS BIGINT) IS NULL OR organization_id = ?2) ORDER BY id LIMIT 1000"
    );
    let mut after: Id = 0;
    loop {
        let rows: Vec<Stored> = db.query_map(&select, args![after, organization], stored)?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for entry in rows {
            let chain = chain_of(entry.organization_id);
            let (previous, count) = heads
                .get(&chain)
                .map_or((GENESIS, 0), |h| (h.hash.as_str(), h.entries));
            let expected = chain_hash(previous, &entry);
            each(&entry, &expected)?;
            heads.insert(
                chain,
                Head {
                    last_id: entry.id,
                    hash: expected,
                    entries: count + 1,
                },
            );
        }
    }
    Ok(heads)
}

/// Chains entries written before the log had hashes, in id order (the schema migration), and
/// records each chain's head.
pub(super) fn chain_unhashed(db: &Db<'_>) -> StoreResult<()> {
    let heads = walk(db, None, |entry, hash| {
        db.execute(
            "UPDATE audit_log SET hash = ?2 WHERE id = ?1",
            args![entry.id, hash],
        )
        .map(|_| ())
    })?;
    db.execute("DELETE FROM audit_heads", args![])?;
    for (chain, head) in heads {
        db.execute(
            "INSERT INTO audit_heads (chain, last_id, hash, entries) VALUES (?1, ?2, ?3, ?4)",
            args![chain, head.last_id, head.hash, head.entries],
        )?;
    }
    Ok(())
}

/// Which chains `verify` walks.
#[derive(Debug, Clone, Copy)]
pub enum Chains {
    Organization(Id),
    All,
}

/// What a walk of the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub entries: u64,
    /// The first entry (in id order) whose hash is not what its content and its predecessor
    /// give: edited, inserted, or following a removed one.
    pub first_invalid: Option<Id>,
}

/// Walks the chain(s), names the first entry that does not match, and compares each chain's
/// end with its recorded head (newest entries removed: the head's entry is named).
pub fn verify(db: &Db<'_>, chains: Chains) -> StoreResult<Verdict> {
    let organization = match chains {
        Chains::Organization(id) => Some(id),
        Chains::All => None,
    };
    let (mut entries, mut first_invalid) = (0u64, None);
    let walked = walk(db, organization, |entry, expected| {
        entries += 1;
        if first_invalid.is_none() && entry.hash.as_deref() != Some(expected) {
            first_invalid = Some(entry.id);
        }
        Ok(())
    })?;
    let recorded: std::collections::HashMap<Id, Head> = db
        .query_map(
            "SELECT chain, last_id, hash, entries FROM audit_heads WHERE CAST(?1 AS BIGINT) IS NULL OR chain = ?1",
            args![organization],
            |r| {
                Ok((
                    r.get(0)?,
                    Head {
                        last_id: r.get(1)?,
                        hash: r.get(2)?,
                        entries: r.get(3)?,
                    },
                ))
            },
        )?
        .into_iter()
        .collect();
    let mut broken: Vec<Id> = first_invalid.into_iter().collect();
    // A recorded head the walk does not end at (newest entries removed or changed), and a
    // chain walked without a head (its head removed).
    for (chain, head) in &recorded {
        if walked.get(chain) != Some(head) {
            broken.push(head.last_id);
        }
    }
    for (chain, head) in &walked {
        if !recorded.contains_key(chain) {
            broken.push(head.last_id);
        }
    }
    Ok(Verdict {
        entries,
        first_invalid: broken.into_iter().min(),
    })
}

/// An entry as read back.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: Id,
    pub at: UnixTime,
    pub organization_id: Option<Id>,
    pub action: String,
    pub outcome: String,
    pub user_id: Option<Id>,
    pub api_key_prefix: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<Id>,
    pub details: String,
    pub hash: Option<String>,
    /// The acting user's email, where it was read (lists and exports); `None` for a service
    /// account.
    pub user_email: Option<String>,
    /// The acting service account (whose id `user_id` holds), where it was read.
    pub service_account_id: Option<Id>,
}

/// `?action=`, `?user_id=`, `?since=` and `?until=` of the audit-log endpoints.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub user_id: Option<Id>,
    /// Entries at or after this time.
    pub since: Option<UnixTime>,
    /// Entries before this time.
    pub until: Option<UnixTime>,
}

/// An entry's position among the organization's entries (`org_seq`), among those of its
/// action (`action_seq`) or among those of its user (`user_seq`): 1 for the first, the count
/// for the newest, since the log is never shortened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Organization,
    Action,
    User,
}

impl Position {
    fn column(self) -> &'static str {
        match self {
            Position::Organization => "a.org_seq",
            Position::Action => "a.action_seq",
            Position::User => "a.user_seq",
        }
    }
}

impl Filter {
    /// The position that numbers the entries this filter keeps, where one does: none for a
    /// time range or for an action and a user together.
    fn position(&self) -> Option<Position> {
        if self.since.is_some() || self.until.is_some() {
            return None;
        }
        match (&self.action, &self.user_id) {
            (None, None) => Some(Position::Organization),
            (Some(_), None) => Some(Position::Action),
            (None, Some(_)) => Some(Position::User),
            (Some(_), Some(_)) => None,
        }
    }

    /// The conditions on `audit_log` (aliased `a`) of the organization and of the filters
    /// given, no others (so that each query is one the indexes serve, not a `? IS NULL OR`
    /// for every filter), with their values: ?1 is the organization, the filters follow.
    fn conditions<'a>(
        &'a self,
        organization_id: &'a Id,
    ) -> (String, Vec<&'a dyn super::sql::Param>) {
        let mut sql = String::from("a.organization_id = ?1");
        let mut params: Vec<&dyn super::sql::Param> = vec![organization_id];
        let mut add = |condition: &str, value: &'a dyn super::sql::Param| {
            params.push(value);
            sql.push_str(&format!(" AND {condition} ?{}", params.len()));
        };
        if let Some(action) = &self.action {
            add("a.action =", action);
        }
        if let Some(user_id) = &self.user_id {
            add("a.user_id =", user_id);
        }
        if let Some(since) = &self.since {
            add("a.at >=", since);
        }
        if let Some(until) = &self.until {
            add("a.at <", until);
        }
        (sql, params)
    }
}

/// `COLUMNS` with the user's email, for `FROM audit_log a LEFT JOIN users u`.
const COLUMNS_WITH_EMAIL: &str = "a.id, a.at, a.action, a.outcome, a.user_id, a.api_key_prefix, \
     a.ip, a.user_agent, a.target_type, a.target_id, a.details, a.organization_id, a.hash, u.email, \
     u.service_account";

const COLUMNS: &str = "id, at, action, outcome, user_id, api_key_prefix, ip, user_agent, \
                       target_type, target_id, details, organization_id, hash";

fn stored(row: &Row<'_>) -> StoreResult<Stored> {
    Ok(Stored {
        id: row.get(0)?,
        at: row.get(1)?,
        action: row.get(2)?,
        outcome: row.get(3)?,
        user_id: row.get(4)?,
        api_key_prefix: row.get(5)?,
        ip: row.get(6)?,
        user_agent: row.get(7)?,
        target_type: row.get(8)?,
        target_id: row.get(9)?,
        details: row.get(10)?,
        organization_id: row.get(11)?,
        hash: row.get(12)?,
        user_email: None,
        service_account_id: None,
    })
}

fn stored_with_email(row: &Row<'_>) -> StoreResult<Stored> {
    let entry = stored(row)?;
    let service_account: Option<bool> = row.get(14)?;
    Ok(if service_account == Some(true) {
        Stored {
            service_account_id: entry.user_id,
            ..entry
        }
    } else {
        Stored {
            user_email: row.get(13)?,
            ..entry
        }
    })
}

/// Up to `limit` entries of every organization after `after`, oldest first: what the stream
/// to a SIEM sends next.
pub fn after(db: &Db<'_>, after: Id, limit: u32) -> StoreResult<Vec<Stored>> {
    db.query_map(
        &format!(
            "SELECT {COLUMNS_WITH_EMAIL} FROM audit_log a LEFT JOIN users u ON u.id = a.user_id
             WHERE a.id > ?1 ORDER BY a.id LIMIT ?2"
        ),
        args![after, limit],
        stored_with_email,
    )
}

/// The newest entry's id (0 for an empty log).
pub fn newest_id(db: &Db<'_>) -> StoreResult<Id> {
    db.query_row(
        "SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM audit_log",
        args![],
        |r| r.get(0),
    )
}

/// Up to `limit` of the organization's entries older than `before` (all with `None`), newest
/// first: the export reads the log in such batches, in constant memory.
pub fn batch_before(
    db: &Db<'_>,
    organization_id: Id,
    filter: &Filter,
    before: Option<Id>,
    limit: u32,
) -> StoreResult<Vec<Stored>> {
    let (mut conditions, mut params) = filter.conditions(&organization_id);
    if let Some(before) = &before {
        params.push(before);
        conditions.push_str(&format!(" AND a.id < ?{}", params.len()));
    }
    params.push(&limit);
    db.query_map(
        &format!(
            "SELECT {COLUMNS_WITH_EMAIL}
             FROM audit_log a LEFT JOIN users u ON u.id = a.user_id
             WHERE {conditions}
             ORDER BY a.id DESC LIMIT ?{}",
            params.len()
        ),
        &params,
        stored_with_email,
    )
}

/// Up to `limit` of the organization's entries after `after` and up to `upto`, oldest first:
/// an incremental export (`?since_id=`) reads the log in such batches.
pub fn batch_after(
    db: &Db<'_>,
    organization_id: Id,
    filter: &Filter,
    after: Id,
    upto: Id,
    limit: u32,
) -> StoreResult<Vec<Stored>> {
    let (conditions, mut params) = filter.conditions(&organization_id);
    let n = params.len();
    params.extend([&after as &dyn super::sql::Param, &upto, &limit]);
    db.query_map(
        &format!(
            "SELECT {COLUMNS_WITH_EMAIL}
             FROM audit_log a LEFT JOIN users u ON u.id = a.user_id
             WHERE {conditions} AND a.id > ?{} AND a.id <= ?{}
             ORDER BY a.id LIMIT ?{}",
            n + 1,
            n + 2,
            n + 3
        ),
        &params,
        stored_with_email,
    )
}

/// The organization's entries, searched by action, the user's email, the prefix of the key
/// used and the details (which name the keys, users and links an entry is about).
///
/// In the log's own order (newest first, without a search, by organization, action or user),
/// the total and the page are each one index seek on the entries' positions, whatever the
/// log's length and the page's depth; other lists count the entries they match.
pub fn page(
    db: &Db<'_>,
    organization_id: Id,
    filter: &Filter,
    listing: &super::Listing,
) -> StoreResult<(u64, Vec<Stored>)> {
    if let Some(position) = filter
        .position()
        .filter(|_| listing.search.is_none() && listing.order.column == "id")
    {
        return page_by_position(db, organization_id, filter, position, listing);
    }
    let (conditions, params) = filter.conditions(&organization_id);
    super::list(
        db,
        super::ListOf {
            from: "audit_log a LEFT JOIN users u ON u.id = a.user_id",
            columns: COLUMNS_WITH_EMAIL,
            filter: &conditions,
            params: &params,
            id: "a.id",
            searched: &["a.action", "u.email", "a.api_key_prefix", "a.details"],
            kept: None,
            row: stored_with_email,
        },
        listing,
    )
}

/// `page` through the entries' positions, in one statement: the newest matching entry's
/// position is the total, and the page is the entries from position `total - offset` down
/// (or from `offset + 1` up).
fn page_by_position(
    db: &Db<'_>,
    organization_id: Id,
    filter: &Filter,
    position: Position,
    listing: &super::Listing,
) -> StoreResult<(u64, Vec<Stored>)> {
    let (conditions, params) = filter.conditions(&organization_id);
    let column = position.column();
    let total = format!("(SELECT COALESCE(MAX({column}), 0) FROM audit_log a WHERE {conditions})");
    super::page(db, &total, stored_with_email, &params, listing, |n| {
        let (limit, offset) = (n + 1, n + 2);
        let (from, way) = if listing.order.descending {
            (format!("{column} <= {total} - ?{offset}"), "DESC")
        } else {
            (format!("{column} > ?{offset}"), "ASC")
        };
        format!(
            "SELECT {total}, {COLUMNS_WITH_EMAIL}
             FROM audit_log a LEFT JOIN users u ON u.id = a.user_id
             WHERE {conditions} AND {from} ORDER BY {column} {way} LIMIT ?{limit}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_temp;

    fn entry(organization_id: Option<Id>, action: &'static str) -> Entry {
        Entry {
            organization_id,
            action,
            details: r#"{"n":1}"#.into(),
            ..Entry::default()
        }
    }

    #[test]
    fn each_organization_has_one_chain_and_an_edit_is_named() {
        let (_dir, store) = open_temp();
        let ids = store
            .write_blocking(|db| -> crate::store::StoreResult<_> {
                let mut ids = Vec::new();
                for (org, action) in [
                    (Some(1), "login.succeeded"),
                    (None, "login.failed"),
                    (Some(2), "mfa.enabled"),
                    (Some(1), "mfa.disabled"),
                ] {
                    ids.push(record(db, &entry(org, action))?);
                }
                Ok(ids)
            })
            .unwrap();
        let verdict = |chains| store.read_blocking(move |db| verify(db, chains)).unwrap();
        assert_eq!(
            verdict(Chains::All),
            Verdict {
                entries: 4,
                first_invalid: None
            }
        );
        assert_eq!(verdict(Chains::Organization(1)).entries, 2);
        // The second entry of organization 1 follows the first, not the entries between.
        let (first, fourth): (String, String) = store
            .read_blocking(|db| {
                db.query_row(
                    "SELECT (SELECT hash FROM audit_log WHERE action = 'login.succeeded'),
                            (SELECT hash FROM audit_log WHERE action = 'mfa.disabled')",
                    args![],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .unwrap();
        let stored_d = store
            .read_blocking(|db| batch_before(db, 1, &Filter::default(), None, 1))
            .unwrap()
            .remove(0);
        assert_eq!(chain_hash(&first, &stored_d), fourth);

        store
            .write_blocking(|db| {
                db.execute(
                    "UPDATE audit_log SET details = '{\"n\":2}' WHERE action = 'mfa.enabled'",
                    args![],
                )
            })
            .unwrap();
        assert_eq!(verdict(Chains::All).first_invalid, Some(ids[2]));
        assert_eq!(verdict(Chains::Organization(2)).first_invalid, Some(ids[2]));
        assert_eq!(verdict(Chains::Organization(1)).first_invalid, None);
    }

    /// Every page of every list the positions answer (the organization's, one action's, one
    /// user's, both orders) is the page a count and a scan in id order give, entries of other
    /// organizations and without one in between.
    #[test]
    fn pages_found_by_position_are_the_pages_a_scan_gives() {
        let (_dir, store) = open_temp();
        let actions = ["login.failed", "login.succeeded", "api_key.created"];
        let written: Vec<(Id, Option<Id>, &str, Option<Id>)> = store
            .write_blocking(|db| -> StoreResult<_> {
                let mut written = Vec::new();
                for i in 0..61u32 {
                    let org = [Some(1), Some(2), None][(i % 3) as usize];
                    let action = actions[(i as usize * 7 / 3) % 3];
                    let user = [Some(10), None, Some(11), Some(10)][(i % 4) as usize];
                    let entry = Entry {
                        user_id: user,
                        ..entry(org, action)
                    };
                    written.push((record(db, &entry)?, org, action, user));
                }
                Ok(written)
            })
            .unwrap();
        let filters = [
            Filter::default(),
            Filter {
                action: Some("login.failed".into()),
                ..Filter::default()
            },
            Filter {
                action: Some("api_key.created".into()),
                ..Filter::default()
            },
            Filter {
                user_id: Some(10),
                ..Filter::default()
            },
            Filter {
                user_id: Some(12),
                ..Filter::default()
            },
        ];
        for filter in &filters {
            assert!(filter.position().is_some());
            let mut kept: Vec<Id> = written
                .iter()
                .filter(|(_, org, action, user)| {
                    *org == Some(1)
                        && filter.action.as_deref().is_none_or(|a| a == *action)
                        && filter.user_id.is_none_or(|u| Some(u) == *user)
                })
                .map(|(id, ..)| *id)
                .collect();
            for descending in [true, false] {
                if descending {
                    kept.sort_by(|a, b| b.cmp(a));
                } else {
                    kept.sort();
                }
                for (offset, limit) in [(0, 20), (0, 3), (3, 3), (5, 4), (19, 20), (40, 20)] {
                    let listing = crate::store::Listing {
                        offset,
                        limit,
                        search: None,
                        order: crate::store::Order {
                            column: "id",
                            descending,
                        },
                    };
                    let (count, rows) = store
                        .read_blocking(|db| page(db, 1, filter, &listing))
                        .unwrap();
                    let expected: Vec<Id> = kept
                        .iter()
                        .copied()
                        .skip(offset as usize)
                        .take(limit as usize)
                        .collect();
                    let got: Vec<Id> = rows.iter().map(|e| e.id).collect();
                    assert_eq!(count, kept.len() as u64, "{filter:?}");
                    assert_eq!(got, expected, "{filter:?} {offset} {limit} {descending}");
                }
            }
        }
        // Entries without an organization have no positions.
        let unplaced: u64 = store
            .read_blocking(|db| {
                db.query_row(
                    "SELECT COUNT(*) FROM audit_log WHERE organization_id IS NULL
                     AND org_seq IS NULL AND action_seq IS NULL AND user_seq IS NULL",
                    args![],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(unplaced, 20);
    }

    /// Three entries of organization 1's chain.
    fn three_entries(store: &crate::store::Store) -> Vec<Id> {
        store
            .write_blocking(|db| {
                (0..3)
                    .map(|_| record(db, &entry(Some(1), "session.revoked")))
                    .collect::<StoreResult<Vec<_>>>()
            })
            .unwrap()
    }

    #[test]
    fn a_removed_entry_breaks_the_chain_at_its_successor() {
        let (_dir, store) = open_temp();
        let ids = three_entries(&store);
        let removed = ids[1];
        store
            .write_blocking(move |db| {
                db.execute("DELETE FROM audit_log WHERE id = ?1", args![removed])
            })
            .unwrap();
        let verdict = store.read_blocking(|db| verify(db, Chains::All)).unwrap();
        assert_eq!(verdict.first_invalid, Some(ids[2]));
    }

    #[test]
    fn removing_the_newest_entries_is_found_through_the_head() {
        let (_dir, store) = open_temp();
        let ids = three_entries(&store);
        store
            .write_blocking(|db| {
                db.execute(
                    "DELETE FROM audit_log WHERE id = (SELECT MAX(id) FROM audit_log)",
                    args![],
                )
            })
            .unwrap();
        let verdict = store
            .read_blocking(|db| verify(db, Chains::Organization(1)))
            .unwrap();
        assert_eq!(verdict.entries, 2);
        assert_eq!(
            verdict.first_invalid,
            Some(ids[2]),
            "the head names the removed entry"
        );
        // An entry written after the removal (SQLite gives it the freed id) chains from the
        // removed one: found again, as a mismatch of its own.
        let next = store
            .write_blocking(|db| record(db, &entry(Some(1), "password.changed")))
            .unwrap();
        let verdict = store.read_blocking(|db| verify(db, Chains::All)).unwrap();
        assert_eq!(verdict.first_invalid, Some(next));
    }

    #[test]
    fn the_migration_chains_entries_written_before_hashes() {
        let (_dir, store) = open_temp();
        store
            .write_blocking(|db| -> crate::store::StoreResult<_> {
                record(db, &entry(Some(1), "login.succeeded"))?;
                record(db, &entry(None, "login.failed"))?;
                record(db, &entry(Some(1), "mfa.enabled"))?;
                db.execute("UPDATE audit_log SET hash = NULL", args![])?;
                db.execute("DELETE FROM audit_heads", args![])?;
                Ok(())
            })
            .unwrap();
        let broken = store.read_blocking(|db| verify(db, Chains::All)).unwrap();
        assert!(broken.first_invalid.is_some());
        store.write_blocking(chain_unhashed).unwrap();
        let verdict = store.read_blocking(|db| verify(db, Chains::All)).unwrap();
        assert_eq!(verdict.first_invalid, None);
        assert_eq!(verdict.entries, 3);
    }
}

#[cfg(test)]
mod listed {
    /// Every action literal the code hands the audit log (`audit("x.y", ..)`, `audit_in(org,
    /// "x.y", ..)`, `entry("x.y", ..)`, `action: "x.y"`, `=> "x.y"`) is in `ACTIONS`, so the
    /// audit page can offer it. (The release test build has no debug assertions.)
    #[test]
    fn every_action_the_code_writes_is_listed() {
        let expression = regex::Regex::new(
            r#"(?:\(|, |action: |=> )"((?:login|mfa|token|session|password|api_key|user|public_link|organization|ownership|report|dashboard|data_source|backup|sso_provider|directory)\.[a-z_]+)""#,
        )
        .unwrap();
        let mut files = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        let mut seen = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let name = path.to_string_lossy().to_string();
            // Not audit actions: configuration keys and page files.
            if !name.ends_with(".rs") || name.ends_with("config.rs") || name.ends_with("pages.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for found in expression.captures_iter(&text) {
                let action = &found[1];
                seen += 1;
                assert!(
                    super::ACTIONS.contains(&action),
                    "{name} writes the audit action {action}, missing from ACTIONS"
                );
            }
        }
        assert!(seen > 30, "the scan found only {seen} actions");
    }
}
