//! API keys at the contract's level: validation, the header forms, what a key may not do,
//! administrators' view, rate limits (contract section 5). Revocation under concurrent use,
//! restarts and the CLI are end to end.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::ops;

use super::harness;
use super::support::{server, within_one_rate_window, Resp, Server};

pub(super) fn create_key(s: &Server, token: &str, body: Value) -> Value {
    let r = s.post("/api/auth/api-keys/").bearer(token).json(&body);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.json()
}

pub(super) fn verify(s: &Server, key: &str) -> Resp {
    s.get("/api/v1/auth/verify/").bearer(key).send()
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

#[test]
fn only_the_creator_rotates_a_key_and_reset_mfa_needs_a_session() {
    let s = Server::start();
    let owner = s.owner_token();
    let owner_key = create_key(&s, &owner, json!({"name": "owner's"}));
    s.create_user("adam@example.com", "administrator", "admin-password-5");
    let admin = s.login("adam@example.com", "admin-password-5").json()["access"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = s.get("/api/auth/api-keys/?all=true").bearer(&admin).send();
    assert_eq!(listed.json()["count"], 1);
    let rotate = s
        .post(&format!("/api/auth/api-keys/{}/rotate/", owner_key["id"]))
        .bearer(&admin)
        .send();
    assert_eq!(rotate.status, 403, "{}", rotate.body);
    assert_eq!(rotate.error_code(), "permission_denied");
    // The owner's key still acts as the owner, and only the owner holds it.
    let org = s
        .request("PATCH", "/api/v1/organization/")
        .bearer(owner_key["key"].as_str().unwrap())
        .json(&json!({"name": "Renamed with the owner's key"}));
    assert_eq!(org.status, 200);
    // Administrators may still revoke it.
    let revoke = s
        .request(
            "DELETE",
            &format!("/api/auth/api-keys/{}/", owner_key["id"]),
        )
        .bearer(&admin)
        .send();
    assert_eq!(revoke.status, 204);

    let admin_key = create_key(&s, &admin, json!({"name": "admin's"}));
    let users = s.get("/api/v1/users/").bearer(&owner).send().json();
    let adam = users["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "adam@example.com")
        .unwrap()["id"]
        .clone();
    let reset = s
        .post(&format!("/api/v1/users/{adam}/reset-mfa/"))
        .bearer(admin_key["key"].as_str().unwrap())
        .send();
    assert_eq!(reset.status, 403);
    assert_eq!(reset.error_code(), "interactive_session_required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_on_the_next_request_and_its_writes_fail() {
    let h = harness().await;
    let owner = h.owner().await;
    let key = h.key(&owner, json!({"name": "etl"})).await;
    let secret = key["key"].as_str().unwrap();
    assert_eq!(
        h.call("GET", "/api/v1/auth/verify/", Some(secret), None)
            .await
            .status,
        200
    );
    // A principal authenticated before the revoke, as a request waiting for its body is.
    let principal = h
        .app
        .auth
        .authenticate_key(
            secret,
            crate::domain::now(),
            &crate::auth::refusals::Client::default(),
        )
        .unwrap();
    let revoke = h
        .call(
            "DELETE",
            &format!("/api/auth/api-keys/{}/", key["id"]),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(revoke.status, 204);
    // Revoking it again answers only once every server has the revocation: it is a change
    // with a feed entry of its own, not a no-op that skips the confirmation.
    let before = h.app.store.read(crate::store::feed::head).await.unwrap();
    let again = h
        .call(
            "DELETE",
            &format!("/api/auth/api-keys/{}/", key["id"]),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(again.status, 204);
    let now = h.app.store.read(crate::store::feed::head).await.unwrap();
    assert_eq!(now, before + 1);
    let after = h
        .call("GET", "/api/v1/auth/verify/", Some(secret), None)
        .await;
    assert_eq!(
        (after.status, after.body["error"].as_str()),
        (401, Some("api_key_revoked"))
    );
    let authorized =
        crate::auth::principal::authorize(principal, crate::auth::principal::Guard::Any).unwrap();
    let caller = ops::Caller::new(authorized, ops::Client::default());
    let organization = caller.organization_id();
    let write = ops::change(&h.app, &caller.actor(), move |c| {
        Ok(crate::store::data_sources::create(
            c.tx,
            organization,
            "late",
            "file",
            1,
        )?)
    })
    .await;
    assert!(matches!(write, Err(ApiError::ApiKeyRevoked)), "{write:?}");
    let sources = h
        .call("GET", "/api/v1/data-sources/", Some(&owner), None)
        .await;
    assert_eq!(sources.body["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_rotated_once_and_only_by_its_creator() {
    let h = harness().await;
    let owner = h.owner().await;
    let key = h
        .key(&owner, json!({"name": "ci", "scopes": ["reports:read"]}))
        .await;
    let path = format!("/api/auth/api-keys/{}/rotate/", key["id"]);
    let rotated = h.call("POST", &path, Some(&owner), None).await;
    assert_eq!(rotated.status, 201);
    assert_eq!(rotated.body["scopes"], json!(["reports:read"]));
    assert_eq!(h.call("POST", &path, Some(&owner), None).await.status, 409);

    let made = h
        .call(
            "POST",
            "/api/v1/users/",
            Some(&owner),
            Some(json!({"email": "adam@example.com", "password": "admin-password-5", "role": "administrator"})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let admin = h.login("adam@example.com", "admin-password-5").await.body["access"]
        .as_str()
        .unwrap()
        .to_string();
    let successor = format!("/api/auth/api-keys/{}/rotate/", rotated.body["id"]);
    let refused = h.call("POST", &successor, Some(&admin), None).await;
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (403, Some("permission_denied"))
    );
}
