//! An organization's security policy (contract 10.4): what it refuses, what it requires of a
//! login, what it lists as breaking it today, and that it revokes nothing on its own.

use serde_json::{json, Value};

use super::api_keys::{create_key, verify};
use super::support::{Resp, Server, ADMIN_EMAIL, ADMIN_PASSWORD};

const ADA: &str = "ada@example.com";
const AL: &str = "al@example.com";
const PASSWORD: &str = "amber-falcon-93";

fn set(s: &Server, token: &str, body: Value) -> Resp {
    s.request("PATCH", "/api/v1/organization/security-policy/")
        .bearer(token)
        .json(&body)
}

fn violated(r: &Resp, field: &str) {
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "policy_violation"),
        "{}",
        r.body
    );
    assert!(r.json()["errors"][field].is_array(), "{}", r.body);
}

#[test]
fn the_policy_reads_with_defaults_and_only_the_owner_changes_it() {
    let s = Server::start();
    let owner = s.owner_token();
    let read = s
        .get("/api/v1/organization/security-policy/")
        .bearer(&owner)
        .send();
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(
        read.json(),
        json!({
            "require_mfa": "none",
            "key_max_lifetime_days": null,
            "allow_never_expiring_keys": true,
            "require_ip_allowlist_for_write_scopes": false,
            "session_max_lifetime": null
        })
    );
    s.create_user(ADA, "administrator", PASSWORD);
    s.create_user(AL, "analyst", PASSWORD);
    let ada = s.token(ADA, PASSWORD);
    let al = s.token(AL, PASSWORD);
    assert_eq!(
        s.get("/api/v1/organization/security-policy/")
            .bearer(&ada)
            .send()
            .status,
        200
    );
    for token in [&ada, &al] {
        let r = set(&s, token, json!({"require_mfa": "everyone"}));
        assert_eq!(r.status, 403, "{}", r.body);
    }
    assert_eq!(
        s.get("/api/v1/organization/security-policy/violations/")
            .bearer(&al)
            .send()
            .status,
        403
    );
    for (body, field) in [
        (json!({"require_mfa": "some"}), "require_mfa"),
        (
            json!({"key_max_lifetime_days": 45}),
            "key_max_lifetime_days",
        ),
        (
            json!({"session_max_lifetime": "1s"}),
            "session_max_lifetime",
        ),
        (
            json!({"session_max_lifetime": "soon"}),
            "session_max_lifetime",
        ),
    ] {
        let r = set(&s, &owner, body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.json()["errors"][field].is_array(), "{}", r.body);
    }
    let r = set(
        &s,
        &owner,
        json!({"key_max_lifetime_days": 90, "session_max_lifetime": "12h"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["key_max_lifetime_days"], 90);
    assert_eq!(r.json()["session_max_lifetime"], "12h");
    // Absent fields stay; null clears.
    let r = set(&s, &owner, json!({"session_max_lifetime": null}));
    assert_eq!(r.json()["session_max_lifetime"], Value::Null);
    assert_eq!(r.json()["key_max_lifetime_days"], 90);

    let audit = s
        .get("/api/v1/audit-logs/?action=policy.changed")
        .bearer(&owner)
        .send()
        .json();
    assert_eq!(audit["count"], 2, "{audit}");
    let newest = &audit["results"][0]["details"];
    assert_eq!(newest["old"]["session_max_lifetime"], 43_200, "{newest}");
    assert_eq!(
        newest["new"]["session_max_lifetime"],
        Value::Null,
        "{newest}"
    );
}

#[test]
fn a_never_expiring_key_is_refused_and_the_existing_one_listed_not_revoked() {
    let s = Server::start();
    let owner = s.owner_token();
    let old = create_key(&s, &owner, json!({"name": "forever"}));
    let old_key = old["key"].as_str().unwrap().to_string();
    let r = set(&s, &owner, json!({"allow_never_expiring_keys": false}));
    assert_eq!(r.status, 200, "{}", r.body);

    let refused = s
        .post("/api/auth/api-keys/")
        .bearer(&owner)
        .json(&json!({"name": "another forever"}));
    violated(&refused, "expires_in_days");
    // The message names the rule; the field's error says it in words.
    let message = refused.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("allow_never_expiring_keys: ") && message.contains("never expire"),
        "{message}"
    );
    assert_eq!(
        s.post("/api/auth/api-keys/")
            .bearer(&owner)
            .json(&json!({"name": "quarterly", "expires_in_days": 90}))
            .status,
        201
    );
    // Nothing was revoked: the old key works, and is listed as breaking the policy.
    assert_eq!(verify(&s, &old_key).status, 200);
    let found = s
        .get("/api/v1/organization/security-policy/violations/")
        .bearer(&owner)
        .send();
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(
        found.json()["keys"],
        json!([{
            "id": old["id"], "prefix": old["prefix"], "owner": ADMIN_EMAIL,
            "owner_id": s.user_id(&owner, ADMIN_EMAIL), "service_account": false,
            "rule": "allow_never_expiring_keys"
        }])
    );
    // Nor can it be rotated into a new key that breaks it.
    let rotated = s
        .post(&format!("/api/auth/api-keys/{}/rotate/", old["id"]))
        .bearer(&owner)
        .send();
    violated(&rotated, "expires_in_days");
    assert_eq!(verify(&s, &old_key).status, 200);

    // A lifetime cap: longer keys refused, a service account's keys too.
    set(&s, &owner, json!({"key_max_lifetime_days": 30}));
    let long = s
        .post("/api/auth/api-keys/")
        .bearer(&owner)
        .json(&json!({"name": "yearly", "expires_in_days": 365}));
    violated(&long, "expires_in_days");
    let account = s
        .post("/api/v1/service-accounts/")
        .bearer(&owner)
        .json(&json!({"name": "etl", "role": "analyst"}))
        .json();
    let r = s
        .post(&format!("/api/v1/service-accounts/{}/keys/", account["id"]))
        .bearer(&owner)
        .json(&json!({"name": "etl", "expires_in_days": 90}));
    violated(&r, "expires_in_days");
    let keys = s
        .get("/api/v1/organization/security-policy/violations/")
        .bearer(&owner)
        .send()
        .json();
    // The 90-day key now breaks the cap too.
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "{keys}");
}

#[test]
fn a_key_that_may_write_needs_an_allowlist_under_the_policy() {
    let s = Server::start();
    let owner = s.owner_token();
    set(
        &s,
        &owner,
        json!({"require_ip_allowlist_for_write_scopes": true}),
    );
    let r = s
        .post("/api/auth/api-keys/")
        .bearer(&owner)
        .json(&json!({"name": "writer", "scopes": ["reports:generate"]}));
    violated(&r, "allowed_ips");
    let reader = s
        .post("/api/auth/api-keys/")
        .bearer(&owner)
        .json(&json!({"name": "reader", "scopes": ["reports:read"]}));
    assert_eq!(reader.status, 201, "{}", reader.body);
    let fenced = s.post("/api/auth/api-keys/").bearer(&owner).json(
        &json!({"name": "writer", "scopes": ["reports:generate"], "allowed_ips": ["10.0.0.0/8"]}),
    );
    assert_eq!(fenced.status, 201, "{}", fenced.body);
    // Taking its allowlist away would break the policy.
    let r = s
        .request(
            "PATCH",
            &format!("/api/auth/api-keys/{}/", fenced.json()["id"]),
        )
        .bearer(&owner)
        .json(&json!({"allowed_ips": null}));
    violated(&r, "allowed_ips");
}

#[test]
fn required_mfa_opens_only_enrolment_until_it_is_on() {
    let s = Server::start();
    let owner = s.owner_token();
    s.create_user(ADA, "administrator", PASSWORD);
    s.create_user(AL, "analyst", PASSWORD);
    let r = set(&s, &owner, json!({"require_mfa": "administrators"}));
    assert_eq!(r.status, 200, "{}", r.body);
    // Nothing ends on its own: the owner's session goes on; the people without MFA are listed.
    assert_eq!(s.get("/api/v1/reports/").bearer(&owner).send().status, 200);
    let listed = s
        .get("/api/v1/organization/security-policy/violations/")
        .bearer(&owner)
        .send()
        .json();
    let emails: Vec<&str> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            assert_eq!(u["rule"], "require_mfa");
            u["email"].as_str().unwrap()
        })
        .collect();
    assert_eq!(emails, [ADMIN_EMAIL, ADA]);

    // The analyst is not covered.
    let al = s.login(AL, PASSWORD).json();
    assert_eq!(al["mfa_enrollment_required"], false);
    // The administrator's new session opens enrolment and `me` only.
    let login = s.login(ADA, PASSWORD);
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.json()["mfa_enrollment_required"], true);
    let ada = login.json()["access"].as_str().unwrap().to_string();
    let me = s.get("/api/auth/me/").bearer(&ada).send();
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["mfa_enrollment_required"], true);
    for path in [
        "/api/v1/reports/",
        "/api/auth/api-keys/",
        "/api/auth/sessions/",
    ] {
        let r = s.get(path).bearer(&ada).send();
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (403, "mfa_enrollment_required"),
            "{path}"
        );
    }
    let setup = s.post("/api/auth/mfa/totp/setup/").bearer(&ada).send();
    assert_eq!(setup.status, 200, "{}", setup.body);
    let secret = setup.json()["secret"].as_str().unwrap().to_string();
    let confirm = s
        .post("/api/auth/mfa/totp/confirm/")
        .bearer(&ada)
        .json(&json!({"code": super::sessions::totp_at(&secret, 0)}));
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    // MFA on: the same session opens everything its role allows, and `me` says so.
    assert_eq!(s.get("/api/v1/reports/").bearer(&ada).send().status, 200);
    assert_eq!(
        s.get("/api/auth/me/").bearer(&ada).send().json()["mfa_enrollment_required"],
        false
    );
    // And it cannot be turned off while the policy requires it.
    let off = s
        .post("/api/auth/mfa/totp/disable/")
        .bearer(&ada)
        .json(&json!({"password": PASSWORD, "code": super::sessions::totp_at(&secret, 1)}));
    violated(&off, "require_mfa");
}

#[test]
fn a_session_lives_no_longer_than_the_policy_allows() {
    let s = Server::start();
    let owner = s.owner_token();
    set(&s, &owner, json!({"session_max_lifetime": "10m"}));
    let login = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
    let refresh = login["refresh"].as_str().unwrap();
    let claims = refresh.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!((590..=600).contains(&lifetime), "{claims}");
    let sessions = s
        .get("/api/auth/sessions/")
        .bearer(login["access"].as_str().unwrap())
        .send();
    assert_eq!(sessions.status, 200, "{}", sessions.body);
}
