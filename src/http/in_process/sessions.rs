//! Login, tokens, sessions and throttling (contract sections 3 and 4).

use std::time::Duration;

use serde_json::{json, Value};

use crate::ops::{self, Actor};

use super::support::{server, Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use super::{harness, harness_with};

fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Every audit entry: action, outcome, user id and details.
fn audit_actions(s: &Server) -> Vec<(String, String, Option<i64>, String)> {
    s.audit()
        .into_iter()
        .map(|e| (e.action, e.outcome, e.user_id, e.details))
        .collect()
}

#[test]
fn login_answers_tokens_and_the_user_object() {
    let s = Server::start();
    let login = s.login("Owner@Example.COM", ADMIN_PASSWORD);
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.header("cache-control"), Some("no-store"));
    let body = login.json();
    let user = &body["user"];
    for field in [
        "id",
        "email",
        "name",
        "organization",
        "organization_id",
        "role",
        "mfa_enabled",
    ] {
        assert!(!user[field].is_null(), "missing {field}");
    }
    let access = claims(body["access"].as_str().unwrap());
    let refresh = claims(body["refresh"].as_str().unwrap());
    assert_eq!(access["typ"], "access");
    assert_eq!(refresh["typ"], "refresh");
    assert_eq!(access["sid"], refresh["sid"]);
    assert_eq!(access["sub"], user["id"].to_string());
    assert_eq!(access["iss"], "claribi");
    let lifetime = access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3600);
    let refresh_lifetime = refresh["exp"].as_i64().unwrap() - refresh["iat"].as_i64().unwrap();
    assert_eq!(refresh_lifetime, 7 * 86400);
}

#[test]
fn credentials_are_required_and_checked() {
    let s = Server::start();
    let none = s.get("/api/auth/me/").send();
    assert_eq!(
        (none.status, none.error_code().as_str()),
        (401, "not_authenticated")
    );
    assert!(none
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    let garbage = s.get("/api/auth/me/").bearer("not.a.token").send();
    assert_eq!(
        (garbage.status, garbage.error_code().as_str()),
        (401, "token_not_valid")
    );

    let login = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
    let refresh = login["refresh"].as_str().unwrap();
    let as_access = s.get("/api/auth/me/").bearer(refresh).send();
    assert_eq!(
        as_access.status, 401,
        "a refresh token is not an access token"
    );
    let access = login["access"].as_str().unwrap();
    let as_refresh = s
        .post("/api/auth/token/refresh/")
        .json(&json!({"refresh": access}));
    assert_eq!(
        as_refresh.status, 401,
        "an access token is not a refresh token"
    );

    // alg=none with the same claims.
    use base64::Engine;
    let header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = access.split('.').nth(1).unwrap();
    let forged = format!("{header}.{payload}.");
    assert_eq!(s.get("/api/auth/me/").bearer(&forged).send().status, 401);
}

#[test]
fn refresh_tokens_work_until_logout() {
    let s = Server::start();
    let login = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
    let refresh = login["refresh"].as_str().unwrap();
    for _ in 0..3 {
        let r = s
            .post("/api/auth/token/refresh/")
            .json(&json!({"refresh": refresh}));
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.json().get("refresh").is_none());
        let access = r.json()["access"].as_str().unwrap().to_string();
        assert_eq!(s.get("/api/auth/me/").bearer(&access).send().status, 200);
    }
    let access = login["access"].as_str().unwrap();
    let out = s
        .post("/api/auth/logout/")
        .bearer(access)
        .json(&json!({"refresh": refresh}));
    assert_eq!(out.status, 204, "{}", out.body);
    let me = s.get("/api/auth/me/").bearer(access).send();
    assert_eq!(
        (me.status, me.error_code().as_str()),
        (401, "token_not_valid")
    );
    let again = s
        .post("/api/auth/token/refresh/")
        .json(&json!({"refresh": refresh}));
    assert_eq!(again.status, 401);
    assert!(audit_actions(&s).iter().any(|a| a.0 == "session.revoked"));
}

#[test]
fn with_rotation_a_reused_refresh_token_kills_the_session() {
    let s = server()
        .env("CLARIBI_AUTH__ROTATE_REFRESH_TOKENS", "true")
        .start();
    let login = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
    let first = login["refresh"].as_str().unwrap().to_string();
    let rotated = s
        .post("/api/auth/token/refresh/")
        .json(&json!({"refresh": first}));
    assert_eq!(rotated.status, 200);
    let second = rotated.json()["refresh"].as_str().unwrap().to_string();
    let access = rotated.json()["access"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    assert_eq!(s.get("/api/auth/me/").bearer(&access).send().status, 200);

    let reuse = s
        .post("/api/auth/token/refresh/")
        .json(&json!({"refresh": first}));
    assert_eq!(
        (reuse.status, reuse.error_code().as_str()),
        (401, "token_reused")
    );
    assert_eq!(s.get("/api/auth/me/").bearer(&access).send().status, 401);
    let original_access = login["access"].as_str().unwrap();
    assert_eq!(
        s.get("/api/auth/me/").bearer(original_access).send().status,
        401
    );
    let next = s
        .post("/api/auth/token/refresh/")
        .json(&json!({"refresh": second}));
    assert_eq!(next.status, 401, "every token of the session is dead");
    assert!(audit_actions(&s)
        .iter()
        .any(|a| a.0 == "token.reuse_detected"));
}

#[test]
fn sessions_are_listed_and_revoked_by_their_owner_only() {
    let s = Server::start();
    let a = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
    let b = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
    let a_access = a["access"].as_str().unwrap();
    let b_access = b["access"].as_str().unwrap();
    let list = s.get("/api/auth/sessions/").bearer(a_access).send();
    assert_eq!(list.status, 200);
    let list = list.json();
    assert_eq!(list["count"], 2);
    let a_sid = claims(a_access)["sid"].clone();
    let b_sid = claims(b_access)["sid"].as_i64().unwrap();
    let current: Vec<&Value> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], a_sid);
    for field in ["created_at", "last_seen_at", "ip", "user_agent"] {
        assert!(current[0].get(field).is_some(), "{field}");
    }

    s.create_user("other@example.com", "viewer", "other-password-5");
    let other = s.login("other@example.com", "other-password-5").json();
    let other_access = other["access"].as_str().unwrap();
    let foreign = s
        .request("DELETE", &format!("/api/auth/sessions/{b_sid}/"))
        .bearer(other_access)
        .send();
    assert_eq!(foreign.status, 404, "another user's session does not exist");

    let revoke = s
        .request("DELETE", &format!("/api/auth/sessions/{b_sid}/"))
        .bearer(a_access)
        .send();
    assert_eq!(revoke.status, 204);
    assert_eq!(s.get("/api/auth/me/").bearer(b_access).send().status, 401);
    assert_eq!(s.get("/api/auth/me/").bearer(a_access).send().status, 200);
}

/// 10.6: an administrator ends a user's lockout (on both databases: with PostgreSQL the counts
/// are the database's, and the server's copy of the lock goes with the user's feed entry).
#[test]
fn an_administrator_ends_a_lockout_and_the_user_signs_in_at_once() {
    let s = server()
        .env("CLARIBI_AUTH__MAX_FAILED_LOGINS", "3")
        .env("CLARIBI_AUTH__LOCKOUT", "15m")
        .start();
    let owner = s.owner_token();
    for (email, password) in [
        ("ana@example.com", "analyst-password-3"),
        ("ben@example.com", "analyst-password-4"),
        ("cy@example.com", "analyst-password-6"),
    ] {
        s.create_user(email, "analyst", password);
    }
    let id_of = |email: &str| -> i64 {
        s.get("/api/v1/users/?page_size=100")
            .bearer(&owner)
            .send()
            .json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let fail = |email: &str, times: usize| {
        for _ in 0..times {
            assert_eq!(s.login(email, "wrong-password-x").status, 401);
        }
    };
    let unlock = |token: &str, id: i64| {
        s.post(&format!("/api/v1/users/{id}/unlock/"))
            .bearer(token)
            .send()
    };
    for who in ["ana@example.com", "ben@example.com"] {
        fail(who, 3);
        let locked = s.login(who, "whatever-password");
        assert_eq!(locked.status, 429, "{who}: {}", locked.body);
        assert!(
            locked.json()["message"]
                .as_str()
                .unwrap()
                .ends_with("try again in 15 minutes"),
            "{}",
            locked.body
        );
    }
    let (ana, cy) = (id_of("ana@example.com"), id_of("cy@example.com"));

    // Only administrators, in a session, of the user's organization, at or above the user's
    // role, and never for themselves.
    s.create_user("al@example.com", "analyst", "analyst-password-5");
    let analyst = s.token("al@example.com", "analyst-password-5");
    let denied = unlock(&analyst, ana);
    assert_eq!(
        (denied.status, denied.error_code().as_str()),
        (403, "permission_denied")
    );
    let key = s
        .post("/api/auth/api-keys/")
        .bearer(&owner)
        .json(&json!({"name": "ci"}))
        .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let by_key = unlock(&key, ana);
    assert_eq!(
        (by_key.status, by_key.error_code().as_str()),
        (403, "interactive_session_required")
    );
    s.create_user("ad@example.com", "administrator", "admin-password-7");
    let admin = s.token("ad@example.com", "admin-password-7");
    let owner_id = id_of(ADMIN_EMAIL);
    assert_eq!(unlock(&admin, owner_id).status, 403, "the owner is above");
    let own = unlock(&admin, id_of("ad@example.com"));
    assert_eq!(
        (own.status, own.error_code().as_str()),
        (403, "permission_denied"),
        "{}",
        own.body
    );
    s.create_organization("Globex", "hank@globex.test", "globex-owner-pw-9");
    let stranger = s.token("hank@globex.test", "globex-owner-pw-9");
    assert_eq!(unlock(&stranger, ana).status, 404);
    assert_eq!(unlock(&owner, 999_999).status, 404);

    let done = unlock(&admin, ana);
    assert_eq!(done.status, 204, "{}", done.body);
    assert_eq!(s.login("ana@example.com", "analyst-password-3").status, 200);
    // Nobody else's lockout ended.
    assert_eq!(s.login("ben@example.com", "analyst-password-4").status, 429);
    // Failures short of a lockout are forgotten too: two before the unlock and two after are
    // not three.
    fail("cy@example.com", 2);
    assert_eq!(
        unlock(&owner, cy).status,
        204,
        "nothing locked: 204 all the same"
    );
    fail("cy@example.com", 2);
    assert_eq!(s.login("cy@example.com", "analyst-password-6").status, 200);
    let unlocked: Vec<_> = s
        .audit()
        .into_iter()
        .filter(|e| e.action == "user.unlocked")
        .collect();
    assert_eq!(unlocked.len(), 2);
    assert_eq!(unlocked[0].target_id, Some(ana));
    assert!(
        unlocked[0].details.contains("ana@example.com"),
        "{}",
        unlocked[0].details
    );
    assert_eq!(unlocked[1].target_id, Some(cy));
}

#[test]
fn throttling_locks_an_account_and_recovers_after_the_lockout() {
    let s = server()
        .env("CLARIBI_AUTH__MAX_FAILED_LOGINS", "3")
        .env("CLARIBI_AUTH__LOCKOUT", "3s")
        .start();
    for _ in 0..3 {
        assert_eq!(s.login(ADMIN_EMAIL, "wrong-password-x").status, 401);
    }
    let locked = s.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    assert_eq!(
        (locked.status, locked.error_code().as_str()),
        (429, "throttled")
    );
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3).contains(&retry), "{retry}");
    // The message says how long, in the words of the header's figure.
    let said = locked.json()["message"].as_str().unwrap().to_string();
    let plural = if retry == 1 { "" } else { "s" };
    assert!(
        said.ends_with(&format!("try again in {retry} second{plural}")),
        "{said}"
    );
    std::thread::sleep(Duration::from_secs(retry + 1));
    assert_eq!(s.login(ADMIN_EMAIL, ADMIN_PASSWORD).status, 200);
    let actions = audit_actions(&s);
    assert!(actions
        .iter()
        .any(|a| a.0 == "login.throttled" && a.1 == "denied"));
    let failed = actions.iter().find(|a| a.0 == "login.failed").unwrap();
    assert_eq!(failed.2, Some(1), "the account's user id");
    assert!(failed.3.contains(ADMIN_EMAIL));
    for entry in &actions {
        assert!(!entry.3.contains("wrong-password-x") && !entry.3.contains(ADMIN_PASSWORD));
    }
}

#[test]
fn fifty_parallel_wrong_passwords_get_at_most_five_through() {
    let s = Server::start();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let guesses: Vec<_> = (0..50)
            .map(|i| {
                let s = &s;
                scope.spawn(move || s.login(ADMIN_EMAIL, &format!("guess-{i}-guess")).status)
            })
            .collect();
        guesses.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let judged = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(judged <= 5, "{judged} guesses were checked");
    assert_eq!(judged + throttled, 50, "{statuses:?}");
    assert_eq!(
        s.login(ADMIN_EMAIL, ADMIN_PASSWORD).status,
        429,
        "even the right password"
    );
}

#[test]
fn the_address_limit_spans_accounts() {
    let s = server()
        .env("CLARIBI_AUTH__MAX_FAILED_LOGINS_PER_ADDRESS", "4")
        .start();
    for i in 0..4 {
        assert_eq!(
            s.login(&format!("user{i}@example.com"), "whatever-pw-1")
                .status,
            401
        );
    }
    assert_eq!(s.login(ADMIN_EMAIL, ADMIN_PASSWORD).status, 429);
}

#[test]
fn an_email_longer_than_254_bytes_is_refused_at_login_naming_the_field() {
    let s = Server::start();
    let email = format!("{}@example.com", "a".repeat(250));
    let r = s
        .post("/api/auth/login/")
        .json(&json!({"email": email, "password": "whatever-1"}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["errors"]["email"].is_array(), "{}", r.body);
    assert!(!audit_actions(&s).iter().any(|a| a.0 == "login.failed"));
}

#[test]
fn wrong_passwords_in_a_session_count_towards_the_lockout() {
    let s = server().env("CLARIBI_AUTH__MAX_FAILED_LOGINS", "3").start();
    let token = s.owner_token();
    let change = |current: &str| {
        s.post("/api/auth/password/")
            .bearer(&token)
            .json(&json!({"current_password": current, "new_password": "another-password-77"}))
    };
    for _ in 0..3 {
        let r = change("a-wrong-guess-1");
        assert_eq!(r.status, 400);
        assert!(r.json()["errors"]["current_password"].is_array());
    }
    // The account is locked: the next guess, and even the right password, wait.
    assert_eq!(change(ADMIN_PASSWORD).status, 429);
    let login = s.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    assert_eq!(login.status, 429);
    assert!(login.header("retry-after").is_some());
    let disable = s
        .post("/api/auth/mfa/totp/disable/")
        .bearer(&token)
        .json(&json!({"password": ADMIN_PASSWORD, "code": "123456"}));
    assert!(
        disable.status == 429 || disable.status == 409,
        "{}",
        disable.body
    );
    let transfer = s
        .post("/api/v1/organization/transfer-ownership/")
        .bearer(&token)
        .json(&json!({"user_id": 999, "password": ADMIN_PASSWORD}));
    assert_eq!(transfer.status, 429, "{}", transfer.body);
}

#[test]
fn a_refused_login_is_audited_in_the_accounts_organization_once_a_minute() {
    let s = server().env("CLARIBI_AUTH__MAX_FAILED_LOGINS", "2").start();
    let owner_id = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json()["user"]["id"]
        .as_i64()
        .unwrap();
    for _ in 0..2 {
        assert_eq!(s.login(ADMIN_EMAIL, "not-the-password").status, 401);
    }
    for _ in 0..10 {
        assert_eq!(s.login(ADMIN_EMAIL, ADMIN_PASSWORD).status, 429);
    }
    let rows: Vec<_> = s
        .audit()
        .into_iter()
        .filter(|e| e.action == "login.throttled" && e.user_id == Some(owner_id))
        .map(|e| (e.organization_id, e.user_id, e.details))
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].0.is_some(), "no organization: {rows:?}");
    assert!(rows[0].2.contains(r#""refused":"1""#), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_checked_the_password_before_a_reset_opens_no_session() {
    let h = harness().await;
    let user = h
        .app
        .store
        .read(|c| {
            crate::store::users::find_by_email(
                c,
                &crate::domain::Email::parse(ADMIN_EMAIL).unwrap(),
            )
        })
        .await
        .unwrap()
        .unwrap();
    // The password is reset between the login's password check and its session insert.
    let hash = h
        .app
        .hasher
        .hash(crate::domain::Secret::new("another-pass-99".to_string()))
        .await
        .unwrap();
    ops::accounts::set_password(&h.app, &Actor::System("test"), user.id, hash, None)
        .await
        .unwrap();
    let epoch = user.session_epoch;
    let opened = ops::change(&h.app, &Actor::System("test"), move |c| {
        Ok(crate::store::users::may_open_session(c.tx, user.id, epoch)?)
    })
    .await
    .unwrap();
    assert!(
        !opened,
        "the epoch read with the old password must no longer open a session"
    );
    assert_eq!(h.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 401);
    assert_eq!(h.login(ADMIN_EMAIL, "another-pass-99").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_one_resets_their_own_mfa_and_no_key_resets_anyones() {
    let h = harness().await;
    let owner = h.owner().await;
    let me = h.call("GET", "/api/v1/auth/me/", Some(&owner), None).await;
    let own = format!("/api/v1/users/{}/reset-mfa/", me.body["id"]);
    let answer = h.call("POST", &own, Some(&owner), None).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.body["error"], "permission_denied");
    let audit = h
        .call(
            "GET",
            "/api/v1/audit-logs/?action=mfa.reset",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(audit.body["count"], 0, "{}", audit.body);

    // A key, whatever its scopes, is refused for its kind before its scopes are looked at.
    let unscoped = h.key(&owner, json!({"name": "all"})).await;
    let scoped = h
        .key(
            &owner,
            json!({"name": "reader", "scopes": ["reports:read"]}),
        )
        .await;
    let created = h
        .call(
            "POST",
            "/api/v1/users/",
            Some(&owner),
            Some(json!({"email": "ana@example.com", "password": "amber-falcon-77", "role": "viewer"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let other = format!("/api/v1/users/{}/reset-mfa/", created.body["id"]);
    for key in [&unscoped, &scoped] {
        let secret = key["key"].as_str().unwrap();
        for path in [&own, &other] {
            let answer = h.call("POST", path, Some(secret), None).await;
            assert_eq!(answer.status, 403, "{path}: {}", answer.body);
            assert_eq!(answer.body["error"], "interactive_session_required");
        }
    }
    // An administrator's session resets another user's MFA.
    assert_eq!(h.call("POST", &other, Some(&owner), None).await.status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_session_limit_a_login_ends_the_oldest_session() {
    let h = harness_with(&[("CLARIBI_AUTH__MAX_SESSIONS_PER_USER", "3")]).await;
    let mut logins = Vec::new();
    for _ in 0..5 {
        let answer = h.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        logins.push(answer.body);
    }
    let token = |n: usize, kind: &str| logins[n][kind].as_str().unwrap().to_string();
    // The two oldest ended at once: their access and refresh tokens are refused.
    for n in 0..2 {
        let me = h
            .call("GET", "/api/v1/auth/me/", Some(&token(n, "access")), None)
            .await;
        assert_eq!(me.status, 401, "session {n}: {}", me.body);
        let refresh = h
            .call(
                "POST",
                "/api/auth/token/refresh/",
                None,
                Some(json!({"refresh": token(n, "refresh")})),
            )
            .await;
        assert_eq!(refresh.status, 401, "session {n}: {}", refresh.body);
    }
    // The three newest live on.
    let newest = token(4, "access");
    for n in 2..5 {
        let me = h
            .call("GET", "/api/v1/auth/me/", Some(&token(n, "access")), None)
            .await;
        assert_eq!(me.status, 200, "session {n}: {}", me.body);
    }
    let listed = h
        .call("GET", "/api/v1/auth/sessions/", Some(&newest), None)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let live = listed.body["results"]
        .as_array()
        .or(listed.body.as_array())
        .map(Vec::len);
    assert_eq!(live, Some(3), "{}", listed.body);
    // Each ending is audited with its reason.
    let audit = h
        .call(
            "GET",
            "/api/v1/audit-logs/?action=session.revoked",
            Some(&newest),
            None,
        )
        .await;
    assert_eq!(audit.body["count"], 2, "{}", audit.body);
    for entry in audit.body["results"].as_array().unwrap() {
        assert_eq!(entry["details"]["reason"], "limit", "{entry}");
    }
}

/// The code of an authenticator app holding `secret`, `offset_steps` steps of 30 s from now.
pub(super) fn totp_at(secret: &str, offset_steps: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    )
    .generate((crate::domain::now() + offset_steps * 30) as u64)
}

/// Contract 10.6: `GET /api/auth/mfa/` names the second factors that are on and counts the
/// recovery codes left; only a person's session reads it.
#[test]
fn the_account_shows_its_second_factors_and_the_recovery_codes_left() {
    let s = Server::start();
    let token = s.owner_token();
    let status = |token: &str| s.get("/api/auth/mfa/").bearer(token).send();
    let off = status(&token);
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(off.header("cache-control"), Some("no-store"));
    assert_eq!(off.json(), json!({"methods": [], "recovery_codes_left": 0}));

    let setup = s.post("/api/auth/mfa/totp/setup/").bearer(&token).send();
    let secret = setup.json()["secret"].as_str().unwrap().to_string();
    assert_eq!(
        status(&token).json()["methods"],
        json!([]),
        "enrolment started is not MFA on"
    );
    let confirm = s
        .post("/api/auth/mfa/totp/confirm/")
        .bearer(&token)
        .json(&json!({"code": totp_at(&secret, 0)}));
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let codes = confirm.json()["recovery_codes"].clone();
    assert_eq!(
        status(&token).json(),
        json!({"methods": ["totp"], "recovery_codes_left": 10})
    );
    let recovered = s.post("/api/auth/login/").json(&json!({
        "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "recovery_code": codes[0]
    }));
    assert_eq!(recovered.status, 200, "{}", recovered.body);
    assert_eq!(status(&token).json()["recovery_codes_left"], 9);
    // The prefix /api/v1/ answers the same.
    assert_eq!(
        s.get("/api/v1/auth/mfa").bearer(&token).send().json()["recovery_codes_left"],
        9
    );

    let key = super::api_keys::create_key(&s, &token, json!({"name": "etl"}));
    let by_key = status(key["key"].as_str().unwrap());
    assert_eq!(
        (by_key.status, by_key.error_code().as_str()),
        (403, "interactive_session_required")
    );
    let anonymous = s.get("/api/auth/mfa/").send();
    assert_eq!(anonymous.status, 401);
}

/// Contract 10.6: new recovery codes take the password and a code; the old ones stop working.
#[test]
fn new_recovery_codes_take_the_password_and_a_code_and_end_the_old_ones() {
    let s = Server::start();
    let token = s.owner_token();
    let regenerate = |password: &str, code: &str| {
        s.post("/api/auth/mfa/recovery-codes/")
            .bearer(&token)
            .json(&json!({"password": password, "code": code}))
    };
    let off = regenerate(ADMIN_PASSWORD, "123456");
    assert_eq!((off.status, off.error_code().as_str()), (409, "conflict"));

    let secret = s
        .post("/api/auth/mfa/totp/setup/")
        .bearer(&token)
        .send()
        .json()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let first = s
        .post("/api/auth/mfa/totp/confirm/")
        .bearer(&token)
        .json(&json!({"code": totp_at(&secret, 0)}))
        .json()["recovery_codes"]
        .clone();

    let wrong_password = regenerate("not-the-password-1", &totp_at(&secret, 1));
    assert_eq!(wrong_password.status, 400, "{}", wrong_password.body);
    assert!(wrong_password.json()["errors"]["password"].is_array());
    let wrong_code = regenerate(ADMIN_PASSWORD, "000000");
    assert_eq!(
        (wrong_code.status, wrong_code.error_code().as_str()),
        (400, "mfa_invalid")
    );
    // Both count as failed logins of the account.
    let failed: Vec<String> = audit_actions(&s)
        .into_iter()
        .filter(|a| a.0 == "login.failed")
        .map(|a| a.3)
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().all(|d| d.contains(r#""check":"password""#)));

    let code = totp_at(&secret, 1);
    let renewed = regenerate(ADMIN_PASSWORD, &code);
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let replayed = regenerate(ADMIN_PASSWORD, &code);
    assert_eq!(
        (replayed.status, replayed.error_code().as_str()),
        (400, "mfa_invalid"),
        "a code works once"
    );
    assert_eq!(renewed.header("cache-control"), Some("no-store"));
    let codes = renewed.json()["recovery_codes"].clone();
    assert_eq!(codes.as_array().unwrap().len(), 10);
    assert_ne!(codes, first);
    let login = |code: &Value| {
        s.post("/api/auth/login/").json(&json!({
            "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "recovery_code": code
        }))
    };
    assert_eq!(login(&first[1]).status, 401, "an old code no longer works");
    assert_eq!(login(&codes[0]).status, 200);
    assert_eq!(
        s.get("/api/auth/mfa/").bearer(&token).send().json()["recovery_codes_left"],
        9
    );
    assert!(audit_actions(&s)
        .iter()
        .any(|a| a.0 == "mfa.recovery_codes_regenerated" && a.2 == Some(1)));

    let key = super::api_keys::create_key(&s, &token, json!({"name": "etl"}));
    let by_key = s
        .post("/api/auth/mfa/recovery-codes/")
        .bearer(key["key"].as_str().unwrap())
        .json(&json!({"password": ADMIN_PASSWORD, "code": "123456"}));
    assert_eq!(
        (by_key.status, by_key.error_code().as_str()),
        (403, "interactive_session_required")
    );
}
