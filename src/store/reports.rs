//! The `reports` table: generated reports, charged to the month's credits, and the demo
//! seeding. Every query is scoped by organization: a row of another organization is not found.

use super::{args, Row};

use super::row_counts::{add_count, count_of, recount};
use super::{public_links, usage, Db, StoreError, StoreResult};
use crate::domain::{now, Id, UnixTime};

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

const COLUMNS: &str = "id, title, status, data_source_id, prompt, summary, content, credits_used, \
                       created_by, created_at, completed_at";

fn from_row(row: &Row<'_>) -> StoreResult<Report> {
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
pub fn create(db: &Db<'_>, r: &NewReport<'_>, allowance: i64) -> StoreResult<Report> {
    let at = now();
    let id: Id = db.query_row(
        "INSERT INTO reports (organization_id, title, status, data_source_id, prompt, summary,
                              content, credits_used, created_by, created_at, completed_at)
         VALUES (?1, ?2, 'completed', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) RETURNING id",
        args![
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
        |r| r.get(0),
    )?;
    usage::charge(
        db,
        r.organization_id,
        "report_generation",
        r.credits,
        id,
        allowance,
    )?;
    add_count(db, r.organization_id, "report", 1)?;
    get(db, r.organization_id, id)
}

pub fn get(db: &Db<'_>, organization_id: Id, id: Id) -> StoreResult<Report> {
    db.query_row(
        &format!("SELECT {COLUMNS} FROM reports WHERE id = ?1 AND organization_id = ?2"),
        args![id, organization_id],
        from_row,
    )
}

/// One page of the organization's reports (searched by title); without a search the total
/// comes from `row_counts`.
pub fn list(
    db: &Db<'_>,
    organization_id: Id,
    listing: &super::Listing,
) -> StoreResult<(u64, Vec<Report>)> {
    super::list(
        db,
        super::ListOf {
            from: "reports",
            columns: COLUMNS,
            filter: "organization_id = ?1",
            params: args![organization_id],
            id: "id",
            searched: &["title"],
            kept: Some(super::row_counts::REPORTS),
            row: from_row,
        },
        listing,
    )
}

/// Deletes the report and revokes its public links (returned, for the journal).
pub fn delete(db: &Db<'_>, organization_id: Id, id: Id) -> StoreResult<Vec<public_links::Revoked>> {
    let n = db.execute(
        "DELETE FROM reports WHERE id = ?1 AND organization_id = ?2",
        args![id, organization_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    add_count(db, organization_id, "report", -1)?;
    public_links::revoke_all(db, "report", id)
}

/// Demo content: `count` completed reports on `data_source_id`, charged nothing.
pub fn seed(
    db: &Db<'_>,
    organization_id: Id,
    data_source_id: Id,
    created_by: Id,
    count: u64,
) -> StoreResult<()> {
    let at = now();
    let regions = ["North", "South", "East", "West"];
    for n in 0..count {
        let region = regions[(n % 4) as usize];
        let week = n % 52 + 1;
        db.execute(
            "INSERT INTO reports (organization_id, title, status, data_source_id, prompt, summary,
                                  content, credits_used, created_by, created_at, completed_at)
             VALUES (?1, ?2, 'completed', ?3, ?4, ?5, ?6, 0, ?7, ?8, ?8)",
            args![
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
            ],
        )?;
    }
    recount(db, organization_id)
}

/// Figures the report generator summarises: (reports, dashboards, goals, data sources).
pub fn figures(db: &Db<'_>, organization_id: Id) -> StoreResult<(u64, u64, u64, u64)> {
    let goals = db.query_row(
        "SELECT COUNT(*) FROM goals WHERE organization_id = ?1",
        args![organization_id],
        |r| r.get(0),
    )?;
    let sources = db.query_row(
        "SELECT COUNT(*) FROM data_sources WHERE organization_id = ?1",
        args![organization_id],
        |r| r.get(0),
    )?;
    Ok((
        count_of(db, organization_id, "report")?,
        count_of(db, organization_id, "dashboard")?,
        goals,
        sources,
    ))
}
