//! Login, tokens, sessions, passwords, MFA and throttling (issue: sessions).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{server, Server, ADMIN_EMAIL, ADMIN_PASSWORD, P};

pub fn totp_at(secret: &str, offset_steps: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .unwrap();
    let totp = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    totp.generate((now + offset_steps * 30) as u64)
}

fn audit_actions(s: &Server) -> Vec<(String, String, Option<i64>, String)> {
    s.sql()
        .rows(
            "SELECT action, outcome, user_id, details FROM audit_log ORDER BY id",
            &[],
        )
        .into_iter()
        .map(|r| (r[0].text(), r[1].text(), r[2].opt_int(), r[3].text()))
        .collect()
}

#[test]
fn wrong_email_wrong_password_and_deactivated_look_the_same() {
    let s = server().production_hashing().start();
    let unknown = s.login("nobody@example.com", ADMIN_PASSWORD);
    let wrong = s.login(ADMIN_EMAIL, "not-the-password");
    for r in [&unknown, &wrong] {
        assert_eq!(r.status, 401);
        assert_eq!(r.error_code(), "invalid_credentials");
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    }
    assert_eq!(unknown.json()["message"], wrong.json()["message"]);
    // Timing: both paths run one argon2id verification. The fastest of several tries,
    // taken in turn, is what each path costs; the slower ones measure the machine's other
    // work (the suite runs tests side by side on two cores).
    let once = |email: &str| {
        let started = Instant::now();
        s.login(email, "not-the-password-either");
        started.elapsed()
    };
    let (mut a, mut b) = (Duration::MAX, Duration::MAX);
    // Three each, as before: more would meet the login throttle, which answers without
    // hashing.
    for _ in 0..3 {
        a = a.min(once("nobody@example.com"));
        b = b.min(once(ADMIN_EMAIL));
    }
    let ratio = a.as_secs_f64() / b.as_secs_f64();
    assert!((0.5..2.0).contains(&ratio), "unknown {a:?} vs known {b:?}");
    let long = s.login(ADMIN_EMAIL, &"x".repeat(257));
    assert_eq!((long.status, long.error_code().as_str()), (400, "invalid"));
}

#[test]
fn password_change_applies_the_rules_and_ends_other_sessions() {
    let s = Server::start();
    let keep = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
    let other = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).json();
    let token = keep["access"].as_str().unwrap();
    let change = |current: &str, new: &str| {
        s.post("/api/auth/password/")
            .bearer(token)
            .json(&json!({"current_password": current, "new_password": new}))
    };
    let wrong = change("not-it", "fresh-password-11");
    assert_eq!(wrong.status, 400);
    assert!(wrong.json()["errors"]["current_password"].is_array());
    let common = change(ADMIN_PASSWORD, "password123");
    assert!(
        common.json()["errors"]["new_password"].is_array(),
        "{}",
        common.body
    );
    let short = change(ADMIN_PASSWORD, "short");
    assert_eq!(short.status, 400);
    let same = change(ADMIN_PASSWORD, ADMIN_PASSWORD);
    assert!(same.json()["errors"]["new_password"][0]
        .as_str()
        .unwrap()
        .contains("last 5"));

    assert_eq!(change(ADMIN_PASSWORD, "fresh-password-11").status, 204);
    assert_eq!(
        s.get("/api/auth/me/").bearer(token).send().status,
        200,
        "this session stays"
    );
    let other_access = other["access"].as_str().unwrap();
    assert_eq!(
        s.get("/api/auth/me/").bearer(other_access).send().status,
        401
    );
    assert_eq!(s.login(ADMIN_EMAIL, ADMIN_PASSWORD).status, 401);
    assert_eq!(s.login(ADMIN_EMAIL, "fresh-password-11").status, 200);
    let back = change("fresh-password-11", ADMIN_PASSWORD);
    assert_eq!(back.status, 400, "one of the last five");

    // The CLI ends every session, also in the running server.
    let out = s.cli(
        &["user", "set-password", "--email", ADMIN_EMAIL],
        "cli-password-22\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // In force on the first request after the command exits.
    assert_eq!(s.get("/api/auth/me/").bearer(token).send().status, 401);
    assert_eq!(s.login(ADMIN_EMAIL, "cli-password-22").status, 200);
    let actions = audit_actions(&s);
    assert!(actions.iter().filter(|a| a.0 == "password.changed").count() >= 2);
}

pub fn enable_mfa(s: &Server, token: &str) -> (String, Vec<String>) {
    let setup = s.post("/api/auth/mfa/totp/setup/").bearer(token).send();
    assert_eq!(setup.status, 200, "{}", setup.body);
    let setup = setup.json();
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(setup["otpauth_url"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/clariBI:"));
    assert!(setup["qr_png_base64"].as_str().unwrap().len() > 100);
    let wrong = s
        .post("/api/auth/mfa/totp/confirm/")
        .bearer(token)
        .json(&json!({"code": "000000"}));
    assert_eq!(
        (wrong.status, wrong.error_code().as_str()),
        (400, "mfa_invalid")
    );
    let confirm = s
        .post("/api/auth/mfa/totp/confirm/")
        .bearer(token)
        .json(&json!({"code": totp_at(&secret, 0)}));
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let codes: Vec<String> = confirm.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

#[test]
fn totp_secrets_are_sealed_at_rest_and_plain_ones_from_earlier_versions_get_sealed() {
    let s = Server::start();
    let (secret, _) = enable_mfa(&s, &s.owner_token());
    let stored = |s: &Server| -> String {
        s.sql()
            .one(
                "SELECT mfa_secret FROM users WHERE email = ?1",
                &[P::T(ADMIN_EMAIL)],
            )
            .text()
    };
    let sealed = stored(&s);
    assert!(
        sealed.starts_with("v1.") && !sealed.contains(&secret),
        "{sealed}"
    );
    for file in ["claribi.db", "claribi.db-wal"] {
        if let Ok(bytes) = std::fs::read(s.data_dir().join(file)) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{file} holds the secret in the clear"
            );
        }
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::metadata(s.data_dir().join("mfa-key")).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }

    // A database from a version that stored the secret as it is: sealed at the next start,
    // and the authenticator goes on working.
    let mut db = s.sql();
    let s = s.kill_and_restart_with(|| {
        db.execute(
            "UPDATE users SET mfa_secret = ?1 WHERE email = ?2",
            &[P::T(&secret), P::T(ADMIN_EMAIL)],
        );
    });
    assert!(s
        .log()
        .contains("sealed TOTP secrets stored by an earlier version"));
    let resealed = stored(&s);
    assert!(resealed.starts_with("v1.") && resealed != sealed);
    let login = s.post("/api/auth/login/").json(&json!({
        "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp_code": totp_at(&secret, 1)
    }));
    assert_eq!(login.status, 200, "{}", login.body);

    // Another key in the data directory. On a database several servers share (PostgreSQL)
    // the server refuses to start, naming the file: the others seal with the first key.
    let key = s.data_dir().join("mfa-key");
    if s.database_url().is_some() {
        s.signal("KILL");
        std::thread::sleep(std::time::Duration::from_millis(200));
        std::fs::write(&key, [9u8; 32]).unwrap();
        let out = s.cli(&["audit", "verify"], "");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("mfa-key differ"), "{stderr}");
        return;
    }
    // On SQLite the secret does not open, which is a server error that names the key file,
    // not a wrong code.
    let s = s.kill_and_restart_with(|| std::fs::write(&key, [9u8; 32]).unwrap());
    let login = s.post("/api/auth/login/").json(&json!({
        "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp_code": totp_at(&secret, 0)
    }));
    assert_eq!(login.status, 500, "{}", login.body);
    // The line is written before the answer; the harness reads the log on a thread of its own.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !s.log().contains("mfa-key replaced") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(s.log().contains("mfa-key replaced"), "{}", s.log());
}

#[test]
fn mfa_enrolment_login_replay_recovery_and_disable() {
    // Wrong passwords and codes at `disable` count as failed logins (contract 9.2); this test
    // makes more of them than the default lockout allows.
    let s = server()
        .env("CLARIBI_AUTH__MAX_FAILED_LOGINS", "20")
        .start();
    let token = s.owner_token();
    let (secret, codes) = enable_mfa(&s, &token);
    assert_eq!(
        s.get("/api/auth/me/").bearer(&token).send().json()["mfa_enabled"],
        true
    );
    let again = s.post("/api/auth/mfa/totp/setup/").bearer(&token).send();
    assert_eq!(
        (again.status, again.error_code().as_str()),
        (409, "conflict")
    );

    let no_code = s.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    assert_eq!(
        (no_code.status, no_code.error_code().as_str()),
        (401, "mfa_required")
    );
    assert_eq!(no_code.json()["mfa_required"], true);
    let login = |extra: Value| {
        let mut body = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s.post("/api/auth/login/").json(&body)
    };
    let wrong = login(json!({"totp_code": "123456"}));
    assert_eq!(
        (wrong.status, wrong.error_code().as_str()),
        (401, "mfa_invalid")
    );
    // The confirm step used the current code; the next step's is still fresh.
    let code = totp_at(&secret, 1);
    let ok = login(json!({"totp_code": code}));
    assert_eq!(ok.status, 200, "{}", ok.body);
    let replay = login(json!({"totp_code": code}));
    assert_eq!(
        (replay.status, replay.error_code().as_str()),
        (401, "mfa_invalid")
    );

    let recovered = login(json!({"recovery_code": codes[0]}));
    assert_eq!(recovered.status, 200, "{}", recovered.body);
    let reused = login(json!({"recovery_code": codes[0]}));
    assert_eq!(reused.status, 401, "a recovery code works once");
    assert_eq!(
        login(json!({"recovery_code": codes[1].to_uppercase()})).status,
        200
    );

    let disable = |token: &str, password: &str, code: &str| {
        s.post("/api/auth/mfa/totp/disable/")
            .bearer(token)
            .json(&json!({"password": password, "code": code}))
    };
    let bad_password = disable(&token, "nope-nope-nope", "000000");
    assert!(bad_password.json()["errors"]["password"].is_array());
    let bad_code = disable(&token, ADMIN_PASSWORD, "000000");
    assert_eq!(
        (bad_code.status, bad_code.error_code().as_str()),
        (400, "mfa_invalid")
    );
    assert_eq!(
        disable(&token, ADMIN_PASSWORD, &code).status,
        400,
        "the code the login used is a replay"
    );
    assert_eq!(s.login(ADMIN_EMAIL, ADMIN_PASSWORD).status, 401, "still on");

    // Turning it off takes a code not used yet. The owner has used this step's and the next
    // one's, so another user shows it without waiting 30 s for a fresh step: enrolled with
    // the current step's code, the step before is a replay and the next one is fresh.
    s.create_user("ana@example.com", "analyst", "analyst-password-3");
    let ana = s.token("ana@example.com", "analyst-password-3");
    let (ana_secret, _) = enable_mfa(&s, &ana);
    let older = disable(&ana, "analyst-password-3", &totp_at(&ana_secret, -1));
    assert_eq!(
        (older.status, older.error_code().as_str()),
        (400, "mfa_invalid"),
        "an older step is a replay"
    );
    let off = disable(&ana, "analyst-password-3", &totp_at(&ana_secret, 1));
    assert_eq!(off.status, 204, "{}", off.body);
    assert_eq!(
        s.get("/api/auth/me/").bearer(&ana).send().json()["mfa_enabled"],
        false
    );
    assert_eq!(
        s.login("ana@example.com", "analyst-password-3").status,
        200,
        "no code asked once it is off"
    );
    let actions: Vec<String> = audit_actions(&s).into_iter().map(|a| a.0).collect();
    for action in [
        "mfa.enabled",
        "mfa.recovery_code_used",
        "mfa.disabled",
        "login.failed",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

#[test]
fn administrators_reset_mfa_by_api_and_by_cli() {
    let s = Server::start();
    s.create_user("ana@example.com", "analyst", "analyst-password-3");
    let ana = s.login("ana@example.com", "analyst-password-3").json();
    let ana_token = ana["access"].as_str().unwrap();
    let ana_id = ana["user"]["id"].as_i64().unwrap();
    enable_mfa(&s, ana_token);
    assert_eq!(s.login("ana@example.com", "analyst-password-3").status, 401);

    let denied = s
        .post(&format!("/api/v1/users/{ana_id}/reset-mfa/"))
        .bearer(ana_token)
        .send();
    assert_eq!(
        (denied.status, denied.error_code().as_str()),
        (403, "permission_denied")
    );
    let owner = s.owner_token();
    let missing = s
        .post("/api/v1/users/9999/reset-mfa/")
        .bearer(&owner)
        .send();
    assert_eq!(missing.status, 404);
    let reset = s
        .post(&format!("/api/v1/users/{ana_id}/reset-mfa/"))
        .bearer(&owner)
        .send();
    assert_eq!(reset.status, 204);
    assert_eq!(s.login("ana@example.com", "analyst-password-3").status, 200);

    let token = s.login("ana@example.com", "analyst-password-3").json()["access"]
        .as_str()
        .unwrap()
        .to_string();
    enable_mfa(&s, &token);
    let out = s.cli(&["user", "reset-mfa", "--email", "ana@example.com"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.login("ana@example.com", "analyst-password-3").status, 200);
    assert!(audit_actions(&s).iter().any(|a| a.0 == "mfa.reset"));
}
