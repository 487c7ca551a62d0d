//! Temporary passwords (contract 10.6): an administrator sets one, the user's sessions end, and
//! the sessions it opens reach only the password change and `me` until the user chooses their
//! own; the first owner's generated password is one too.

use serde_json::json;

use super::api_keys::{create_key, verify};
use super::support::{server, Resp, Server, ADMIN_EMAIL};

const ANA: &str = "ana@example.com";
const ANA_FIRST: &str = "amber-falcon-93";
const TEMPORARY: &str = "Temporary-cobalt-5512";

fn set_password(s: &Server, token: &str, id: i64, password: &str) -> Resp {
    s.post(&format!("/api/v1/users/{id}/set-password/"))
        .bearer(token)
        .json(&json!({ "password": password }))
}

fn refused_until_changed(r: Resp) {
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "password_change_required"),
        "{}",
        r.body
    );
}

#[test]
fn a_temporary_password_opens_only_the_password_change_until_the_user_chooses_their_own() {
    let s = Server::start();
    let owner = s.owner_token();
    s.create_user(ANA, "analyst", ANA_FIRST);
    let before = s.token(ANA, ANA_FIRST);
    let key = create_key(&s, &before, json!({"name": "ana's notebook"}));
    let key = key["key"].as_str().unwrap().to_string();
    let ana = s.user_id(&owner, ANA);

    let r = set_password(&s, &owner, ana, TEMPORARY);
    assert_eq!(r.status, 204, "{}", r.body);
    // Her sessions ended; her keys go on working (a key is not a session).
    assert_eq!(s.get("/api/auth/me/").bearer(&before).send().status, 401);
    assert_eq!(verify(&s, &key).status, 200);
    // The password she had is gone.
    assert_eq!(s.login(ANA, ANA_FIRST).status, 401);

    let login = s.login(ANA, TEMPORARY);
    assert_eq!(login.status, 200, "{}", login.body);
    let body = login.json();
    assert_eq!(body["password_change_required"], true);
    assert_eq!(body["user"]["password_change_required"], true);
    let temporary = body["access"].as_str().unwrap().to_string();

    let me = s.get("/api/auth/me/").bearer(&temporary).send();
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["password_change_required"], true);
    refused_until_changed(s.get("/api/v1/reports/").bearer(&temporary).send());
    refused_until_changed(s.get("/api/auth/api-keys/").bearer(&temporary).send());
    refused_until_changed(
        s.post("/api/auth/api-keys/")
            .bearer(&temporary)
            .json(&json!({"name": "sneaky"})),
    );
    refused_until_changed(s.get("/api/auth/sessions/").bearer(&temporary).send());
    refused_until_changed(s.get("/api/auth/mfa/").bearer(&temporary).send());

    // The change asks for the temporary password, then the same session works fully.
    let wrong = s.post("/api/auth/password/").bearer(&temporary).json(
        &json!({"current_password": "not-it-at-all-1", "new_password": "ana-own-choice-7741"}),
    );
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    let changed = s
        .post("/api/auth/password/")
        .bearer(&temporary)
        .json(&json!({"current_password": TEMPORARY, "new_password": "ana-own-choice-7741"}));
    assert_eq!(changed.status, 204, "{}", changed.body);
    assert_eq!(
        s.get("/api/v1/reports/").bearer(&temporary).send().status,
        200
    );
    let me = s.get("/api/auth/me/").bearer(&temporary).send().json();
    assert_eq!(me["password_change_required"], false);
    let again = s.login(ANA, "ana-own-choice-7741").json();
    assert_eq!(again["password_change_required"], false);

    // Audited as the contract names it, with whose password it was.
    let set: Vec<_> = s
        .audit()
        .into_iter()
        .filter(|e| e.action == "user.password_set")
        .collect();
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].target_id, Some(ana));
    assert!(set[0].details.contains(ANA), "{}", set[0].details);
}

#[test]
fn only_administrators_set_temporary_passwords_of_users_below_them_and_never_their_own() {
    let s = Server::start();
    let owner = s.owner_token();
    s.create_user(ANA, "analyst", ANA_FIRST);
    s.create_user("ada@example.com", "administrator", ANA_FIRST);
    s.create_user("abe@example.com", "administrator", ANA_FIRST);
    let abe = s.user_id(&owner, "abe@example.com");
    let ana = s.user_id(&owner, ANA);
    let owner_id = s.user_id(&owner, ADMIN_EMAIL);
    let ada_token = s.token("ada@example.com", ANA_FIRST);
    let ana_token = s.token(ANA, ANA_FIRST);

    let denied = |r: Resp| assert_eq!(r.status, 403, "{}", r.body);
    denied(set_password(&s, &ana_token, owner_id, TEMPORARY));
    denied(set_password(&s, &ada_token, owner_id, TEMPORARY));
    denied(set_password(&s, &owner, owner_id, TEMPORARY));
    // Not a peer's: that would hand their account over. The owner sets administrators'.
    denied(set_password(&s, &ada_token, abe, TEMPORARY));
    let key = create_key(&s, &owner, json!({"name": "admin tool"}));
    denied(set_password(
        &s,
        key["key"].as_str().unwrap(),
        ana,
        TEMPORARY,
    ));
    assert_eq!(set_password(&s, &owner, 999_999, TEMPORARY).status, 404);

    // The password rules of section 3, naming the field.
    let weak = set_password(&s, &ada_token, ana, "short");
    assert_eq!((weak.status, weak.error_code().as_str()), (400, "invalid"));
    assert!(
        weak.json()["errors"]["password"].is_array(),
        "{}",
        weak.body
    );
    let unknown = s
        .post(&format!("/api/v1/users/{ana}/set-password/"))
        .bearer(&ada_token)
        .json(&json!({"password": TEMPORARY, "force": true}));
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    // Nothing above changed Ana's password.
    assert_eq!(s.login(ANA, ANA_FIRST).status, 200);

    // Another organization's user is not found.
    s.create_organization("Other", "olga@other.example", ANA_FIRST);
    let olga = s.token("olga@other.example", ANA_FIRST);
    assert_eq!(set_password(&s, &olga, ana, TEMPORARY).status, 404);

    // The answer tells nothing of the user's passwords: her current one is taken like any.
    assert_eq!(set_password(&s, &ada_token, ana, ANA_FIRST).status, 204);
    assert_eq!(set_password(&s, &owner, abe, TEMPORARY).status, 204);
    assert_eq!(set_password(&s, &ada_token, ana, TEMPORARY).status, 204);
    assert_eq!(
        s.login(ANA, TEMPORARY).json()["password_change_required"],
        true
    );
}

#[test]
fn the_first_owners_generated_password_is_temporary() {
    let s = server()
        .env("CLARIBI_BOOTSTRAP__ADMIN_EMAIL", "")
        .env("CLARIBI_BOOTSTRAP__ADMIN_PASSWORD", "")
        .start();
    let generated = std::fs::read_to_string(s.data_dir().join("initial-admin-password")).unwrap();
    let login = s.login("admin@localhost", generated.trim());
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.json()["password_change_required"], true);
    let token = login.json()["access"].as_str().unwrap().to_string();
    refused_until_changed(s.get("/api/v1/users/").bearer(&token).send());
    let changed = s.post("/api/auth/password/").bearer(&token).json(
        &json!({"current_password": generated.trim(), "new_password": "owner-chose-this-9921"}),
    );
    assert_eq!(changed.status, 204, "{}", changed.body);
    assert_eq!(s.get("/api/v1/users/").bearer(&token).send().status, 200);
}
