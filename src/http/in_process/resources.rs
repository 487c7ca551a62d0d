//! The protected API v1: every resource, the scope and role matrices, isolation between
//! organizations, credits, public links and the audit log (contract sections 6 to 9).

use serde_json::{json, Value};

use super::api_keys::create_key;
use super::support::{server, unix_now, Resp, Server, ADMIN_PASSWORD};
use super::{harness, Answer};

struct Fixture {
    data_source: i64,
    report: i64,
    dashboard: i64,
    goal: i64,
}

fn ok(r: Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.body);
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

fn fixture(s: &Server, token: &str) -> Fixture {
    let ds = ok(
        s.post("/api/v1/data-sources/")
            .bearer(token)
            .json(&json!({"name": "Warehouse", "source_type": "database"})),
        201,
    );
    let report = ok(
        s.post("/api/v1/reports/generate/")
            .bearer(token)
            .json(&json!({"title": "Q4", "data_source_id": ds["id"], "prompt": "How did we do?"})),
        201,
    );
    let dashboard = ok(
        s.post("/api/v1/dashboards/")
            .bearer(token)
            .json(&json!({"name": "Sales", "widgets": [{"type": "chart", "metric": "revenue"}]})),
        201,
    );
    let goal = ok(
        s.post("/api/v1/goals/").bearer(token).json(&json!({
            "name": "Revenue", "target_value": 200, "current_value": 50, "unit": "kEUR",
            "due_date": "2026-12-31",
            "milestones": [{"name": "half", "target_value": 100}, {"name": "all", "target_value": 200}]
        })),
        201,
    );
    Fixture {
        data_source: ds["id"].as_i64().unwrap(),
        report: report["id"].as_i64().unwrap(),
        dashboard: dashboard["id"].as_i64().unwrap(),
        goal: goal["id"].as_i64().unwrap(),
    }
}

#[test]
fn the_happy_path_of_every_resource() {
    let s = Server::start();
    let t = s.owner_token();
    let f = fixture(&s, &t);

    let report = ok(
        s.get(&format!("/api/v1/reports/{}/", f.report))
            .bearer(&t)
            .send(),
        200,
    );
    assert_eq!(report["status"], "completed");
    assert_eq!(report["credits_used"], 5);
    assert!(report["summary"].as_str().unwrap().contains("Warehouse"));
    assert_eq!(report["prompt"], "How did we do?");
    assert!(
        !report["content"]
            .as_str()
            .unwrap()
            .contains("How did we do?"),
        "the content is shared by public links: it must not quote the prompt"
    );
    for field in ["completed_at", "created_by", "data_source_id", "prompt"] {
        assert!(!report[field].is_null(), "{field}");
    }
    let list = ok(s.get("/api/v1/reports/").bearer(&t).send(), 200);
    assert_eq!(list["count"], 1);

    let d = ok(
        s.request("PATCH", &format!("/api/v1/dashboards/{}/", f.dashboard))
            .bearer(&t)
            .json(&json!({"description": "weekly"})),
        200,
    );
    assert_eq!(
        (d["name"].as_str(), d["description"].as_str()),
        (Some("Sales"), Some("weekly"))
    );
    let refreshed = ok(
        s.post(&format!("/api/v1/dashboards/{}/refresh/", f.dashboard))
            .bearer(&t)
            .send(),
        200,
    );
    assert!(refreshed["last_refreshed_at"].is_string());

    let usage = ok(s.get("/api/v1/usage/").bearer(&t).send(), 200);
    assert_eq!(usage["credits_used"], 6);
    assert_eq!(usage["by_kind"]["report_generation"], 5);
    assert_eq!(usage["by_kind"]["dashboard_refresh"], 1);
    assert_eq!(usage["credits_remaining"], 994);

    ok(
        s.post(&format!("/api/v1/goals/{}/progress/", f.goal))
            .bearer(&t)
            .json(&json!({"value": 120})),
        201,
    );
    let progress = ok(
        s.get(&format!("/api/v1/goals/{}/progress/", f.goal))
            .bearer(&t)
            .send(),
        200,
    );
    assert_eq!(progress["percent"], 60.0);
    assert_eq!(progress["milestones_reached"], 1);
    assert_eq!(progress["milestones_total"], 2);
    let history: Vec<f64> = progress["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["value"].as_f64().unwrap())
        .collect();
    assert_eq!(
        history,
        vec![120.0],
        "only recorded progress; the starting value is no entry"
    );
    let goal = ok(
        s.request("PATCH", &format!("/api/v1/goals/{}/", f.goal))
            .bearer(&t)
            .json(&json!({"target_value": 100})),
        200,
    );
    assert_eq!(goal["current_value"], 120.0);

    ok(
        s.request("DELETE", &format!("/api/v1/reports/{}/", f.report))
            .bearer(&t)
            .send(),
        204,
    );
    ok(
        s.request("DELETE", &format!("/api/v1/dashboards/{}/", f.dashboard))
            .bearer(&t)
            .send(),
        204,
    );
    ok(
        s.request(
            "DELETE",
            &format!("/api/v1/data-sources/{}/", f.data_source),
        )
        .bearer(&t)
        .send(),
        204,
    );
    assert_eq!(
        s.get(&format!("/api/v1/reports/{}/", f.report))
            .bearer(&t)
            .send()
            .status,
        404
    );
    assert_eq!(
        ok(s.get("/api/v1/reports/").bearer(&t).send(), 200)["count"],
        0
    );
    let org = ok(s.get("/api/v1/organization/").bearer(&t).send(), 200);
    assert_eq!(org["name"], "Default Organization");
}

#[test]
fn every_field_is_validated() {
    let s = Server::start();
    let t = s.owner_token();
    let f = fixture(&s, &t);
    let bad = |path: &str, method: &str, body: Value, field: &str| {
        let r = s.request(method, path).bearer(&t).json(&body);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "invalid"),
            "{path} {body}"
        );
        assert!(r.json()["errors"][field].is_array(), "{path}: {}", r.body);
    };
    bad(
        "/api/v1/data-sources/",
        "POST",
        json!({"name": "x", "source_type": "excel"}),
        "source_type",
    );
    bad(
        "/api/v1/data-sources/",
        "POST",
        json!({"name": "", "source_type": "file"}),
        "name",
    );
    bad(
        "/api/v1/reports/generate/",
        "POST",
        json!({"title": "x", "data_source_id": 9999}),
        "data_source_id",
    );
    bad(
        "/api/v1/reports/generate/",
        "POST",
        json!({"title": "", "data_source_id": f.data_source}),
        "title",
    );
    bad(
        "/api/v1/dashboards/",
        "POST",
        json!({"name": "x", "widgets": [{"kind": "chart"}]}),
        "widgets",
    );
    let many: Vec<Value> = (0..51).map(|_| json!({"type": "kpi"})).collect();
    bad(
        "/api/v1/dashboards/",
        "POST",
        json!({"name": "x", "widgets": many}),
        "widgets",
    );
    bad(
        "/api/v1/dashboards/",
        "POST",
        json!({"description": "no name"}),
        "name",
    );
    bad(
        "/api/v1/goals/",
        "POST",
        json!({"name": "g"}),
        "target_value",
    );
    bad(
        "/api/v1/goals/",
        "POST",
        json!({"name": "g", "target_value": 1, "due_date": "31/12/2026"}),
        "due_date",
    );
    bad(
        &format!("/api/v1/goals/{}/progress/", f.goal),
        "POST",
        json!({"value": "ten"}),
        "value",
    );
    bad(
        "/api/v1/users/",
        "POST",
        json!({"email": "nope", "password": "violet-tiger-99", "role": "viewer"}),
        "email",
    );
    bad(
        "/api/v1/users/",
        "POST",
        json!({"email": "a@b.c", "password": "violet-tiger-99", "role": "king"}),
        "role",
    );
    bad(
        "/api/v1/users/",
        "POST",
        json!({"email": "a@b.c", "password": "password", "role": "viewer"}),
        "password",
    );
    bad(
        &format!("/api/v1/reports/{}/public-link/", f.report),
        "POST",
        json!({"expires_in_days": 400}),
        "expires_in_days",
    );
    let owner = s
        .post("/api/v1/users/")
        .bearer(&t)
        .json(&json!({"email": "o2@b.c", "password": "violet-tiger-99", "role": "owner"}));
    assert_eq!(
        (owner.status, owner.error_code().as_str()),
        (403, "permission_denied")
    );
}

#[test]
fn lists_are_paginated_like_drf() {
    let s = Server::start();
    let t = s.owner_token();
    for i in 0..25 {
        ok(
            s.post("/api/v1/data-sources/")
                .bearer(&t)
                .json(&json!({"name": format!("source {i}"), "source_type": "file"})),
            201,
        );
    }
    let first = ok(s.get("/api/v1/data-sources/").bearer(&t).send(), 200);
    assert_eq!(first["count"], 25);
    assert_eq!(first["results"].as_array().unwrap().len(), 20);
    assert!(first["previous"].is_null());
    assert!(first["next"].as_str().unwrap().contains("page=2"));
    let second = ok(s.get("/api/v1/data-sources/?page=2").bearer(&t).send(), 200);
    assert_eq!(second["results"].as_array().unwrap().len(), 5);
    assert!(second["next"].is_null() && second["previous"].is_string());
    let capped = ok(
        s.get("/api/v1/data-sources/?page_size=500")
            .bearer(&t)
            .send(),
        200,
    );
    assert_eq!(capped["results"].as_array().unwrap().len(), 25);
    let past = s.get("/api/v1/data-sources/?page=3").bearer(&t).send();
    assert_eq!(
        (past.status, past.error_code().as_str()),
        (404, "not_found")
    );
}

/// The contract's scope table: each scope opens exactly its endpoints.
#[test]
fn every_scope_opens_exactly_its_endpoints() {
    let s = Server::start();
    let t = s.owner_token();
    let f = fixture(&s, &t);
    let (r, d, g) = (f.report, f.dashboard, f.goal);
    // (scope, method, path, body). Deletes aim at ids that do not exist: a 404 proves the
    // scope let the request through without destroying the fixture.
    let table: Vec<(&str, &str, String, Option<Value>)> = vec![
        ("reports:read", "GET", "/api/v1/reports/".into(), None),
        ("reports:read", "GET", format!("/api/v1/reports/{r}/"), None),
        (
            "reports:generate",
            "POST",
            "/api/v1/reports/generate/".into(),
            Some(json!({"title": "t", "data_source_id": f.data_source})),
        ),
        (
            "reports:delete",
            "DELETE",
            "/api/v1/reports/99999/".into(),
            None,
        ),
        (
            "reports:share",
            "POST",
            format!("/api/v1/reports/{r}/public-link/"),
            Some(json!({})),
        ),
        (
            "reports:share",
            "GET",
            format!("/api/v1/reports/{r}/public-link/"),
            None,
        ),
        (
            "reports:share",
            "DELETE",
            "/api/v1/reports/99999/public-link/".into(),
            None,
        ),
        ("dashboards:read", "GET", "/api/v1/dashboards/".into(), None),
        (
            "dashboards:read",
            "GET",
            format!("/api/v1/dashboards/{d}/"),
            None,
        ),
        (
            "dashboards:create",
            "POST",
            "/api/v1/dashboards/".into(),
            Some(json!({"name": "n"})),
        ),
        (
            "dashboards:update",
            "PATCH",
            format!("/api/v1/dashboards/{d}/"),
            Some(json!({"name": "m"})),
        ),
        (
            "dashboards:delete",
            "DELETE",
            "/api/v1/dashboards/99999/".into(),
            None,
        ),
        (
            "dashboards:refresh",
            "POST",
            format!("/api/v1/dashboards/{d}/refresh/"),
            None,
        ),
        (
            "dashboards:share",
            "POST",
            format!("/api/v1/dashboards/{d}/public-link/"),
            None,
        ),
        (
            "dashboards:share",
            "GET",
            format!("/api/v1/dashboards/{d}/public-link/"),
            None,
        ),
        (
            "dashboards:share",
            "DELETE",
            "/api/v1/dashboards/99999/public-link/".into(),
            None,
        ),
        (
            "data_sources:read",
            "GET",
            "/api/v1/data-sources/".into(),
            None,
        ),
        (
            "data_sources:read",
            "GET",
            format!("/api/v1/data-sources/{}/", f.data_source),
            None,
        ),
        ("usage:read", "GET", "/api/v1/usage/".into(), None),
        ("goals:read", "GET", "/api/v1/goals/".into(), None),
        ("goals:read", "GET", format!("/api/v1/goals/{g}/"), None),
        (
            "goals:read",
            "GET",
            format!("/api/v1/goals/{g}/progress/"),
            None,
        ),
    ];
    let scopes: Vec<&str> = {
        let mut v: Vec<&str> = table.iter().map(|row| row.0).collect();
        v.dedup();
        v
    };
    assert_eq!(scopes.len(), 13);
    for scope in &scopes {
        let key = create_key(&s, &t, json!({"name": scope, "scopes": [scope]}))["key"]
            .as_str()
            .unwrap()
            .to_string();
        for (needed, method, path, body) in &table {
            let req = s.request(method, path).bearer(&key);
            let resp = match body {
                Some(b) => req.json(b),
                None => req.send(),
            };
            if needed == scope {
                assert!(
                    resp.status < 400 || resp.status == 404,
                    "{scope} should open {method} {path}: {} {}",
                    resp.status,
                    resp.body
                );
            } else {
                assert_eq!(resp.status, 403, "{scope} must not open {method} {path}");
                assert_eq!(resp.error_code(), "insufficient_scope");
                let challenge = resp.header("www-authenticate").unwrap();
                assert!(
                    challenge.contains(&format!("scope=\"{needed}\"")),
                    "{challenge}"
                );
                assert!(resp.json()["message"].as_str().unwrap().contains(needed));
            }
        }
        // Endpoints in no scope are closed to every scoped key.
        let users = s.get("/api/v1/users/").bearer(&key).send();
        assert_eq!(users.error_code(), "insufficient_scope");
    }
    let unscoped = create_key(&s, &t, json!({"name": "all"}))["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.get("/api/v1/users/").bearer(&unscoped).send().status, 200);
    assert_eq!(
        s.get("/api/v1/audit-logs/").bearer(&unscoped).send().status,
        200
    );
}

/// The contract's role matrix, including own versus all.
#[test]
fn every_role_gets_exactly_its_permissions() {
    let s = Server::start();
    let owner = s.owner_token();
    let f = fixture(&s, &owner);
    let mut tokens = vec![("owner", owner.clone())];
    for role in ["administrator", "analyst", "member", "viewer"] {
        let email = format!("{role}@example.com");
        s.create_user(&email, role, "role-password-42");
        tokens.push((role, s.token(&email, "role-password-42")));
    }
    let rank = |role: &str| {
        ["viewer", "member", "analyst", "administrator", "owner"]
            .iter()
            .position(|r| *r == role)
            .unwrap()
    };
    for (role, t) in &tokens {
        let at_least = |min: &str| rank(role) >= rank(min);
        let expect = |allowed: bool, r: Resp, what: &str| {
            if allowed {
                assert!(
                    r.status < 400,
                    "{role} should {what}: {} {}",
                    r.status,
                    r.body
                );
            } else {
                assert_eq!(
                    (r.status, r.error_code().as_str()),
                    (403, "permission_denied"),
                    "{role} must not {what}"
                );
            }
        };
        for path in [
            "/api/v1/reports/",
            "/api/v1/dashboards/",
            "/api/v1/data-sources/",
            "/api/v1/goals/",
            "/api/v1/usage/",
            "/api/v1/organization/",
        ] {
            expect(true, s.get(path).bearer(t).send(), path);
        }
        expect(
            at_least("member"),
            s.post("/api/v1/reports/generate/")
                .bearer(t)
                .json(&json!({"title": "r", "data_source_id": f.data_source})),
            "generate",
        );
        let own = s
            .post("/api/v1/dashboards/")
            .bearer(t)
            .json(&json!({"name": "mine"}));
        expect(at_least("analyst"), own, "create dashboards");
        expect(
            at_least("analyst"),
            s.post(&format!("/api/v1/dashboards/{}/refresh/", f.dashboard))
                .bearer(t)
                .send(),
            "refresh",
        );
        expect(
            at_least("analyst"),
            s.post("/api/v1/goals/")
                .bearer(t)
                .json(&json!({"name": "g", "target_value": 1})),
            "create goals",
        );
        expect(
            at_least("analyst"),
            s.post(&format!("/api/v1/reports/{}/public-link/", f.report))
                .bearer(t)
                .send(),
            "share",
        );
        // The owner's dashboard: analysts may see it but not change it.
        expect(
            at_least("administrator"),
            s.request("PATCH", &format!("/api/v1/dashboards/{}/", f.dashboard))
                .bearer(t)
                .json(&json!({"description": role})),
            "change others' dashboards",
        );
        expect(
            at_least("administrator"),
            s.post("/api/v1/data-sources/")
                .bearer(t)
                .json(&json!({"name": "d", "source_type": "api"})),
            "create data sources",
        );
        expect(
            at_least("administrator"),
            s.get("/api/v1/users/").bearer(t).send(),
            "list users",
        );
        expect(
            at_least("administrator"),
            s.get("/api/v1/audit-logs/").bearer(t).send(),
            "read the audit log",
        );
        expect(
            at_least("owner"),
            s.request("PATCH", "/api/v1/organization/")
                .bearer(t)
                .json(&json!({"name": "Default Organization"})),
            "rename the organization",
        );
    }
    // Own: an analyst changes and deletes what they created.
    let analyst = &tokens[2].1;
    let mine = ok(
        s.post("/api/v1/dashboards/")
            .bearer(analyst)
            .json(&json!({"name": "analyst's"})),
        201,
    );
    ok(
        s.request("PATCH", &format!("/api/v1/dashboards/{}/", mine["id"]))
            .bearer(analyst)
            .json(&json!({"name": "renamed"})),
        200,
    );
    ok(
        s.request("DELETE", &format!("/api/v1/dashboards/{}/", mine["id"]))
            .bearer(analyst)
            .send(),
        204,
    );
    let theirs = s
        .request("DELETE", &format!("/api/v1/reports/{}/", f.report))
        .bearer(analyst)
        .send();
    assert_eq!(theirs.status, 403);
}

#[test]
fn another_organization_sees_nothing() {
    let s = Server::start();
    let t = s.owner_token();
    let f = fixture(&s, &t);
    ok(
        s.post(&format!("/api/v1/reports/{}/public-link/", f.report))
            .bearer(&t)
            .send(),
        201,
    );
    s.create_organization("Globex", "hank@globex.test", "globex-owner-pw-9");
    let other = s.token("hank@globex.test", "globex-owner-pw-9");
    let (r, d, g, ds) = (f.report, f.dashboard, f.goal, f.data_source);
    for (method, path) in [
        ("GET", format!("/api/v1/reports/{r}/")),
        ("DELETE", format!("/api/v1/reports/{r}/")),
        ("POST", format!("/api/v1/reports/{r}/public-link/")),
        ("GET", format!("/api/v1/reports/{r}/public-link/")),
        ("DELETE", format!("/api/v1/reports/{r}/public-link/")),
        ("GET", format!("/api/v1/dashboards/{d}/")),
        ("DELETE", format!("/api/v1/dashboards/{d}/")),
        ("POST", format!("/api/v1/dashboards/{d}/refresh/")),
        ("POST", format!("/api/v1/dashboards/{d}/public-link/")),
        ("GET", format!("/api/v1/goals/{g}/")),
        ("GET", format!("/api/v1/goals/{g}/progress/")),
        ("GET", format!("/api/v1/data-sources/{ds}/")),
        ("DELETE", format!("/api/v1/data-sources/{ds}/")),
        ("GET", "/api/v1/users/1/".to_string()),
        ("POST", "/api/v1/users/1/reset-mfa/".to_string()),
    ] {
        let resp = s.request(method, &path).bearer(&other).send();
        assert_eq!(resp.status, 404, "{method} {path}: {}", resp.body);
    }
    let patch = s
        .request("PATCH", &format!("/api/v1/goals/{g}/"))
        .bearer(&other)
        .json(&json!({"name": "x"}));
    assert_eq!(patch.status, 404);
    let generate = s
        .post("/api/v1/reports/generate/")
        .bearer(&other)
        .json(&json!({"title": "x", "data_source_id": ds}));
    assert_eq!(
        generate.status, 400,
        "another organization's data source is not a valid id"
    );
    for path in [
        "/api/v1/reports/",
        "/api/v1/dashboards/",
        "/api/v1/goals/",
        "/api/v1/data-sources/",
    ] {
        assert_eq!(
            ok(s.get(path).bearer(&other).send(), 200)["count"],
            0,
            "{path}"
        );
    }
    assert_eq!(
        ok(s.get("/api/v1/usage/").bearer(&other).send(), 200)["credits_used"],
        0
    );
    assert_eq!(
        ok(s.get("/api/v1/organization/").bearer(&other).send(), 200)["name"],
        "Globex"
    );
}

#[test]
fn twenty_concurrent_generations_cannot_overspend() {
    let s = server()
        .env("CLARIBI_CREDITS__MONTHLY_ALLOWANCE", "52")
        .start();
    let t = s.owner_token();
    let ds = ok(
        s.post("/api/v1/data-sources/")
            .bearer(&t)
            .json(&json!({"name": "d", "source_type": "file"})),
        201,
    );
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let generations: Vec<_> = (0..20)
            .map(|i| {
                let (s, t, id) = (&s, &t, &ds["id"]);
                scope.spawn(move || {
                    s.post("/api/v1/reports/generate/")
                        .bearer(t)
                        .json(&json!({"title": format!("r{i}"), "data_source_id": id}))
                        .status
                })
            })
            .collect();
        generations.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 402).count(),
        10,
        "{statuses:?}"
    );
    let usage = ok(s.get("/api/v1/usage/").bearer(&t).send(), 200);
    assert_eq!(
        (
            usage["credits_used"].as_i64(),
            usage["credits_remaining"].as_i64()
        ),
        (Some(50), Some(2))
    );
    let refresh_ok = s
        .post("/api/v1/dashboards/")
        .bearer(&t)
        .json(&json!({"name": "d"}));
    let d = ok(refresh_ok, 201);
    ok(
        s.post(&format!("/api/v1/dashboards/{}/refresh/", d["id"]))
            .bearer(&t)
            .send(),
        200,
    );
    ok(
        s.post(&format!("/api/v1/dashboards/{}/refresh/", d["id"]))
            .bearer(&t)
            .send(),
        200,
    );
    let broke = s
        .post(&format!("/api/v1/dashboards/{}/refresh/", d["id"]))
        .bearer(&t)
        .send();
    assert_eq!(
        (broke.status, broke.error_code().as_str()),
        (402, "insufficient_credits")
    );
}

#[test]
fn public_links_work_until_revoked_replaced_or_expired() {
    let s = Server::start();
    let t = s.owner_token();
    let f = fixture(&s, &t);
    let path = format!("/api/v1/reports/{}/public-link/", f.report);
    assert_eq!(s.get(&path).bearer(&t).send().status, 404, "no link yet");
    let link = ok(s.post(&path).bearer(&t).send(), 201);
    let token = link["token"].as_str().unwrap().to_string();
    assert!(token.len() >= 22);
    assert!(link["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/s/{token}")));
    assert!(link["expires_at"].is_string(), "30 days by default");
    for _ in 0..3 {
        let shared = ok(s.get(&format!("/public/reports/{token}/")).send(), 200);
        assert_eq!(shared["title"], "Q4");
        assert!(shared.get("credits_used").is_none() && shared.get("prompt").is_none());
        assert!(
            !shared.to_string().contains("How did we do?"),
            "the prompt leaks into a public read: {shared}"
        );
    }
    let page = s.get(&format!("/s/{token}")).send();
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.body.contains("<h1>Q4</h1>"));
    assert!(
        !page.body.contains("How did we do?"),
        "the prompt leaks into /s/"
    );
    // Styled by the console's stylesheet; nothing else loads, nothing runs.
    assert!(page.body.contains("href=\"/assets/app.css\""));
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.contains("style-src 'self'"), "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(
        !policy.contains("script-src") && !policy.contains("unsafe-inline"),
        "{policy}"
    );
    assert_eq!(ok(s.get(&path).bearer(&t).send(), 200)["view_count"], 4);
    assert_eq!(
        s.get(&format!("/public/dashboards/{token}/")).send().status,
        404,
        "a report token is not a dashboard"
    );
    assert_eq!(
        s.post(&format!("/public/reports/{token}/")).send().status,
        405
    );

    let replaced = ok(
        s.post(&path)
            .bearer(&t)
            .json(&json!({"expires_in_days": null})),
        201,
    );
    assert!(replaced["expires_at"].is_null());
    assert_eq!(
        s.get(&format!("/public/reports/{token}/")).send().status,
        404,
        "the old link died"
    );
    let token = replaced["token"].as_str().unwrap().to_string();
    ok(s.request("DELETE", &path).bearer(&t).send(), 204);
    assert_eq!(
        s.get(&format!("/public/reports/{token}/")).send().status,
        404,
        "revoked"
    );
    assert_eq!(s.request("DELETE", &path).bearer(&t).send().status, 404);

    let dpath = format!("/api/v1/dashboards/{}/public-link/", f.dashboard);
    let dlink = ok(
        s.post(&dpath)
            .bearer(&t)
            .json(&json!({"expires_in_days": 1})),
        201,
    );
    let dtoken = dlink["token"].as_str().unwrap();
    let shared = ok(s.get(&format!("/public/dashboards/{dtoken}")).send(), 200);
    assert_eq!(shared["widgets"][0]["type"], "chart");
    for field in ["name", "description", "updated_at", "last_refreshed_at"] {
        assert!(shared.get(field).is_some(), "{field}");
    }
    s.execute("UPDATE public_links SET expires_at = ?1", &[unix_now() - 1]);
    assert_eq!(
        s.get(&format!("/public/dashboards/{dtoken}/"))
            .send()
            .status,
        404,
        "expired"
    );
    let actions: Vec<String> = audit(&s, &t)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert!(
        actions.contains(&"public_link.created".into())
            && actions.contains(&"public_link.revoked".into())
    );
}

fn audit(s: &Server, t: &str) -> Vec<Value> {
    ok(
        s.get("/api/v1/audit-logs/export/?format=json")
            .bearer(t)
            .send(),
        200,
    )
    .as_array()
    .unwrap()
    .clone()
}

#[test]
fn role_changes_and_deactivation_reach_keys_and_sessions_at_once() {
    let s = Server::start();
    let owner = s.owner_token();
    let created = ok(
        s.post("/api/v1/users/").bearer(&owner).json(&json!({
            "email": "admin2@example.com", "password": "admin-password-7", "role": "administrator", "name": "Ada"
        })),
        201,
    );
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        s.post("/api/v1/users/")
            .bearer(&owner)
            .json(&json!({
        "email": "ADMIN2@example.com", "password": "admin-password-7", "role": "viewer"}))
            .status,
        409
    );
    let admin = s.token("admin2@example.com", "admin-password-7");
    let key = create_key(&s, &admin, json!({"name": "admin key"}))["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.get("/api/v1/users/").bearer(&key).send().status, 200);

    ok(
        s.request("PATCH", &format!("/api/v1/users/{id}/"))
            .bearer(&owner)
            .json(&json!({"role": "viewer"})),
        200,
    );
    let demoted = s.get("/api/v1/users/").bearer(&key).send();
    assert_eq!(
        (demoted.status, demoted.error_code().as_str()),
        (403, "permission_denied")
    );
    assert_eq!(
        s.get("/api/v1/users/").bearer(&admin).send().status,
        403,
        "the session too"
    );
    assert_eq!(
        s.get("/api/v1/reports/").bearer(&key).send().status,
        200,
        "a viewer still reads"
    );

    let to_owner = s
        .request("PATCH", &format!("/api/v1/users/{id}/"))
        .bearer(&owner)
        .json(&json!({"role": "owner"}));
    assert_eq!(to_owner.status, 403);
    ok(
        s.request("PATCH", &format!("/api/v1/users/{id}/"))
            .bearer(&owner)
            .json(&json!({"is_active": false})),
        200,
    );
    assert_eq!(s.get("/api/v1/reports/").bearer(&key).send().status, 401);
    assert_eq!(s.get("/api/auth/me/").bearer(&admin).send().status, 401);
    let login = s.login("admin2@example.com", "admin-password-7");
    assert_eq!(
        (login.status, login.error_code().as_str()),
        (401, "invalid_credentials")
    );
    ok(
        s.request("PATCH", &format!("/api/v1/users/{id}/"))
            .bearer(&owner)
            .json(&json!({"is_active": true})),
        200,
    );
    assert_eq!(
        s.login("admin2@example.com", "admin-password-7").status,
        200
    );
    assert_eq!(
        s.get("/api/v1/reports/").bearer(&key).send().status,
        401,
        "deactivation revoked the key for good"
    );
    let actions: Vec<String> = audit(&s, &owner)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    for a in [
        "user.created",
        "user.role_changed",
        "user.deactivated",
        "user.activated",
    ] {
        assert!(actions.contains(&a.to_string()), "{a}");
    }
}

#[test]
fn ownership_moves_only_by_transfer() {
    let s = Server::start();
    let owner = s.owner_token();
    s.create_user("next@example.com", "administrator", "next-owner-pw-5");
    let next_id = s.login("next@example.com", "next-owner-pw-5").json()["user"]["id"]
        .as_i64()
        .unwrap();
    let wrong = s
        .post("/api/v1/organization/transfer-ownership/")
        .bearer(&owner)
        .json(&json!({"user_id": next_id, "password": "not-mine-at-all"}));
    assert!(wrong.json()["errors"]["password"].is_array());
    ok(
        s.post("/api/v1/organization/transfer-ownership/")
            .bearer(&owner)
            .json(&json!({"user_id": next_id, "password": ADMIN_PASSWORD})),
        204,
    );
    assert_eq!(
        ok(s.get("/api/auth/me/").bearer(&owner).send(), 200)["role"],
        "administrator"
    );
    let next = s.token("next@example.com", "next-owner-pw-5");
    let renamed = ok(
        s.request("PATCH", "/api/v1/organization/")
            .bearer(&next)
            .json(&json!({"name": "Acme"})),
        200,
    );
    assert_eq!(renamed["name"], "Acme");
    assert_eq!(
        ok(s.get("/api/auth/me/").bearer(&next).send(), 200)["organization"],
        "Acme"
    );
    assert_eq!(
        s.request("PATCH", "/api/v1/organization/")
            .bearer(&owner)
            .json(&json!({"name": "x"}))
            .status,
        403
    );
}

#[test]
fn the_audit_log_filters_exports_and_keeps_no_secret() {
    let s = Server::start();
    let owner = s.owner_token();
    let login = s.login("owner@example.com", ADMIN_PASSWORD).json();
    let refresh = login["refresh"].as_str().unwrap().to_string();
    assert_eq!(
        s.login("owner@example.com", "a-wrong-password-1").status,
        401
    );
    let key = create_key(&s, &owner, json!({"name": "k"}))["key"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        s.post("/api/v1/users/").bearer(&owner).json(&json!({
        "email": "new@example.com", "password": "new-user-password-3", "role": "viewer"})),
        201,
    );
    ok(
        s.post("/api/auth/password/").bearer(&owner).json(&json!({
        "current_password": ADMIN_PASSWORD, "new_password": "changed-password-8"})),
        204,
    );

    let failed = ok(
        s.get("/api/v1/audit-logs/?action=login.failed")
            .bearer(&owner)
            .send(),
        200,
    );
    assert_eq!(failed["count"], 1);
    let entry = &failed["results"][0];
    for field in [
        "id",
        "at",
        "action",
        "outcome",
        "user_id",
        "api_key_prefix",
        "ip",
        "user_agent",
        "target_type",
        "target_id",
        "details",
    ] {
        assert!(entry.get(field).is_some(), "{field}");
    }
    assert_eq!(entry["details"]["email"], "owner@example.com");
    let by_user = ok(
        s.get("/api/v1/audit-logs/?user_id=1").bearer(&owner).send(),
        200,
    );
    assert!(by_user["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["user_id"] == 1));

    let csv = s
        .get("/api/v1/audit-logs/export/?format=csv")
        .bearer(&owner)
        .send();
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv.body.starts_with("id,at,action,outcome"));
    assert!(
        s.get("/api/v1/audit-logs/export/?format=xml")
            .bearer(&owner)
            .send()
            .status
            == 400
    );
    let json_export = ok(
        s.get("/api/v1/audit-logs/export/?format=json")
            .bearer(&owner)
            .send(),
        200,
    );
    let everything = format!("{json_export}{}", csv.body);
    for secret in [
        ADMIN_PASSWORD,
        "a-wrong-password-1",
        "new-user-password-3",
        "changed-password-8",
        &key,
        &refresh,
        &owner,
    ] {
        assert!(
            !everything.contains(secret),
            "a secret reached the audit log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_ends_sessions_and_keys_and_demotion_narrows_at_once() {
    let h = harness().await;
    let owner = h.owner().await;
    let made = h
        .call(
            "POST",
            "/api/v1/users/",
            Some(&owner),
            Some(json!({"email": "ana@example.com", "password": "analyst-pass-3", "role": "analyst"})),
        )
        .await;
    let id = made.body["id"].clone();
    let ana = h.login("ana@example.com", "analyst-pass-3").await.body["access"]
        .as_str()
        .unwrap()
        .to_string();
    let key = h.key(&ana, json!({"name": "ana's"})).await;
    let dashboard = json!({"name": "mine"});
    assert_eq!(
        h.call(
            "POST",
            "/api/v1/dashboards/",
            Some(&ana),
            Some(dashboard.clone())
        )
        .await
        .status,
        201
    );
    let demote = h
        .call(
            "PATCH",
            &format!("/api/v1/users/{id}/"),
            Some(&owner),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(demote.status, 200);
    assert_eq!(
        h.call("POST", "/api/v1/dashboards/", Some(&ana), Some(dashboard))
            .await
            .status,
        403
    );
    let off = h
        .call(
            "PATCH",
            &format!("/api/v1/users/{id}/"),
            Some(&owner),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(off.status, 200);
    assert_eq!(
        h.call("GET", "/api/auth/me/", Some(&ana), None)
            .await
            .status,
        401
    );
    let with_key = h
        .call(
            "GET",
            "/api/v1/auth/verify/",
            Some(key["key"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(with_key.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_export_walks_up_from_since_id_as_json_lines() {
    let h = harness().await;
    let owner = h.owner().await;
    for name in ["a", "b", "c"] {
        h.key(&owner, json!({"name": name})).await;
    }
    let export = |query: &'static str| {
        let owner = owner.clone();
        let h = &h;
        async move {
            let path = format!("/api/v1/audit-logs/export/?{query}");
            h.call("GET", &path, Some(&owner), None).await
        }
    };
    let lines = |answer: &Answer| -> Vec<Value> {
        answer
            .text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = export("format=jsonl&since_id=0").await;
    assert_eq!(all.status, 200, "{}", all.text);
    let all = lines(&all);
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        &actions[actions.len() - 3..],
        ["api_key.created"; 3],
        "{actions:?}"
    );
    // After an id: only what came later, whatever the format.
    let after = ids[ids.len() - 3];
    let later = h
        .call(
            "GET",
            &format!("/api/v1/audit-logs/export/?format=json&since_id={after}"),
            Some(&owner),
            None,
        )
        .await;
    let later_ids: Vec<i64> = later
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(later_ids, ids[ids.len() - 2..]);
    // Past the newest: nothing, not an error.
    let none = export("format=jsonl&since_id=999999").await;
    assert_eq!((none.status, none.text.as_str()), (200, ""));
    // Without since_id the export is the log newest first, as before.
    let newest_first = lines(&export("format=jsonl").await);
    assert_eq!(newest_first[0]["id"].as_i64(), ids.last().copied());
    for (query, field) in [
        ("since_id=-1", "since_id"),
        ("since_id=x", "since_id"),
        ("since_id=", "since_id"),
        ("since_id=%2B5", "since_id"),
        ("format=xml", "format"),
    ] {
        let bad = h
            .call(
                "GET",
                &format!("/api/v1/audit-logs/export/?{query}"),
                Some(&owner),
                None,
            )
            .await;
        assert_eq!(bad.status, 400, "{query}: {}", bad.text);
        assert!(
            bad.body["errors"][field].is_array() || bad.text.contains(field),
            "{query}: {}",
            bad.text
        );
    }
}

/// Contract 10.6: `/s/` of a revoked or unknown link is a page saying the link no longer works
/// (`404`) for a person, and the usual JSON error for a client that asks for JSON.
#[test]
fn a_dead_shared_link_is_a_page_saying_so_and_json_when_asked() {
    let s = Server::start();
    let t = s.owner_token();
    let f = fixture(&s, &t);
    let path = format!("/api/v1/reports/{}/public-link/", f.report);
    let token = ok(s.post(&path).bearer(&t).send(), 201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.get(&format!("/s/{token}")).send().status, 200);
    ok(s.request("DELETE", &path).bearer(&t).send(), 204);
    for dead in [token.as_str(), "never-was-a-token"] {
        for accept in ["text/html,application/xhtml+xml;q=0.9", "*/*"] {
            let page = s.get(&format!("/s/{dead}")).header("Accept", accept).send();
            assert_eq!(page.status, 404, "{dead} {accept}");
            assert!(page
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/html")));
            assert!(
                page.body.contains("This link no longer works"),
                "{}",
                page.body
            );
            assert!(page
                .header("content-security-policy")
                .is_some_and(|p| p.contains("style-src 'self'")));
            assert_eq!(page.header("vary"), Some("Accept"));
            assert_eq!(page.header("cache-control"), Some("no-store"));
        }
        let json = s
            .get(&format!("/s/{dead}"))
            .header("Accept", "application/json")
            .send();
        assert_eq!(
            (json.status, json.error_code().as_str()),
            (404, "not_found")
        );
        assert_eq!(json.header("vary"), Some("Accept"));
    }
    // An expired link is dead the same way.
    let dpath = format!("/api/v1/dashboards/{}/public-link/", f.dashboard);
    let dtoken = ok(s.post(&dpath).bearer(&t).send(), 201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let live = s.get(&format!("/s/{dtoken}")).send();
    assert_eq!(live.status, 200);
    assert_eq!(live.header("cache-control"), Some("no-store"));
    s.execute("UPDATE public_links SET expires_at = ?1", &[unix_now() - 1]);
    let expired = s
        .get(&format!("/s/{dtoken}"))
        .header("Accept", "text/html")
        .send();
    assert_eq!(expired.status, 404);
    assert!(expired.body.contains("This link no longer works"));
}
