//! The `dashboards` table: widgets as JSON text, refreshes charged to the month's credits.
//! Every query is scoped by organization: a row of another organization is not found.

use super::{args, Row};

use super::row_counts::add_count;
use super::{public_links, usage, Db, StoreError, StoreResult};
use crate::domain::{now, Id, UnixTime};

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

const COLUMNS: &str =
    "id, name, description, widgets, created_by, created_at, updated_at, last_refreshed_at";

fn from_row(row: &Row<'_>) -> StoreResult<Dashboard> {
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

pub fn create(
    db: &Db<'_>,
    organization_id: Id,
    name: &str,
    description: &str,
    widgets: &str,
    created_by: Id,
) -> StoreResult<Dashboard> {
    let at = now();
    let id: Id = db.query_row(
        "INSERT INTO dashboards (organization_id, name, description, widgets, created_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING id",
        args![organization_id, name, description, widgets, created_by, at],
        |r| r.get(0),
    )?;
    add_count(db, organization_id, "dashboard", 1)?;
    get(db, organization_id, id)
}

pub fn get(db: &Db<'_>, organization_id: Id, id: Id) -> StoreResult<Dashboard> {
    db.query_row(
        &format!("SELECT {COLUMNS} FROM dashboards WHERE id = ?1 AND organization_id = ?2"),
        args![id, organization_id],
        from_row,
    )
}

/// One page of the organization's dashboards, newest first; the total comes from
/// `row_counts`.
pub fn list(
    db: &Db<'_>,
    organization_id: Id,
    listing: &super::Listing,
) -> StoreResult<(u64, Vec<Dashboard>)> {
    super::list(
        db,
        super::ListOf {
            from: "dashboards",
            columns: COLUMNS,
            filter: "organization_id = ?1",
            params: args![organization_id],
            id: "id",
            searched: &["name"],
            kept: Some(super::row_counts::DASHBOARDS),
            row: from_row,
        },
        listing,
    )
}

pub fn update(
    db: &Db<'_>,
    organization_id: Id,
    id: Id,
    name: &str,
    description: &str,
    widgets: &str,
) -> StoreResult<Dashboard> {
    db.execute(
        "UPDATE dashboards SET name = ?3, description = ?4, widgets = ?5, updated_at = ?6
         WHERE id = ?1 AND organization_id = ?2",
        args![id, organization_id, name, description, widgets, now()],
    )?;
    get(db, organization_id, id)
}

/// Marks the dashboard refreshed and charges its credits.
pub fn refresh(
    db: &Db<'_>,
    organization_id: Id,
    id: Id,
    credits: i64,
    allowance: i64,
) -> StoreResult<Dashboard> {
    get(db, organization_id, id)?;
    usage::charge(
        db,
        organization_id,
        "dashboard_refresh",
        credits,
        id,
        allowance,
    )?;
    db.execute(
        "UPDATE dashboards SET last_refreshed_at = ?2 WHERE id = ?1",
        args![id, now()],
    )?;
    get(db, organization_id, id)
}

/// Deletes the dashboard and revokes its public links (returned, for the journal).
pub fn delete(db: &Db<'_>, organization_id: Id, id: Id) -> StoreResult<Vec<public_links::Revoked>> {
    let n = db.execute(
        "DELETE FROM dashboards WHERE id = ?1 AND organization_id = ?2",
        args![id, organization_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    add_count(db, organization_id, "dashboard", -1)?;
    public_links::revoke_all(db, "dashboard", id)
}
