//! Limits and abuse (contract 9.2): bounded throttle state and audit, no privilege through
//! rotation, password re-checks counted, client addresses behind proxies, unique organization
//! names, private files, short TTLs.

use std::time::Duration;

use serde_json::{json, Value};

use crate::api_keys::create_key;
use crate::support::{server, Server, ADMIN_EMAIL, ADMIN_PASSWORD, P};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn audit_rows(s: &Server, action: &str) -> Vec<(Option<i64>, Option<i64>, String)> {
    s.sql()
        .rows(
            "SELECT organization_id, user_id, details FROM audit_log WHERE action = ?1 ORDER BY id",
            &[P::T(action)],
        )
        .into_iter()
        .map(|r| (r[0].opt_int(), r[1].opt_int(), r[2].text()))
        .collect()
}

#[test]
fn twenty_thousand_failed_logins_with_distinct_long_emails_leave_no_lasting_state() {
    let s = server()
        .env("CLARIBI_AUTH__FAILURE_WINDOW", "2s")
        .env("CLARIBI_AUTH__LOCKOUT", "2s")
        .env("CLARIBI_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("CLARIBI_AUTH__ARGON2_ITERATIONS", "1")
        .env("CLARIBI_SERVER__TRUSTED_PROXIES", r#"["127.0.0.1"]"#)
        .start();
    // Warm up: a login or two, so that the pools and caches are in place.
    for _ in 0..3 {
        assert_eq!(s.login(ADMIN_EMAIL, ADMIN_PASSWORD).status, 200);
    }
    let before = rss_kib(s.pid());
    let counts: Vec<(u32, u32)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let s = &s;
                scope.spawn(move || {
                    let agent = ureq::agent();
                    let (mut refused, mut failed) = (0, 0);
                    for n in 0..5000 {
                        let email = format!("{}{t}x{n:05}@example.com", "a".repeat(181));
                        assert_eq!(email.len(), 200);
                        let r = agent
                            .post(&s.url("/api/auth/login/"))
                            .set("X-Forwarded-For", &format!("198.51.100.{}", t + 1))
                            .send_json(json!({"email": email, "password": "wrong-password-1"}));
                        match r {
                            Err(ureq::Error::Status(429, _)) => refused += 1,
                            Err(ureq::Error::Status(401, _)) => failed += 1,
                            other => panic!("unexpected answer {other:?}"),
                        }
                    }
                    (refused, failed)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused: u32 = counts.iter().map(|c| c.0).sum();
    assert!(
        refused > 15_000,
        "the address limit did not hold: {counts:?}"
    );
    // Past the failure window and the lockout, the next login sweeps everything away.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s.login(ADMIN_EMAIL, ADMIN_PASSWORD).status, 200);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(s.pid());
    eprintln!("RSS before the storm {before} KiB, after the window {after} KiB");
    assert!(
        after < before + 6 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // Refusals are audited per address at most once a minute, with their count.
    let throttled = audit_rows(&s, "login.throttled");
    assert!(
        !throttled.is_empty() && throttled.len() <= 8,
        "{} login.throttled rows",
        throttled.len()
    );
    let counted: u64 = throttled
        .iter()
        .map(|(_, _, d)| {
            let v: Value = serde_json::from_str(d).unwrap();
            v["refused"].as_str().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert!(counted >= 4, "{throttled:?}");
}

#[test]
fn a_trusted_proxy_range_names_the_client_on_a_dual_stack_socket() {
    let s = server()
        .env("CLARIBI_SERVER__BIND", "[::]:0")
        .env("CLARIBI_SERVER__TRUSTED_PROXIES", r#"["127.0.0.0/8"]"#)
        .env("CLARIBI_AUTH__MAX_FAILED_LOGINS_PER_ADDRESS", "2")
        .start();
    let port = s.base.rsplit(':').next().unwrap();
    let v4 = format!("http://127.0.0.1:{port}/api/auth/login/");
    let login = |forwarded: &str| match ureq::post(&v4)
        .set("X-Forwarded-For", forwarded)
        .send_json(json!({"email": ADMIN_EMAIL, "password": "wrong-password-2"}))
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    // Two clients behind the proxy, one with a port: each is counted alone.
    assert_eq!(login("203.0.113.9:4444"), 401);
    assert_eq!(login("203.0.113.9:5555"), 401);
    assert_eq!(
        login("203.0.113.9"),
        429,
        "the same client, whatever its port"
    );
    assert_eq!(
        login("198.51.100.20"),
        401,
        "another client is not locked out"
    );
    let ips: Vec<String> = audit_rows(&s, "login.failed")
        .into_iter()
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(ips.len(), 3, "{ips:?}");
    let seen: Vec<String> = s
        .sql()
        .rows(
            "SELECT ip FROM audit_log WHERE action = 'login.failed' ORDER BY id",
            &[],
        )
        .into_iter()
        .map(|r| r[0].text())
        .collect();
    assert_eq!(seen, ["203.0.113.9", "203.0.113.9", "198.51.100.20"]);
}

/// Contract 10.1: behind a trusted proxy the client is the rightmost `X-Forwarded-For` entry
/// that is not a trusted proxy, read from the header's raw bytes; an entry in that place that
/// cannot be read is a `400` naming the header, never the proxy's own address.
#[test]
fn a_forwarded_for_that_cannot_be_read_is_refused_never_taken_for_the_proxy() {
    let s = server()
        .env("CLARIBI_SERVER__TRUSTED_PROXIES", r#"["127.0.0.1"]"#)
        .start();
    let owner = s.owner_token();
    let key = create_key(
        &s,
        &owner,
        json!({"name": "office only", "allowed_ips": ["127.0.0.0/8"]}),
    );
    let (id, secret) = (key["id"].as_i64().unwrap(), key["key"].as_str().unwrap());
    let with_forwarded = |values: &[&[u8]]| {
        let mut request = format!(
            "GET /api/v1/auth/verify/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {secret}\r\n"
        )
        .into_bytes();
        for value in values {
            request.extend_from_slice(b"X-Forwarded-For: ");
            request.extend_from_slice(value);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        crate::support::raw_exchange(&s.base, &request)
    };
    let code = |body: &str| serde_json::from_str::<Value>(body).unwrap()["error"].clone();

    // The proxy itself (no header) is inside the allowlist; a forwarded outsider is not.
    assert_eq!(with_forwarded(&[]).0, 200);
    let (status, body) = with_forwarded(&[b"203.0.113.9"]);
    assert_eq!((status, code(&body)), (403, json!("ip_not_allowed")));
    // Unreadable bytes to the left of the client do not matter: the client is still the outsider.
    let (status, body) = with_forwarded(&[b"\x80, 203.0.113.9"]);
    assert_eq!(
        (status, code(&body)),
        (403, json!("ip_not_allowed")),
        "{body}"
    );
    let (status, body) = with_forwarded(&[b"\xff\xfe", b"203.0.113.9"]);
    assert_eq!(
        (status, code(&body)),
        (403, json!("ip_not_allowed")),
        "{body}"
    );
    // An entry that cannot be read where the client should be: refused, naming the header.
    for bad in [
        &b"203.0.113.9, garbage"[..],
        b"203.0.113.9, \x80",
        b"",
        b"203.0.113.9,",
        b"203.0.113.9, 10.0.0.1 extra",
        b"unknown",
    ] {
        let (status, body) = with_forwarded(&[bad]);
        assert_eq!(status, 400, "{:?}: {body}", String::from_utf8_lossy(bad));
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["error"], "invalid", "{body}");
        assert!(
            answer["errors"]["X-Forwarded-For"].is_array(),
            "the header is named: {body}"
        );
    }
    // The second of two header lines is the rightmost: unreadable there is refused too.
    assert_eq!(with_forwarded(&[b"203.0.113.9", b"bad\x80"]).0, 400);

    // Nothing was ever attributed to the proxy: the key's last client and the audit
    // entries of the refusals name the outsider.
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let denied = loop {
        let rows = s.sql().rows(
            "SELECT ip FROM audit_log WHERE action = 'api_key.ip_denied' ORDER BY id",
            &[],
        );
        if !rows.is_empty() || std::time::Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!denied.is_empty());
    for row in denied {
        assert_eq!(row[0].text(), "203.0.113.9");
    }
    let listed = crate::key_lifecycle::key_when(&s, &owner, id, |k| !k["last_used_ip"].is_null());
    assert_eq!(
        listed["last_used_ip"], "127.0.0.1",
        "only the proxy's own call was admitted"
    );
    let logins = |forwarded: &[u8]| {
        let body = format!(r#"{{"email":"{ADMIN_EMAIL}","password":"wrong-password-1"}}"#);
        let mut request = format!(
            "POST /api/auth/login/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Forwarded-For: ",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(forwarded);
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(body.as_bytes());
        crate::support::raw_exchange(&s.base, &request).0
    };
    assert_eq!(logins(b"198.51.100.7, garbage"), 400);
    assert_eq!(logins(b"garbage, 198.51.100.7"), 401);
    let ips: Vec<String> = s
        .sql()
        .rows(
            "SELECT ip FROM audit_log WHERE action = 'login.failed' ORDER BY id",
            &[],
        )
        .into_iter()
        .map(|r| r[0].text())
        .collect();
    assert_eq!(
        ips,
        ["198.51.100.7"],
        "the throttle and the audit never saw the proxy"
    );
}

#[test]
fn organization_names_are_unique_ignoring_case() {
    let s = Server::start();
    let owner = s.owner_token();
    let made = s.cli(
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
    assert!(made.status.success());
    let again = s.cli(
        &[
            "org",
            "create",
            "--name",
            "GLOBEX",
            "--owner-email",
            "other@globex.test",
        ],
        "globex-owner-pw-9\n",
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let rename = s
        .request("PATCH", "/api/v1/organization/")
        .bearer(&owner)
        .json(&json!({"name": "globex"}));
    assert_eq!(rename.status, 409, "{}", rename.body);
    assert_eq!(rename.error_code(), "conflict");
}

#[cfg(unix)]
#[test]
fn every_file_of_a_data_directory_made_under_umask_022_is_private() {
    use std::os::unix::fs::PermissionsExt;
    // The default umask of a shell; the test binary may have inherited a stricter one.
    unsafe { libc::umask(0o022) };
    let s = server().sqlite().without_bootstrap().start();
    let password = std::fs::read_to_string(s.data_dir().join("initial-admin-password")).unwrap();
    let token = s.login("admin@localhost", password.trim()).json()["access"]
        .as_str()
        .unwrap()
        .to_string();
    // The generated password is temporary: replaced first, as the owner must.
    let changed = s
        .post("/api/auth/password/")
        .bearer(&token)
        .json(&json!({"current_password": password.trim(), "new_password": "granite-otter-66"}));
    assert_eq!(changed.status, 204, "{}", changed.body);
    create_key(&s, &token, json!({"name": "a write"}));
    let backup = s.data_dir().join("copy.db");
    let out = s.cli(&["backup", "--out", backup.to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = Vec::new();
    let mut dirs = vec![s.data_dir()];
    while let Some(dir) = dirs.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
            seen.push(path.file_name().unwrap().to_string_lossy().to_string());
        }
    }
    for name in [
        "claribi.db",
        "claribi.db-wal",
        "claribi.db-shm",
        "jwt-secret",
        "mfa-key",
        "copy.db",
    ] {
        assert!(
            seen.iter().any(|s| s == name),
            "{name} not checked: {seen:?}"
        );
    }
}

#[test]
fn an_access_token_may_live_one_second() {
    let s = server()
        .env("CLARIBI_AUTH__ACCESS_TTL", "1s")
        .env("CLARIBI_AUTH__REFRESH_TTL", "1m")
        .start();
    let token = s.owner_token();
    assert_eq!(s.get("/api/auth/me/").bearer(&token).send().status, 200);
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(s.get("/api/auth/me/").bearer(&token).send().status, 401);
}

/// Opens a connection and sends the start of a request that never ends.
fn half_open(addr: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
        .unwrap();
    stream
}

#[test]
fn eleven_hundred_half_open_connections_do_not_stop_new_clients() {
    use std::io::Read;
    let s = server()
        .open_files(1024)
        .env("CLARIBI_SERVER__HEADER_READ_TIMEOUT", "3s")
        .start();
    let addr = s.base.trim_start_matches("http://").to_string();
    let attackers: Vec<_> = (0..1100).map(|_| half_open(&addr)).collect();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let r = ureq::get(&s.url("/healthz"))
            .timeout(Duration::from_secs(5))
            .call()
            .expect("healthz while 1,100 connections hang");
        assert_eq!(r.status(), 200);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "/healthz took {took:?}");
    }
    // Past the header timeout the server closes them itself.
    let mut stream = attackers.into_iter().next().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(6)))
        .unwrap();
    let mut buf = [0u8; 64];
    let started = std::time::Instant::now();
    let n = stream.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "a half-open request got an answer");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not closed at the header timeout"
    );
    drop(stream);
    std::thread::sleep(Duration::from_millis(300));
    let log = s.log();
    assert!(
        !log.contains("ERROR"),
        "client behaviour logged as errors:\n{log}"
    );
    assert!(!log.contains("accepting a connection failed"), "{log}");
}

#[test]
fn a_body_that_does_not_arrive_in_time_is_a_408_and_idle_connections_are_closed() {
    use std::io::{Read, Write};
    let s = server()
        .env("CLARIBI_SERVER__BODY_READ_TIMEOUT", "1s")
        .env("CLARIBI_SERVER__IDLE_TIMEOUT", "1s")
        .env("CLARIBI_SERVER__HEADER_READ_TIMEOUT", "1s")
        .start();
    let addr = s.base.trim_start_matches("http://").to_string();
    // A connection that never sends a byte is closed at the header timeout.
    let mut silent = std::net::TcpStream::connect(&addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(silent.read(&mut [0u8; 16]).unwrap_or(0), 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(
            b"POST /api/auth/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 40\r\n\r\n{\"email\":",
        )
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = vec![0u8; 1024];
    let n = stream.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A keep-alive connection that asks nothing more is closed after the idle timeout.
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = std::time::Instant::now();
    assert_eq!(stream.read(&mut buf).unwrap_or(0), 0);
    let idle = started.elapsed();
    assert!(
        idle >= Duration::from_millis(800) && idle < Duration::from_secs(3),
        "closed after {idle:?}"
    );
}

#[test]
fn public_reads_take_no_write_lock_and_their_views_are_counted() {
    let s = server().sqlite().start();
    let owner = s.owner_token();
    let source = s
        .post("/api/v1/data-sources/")
        .bearer(&owner)
        .json(&json!({"name": "Warehouse", "source_type": "database"}))
        .json();
    let report = s
        .post("/api/v1/reports/generate/")
        .bearer(&owner)
        .json(&json!({"title": "Shared", "data_source_id": source["id"]}))
        .json();
    let link_path = format!("/api/v1/reports/{}/public-link/", report["id"]);
    let link = s.post(&link_path).bearer(&owner).send().json();
    let token = link["token"].as_str().unwrap();
    // Another process holds the write lock, as a long backup or a stuck writer would.
    let blocker = rusqlite::Connection::open(s.data_dir().join("claribi.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(
            s.get(&format!("/public/reports/{token}/")).send().status,
            200
        );
    }
    assert_eq!(s.get(&format!("/s/{token}")).send().status, 200);
    assert_eq!(s.get("/public/reports/no-such-token/").send().status, 404);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "public reads waited for the write lock: {:?}",
        started.elapsed()
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        s.get(&link_path).bearer(&owner).send().json()["view_count"],
        4
    );
    // Written in the next batch, within a few seconds.
    std::thread::sleep(Duration::from_millis(2500));
    let stored = s
        .sql()
        .one(
            "SELECT view_count FROM public_links WHERE token = ?1",
            &[P::T(token)],
        )
        .int();
    assert_eq!(stored, 4);
}

#[test]
fn the_audit_export_streams_every_entry_in_batches_and_honours_its_filter() {
    let s = Server::start();
    let owner = s.owner_token();
    let org: i64 = s.get("/api/v1/organization/").bearer(&owner).send().json()["id"]
        .as_i64()
        .unwrap();
    {
        let mut db = s.sql();
        db.execute("BEGIN", &[]);
        for n in 0..2600 {
            db.execute(
                "INSERT INTO audit_log (at, organization_id, action, outcome, details)
                 VALUES (?1, ?2, 'report.deleted', 'success', ?3)",
                &[P::I(n), P::I(org), P::T(&format!("{{\"n\":{n}}}"))],
            );
        }
        db.execute("COMMIT", &[]);
    }
    let all = s
        .get("/api/v1/audit-logs/export/?format=json")
        .bearer(&owner)
        .send();
    assert_eq!(all.status, 200);
    assert!(all
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let entries = all.json();
    let entries = entries.as_array().unwrap();
    assert!(entries.len() > 2600, "{}", entries.len());
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
    let csv = s
        .get("/api/v1/audit-logs/export/?format=csv&action=report.deleted")
        .bearer(&owner)
        .send();
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].starts_with("id,at,action"));
    assert_eq!(
        lines.len(),
        2601,
        "the header and the 2,600 filtered entries"
    );
    assert!(lines[1..].iter().all(|l| l.contains(",report.deleted,")));
}
