//! The organization's audit log, as pages or as one export; the CSV quoting for spreadsheets.
//!
//! GET       /api/v1/audit-logs/     GET /api/v1/audit-logs/export/?format=csv|json|jsonl&since_id=N
//! GET       /api/v1/audit-logs/verify/: walks the organization's hash chain

use serde::Serialize;
use utoipa::ToSchema;

use super::{Call, PageRequest};
use crate::domain::{Id, Timestamp};
use crate::error::ApiError;
use crate::http::reply::{self, Response};
use crate::ops::Caller;
use crate::store::audit;

#[derive(Serialize, ToSchema)]
pub(super) struct AuditDto {
    id: Id,
    at: Timestamp,
    action: String,
    outcome: String,
    user_id: Option<Id>,
    /// The acting user's email (`null`: no user, one since removed, or a service account).
    user_email: Option<String>,
    /// The service account whose key acted (its id is also `user_id`); `null` for a person.
    service_account_id: Option<Id>,
    api_key_prefix: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    target_type: Option<String>,
    target_id: Option<Id>,
    details: serde_json::Value,
    /// hex SHA-256 of the previous entry's hash and this entry's canonical content.
    hash: Option<String>,
}

impl From<audit::Stored> for AuditDto {
    fn from(e: audit::Stored) -> Self {
        AuditDto {
            id: e.id,
            at: Timestamp(e.at),
            action: e.action,
            outcome: e.outcome,
            user_id: e.user_id,
            user_email: e.user_email,
            service_account_id: e.service_account_id,
            api_key_prefix: e.api_key_prefix,
            ip: e.ip,
            user_agent: e.user_agent,
            target_type: e.target_type,
            target_id: e.target_id,
            details: serde_json::from_str(&e.details).unwrap_or_default(),
            hash: e.hash,
        }
    }
}

fn filters(call: &Call<'_>) -> Result<audit::Filter, ApiError> {
    let user_id = match call.ctx.query_param("user_id") {
        Some(v) if !v.is_empty() => Some(
            v.parse::<Id>()
                .map_err(|_| ApiError::field("user_id", "must be an integer"))?,
        ),
        _ => None,
    };
    Ok(audit::Filter {
        action: call.ctx.query_param("action").filter(|a| !a.is_empty()),
        user_id,
        since: moment(call, "since")?,
        until: moment(call, "until")?,
    })
}

/// `?since=` / `?until=`: an RFC 3339 time (`2026-12-01T00:00:00+01:00`) or a day
/// (`2026-12-01`, from midnight UTC).
fn moment(call: &Call<'_>, name: &str) -> Result<Option<crate::domain::UnixTime>, ApiError> {
    let Some(text) = call.ctx.query_param(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let rfc3339 =
        time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339);
    let day = || {
        time::Date::parse(
            &text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map(|d| d.midnight().assume_utc())
    };
    rfc3339
        .or_else(|_| day())
        .map(|t| Some(t.unix_timestamp()))
        .map_err(|_| {
            ApiError::field(
                name,
                "must be a time like 2026-12-01T00:00:00Z or a day like 2026-12-01",
            )
        })
}

/// The fields the log may be ordered by (`?ordering=`), newest first without one.
pub(super) const SORTABLE: super::Sortable = super::Sortable::newest_first(
    "the action, the user's email, the key's prefix and the details",
    &[("at", "a.at"), ("action", "a.action")],
);

/// GET /api/v1/audit-logs/
pub async fn list(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let page = PageRequest::from(call.ctx)?;
    let listing = page.listing(&SORTABLE)?;
    let filter = filters(&call)?;
    let org = caller.organization_id();
    let (count, rows) = call
        .app
        .store
        .read_statement(move |c| audit::page(c, org, &filter, &listing))
        .await?;
    let results: Vec<AuditDto> = rows.into_iter().map(Into::into).collect();
    Ok(reply::ok(&page.wrap(&call, count, results)?))
}

/// The shapes of an export.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    /// One JSON array.
    Json,
    /// One JSON object per line (JSON Lines), for collectors that pull.
    Jsonl,
}

/// Where an export walks: from the newest entry down, or (`?since_id=N`) from the entry after
/// N up to the newest there was when it started.
#[derive(Clone, Copy)]
enum Walk {
    Down { before: Option<Id> },
    Up { after: Id, upto: Id },
}

/// GET /api/v1/audit-logs/export/?format=csv|json|jsonl&since_id=N
pub async fn export(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let format = match call.ctx.query_param("format").as_deref() {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some("jsonl") => Format::Jsonl,
        Some(_) => return Err(ApiError::field("format", "must be csv, json or jsonl")),
    };
    let since_id = match call.ctx.query_param("since_id") {
        Some(v) => Some(
            Some(v.as_str())
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<Id>().ok())
                .ok_or_else(|| ApiError::field("since_id", "must be an integer, 0 or more"))?,
        ),
        None => None,
    };
    let filter = filters(&call)?;
    let org = caller.organization_id();
    let store = call.app.store.clone();
    let mut walk = match since_id {
        None => Walk::Down { before: None },
        Some(after) => Walk::Up {
            after,
            upto: store.read(audit::newest_id).await?,
        },
    };
    // Streamed in batches of EXPORT_BATCH entries, each read in its own short snapshot, so
    // the export takes constant memory and holds no database thread while the client reads.
    // It covers the entries that existed when it started.
    let (chunks, sent) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let opening = match format {
            Format::Json => "[",
            Format::Csv => CSV_HEADER,
            Format::Jsonl => "",
        };
        if chunks.send(Ok(opening.to_string().into())).await.is_err() {
            return;
        }
        let mut first = true;
        loop {
            let wanted = filter.clone();
            let rows = store
                .read(move |c| match walk {
                    Walk::Down { before } => {
                        audit::batch_before(c, org, &wanted, before, EXPORT_BATCH)
                    }
                    Walk::Up { after, upto } => {
                        audit::batch_after(c, org, &wanted, after, upto, EXPORT_BATCH)
                    }
                })
                .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "reading the audit log for an export failed");
                    let _ = chunks
                        .send(Err(std::io::Error::other("the export was cut short")))
                        .await;
                    return;
                }
            };
            let Some(last) = rows.last().map(|r| r.id) else {
                break;
            };
            walk = match walk {
                Walk::Down { .. } => Walk::Down { before: Some(last) },
                Walk::Up { upto, .. } => Walk::Up { after: last, upto },
            };
            let mut chunk = String::with_capacity(rows.len() * 256);
            for row in rows {
                let entry = AuditDto::from(row);
                match format {
                    Format::Json => {
                        if !first {
                            chunk.push(',');
                        }
                        chunk.push_str(&serde_json::to_string(&entry).unwrap_or_default());
                    }
                    Format::Jsonl => {
                        chunk.push_str(&serde_json::to_string(&entry).unwrap_or_default());
                        chunk.push('\n');
                    }
                    Format::Csv => chunk.push_str(&csv_line(&entry)),
                }
                first = false;
            }
            if chunks.send(Ok(chunk.into())).await.is_err() {
                // The client went away.
                return;
            }
        }
        if format == Format::Json {
            let _ = chunks.send(Ok("]".into())).await;
        }
    });
    let content_type = match format {
        Format::Json => "application/json",
        Format::Jsonl => "application/jsonl",
        Format::Csv => "text/csv; charset=utf-8",
    };
    Ok(reply::streamed(content_type, sent))
}

#[derive(Serialize, ToSchema)]
pub(super) struct ChainVerdict {
    /// True when every entry's hash matches its content and its predecessor's hash.
    valid: bool,
    /// Entries walked.
    entries: u64,
    /// The first entry (oldest first) that does not match.
    first_invalid_id: Option<Id>,
}

/// GET /api/v1/audit-logs/verify/
pub async fn verify(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let org = caller.organization_id();
    let verdict = call
        .app
        .store
        .read(move |c| audit::verify(c, audit::Chains::Organization(org)))
        .await?;
    Ok(reply::ok(&ChainVerdict {
        valid: verdict.first_invalid.is_none(),
        entries: verdict.entries,
        first_invalid_id: verdict.first_invalid,
    }))
}

/// Entries read per batch of an export.
const EXPORT_BATCH: u32 = 500;

const CSV_HEADER: &str =
    "id,at,action,outcome,user_id,api_key_prefix,ip,user_agent,target_type,target_id,details,hash,user_email,service_account_id\n";

fn csv_line(e: &AuditDto) -> String {
    let fields = [
        e.id.to_string(),
        e.at.to_string(),
        e.action.clone(),
        e.outcome.clone(),
        e.user_id.map(|v| v.to_string()).unwrap_or_default(),
        e.api_key_prefix.clone().unwrap_or_default(),
        e.ip.clone().unwrap_or_default(),
        e.user_agent.clone().unwrap_or_default(),
        e.target_type.clone().unwrap_or_default(),
        e.target_id.map(|v| v.to_string()).unwrap_or_default(),
        e.details.to_string(),
        e.hash.clone().unwrap_or_default(),
        e.user_email.clone().unwrap_or_default(),
        e.service_account_id
            .map(|v| v.to_string())
            .unwrap_or_default(),
    ];
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// RFC 4180 quoting; a leading formula character is defused for spreadsheets.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}
