//! Goals, their milestones and the recorded progress.

use super::{args, Row};

use super::{Db, StoreResult};
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

fn goal(row: &Row<'_>) -> StoreResult<Goal> {
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

fn with_milestones(db: &Db<'_>, mut g: Goal) -> StoreResult<Goal> {
    g.milestones = db.query_map(
        "SELECT id, name, target_value, reached_at FROM goal_milestones WHERE goal_id = ?1 ORDER BY target_value, id",
        args![g.id],
        |r| {
            Ok(Milestone {
                id: r.get(0)?,
                name: r.get(1)?,
                target_value: r.get(2)?,
                reached_at: r.get(3)?,
            })
        },
    )?;
    Ok(g)
}

pub fn create(
    db: &Db<'_>,
    organization_id: Id,
    fields: &GoalFields<'_>,
    current_value: f64,
    created_by: Id,
) -> StoreResult<Goal> {
    let id: Id = db.query_row(
        "INSERT INTO goals (organization_id, name, description, unit, target_value, current_value,
                            due_date, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        args![
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
        |r| r.get(0),
    )?;
    replace_milestones(db, id, fields.milestones.unwrap_or(&[]))?;
    // The starting value is the goal's, not a recorded progress entry: history stays empty.
    mark_reached(db, id, current_value)?;
    get(db, organization_id, id)
}

fn replace_milestones(db: &Db<'_>, goal_id: Id, milestones: &[(String, f64)]) -> StoreResult<()> {
    db.execute(
        "DELETE FROM goal_milestones WHERE goal_id = ?1",
        args![goal_id],
    )?;
    for (name, target) in milestones {
        db.execute(
            "INSERT INTO goal_milestones (goal_id, name, target_value) VALUES (?1, ?2, ?3)",
            args![goal_id, name, target],
        )?;
    }
    Ok(())
}

fn mark_reached(db: &Db<'_>, goal_id: Id, value: f64) -> StoreResult<()> {
    db.execute(
        "UPDATE goal_milestones SET reached_at = ?3
         WHERE goal_id = ?1 AND reached_at IS NULL AND target_value <= ?2",
        args![goal_id, value, now()],
    )?;
    Ok(())
}

pub fn get(db: &Db<'_>, organization_id: Id, id: Id) -> StoreResult<Goal> {
    let g = db.query_row(
        &format!("SELECT {GOAL} FROM goals WHERE id = ?1 AND organization_id = ?2"),
        args![id, organization_id],
        goal,
    )?;
    with_milestones(db, g)
}

pub fn list(
    db: &Db<'_>,
    organization_id: Id,
    listing: &super::Listing,
) -> StoreResult<(u64, Vec<Goal>)> {
    let (count, goals) = super::list(
        db,
        super::ListOf {
            from: "goals",
            columns: GOAL,
            filter: "organization_id = ?1",
            params: args![organization_id],
            id: "id",
            searched: &["name"],
            kept: None,
            row: goal,
        },
        listing,
    )?;
    let goals = goals
        .into_iter()
        .map(|g| with_milestones(db, g))
        .collect::<StoreResult<_>>()?;
    Ok((count, goals))
}

pub fn update(
    db: &Db<'_>,
    organization_id: Id,
    id: Id,
    fields: &GoalFields<'_>,
) -> StoreResult<Goal> {
    let current = get(db, organization_id, id)?;
    db.execute(
        "UPDATE goals SET name = ?2, description = ?3, unit = ?4, target_value = ?5, due_date = ?6
         WHERE id = ?1",
        args![
            id,
            fields.name,
            fields.description,
            fields.unit,
            fields.target_value,
            fields.due_date
        ],
    )?;
    if let Some(milestones) = fields.milestones {
        replace_milestones(db, id, milestones)?;
        mark_reached(db, id, current.current_value)?;
    }
    get(db, organization_id, id)
}

/// Records a new absolute value; returns the goal.
pub fn record_progress(db: &Db<'_>, organization_id: Id, id: Id, value: f64) -> StoreResult<Goal> {
    get(db, organization_id, id)?;
    db.execute(
        "INSERT INTO goal_progress (goal_id, value, at) VALUES (?1, ?2, ?3)",
        args![id, value, now()],
    )?;
    db.execute(
        "UPDATE goals SET current_value = ?2 WHERE id = ?1",
        args![id, value],
    )?;
    mark_reached(db, id, value)?;
    get(db, organization_id, id)
}

/// The recorded values, oldest first.
pub fn history(db: &Db<'_>, id: Id) -> StoreResult<Vec<(UnixTime, f64)>> {
    db.query_map(
        "SELECT at, value FROM goal_progress WHERE goal_id = ?1 ORDER BY id",
        args![id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}
