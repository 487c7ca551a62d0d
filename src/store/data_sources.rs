//! The `data_sources` table: what an organization's reports are generated from. Every query is
//! scoped by organization: a row of another organization is not found.

use super::{args, Row};

use super::{Db, StoreError, StoreResult};
use crate::domain::{now, Id, UnixTime};

#[derive(Debug, Clone)]
pub struct DataSource {
    pub id: Id,
    pub name: String,
    pub source_type: String,
    pub status: String,
    pub created_by: Option<Id>,
    pub created_at: UnixTime,
}

const COLUMNS: &str = "id, name, source_type, status, created_by, created_at";

fn from_row(row: &Row<'_>) -> StoreResult<DataSource> {
    Ok(DataSource {
        id: row.get(0)?,
        name: row.get(1)?,
        source_type: row.get(2)?,
        status: row.get(3)?,
        created_by: row.get(4)?,
        created_at: row.get(5)?,
    })
}

pub fn create(
    db: &Db<'_>,
    organization_id: Id,
    name: &str,
    source_type: &str,
    created_by: Id,
) -> StoreResult<DataSource> {
    let id: Id = db.query_row(
        "INSERT INTO data_sources (organization_id, name, source_type, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        args![organization_id, name, source_type, created_by, now()],
        |r| r.get(0),
    )?;
    get(db, organization_id, id)
}

pub fn get(db: &Db<'_>, organization_id: Id, id: Id) -> StoreResult<DataSource> {
    db.query_row(
        &format!("SELECT {COLUMNS} FROM data_sources WHERE id = ?1 AND organization_id = ?2"),
        args![id, organization_id],
        from_row,
    )
}

/// One page of the organization's data sources (searched by name).
pub fn list(
    db: &Db<'_>,
    organization_id: Id,
    listing: &super::Listing,
) -> StoreResult<(u64, Vec<DataSource>)> {
    super::list(
        db,
        super::ListOf {
            from: "data_sources",
            columns: COLUMNS,
            filter: "organization_id = ?1",
            params: args![organization_id],
            id: "id",
            searched: &["name"],
            kept: None,
            row: from_row,
        },
        listing,
    )
}

pub fn delete(db: &Db<'_>, organization_id: Id, id: Id) -> StoreResult<()> {
    let n = db.execute(
        "DELETE FROM data_sources WHERE id = ?1 AND organization_id = ?2",
        args![id, organization_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
