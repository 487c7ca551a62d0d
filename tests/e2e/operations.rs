//! Contract 9.3: what an administrator runs the server with. Logs for machines, metrics for
//! Prometheus, the version, backups and restore.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api_keys::create_key;
use crate::support::{binary, server, within_one_rate_window};

/// The metrics address from the log line "metrics on http://ADDR/metrics".
fn metrics_url(log: &str) -> String {
    let rest = log
        .split("metrics on http://")
        .nth(1)
        .expect("a metrics log line");
    let addr: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '/')
        .collect();
    format!("http://{addr}/metrics")
}

fn wait_for_log(s: &crate::support::Server, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = s.log();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn json_logs_are_one_object_a_line_with_who_called_and_no_secret() {
    let s = server().env("CLARIBI_LOG__FORMAT", "json").start();
    let token = s.owner_token();
    let me = s.get("/api/auth/me/").bearer(&token).send().json();
    let user_id = me["id"].as_i64().unwrap();
    let key = create_key(&s, &token, json!({"name": "log test"}));
    let secret = key["key"].as_str().unwrap().to_string();
    let prefix = key["prefix"].as_str().unwrap().to_string();
    let r = s.get("/api/v1/auth/verify/").bearer(&secret).send();
    assert_eq!(r.status, 200);
    s.get("/api/v1/reports/987654/").bearer(&secret).send();
    let log = wait_for_log(&s, "reports/{id}");

    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for line in &lines {
        for field in ["timestamp", "level", "message"] {
            assert!(line.get(field).is_some(), "no {field}: {line}");
        }
    }
    let access = |route: &str| {
        lines
            .iter()
            .find(|l| l["target"] == "claribi::access" && l["route"] == route)
            .unwrap_or_else(|| panic!("no access line for {route}:\n{log}"))
            .clone()
    };
    let jwt = access("auth/me");
    assert_eq!(jwt["status"], 200);
    assert_eq!(jwt["method"], "GET");
    assert_eq!(jwt["user_id"], user_id);
    assert!(
        jwt["latency_us"].is_u64() && jwt["request_id"].is_string(),
        "{jwt}"
    );
    assert!(jwt.get("key_prefix").is_none(), "{jwt}");
    let by_key = access("auth/verify");
    assert_eq!(by_key["key_prefix"], prefix.as_str());
    assert_eq!(by_key["user_id"], user_id);
    // The route's pattern, never the path with its id.
    assert_eq!(access("reports/{id}")["status"], 404);
    assert!(!log.contains("987654"), "a raw path reached the log");
    assert!(!log.contains(&secret), "an API key reached the log");
    assert!(!log.contains(&token), "a token reached the log");
}

/// Contract 10.1: the metrics address is served under the API's limits: a client that stalls
/// is cut at the header timeout, and stalled connections past the metrics cap (16) wait in
/// the kernel's queue without holding descriptors or a scrape up for long.
#[test]
fn the_metrics_address_cuts_slow_clients_and_caps_its_connections() {
    use std::io::{Read, Write};
    let s = server()
        .env("CLARIBI_METRICS__BIND", "127.0.0.1:0")
        .env("CLARIBI_SERVER__HEADER_READ_TIMEOUT", "1s")
        .start();
    let url = metrics_url(&s.log());
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_string();
    // Forty clients that send half a request line and stall.
    let stalled: Vec<std::net::TcpStream> = (0..40)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(&addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.write_all(b"GET /metr").unwrap();
            c
        })
        .collect();
    let started = Instant::now();
    for mut c in stalled {
        // Closed by the server (no answer, or a 408), never left open.
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).unwrap_or(0);
        let answer = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
        if n > 0 {
            assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
        }
    }
    // 16 at a time, each cut after 1 s: three rounds.
    let cut = started.elapsed();
    assert!(
        cut < Duration::from_secs(6),
        "stalled clients held on for {cut:?}"
    );
    let scrape = ureq::get(&url)
        .call()
        .expect("GET /metrics after the stall");
    assert_eq!(scrape.status(), 200);
}

#[test]
fn metrics_are_served_apart_from_the_api_and_pass_promtool() {
    let s = server().env("CLARIBI_METRICS__BIND", "127.0.0.1:0").start();
    let url = metrics_url(&s.log());
    let token = s.owner_token();
    let key = create_key(&s, &token, json!({"name": "metrics"}));
    let secret = key["key"].as_str().unwrap();
    create_key(
        &s,
        &token,
        json!({"name": "monthly", "expires_in_days": 30}),
    );
    s.get("/api/v1/auth/verify/").bearer(secret).send();
    s.get("/api/v1/reports/555444/").bearer(secret).send();
    s.get("/api/auth/me/").bearer("not-a-token").send();
    s.login(crate::support::ADMIN_EMAIL, "wrong-password-1");

    // Never on the API's own address.
    assert_eq!(s.get("/metrics").send().status, 404);

    let response = ureq::get(&url).call().expect("GET /metrics");
    assert!(response
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/plain"));
    let text = response.into_string().unwrap();
    for family in [
        "claribi_http_requests_total{",
        "claribi_http_request_duration_seconds_bucket{",
        "claribi_auth_failures_total{reason=\"token_not_valid\"} 1",
        "claribi_logins_total{outcome=\"success\"}",
        "claribi_logins_total{outcome=\"invalid_credentials\"} 1",
        "claribi_sessions_active 1",
        "claribi_api_keys_active 2",
        "claribi_api_keys_expiring{within=\"1d\"} 0",
        "claribi_api_keys_expiring{within=\"7d\"} 0",
        "claribi_api_keys_expiring{within=\"30d\"} 1",
    ] {
        assert!(text.contains(family), "no {family} in:\n{text}");
    }
    assert!(text.contains(
        "claribi_http_requests_total{route=\"reports/{id}\",method=\"GET\",status=\"404\"} 1"
    ));
    assert!(!text.contains("555444"), "a raw path became a label");

    let promtool = which("promtool").expect("promtool (scripts/test installs Debian's prometheus)");
    let file = s.work_dir().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let out = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn throttling_is_counted_by_kind() {
    within_one_rate_window(|| {
        let s = server()
            .env("CLARIBI_METRICS__BIND", "127.0.0.1:0")
            .env("CLARIBI_RATE_LIMITS__GENERAL_PER_HOUR", "3")
            .start();
        let url = metrics_url(&s.log());
        let token = s.owner_token();
        for _ in 0..5 {
            s.get("/api/auth/me/").bearer(&token).send();
        }
        let text = ureq::get(&url).call().unwrap().into_string().unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("claribi_throttled_total{kind=\"rate_limit\"}"))
            .unwrap_or_else(|| panic!("no rate_limit counter in:\n{text}"));
        let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(count >= 2.0, "{line}");
    });
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(name))
        .find(|p| p.is_file())
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let out = Command::new(binary()).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let expected = match head {
        Some(commit) => format!("claribi {} ({commit})\n", env!("CARGO_PKG_VERSION")),
        None => format!("claribi {} (unknown)\n", env!("CARGO_PKG_VERSION")),
    };
    assert_eq!(text, expected);
}

fn stdout(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_restore_brings_the_backup_back_but_never_a_revoked_credential() {
    use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};
    let s = server().sqlite().start();
    let token = s.owner_token();
    let kept = create_key(&s, &token, json!({"name": "kept"}));
    let revoked = create_key(&s, &token, json!({"name": "revoked after the backup"}));
    s.create_user("ana@example.com", "analyst", "ana-password-77");
    let ana = s.login("ana@example.com", "ana-password-77").json();
    let ana_access = ana["access"].as_str().unwrap().to_string();
    let ana_id = ana["user"]["id"].as_i64().unwrap();
    let second = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
    let (second_access, second_refresh) = (
        second["access"].as_str().unwrap().to_string(),
        second["refresh"].as_str().unwrap().to_string(),
    );

    let backup = s.work_dir().join("before.db");
    let out = s.cli(&["backup", "--out", backup.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stdout(&out));

    // After the backup: a key revoked, a session logged out, a user deactivated, a key made.
    let r = s
        .request("DELETE", &format!("/api/auth/api-keys/{}/", revoked["id"]))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 204);
    let r = s
        .post("/api/auth/logout/")
        .bearer(&second_access)
        .json(&json!({"refresh": second_refresh}));
    assert_eq!(r.status, 204);
    let r = s
        .request("PATCH", &format!("/api/v1/users/{ana_id}/"))
        .bearer(&token)
        .json(&json!({"is_active": false}));
    assert_eq!(r.status, 200, "{}", r.body);
    let lost = create_key(&s, &token, json!({"name": "made after the backup"}));

    // Not a database, and not while a server runs on the database.
    let notes = s.work_dir().join("notes.txt");
    std::fs::write(&notes, "some words, not a database").unwrap();
    let out = s.cli(&["restore", "--from", notes.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("not a claribi database"),
        "{}",
        stdout(&out)
    );
    let out = s.cli(&["restore", "--from", backup.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("a server is running"),
        "{}",
        stdout(&out)
    );

    let s = s.stop_and_restart_with(|stopped| {
        let out = stopped.cli(&["restore", "--from", backup.to_str().unwrap()], "");
        assert!(out.status.success(), "{}", stdout(&out));
        let text = stdout(&out);
        assert!(text.contains("re-applied"), "{text}");
        let aside: Vec<_> = std::fs::read_dir(stopped.data_dir())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("claribi.db.before-restore-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
    });

    let verify = |key: &Value| {
        s.get("/api/v1/auth/verify/")
            .bearer(key["key"].as_str().unwrap())
            .send()
            .status
    };
    assert_eq!(verify(&kept), 200, "the backup's key is back");
    assert_eq!(
        verify(&revoked),
        401,
        "a key revoked after the backup is still refused"
    );
    assert_eq!(
        verify(&lost),
        401,
        "a key made after the backup is not in it"
    );
    assert_eq!(
        s.get("/api/auth/me/").bearer(&second_access).send().status,
        401
    );
    let r = s
        .post("/api/auth/token/refresh/")
        .json(&json!({"refresh": second_refresh}));
    assert_eq!(r.status, 401, "a logged-out session stays ended");
    assert_eq!(
        s.get("/api/auth/me/").bearer(&ana_access).send().status,
        401
    );
    assert_eq!(s.login("ana@example.com", "ana-password-77").status, 401);

    let token = s.owner_token();
    let audit = s
        .get("/api/v1/audit-logs/?action=backup.restored")
        .bearer(&token)
        .send()
        .json();
    assert_eq!(audit["count"], 1, "{audit}");
    // The restored audit log holds what was before the backup.
    let created = s
        .get("/api/v1/audit-logs/?action=api_key.created")
        .bearer(&token)
        .send()
        .json();
    assert_eq!(created["count"], 2, "{created}");
}

#[test]
fn scheduled_backups_are_written_pruned_and_restorable() {
    let s = server()
        .sqlite()
        .env("CLARIBI_BACKUP__INTERVAL", "1s")
        .env("CLARIBI_BACKUP__KEEP", "2")
        .start();
    let token = s.owner_token();
    let key = create_key(&s, &token, json!({"name": "in every backup"}));
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.log().matches("scheduled backup written").count() < 4 {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = s.data_dir().join("backups");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        2,
        "only the newest backup.keep are kept: {names:?}"
    );
    use std::os::unix::fs::PermissionsExt;
    for name in &names {
        let mode = std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let newest = dir.join(names.last().unwrap());
    let copy = s.work_dir().join("newest.db");
    std::fs::copy(&newest, &copy).unwrap();
    let s = s.stop_and_restart_with(|stopped| {
        let out = stopped.cli(&["restore", "--from", copy.to_str().unwrap()], "");
        assert!(out.status.success(), "{}", stdout(&out));
    });
    let r = s
        .get("/api/v1/auth/verify/")
        .bearer(key["key"].as_str().unwrap())
        .send();
    assert_eq!(r.status, 200);
}

#[test]
fn a_revocation_made_after_a_restore_survives_a_restore_of_the_database_it_replaced() {
    use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};
    let s = server().sqlite().start();
    let token = s.owner_token();
    let key = create_key(&s, &token, json!({"name": "in both histories"}));
    let first = s.work_dir().join("first.db");
    let out = s.cli(&["backup", "--out", first.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stdout(&out));
    // Changes that move the feed on without a revocation: the replaced database's head ends
    // far past the backup's and the journal's last position.
    for _ in 0..15 {
        assert_eq!(s.login(ADMIN_EMAIL, ADMIN_PASSWORD).status, 200);
    }
    let replaced = s.work_dir().join("replaced.db");
    let s = s.stop_and_restart_with(|stopped| {
        let out = stopped.cli(&["restore", "--from", first.to_str().unwrap()], "");
        assert!(out.status.success(), "{}", stdout(&out));
        let aside = std::fs::read_dir(stopped.data_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("claribi.db.before-restore-")
            })
            .expect("the replaced database");
        std::fs::rename(aside.path(), &replaced).unwrap();
    });
    let token = s.owner_token();
    let r = s
        .request("DELETE", &format!("/api/auth/api-keys/{}/", key["id"]))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 204);
    // Back to the history before the first restore, where the key was never revoked.
    let s = s.stop_and_restart_with(|stopped| {
        let out = stopped.cli(&["restore", "--from", replaced.to_str().unwrap()], "");
        assert!(out.status.success(), "{}", stdout(&out));
        assert!(
            stdout(&out).contains("re-applied 1 of 1"),
            "{}",
            stdout(&out)
        );
    });
    let r = s
        .get("/api/v1/auth/verify/")
        .bearer(key["key"].as_str().unwrap())
        .send();
    assert_eq!(
        r.status, 401,
        "the revocation made after the first restore holds"
    );
}

/// Contract 10.1: a session made after the backup and logged out stays ended after a restore,
/// whatever new sessions, keys and links are made then; no id is handed out twice.
#[test]
fn a_session_ended_after_the_backup_stays_ended_after_a_restore_and_new_logins() {
    use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};
    let s = server().sqlite().start();
    let token = s.owner_token();
    let backup = s.work_dir().join("before.db");
    let out = s.cli(&["backup", "--out", backup.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stdout(&out));

    let session = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
    let (access, refresh) = (
        session["access"].as_str().unwrap().to_string(),
        session["refresh"].as_str().unwrap().to_string(),
    );
    let sessions = s.get("/api/auth/sessions/").bearer(&access).send().json();
    let ended_id = sessions["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = s
        .post("/api/auth/logout/")
        .bearer(&access)
        .json(&json!({"refresh": refresh}));
    assert_eq!(r.status, 204);
    let refused = s
        .post("/api/auth/token/refresh/")
        .json(&json!({"refresh": refresh}));
    assert_eq!(refused.status, 401);
    let gone_key = create_key(
        &s,
        &token,
        json!({"name": "made and revoked after the backup"}),
    );
    let r = s
        .request("DELETE", &format!("/api/auth/api-keys/{}/", gone_key["id"]))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 204);

    let s = s.stop_and_restart_with(|stopped| {
        let out = stopped.cli(&["restore", "--from", backup.to_str().unwrap()], "");
        assert!(out.status.success(), "{}", stdout(&out));
    });
    let mut new_ids = Vec::new();
    let mut token = String::new();
    for _ in 0..5 {
        let fresh = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
        token = fresh["access"].as_str().unwrap().to_string();
        let listed = s.get("/api/auth/sessions/").bearer(&token).send().json();
        let id = listed["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["current"] == true)
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        new_ids.push(id);
    }
    assert!(
        !new_ids.contains(&ended_id),
        "session id {ended_id} was handed out again: {new_ids:?}"
    );
    let r = s
        .post("/api/auth/token/refresh/")
        .json(&json!({"refresh": refresh}));
    assert_eq!(r.status, 401, "the logged-out refresh token: {}", r.body);
    assert_eq!(
        s.get("/api/auth/me/").bearer(&access).send().status,
        401,
        "the logged-out access token"
    );
    for _ in 0..3 {
        let key = create_key(&s, &token, json!({"name": "after the restore"}));
        assert_ne!(key["id"], gone_key["id"], "a key id was handed out twice");
    }
}

/// Contract 10.1: what was changed after the backup because it leaked or was wrong (a
/// password, an MFA enrolment, a role, a public link) stays changed after a restore.
#[test]
fn passwords_mfa_resets_demotions_and_revoked_links_made_after_the_backup_hold_after_a_restore() {
    let s = server().sqlite().start();
    let token = s.owner_token();
    s.demo_seed(1);
    s.create_user("ana@example.com", "analyst", "ana-password-77");
    s.create_user("bob@example.com", "administrator", "bob-password-77");
    s.create_user("cy@example.com", "member", "cy-password-777");
    // Cy has MFA before the backup.
    let cy = s.token("cy@example.com", "cy-password-777");
    crate::sessions::enable_mfa(&s, &cy);
    let report = s.get("/api/v1/reports/").bearer(&token).send().json()["results"][0]["id"]
        .as_i64()
        .unwrap();
    let link = s
        .post(&format!("/api/v1/reports/{report}/public-link/"))
        .bearer(&token)
        .send();
    assert_eq!(link.status, 201, "{}", link.body);
    let link_token = link.json()["token"].as_str().unwrap().to_string();
    let ids: std::collections::HashMap<String, i64> =
        s.get("/api/v1/users/").bearer(&token).send().json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["email"].as_str().unwrap().to_string(),
                    u["id"].as_i64().unwrap(),
                )
            })
            .collect();
    let backup = s.work_dir().join("before.db");
    let out = s.cli(&["backup", "--out", backup.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stdout(&out));

    // After the backup: Ana's password leaked and she changed it; Cy's MFA device was lost and
    // an administrator reset it; Bob was demoted; the link was revoked.
    let ana = s.token("ana@example.com", "ana-password-77");
    let r = s
        .post("/api/auth/password/")
        .bearer(&ana)
        .json(&json!({"current_password": "ana-password-77", "new_password": "ana-new-secret-88"}));
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s
        .post(&format!(
            "/api/v1/users/{}/reset-mfa/",
            ids["cy@example.com"]
        ))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 204, "{}", r.body);
    // A demotion, a promotion back and a demotion again: the last one holds.
    for role in ["viewer", "analyst", "viewer"] {
        let r = s
            .request(
                "PATCH",
                &format!("/api/v1/users/{}/", ids["bob@example.com"]),
            )
            .bearer(&token)
            .json(&json!({"role": role}));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = s
        .request("DELETE", &format!("/api/v1/reports/{report}/public-link/"))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 204);
    assert_eq!(
        s.get(&format!("/public/reports/{link_token}/"))
            .send()
            .status,
        404
    );

    let s = s.stop_and_restart_with(|stopped| {
        let out = stopped.cli(&["restore", "--from", backup.to_str().unwrap()], "");
        assert!(out.status.success(), "{}", stdout(&out));
    });
    assert_eq!(
        s.login("ana@example.com", "ana-password-77").status,
        401,
        "the leaked password stays changed"
    );
    assert_eq!(s.login("ana@example.com", "ana-new-secret-88").status, 200);
    let cy = s.login("cy@example.com", "cy-password-777");
    assert_eq!(cy.status, 200, "the MFA reset holds: {}", cy.body);
    assert_eq!(cy.json()["user"]["mfa_enabled"], false);
    let bob = s.login("bob@example.com", "bob-password-77").json();
    assert_eq!(bob["user"]["role"], "viewer", "the demotion holds");
    assert_eq!(
        s.get(&format!("/public/reports/{link_token}/"))
            .send()
            .status,
        404,
        "the revoked link stays revoked"
    );
}

/// Contract 10.3 with 10.1's restore: a passkey removed, or an authenticator app turned off,
/// after the backup does not come back with it (the journal re-applies both); the passkey
/// kept still signs in.
#[test]
fn a_passkey_removed_or_totp_turned_off_after_the_backup_stays_so_after_a_restore() {
    const ORIGIN: &str = "https://bi.example.com";
    let s = server()
        .sqlite()
        .env("CLARIBI_SERVER__PUBLIC_URL", ORIGIN)
        .start();
    s.create_user("ana@example.com", "analyst", "ana-password-77");
    let ana = s.token("ana@example.com", "ana-password-77");
    let (secret, _) = crate::sessions::enable_mfa(&s, &ana);
    let mut device = crate::authenticator::Authenticator::new(ORIGIN);
    let mut ids = Vec::new();
    for name in ["lost key", "kept key"] {
        let begun = s
            .post("/api/auth/mfa/webauthn/register/begin/")
            .bearer(&ana)
            .send()
            .json();
        let credential = device.create(&begun["publicKey"]);
        let made = s
            .post("/api/auth/mfa/webauthn/register/finish/")
            .bearer(&ana)
            .json(&json!({"challenge_id": begun["challenge_id"], "name": name,
                          "credential": credential}));
        assert_eq!(made.status, 201, "{}", made.body);
        ids.push(made.json()["id"].as_i64().unwrap());
    }
    let backup = s.work_dir().join("before.db");
    let out = s.cli(&["backup", "--out", backup.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stdout(&out));

    // After the backup: the first key was lost and removed; the authenticator app turned off.
    let r = s
        .request("DELETE", &format!("/api/auth/mfa/webauthn/{}/", ids[0]))
        .bearer(&ana)
        .json(&json!({"password": "ana-password-77"}));
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s.post("/api/auth/mfa/totp/disable/").bearer(&ana).json(
        &json!({"password": "ana-password-77", "code": crate::sessions::totp_at(&secret, 1)}),
    );
    assert_eq!(r.status, 204, "{}", r.body);

    let s = s.stop_and_restart_with(|stopped| {
        let out = stopped.cli(&["restore", "--from", backup.to_str().unwrap()], "");
        assert!(out.status.success(), "{}", stdout(&out));
    });
    let asked = s.login("ana@example.com", "ana-password-77");
    assert_eq!(asked.error_code(), "mfa_required", "{}", asked.body);
    let asked = asked.json();
    assert!(
        !asked["methods"]
            .as_array()
            .unwrap()
            .contains(&json!("totp")),
        "the app stays off: {asked}"
    );
    let allowed = asked["webauthn"]["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(allowed.len(), 1, "only the kept key: {asked}");
    let r = s.post("/api/auth/login/").json(&json!({
        "email": "ana@example.com", "password": "ana-password-77",
        "webauthn": {"challenge_id": asked["webauthn"]["challenge_id"],
                     "credential": device.get(&asked["webauthn"]["publicKey"], 1)}}));
    assert_eq!(r.status, 200, "the kept key signs in: {}", r.body);
}
