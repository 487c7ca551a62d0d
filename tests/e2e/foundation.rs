//! The binary, its configuration, storage, error model and CLI (issue: foundation).

use std::time::Duration;

use crate::support::{raw_http, server, Server, ADMIN_EMAIL, ADMIN_PASSWORD};

#[test]
fn first_start_creates_the_database_and_an_owner_with_a_private_password_file() {
    let s = server().sqlite().without_bootstrap().start();
    let db = s.data_dir().join("claribi.db");
    assert!(db.is_file());
    let password_file = s.data_dir().join("initial-admin-password");
    let password = std::fs::read_to_string(&password_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&password_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let secret = std::fs::metadata(s.data_dir().join("jwt-secret")).unwrap();
        assert_eq!(secret.permissions().mode() & 0o777, 0o600);
    }
    assert!(s.log().contains("initial-admin-password"));
    assert!(
        !s.log().contains(password.trim()),
        "the log never shows the password"
    );
    let login = s.login("admin@localhost", password.trim());
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.json()["user"]["role"], "owner");
    assert_eq!(login.json()["user"]["organization"], "Default Organization");
    // Generated, so temporary (contract 10.6): the owner chooses their own first.
    assert_eq!(login.json()["password_change_required"], true);
}

#[test]
fn the_bootstrap_variables_name_the_first_owner() {
    let s = Server::start();
    assert!(!s.data_dir().join("initial-admin-password").exists());
    let login = s.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    assert_eq!(login.status, 200, "{}", login.body);
}

#[test]
fn an_oversized_chunked_body_is_413_and_huge_headers_are_431() {
    let s = Server::start();
    let mut request = b"POST /api/auth/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..80 {
        request.extend_from_slice(b"400\r\n");
        request.extend_from_slice(&[b' '; 0x400]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw_http(&s.base, &request), 413);

    let mut huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..200 {
        huge.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(4000)).as_bytes());
    }
    huge.extend_from_slice(b"\r\n");
    assert_eq!(raw_http(&s.base, &huge), 431);
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let s = Server::start();
    assert_eq!(s.get("/healthz").send().status, 200);
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_access_log_has_a_line_per_request_and_no_credentials() {
    let s = Server::start();
    let token = s.owner_token();
    s.get("/api/auth/me/").bearer(&token).send();
    std::thread::sleep(Duration::from_millis(200));
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("claribi::access") && l.contains("auth/me"))
        .expect("access log line");
    for part in ["method=GET", "status=200", "latency_us=", "request_id="] {
        assert!(line.contains(part), "{line}");
    }
    assert!(!log.contains(&token), "a token reached the log");
    assert!(!log.contains(ADMIN_PASSWORD), "a password reached the log");
}

/// (thread name, Linux scheduling policy: 0 normal, 3 batch, 5 idle) of each thread.
fn thread_policies(pid: u32) -> Vec<(String, u32)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap();
        let (name, rest) = stat.split_once(" (").unwrap().1.rsplit_once(") ").unwrap();
        let policy = rest.split(' ').nth(38).unwrap().parse().unwrap();
        threads.push((name.to_string(), policy));
    }
    threads
}

#[cfg(target_os = "linux")]
#[test]
fn server_threads_run_batch_and_password_hashing_idle() {
    let s = Server::start();
    let threads = thread_policies(s.pid());
    let hashers: Vec<_> = threads
        .iter()
        .filter(|(n, _)| n.starts_with("argon2"))
        .collect();
    assert!(!hashers.is_empty(), "{threads:?}");
    assert!(hashers.iter().all(|(_, p)| *p == 5), "{threads:?}");
    let others: Vec<_> = threads
        .iter()
        .filter(|(n, _)| !n.starts_with("argon2"))
        .collect();
    assert!(
        others.iter().any(|(n, _)| n.starts_with("tokio")),
        "{threads:?}"
    );
    assert!(others.iter().all(|(_, p)| *p == 3), "{threads:?}");

    let normal = server().env("CLARIBI_SERVER__SCHEDULING", "normal").start();
    let threads = thread_policies(normal.pid());
    assert!(
        threads
            .iter()
            .all(|(n, p)| *p == if n.starts_with("argon2") { 5 } else { 0 }),
        "{threads:?}"
    );
}

fn cli_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(crate::support::binary());
    command.args(args).current_dir(dir);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run claribi")
}

#[test]
fn a_bad_configuration_stops_before_binding_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli_in(
        dir.path(),
        &["serve"],
        &[("CLARIBI_AUTH__ACCESS_TTL", "soon")],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("auth.access_ttl"), "{stderr}");

    std::fs::write(dir.path().join("claribi.toml"), "[server]\nbindd = \"x\"\n").unwrap();
    let out = cli_in(dir.path(), &["check-config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.bindd"));

    let out = cli_in(
        dir.path(),
        &["serve", "--config", "/nonexistent/claribi.toml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[test]
fn check_config_prints_effective_values_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.toml"),
        "[auth]\naccess_ttl = \"15m\"\n",
    )
    .unwrap();
    let out = cli_in(
        dir.path(),
        &["check-config", "--config", "mine.toml"],
        &[
            ("CLARIBI_BOOTSTRAP__ADMIN_EMAIL", "a@example.com"),
            ("CLARIBI_BOOTSTRAP__ADMIN_PASSWORD", "s3cret-bootstrap-pw"),
            ("CLARIBI_SERVER__BIND", "127.0.0.1:9000"),
            ("CLARIBI_NOT__A_KEY", "1"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("access_ttl = \"15m\""), "{stdout}");
    assert!(stdout.contains("bind = \"127.0.0.1:9000\""), "{stdout}");
    assert!(!stdout.contains("s3cret-bootstrap-pw"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLARIBI_NOT__A_KEY"));
}

#[test]
fn cli_creates_organizations_and_users_and_backs_up_while_running() {
    let s = server().sqlite().start();
    let out = s.cli(
        &[
            "org",
            "create",
            "--name",
            "Globex",
            "--owner-email",
            "hank@globex.test",
        ],
        "globex-owner-pw-9\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dup = s.cli(
        &[
            "user",
            "create",
            "--org",
            "Globex",
            "--email",
            "HANK@globex.test",
            "--role",
            "viewer",
        ],
        "another-password-1\n",
    );
    assert_eq!(dup.status.code(), Some(2), "duplicate email");
    let weak = s.cli(
        &[
            "user",
            "create",
            "--org",
            "Globex",
            "--email",
            "w@globex.test",
            "--role",
            "viewer",
        ],
        "password\n",
    );
    assert!(!weak.status.success(), "a common password is refused");
    let owner = s.cli(
        &[
            "user",
            "create",
            "--org",
            "Globex",
            "--email",
            "o@globex.test",
            "--role",
            "owner",
        ],
        "another-password-1\n",
    );
    assert!(!owner.status.success(), "a second owner is refused");

    let backup = s.work_dir().join("backup.db");
    let out = s.cli(&["backup", "--out", backup.to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = rusqlite::Connection::open(&backup).unwrap();
    let users: i64 = conn
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 2);
    let again = s.cli(&["backup", "--out", backup.to_str().unwrap()], "");
    assert_eq!(
        again.status.code(),
        Some(2),
        "an existing file is not overwritten"
    );
}

#[test]
fn help_is_clear_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["user", "set-password", "--help"],
        &["org", "create", "--help"],
        &["backup", "--help"],
    ] {
        let out = cli_in(dir.path(), args, &[]);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

/// `claribi demo history` writes a stopped installation's long past, which the next start
/// lists with exact totals; refused while the server runs, and on PostgreSQL.
#[test]
fn demo_history_fills_a_stopped_installation_and_the_lists_count_it() {
    let s = server().sqlite().start();
    let args = [
        "demo",
        "history",
        "--org",
        "Default Organization",
        "--audit-entries",
        "250",
        "--keys",
        "30",
        "--revoked-keys",
        "12",
        "--reports",
        "40",
        "--sessions",
        "5",
    ];
    let running = s.cli(&args, "");
    assert_eq!(running.status.code(), Some(1), "{running:?}");
    assert!(String::from_utf8_lossy(&running.stderr).contains("stop it first"));
    let s = s.stop_and_restart_with(|s| {
        let out = s.cli(&args, "");
        assert!(out.status.success(), "{out:?}");
        let on_postgres = s.cli_with(
            &[(
                "CLARIBI_DATABASE__URL",
                "postgres://nobody@127.0.0.1:1/none",
            )],
            &args,
            "",
        );
        assert_eq!(on_postgres.status.code(), Some(2), "{on_postgres:?}");
    });
    let t = s.owner_token();
    let count = |path: &str| {
        s.get(path).bearer(&t).send().json()["count"]
            .as_u64()
            .unwrap()
    };
    assert!(count("/api/v1/audit-logs/") >= 250);
    assert_eq!(count("/api/v1/audit-logs/?action=login.failed"), 25);
    assert_eq!(count("/api/auth/api-keys/?all=true"), 30);
    assert_eq!(count("/api/auth/api-keys/?all=true&status=revoked"), 12);
    assert_eq!(count("/api/auth/api-keys/?all=true&status=active"), 18);
    assert_eq!(count("/api/v1/reports/"), 40);
    let sessions = s.get("/api/auth/sessions/").bearer(&t).send();
    assert_eq!(sessions.status, 200, "{}", sessions.body);
    assert_eq!(
        sessions.body.matches("claribi-history/1").count(),
        5,
        "the sessions written are live: {}",
        sessions.body
    );
    let verified = s.cli(&["audit", "verify"], "");
    assert!(verified.status.success(), "the chain holds: {verified:?}");
}

/// `claribi demo seed` into a running server's organization, and a missing one named.
#[test]
fn demo_seed_fills_an_organization() {
    let s = Server::start();
    let t = s.owner_token();
    s.demo_seed(45);
    let reports = s
        .get("/api/v1/reports/?page_size=100")
        .bearer(&t)
        .send()
        .json();
    assert_eq!(reports["count"], 45);
    assert_eq!(reports["results"].as_array().unwrap().len(), 45);
    assert_eq!(
        s.get("/api/v1/dashboards/").bearer(&t).send().json()["count"],
        2
    );
    assert_eq!(
        s.get("/api/v1/data-sources/").bearer(&t).send().json()["count"],
        3
    );
    assert_eq!(s.get("/api/v1/goals/").bearer(&t).send().json()["count"], 1);
    let missing = s.cli(&["demo", "seed", "--org", "Nope"], "");
    assert_eq!(missing.status.code(), Some(2));
}
