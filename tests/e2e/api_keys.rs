//! API keys: creation, formats, scopes at creation, instant revocation, rotation, rate limits
//! (issue: API keys). The scope-by-endpoint matrix lives with the resources.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{server, unix_now, within_one_rate_window, Server, P};

pub fn create_key(s: &Server, token: &str, body: Value) -> Value {
    let r = s.post("/api/auth/api-keys/").bearer(token).json(&body);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.json()
}

pub fn verify(s: &Server, key: &str) -> crate::support::Resp {
    s.get("/api/v1/auth/verify/").bearer(key).send()
}

#[test]
fn a_key_is_shown_once_and_has_the_documented_format() {
    let s = Server::start();
    let token = s.owner_token();
    let created = create_key(
        &s,
        &token,
        json!({"name": "ETL", "description": "nightly", "scopes": ["reports:read"], "expires_in_days": 30}),
    );
    let key = created["key"].as_str().unwrap();
    assert!(
        key.starts_with("claribi_key_") && key.len() == 12 + 36,
        "{key}"
    );
    assert_eq!(created["prefix"].as_str().unwrap(), &key[..20]);
    assert_eq!(created["status"], "active");
    assert_eq!(created["scopes"], json!(["reports:read"]));
    assert!(created["expires_at"].is_string() && created["last_used_at"].is_null());
    let id = created["id"].as_i64().unwrap();

    let list = s.get("/api/auth/api-keys/").bearer(&token).send();
    assert_eq!(list.status, 200);
    assert!(!list.body.contains(key), "the key is never shown again");
    assert_eq!(list.json()["count"], 1);
    let one = s
        .get(&format!("/api/auth/api-keys/{id}/"))
        .bearer(&token)
        .send();
    assert!(one.json().get("key").is_none());

    let mut db = s.sql();
    let stored = db
        .one("SELECT key_hash FROM api_keys WHERE id = ?1", &[P::I(id)])
        .text();
    assert_eq!(stored.len(), 64, "only a SHA-256 is stored");
    let details = db.rows("SELECT details FROM audit_log", &[]);
    assert!(!details.is_empty());
    assert!(details.iter().all(|row| !row[0].text().contains(key)));
    assert!(!s.log().contains(key), "the key never reaches the log");
}

#[test]
fn creation_validates_every_field() {
    let s = Server::start();
    let token = s.owner_token();
    let bad = |body: Value, field: &str| {
        let r = s.post("/api/auth/api-keys/").bearer(&token).json(&body);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "invalid"),
            "{body}"
        );
        assert!(r.json()["errors"][field].is_array(), "{}", r.body);
    };
    bad(json!({"name": ""}), "name");
    bad(json!({"name": "x".repeat(101)}), "name");
    bad(
        json!({"name": "ok", "description": "d".repeat(501)}),
        "description",
    );
    bad(
        json!({"name": "ok", "expires_in_days": 7}),
        "expires_in_days",
    );
    bad(json!({"name": "ok", "scopes": []}), "scopes");
    bad(json!({"name": "ok", "scopes": ["reports:write"]}), "scopes");
    let never = create_key(
        &s,
        &token,
        json!({"name": "forever", "expires_in_days": null}),
    );
    assert!(never["expires_at"].is_null());

    s.create_user("viewer@example.com", "viewer", "viewer-password-1");
    let viewer = s.login("viewer@example.com", "viewer-password-1").json()["access"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .post("/api/auth/api-keys/")
        .bearer(&viewer)
        .json(&json!({"name": "too much", "scopes": ["reports:read", "reports:generate"]}));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "scope_exceeds_role")
    );
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("reports:generate"));
}

#[test]
fn every_documented_header_form_authenticates_and_verify_describes_the_caller() {
    let s = Server::start();
    let token = s.owner_token();
    let created = create_key(
        &s,
        &token,
        json!({"name": "reader", "scopes": ["usage:read", "reports:read"]}),
    );
    let key = created["key"].as_str().unwrap();
    for r in [
        s.get("/api/v1/auth/verify/").bearer(key).send(),
        s.get("/api/v1/auth/verify/")
            .header("X-API-Key", key)
            .send(),
        s.get("/api/v1/auth/verify/")
            .header("Authorization", &format!("Api-Key {key}"))
            .send(),
    ] {
        assert_eq!(r.status, 200, "{}", r.body);
        let body = r.json();
        assert_eq!(body["auth_method"], "api_key");
        assert_eq!(body["api_key"]["prefix"], created["prefix"]);
        assert_eq!(body["permissions"], json!(["reports:read", "usage:read"]));
        assert_eq!(body["user"]["role"], "owner");
        assert_eq!(body["organization"]["name"], "Default Organization");
        assert!(r.header("x-ratelimit-limit").is_some());
    }
    let jwt = s.get("/api/v1/auth/verify/").bearer(&token).send().json();
    assert_eq!(jwt["auth_method"], "jwt");
    assert!(jwt["api_key"].is_null());
    assert!(jwt["permissions"].as_array().unwrap().len() > 13);
    assert_eq!(
        s.get("/api/auth/me/").bearer(key).send().status,
        200,
        "me answers any credential"
    );

    let mut typo = key.to_string().into_bytes();
    typo[15] = if typo[15] == b'a' { b'b' } else { b'a' };
    let r = verify(&s, &String::from_utf8(typo).unwrap());
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "api_key_invalid")
    );
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
}

#[test]
fn keys_cannot_manage_keys_sessions_passwords_or_mfa() {
    let s = Server::start();
    let token = s.owner_token();
    let key = create_key(&s, &token, json!({"name": "full"}))["key"]
        .as_str()
        .unwrap()
        .to_string();
    let attempts = [
        s.post("/api/auth/api-keys/")
            .bearer(&key)
            .json(&json!({"name": "x"})),
        s.get("/api/auth/api-keys/").bearer(&key).send(),
        s.request("DELETE", "/api/auth/api-keys/1/")
            .bearer(&key)
            .send(),
        s.post("/api/auth/api-keys/1/rotate/").bearer(&key).send(),
        s.get("/api/auth/sessions/").bearer(&key).send(),
        s.post("/api/auth/password/")
            .bearer(&key)
            .json(&json!({"current_password": "a", "new_password": "b"})),
        s.post("/api/auth/mfa/totp/setup/").bearer(&key).send(),
        s.post("/api/auth/logout/")
            .bearer(&key)
            .json(&json!({"refresh": "x"})),
    ];
    for r in attempts {
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (403, "interactive_session_required")
        );
    }
}

#[test]
fn revocation_is_immediate_even_under_concurrent_use() {
    let s = Server::start();
    let token = s.owner_token();
    let created = create_key(&s, &token, json!({"name": "busy"}));
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_i64().unwrap();
    let revoked_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (url, key, revoked_at, stop) = (
                s.url("/api/v1/auth/verify/"),
                key.clone(),
                revoked_at.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let mut late_successes = 0;
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let ok = ureq::get(&url)
                        .set("Authorization", &format!("Bearer {key}"))
                        .call()
                        .is_ok();
                    let answer_before_send = revoked_at.lock().unwrap().is_some_and(|at| at < sent);
                    if ok && answer_before_send {
                        late_successes += 1;
                    }
                }
                late_successes
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let r = s
        .request("DELETE", &format!("/api/auth/api-keys/{id}/"))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 204);
    *revoked_at.lock().unwrap() = Some(Instant::now());
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let late: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(late, 0, "requests sent after the revoke answer succeeded");
    let after = verify(&s, &key);
    assert_eq!(
        (after.status, after.error_code().as_str()),
        (401, "api_key_revoked")
    );
    let listed = s
        .get(&format!("/api/auth/api-keys/{id}/"))
        .bearer(&token)
        .send()
        .json();
    assert_eq!(listed["status"], "revoked");
}

#[test]
fn rotation_replaces_the_key_and_keys_survive_a_restart() {
    let s = Server::start();
    let token = s.owner_token();
    let old = create_key(
        &s,
        &token,
        json!({"name": "ci", "description": "pipeline", "scopes": ["dashboards:read"], "expires_in_days": 90}),
    );
    let old_key = old["key"].as_str().unwrap().to_string();
    let rotated = s
        .post(&format!("/api/auth/api-keys/{}/rotate/", old["id"]))
        .bearer(&token)
        .send();
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    let new = rotated.json();
    assert_ne!(new["key"], old["key"]);
    for field in ["name", "description", "scopes"] {
        assert_eq!(new[field], old[field], "{field}");
    }
    assert!(new["expires_at"].is_string());
    assert_eq!(verify(&s, &old_key).status, 401);
    let new_key = new["key"].as_str().unwrap().to_string();
    assert_eq!(verify(&s, &new_key).status, 200);

    let s = s.kill_and_restart();
    assert_eq!(verify(&s, &new_key).status, 200, "keys survive a restart");
    assert_eq!(verify(&s, &old_key).json()["error"], "api_key_revoked");
}

#[test]
fn usage_is_counted_and_the_first_use_audited() {
    let s = Server::start();
    let token = s.owner_token();
    let created = create_key(&s, &token, json!({"name": "counted"}));
    let key = created["key"].as_str().unwrap();
    for _ in 0..5 {
        assert_eq!(verify(&s, key).status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let k = s
            .get(&format!("/api/auth/api-keys/{}/", created["id"]))
            .bearer(&token)
            .send()
            .json();
        if k["usage_count"] == 5 {
            assert!(k["last_used_at"].is_string());
            break;
        }
        assert!(Instant::now() < deadline, "usage never written: {k}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let first = s
        .sql()
        .one(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'api_key.first_used'",
            &[],
        )
        .int();
    assert_eq!(first, 1);
}

#[test]
fn administrators_see_and_revoke_every_key_of_their_organization() {
    let s = Server::start();
    s.create_user("ana@example.com", "analyst", "analyst-password-3");
    let ana = s.login("ana@example.com", "analyst-password-3").json()["access"]
        .as_str()
        .unwrap()
        .to_string();
    let ana_key = create_key(&s, &ana, json!({"name": "ana's"}));
    let owner = s.owner_token();
    let denied = s.get("/api/auth/api-keys/?all=true").bearer(&ana).send();
    assert_eq!(
        (denied.status, denied.error_code().as_str()),
        (403, "permission_denied")
    );
    let all = s
        .get("/api/auth/api-keys/?all=true")
        .bearer(&owner)
        .send()
        .json();
    assert_eq!(all["count"], 1);
    let mine = s.get("/api/auth/api-keys/").bearer(&owner).send().json();
    assert_eq!(mine["count"], 0);
    let owner_key = create_key(&s, &owner, json!({"name": "owner's"}));
    let foreign = s
        .request(
            "DELETE",
            &format!("/api/auth/api-keys/{}/", owner_key["id"]),
        )
        .bearer(&ana)
        .send();
    assert_eq!(
        foreign.status, 404,
        "another user's key does not exist for a non-admin"
    );
    let revoke = s
        .request("DELETE", &format!("/api/auth/api-keys/{}/", ana_key["id"]))
        .bearer(&owner)
        .send();
    assert_eq!(revoke.status, 204);
    assert_eq!(verify(&s, ana_key["key"].as_str().unwrap()).status, 401);
}

#[test]
fn the_cli_revokes_by_prefix_and_expired_keys_are_refused() {
    let s = Server::start();
    let token = s.owner_token();
    let a = create_key(&s, &token, json!({"name": "a"}));
    let out = s.cli(
        &[
            "api-key",
            "revoke",
            "--prefix",
            a["prefix"].as_str().unwrap(),
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // In force on the first request after the command exits: it waited for the server.
    let refused = verify(&s, a["key"].as_str().unwrap());
    assert_eq!(refused.status, 401);
    assert_eq!(refused.error_code(), "api_key_revoked");

    let b = create_key(&s, &token, json!({"name": "b", "expires_in_days": 30}));
    let mut db = s.sql();
    db.execute(
        "UPDATE api_keys SET expires_at = ?2 WHERE id = ?1",
        &[P::I(b["id"].as_i64().unwrap()), P::I(unix_now() - 1)],
    );
    // A change made behind the server's back reaches it through a feed entry.
    db.bump_feed();
    db.execute(
        "INSERT INTO changes (seq, kind, object_id, at)
         SELECT seq, 'api_key', ?1, 0 FROM feed_head",
        &[P::I(b["id"].as_i64().unwrap())],
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = verify(&s, b["key"].as_str().unwrap());
        if r.status == 401 {
            assert_eq!(r.error_code(), "api_key_expired");
            break;
        }
        assert!(Instant::now() < deadline, "expiry not seen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn rate_limits_answer_429_with_retry_after() {
    within_one_rate_window(|| {
        let s = server()
            .env("CLARIBI_RATE_LIMITS__GENERAL_PER_HOUR", "5")
            .start();
        let token = s.owner_token();
        let key = create_key(&s, &token, json!({"name": "limited"}))["key"]
            .as_str()
            .unwrap()
            .to_string();
        let mut remaining = Vec::new();
        for _ in 0..5 {
            let r = verify(&s, &key);
            assert_eq!(r.status, 200);
            assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
            remaining.push(
                r.header("x-ratelimit-remaining")
                    .unwrap()
                    .parse::<u32>()
                    .unwrap(),
            );
            assert!(
                r.header("x-ratelimit-reset")
                    .unwrap()
                    .parse::<i64>()
                    .unwrap()
                    > 0
            );
        }
        assert_eq!(remaining, vec![4, 3, 2, 1, 0]);
        let over = verify(&s, &key);
        assert_eq!(
            (over.status, over.error_code().as_str()),
            (429, "throttled")
        );
        assert!(over.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    });
}
