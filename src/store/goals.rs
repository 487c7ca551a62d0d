//! Goals, their milestones and the recorded progress.

use rusqlite::{params, Connection, Row};

use super::{Count, StoreResult};
use crate::domain::{now, Id, UnixTime};

#[derive(Debug, Clone)]
pub struct Goal {
    pub id: Id,
    pub name: String,
    pub description: String,
    pub unit: String,
    pub target_value: f64,
    pub current_value: f64,
    pub due_date: Option<String>,
    pub created_by: Option<Id>,
    pub created_at: UnixTime,
    pub milestones: Vec<Milestone>,
}

#[derive(Debug, Clone)]
pub struct Milestone {
    pub id: Id,
    pub name: String,
    pub target_value: f64,
    pub reached_at: Option<UnixTime>,
}

/// What create and update write; `milestones` of `None` keeps the existing ones.
pub struct GoalFields<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub unit: &'a str,
    pub target_value: f64,
    pub due_date: Option<&'a str>,
    pub milestones: Option<&'a [(String, f64)]>,
}

const GOAL: &str = "id, name, description, unit, target_value, current_value, due_date, \
                    created_by, created_at";

fn goal(row: &Row<'_>) -> rusqlite::Result<Goal> {
    Ok(Goal {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        unit: row.get(3)?,
        target_value: row.get(4)?,
        current_value: row.get(5)?,
        due_date: row.get(6)?,
        created_by: row.get(7)?,
        created_at: row.get(8)?,
        milestones: Vec::new(),
    })
}

fn with_milestones(conn: &Connection, mut g: Goal) -> StoreResult<Goal> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, target_value, reached_at FROM goal_milestones WHERE goal_id = ?1 ORDER BY target_value, id",
    )?;
    g.milestones = stmt
        .query_map([g.id], |r| {
            Ok(Milestone {
                id: r.get(0)?,
                name: r.get(1)?,
                target_value: r.get(2)?,
                reached_at: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(g)
}

pub fn create(
    conn: &Connection,
    organization_id: Id,
    fields: &GoalFields<'_>,
    current_value: f64,
    created_by: Id,
) -> StoreResult<Goal> {
    conn.execute(
        "INSERT INTO goals (organization_id, name, description, unit, target_value, current_value,
                            due_date, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            organization_id,
            fields.name,
            fields.description,
            fields.unit,
            fields.target_value,
            current_value,
            fields.due_date,
            created_by,
            now()
        ],
    )?;
    let id = conn.last_insert_rowid();
    replace_milestones(conn, id, fields.milestones.unwrap_or(&[]))?;
    // The starting value is the goal's, not a recorded progress entry: history stays empty.
    mark_reached(conn, id, current_value)?;
    get(conn, organization_id, id)
}

fn replace_milestones(
    conn: &Connection,
    goal_id: Id,
    milestones: &[(String, f64)],
) -> StoreResult<()> {
    conn.execute("DELETE FROM goal_milestones WHERE goal_id = ?1", [goal_id])?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO goal_milestones (goal_id, name, target_value) VALUES (?1, ?2, ?3)",
    )?;
    for (name, target) in milestones {
        stmt.execute(params![goal_id, name, target])?;
    }
    Ok(())
}

fn mark_reached(conn: &Connection, goal_id: Id, value: f64) -> StoreResult<()> {
    conn.execute(
        "UPDATE goal_milestones SET reached_at = ?3
         WHERE goal_id = ?1 AND reached_at IS NULL AND target_value <= ?2",
        params![goal_id, value, now()],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, organization_id: Id, id: Id) -> StoreResult<Goal> {
    let g = conn.query_row(
        &format!("SELECT {GOAL} FROM goals WHERE id = ?1 AND organization_id = ?2"),
        params![id, organization_id],
        goal,
    )?;
    with_milestones(conn, g)
}

pub fn list(
    conn: &Connection,
    organization_id: Id,
    offset: u64,
    limit: u64,
) -> StoreResult<(u64, Vec<Goal>)> {
    let (count, goals) = super::page(
        conn,
        Count::Query("SELECT COUNT(*) FROM goals WHERE organization_id = ?1"),
        &format!(
            "SELECT {GOAL} FROM goals WHERE organization_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3"
        ),
        &[&organization_id],
        offset,
        limit,
        goal,
    )?;
    let goals = goals
        .into_iter()
        .map(|g| with_milestones(conn, g))
        .collect::<StoreResult<_>>()?;
    Ok((count, goals))
}

pub fn update(
    conn: &Connection,
    organization_id: Id,
    id: Id,
    fields: &GoalFields<'_>,
) -> StoreResult<Goal> {
    let current = get(conn, organization_id, id)?;
    conn.execute(
        "UPDATE goals SET name = ?2, description = ?3, unit = ?4, target_value = ?5, due_date = ?6
         WHERE id = ?1",
        params![
            id,
            fields.name,
            fields.description,
            fields.unit,
            fields.target_value,
            fields.due_date
        ],
    )?;
    if let Some(milestones) = fields.milestones {
        replace_milestones(conn, id, milestones)?;
        mark_reached(conn, id, current.current_value)?;
    }
    get(conn, organization_id, id)
}

/// Records a new absolute value; returns the goal.
pub fn record_progress(
    conn: &Connection,
    organization_id: Id,
    id: Id,
    value: f64,
) -> StoreResult<Goal> {
    get(conn, organization_id, id)?;
    conn.execute(
        "INSERT INTO goal_progress (goal_id, value, at) VALUES (?1, ?2, ?3)",
        params![id, value, now()],
    )?;
    conn.execute(
        "UPDATE goals SET current_value = ?2 WHERE id = ?1",
        params![id, value],
    )?;
    mark_reached(conn, id, value)?;
    get(conn, organization_id, id)
}

/// The recorded values, oldest first.
pub fn history(conn: &Connection, id: Id) -> StoreResult<Vec<(UnixTime, f64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT at, value FROM goal_progress WHERE goal_id = ?1 ORDER BY id")?;
    let rows = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
