//! Crash safety: the server killed with SIGKILL in the middle of a storm of writes, again and
//! again, and what every answer it gave before dying promised, checked after each restart.
//! On SQLite in every run (`scripts/test` runs this module once).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};

use crate::support::*;

const KILLS: usize = 20;
const REPORT_COST: i64 = 5;

/// What the clients of one round were told, and what they sent without hearing back.
#[derive(Default)]
struct Tally {
    /// Keys whose creation was answered `201`: (id, key).
    keys: Vec<(i64, String)>,
    /// Keys whose revocation was answered `204`.
    revoked: Vec<i64>,
    /// A revocation sent, not answered: the key may be either.
    revoking: Option<i64>,
    /// Sessions whose login was answered: (access, refresh).
    sessions: Vec<(String, String)>,
    /// Logouts answered `204` (access tokens).
    logged_out: Vec<String>,
    logging_out: Option<String>,
    /// The role of the last answered role change, and a change sent but not answered.
    role: Option<&'static str>,
    role_pending: Option<&'static str>,
    /// Generations answered `201`, and whether one was in flight.
    generated: u64,
    generating: bool,
}

struct Round {
    base: String,
    owner: String,
    tally: Mutex<Tally>,
    stop: AtomicBool,
    in_flight: AtomicUsize,
}

impl Round {
    fn req(&self, method: &str, path: &str) -> ureq::Request {
        ureq::request(method, &format!("{}{path}", self.base))
            .timeout(Duration::from_secs(20))
            .set("Authorization", &format!("Bearer {}", self.owner))
    }

    /// Sends one write; `None` when the server died under it.
    fn send(&self, request: ureq::Request, body: Option<&Value>) -> Option<(u16, Value)> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = match body {
            Some(b) => request.send_json(b.clone()),
            None => request.call(),
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(_)) => return None,
        };
        let status = response.status();
        let body = response.into_json().unwrap_or(Value::Null);
        Some((status, body))
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }
}

fn keys_worker(round: &Round) {
    let mut n = 0;
    while round.running() {
        n += 1;
        let created = round.send(
            round.req("POST", "/api/auth/api-keys/"),
            Some(&json!({"name": format!("storm {n}"), "scopes": ["reports:read"]})),
        );
        let Some((status, body)) = created else {
            return;
        };
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_i64().unwrap();
        let key = body["key"].as_str().unwrap().to_string();
        round.tally.lock().unwrap().keys.push((id, key));
        if n % 2 == 0 {
            round.tally.lock().unwrap().revoking = Some(id);
            let Some((status, body)) = round.send(
                round.req("DELETE", &format!("/api/auth/api-keys/{id}/")),
                None,
            ) else {
                return;
            };
            assert_eq!(status, 204, "{body}");
            let mut t = round.tally.lock().unwrap();
            t.revoked.push(id);
            t.revoking = None;
        }
    }
}

fn sessions_worker(round: &Round) {
    let mut n = 0;
    while round.running() {
        n += 1;
        let login = round.send(
            ureq::post(&format!("{}/api/auth/login/", round.base)),
            Some(&json!({"email": "storm-session@example.com", "password": "session-password-1"})),
        );
        let Some((status, body)) = login else { return };
        assert_eq!(status, 200, "{body}");
        let access = body["access"].as_str().unwrap().to_string();
        let refresh = body["refresh"].as_str().unwrap().to_string();
        round
            .tally
            .lock()
            .unwrap()
            .sessions
            .push((access.clone(), refresh.clone()));
        if n % 2 == 0 {
            round.tally.lock().unwrap().logging_out = Some(access.clone());
            let request = ureq::post(&format!("{}/api/auth/logout/", round.base))
                .timeout(Duration::from_secs(20))
                .set("Authorization", &format!("Bearer {access}"));
            let Some((status, body)) = round.send(request, Some(&json!({"refresh": refresh})))
            else {
                return;
            };
            assert_eq!(status, 204, "{body}");
            let mut t = round.tally.lock().unwrap();
            t.logged_out.push(access);
            t.logging_out = None;
        }
    }
}

fn roles_worker(round: &Round, user_id: i64) {
    let mut role = "analyst";
    while round.running() {
        role = if role == "analyst" {
            "viewer"
        } else {
            "analyst"
        };
        round.tally.lock().unwrap().role_pending = Some(role);
        let Some((status, body)) = round.send(
            round.req("PATCH", &format!("/api/v1/users/{user_id}/")),
            Some(&json!({ "role": role })),
        ) else {
            return;
        };
        assert_eq!(status, 200, "{body}");
        let mut t = round.tally.lock().unwrap();
        t.role = Some(role);
        t.role_pending = None;
    }
}

fn reports_worker(round: &Round, source: i64) {
    while round.running() {
        round.tally.lock().unwrap().generating = true;
        let Some((status, body)) = round.send(
            round.req("POST", "/api/v1/reports/generate/"),
            Some(&json!({"title": "storm", "data_source_id": source})),
        ) else {
            return;
        };
        assert_eq!(status, 201, "{body}");
        let mut t = round.tally.lock().unwrap();
        t.generated += 1;
        t.generating = false;
    }
}

fn integrity_check(database: &Path) {
    let conn = rusqlite::Connection::open(database).expect("open the database");
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(verdict, "ok");
}

fn usage_and_reports(s: &Server, owner: &str) -> (i64, u64) {
    let usage = s.get("/api/v1/usage/").bearer(owner).send();
    assert_eq!(usage.status, 200, "{}", usage.body);
    let reports = s.get("/api/v1/reports/?page_size=1").bearer(owner).send();
    assert_eq!(reports.status, 200, "{}", reports.body);
    (
        usage.json()["credits_used"].as_i64().unwrap(),
        reports.json()["count"].as_u64().unwrap(),
    )
}

#[test]
fn killed_twenty_times_in_a_storm_every_acknowledged_change_holds() {
    let mut s = server()
        .sqlite()
        .env("CLARIBI_RATE_LIMITS__GENERAL_PER_HOUR", "10000000")
        .env("CLARIBI_RATE_LIMITS__GENERATION_PER_HOUR", "10000000")
        .env("CLARIBI_CREDITS__MONTHLY_ALLOWANCE", "100000000")
        .env("CLARIBI_AUTH__ARGON2_MEMORY_KIB", "64")
        .env("CLARIBI_AUTH__ARGON2_ITERATIONS", "1")
        // Every acknowledged login must still work at the end: more than the default 100 are
        // made, and the limit's own ending of the oldest is tested on its own.
        .env("CLARIBI_AUTH__MAX_SESSIONS_PER_USER", "1000000")
        .start();
    let database = s.data_dir().join("claribi.db");
    let owner = s.owner_token();
    for (email, password) in [
        ("storm-session@example.com", "session-password-1"),
        ("storm-role@example.com", "role-password-1"),
    ] {
        let r = s
            .post("/api/v1/users/")
            .bearer(&owner)
            .json(&json!({"email": email, "password": password, "role": "analyst"}));
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let role_user = s.login("storm-role@example.com", "role-password-1").json();
    let role_user_id = role_user["user"]["id"].as_i64().unwrap();
    let role_token = role_user["access"].as_str().unwrap().to_string();
    let source = s
        .post("/api/v1/data-sources/")
        .bearer(&owner)
        .json(&json!({"name": "storm", "source_type": "file"}));
    assert_eq!(source.status, 201, "{}", source.body);
    let source = source.json()["id"].as_i64().unwrap();

    let mut rng = rand::thread_rng();
    let mut with_writes_in_flight = 0;
    let mut acknowledged = 0;
    for kill in 0..KILLS {
        let (credits_before, reports_before) = usage_and_reports(&s, &owner);
        let round = Arc::new(Round {
            base: s.base.clone(),
            owner: owner.clone(),
            tally: Mutex::default(),
            stop: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        });
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let round = round.clone();
                std::thread::spawn(move || match w {
                    0 => keys_worker(&round),
                    1 => sessions_worker(&round),
                    2 => roles_worker(&round, role_user_id),
                    _ => reports_worker(&round, source),
                })
            })
            .collect();
        // Kill moments spread from the storm's first requests to well into it.
        let at = Duration::from_millis(rng.gen_range(20..=1200));
        let started = Instant::now();
        std::thread::sleep(at);
        let in_flight = round.in_flight.load(Ordering::SeqCst);
        s = s.kill_and_restart_with(|| {
            round.stop.store(true, Ordering::SeqCst);
            integrity_check(&database);
        });
        for w in workers {
            w.join().expect("a storm client failed");
        }
        if in_flight > 0 {
            with_writes_in_flight += 1;
        }
        let t = round.tally.lock().unwrap();
        acknowledged += t.keys.len()
            + t.revoked.len()
            + t.sessions.len()
            + t.logged_out.len()
            + t.generated as usize
            + usize::from(t.role.is_some());
        let context = format!(
            "kill {kill} after {:?} ({in_flight} requests in flight)",
            started.elapsed()
        );

        // Keys: every acknowledged creation is there; every acknowledged revocation holds.
        for (id, key) in &t.keys {
            let status = s.get("/api/v1/auth/verify/").bearer(key).send().status;
            if t.revoked.contains(id) {
                assert_eq!(status, 401, "{context}: revoked key {id} works again");
            } else if t.revoking != Some(*id) {
                assert_eq!(status, 200, "{context}: acknowledged key {id} lost");
            }
        }
        // Sessions: every acknowledged login works; every acknowledged logout holds.
        for (access, _) in &t.sessions {
            let status = s.get("/api/auth/me/").bearer(access).send().status;
            if t.logged_out.contains(access) {
                assert_eq!(status, 401, "{context}: a logged-out session works again");
            } else if t.logging_out.as_ref() != Some(access) {
                assert_eq!(status, 200, "{context}: an acknowledged session was lost");
            }
        }
        // Roles: the last acknowledged change holds (or the one in flight took effect),
        // in the database and in what the user's own session may do.
        let role = s
            .get(&format!("/api/v1/users/{role_user_id}/"))
            .bearer(&owner)
            .send()
            .json()["role"]
            .as_str()
            .unwrap()
            .to_string();
        let allowed: Vec<&str> = t
            .role
            .iter()
            .chain(t.role_pending.iter())
            .copied()
            .collect();
        if !allowed.is_empty() {
            assert!(
                allowed.contains(&role.as_str()),
                "{context}: role {role}, expected one of {allowed:?}"
            );
        }
        let dashboard = s
            .post("/api/v1/dashboards/")
            .bearer(&role_token)
            .json(&json!({"name": "by the role user"}));
        let expected = if role == "viewer" { 403 } else { 201 };
        assert_eq!(dashboard.status, expected, "{context}: as {role}");
        // Credits: each stored report was charged once, and every acknowledged one is stored.
        let (credits_after, reports_after) = usage_and_reports(&s, &owner);
        let made = reports_after - reports_before;
        assert!(
            made >= t.generated && made <= t.generated + u64::from(t.generating),
            "{context}: {made} reports stored, {} acknowledged",
            t.generated
        );
        assert_eq!(
            credits_after - credits_before,
            REPORT_COST * made as i64,
            "{context}: credits charged do not match the reports stored"
        );
    }
    assert!(
        with_writes_in_flight >= KILLS / 2,
        "only {with_writes_in_flight} of {KILLS} kills came with writes in flight"
    );
    eprintln!(
        "{KILLS} kills, {with_writes_in_flight} with writes in flight, {acknowledged} acknowledged operations checked"
    );
}
