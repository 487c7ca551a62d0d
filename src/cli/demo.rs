//! `demo seed`: fills an organization with data sources, reports, dashboards and goals so that
//! a new installation can be tried at once. Never run by default.

use super::Failure;
use crate::config::Config;
use crate::domain::Role;
use crate::ops::App;
use crate::store::goals::{self, GoalFields};
use crate::store::{dashboards, data_sources, organizations, reports, users, StoreError};

pub fn seed(config: Config, organization: &str, reports: u64) -> Result<(), Failure> {
    let app = App::open(config).map_err(Failure::runtime)?;
    app.store
        .write_blocking(|tx| {
            let org = organizations::find_by_name(tx, organization)?.ok_or_else(|| {
                StoreError::Conflict(format!("no organization is named {organization:?}"))
            })?;
            let owner = users::all(tx)?
                .into_iter()
                .find(|u| u.organization_id == org && u.role == Role::Owner)
                .ok_or_else(|| StoreError::Conflict("the organization has no owner".into()))?;
            let mut sources = Vec::new();
            for (name, kind) in [
                ("Sales warehouse", "database"),
                ("Web analytics", "google_analytics"),
                ("Budget sheet", "google_sheets"),
            ] {
                sources.push(data_sources::create(tx, org, name, kind, owner.id)?);
            }
            reports::seed(tx, org, sources[0].id, owner.id, reports)?;
            for (name, widgets) in [
                (
                    "Sales overview",
                    r#"[{"type":"kpi","metric":"revenue"},{"type":"chart","metric":"units"}]"#,
                ),
                ("Marketing", r#"[{"type":"chart","metric":"sessions"}]"#),
            ] {
                dashboards::create(tx, org, name, "", widgets, owner.id)?;
            }
            let milestones = [
                ("Half way".to_string(), 500.0),
                ("Target".to_string(), 1000.0),
            ];
            goals::create(
                tx,
                org,
                &GoalFields {
                    name: "Quarterly revenue",
                    description: "kEUR booked this quarter",
                    unit: "kEUR",
                    target_value: 1000.0,
                    due_date: Some("2026-12-31"),
                    milestones: Some(&milestones),
                },
                420.0,
                owner.id,
            )?;
            Ok(())
        })
        .map_err(|e| match e {
            StoreError::Conflict(what) => Failure::usage(what),
            other => Failure::runtime(other),
        })?;
    println!("seeded {organization:?}: 3 data sources, {reports} reports, 2 dashboards, 1 goal");
    Ok(())
}
