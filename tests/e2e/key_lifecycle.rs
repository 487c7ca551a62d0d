//! The key lifecycle of `API.md` 9.4 (issue: key lifecycle): rotation with an overlap and the
//! last caller, address allowlists, canary keys, leak reports and `api-key leak-check`, the
//! hash-chained audit log, scope usage.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api_keys::{create_key, verify};
use crate::support::{server, Server, P};

/// The audit entries of `action` in the caller's organization, once at least one is there
/// (refused uses are written by the usage flusher, within a few seconds).
fn audited(s: &Server, token: &str, action: &str) -> Vec<Value> {
    audited_until(s, token, action, |entries| !entries.is_empty())
}

/// The audit entries of `action`, once `ready` holds of them (or after 10 s).
fn audited_until(
    s: &Server,
    token: &str,
    action: &str,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = s
            .get(&format!("/api/v1/audit-logs/?action={action}"))
            .bearer(token)
            .send()
            .json();
        let results = page["results"].as_array().cloned().unwrap_or_default();
        if ready(&results) || Instant::now() > deadline {
            return results;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn key_of(s: &Server, token: &str, id: i64) -> Value {
    let r = s
        .get(&format!("/api/auth/api-keys/{id}/"))
        .bearer(token)
        .send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// Polls key `id` until `ready` holds of it (usage is written every 2 s).
pub fn key_when(s: &Server, token: &str, id: i64, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let key = key_of(s, token, id);
        if ready(&key) || Instant::now() > deadline {
            return key;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_leak_report_revokes_only_the_callers_active_keys_and_the_command_does_it_offline() {
    let s = Server::start();
    let token = s.owner_token();
    let out = s.cli(
        &[
            "org",
            "create",
            "--name",
            "Globex",
            "--owner-email",
            "hank@globex.example",
        ],
        "amber-falcon-19\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let globex = s.token("hank@globex.example", "amber-falcon-19");
    let active = create_key(&s, &token, json!({"name": "ci"}));
    let gone = create_key(&s, &token, json!({"name": "old"}));
    let gone_id = gone["id"].as_i64().unwrap();
    s.request("DELETE", &format!("/api/auth/api-keys/{gone_id}/"))
        .bearer(&token)
        .send();
    let theirs = create_key(&s, &globex, json!({"name": "their ci"}));
    let (active_key, theirs_key) = (
        active["key"].as_str().unwrap(),
        theirs["key"].as_str().unwrap(),
    );
    let gone_key = gone["key"].as_str().unwrap();
    let unknown = "claribi_key_000000000000000000000000000000".to_string();
    let unknown = format!("{unknown}{}", checksum_of(&unknown[12..]));
    let look_alike = format!("claribi_key_{}", "A".repeat(36));
    let text = format!(
        "2026-12-01 ci: export CLARIBI={active_key}\n{theirs_key},{gone_key} \"{unknown}\"\n\
         {look_alike} and {active_key} again"
    );

    s.create_user("mo@example.com", "member", "dusty-meadow-55");
    let member = s.token("mo@example.com", "dusty-meadow-55");
    let report = |token: &str, text: &str| {
        s.post("/api/auth/api-keys/leak-report/")
            .bearer(token)
            .json(&json!({"text": text}))
    };
    assert_eq!(report(&member, &text).error_code(), "permission_denied");
    assert_eq!(
        report(active_key, &text).error_code(),
        "interactive_session_required"
    );
    let too_long = report(&token, &"x".repeat((1 << 20) + 1));
    assert_eq!(too_long.status, 400, "{}", too_long.body);
    assert!(too_long.json()["errors"]["text"].is_array());

    let r = report(&token, &text);
    assert_eq!(r.status, 200, "{}", r.body);
    let found = r.json()["found"].as_array().unwrap().clone();
    assert_eq!(
        found.len(),
        4,
        "each well-formed key once, the look-alike not: {found:?}"
    );
    let by_prefix = |key: &str| {
        found
            .iter()
            .find(|f| f["prefix"] == key[..20])
            .unwrap_or_else(|| panic!("{key} not reported"))
            .clone()
    };
    assert_eq!(
        by_prefix(active_key),
        json!({"prefix": &active_key[..20], "id": active["id"], "status_before": "active", "revoked": true})
    );
    assert_eq!(
        by_prefix(gone_key),
        json!({"prefix": &gone_key[..20], "id": gone_id, "status_before": "revoked", "revoked": false})
    );
    for other in [theirs_key, unknown.as_str()] {
        assert_eq!(
            by_prefix(other),
            json!({"prefix": &other[..20], "id": null, "status_before": null, "revoked": false})
        );
    }
    assert_eq!(verify(&s, active_key).error_code(), "api_key_revoked");
    assert_eq!(
        verify(&s, theirs_key).status,
        200,
        "another organization's key is untouched"
    );
    let leaked = audited(&s, &token, "api_key.leaked");
    assert_eq!(leaked.len(), 2, "{leaked:?}");
    // The report's entries were written with it (read above): one read shows Globex has none.
    assert!(audited_until(&s, &globex, "api_key.leaked", |_| true).is_empty());

    // The command: the whole installation, one line per key; nothing changes without --revoke.
    let file = s.work_dir().join("pasted.log");
    std::fs::write(&file, &text).unwrap();
    let check = s.cli(&["api-key", "leak-check", file.to_str().unwrap()], "");
    let stdout = String::from_utf8_lossy(&check.stdout).to_string();
    assert_eq!(
        check.status.code(),
        Some(1),
        "an active key was left active: {stdout}"
    );
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&theirs_key[..20]))
        .unwrap();
    assert!(
        line.contains("\"Globex\"") && line.contains("still active"),
        "{line}"
    );
    assert!(stdout.contains("unknown"), "{stdout}");
    assert_eq!(verify(&s, theirs_key).status, 200);

    let revoke = s.cli(&["api-key", "leak-check", "--revoke"], &text);
    let stdout = String::from_utf8_lossy(&revoke.stdout).to_string();
    assert!(
        revoke.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&theirs_key[..20]) && l.contains("revoked now")),
        "{stdout}"
    );
    assert_eq!(verify(&s, theirs_key).error_code(), "api_key_revoked");
    let theirs_audit = audited(&s, &globex, "api_key.leaked");
    assert_eq!(theirs_audit.len(), 1, "in the key's own organization");
    assert_eq!(theirs_audit[0]["details"]["status_before"], "active");
    assert_eq!(theirs_audit[0]["details"]["revoked"], true);
    assert_eq!(theirs_audit[0]["target_id"], theirs["id"]);
    // Nothing left active: exit 0.
    assert!(s.cli(&["api-key", "leak-check"], &text).status.success());
}

/// The base62 CRC-32 of a key's random part, as the server computes it.
fn checksum_of(random: &str) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut value = crc32(random.as_bytes());
    let mut digits = [b'0'; 6];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).unwrap()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn the_audit_chain_names_a_hand_edited_entry_and_concurrent_writers_keep_it_whole() {
    let s = Server::start();
    let token = s.owner_token();
    // Writers at once: key creations over HTTP, failed logins, and CLI commands, which write
    // from another process.
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (s, token) = (&s, &token);
            scope.spawn(move || {
                for i in 0..10 {
                    create_key(s, token, json!({"name": format!("w{t}-{i}")}));
                    let r = s.login("owner@example.com", "wrong-password-here");
                    assert!(r.status == 401 || r.status == 429);
                }
            });
        }
        let s = &s;
        scope.spawn(move || {
            for i in 0..4 {
                let email = format!("cli{i}@example.com");
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
                    "sturdy-lantern-31\n",
                );
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        });
    });
    let verdict = s.get("/api/v1/audit-logs/verify/").bearer(&token).send();
    assert_eq!(verdict.status, 200, "{}", verdict.body);
    let verdict = verdict.json();
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["first_invalid_id"], Value::Null);
    let listed = s
        .get("/api/v1/audit-logs/?page_size=1")
        .bearer(&token)
        .send()
        .json();
    assert_eq!(
        verdict["entries"], listed["count"],
        "the chain holds every entry"
    );
    assert!(verdict["entries"].as_u64().unwrap() >= 44);
    let intact = s.cli(&["audit", "verify"], "");
    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stderr)
    );
    assert!(String::from_utf8_lossy(&intact.stdout).contains("intact"));

    // Every entry, exported, carries its hash.
    let export = s
        .get("/api/v1/audit-logs/export/")
        .bearer(&token)
        .send()
        .json();
    let entries = export.as_array().unwrap();
    assert!(entries
        .iter()
        .all(|e| e["hash"].as_str().is_some_and(|h| h.len() == 64)));

    // Edit one entry as someone with the database file would.
    let victim = entries[entries.len() / 2]["id"].as_i64().unwrap();
    s.sql().execute(
        "UPDATE audit_log SET ip = '203.0.113.9' WHERE id = ?1",
        &[P::I(victim)],
    );
    let broken = s
        .get("/api/v1/audit-logs/verify/")
        .bearer(&token)
        .send()
        .json();
    assert_eq!(broken["valid"], false);
    assert_eq!(broken["first_invalid_id"], victim);
    let named = s.cli(&["audit", "verify"], "");
    assert_eq!(named.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&named.stderr);
    assert!(stderr.contains(&format!("entry {victim} ")), "{stderr}");
    // Viewers may not walk the chain.
    let viewer = s.token("cli0@example.com", "sturdy-lantern-31");
    assert_eq!(
        s.get("/api/v1/audit-logs/verify/")
            .bearer(&viewer)
            .send()
            .status,
        403
    );
}

#[test]
fn a_restore_keeps_an_overlaps_end_and_a_narrowed_allowlist() {
    let s = server().sqlite().start();
    let token = s.owner_token();
    let rotated = create_key(&s, &token, json!({"name": "rotated after the backup"}));
    let narrowed = create_key(&s, &token, json!({"name": "narrowed after the backup"}));
    let backup = s.work_dir().join("before.db");
    let out = s.cli(&["backup", "--out", backup.to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (rotated_id, narrowed_id) = (
        rotated["id"].as_i64().unwrap(),
        narrowed["id"].as_i64().unwrap(),
    );
    let r = s
        .post(&format!("/api/auth/api-keys/{rotated_id}/rotate/"))
        .bearer(&token)
        .json(&json!({"overlap": "1h"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let until = key_of(&s, &token, rotated_id)["expires_at"].clone();
    assert!(until.is_string());
    let r = s
        .request("PATCH", &format!("/api/auth/api-keys/{narrowed_id}/"))
        .bearer(&token)
        .json(&json!({"allowed_ips": ["10.0.0.0/8"]}));
    assert_eq!(r.status, 200, "{}", r.body);

    let s = s.stop_and_restart_with(|stopped| {
        let out = stopped.cli(&["restore", "--from", backup.to_str().unwrap()], "");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let token = s.owner_token();
    // The backup knew neither the rotation nor the allowlist; the journal did.
    let rotated_after = key_of(&s, &token, rotated_id);
    assert_eq!(
        rotated_after["expires_at"], until,
        "the overlap still ends when it did"
    );
    assert_eq!(
        key_of(&s, &token, narrowed_id)["allowed_ips"],
        json!(["10.0.0.0/8"])
    );
    assert_eq!(
        verify(&s, narrowed["key"].as_str().unwrap()).error_code(),
        "ip_not_allowed"
    );
    assert_eq!(
        verify(&s, rotated["key"].as_str().unwrap()).status,
        200,
        "until then"
    );
}
