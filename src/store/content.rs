//! The organization's content: data sources, reports, dashboards, credit usage and public
//! links. Every query is scoped by organization: a row of another organization is not found.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{StoreError, StoreResult};
use crate::domain::{now, Id, UnixTime};

// ---- row counts ----------------------------------------------------------------------------

fn add_count(conn: &Connection, organization_id: Id, kind: &str, delta: i64) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO row_counts (organization_id, kind, count) VALUES (?1, ?2, MAX(?3, 0))
         ON CONFLICT (organization_id, kind) DO UPDATE SET count = MAX(count + ?3, 0)",
        params![organization_id, kind, delta],
    )?;
    Ok(())
}

fn count_of(conn: &Connection, organization_id: Id, kind: &str) -> StoreResult<u64> {
    Ok(conn
        .prepare_cached("SELECT count FROM row_counts WHERE organization_id = ?1 AND kind = ?2")?
        .query_row(params![organization_id, kind], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Keeps `row_counts` exact after rows were added in bulk (seeding).
pub fn recount(conn: &Connection, organization_id: Id) -> StoreResult<()> {
    for (kind, table) in [("report", "reports"), ("dashboard", "dashboards")] {
        conn.execute(
            &format!(
                "INSERT INTO row_counts (organization_id, kind, count)
                 SELECT ?1, ?2, COUNT(*) FROM {table} WHERE organization_id = ?1
                 ON CONFLICT (organization_id, kind) DO UPDATE SET count = excluded.count"
            ),
            params![organization_id, kind],
        )?;
    }
    Ok(())
}

// ---- data sources --------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct DataSource {
    pub id: Id,
    pub name: String,
    pub source_type: String,
    pub status: String,
    pub created_by: Option<Id>,
    pub created_at: UnixTime,
}

fn data_source(row: &Row<'_>) -> rusqlite::Result<DataSource> {
    Ok(DataSource {
        id: row.get(0)?,
        name: row.get(1)?,
        source_type: row.get(2)?,
        status: row.get(3)?,
        created_by: row.get(4)?,
        created_at: row.get(5)?,
    })
}

const DS: &str = "id, name, source_type, status, created_by, created_at";

pub fn create_data_source(
    conn: &Connection,
    organization_id: Id,
    name: &str,
    source_type: &str,
    created_by: Id,
) -> StoreResult<DataSource> {
    conn.execute(
        "INSERT INTO data_sources (organization_id, name, source_type, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![organization_id, name, source_type, created_by, now()],
    )?;
    get_data_source(conn, organization_id, conn.last_insert_rowid())
}

pub fn get_data_source(conn: &Connection, organization_id: Id, id: Id) -> StoreResult<DataSource> {
    Ok(conn.query_row(
        &format!("SELECT {DS} FROM data_sources WHERE id = ?1 AND organization_id = ?2"),
        params![id, organization_id],
        data_source,
    )?)
}

pub fn list_data_sources(
    conn: &Connection,
    organization_id: Id,
    offset: u64,
    limit: u64,
) -> StoreResult<(u64, Vec<DataSource>)> {
    let count = conn.query_row(
        "SELECT COUNT(*) FROM data_sources WHERE organization_id = ?1",
        [organization_id],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DS} FROM data_sources WHERE organization_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt
        .query_map(
            params![organization_id, limit as i64, offset as i64],
            data_source,
        )?
        .collect::<Result<_, _>>()?;
    Ok((count, rows))
}

pub fn delete_data_source(conn: &Connection, organization_id: Id, id: Id) -> StoreResult<()> {
    let n = conn.execute(
        "DELETE FROM data_sources WHERE id = ?1 AND organization_id = ?2",
        params![id, organization_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

// ---- reports -------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Report {
    pub id: Id,
    pub title: String,
    pub status: String,
    pub data_source_id: Option<Id>,
    pub prompt: String,
    pub summary: String,
    pub content: String,
    pub credits_used: i64,
    pub created_by: Option<Id>,
    pub created_at: UnixTime,
    pub completed_at: Option<UnixTime>,
}

const REPORT: &str = "id, title, status, data_source_id, prompt, summary, content, credits_used, \
                      created_by, created_at, completed_at";

fn report(row: &Row<'_>) -> rusqlite::Result<Report> {
    Ok(Report {
        id: row.get(0)?,
        title: row.get(1)?,
        status: row.get(2)?,
        data_source_id: row.get(3)?,
        prompt: row.get(4)?,
        summary: row.get(5)?,
        content: row.get(6)?,
        credits_used: row.get(7)?,
        created_by: row.get(8)?,
        created_at: row.get(9)?,
        completed_at: row.get(10)?,
    })
}

pub struct NewReport<'a> {
    pub organization_id: Id,
    pub title: &'a str,
    pub data_source_id: Id,
    pub prompt: &'a str,
    pub summary: &'a str,
    pub content: &'a str,
    pub credits: i64,
    pub created_by: Id,
}

/// Stores a completed report and charges its credits in the caller's transaction.
pub fn create_report(conn: &Connection, r: &NewReport<'_>, allowance: i64) -> StoreResult<Report> {
    let at = now();
    conn.execute(
        "INSERT INTO reports (organization_id, title, status, data_source_id, prompt, summary,
                              content, credits_used, created_by, created_at, completed_at)
         VALUES (?1, ?2, 'completed', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        params![
            r.organization_id,
            r.title,
            r.data_source_id,
            r.prompt,
            r.summary,
            r.content,
            r.credits,
            r.created_by,
            at
        ],
    )?;
    let id = conn.last_insert_rowid();
    charge(
        conn,
        r.organization_id,
        "report_generation",
        r.credits,
        id,
        allowance,
    )?;
    add_count(conn, r.organization_id, "report", 1)?;
    get_report(conn, r.organization_id, id)
}

pub fn get_report(conn: &Connection, organization_id: Id, id: Id) -> StoreResult<Report> {
    Ok(conn.query_row(
        &format!("SELECT {REPORT} FROM reports WHERE id = ?1 AND organization_id = ?2"),
        params![id, organization_id],
        report,
    )?)
}

pub fn list_reports(
    conn: &Connection,
    organization_id: Id,
    offset: u64,
    limit: u64,
) -> StoreResult<(u64, Vec<Report>)> {
    let count = count_of(conn, organization_id, "report")?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {REPORT} FROM reports WHERE organization_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt
        .query_map(
            params![organization_id, limit as i64, offset as i64],
            report,
        )?
        .collect::<Result<_, _>>()?;
    Ok((count, rows))
}

pub fn delete_report(conn: &Connection, organization_id: Id, id: Id) -> StoreResult<()> {
    let n = conn.execute(
        "DELETE FROM reports WHERE id = ?1 AND organization_id = ?2",
        params![id, organization_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    add_count(conn, organization_id, "report", -1)?;
    revoke_links(conn, "report", id)
}

/// Demo content: `count` completed reports on `data_source_id`, charged nothing.
pub fn seed_reports(
    conn: &Connection,
    organization_id: Id,
    data_source_id: Id,
    created_by: Id,
    count: u64,
) -> StoreResult<()> {
    let at = now();
    let mut stmt = conn.prepare(
        "INSERT INTO reports (organization_id, title, status, data_source_id, prompt, summary,
                              content, credits_used, created_by, created_at, completed_at)
         VALUES (?1, ?2, 'completed', ?3, ?4, ?5, ?6, 0, ?7, ?8, ?8)",
    )?;
    let regions = ["North", "South", "East", "West"];
    for n in 0..count {
        let region = regions[(n % 4) as usize];
        let week = n % 52 + 1;
        stmt.execute(params![
            organization_id,
            format!("Weekly sales, {region}, week {week}"),
            data_source_id,
            format!("How did {region} sell in week {week}?"),
            format!(
                "{region} sold {} units in week {week}.",
                1000 + (n * 37) % 900
            ),
            format!(
                "# Weekly sales\n\nRegion {region}, week {week}: {} units.",
                1000 + (n * 37) % 900
            ),
            created_by,
            at - (count - n) as i64 * 60,
        ])?;
    }
    recount(conn, organization_id)
}

/// Figures the report generator summarises: (reports, dashboards, goals, data sources).
pub fn figures(conn: &Connection, organization_id: Id) -> StoreResult<(u64, u64, u64, u64)> {
    let goals = conn.query_row(
        "SELECT COUNT(*) FROM goals WHERE organization_id = ?1",
        [organization_id],
        |r| r.get(0),
    )?;
    let sources = conn.query_row(
        "SELECT COUNT(*) FROM data_sources WHERE organization_id = ?1",
        [organization_id],
        |r| r.get(0),
    )?;
    Ok((
        count_of(conn, organization_id, "report")?,
        count_of(conn, organization_id, "dashboard")?,
        goals,
        sources,
    ))
}

// ---- dashboards ----------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub id: Id,
    pub name: String,
    pub description: String,
    pub widgets: String,
    pub created_by: Option<Id>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub last_refreshed_at: Option<UnixTime>,
}

const DASH: &str =
    "id, name, description, widgets, created_by, created_at, updated_at, last_refreshed_at";

fn dashboard(row: &Row<'_>) -> rusqlite::Result<Dashboard> {
    Ok(Dashboard {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        widgets: row.get(3)?,
        created_by: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        last_refreshed_at: row.get(7)?,
    })
}

pub fn create_dashboard(
    conn: &Connection,
    organization_id: Id,
    name: &str,
    description: &str,
    widgets: &str,
    created_by: Id,
) -> StoreResult<Dashboard> {
    let at = now();
    conn.execute(
        "INSERT INTO dashboards (organization_id, name, description, widgets, created_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![organization_id, name, description, widgets, created_by, at],
    )?;
    let id = conn.last_insert_rowid();
    add_count(conn, organization_id, "dashboard", 1)?;
    get_dashboard(conn, organization_id, id)
}

pub fn get_dashboard(conn: &Connection, organization_id: Id, id: Id) -> StoreResult<Dashboard> {
    Ok(conn.query_row(
        &format!("SELECT {DASH} FROM dashboards WHERE id = ?1 AND organization_id = ?2"),
        params![id, organization_id],
        dashboard,
    )?)
}

pub fn list_dashboards(
    conn: &Connection,
    organization_id: Id,
    offset: u64,
    limit: u64,
) -> StoreResult<(u64, Vec<Dashboard>)> {
    let count = count_of(conn, organization_id, "dashboard")?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DASH} FROM dashboards WHERE organization_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt
        .query_map(
            params![organization_id, limit as i64, offset as i64],
            dashboard,
        )?
        .collect::<Result<_, _>>()?;
    Ok((count, rows))
}

pub fn update_dashboard(
    conn: &Connection,
    organization_id: Id,
    id: Id,
    name: &str,
    description: &str,
    widgets: &str,
) -> StoreResult<Dashboard> {
    conn.execute(
        "UPDATE dashboards SET name = ?3, description = ?4, widgets = ?5, updated_at = ?6
         WHERE id = ?1 AND organization_id = ?2",
        params![id, organization_id, name, description, widgets, now()],
    )?;
    get_dashboard(conn, organization_id, id)
}

/// Marks the dashboard refreshed and charges its credits.
pub fn refresh_dashboard(
    conn: &Connection,
    organization_id: Id,
    id: Id,
    credits: i64,
    allowance: i64,
) -> StoreResult<Dashboard> {
    get_dashboard(conn, organization_id, id)?;
    charge(
        conn,
        organization_id,
        "dashboard_refresh",
        credits,
        id,
        allowance,
    )?;
    conn.execute(
        "UPDATE dashboards SET last_refreshed_at = ?2 WHERE id = ?1",
        params![id, now()],
    )?;
    get_dashboard(conn, organization_id, id)
}

pub fn delete_dashboard(conn: &Connection, organization_id: Id, id: Id) -> StoreResult<()> {
    let n = conn.execute(
        "DELETE FROM dashboards WHERE id = ?1 AND organization_id = ?2",
        params![id, organization_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    add_count(conn, organization_id, "dashboard", -1)?;
    revoke_links(conn, "dashboard", id)
}

// ---- credits -------------------------------------------------------------------------------

/// The first second of the current calendar month (UTC) and of the next.
pub fn month_bounds(at: UnixTime) -> (UnixTime, UnixTime) {
    let date = time::OffsetDateTime::from_unix_timestamp(at)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    let start = date.replace_day(1).unwrap_or(date);
    let (year, month) = match start.month() {
        time::Month::December => (start.year() + 1, time::Month::January),
        m => (start.year(), m.next()),
    };
    let next = time::Date::from_calendar_date(year, month, 1).unwrap_or(start);
    (
        start.midnight().assume_utc().unix_timestamp(),
        next.midnight().assume_utc().unix_timestamp(),
    )
}

/// Credits used this month, by kind: (report_generation, dashboard_refresh).
pub fn credits_used(
    conn: &Connection,
    organization_id: Id,
    since: UnixTime,
) -> StoreResult<(i64, i64)> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(CASE kind WHEN 'report_generation' THEN credits END), 0),
                COALESCE(SUM(CASE kind WHEN 'dashboard_refresh' THEN credits END), 0)
         FROM credit_usage WHERE organization_id = ?1 AND at >= ?2",
        params![organization_id, since],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// Records `credits` spent, refusing when the month's allowance would go below zero. Runs in
/// the caller's write transaction, so concurrent charges cannot overspend.
fn charge(
    conn: &Connection,
    organization_id: Id,
    kind: &str,
    credits: i64,
    target_id: Id,
    allowance: i64,
) -> StoreResult<()> {
    let at = now();
    let (start, _) = month_bounds(at);
    let (reports, refreshes) = credits_used(conn, organization_id, start)?;
    let remaining = allowance - reports - refreshes;
    if credits > remaining {
        return Err(StoreError::InsufficientCredits(format!(
            "this needs {credits} credits and {} remain this month",
            remaining.max(0)
        )));
    }
    conn.execute(
        "INSERT INTO credit_usage (organization_id, kind, credits, target_id, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![organization_id, kind, credits, target_id, at],
    )?;
    Ok(())
}

// ---- public links --------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct PublicLink {
    pub id: Id,
    pub organization_id: Id,
    pub resource_type: String,
    pub resource_id: Id,
    pub token: String,
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    pub view_count: i64,
}

const LINK: &str =
    "id, organization_id, resource_type, resource_id, token, created_at, expires_at, view_count";

fn link(row: &Row<'_>) -> rusqlite::Result<PublicLink> {
    Ok(PublicLink {
        id: row.get(0)?,
        organization_id: row.get(1)?,
        resource_type: row.get(2)?,
        resource_id: row.get(3)?,
        token: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
        view_count: row.get(7)?,
    })
}

/// A new link for the resource, replacing (revoking) the one it had.
pub fn create_link(
    conn: &Connection,
    organization_id: Id,
    resource_type: &str,
    resource_id: Id,
    token: &str,
    expires_at: Option<UnixTime>,
    created_by: Id,
) -> StoreResult<PublicLink> {
    revoke_links(conn, resource_type, resource_id)?;
    conn.execute(
        "INSERT INTO public_links (organization_id, resource_type, resource_id, token, created_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![organization_id, resource_type, resource_id, token, created_by, now(), expires_at],
    )?;
    Ok(conn.query_row(
        &format!("SELECT {LINK} FROM public_links WHERE id = ?1"),
        [conn.last_insert_rowid()],
        link,
    )?)
}

/// The resource's link that still works, if any.
pub fn current_link(
    conn: &Connection,
    resource_type: &str,
    resource_id: Id,
) -> StoreResult<PublicLink> {
    Ok(conn.query_row(
        &format!(
            "SELECT {LINK} FROM public_links
             WHERE resource_type = ?1 AND resource_id = ?2 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > ?3)
             ORDER BY id DESC LIMIT 1"
        ),
        params![resource_type, resource_id, now()],
        link,
    )?)
}

fn revoke_links(conn: &Connection, resource_type: &str, resource_id: Id) -> StoreResult<()> {
    conn.execute(
        "UPDATE public_links SET revoked_at = ?3
         WHERE resource_type = ?1 AND resource_id = ?2 AND revoked_at IS NULL",
        params![resource_type, resource_id, now()],
    )?;
    Ok(())
}

/// Revokes the resource's working link; `NotFound` when there is none.
pub fn revoke_link(
    conn: &Connection,
    resource_type: &str,
    resource_id: Id,
) -> StoreResult<PublicLink> {
    let current = current_link(conn, resource_type, resource_id)?;
    revoke_links(conn, resource_type, resource_id)?;
    Ok(current)
}

/// Resolves a token to its working link and counts the view.
pub fn view_link(conn: &Connection, resource_type: &str, token: &str) -> StoreResult<PublicLink> {
    let found = conn.query_row(
        &format!(
            "SELECT {LINK} FROM public_links
             WHERE token = ?1 AND resource_type = ?2 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > ?3)"
        ),
        params![token, resource_type, now()],
        link,
    )?;
    conn.execute(
        "UPDATE public_links SET view_count = view_count + 1 WHERE id = ?1",
        [found.id],
    )?;
    Ok(found)
}

/// The resource type of a working token, for `/s/{token}`.
pub fn link_type(conn: &Connection, token: &str) -> StoreResult<String> {
    Ok(conn.query_row(
        "SELECT resource_type FROM public_links WHERE token = ?1 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > ?2)",
        params![token, now()],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_bounds_cover_the_calendar_month() {
        // 2026-11-27T10:00:00Z
        let (start, next) = month_bounds(1_795_773_600);
        assert_eq!(crate::domain::format_rfc3339(start), "2026-11-01T00:00:00Z");
        assert_eq!(crate::domain::format_rfc3339(next), "2026-12-01T00:00:00Z");
        let (start, next) = month_bounds(next + 86_400 * 20);
        assert_eq!(crate::domain::format_rfc3339(start), "2026-12-01T00:00:00Z");
        assert_eq!(crate::domain::format_rfc3339(next), "2027-01-01T00:00:00Z");
    }
}
