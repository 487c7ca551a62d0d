//! The `audit_log` table: append-only records of security events. Details are JSON built by
//! the caller from non-secret values only.

use rusqlite::{params, Row};

use super::{Count, Db, StoreResult};
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
    let details = if entry.details.is_empty() {
        "{}"
    } else {
        entry.details.as_str()
    };
    db.conn.execute(
        "INSERT INTO audit_log (at, organization_id, action, outcome, user_id, api_key_prefix,
                                ip, user_agent, target_type, target_id, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            now(),
            entry.organization_id,
            entry.action,
            entry.outcome.as_str(),
            entry.user_id,
            entry.api_key_prefix,
            entry.ip,
            entry
                .user_agent
                .as_ref()
                .map(|ua| ua.chars().take(256).collect::<String>()),
            entry.target_type,
            entry.target_id,
            details
        ],
    )?;
    Ok(db.conn.last_insert_rowid())
}

/// An entry as read back.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: Id,
    pub at: UnixTime,
    pub action: String,
    pub outcome: String,
    pub user_id: Option<Id>,
    pub api_key_prefix: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<Id>,
    pub details: String,
}

/// `?action=` and `?user_id=` of the audit-log endpoints.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub user_id: Option<Id>,
}

fn stored(row: &Row<'_>) -> rusqlite::Result<Stored> {
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
    })
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
    let mut stmt = db.conn.prepare_cached(
        "SELECT id, at, action, outcome, user_id, api_key_prefix, ip, user_agent, target_type,
                target_id, details
         FROM audit_log
         WHERE organization_id = ?1 AND (?2 IS NULL OR action = ?2)
           AND (?3 IS NULL OR user_id = ?3) AND (?4 IS NULL OR id < ?4)
         ORDER BY id DESC LIMIT ?5",
    )?;
    let rows = stmt
        .query_map(
            params![
                organization_id,
                filter.action,
                filter.user_id,
                before,
                limit
            ],
            stored,
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The organization's entries, newest first.
pub fn page(
    db: &Db<'_>,
    organization_id: Id,
    filter: &Filter,
    offset: u64,
    limit: u64,
) -> StoreResult<(u64, Vec<Stored>)> {
    const WHERE: &str = "organization_id = ?1 AND (?2 IS NULL OR action = ?2) \
                         AND (?3 IS NULL OR user_id = ?3)";
    super::page(
        db,
        Count::Query(&format!("SELECT COUNT(*) FROM audit_log WHERE {WHERE}")),
        &format!(
            "SELECT id, at, action, outcome, user_id, api_key_prefix, ip, user_agent, target_type,
                    target_id, details
             FROM audit_log WHERE {WHERE} ORDER BY id DESC LIMIT ?4 OFFSET ?5"
        ),
        &[&organization_id, &filter.action, &filter.user_id],
        offset,
        limit,
        stored,
    )
}
