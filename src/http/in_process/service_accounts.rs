//! Service accounts (contract 10.4): identities of the organization for machines, whose keys
//! act as them and outlive the people who made them.

use serde_json::{json, Value};

use super::api_keys::verify;
use super::support::{Resp, Server};

const ADA: &str = "ada@example.com";
const ADA_PASSWORD: &str = "amber-falcon-93";

fn create(s: &Server, token: &str, body: Value) -> Resp {
    s.post("/api/v1/service-accounts/")
        .bearer(token)
        .json(&body)
}

fn patch(s: &Server, token: &str, id: i64, body: Value) -> Resp {
    s.request("PATCH", &format!("/api/v1/service-accounts/{id}/"))
        .bearer(token)
        .json(&body)
}

fn key_of(s: &Server, token: &str, id: i64, body: Value) -> Resp {
    s.post(&format!("/api/v1/service-accounts/{id}/keys/"))
        .bearer(token)
        .json(&body)
}

/// A new service account's id.
fn made(s: &Server, token: &str, name: &str, role: &str) -> i64 {
    let r = create(s, token, json!({"name": name, "role": role}));
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_i64().unwrap()
}

/// A new key of the service account, its secret.
fn secret(s: &Server, token: &str, id: i64, body: Value) -> String {
    let r = key_of(s, token, id, body);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.json()["key"].as_str().unwrap().to_string()
}

#[test]
fn a_service_accounts_key_outlives_the_administrator_who_made_it() {
    let s = Server::start();
    let owner = s.owner_token();
    s.create_user(ADA, "administrator", ADA_PASSWORD);
    let ada = s.token(ADA, ADA_PASSWORD);

    let r = create(
        &s,
        &ada,
        json!({"name": "nightly ETL", "role": "analyst", "description": "loads the warehouse"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let account = r.json();
    let id = account["id"].as_i64().unwrap();
    assert_eq!(account["name"], "nightly ETL");
    assert_eq!(account["role"], "analyst");
    assert_eq!(account["description"], "loads the warehouse");
    assert_eq!(account["is_active"], true);
    assert_eq!(account["created_by"], s.user_id(&owner, ADA));
    assert_eq!(account["key_count"], 0);
    assert!(account["created_at"].is_string());

    let r = key_of(&s, &ada, id, json!({"name": "etl", "expires_in_days": 90}));
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    assert_eq!(
        created["service_account"],
        json!({"id": id, "name": "nightly ETL"})
    );
    assert_eq!(created["owner_email"], Value::Null);
    let key = created["key"].as_str().unwrap().to_string();

    // The key acts as the service account: no user, its role's permissions.
    let who = verify(&s, &key);
    assert_eq!(who.status, 200, "{}", who.body);
    let who = who.json();
    assert_eq!(who["auth_method"], "api_key");
    assert_eq!(who["user"], Value::Null);
    assert_eq!(
        who["service_account"],
        json!({"id": id, "name": "nightly ETL"})
    );
    let permissions = who["permissions"].as_array().unwrap();
    assert!(permissions.contains(&json!("dashboards:create")));
    assert!(!permissions.contains(&json!("users:manage")));
    assert_eq!(s.get("/api/v1/dashboards/").bearer(&key).send().status, 200);
    // `me` answers any credential: the account, with no address; it is not among the users.
    let me = s.get("/api/auth/me/").bearer(&key).send();
    assert_eq!(me.status, 200, "{}", me.body);
    let me = me.json();
    assert_eq!(
        (
            &me["id"],
            &me["name"],
            &me["email"],
            &me["service_account"],
            &me["role"]
        ),
        (
            &json!(id),
            &json!("nightly ETL"),
            &json!(""),
            &json!(true),
            &json!("analyst")
        )
    );
    let users = s.get("/api/v1/users/").bearer(&owner).send().json();
    assert_eq!(users["count"], 2, "{users}");
    assert_eq!(
        s.get(&format!("/api/v1/users/{id}/"))
            .bearer(&owner)
            .send()
            .status,
        404
    );

    // Ada leaves: her own sessions and keys end; the pipeline's key goes on working.
    let ada_id = s.user_id(&owner, ADA);
    let r = s
        .request("PATCH", &format!("/api/v1/users/{ada_id}/"))
        .bearer(&owner)
        .json(&json!({"is_active": false}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get("/api/auth/me/").bearer(&ada).send().status, 401);
    assert_eq!(verify(&s, &key).status, 200);
    let listed = s
        .get("/api/v1/service-accounts/")
        .bearer(&owner)
        .send()
        .json();
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["results"][0]["key_count"], 1);

    // What its key does is audited as the service account's.
    let made = s
        .post("/api/v1/dashboards/")
        .bearer(&key)
        .json(&json!({"name": "loads"}));
    assert_eq!(made.status, 201, "{}", made.body);
    let dashboard = made.json()["id"].as_i64().unwrap();
    let deleted = s
        .request("DELETE", &format!("/api/v1/dashboards/{dashboard}/"))
        .bearer(&key)
        .send();
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let audit = s
        .get("/api/v1/audit-logs/?action=dashboard.deleted")
        .bearer(&owner)
        .send()
        .json();
    let entry = &audit["results"][0];
    assert_eq!(entry["service_account_id"], id, "{entry}");
    assert_eq!(entry["user_email"], Value::Null, "{entry}");
    // The CSV export and the stream to the SIEM carry it too.
    let csv = s
        .get("/api/v1/audit-logs/export/?format=csv&action=dashboard.deleted")
        .bearer(&owner)
        .send();
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(
        lines[0].ends_with(",user_email,service_account_id"),
        "{}",
        csv.body
    );
    assert!(lines[1].ends_with(&format!(",,{id}")), "{}", csv.body);
    let streamed = s
        .audit()
        .into_iter()
        .find(|e| e.action == "dashboard.deleted")
        .unwrap();
    assert_eq!(streamed.service_account_id, Some(id));
    let audit = s
        .get("/api/v1/audit-logs/?action=service_account.created")
        .bearer(&owner)
        .send()
        .json();
    assert_eq!(audit["count"], 1, "{audit}");
}

#[test]
fn deactivating_or_deleting_a_service_account_revokes_its_keys_at_once() {
    let s = Server::start();
    let owner = s.owner_token();
    let id = made(&s, &owner, "exporter", "viewer");
    let first = secret(&s, &owner, id, json!({"name": "one"}));
    let second = secret(&s, &owner, id, json!({"name": "two"}));
    assert_eq!(verify(&s, &first).status, 200);

    let r = patch(&s, &owner, id, json!({"is_active": false}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["is_active"], false);
    assert_eq!(r.json()["key_count"], 0);
    for key in [&first, &second] {
        let refused = verify(&s, key);
        assert_eq!(
            (refused.status, refused.error_code().as_str()),
            (401, "api_key_revoked")
        );
    }
    let keys = s
        .get(&format!("/api/v1/service-accounts/{id}/keys/"))
        .bearer(&owner)
        .send()
        .json();
    assert_eq!(keys["count"], 2, "{keys}");
    assert!(keys["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["status"] == "revoked"));
    // No new key while it is deactivated; reactivated, its old keys stay revoked.
    assert_eq!(key_of(&s, &owner, id, json!({"name": "three"})).status, 409);
    assert_eq!(
        patch(&s, &owner, id, json!({"is_active": true})).status,
        200
    );
    assert_eq!(verify(&s, &first).status, 401);
    let third = secret(&s, &owner, id, json!({"name": "three"}));
    assert_eq!(verify(&s, &third).status, 200);

    let deleted = s
        .request("DELETE", &format!("/api/v1/service-accounts/{id}/"))
        .bearer(&owner)
        .send();
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(verify(&s, &third).status, 401);
    assert_eq!(
        s.get(&format!("/api/v1/service-accounts/{id}/"))
            .bearer(&owner)
            .send()
            .status,
        404
    );
    let listed = s
        .get("/api/v1/service-accounts/")
        .bearer(&owner)
        .send()
        .json();
    assert_eq!(listed["count"], 0, "{listed}");
    let actions: Vec<String> = s
        .audit()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("service_account."))
        .collect();
    assert_eq!(
        actions,
        [
            "service_account.created",
            "service_account.updated",
            "service_account.updated",
            "service_account.deleted"
        ]
    );
}

#[test]
fn a_role_change_applies_to_its_keys_at_once_and_never_above_the_caller() {
    let s = Server::start();
    let owner = s.owner_token();
    let id = made(&s, &owner, "reporter", "viewer");
    let key = secret(&s, &owner, id, json!({"name": "k"}));
    let generate = || {
        s.post("/api/v1/reports/generate/")
            .bearer(&key)
            .json(&json!({"title": "weekly", "prompt": "sales"}))
    };
    assert_eq!(generate().status, 403);
    let r = patch(
        &s,
        &owner,
        id,
        json!({"role": "analyst", "name": "weekly reporter"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["role"], "analyst");
    // Past the guard now: the body is what is wrong.
    assert_eq!(generate().status, 400);
    assert_eq!(
        verify(&s, &key).json()["service_account"]["name"],
        "weekly reporter"
    );

    // Scopes are checked against the service account's role, not the caller's.
    let viewer = made(&s, &owner, "reader", "viewer");
    let r = key_of(
        &s,
        &owner,
        viewer,
        json!({"name": "k", "scopes": ["reports:generate"]}),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "scope_exceeds_role")
    );

    s.create_user(ADA, "administrator", ADA_PASSWORD);
    let ada = s.token(ADA, ADA_PASSWORD);
    for (body, status) in [
        (json!({"name": "x", "role": "owner"}), 400),
        (json!({"name": "x", "role": "pilot"}), 400),
        (json!({"name": "", "role": "viewer"}), 400),
        (json!({"name": "x", "role": "viewer", "extra": 1}), 400),
        (json!({"name": "reader", "role": "viewer"}), 409),
    ] {
        let r = create(&s, &ada, body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.body);
    }
    // Only administrators, only with a session.
    s.create_user("al@example.com", "analyst", ADA_PASSWORD);
    let al = s.token("al@example.com", ADA_PASSWORD);
    assert_eq!(
        s.get("/api/v1/service-accounts/").bearer(&al).send().status,
        403
    );
    let owner_key = super::api_keys::create_key(&s, &owner, json!({"name": "admin key"}));
    let by_key = s
        .get("/api/v1/service-accounts/")
        .bearer(owner_key["key"].as_str().unwrap())
        .send();
    assert_eq!(
        (by_key.status, by_key.error_code().as_str()),
        (403, "interactive_session_required")
    );
}

#[test]
fn another_organizations_service_account_and_keys_are_not_found() {
    let s = Server::start();
    let owner = s.owner_token();
    let id = made(&s, &owner, "etl", "analyst");
    let key = s
        .post(&format!("/api/v1/service-accounts/{id}/keys/"))
        .bearer(&owner)
        .json(&json!({"name": "k"}))
        .json();
    let key_id = key["id"].as_i64().unwrap();
    s.create_organization("Globex", "boss@globex.example", ADA_PASSWORD);
    let boss = s.token("boss@globex.example", ADA_PASSWORD);
    for (method, path) in [
        ("GET", format!("/api/v1/service-accounts/{id}/")),
        ("DELETE", format!("/api/v1/service-accounts/{id}/")),
        ("GET", format!("/api/v1/service-accounts/{id}/keys/")),
        (
            "DELETE",
            format!("/api/v1/service-accounts/{id}/keys/{key_id}/"),
        ),
    ] {
        let r = s.request(method, &path).bearer(&boss).send();
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
    }
    // A key is revoked under its own account only.
    let other = made(&s, &owner, "other", "viewer");
    let r = s
        .request(
            "DELETE",
            &format!("/api/v1/service-accounts/{other}/keys/{key_id}/"),
        )
        .bearer(&owner)
        .send();
    assert_eq!(r.status, 404);
    let r = s
        .request(
            "DELETE",
            &format!("/api/v1/service-accounts/{id}/keys/{key_id}/"),
        )
        .bearer(&owner)
        .send();
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(verify(&s, key["key"].as_str().unwrap()).status, 401);
}
