//! The web pages of the contract's section 6, driven in headless Chromium against the real
//! binary: what an administrator clicks, checked both on the page and through the API.

use serde_json::json;

use crate::browser::Browser;
use crate::key_lifecycle::key_when;
use crate::sessions::totp_at;
use crate::support::{server, unix_now, Server, ADMIN_EMAIL, ADMIN_PASSWORD, P};

const KEYS_PAGE: &str = "/settings/developer/api-keys";

/// The login page's two steps: the email (which may have a provider of its own), then the
/// password.
pub fn enter_credentials(browser: &Browser, email: &str, password: &str) {
    browser.fill("#email", email);
    browser.click("#submit");
    browser.wait_for("!document.querySelector('#password-step').hidden");
    browser.fill("#password", password);
    browser.click("#submit");
}

pub fn sign_in(browser: &Browser, server: &Server, email: &str, password: &str) {
    browser.open(&server.url("/login"));
    enter_credentials(browser, email, password);
    // The overview; or, for a password someone else chose, the security page first.
    browser.wait_for("location.pathname === '/' || location.pathname === '/settings/security'");
}

#[test]
fn pages_send_the_security_headers_and_root_leads_to_login() {
    let s = Server::start();
    for path in [
        "/login",
        KEYS_PAGE,
        "/settings/security",
        "/admin/users",
        "/admin/audit",
        "/docs/api",
    ] {
        let r = s.get(path).send();
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        let policy = r.header("content-security-policy").unwrap();
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        let etag = r.header("etag").unwrap().to_string();
        let again = s.get(path).header("If-None-Match", &etag).send();
        assert_eq!(again.status, 304, "{path}");
    }
    assert_eq!(s.get("/assets/common.js").send().status, 200);
    assert_eq!(s.get("/assets/login.html").send().status, 404);
    assert_eq!(s.get("/assets/nothing.js").send().status, 404);

    let browser = Browser::start();
    browser.open(&s.url("/"));
    browser.wait_for("location.pathname === '/login'");
}

#[test]
fn sign_in_then_generate_use_rotate_and_revoke_a_key_shown_once() {
    let s = Server::start();
    let browser = Browser::start();
    browser.open(&s.url("/login"));
    enter_credentials(&browser, ADMIN_EMAIL, "not-the-password");
    assert!(
        browser.text("#message").contains("email or password"),
        "a wrong password is reported"
    );
    sign_in(&browser, &s, ADMIN_EMAIL, ADMIN_PASSWORD);
    browser.open(&s.url(KEYS_PAGE));

    // Tokens live in sessionStorage only.
    let storage = browser.run(
        "return [sessionStorage.getItem('claribi.access'), localStorage.length, document.cookie];",
        json!([]),
    );
    assert!(
        storage[0].as_str().is_some_and(|t| t.len() > 20),
        "{storage}"
    );
    assert_eq!(storage[1], json!(0));
    assert_eq!(storage[2], json!(""));
    assert!(browser.text("#whoami").contains(ADMIN_EMAIL));

    // A key scoped to reading reports, 30 days, with a name that is not HTML.
    browser.click("#generate");
    let name = "<img src=x onerror=alert(1)> nightly";
    browser.fill("#name", name);
    browser.select("#expiry", "30");
    browser.click("input.scope[value='reports:read']");
    browser.click("#create-submit");
    let key = browser.text("#new-key-value");
    assert!(key.starts_with("claribi_key_") && key.len() == 48, "{key}");
    assert!(browser
        .text("#new-key .warning")
        .contains("not be shown again"));

    let reports = s.get("/api/v1/reports/").bearer(&key).send();
    assert_eq!(reports.status, 200, "the key from the page works");
    let dashboards = s.get("/api/v1/dashboards/").bearer(&key).send();
    assert_eq!(dashboards.status, 403, "and only in its scope");

    let listed = s
        .get("/api/auth/api-keys/")
        .bearer(&s.owner_token())
        .send()
        .json();
    let id = listed["results"][0]["id"].as_i64().unwrap();
    assert!(listed["results"][0]["expires_at"].is_string());
    let row = format!("tr[data-key-id='{id}']");
    assert_eq!(
        browser.text(&format!("{row} [data-name]")),
        name,
        "the name is text, not markup"
    );
    assert_eq!(
        browser.run(
            "return document.querySelectorAll('#keys img').length;",
            json!([])
        ),
        json!(0)
    );

    // Shown once: gone after dismissing and after a reload.
    browser.click("#dismiss");
    browser.open(&s.url(KEYS_PAGE));
    browser.text(&format!("{row} [data-name]"));
    let html = browser.run("return document.documentElement.outerHTML;", json!([]));
    assert!(!html.as_str().unwrap().contains(&key));

    // Rotate, after a confirmation that offers an overlap (at once by default): a new key
    // is shown once, the old one stops working.
    browser.click(&format!("button[data-rotate='{id}']"));
    browser.click(&format!("button[data-confirm-rotate='{id}']"));
    browser.wait_for(&format!(
        "document.querySelector(\"{row} [data-status]\").textContent === 'revoked'"
    ));
    let rotated = browser.text("#new-key-value");
    assert!(rotated.starts_with("claribi_key_") && rotated != key);
    assert_eq!(s.get("/api/v1/reports/").bearer(&key).send().status, 401);
    assert_eq!(
        s.get("/api/v1/reports/").bearer(&rotated).send().status,
        200
    );
    browser.click("#dismiss");

    // Revoke, with a confirmation: the key stops working.
    let listed = s
        .get("/api/auth/api-keys/")
        .bearer(&s.owner_token())
        .send()
        .json();
    let active = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["status"] == "active")
        .unwrap();
    let id = active["id"].as_i64().unwrap();
    let row = format!("tr[data-key-id='{id}']");
    browser.click(&format!("button[data-revoke='{id}']"));
    browser.click(&format!("button[data-confirm-revoke='{id}']"));
    browser.wait_for(&format!(
        "document.querySelector(\"{row} [data-status]\").textContent === 'revoked'"
    ));
    assert_eq!(
        s.get("/api/v1/reports/").bearer(&rotated).send().status,
        401
    );
}

#[test]
fn mfa_enrolment_then_sign_in_with_a_recovery_code_and_sessions() {
    let s = Server::start();
    let browser = Browser::start();
    sign_in(&browser, &s, ADMIN_EMAIL, ADMIN_PASSWORD);
    browser.open(&s.url("/settings/security"));
    assert!(browser
        .text("#mfa-status")
        .contains("Two-factor authentication is off."));
    assert!(browser.text("tr .badge.current").contains("this session"));

    browser.click("#mfa-start");
    let secret = browser.text("#mfa-secret");
    let qr = browser.wait_for(
        "document.querySelector('#mfa-qr').naturalWidth > 0 && document.querySelector('#mfa-qr').src",
    );
    assert!(qr.as_str().unwrap().starts_with("data:image/png;base64,"));
    browser.fill("#mfa-code", &totp_at(&secret, 0));
    browser.click("#mfa-confirm-submit");
    browser.text("#recovery-codes li");
    let codes = browser.run(
        "return [...document.querySelectorAll('#recovery-codes li')].map(li => li.textContent);",
        json!([]),
    );
    let codes: Vec<String> = serde_json::from_value(codes).unwrap();
    assert_eq!(codes.len(), 10);
    browser.wait_for(
        "document.querySelector('#mfa-status').textContent.includes('is on') \
         && document.querySelector('#mfa-status').textContent.includes('10 recovery codes are left')",
    );

    // Sign out, then in again: the page asks for the second factor; a recovery code works once.
    browser.click("#logout");
    browser.wait_for("location.pathname === '/login'");
    enter_credentials(&browser, ADMIN_EMAIL, ADMIN_PASSWORD);
    browser.click("#use-recovery");
    browser.fill("#code", &codes[0]);
    browser.click("#submit");
    browser.wait_for("location.pathname === '/'");

    // The earlier session was ended by signing out: one session is left, this one.
    browser.open(&s.url("/settings/security"));
    browser.text("tr .badge.current");
    browser.wait_for(
        "document.querySelector('#mfa-status').textContent.includes('9 recovery codes are left')",
    );

    // New recovery codes from the page: shown once, ten left again, the earlier ones dead.
    browser.click("#mfa-renew-open");
    browser.fill("#renew-password", ADMIN_PASSWORD);
    browser.fill("#renew-code", &totp_at(&secret, 1));
    browser.click("#mfa-renew-submit");
    browser.wait_for(
        "document.querySelector('#mfa-status').textContent.includes('10 recovery codes are left')",
    );
    let renewed = browser.run(
        "return [...document.querySelectorAll('#recovery-codes li')].map(li => li.textContent);",
        json!([]),
    );
    let renewed: Vec<String> = serde_json::from_value(renewed).unwrap();
    assert_eq!(renewed.len(), 10);
    assert!(!renewed.contains(&codes[1]));
    let old = s.post("/api/auth/login/").json(&json!({
        "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "recovery_code": codes[1]
    }));
    assert_eq!(old.status, 401, "an earlier code no longer works");
    assert_eq!(
        browser.run(
            "return document.querySelectorAll('#sessions tbody tr').length;",
            json!([])
        ),
        json!(1)
    );

    // Change the password from the page: the new one signs in, the old one does not.
    browser.fill("#current-password", ADMIN_PASSWORD);
    browser.fill("#new-password", "lantern-quartz-93");
    browser.fill("#repeat-password", "lantern-quartz-93");
    browser.click("#password-submit");
    assert!(browser
        .text("#password-message")
        .contains("Password changed"));
    assert_eq!(s.login(ADMIN_EMAIL, ADMIN_PASSWORD).status, 401);
}

#[test]
fn administrators_manage_users_and_read_the_audit_log_others_are_told_no() {
    let s = Server::start();
    let browser = Browser::start();
    sign_in(&browser, &s, ADMIN_EMAIL, ADMIN_PASSWORD);

    browser.open(&s.url("/admin/users"));
    browser.fill("#email", "dana@example.com");
    browser.fill("#name", "Dana");
    browser.fill("#password", "copper-meadow-17");
    browser.select("#role", "viewer");
    browser.click("#create-submit");
    assert!(browser
        .text("#message")
        .contains("dana@example.com added as viewer"));

    let token = s.owner_token();
    let users = s.get("/api/v1/users/").bearer(&token).send().json();
    let dana = users["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "dana@example.com")
        .unwrap()
        .clone();
    let id = dana["id"].as_i64().unwrap();
    assert_eq!(dana["role"], "viewer");

    // A key press on the role control changes nothing; Save asks, naming the user and what
    // the role allows, and only the confirmation changes it.
    let path = format!("/api/v1/users/{id}/");
    let role_select = format!("select[data-role-of='{id}']");
    browser.press(&role_select, "\u{E015}");
    browser.press(&role_select, "\u{E015}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(s.get(&path).bearer(&token).send().json()["role"], "viewer");
    browser.select(&role_select, "analyst");
    browser.click(&format!("button[data-save-role='{id}']"));
    let question = browser.text(&format!("tr[data-user-id='{id}'] [role='alert']"));
    assert!(
        question.contains("dana@example.com") && question.contains("analyst"),
        "{question}"
    );
    assert_eq!(s.get(&path).bearer(&token).send().json()["role"], "viewer");
    browser.click(&format!("button[data-confirm-role='{id}']"));
    assert!(browser.text("#message").contains("now analyst"));
    assert_eq!(s.get(&path).bearer(&token).send().json()["role"], "analyst");

    // Deactivation asks first, naming the user and what stops working.
    browser.click(&format!("button[data-toggle-active='{id}']"));
    let question = browser.text(&format!("tr[data-user-id='{id}'] [role='alert']"));
    assert!(
        question.contains("dana@example.com") && question.contains("revoked for good"),
        "{question}"
    );
    assert_eq!(s.get(&path).bearer(&token).send().json()["is_active"], true);
    browser.click(&format!("button[data-confirm-deactivate='{id}']"));
    assert!(browser.text("#message").contains("deactivated"));
    assert_eq!(
        s.get(&path).bearer(&token).send().json()["is_active"],
        false
    );
    assert_eq!(s.login("dana@example.com", "copper-meadow-17").status, 401);
    browser.click(&format!("button[data-toggle-active='{id}']"));
    assert!(browser.text("#message").contains("reactivated"));

    // Locked out by wrong passwords (five with the sign-in refused while she was deactivated:
    // the shipped limit), she is let in again from her row, at once.
    browser.wait_for(&format!(
        "document.querySelector(\"tr[data-user-id='{id}'] .badge.active\") !== null"
    ));
    for _ in 0..4 {
        assert_eq!(s.login("dana@example.com", "wrong-password-x").status, 401);
    }
    assert_eq!(s.login("dana@example.com", "copper-meadow-17").status, 429);
    browser.click(&format!("button[data-unlock='{id}']"));
    browser.wait_for(
        "document.querySelector('#message').textContent.includes('dana@example.com may sign in again')",
    );
    assert_eq!(s.login("dana@example.com", "copper-meadow-17").status, 200);

    // A temporary password from her row: the form names her, the answer says what follows,
    // and her next session opens only the password change.
    browser.click(&format!("button[data-set-password='{id}']"));
    assert!(browser
        .text(&format!("tr[data-user-id='{id}'] label"))
        .contains("dana@example.com"));
    browser.fill(
        &format!("input[data-temporary-password='{id}']"),
        "Temporary-cobalt-5512",
    );
    browser.click(&format!("button[data-confirm-temporary='{id}']"));
    browser.wait_for(
        "document.querySelector('#message').textContent.includes('Temporary password set for dana@example.com')",
    );
    assert_eq!(s.login("dana@example.com", "copper-meadow-17").status, 401);
    let temporary = s.login("dana@example.com", "Temporary-cobalt-5512").json();
    assert_eq!(temporary["password_change_required"], true);
    let access = temporary["access"].as_str().unwrap();
    let chosen = s.post("/api/auth/password/").bearer(access).json(&json!({
        "current_password": "Temporary-cobalt-5512",
        "new_password": "saffron-harbor-29",
    }));
    assert_eq!(chosen.status, 204, "{}", chosen.body);

    // The audit log shows the role change; a filter narrows it to one action.
    browser.open(&s.url("/admin/audit"));
    browser.text("#entries tbody tr td");
    browser.select("#action", "user.role_changed");
    browser.click("#apply");
    browser.wait_for("document.querySelector('#position').textContent.startsWith('1 entry')");
    let actions = browser.run(
        "return [...document.querySelectorAll('#entries tbody tr td:nth-child(2)')].map(t => t.textContent);",
        json!([]),
    );
    assert_eq!(actions, json!(["user.role_changed"]));
    assert_eq!(
        browser.text("#entries tbody tr td:nth-child(4)"),
        ADMIN_EMAIL,
        "users are named by email"
    );

    // Dana, an analyst, sees no admin links and is told the page is not for her.
    browser.click("#logout");
    browser.wait_for("location.pathname === '/login'");
    sign_in(&browser, &s, "dana@example.com", "saffron-harbor-29");
    browser.open(&s.url("/settings"));
    browser.text("ul.settings-index");
    assert_eq!(
        browser.run(
            "return document.querySelectorAll('a[href^=\"/admin\"], a[href=\"/settings/organization\"]').length;",
            json!([])
        ),
        json!(0),
        "no administrators' links anywhere on the page"
    );
    for page in ["/admin/users", "/admin/audit", "/settings/organization"] {
        browser.open(&s.url(page));
        assert!(
            browser.text("#not-allowed").contains("Only administrators"),
            "{page}"
        );
        assert_eq!(
            browser.run(
                "return [document.querySelector('table'), document.querySelector('.pager'), \
                 document.querySelector('#message').hidden];",
                json!([])
            ),
            json!([null, null, true]),
            "{page}: a clear page, no empty table, paging or error"
        );
    }
}

#[test]
fn an_expired_access_token_is_refreshed_without_signing_in_again() {
    let s = server().env("CLARIBI_AUTH__ACCESS_TTL", "3s").start();
    let browser = Browser::start();
    sign_in(&browser, &s, ADMIN_EMAIL, ADMIN_PASSWORD);
    let first = browser.run(
        "return sessionStorage.getItem('claribi.access');",
        json!([]),
    );
    // Past the token's life: it lives through the second its `exp` names, at most 4 s.
    std::thread::sleep(std::time::Duration::from_secs(6));
    browser.open(&s.url(KEYS_PAGE));
    assert!(browser.text("#keys tbody tr td").contains("No keys yet"));
    assert!(browser.url().ends_with(KEYS_PAGE), "still signed in");
    let second = browser.run(
        "return sessionStorage.getItem('claribi.access');",
        json!([]),
    );
    assert!(
        second.is_string() && second != first,
        "a new access token was fetched"
    );
}

#[test]
fn the_api_reference_renders_the_openapi_document_under_the_pages_policy() {
    let s = Server::start();
    let r = s.get("/api/schema/").send();
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();

    // No session needed: the document is public, and so is its page.
    let browser = Browser::start();
    browser.open(&s.url("/docs/api"));
    // The page renders after fetching the document: wait until it has drawn
    // something (a count of 0 is a value, not a wait), then compare.
    let shown = browser.wait_for("document.querySelectorAll('section.operation').length || null");
    assert_eq!(shown.as_u64(), Some(operations as u64));
    let card = browser.text("#CreateKey");
    assert!(
        card.contains("POST") && card.contains("/api/auth/api-keys/"),
        "{card}"
    );
    assert!(
        card.contains("scopes"),
        "the request body's fields are listed: {card}"
    );
    assert!(browser.text("#ListReports").contains("reports:read"));
}

#[test]
fn the_keys_page_shows_the_lifecycle_and_acts_on_it() {
    let s = Server::start();
    let token = s.owner_token();
    let create = |body: serde_json::Value| {
        let r = s.post("/api/auth/api-keys/").bearer(&token).json(&body);
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()
    };
    // A scoped key that used one of its two scopes, made to look 40 days old, and a key that
    // expires in three days.
    let old = create(json!({"name": "old reader", "scopes": ["reports:read", "dashboards:read"]}));
    let old_id = old["id"].as_i64().unwrap();
    let old_key = old["key"].as_str().unwrap().to_string();
    assert_eq!(
        s.get("/api/v1/reports/").bearer(&old_key).send().status,
        200
    );
    key_when(&s, &token, old_id, |k| {
        k["scope_usage"]["reports:read"]["count"] == 1
    });
    let soon = create(json!({"name": "soon", "expires_in_days": 30}));
    let soon_key = soon["key"].as_str().unwrap().to_string();
    let mut db = s.sql();
    db.execute(
        "UPDATE api_keys SET created_at = created_at - 40 * 86400 WHERE id = ?1",
        &[P::I(old_id)],
    );
    db.execute(
        "UPDATE api_keys SET expires_at = ?2 WHERE id = ?1",
        &[
            P::I(soon["id"].as_i64().unwrap()),
            P::I(unix_now() + 3 * 86400),
        ],
    );
    drop(db);

    let browser = Browser::start();
    sign_in(&browser, &s, ADMIN_EMAIL, ADMIN_PASSWORD);
    browser.open(&s.url(KEYS_PAGE));
    // Expiring keys first, under a notice.
    assert!(browser.text("#expiring-list").contains("\"soon\""));
    assert_eq!(
        browser.run(
            "return document.querySelector('#keys tbody tr').dataset.keyId;",
            json!([])
        ),
        json!(soon["id"].to_string())
    );
    // The unused scope of the old key is marked; one click opens a narrower replacement.
    let old_row = format!("tr[data-key-id='{old_id}']");
    assert_eq!(
        browser.run(
            "return [...document.querySelectorAll(arguments[0] + ' .unused-scope')].map(e => e.dataset.scope);",
            json!([old_row])
        ),
        json!(["dashboards:read"])
    );
    browser.click(&format!("button[data-narrow='{old_id}']"));
    assert_eq!(
        browser.run("return document.querySelector('#name').value;", json!([])),
        json!("old reader (narrower)")
    );
    browser.click("#create-submit");
    let narrower = browser.text("#new-key-value");
    let used = s
        .get("/api/v1/auth/verify/")
        .bearer(&narrower)
        .send()
        .json();
    assert_eq!(used["api_key"]["scopes"], json!(["reports:read"]));
    browser.click("#dismiss");

    // Rotate with an overlap: the old key names its successor and works on.
    browser.click(&format!("button[data-rotate='{old_id}']"));
    browser.select(&format!("select[data-overlap='{old_id}']"), "1h");
    browser.click(&format!("button[data-confirm-rotate='{old_id}']"));
    let note = browser.text(&format!("{old_row} [data-replaced-by]"));
    assert!(note.contains("works until"), "{note}");
    let successor = browser.text("#new-key-value");
    browser.click("#dismiss");
    let late = s
        .get("/api/v1/auth/verify/")
        .bearer(&old_key)
        .header("User-Agent", "legacy-cron/3")
        .send();
    assert_eq!(late.status, 200, "the old key works during the overlap");
    key_when(&s, &token, old_id, |k| {
        k["last_used_user_agent"] == "legacy-cron/3"
    });
    browser.open(&s.url(KEYS_PAGE));
    assert_eq!(
        browser.text(&format!("{old_row} [data-last-ip]")),
        "from 127.0.0.1"
    );
    assert_eq!(
        browser.text(&format!("{old_row} [data-last-agent]")),
        "legacy-cron/3"
    );

    // Edit the successor's allowlist in place: in force at once.
    let new_id = key_when(&s, &token, old_id, |_| true)["replaced_by"]
        .as_i64()
        .unwrap();
    browser.click(&format!("button[data-edit='{new_id}']"));
    browser.fill(&format!("textarea[data-edit-ips='{new_id}']"), "10.0.0.0/8");
    browser.click(&format!("button[data-save='{new_id}']"));
    browser.wait_for(&format!(
        "document.querySelector(\"tr[data-details-of='{new_id}'] [data-allowed]\").textContent === '10.0.0.0/8'"
    ));
    let refused = s.get("/api/v1/auth/verify/").bearer(&successor).send();
    assert_eq!(refused.status, 403, "loopback is outside the new list");

    // Administrators mint canary keys and report leaks here.
    browser.click("#generate");
    browser.fill("#name", "decoy in the wiki");
    browser.click("#full-access");
    browser.click("#canary");
    browser.click("#create-submit");
    let decoy = browser.text("#new-key-value");
    browser.click("#dismiss");
    assert_eq!(
        s.get("/api/v1/auth/verify/").bearer(&decoy).send().status,
        401
    );
    browser.wait_for("document.querySelector('#keys .badge.canary') !== null");
    // A replaced key offers no second rotation, and nothing on the page reads "null".
    assert_eq!(
        browser.run(
            "return [document.querySelector(arguments[0] + ' [data-rotate]') === null, \
             document.querySelector('#keys').textContent.includes('null')];",
            json!([old_row])
        ),
        json!([true, false])
    );

    browser.fill(
        "#leak-text",
        &format!("pasted from chat: {soon_key} thanks"),
    );
    // Asked first: it revokes at once.
    browser.click("#leak-submit");
    browser.click("#leak-confirm");
    assert!(browser.text("#leak-results tbody").contains("yes"));
    assert!(browser.text("#leak-message").contains("1 revoked"));
    assert_eq!(
        s.get("/api/v1/auth/verify/")
            .bearer(&soon_key)
            .send()
            .status,
        401
    );
}
