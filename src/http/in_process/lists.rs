//! Lists: `search` and `ordering` (contract 10.6), with `count`, `next` and `previous` keeping
//! both, on every list the console pages through.

use serde_json::{json, Value};

use super::api_keys::create_key;
use super::support::{Resp, Server};

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// `field` of every result of a page, in order.
fn column(page: &Value, field: &str) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_str().unwrap_or("").to_string())
        .collect()
}

/// The path and query of a `next` or `previous` link.
fn path_of(link: &Value) -> String {
    let link = link.as_str().expect("a link");
    let after_scheme = link.split_once("://").unwrap().1;
    after_scheme[after_scheme.find('/').unwrap()..].to_string()
}

fn refused(r: Resp, field: &str) {
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "invalid"),
        "{}",
        r.body
    );
    assert!(r.json()["errors"][field].is_array(), "{}", r.body);
}

#[test]
fn lists_search_in_any_case_order_as_asked_and_keep_both_from_page_to_page() {
    let s = Server::start();
    let t = s.owner_token();
    let ds = s
        .post("/api/v1/data-sources/")
        .bearer(&t)
        .json(&json!({"name": "Warehouse", "source_type": "database"}));
    assert_eq!(ds.status, 201, "{}", ds.body);
    let ds = ds.json()["id"].clone();
    for title in [
        "Q4 revenue",
        "Churn",
        "q1 REVENUE",
        "50% done",
        "Revenue_by_region",
    ] {
        let r = s
            .post("/api/v1/reports/generate/")
            .bearer(&t)
            .json(&json!({"title": title, "data_source_id": ds, "prompt": "How?"}));
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let get = |query: &str| {
        s.get(&format!("/api/v1/reports/?{query}"))
            .bearer(&t)
            .send()
    };

    // Any case, counted exactly, in the order asked (names compare without case).
    let page = ok(get("search=Revenue&ordering=title"));
    assert_eq!(page["count"], 3);
    assert_eq!(
        column(&page, "title"),
        ["q1 REVENUE", "Q4 revenue", "Revenue_by_region"]
    );
    let page = ok(get("search=revenue&ordering=-title"));
    assert_eq!(
        column(&page, "title"),
        ["Revenue_by_region", "Q4 revenue", "q1 REVENUE"]
    );
    // Without an ordering, the newest first; without a search, everything.
    let page = ok(get(""));
    assert_eq!(page["count"], 5);
    assert_eq!(column(&page, "title")[0], "Revenue_by_region");
    // `%` and `_` are text, not patterns.
    assert_eq!(column(&ok(get("search=%25")), "title"), ["50% done"]);
    assert_eq!(column(&ok(get("search=_")), "title"), ["Revenue_by_region"]);
    assert_eq!(ok(get("search=nothing%20like%20it"))["count"], 0);
    // Text beyond ASCII is found as written (in any case on PostgreSQL).
    let r = s
        .post("/api/v1/reports/generate/")
        .bearer(&t)
        .json(&json!({"title": "Ölpreise Übersicht", "data_source_id": ds, "prompt": "?"}));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        column(&ok(get("search=%C3%96lpreise")), "title"),
        ["Ölpreise Übersicht"]
    );
    assert_eq!(
        column(&ok(get("search=%C3%9Cbersicht")), "title"),
        ["Ölpreise Übersicht"]
    );

    // The links of a searched, ordered list keep both.
    let first = ok(get("search=REVENUE&ordering=title&page_size=2"));
    assert_eq!(first["count"], 3);
    assert_eq!(column(&first, "title"), ["q1 REVENUE", "Q4 revenue"]);
    let next = path_of(&first["next"]);
    assert!(
        next.contains("search=REVENUE") && next.contains("ordering=title"),
        "{next}"
    );
    let second = ok(s.get(&next).bearer(&t).send());
    assert_eq!(second["count"], 3);
    assert_eq!(column(&second, "title"), ["Revenue_by_region"]);
    assert!(second["next"].is_null());
    let previous = path_of(&second["previous"]);
    assert!(
        previous.contains("search=REVENUE") && previous.contains("ordering=title"),
        "{previous}"
    );

    // What a list does not order by is refused, naming `ordering`; so is a search too long.
    refused(get("ordering=prompt"), "ordering");
    refused(get("ordering=-"), "ordering");
    refused(get("ordering=title;DROP%20TABLE%20reports"), "ordering");
    refused(get(&format!("search={}", "a".repeat(201))), "search");
    assert_eq!(ok(get(""))["count"], 6);

    // The other content lists search their names.
    for (path, body) in [
        (
            "/api/v1/dashboards/",
            json!({"name": "Sales overview", "widgets": []}),
        ),
        (
            "/api/v1/goals/",
            json!({"name": "Sales target", "target_value": 10}),
        ),
        (
            "/api/v1/data-sources/",
            json!({"name": "Sales API", "source_type": "api"}),
        ),
    ] {
        let r = s.post(path).bearer(&t).json(&body);
        assert_eq!(r.status, 201, "{path}: {}", r.body);
        let other = s.post(path).bearer(&t).json(&{
            let mut b = body.clone();
            b["name"] = "Zebra".into();
            b
        });
        assert_eq!(other.status, 201, "{path}: {}", other.body);
        let found = ok(s.get(&format!("{path}?search=sALES")).bearer(&t).send());
        assert_eq!(found["count"], 1, "{path}: {found}");
        assert_eq!(column(&found, "name"), [body["name"].as_str().unwrap()]);
        let named = ok(s.get(&format!("{path}?ordering=-name")).bearer(&t).send());
        assert_eq!(column(&named, "name")[0], "Zebra", "{path}");
        refused(
            s.get(&format!("{path}?ordering=widgets")).bearer(&t).send(),
            "ordering",
        );
    }
}

#[test]
fn users_keys_and_the_audit_log_search_what_they_show_and_order_by_their_fields() {
    let s = Server::start();
    let t = s.owner_token();
    s.create_user("ana@example.com", "analyst", "amber-falcon-93");
    s.create_user("bob@corp.example", "viewer", "amber-falcon-93");

    // Users: by email and name, ordered by email.
    let users = |query: &str| ok(s.get(&format!("/api/v1/users/?{query}")).bearer(&t).send());
    assert_eq!(column(&users("search=CORP"), "email"), ["bob@corp.example"]);
    assert_eq!(
        column(&users("ordering=-email"), "email"),
        ["owner@example.com", "bob@corp.example", "ana@example.com"]
    );
    assert_eq!(
        column(&users(""), "email")[0],
        "owner@example.com",
        "by id without an ordering"
    );
    // Roles by rank; users without a name last either way.
    assert_eq!(
        column(&users("ordering=-role"), "email"),
        ["bob@corp.example", "ana@example.com", "owner@example.com"]
    );
    let bob = s.user_id(&t, "bob@corp.example");
    let named = s
        .request("PATCH", &format!("/api/v1/users/{bob}/"))
        .bearer(&t)
        .json(&json!({"name": "Bob"}));
    assert_eq!(named.status, 200, "{}", named.body);
    // The owner is "Administrator", Bob is "Bob", Ana has no name.
    assert_eq!(
        column(&users("ordering=name"), "email"),
        ["owner@example.com", "bob@corp.example", "ana@example.com"]
    );
    assert_eq!(
        column(&users("ordering=-name"), "email"),
        ["bob@corp.example", "owner@example.com", "ana@example.com"]
    );
    refused(
        s.get("/api/v1/users/?ordering=password_hash")
            .bearer(&t)
            .send(),
        "ordering",
    );

    // Keys: by name and prefix; by expiry with never-expiring keys last either way.
    let month = create_key(
        &s,
        &t,
        json!({"name": "ETL nightly", "expires_in_days": 30}),
    );
    let quarter = create_key(&s, &t, json!({"name": "CI deploy", "expires_in_days": 90}));
    create_key(&s, &t, json!({"name": "Dashboard embed"}));
    let keys = |query: &str| {
        ok(s.get(&format!("/api/auth/api-keys/?{query}"))
            .bearer(&t)
            .send())
    };
    assert_eq!(column(&keys("search=ci%20DEP"), "name"), ["CI deploy"]);
    let prefix = month["prefix"].as_str().unwrap();
    assert_eq!(
        column(&keys(&format!("search={prefix}")), "name"),
        ["ETL nightly"]
    );
    assert_eq!(
        column(&keys("ordering=expires_at"), "name"),
        ["ETL nightly", "CI deploy", "Dashboard embed"]
    );
    assert_eq!(
        column(&keys("ordering=-expires_at"), "name"),
        ["CI deploy", "ETL nightly", "Dashboard embed"]
    );
    assert_eq!(
        column(&keys("ordering=name"), "name"),
        ["CI deploy", "Dashboard embed", "ETL nightly"]
    );
    // The organization's keys, searched by their owner's email.
    let ana = s.token("ana@example.com", "amber-falcon-93");
    create_key(&s, &ana, json!({"name": "ana's notebook"}));
    let all = |query: &str| {
        ok(s.get(&format!("/api/auth/api-keys/?all=true&{query}"))
            .bearer(&t)
            .send())
    };
    assert_eq!(column(&all("search=ana@"), "name"), ["ana's notebook"]);
    assert_eq!(all("")["count"], 4);
    assert_eq!(quarter["name"], "CI deploy");
    refused(
        s.get("/api/auth/api-keys/?ordering=key_hash")
            .bearer(&t)
            .send(),
        "ordering",
    );

    // The audit log: by action, email and key prefix; the count is exact.
    let log = |query: &str| {
        ok(s.get(&format!("/api/v1/audit-logs/?page_size=100&{query}"))
            .bearer(&t)
            .send())
    };
    let created = log("search=API_KEY.CREATED");
    assert_eq!(created["count"], 4, "{created}");
    assert!(column(&created, "action")
        .iter()
        .all(|a| a == "api_key.created"));
    // Ana's own actions, and the owner's about her (the details name her).
    let by_ana = log("search=ana@example");
    let entries = by_ana["results"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["action"] == "user.created"));
    assert!(entries.iter().any(|e| e["action"] == "api_key.created"));
    assert!(entries.iter().all(|e| e["user_email"] == "ana@example.com"
        || e["details"].to_string().contains("ana@example.com")));
    // A key's history by its prefix.
    let by_prefix = log(&format!("search={prefix}"));
    assert_eq!(column(&by_prefix, "action"), ["api_key.created"]);
    let ordered = column(&log("ordering=action"), "action");
    let mut sorted = ordered.clone();
    sorted.sort();
    assert_eq!(ordered, sorted);
    // Filters and search together.
    let both = log("action=api_key.created&search=ana@");
    assert_eq!(both["count"], 1, "{both}");
    assert_eq!(both["results"][0]["user_email"], "ana@example.com");
    refused(
        s.get("/api/v1/audit-logs/?ordering=details")
            .bearer(&t)
            .send(),
        "ordering",
    );
}

/// The audit log's filters combine, each a condition only when given, on the list and the
/// export alike, and the count stays exact.
#[test]
fn audit_filters_combine_and_the_count_stays_exact() {
    let s = Server::start();
    let owner = s.owner_token();
    s.create_user("ana@example.com", "analyst", "amber-falcon-93");
    for password in ["wrong-password-1", "wrong-password-2"] {
        assert_eq!(s.login("ana@example.com", password).status, 401);
    }
    assert_eq!(
        s.login(super::support::ADMIN_EMAIL, "wrong-password-3")
            .status,
        401
    );
    let ana = s.user_id(&owner, "ana@example.com");
    let count = |query: &str| {
        let r = s
            .get(&format!("/api/v1/audit-logs/?{query}"))
            .bearer(&owner)
            .send();
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        r.json()["count"].as_u64().unwrap()
    };
    assert_eq!(count("action=login.failed"), 3);
    assert_eq!(count(&format!("action=login.failed&user_id={ana}")), 2);
    assert_eq!(
        count(&format!(
            "action=login.failed&user_id={ana}&since=2000-01-01"
        )),
        2
    );
    assert_eq!(count("action=login.failed&until=2000-01-01"), 0);
    assert_eq!(
        count(&format!("user_id={ana}&page_size=1")),
        count(&format!("user_id={ana}"))
    );
    let export = s
        .get(&format!(
            "/api/v1/audit-logs/export/?format=jsonl&action=login.failed&user_id={ana}"
        ))
        .bearer(&owner)
        .send();
    assert_eq!(export.status, 200, "{}", export.body);
    let lines: Vec<&str> = export.body.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{}", export.body);
    assert!(lines.iter().all(|l| l.contains("login.failed")));
}

/// The audit log's pages in its own order (found by the entries' positions, whatever the depth):
/// every page, for the organization, one action and one user, holds the entries the export
/// lists in the same places, with an exact `count`; past the end is a `404`.
#[test]
fn audit_pages_at_any_depth_are_the_exports_entries_in_order() {
    let s = Server::start();
    let owner = s.owner_token();
    s.create_user("ana@example.com", "analyst", "amber-falcon-93");
    let ana = s.user_id(&owner, "ana@example.com");
    for i in 0..3 {
        assert_eq!(
            s.login("ana@example.com", &format!("wrong-{i}")).status,
            401
        );
        s.token("ana@example.com", "amber-falcon-93");
    }
    for query in [
        String::new(),
        "action=login.failed".to_string(),
        format!("user_id={ana}"),
    ] {
        let export = s
            .get(&format!("/api/v1/audit-logs/export/?format=json&{query}"))
            .bearer(&owner)
            .send();
        let expected: Vec<i64> = ok(export)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect();
        assert!(expected.len() >= 3, "{query}: {expected:?}");
        let mut listed = Vec::new();
        let pages = expected.len().div_ceil(2);
        for page in 1..=pages {
            let body = ok(s
                .get(&format!(
                    "/api/v1/audit-logs/?{query}&page_size=2&page={page}"
                ))
                .bearer(&owner)
                .send());
            assert_eq!(body["count"], expected.len(), "{query} page {page}");
            listed.extend(
                body["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_i64().unwrap()),
            );
        }
        assert_eq!(listed, expected, "{query}");
        let past = s
            .get(&format!(
                "/api/v1/audit-logs/?{query}&page_size=2&page={}",
                pages + 1
            ))
            .bearer(&owner)
            .send();
        assert_eq!(past.status, 404, "{query}: {}", past.body);
    }
}

/// The key lists' totals are kept, not counted: after creations, revocations, a rotation, a
/// deactivation and keys whose time ran out, each list's `count` (the organization's and one
/// owner's, for every status) is the number of keys it pages through.
#[test]
fn key_list_totals_stay_exact_through_revocations_rotations_and_expiry() {
    let s = Server::start();
    let owner = s.owner_token();
    s.create_user("ana@example.com", "administrator", "amber-falcon-93");
    s.create_user("bo@example.com", "member", "bronze-otter-41");
    let ana = s.token("ana@example.com", "amber-falcon-93");
    let bo = s.token("bo@example.com", "bronze-otter-41");
    let mut ids = Vec::new();
    for (token, n) in [(&owner, 4), (&ana, 5), (&bo, 3)] {
        for i in 0..n {
            let key = create_key(
                &s,
                token,
                json!({"name": format!("k{i}"), "expires_in_days": 30}),
            );
            ids.push((token.clone(), key["id"].as_i64().unwrap()));
        }
    }
    let revoke = |token: &str, id: i64| {
        let r = s
            .request("DELETE", &format!("/api/auth/api-keys/{id}/"))
            .bearer(token)
            .send();
        assert!(matches!(r.status, 200 | 204), "{}", r.body);
    };
    revoke(&owner, ids[0].1);
    revoke(&owner, ids[5].1);
    // Twice: counted once.
    revoke(&owner, ids[5].1);
    let rotated = s
        .post(&format!("/api/auth/api-keys/{}/rotate/", ids[6].1))
        .bearer(&ana)
        .json(&json!({}));
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    // Two keys whose time ran out, behind the server's back.
    s.execute(
        "UPDATE api_keys SET expires_at = 1 WHERE id = ?1 OR id = ?2",
        &[ids[1].1, ids[7].1],
    );
    let bo_id = s.user_id(&owner, "bo@example.com");
    let r = s
        .request("PATCH", &format!("/api/v1/users/{bo_id}/"))
        .bearer(&owner)
        .json(&json!({"is_active": false}));
    assert_eq!(r.status, 200, "{}", r.body);
    let lists = ["?all=true", "?all=false"];
    let statuses = ["", "&status=active", "&status=expired", "&status=revoked"];
    for (token, who) in [(&owner, "owner"), (&ana, "ana")] {
        for list in lists {
            let mut total = 0;
            for status in statuses {
                let query = format!("/api/auth/api-keys/{list}{status}&page_size=100");
                let body = ok(s.get(&query).bearer(token).send());
                let listed = body["results"].as_array().unwrap().len();
                assert_eq!(body["count"], listed, "{who} {query}");
                if !status.is_empty() {
                    total += listed;
                    let wanted = &status["&status=".len()..];
                    assert!(
                        body["results"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .all(|k| k["status"] == wanted),
                        "{who} {query}: {body}"
                    );
                } else if list == "?all=true" {
                    assert_eq!(listed, 13, "{who}: twelve keys and a successor");
                }
            }
            let all = ok(s
                .get(&format!("/api/auth/api-keys/{list}&page_size=100"))
                .bearer(token)
                .send());
            assert_eq!(all["count"], total, "{who} {list}: the statuses add up");
        }
    }
}
