//! The key lifecycle of contract 9.4 at the API: rotation with an overlap and the last
//! caller, address allowlists, canary keys, scope usage. Leak reports with `api-key
//! leak-check`, the audit chain against hand edits and restores are end to end.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::api_keys::{create_key, verify};
use super::support::{server, Resp, Server};

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

/// The uses refused entries count (identical uses share an entry).
fn uses(entries: &[Value]) -> u64 {
    entries
        .iter()
        .map(|e| e["details"]["count"].as_u64().unwrap_or(0))
        .sum()
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
fn key_when(s: &Server, token: &str, id: i64, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let key = key_of(s, token, id);
        if ready(&key) || Instant::now() > deadline {
            return key;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn with_agent(s: &Server, key: &str, agent: &str) -> Resp {
    s.get("/api/v1/auth/verify/")
        .bearer(key)
        .header("User-Agent", agent)
        .send()
}

/// Status, headers (but the request id and the date) and body: what a client can compare.
fn answer(r: &Resp) -> (u16, Vec<(String, String)>, String) {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("x-request-id") && !k.eq_ignore_ascii_case("date"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    headers.sort();
    (r.status, headers, r.body.clone())
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
fn an_overlap_keeps_the_old_key_working_shows_its_last_caller_and_then_refuses_it() {
    let s = server()
        .env("CLARIBI_AUTH__ROTATION_OVERLAPS", r#"["0s", "4s"]"#)
        .start();
    let token = s.owner_token();
    let old = create_key(
        &s,
        &token,
        json!({"name": "nightly", "scopes": ["reports:read"], "expires_in_days": 90}),
    );
    let (old_id, old_key) = (old["id"].as_i64().unwrap(), old["key"].as_str().unwrap());
    let rotate = |body: Option<Value>| {
        let r = s
            .post(&format!("/api/auth/api-keys/{old_id}/rotate/"))
            .bearer(&token);
        match body {
            Some(body) => r.json(&body),
            None => r.send(),
        }
    };
    let refused = rotate(Some(json!({"overlap": "1h"})));
    assert_eq!(refused.status, 400, "not offered by this configuration");
    assert!(
        refused.json()["errors"]["overlap"].is_array(),
        "{}",
        refused.body
    );
    assert_eq!(rotate(Some(json!({"overlap": 3600}))).status, 400);
    assert_eq!(rotate(Some(json!({"overlap": "2s"}))).status, 400);

    let new = rotate(Some(json!({"overlap": "4s"})));
    assert_eq!(new.status, 201, "{}", new.body);
    let rotated_at = Instant::now();
    let new = new.json();
    let (new_id, new_key) = (new["id"].as_i64().unwrap(), new["key"].as_str().unwrap());
    assert_eq!(new["scopes"], json!(["reports:read"]));
    assert_eq!(verify(&s, new_key).status, 200);

    // During the overlap the old key works, points to its successor and shows its caller.
    assert_eq!(with_agent(&s, old_key, "legacy-etl/1.0").status, 200);
    let seen = key_when(&s, &token, old_id, |k| !k["last_used_ip"].is_null());
    assert_eq!(seen["replaced_by"], new_id);
    assert_eq!(seen["status"], "active");
    assert_eq!(seen["last_used_ip"], "127.0.0.1");
    assert_eq!(seen["last_used_user_agent"], "legacy-etl/1.0");
    let until = seen["expires_at"].as_str().unwrap().to_string();
    assert!(new["expires_at"].as_str().unwrap() > until.as_str());
    assert_eq!(rotate(None).status, 409, "a key is rotated once");

    // After it: refused as expired, and every such use is audited with its caller.
    let overlap_end = rotated_at + Duration::from_secs(4);
    std::thread::sleep(
        overlap_end.saturating_duration_since(Instant::now()) + Duration::from_millis(1100),
    );
    let late = with_agent(&s, old_key, "legacy-etl/1.0");
    assert_eq!(late.status, 401);
    assert_eq!(late.error_code(), "api_key_expired");
    let late_reports = s.get("/api/v1/reports/").bearer(old_key).send();
    assert_eq!(late_reports.status, 401);
    assert_eq!(verify(&s, new_key).status, 200, "the successor works on");
    let entries = audited_until(&s, &token, "api_key.used_after_rotation", |e| uses(e) >= 2);
    assert_eq!(uses(&entries), 2, "each late use is audited: {entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["outcome"], "denied");
    assert_eq!(entry["ip"], "127.0.0.1");
    assert_eq!(entry["target_id"], old_id);
    assert_eq!(entry["api_key_prefix"], old["prefix"]);
    assert_eq!(key_of(&s, &token, old_id)["status"], "expired");

    // An at-once rotation of the successor revokes it and points to the next one.
    let third = s
        .post(&format!("/api/auth/api-keys/{new_id}/rotate/"))
        .bearer(&token)
        .json(&json!({"overlap": "0s"}));
    assert_eq!(third.status, 201);
    let revoked = key_of(&s, &token, new_id);
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["replaced_by"], third.json()["id"]);
    assert_eq!(verify(&s, new_key).error_code(), "api_key_revoked");
}

#[test]
fn an_allowlist_admits_its_ranges_refuses_the_rest_and_changes_at_once() {
    // The client address is what the trusted-proxy rules give: the peer, or the entry the
    // proxy on loopback added.
    let s = server()
        .env("CLARIBI_SERVER__TRUSTED_PROXIES", r#"["127.0.0.1"]"#)
        .start();
    let token = s.owner_token();
    for (bad, why) in [
        (json!([]), "empty"),
        (json!(["10.0.0.0/33"]), "bad prefix"),
        (json!(["nowhere"]), "not an address"),
        (
            json!((0..33)
                .map(|i| format!("10.0.{i}.0/24"))
                .collect::<Vec<_>>()),
            "33",
        ),
    ] {
        let r = s
            .post("/api/auth/api-keys/")
            .bearer(&token)
            .json(&json!({"name": "x", "allowed_ips": bad}));
        assert_eq!(r.status, 400, "{why}: {}", r.body);
        assert!(r.json()["errors"]["allowed_ips"].is_array(), "{why}");
    }
    let created = create_key(
        &s,
        &token,
        json!({"name": "office", "allowed_ips": ["10.1.2.3/8", "2001:db8::/32", "192.0.2.7"]}),
    );
    assert_eq!(
        created["allowed_ips"],
        json!(["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]),
        "ranges are kept by their network"
    );
    let (id, key) = (
        created["id"].as_i64().unwrap(),
        created["key"].as_str().unwrap(),
    );
    let from = |ip: &str| {
        s.get("/api/v1/auth/verify/")
            .bearer(key)
            .header("X-Forwarded-For", ip)
            .header("User-Agent", "probe/2")
            .send()
    };
    let direct = verify(&s, key);
    assert_eq!(direct.status, 403);
    assert_eq!(direct.error_code(), "ip_not_allowed");
    assert_eq!(from("10.200.0.1").status, 200);
    assert_eq!(from("2001:db8::42").status, 200);
    assert_eq!(from("192.0.2.7").status, 200);
    assert_eq!(from("192.0.2.8").status, 403);
    let from_outside = |e: &Value| e["ip"] == "192.0.2.8" && e["user_agent"] == "probe/2";
    let denied = audited_until(&s, &token, "api_key.ip_denied", |e| {
        e.iter().any(from_outside)
    });
    assert!(
        denied
            .iter()
            .any(|e| e["ip"] == "192.0.2.8" && e["user_agent"] == "probe/2"),
        "{denied:?}"
    );
    assert!(denied
        .iter()
        .all(|e| e["outcome"] == "denied" && e["target_id"] == id));

    // PATCH narrows the list: the very next request from the dropped range is refused.
    let patch = |body: Value| {
        s.request("PATCH", &format!("/api/auth/api-keys/{id}/"))
            .bearer(&token)
            .json(&body)
    };
    let narrowed = patch(json!({"allowed_ips": ["2001:db8::/32"], "name": "office v6"}));
    assert_eq!(narrowed.status, 200, "{}", narrowed.body);
    assert_eq!(narrowed.json()["allowed_ips"], json!(["2001:db8::/32"]));
    assert_eq!(narrowed.json()["name"], "office v6");
    assert_eq!(from("10.200.0.1").status, 403);
    assert_eq!(from("2001:db8::42").status, 200);
    assert_eq!(patch(json!({"allowed_ips": "10.0.0.0/8"})).status, 400);
    assert_eq!(patch(json!({"colour": "red"})).status, 400);
    // A description alone leaves the list as it is; null removes it.
    let described = patch(json!({"description": "the office"}));
    assert_eq!(described.json()["allowed_ips"], json!(["2001:db8::/32"]));
    assert_eq!(
        patch(json!({"allowed_ips": null})).json()["allowed_ips"],
        Value::Null
    );
    assert_eq!(verify(&s, key).status, 200);
    let updated = audited(&s, &token, "api_key.updated");
    assert_eq!(updated.len(), 3, "{updated:?}");

    // Another user's key: not found to a member, editable by an administrator.
    s.create_user("ana@example.com", "analyst", "quiet-harbor-77");
    let analyst = s.token("ana@example.com", "quiet-harbor-77");
    let theirs = create_key(&s, &analyst, json!({"name": "mine"}));
    let theirs_id = theirs["id"].as_i64().unwrap();
    let by_analyst = s
        .request("PATCH", &format!("/api/auth/api-keys/{id}/"))
        .bearer(&analyst)
        .json(&json!({"name": "taken"}));
    assert_eq!(by_analyst.status, 404);
    let by_admin = s
        .request("PATCH", &format!("/api/auth/api-keys/{theirs_id}/"))
        .bearer(&token)
        .json(&json!({"allowed_ips": ["10.0.0.0/8"]}));
    assert_eq!(by_admin.status, 200);
    assert_eq!(verify(&s, theirs["key"].as_str().unwrap()).status, 403);
    // A key cannot edit keys.
    let by_key = s
        .request("PATCH", &format!("/api/auth/api-keys/{theirs_id}/"))
        .bearer(key)
        .json(&json!({"name": "x"}));
    assert_eq!(by_key.error_code(), "interactive_session_required");
}

#[test]
fn a_canary_key_answers_exactly_like_an_unknown_key_and_raises_an_alarm() {
    let s = Server::start();
    let token = s.owner_token();
    s.create_user("ana@example.com", "analyst", "quiet-harbor-77");
    let analyst = s.token("ana@example.com", "quiet-harbor-77");
    let not_admin = s
        .post("/api/auth/api-keys/")
        .bearer(&analyst)
        .json(&json!({"name": "decoy", "canary": true}));
    assert_eq!(not_admin.status, 403);
    assert_eq!(not_admin.error_code(), "permission_denied");
    let own = create_key(&s, &analyst, json!({"name": "plain"}));
    assert!(
        own.get("canary").is_none(),
        "only administrators see the field"
    );

    let canary = create_key(
        &s,
        &token,
        json!({"name": "wiki: prod credentials", "canary": true}),
    );
    assert_eq!(canary["canary"], true);
    let (id, decoy) = (
        canary["id"].as_i64().unwrap(),
        canary["key"].as_str().unwrap(),
    );
    // A key of the same, valid, shape (checksum and all) that was never issued.
    let random = "Z".repeat(30);
    let unknown = format!("claribi_key_{random}{}", checksum_of(&random));
    let probe = |key: &str, path: &str, how: &str| {
        let r = s.get(path).header("User-Agent", "intruder/0.1");
        match how {
            "bearer" => r.bearer(key),
            "x-api-key" => r.header("X-API-Key", key),
            _ => r.header("Authorization", &format!("Api-Key {key}")),
        }
        .send()
    };
    for (path, how) in [
        ("/api/v1/auth/verify/", "bearer"),
        ("/api/v1/reports/", "x-api-key"),
        ("/api/auth/me/", "api-key"),
    ] {
        let decoyed = probe(decoy, path, how);
        let plain = probe(&unknown, path, how);
        assert_eq!(decoyed.status, 401, "{path}");
        assert_eq!(answer(&decoyed), answer(&plain), "{path} via {how}");
    }
    let alarms = audited_until(&s, &token, "api_key.canary_used", |e| uses(e) >= 3);
    assert_eq!(uses(&alarms), 3, "{alarms:?}");
    let reports = alarms
        .iter()
        .find(|e| e["details"]["route"] == "reports")
        .expect("the route is named");
    assert_eq!(reports["outcome"], "denied");
    assert_eq!(reports["ip"], "127.0.0.1");
    assert_eq!(reports["user_agent"], "intruder/0.1");
    assert_eq!(reports["details"]["method"], "GET");
    assert_eq!(reports["target_id"], id);
    assert!(reports["user_id"].is_null(), "the planter did not use it");
    let listed = s.get("/api/auth/api-keys/").bearer(&token).send().json();
    assert_eq!(listed["results"][0]["canary"], true);
    assert_eq!(listed["results"][0]["usage_count"], 0);
}

#[test]
fn scope_usage_counts_each_scope_a_key_used() {
    let s = Server::start();
    let token = s.owner_token();
    let scoped = create_key(
        &s,
        &token,
        json!({"name": "reader", "scopes": ["reports:read", "dashboards:read", "usage:read"]}),
    );
    let (id, key) = (
        scoped["id"].as_i64().unwrap(),
        scoped["key"].as_str().unwrap(),
    );
    assert_eq!(
        scoped["scope_usage"],
        json!({
            "reports:read": {"count": 0, "last_used_at": null},
            "dashboards:read": {"count": 0, "last_used_at": null},
            "usage:read": {"count": 0, "last_used_at": null},
        })
    );
    for _ in 0..3 {
        assert_eq!(s.get("/api/v1/reports/").bearer(key).send().status, 200);
    }
    assert_eq!(s.get("/api/v1/usage/").bearer(key).send().status, 200);
    // Refused (out of scope) and scope-free calls count for no scope.
    assert_eq!(s.get("/api/v1/goals/").bearer(key).send().status, 403);
    assert_eq!(verify(&s, key).status, 200);
    let used = key_when(&s, &token, id, |k| {
        k["scope_usage"]["usage:read"]["count"] == 1
    });
    let usage = &used["scope_usage"];
    assert_eq!(usage["reports:read"]["count"], 3, "{usage}");
    assert!(usage["reports:read"]["last_used_at"].is_string());
    assert_eq!(
        usage["dashboards:read"],
        json!({"count": 0, "last_used_at": null})
    );
    assert_eq!(usage.as_object().unwrap().len(), 3);
    let listed = s.get("/api/auth/api-keys/").bearer(&token).send().json();
    let row = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(row["scope_usage"], *usage);

    let full = create_key(&s, &token, json!({"name": "full"}));
    let full_key = full["key"].as_str().unwrap();
    assert_eq!(
        s.get("/api/v1/reports/").bearer(full_key).send().status,
        200
    );
    assert_eq!(full["scope_usage"], json!({}), "unscoped keys have none");
}
