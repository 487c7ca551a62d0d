//! `demo seed`: fills an organization with data sources, reports, dashboards and goals so that
//! a new installation can be tried at once. `demo history`: gives an organization a long past
//! (audit entries, keys, reports), to see how an installation that has lived for years holds
//! up (`benches/scale`). Never run by default.

use super::Failure;
use crate::config::Config;
use crate::domain::Id;
use crate::domain::Role;
use crate::ops::App;
use crate::store::goals::{self, GoalFields};
use crate::store::{
    api_keys, audit, dashboards, data_sources, organizations, reports, sessions, users, Db,
    StoreError,
};

pub fn seed(config: Config, organization: &str, reports: u64) -> Result<(), Failure> {
    let app = App::open(config).map_err(Failure::runtime)?;
    app.store
        .write_blocking(|tx| {
            let (org, owner) = organization_and_owner(tx, organization)?;
            let mut sources = Vec::new();
            for (name, kind) in [
                ("Sales warehouse", "database"),
                ("Web analytics", "google_analytics"),
                ("Budget sheet", "google_sheets"),
            ] {
                sources.push(data_sources::create(tx, org, name, kind, owner)?);
            }
            reports::seed(tx, org, sources[0].id, owner, reports)?;
            for (name, widgets) in [
                (
                    "Sales overview",
                    r#"[{"type":"kpi","metric":"revenue"},{"type":"chart","metric":"units"}]"#,
                ),
                ("Marketing", r#"[{"type":"chart","metric":"sessions"}]"#),
            ] {
                dashboards::create(tx, org, name, "", widgets, owner)?;
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
                owner,
            )?;
            Ok(())
        })
        .map_err(failure)?;
    println!("seeded {organization:?}: 3 data sources, {reports} reports, 2 dashboards, 1 goal");
    Ok(())
}

/// How much past `history` writes.
pub struct History {
    pub audit_entries: u64,
    pub keys: u64,
    pub revoked_keys: u64,
    pub reports: u64,
    pub sessions: u64,
}

/// Rows written per transaction: a long history is many short commits, as the server's own.
const BATCH: u64 = 10_000;

/// Writes `history` into the organization through the store's own functions (the audit
/// entries chained and numbered, the keys with their kept totals, the reports counted), in
/// transactions of `BATCH` rows. The entries are the owner's and anonymous, a tenth of them
/// failed logins; the keys and the sessions are the owner's, the first `revoked_keys` keys
/// revoked.
pub fn history(config: Config, organization: &str, history: &History) -> Result<(), Failure> {
    if history.revoked_keys > history.keys {
        return Err(Failure::usage("--revoked-keys is more than --keys"));
    }
    // Keys and sessions written behind a running server's back would be unknown to it (the
    // live state reads them at start): the installation must be stopped, which only SQLite's
    // data directory can tell. On PostgreSQL, fill an SQLite installation and migrate it.
    if config.database.is_postgres() {
        return Err(Failure::usage(
            "demo history writes into SQLite only: fill an SQLite installation, then claribi migrate",
        ));
    }
    let _stopped = super::admin::stopped_installation(&config.server.data_dir)?;
    let app = App::open(config).map_err(Failure::runtime)?;
    let store = &app.store;
    let (org, owner) = store
        .read_blocking(|db| organization_and_owner(db, organization))
        .map_err(failure)?;
    const ACTIONS: [&str; 5] = [
        "login.succeeded",
        "api_key.created",
        "session.revoked",
        "api_key.updated",
        "public_link.created",
    ];
    in_batches(store, history.audit_entries, |db, rows| {
        for i in rows {
            let action = if i % 10 == 3 {
                "login.failed"
            } else {
                ACTIONS[(i % 5) as usize]
            };
            audit::record(
                db,
                &audit::Entry {
                    organization_id: Some(org),
                    action,
                    outcome: if action == "login.failed" {
                        audit::Outcome::Failure
                    } else {
                        audit::Outcome::Success
                    },
                    user_id: (i % 2 == 0).then_some(owner),
                    ip: Some(format!("10.0.{}.{}", i / 256 % 256, i % 256)),
                    user_agent: Some("claribi-history/1".into()),
                    details: format!(r#"{{"entry":{i}}}"#),
                    ..audit::Entry::default()
                },
            )?;
        }
        Ok(())
    })?;
    in_batches(store, history.keys, |db, rows| {
        for i in rows {
            let new = crate::auth::api_key::generate();
            let key = api_keys::create(
                db,
                &api_keys::NewApiKey {
                    user_id: owner,
                    organization_id: org,
                    name: &format!("history key {i}"),
                    description: "",
                    key_hash: &crate::auth::api_key::hash_hex(&new.hash),
                    prefix: &new.prefix,
                    scopes: None,
                    expires_in_days: (i % 3 == 0).then_some(365),
                    allowed_ips: None,
                    canary: false,
                },
            )?;
            if i < history.revoked_keys {
                api_keys::revoke(db, key.id, Some(owner))?;
            }
        }
        Ok(())
    })?;
    in_batches(store, history.sessions, |db, rows| {
        for i in rows {
            let random = || crate::auth::api_key::hash_hex(&crate::auth::api_key::generate().hash);
            sessions::create(
                db,
                &sessions::NewSession {
                    user_id: owner,
                    expires_at: crate::domain::now() + 30 * 86_400,
                    ip: Some(&format!("10.1.{}.{}", i / 256 % 256, i % 256)),
                    user_agent: Some("claribi-history/1"),
                    refresh_jti: &random(),
                    secret: &random(),
                    mfa_enrollment_required: false,
                },
            )?;
        }
        Ok(())
    })?;
    if history.reports > 0 {
        let source = store
            .write_blocking(|db| {
                data_sources::create(db, org, "History warehouse", "database", owner)
            })
            .map_err(failure)?;
        in_batches(store, history.reports, |db, rows| {
            reports::seed(db, org, source.id, owner, rows.end - rows.start)
        })?;
    }
    println!(
        "wrote {organization:?}'s history: {} audit entries, {} keys ({} revoked), {} reports, \
         {} sessions",
        history.audit_entries,
        history.keys,
        history.revoked_keys,
        history.reports,
        history.sessions
    );
    Ok(())
}

/// Runs `write` over the rows `0..total`, in transactions of `BATCH` rows.
fn in_batches(
    store: &crate::store::Store,
    total: u64,
    write: impl Fn(&Db<'_>, std::ops::Range<u64>) -> Result<(), StoreError> + Sync,
) -> Result<(), Failure> {
    let mut done = 0;
    while done < total {
        let rows = done..total.min(done + BATCH);
        done = rows.end;
        store
            .write_blocking(|db| write(db, rows))
            .map_err(failure)?;
    }
    Ok(())
}

/// The organization named `name` and its owner.
fn organization_and_owner(db: &Db<'_>, name: &str) -> Result<(Id, Id), StoreError> {
    let org = organizations::find_by_name(db, name)?
        .ok_or_else(|| StoreError::Conflict(format!("no organization is named {name:?}")))?;
    let owner = users::all(db)?
        .into_iter()
        .find(|u| u.organization_id == org && u.role == Role::Owner)
        .ok_or_else(|| StoreError::Conflict("the organization has no owner".into()))?;
    Ok((org, owner.id))
}

fn failure(error: StoreError) -> Failure {
    match error {
        StoreError::Conflict(what) => Failure::usage(what),
        other => Failure::runtime(other),
    }
}
