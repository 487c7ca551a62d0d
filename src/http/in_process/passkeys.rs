//! Passkeys (contract 10.3), with a software authenticator (`authenticator.rs`) standing where
//! the browser and the security key stand: registration, the second factor of a password
//! login, sign-in without a password, clone detection, removal and the policy.

use serde_json::{json, Value};

use super::api_keys::create_key;
use super::authenticator::Authenticator;
use super::sessions::totp_at;
use super::support::{server, Resp, Server, ADMIN_EMAIL, ADMIN_PASSWORD};

const ORIGIN: &str = "https://bi.example.com";
const ADA: &str = "ada@example.com";
const PASSWORD: &str = "amber-falcon-93";

fn start() -> Server {
    server()
        .env("CLARIBI_SERVER__PUBLIC_URL", &format!("{ORIGIN}/"))
        .start()
}

fn begin(s: &Server, token: &str, passwordless: bool) -> Value {
    let r = s
        .post("/api/auth/mfa/webauthn/register/begin/")
        .bearer(token)
        .json(&json!({"passwordless": passwordless}));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// Registers a passkey of `authenticator` for the session's user; answers the passkey.
fn register(
    s: &Server,
    token: &str,
    authenticator: &mut Authenticator,
    name: &str,
    passwordless: bool,
) -> Value {
    let begun = begin(s, token, passwordless);
    let credential = authenticator.create(&begun["publicKey"]);
    let r = s
        .post("/api/auth/mfa/webauthn/register/finish/")
        .bearer(token)
        .json(&json!({"challenge_id": begun["challenge_id"], "name": name,
                      "credential": credential}));
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

fn actions(s: &Server) -> Vec<String> {
    s.audit().into_iter().map(|e| e.action).collect()
}

/// A password login answered `mfa_required`, and the passkey ceremony it offers.
fn second_factor(s: &Server, email: &str, password: &str) -> Value {
    let r = s.login(email, password);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "mfa_required"),
        "{}",
        r.body
    );
    r.json()
}

/// The login again, answering the ceremony of `asked` (a `mfa_required` answer) with
/// `credential`.
fn login_with(s: &Server, email: &str, password: &str, asked: &Value, credential: Value) -> Resp {
    let webauthn =
        json!({"challenge_id": asked["webauthn"]["challenge_id"], "credential": credential});
    s.post("/api/auth/login/")
        .json(&json!({"email": email, "password": password, "webauthn": webauthn}))
}

#[test]
fn passkeys_need_the_public_url_and_an_interactive_session() {
    let s = Server::start();
    let owner = s.owner_token();
    for path in [
        "/api/auth/mfa/webauthn/register/begin/",
        "/api/auth/passkey/begin/",
    ] {
        let r = s.post(path).bearer(&owner).send();
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (409, "conflict"),
            "{path}: {}",
            r.body
        );
        assert!(r.json()["message"]
            .as_str()
            .unwrap()
            .contains("server.public_url"));
    }
    let s = start();
    let owner = s.owner_token();
    let key = create_key(&s, &owner, json!({"name": "etl"}))["key"]
        .as_str()
        .unwrap()
        .to_string();
    for (method, path) in [
        ("POST", "/api/auth/mfa/webauthn/register/begin/"),
        ("POST", "/api/auth/mfa/webauthn/register/finish/"),
        ("GET", "/api/auth/mfa/webauthn/"),
        ("DELETE", "/api/auth/mfa/webauthn/1/"),
    ] {
        let r = s.request(method, path).bearer(&key).json(&json!({}));
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (403, "interactive_session_required"),
            "{method} {path}: {}",
            r.body
        );
    }
}

#[test]
fn a_registered_passkey_is_listed_and_turns_mfa_on() {
    let s = start();
    let owner = s.owner_token();
    let mut authenticator = Authenticator::new(ORIGIN);
    let begun = begin(&s, &owner, false);
    let options = &begun["publicKey"];
    assert_eq!(options["rp"]["id"], "bi.example.com", "{options}");
    assert_eq!(options["user"]["name"], ADMIN_EMAIL);
    assert!(options["challenge"].as_str().is_some_and(|c| c.len() >= 43));

    // What the answer must be: a name, a credential of this challenge.
    let credential = authenticator.create(options);
    for (body, field) in [
        (
            json!({"challenge_id": begun["challenge_id"], "name": "", "credential": credential}),
            "name",
        ),
        (
            json!({"challenge_id": begun["challenge_id"], "name": "Key", "credential": {"id": 1}}),
            "credential",
        ),
    ] {
        let r = s
            .post("/api/auth/mfa/webauthn/register/finish/")
            .bearer(&owner)
            .json(&body);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.json()["errors"][field].is_array(), "{}", r.body);
    }
    let made = s
        .post("/api/auth/mfa/webauthn/register/finish/")
        .bearer(&owner)
        .json(
            &json!({"challenge_id": begun["challenge_id"], "name": "  YubiKey 5  ",
                      "credential": credential}),
        );
    assert_eq!(made.status, 201, "{}", made.body);
    let made = made.json();
    assert_eq!(made["name"], "YubiKey 5");
    assert_eq!(made["passwordless"], false);
    assert!(made["created_at"].is_string());
    assert_eq!(made["last_used_at"], Value::Null);
    let keys: Vec<&str> = made
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["created_at", "id", "last_used_at", "name", "passwordless"]
    );

    // A challenge is finished once.
    let again = s
        .post("/api/auth/mfa/webauthn/register/finish/")
        .bearer(&owner)
        .json(
            &json!({"challenge_id": begun["challenge_id"], "name": "Again",
                      "credential": credential}),
        );
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.json()["errors"]["challenge_id"].is_array());

    let listed = s.get("/api/auth/mfa/webauthn/").bearer(&owner).send();
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.json()["count"], 1);
    assert_eq!(listed.json()["results"][0]["id"], made["id"]);
    let me = s.get("/api/auth/me/").bearer(&owner).send().json();
    assert_eq!(me["mfa_enabled"], true, "{me}");
    let status = s.get("/api/auth/mfa/").bearer(&owner).send().json();
    assert_eq!(status["methods"], json!(["webauthn"]), "{status}");
    assert!(actions(&s).contains(&"mfa.webauthn_added".to_string()));

    // The same authenticator cannot be registered twice: the options exclude it.
    let next = begin(&s, &owner, false);
    let excluded = next["publicKey"]["excludeCredentials"].as_array().unwrap();
    assert_eq!(excluded.len(), 1, "{next}");
}

#[test]
fn a_passkey_is_the_second_factor_of_a_password_login() {
    let s = start();
    s.create_user(ADA, "analyst", PASSWORD);
    let ada = s.token(ADA, PASSWORD);
    let mut authenticator = Authenticator::new(ORIGIN);
    register(&s, &ada, &mut authenticator, "Laptop", false);

    let asked = second_factor(&s, ADA, PASSWORD);
    assert_eq!(asked["mfa_required"], true);
    assert_eq!(asked["methods"], json!(["webauthn"]), "{asked}");
    let ceremony = &asked["webauthn"];
    assert!(ceremony["challenge_id"].is_string(), "{asked}");
    let allowed = ceremony["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(allowed.len(), 1, "{asked}");

    let credential = authenticator.get(&ceremony["publicKey"], 0);
    let r = login_with(&s, ADA, PASSWORD, &asked, credential.clone());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["access"].is_string());
    assert_eq!(r.json()["user"]["mfa_enabled"], true);

    // The same answer again: the ceremony was used.
    let replayed = login_with(&s, ADA, PASSWORD, &asked, credential);
    assert_eq!(
        (replayed.status, replayed.error_code().as_str()),
        (401, "mfa_invalid"),
        "{}",
        replayed.body
    );
    // Another account's passkey does not answer for this one.
    let owner = s.owner_token();
    let mut other = Authenticator::new(ORIGIN);
    register(&s, &owner, &mut other, "Owner's key", false);
    let asked = second_factor(&s, ADA, PASSWORD);
    let options = asked["webauthn"]["publicKey"].clone().with_allowed(&other);
    let r = login_with(&s, ADA, PASSWORD, &asked, other.get(&options, 0));
    assert_eq!(r.error_code(), "mfa_invalid", "{}", r.body);
    // A ceremony past its five minutes is over.
    let asked = second_factor(&s, ADA, PASSWORD);
    s.execute("UPDATE webauthn_challenges SET expires_at = ?1", &[1]);
    let credential = authenticator.get(&asked["webauthn"]["publicKey"], 0);
    let r = login_with(&s, ADA, PASSWORD, &asked, credential);
    assert_eq!(r.error_code(), "mfa_invalid", "{}", r.body);
    let listed = s.get("/api/auth/mfa/webauthn/").bearer(&ada).send().json();
    assert!(listed["results"][0]["last_used_at"].is_string(), "{listed}");
}

/// Lets a test present a credential the options did not list (an attacker's own key).
trait WithAllowed {
    fn with_allowed(self, authenticator: &Authenticator) -> Value;
}

impl WithAllowed for Value {
    fn with_allowed(mut self, authenticator: &Authenticator) -> Value {
        use base64::Engine as _;
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(&authenticator.credentials[0].id);
        self["allowCredentials"] = json!([{"type": "public-key", "id": id}]);
        self
    }
}

#[test]
fn a_signature_counter_that_goes_backwards_refuses_the_sign_in() {
    let s = start();
    s.create_user(ADA, "analyst", PASSWORD);
    let ada = s.token(ADA, PASSWORD);
    let mut authenticator = Authenticator::new(ORIGIN);
    register(&s, &ada, &mut authenticator, "Key", false);
    for _ in 0..2 {
        let asked = second_factor(&s, ADA, PASSWORD);
        let credential = authenticator.get(&asked["webauthn"]["publicKey"], 0);
        let r = login_with(&s, ADA, PASSWORD, &asked, credential);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // A copy of the key that signed once: its counter is behind the stored one.
    authenticator.credentials[0].counter = 1;
    let asked = second_factor(&s, ADA, PASSWORD);
    let copied = authenticator.sign(&asked["webauthn"]["publicKey"], 0);
    let r = login_with(&s, ADA, PASSWORD, &asked, copied);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "mfa_invalid"),
        "{}",
        r.body
    );
    let audit = s.audit();
    let suspected = audit
        .iter()
        .find(|e| e.action == "mfa.webauthn_clone_suspected")
        .expect("the clone is audited");
    assert_eq!(suspected.outcome, "denied");
    assert!(suspected.user_id.is_some());
    // The same counter value twice is no better.
    let asked = second_factor(&s, ADA, PASSWORD);
    authenticator.credentials[0].counter = 2;
    let replayed = authenticator.sign(&asked["webauthn"]["publicKey"], 0);
    let r = login_with(&s, ADA, PASSWORD, &asked, replayed);
    assert_eq!(r.error_code(), "mfa_invalid", "{}", r.body);
}

fn passkey_sign_in(s: &Server, authenticator: &mut Authenticator, index: usize) -> Resp {
    let begun = s.post("/api/auth/passkey/begin/").send();
    assert_eq!(begun.status, 200, "{}", begun.body);
    let begun = begun.json();
    assert_eq!(
        begun["publicKey"]["allowCredentials"]
            .as_array()
            .map(Vec::len),
        Some(0),
        "{begun}"
    );
    assert_eq!(begun["publicKey"]["userVerification"], "required");
    let credential = authenticator.get(&begun["publicKey"], index);
    s.post("/api/auth/passkey/finish/")
        .json(&json!({"challenge_id": begun["challenge_id"], "credential": credential}))
}

#[test]
fn a_passkey_registered_for_it_signs_in_without_a_password() {
    let s = server()
        .env("CLARIBI_SERVER__PUBLIC_URL", ORIGIN)
        .env("CLARIBI_AUTH__MAX_FAILED_LOGINS", "3")
        .start();
    s.create_user(ADA, "analyst", PASSWORD);
    let ada = s.token(ADA, PASSWORD);
    let mut authenticator = Authenticator::new(ORIGIN);
    let begun = begin(&s, &ada, true);
    assert_eq!(
        begun["publicKey"]["authenticatorSelection"]["residentKey"],
        "required"
    );
    let made = register(&s, &ada, &mut authenticator, "Phone", true);
    assert_eq!(made["passwordless"], true);

    let r = passkey_sign_in(&s, &mut authenticator, 0);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(body["user"]["email"], ADA);
    assert!(body["access"].is_string() && body["refresh"].is_string());
    let me = s
        .get("/api/auth/me/")
        .bearer(body["access"].as_str().unwrap())
        .send();
    assert_eq!(me.status, 200);
    let login = s
        .audit()
        .into_iter()
        .rfind(|e| e.action == "login.succeeded")
        .unwrap();
    assert!(login.details.contains("passkey"), "{}", login.details);

    // A passkey registered as a second factor only does not sign in alone.
    let mut second = Authenticator::new(ORIGIN);
    register(&s, &ada, &mut second, "Key", false);
    second.credentials[0].resident = true;
    let r = passkey_sign_in(&s, &mut second, 0);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "invalid_credentials"),
        "{}",
        r.body
    );
    // Each refusal counts in the throttle like a failed login: the account locks.
    for _ in 0..2 {
        let r = passkey_sign_in(&s, &mut second, 0);
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = passkey_sign_in(&s, &mut authenticator, 0);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (429, "throttled"),
        "{}",
        r.body
    );
    assert!(r.header("retry-after").is_some());
}

#[test]
fn a_deactivated_user_or_a_stale_ceremony_does_not_sign_in() {
    let s = start();
    s.create_user(ADA, "analyst", PASSWORD);
    let ada = s.token(ADA, PASSWORD);
    let mut authenticator = Authenticator::new(ORIGIN);
    register(&s, &ada, &mut authenticator, "Phone", true);
    // A ceremony is single-use.
    let begun = s.post("/api/auth/passkey/begin/").send().json();
    let credential = authenticator.get(&begun["publicKey"], 0);
    let body = json!({"challenge_id": begun["challenge_id"], "credential": credential});
    assert_eq!(s.post("/api/auth/passkey/finish/").json(&body).status, 200);
    let again = s.post("/api/auth/passkey/finish/").json(&body);
    assert_eq!(again.error_code(), "invalid_credentials", "{}", again.body);
    // Malformed answers are named.
    let r = s
        .post("/api/auth/passkey/finish/")
        .json(&json!({"challenge_id": "x", "credential": "nope"}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["errors"]["credential"].is_array());
    // A deactivated user's passkey opens nothing.
    let owner = s.owner_token();
    let id = s.user_id(&owner, ADA);
    let r = s
        .request("PATCH", &format!("/api/v1/users/{id}/"))
        .bearer(&owner)
        .json(&json!({"is_active": false}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = passkey_sign_in(&s, &mut authenticator, 0);
    assert_eq!(r.error_code(), "invalid_credentials", "{}", r.body);
}

#[test]
fn removing_a_passkey_asks_for_the_password_and_keeps_a_factor_the_policy_requires() {
    let s = start();
    let owner = s.owner_token();
    s.create_user(ADA, "administrator", PASSWORD);
    let ada = s.token(ADA, PASSWORD);
    let mut authenticator = Authenticator::new(ORIGIN);
    let first = register(&s, &ada, &mut authenticator, "One", false);
    let second = register(&s, &ada, &mut authenticator, "Two", false);
    let path = |p: &Value| format!("/api/auth/mfa/webauthn/{}/", p["id"]);

    let wrong = s
        .request("DELETE", &path(&first))
        .bearer(&ada)
        .json(&json!({"password": "not-it-at-all"}));
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(wrong.json()["errors"]["password"].is_array());
    // Another user's passkey is not found.
    let theirs = s
        .request("DELETE", &path(&first))
        .bearer(&owner)
        .json(&json!({"password": ADMIN_PASSWORD}));
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    let gone = s
        .request("DELETE", &path(&first))
        .bearer(&ada)
        .json(&json!({"password": PASSWORD}));
    assert_eq!(gone.status, 204, "{}", gone.body);
    assert!(actions(&s).contains(&"mfa.webauthn_removed".to_string()));

    // The organization requires MFA of administrators: the last passkey stays.
    let set = s
        .request("PATCH", "/api/v1/organization/security-policy/")
        .bearer(&owner)
        .json(&json!({"require_mfa": "administrators"}));
    assert_eq!(set.status, 200, "{}", set.body);
    let asked = second_factor(&s, ADA, PASSWORD);
    let credential = authenticator.get(&asked["webauthn"]["publicKey"], 1);
    let ada = login_with(&s, ADA, PASSWORD, &asked, credential);
    assert_eq!(ada.status, 200, "{}", ada.body);
    assert_eq!(ada.json()["mfa_enrollment_required"], false);
    let ada = ada.json()["access"].as_str().unwrap().to_string();
    let kept = s
        .request("DELETE", &path(&second))
        .bearer(&ada)
        .json(&json!({"password": PASSWORD}));
    assert_eq!(
        (kept.status, kept.error_code().as_str()),
        (403, "policy_violation"),
        "{}",
        kept.body
    );
    // Without the policy it goes, and MFA with it.
    s.request("PATCH", "/api/v1/organization/security-policy/")
        .bearer(&owner)
        .json(&json!({"require_mfa": "none"}));
    let gone = s
        .request("DELETE", &path(&second))
        .bearer(&ada)
        .json(&json!({"password": PASSWORD}));
    assert_eq!(gone.status, 204, "{}", gone.body);
    let me = s.get("/api/auth/me/").bearer(&ada).send().json();
    assert_eq!(me["mfa_enabled"], false, "{me}");
    assert_eq!(s.login(ADA, PASSWORD).status, 200);
}

#[test]
fn totp_and_passkeys_together() {
    let s = start();
    s.create_user(ADA, "analyst", PASSWORD);
    let ada = s.token(ADA, PASSWORD);
    let setup = s
        .post("/api/auth/mfa/totp/setup/")
        .bearer(&ada)
        .send()
        .json();
    let secret = setup["secret"].as_str().unwrap().to_string();
    let confirmed = s
        .post("/api/auth/mfa/totp/confirm/")
        .bearer(&ada)
        .json(&json!({"code": totp_at(&secret, -1)}));
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let mut authenticator = Authenticator::new(ORIGIN);
    register(&s, &ada, &mut authenticator, "Key", false);
    let asked = second_factor(&s, ADA, PASSWORD);
    assert_eq!(
        asked["methods"],
        json!(["totp", "webauthn", "recovery_code"]),
        "{asked}"
    );
    // The authenticator app still works beside the passkey.
    let r = s
        .post("/api/auth/login/")
        .json(&json!({"email": ADA, "password": PASSWORD, "totp_code": totp_at(&secret, 0)}));
    assert_eq!(r.status, 200, "{}", r.body);
    // TOTP off: MFA stays on with the passkey, and a pending TOTP secret is no factor.
    let off = s
        .post("/api/auth/mfa/totp/disable/")
        .bearer(&ada)
        .json(&json!({"password": PASSWORD, "code": totp_at(&secret, 1)}));
    assert_eq!(off.status, 204, "{}", off.body);
    let status = s.get("/api/auth/mfa/").bearer(&ada).send().json();
    assert_eq!(status["methods"], json!(["webauthn"]), "{status}");
    assert_eq!(status["recovery_codes_left"], 10);
    let pending = s
        .post("/api/auth/mfa/totp/setup/")
        .bearer(&ada)
        .send()
        .json();
    let pending = pending["secret"].as_str().unwrap().to_string();
    let r = s
        .post("/api/auth/login/")
        .json(&json!({"email": ADA, "password": PASSWORD, "totp_code": totp_at(&pending, 0)}));
    assert_eq!(r.error_code(), "mfa_invalid", "{}", r.body);
    // New recovery codes with the password alone, for an account whose factor is a passkey.
    let codes = s
        .post("/api/auth/mfa/recovery-codes/")
        .bearer(&ada)
        .json(&json!({"password": PASSWORD}));
    assert_eq!(codes.status, 200, "{}", codes.body);
    // An administrator's reset takes every factor, passkeys too.
    let owner = s.owner_token();
    let id = s.user_id(&owner, ADA);
    let reset = s
        .post(&format!("/api/v1/users/{id}/reset-mfa/"))
        .bearer(&owner)
        .send();
    assert_eq!(reset.status, 204, "{}", reset.body);
    assert_eq!(s.login(ADA, PASSWORD).status, 200);
    let listed = s
        .get("/api/auth/mfa/webauthn/")
        .bearer(&s.token(ADA, PASSWORD))
        .send()
        .json();
    assert_eq!(listed["count"], 0, "{listed}");
}

#[test]
fn the_passwordless_ceremonies_waiting_are_bounded() {
    let s = start();
    s.execute(
        "WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 10000)
         INSERT INTO webauthn_challenges (id, purpose, state, expires_at)
         SELECT 'filler' || v, 'passkey', '{}', ?1 FROM n",
        &[super::support::unix_now() + 300],
    );
    let r = s.post("/api/auth/passkey/begin/").send();
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (503, "unavailable"),
        "{}",
        r.body
    );
    // Expired ones make room.
    s.execute("UPDATE webauthn_challenges SET expires_at = ?1", &[1]);
    assert_eq!(s.post("/api/auth/passkey/begin/").send().status, 200);
}

#[test]
fn a_session_opened_long_ago_confirms_the_password_before_adding_a_passkey() {
    let s = start();
    s.create_user(ADA, "analyst", PASSWORD);
    let ada = s.token(ADA, PASSWORD);
    s.execute("UPDATE sessions SET created_at = created_at - ?1", &[3600]);
    let path = "/api/auth/mfa/webauthn/register/begin/";
    let r = s.post(path).bearer(&ada).json(&json!({}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["errors"]["password"].is_array(), "{}", r.body);
    let r = s
        .post(path)
        .bearer(&ada)
        .json(&json!({"password": "not-the-password-1"}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["errors"]["password"].is_array(), "{}", r.body);
    let r = s
        .post(path)
        .bearer(&ada)
        .json(&json!({"password": PASSWORD, "passwordless": true}));
    assert_eq!(r.status, 200, "{}", r.body);
    let mut authenticator = Authenticator::new(ORIGIN);
    let credential = authenticator.create(&r.json()["publicKey"]);
    let made = s
        .post("/api/auth/mfa/webauthn/register/finish/")
        .bearer(&ada)
        .json(
            &json!({"challenge_id": r.json()["challenge_id"], "name": "Key",
                      "credential": credential}),
        );
    assert_eq!(made.status, 201, "{}", made.body);
    // Recovery codes without an authenticator app: only right after a passkey sign-in.
    let codes = s
        .post("/api/auth/mfa/recovery-codes/")
        .bearer(&ada)
        .json(&json!({"password": PASSWORD}));
    assert_eq!(
        (codes.status, codes.error_code().as_str()),
        (403, "permission_denied"),
        "{}",
        codes.body
    );
    let fresh = passkey_sign_in(&s, &mut authenticator, 0);
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    let codes = s
        .post("/api/auth/mfa/recovery-codes/")
        .bearer(fresh.json()["access"].as_str().unwrap())
        .json(&json!({"password": PASSWORD}));
    assert_eq!(codes.status, 200, "{}", codes.body);
}

#[test]
fn one_address_keeps_a_bounded_number_of_sign_ins_waiting() {
    let s = start();
    for n in 0..20 {
        let r = s.post("/api/auth/passkey/begin/").send();
        assert_eq!(r.status, 200, "begin {n}: {}", r.body);
    }
    let r = s.post("/api/auth/passkey/begin/").send();
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (429, "throttled"),
        "{}",
        r.body
    );
    assert!(r.header("retry-after").is_some());
    // A password login's ceremonies give way to the newest: never more than a few per account.
    let owner = s.owner_token();
    let mut authenticator = Authenticator::new(ORIGIN);
    register(&s, &owner, &mut authenticator, "Key", false);
    for _ in 0..5 {
        second_factor(&s, ADMIN_EMAIL, ADMIN_PASSWORD);
    }
    let waiting = s.execute(
        "UPDATE webauthn_challenges SET state = state WHERE purpose = 'login' AND user_id = ?1",
        &[1],
    );
    assert_eq!(waiting, 3);
}

#[test]
fn an_address_the_directory_serves_keeps_its_passkey_as_a_second_factor_only() {
    let s = start();
    let owner = s.owner_token();
    const DIRECTORY_USER: &str = "dee@example.org";
    s.create_user(DIRECTORY_USER, "analyst", PASSWORD);
    let dee = s.token(DIRECTORY_USER, PASSWORD);
    let r = s
        .post("/api/v1/organization/sso-providers/")
        .bearer(&owner)
        .json(&json!({
            "name": "Corporate directory", "kind": "ldap", "email_domains": ["example.org"],
            "url": "ldaps://127.0.0.1:9", "bind_dn": "cn=svc,dc=example,dc=org",
            "bind_password": "svc-pw", "user_base": "ou=people,dc=example,dc=org",
        }));
    assert_eq!(r.status, 201, "{}", r.body);
    let alone = s
        .post("/api/auth/mfa/webauthn/register/begin/")
        .bearer(&dee)
        .json(&json!({"passwordless": true}));
    assert_eq!(
        (alone.status, alone.error_code().as_str()),
        (409, "conflict"),
        "{}",
        alone.body
    );
    assert!(alone.json()["message"]
        .as_str()
        .unwrap()
        .contains("directory"));
    let second = s
        .post("/api/auth/mfa/webauthn/register/begin/")
        .bearer(&dee)
        .json(&json!({"passwordless": false}));
    assert_eq!(second.status, 200, "{}", second.body);
}
