//! The contract's common answers (sections 1 and 2): health, both prefixes, the error shape,
//! query parameters validated like body fields, every field problem named at once.

use serde_json::json;

use super::support::{Server, ADMIN_EMAIL};

#[test]
fn health_and_readiness_answer_without_credentials() {
    let s = Server::start();
    let health = s.get("/healthz").send();
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(s.get("/readyz").send().status, 200);
    let id = health.header("x-request-id").expect("request id");
    assert!(!id.is_empty());
    let echoed = s.get("/healthz").header("X-Request-Id", "trace-42").send();
    assert_eq!(echoed.header("x-request-id"), Some("trace-42"));
    let refused = s
        .get("/healthz")
        .header("X-Request-Id", "no spaces <b>")
        .send();
    assert_ne!(refused.header("x-request-id"), Some("no spaces <b>"));
    assert_eq!(health.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn routes_answer_under_both_prefixes_with_or_without_the_final_slash() {
    let s = Server::start();
    let token = s.owner_token();
    for path in [
        "/api/auth/me/",
        "/api/auth/me",
        "/api/v1/auth/me/",
        "/api/v1/auth/me",
    ] {
        let me = s.get(path).bearer(&token).send();
        assert_eq!(me.status, 200, "{path}");
        assert_eq!(me.json()["email"], ADMIN_EMAIL);
        assert_eq!(me.header("cache-control"), Some("no-store"));
    }
    let root = s.get("/").send();
    assert_eq!(root.status, 302);
    assert_eq!(root.header("location"), Some("/login"));
}

/// Contract 10.1: every query parameter is validated like a body field. A NUL (or bytes that
/// are not UTF-8) is a `400 invalid` naming the parameter, on both databases.
#[test]
fn a_nul_or_broken_text_in_a_query_parameter_is_refused_naming_it() {
    let s = Server::start();
    let owner = s.owner_token();
    for (path, field) in [
        ("/api/v1/audit-logs/?action=a%00b", "action"),
        ("/api/v1/audit-logs/?user_id=1%00", "user_id"),
        ("/api/v1/audit-logs/export/?format=csv&action=%00", "action"),
        ("/api/auth/api-keys/?all=true&status=%00x", "status"),
        ("/api/v1/reports/?page=1&page_size=%00", "page_size"),
        ("/api/v1/reports/?x=%C3%28", "x"),
        ("/api/v1/users/?page=%FF", "page"),
    ] {
        let r = s.get(path).bearer(&owner).send();
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        let body = r.json();
        assert_eq!(body["error"], "invalid", "{path}: {body}");
        assert!(
            body["errors"][field].is_array(),
            "{path} names {field}: {body}"
        );
    }
    // Parameters on routes without credentials too.
    let r = s.get("/api/auth/login/?next=%00").send();
    assert_ne!(r.status, 500);
    let r = s.get("/public/reports/abc/?x=%00").send();
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn every_error_has_the_contract_shape() {
    let s = Server::start();
    let missing = s.get("/api/v1/nothing-here/").send();
    assert_eq!(
        (missing.status, missing.error_code().as_str()),
        (404, "not_found")
    );

    let wrong_method = s.request("PUT", "/api/auth/login/").send();
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.error_code(), "method_not_allowed");
    assert!(wrong_method.header("allow").unwrap().contains("POST"));
    assert_eq!(s.request("DELETE", "/healthz").send().status, 405);

    let not_json = s.post("/api/auth/login/").raw("text/plain", b"email=a");
    assert_eq!(
        (not_json.status, not_json.error_code().as_str()),
        (415, "unsupported_media_type")
    );

    let malformed = s
        .post("/api/auth/login/")
        .raw("application/json", b"{\"email\": ");
    assert_eq!(
        (malformed.status, malformed.error_code().as_str()),
        (400, "parse_error")
    );

    let unknown = s
        .post("/api/auth/login/")
        .json(&json!({"email": "a@b.c", "password": "x", "remember_me": true}));
    assert_eq!(
        (unknown.status, unknown.error_code().as_str()),
        (400, "invalid")
    );
    assert!(
        unknown.json()["errors"]["remember_me"].is_array(),
        "{}",
        unknown.body
    );

    let wrong_type = s.post("/api/auth/login/").json(&json!([]));
    assert_eq!(
        (wrong_type.status, wrong_type.error_code().as_str()),
        (400, "invalid")
    );

    let missing_field = s.post("/api/auth/login/").json(&json!({"email": "a@b.c"}));
    assert_eq!(missing_field.json()["errors"]["password"][0], "is required");

    let duplicate = s.post("/api/auth/login/").raw(
        "application/json",
        br#"{"email":"a@b.c","email":"d@e.f","password":"x"}"#,
    );
    assert_eq!(
        (duplicate.status, duplicate.error_code().as_str()),
        (400, "invalid")
    );

    let nul = s.post("/api/auth/login/").raw(
        "application/json",
        br#"{"email":"a\u0000@b.c","password":"x"}"#,
    );
    assert_eq!((nul.status, nul.error_code().as_str()), (400, "invalid"));

    let big = vec![b' '; 70 * 1024];
    let too_large = s.post("/api/auth/login/").raw("application/json", &big);
    assert_eq!(
        (too_large.status, too_large.error_code().as_str()),
        (413, "payload_too_large")
    );
}

#[test]
fn the_api_names_every_field_problem_at_once_for_the_forms() {
    let s = Server::start();
    let token = s.owner_token();
    let r = s
        .post("/api/v1/users/")
        .bearer(&token)
        .json(&json!({"email": "not-an-email", "password": "", "role": "emperor"}));
    assert_eq!(r.status, 400);
    let errors = r.json()["errors"].clone();
    for field in ["email", "password", "role"] {
        assert!(errors[field].is_array(), "{field} missing from {errors}");
    }
    let r = s
        .post("/api/auth/password/")
        .bearer(&token)
        .json(&json!({"current_password": "", "new_password": ""}));
    assert_eq!(r.status, 400);
    let errors = r.json()["errors"].clone();
    assert!(
        errors["current_password"].is_array() && errors["new_password"].is_array(),
        "{errors}"
    );
}

/// The console draws its navigation and Settings indexes from `assets/pages.js`: every path
/// it names is a page the server serves.
#[test]
fn every_page_the_console_links_to_is_served() {
    let s = Server::start();
    let paths: Vec<&str> = include_str!("../../../assets/pages.js")
        .split("href: \"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert!(paths.len() >= 15, "{paths:?}");
    for path in paths {
        let page = s.get(path).header("Accept", "text/html").send();
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{path}: {:?}",
            page.header("content-type")
        );
    }
}
