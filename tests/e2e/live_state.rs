//! One truth for the live state (contract 9.1): changes from the shell and from another server
//! are in force on the next request, writes re-check their credential, one rotation per key,
//! logins cannot outrun a revocation, counters survive every change.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api_keys::{create_key, verify};
use crate::sessions::enable_mfa;
use crate::support::{server, within_one_rate_window, Server, ADMIN_EMAIL, ADMIN_PASSWORD};

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn me(s: &Server, token: &str) -> crate::support::Resp {
    s.get("/api/auth/me/").bearer(token).send()
}

#[test]
fn shell_changes_are_in_force_on_the_first_request_after_the_command() {
    let s = Server::start();
    let owner = s.owner_token();
    s.create_user("ana@example.com", "analyst", "analyst-password-3");
    let ana = s.login("ana@example.com", "analyst-password-3").json()["access"]
        .as_str()
        .unwrap()
        .to_string();

    // set-password: the old session is refused at once.
    ok(&s.cli(
        &["user", "set-password", "--email", "ana@example.com"],
        "analyst-password-4\n",
    ));
    assert_eq!(me(&s, &ana).status, 401);

    // reset-mfa: the user's state changes at once.
    let ana = s.login("ana@example.com", "analyst-password-4").json()["access"]
        .as_str()
        .unwrap()
        .to_string();
    enable_mfa(&s, &ana);
    assert_eq!(me(&s, &ana).json()["mfa_enabled"], true);
    ok(&s.cli(&["user", "reset-mfa", "--email", "ana@example.com"], ""));
    assert_eq!(me(&s, &ana).json()["mfa_enabled"], false);

    // api-key revoke.
    let key = create_key(&s, &ana, json!({"name": "etl"}));
    let key_text = key["key"].as_str().unwrap();
    assert_eq!(verify(&s, key_text).status, 200);
    ok(&s.cli(
        &[
            "api-key",
            "revoke",
            "--prefix",
            key["prefix"].as_str().unwrap(),
        ],
        "",
    ));
    assert_eq!(verify(&s, key_text).error_code(), "api_key_revoked");

    // deactivate: sessions and keys, at once; activate lets the password work again.
    let other = create_key(&s, &ana, json!({"name": "second"}));
    let other_text = other["key"].as_str().unwrap();
    assert_eq!(verify(&s, other_text).status, 200);
    ok(&s.cli(&["user", "deactivate", "--email", "ana@example.com"], ""));
    assert_eq!(me(&s, &ana).status, 401);
    assert_eq!(verify(&s, other_text).status, 401);
    assert_eq!(s.login("ana@example.com", "analyst-password-4").status, 401);
    ok(&s.cli(&["user", "activate", "--email", "ana@example.com"], ""));
    assert_eq!(s.login("ana@example.com", "analyst-password-4").status, 200);
    assert_eq!(
        verify(&s, other_text).status,
        401,
        "revoked keys stay revoked"
    );

    // Each of them is audited, with the shell as its origin.
    let log = s
        .get("/api/v1/audit-logs/?page_size=100")
        .bearer(&owner)
        .send()
        .json();
    let cli_actions: Vec<&str> = log["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["via"] == "cli")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "user.created",
        "password.changed",
        "mfa.reset",
        "api_key.revoked",
        "user.deactivated",
        "user.activated",
    ] {
        assert!(
            cli_actions.contains(&action),
            "{action} missing: {cli_actions:?}"
        );
    }
}

#[test]
fn no_request_sent_after_a_revoke_or_logout_answer_succeeds_while_the_shell_changes_things() {
    let s = server()
        .env("CLARIBI_RATE_LIMITS__GENERAL_PER_HOUR", "1000000")
        .env("CLARIBI_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("CLARIBI_AUTH__ARGON2_ITERATIONS", "1")
        .start();
    let owner = s.owner_token();
    let deadline = Instant::now() + Duration::from_secs(150);
    let stop = Arc::new(AtomicBool::new(false));
    let revocations = Arc::new(AtomicUsize::new(0));
    let violations = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));

    std::thread::scope(|scope| {
        // The shell: users created and their passwords set, in a loop.
        let shell = scope.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                n += 1;
                let email = format!("loop{n}@example.com");
                let out = s.cli(
                    &[
                        "user",
                        "create",
                        "--org",
                        "Default Organization",
                        "--email",
                        &email,
                        "--role",
                        "viewer",
                    ],
                    "loop-password-1\n",
                );
                ok(&out);
                ok(&s.cli(
                    &["user", "set-password", "--email", &email],
                    "loop-password-2\n",
                ));
            }
            n
        });
        // Key clients: create, use, revoke, use again.
        for _ in 0..3 {
            scope.spawn(|| {
                while revocations.load(Ordering::Relaxed) < 520 && Instant::now() < deadline {
                    let key = create_key(&s, &owner, json!({"name": "churn"}));
                    let text = key["key"].as_str().unwrap();
                    assert_eq!(verify(&s, text).status, 200);
                    let revoke = s
                        .request("DELETE", &format!("/api/auth/api-keys/{}/", key["id"]))
                        .bearer(&owner)
                        .send();
                    assert_eq!(revoke.status, 204);
                    let after = verify(&s, text);
                    if after.status != 401 {
                        violations
                            .lock()
                            .unwrap()
                            .push(format!("key {} answered {}", key["id"], after.status));
                    }
                    revocations.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // A session client: log in, use, log out, use again.
        scope.spawn(|| {
            while revocations.load(Ordering::Relaxed) < 520 && Instant::now() < deadline {
                let login = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
                let access = login["access"].as_str().unwrap().to_string();
                assert_eq!(me(&s, &access).status, 200);
                let out = s
                    .post("/api/auth/logout/")
                    .bearer(&access)
                    .json(&json!({"refresh": login["refresh"]}));
                assert_eq!(out.status, 204);
                let after = me(&s, &access);
                if after.status != 401 {
                    violations
                        .lock()
                        .unwrap()
                        .push(format!("session answered {}", after.status));
                }
                revocations.fetch_add(1, Ordering::Relaxed);
            }
        });
        while revocations.load(Ordering::Relaxed) < 520 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        let commands = shell.join().unwrap();
        assert!(commands >= 3, "the shell ran only {commands} rounds");
    });
    let done = revocations.load(Ordering::Relaxed);
    assert!(done >= 500, "only {done} revocations and logouts in time");
    assert_eq!(*violations.lock().unwrap(), Vec::<String>::new());
}

#[test]
fn rate_limit_counters_continue_across_shell_commands() {
    within_one_rate_window(|| {
        let s = server()
            .env("CLARIBI_RATE_LIMITS__GENERAL_PER_HOUR", "12")
            .start();
        let owner = s.owner_token();
        let key = create_key(&s, &owner, json!({"name": "counted"}));
        let text = key["key"].as_str().unwrap();
        let mut remaining = Vec::new();
        for i in 0..12 {
            let r = verify(&s, text);
            assert_eq!(r.status, 200, "request {i}");
            remaining.push(
                r.header("x-ratelimit-remaining")
                    .unwrap()
                    .parse::<u32>()
                    .unwrap(),
            );
            if i % 4 == 1 {
                // Shell commands that change the live state in between.
                s.create_user(&format!("rl{i}@example.com"), "viewer", "viewer-password-1");
                ok(&s.cli(
                    &[
                        "user",
                        "set-password",
                        "--email",
                        &format!("rl{i}@example.com"),
                    ],
                    "viewer-password-2\n",
                ));
            }
        }
        assert_eq!(remaining, (0..12).rev().collect::<Vec<u32>>());
        let over = verify(&s, text);
        assert_eq!(over.status, 429);
        assert!(over.header("retry-after").is_some());
    });
}

#[test]
fn a_write_whose_body_arrives_after_its_key_was_revoked_changes_nothing() {
    let s = Server::start();
    let owner = s.owner_token();
    let key = create_key(&s, &owner, json!({"name": "slow writer"}));
    let body = br#"{"name":"late dashboard"}"#;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /api/v1/dashboards/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        key["key"].as_str().unwrap(),
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    // The headers are in: the request is authenticated and waits for its body.
    std::thread::sleep(Duration::from_millis(300));
    let revoke = s
        .request("DELETE", &format!("/api/auth/api-keys/{}/", key["id"]))
        .bearer(&owner)
        .send();
    assert_eq!(revoke.status, 204);
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("api_key_revoked"), "{answer}");
    let list = s.get("/api/v1/dashboards/").bearer(&owner).send().json();
    assert_eq!(list["count"], 0, "{list}");
}

#[test]
fn of_ten_concurrent_rotations_of_one_key_exactly_one_succeeds() {
    let s = Server::start();
    let owner = s.owner_token();
    let key = create_key(
        &s,
        &owner,
        json!({"name": "rotated", "scopes": ["reports:read"]}),
    );
    let barrier = Barrier::new(10);
    let statuses: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let r = s
                        .post(&format!("/api/auth/api-keys/{}/rotate/", key["id"]))
                        .bearer(&owner)
                        .send();
                    let body = if r.status == 201 {
                        r.json()
                    } else {
                        Value::Null
                    };
                    (r.status, body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut codes: Vec<u16> = statuses.iter().map(|(c, _)| *c).collect();
    codes.sort_unstable();
    assert_eq!(codes, [201, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    let successor = &statuses.iter().find(|(c, _)| *c == 201).unwrap().1;
    assert_eq!(verify(&s, successor["key"].as_str().unwrap()).status, 200);
    assert_eq!(verify(&s, key["key"].as_str().unwrap()).status, 401);
    let keys = s.get("/api/auth/api-keys/").bearer(&owner).send().json();
    let active: Vec<&Value> = keys["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["status"] == "active")
        .collect();
    assert_eq!(active.len(), 1, "{keys}");
    assert_eq!(active[0]["id"], successor["id"]);
    assert_eq!(keys["count"], 2, "no stray successors: {keys}");
}

#[test]
fn a_login_raced_against_a_password_change_never_leaves_a_session_from_before() {
    let s = server()
        .env("CLARIBI_AUTH__MAX_FAILED_LOGINS", "1000")
        .env("CLARIBI_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("CLARIBI_AUTH__ARGON2_ITERATIONS", "1")
        .start();
    s.create_user("race@example.com", "analyst", "race-password-0");
    let mut password = "race-password-0".to_string();
    let mut changer = s.login("race@example.com", &password).json()["access"]
        .as_str()
        .unwrap()
        .to_string();
    let mut raced_logins = 0;
    for round in 1..=25 {
        let next = format!("race-password-{round}");
        let (login, change) = std::thread::scope(|scope| {
            let login = scope.spawn(|| {
                std::thread::sleep(Duration::from_micros(round * 400));
                s.login("race@example.com", &password)
            });
            let change = s
                .post("/api/auth/password/")
                .bearer(&changer)
                .json(&json!({"current_password": password, "new_password": next}));
            (login.join().unwrap(), change)
        });
        assert_eq!(change.status, 204, "{}", change.body);
        if login.status == 200 {
            raced_logins += 1;
            let token = login.json()["access"].as_str().unwrap().to_string();
            assert_eq!(
                me(&s, &token).status,
                401,
                "round {round}: a session opened with the old password survived the change"
            );
        } else {
            assert_eq!(login.status, 401, "{}", login.body);
        }
        password = next;
        // The changer's own session survives its change; a fresh one for the next round.
        changer = s.login("race@example.com", &password).json()["access"]
            .as_str()
            .unwrap()
            .to_string();
    }
    assert!(
        raced_logins > 0,
        "no login ever got through: the race was not run"
    );
}

#[test]
fn two_servers_on_one_database_keep_every_promise_between_them() {
    let a = Server::start();
    let b = a.beside();
    let owner = a.owner_token();

    // A key made on A works on B at once, and a revoke answered by A holds on B.
    for _ in 0..20 {
        let key = create_key(&a, &owner, json!({"name": "shared"}));
        let text = key["key"].as_str().unwrap();
        assert_eq!(verify(&b, text).status, 200);
        let revoke = a
            .request("DELETE", &format!("/api/auth/api-keys/{}/", key["id"]))
            .bearer(&owner)
            .send();
        assert_eq!(revoke.status, 204);
        assert_eq!(verify(&b, text).error_code(), "api_key_revoked");
    }

    // A session opened on A works on B; a logout on A holds on B.
    let login = a.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
    let access = login["access"].as_str().unwrap();
    assert_eq!(me(&b, access).status, 200);
    let out = a
        .post("/api/auth/logout/")
        .bearer(access)
        .json(&json!({"refresh": login["refresh"]}));
    assert_eq!(out.status, 204);
    assert_eq!(me(&b, access).status, 401);

    // A demotion through A holds on B.
    let created = a.post("/api/v1/users/").bearer(&owner).json(&json!({
        "email": "dana@example.com", "password": "analyst-password-8", "role": "analyst"
    }));
    assert_eq!(created.status, 201, "{}", created.body);
    let dana = b.login("dana@example.com", "analyst-password-8").json()["access"]
        .as_str()
        .unwrap()
        .to_string();
    let create_dashboard = |s: &Server| {
        s.post("/api/v1/dashboards/")
            .bearer(&dana)
            .json(&json!({"name": "mine"}))
            .status
    };
    assert_eq!(create_dashboard(&b), 201);
    let demote = a
        .request("PATCH", &format!("/api/v1/users/{}/", created.json()["id"]))
        .bearer(&owner)
        .json(&json!({"role": "viewer"}));
    assert_eq!(demote.status, 200);
    assert_eq!(me(&b, &dana).json()["role"], "viewer");
    assert_eq!(create_dashboard(&b), 403);
}

#[test]
fn a_shell_change_that_a_stopped_server_cannot_confirm_exits_1_naming_it() {
    let s = Server::start();
    s.create_user("stuck@example.com", "viewer", "viewer-password-1");
    // Stopped mid-write (the login's session, the user's change applied), the server would
    // hold SQLite's write lock and the command would fail on that instead: let it settle.
    std::thread::sleep(Duration::from_millis(500));
    s.signal("STOP");
    let started = Instant::now();
    let out = s.cli_with(
        &[("CLARIBI_SERVER__APPLY_TIMEOUT", "2s")],
        &["user", "set-password", "--email", "stuck@example.com"],
        "viewer-password-2\n",
    );
    let took = started.elapsed();
    s.signal("CONT");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("pid {}", s.pid())),
        "does not name the server: {stderr}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "took {took:?}"
    );
    // The change stayed committed: the new password works once the server is back.
    assert_eq!(
        s.login("stuck@example.com", "viewer-password-2").status,
        200
    );
    assert_eq!(
        s.login("stuck@example.com", "viewer-password-1").status,
        401
    );
}

/// Contract 10.4 from the shell: a service account made and given a key by `claribi
/// service-account`, whose key acts as it on the running server, across a restart, until the
/// shell deactivates it; `policy show` lists what breaks the policy and exits 1.
#[test]
fn service_accounts_and_the_policy_from_the_shell() {
    let s = Server::start();
    const ORG: &str = "Default Organization";
    ok(&s.cli(
        &[
            "service-account",
            "create",
            "--org",
            ORG,
            "--name",
            "nightly etl",
            "--role",
            "analyst",
            "--description",
            "loads the warehouse",
        ],
        "",
    ));
    let refused = s.cli(
        &[
            "service-account",
            "create",
            "--org",
            ORG,
            "--name",
            "x",
            "--role",
            "owner",
        ],
        "",
    );
    assert_eq!(refused.status.code(), Some(2));
    let made = s.cli(
        &[
            "service-account",
            "create-key",
            "--org",
            ORG,
            "--name",
            "NIGHTLY ETL",
            "--key-name",
            "etl",
            "--scope",
            "reports:read",
            "--scope",
            "dashboards:read",
        ],
        "",
    );
    ok(&made);
    let key = String::from_utf8(made.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("claribi_key_"), "{key:?}");
    let who = verify(&s, &key);
    assert_eq!(who.status, 200, "{}", who.body);
    assert_eq!(who.json()["service_account"]["name"], "nightly etl");
    assert_eq!(who.json()["user"], Value::Null);
    assert_eq!(
        who.json()["permissions"],
        json!(["dashboards:read", "reports:read"])
    );
    let listed = s.cli(&["service-account", "list", "--org", ORG], "");
    ok(&listed);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("analyst") && listed.contains("nightly etl"),
        "{listed}"
    );

    // The key is the service account's across a restart. A clean stop: after a kill, the dead
    // server's row stands for a lease (5 s), and a shell change within it waits for that
    // server as long as the command's own timeout (5 s) and may give up first, as it should.
    let s = s.stop_and_restart_with(|_| {});
    assert_eq!(verify(&s, &key).status, 200);

    // The policy: the never-expiring key breaks it once set, and `policy show` says so.
    let owner = s.owner_token();
    ok(&s.cli(&["policy", "show", "--org", ORG], ""));
    let r = s
        .request("PATCH", "/api/v1/organization/security-policy/")
        .bearer(&owner)
        .json(&json!({"key_max_lifetime_days": 90}));
    assert_eq!(r.status, 200, "{}", r.body);
    let shown = s.cli(&["policy", "show", "--org", ORG], "");
    assert_eq!(shown.status.code(), Some(1));
    let text = String::from_utf8(shown.stdout).unwrap();
    assert!(
        text.contains("key_max_lifetime_days                  90")
            && text.contains("of service account \"nightly etl\": key_max_lifetime_days"),
        "{text}"
    );
    let refused = s.cli(
        &[
            "service-account",
            "create-key",
            "--org",
            ORG,
            "--name",
            "nightly etl",
            "--key-name",
            "forever",
        ],
        "",
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("policy"));

    ok(&s.cli(
        &[
            "service-account",
            "deactivate",
            "--org",
            ORG,
            "--name",
            "nightly etl",
        ],
        "",
    ));
    assert_eq!(verify(&s, &key).error_code(), "api_key_revoked");
    let log = s
        .get("/api/v1/audit-logs/?search=service_account")
        .bearer(&owner)
        .send()
        .json();
    let actions: Vec<&str> = log["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"service_account.created")
            && actions.contains(&"service_account.updated"),
        "{actions:?}"
    );
}
