//! The `audit_log` table: append-only records of security events. Details are JSON built by
//! the caller from non-secret values only.

use rusqlite::{params, Connection};

use super::StoreResult;
use crate::domain::{now, Id};

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

pub fn record(conn: &Connection, entry: &Entry) -> StoreResult<Id> {
    let details = if entry.details.is_empty() {
        "{}"
    } else {
        entry.details.as_str()
    };
    conn.execute(
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
    Ok(conn.last_insert_rowid())
}
