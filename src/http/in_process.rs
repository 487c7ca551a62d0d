//! In-process tests of the whole pipeline: the route table, authentication, handlers and the
//! operations layer against a temporary store, through `warp::test`, with cheap argon2. Breadth
//! lives here; the end-to-end suite keeps to what needs the real binary.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::config::Config;
use crate::error::ApiError;
use crate::ops::{self, Actor};
use crate::ops::{App, AppState};

const OWNER: &str = "owner@example.com";
const PASSWORD: &str = "violet-tiger-42";

struct Harness {
    _dir: tempfile::TempDir,
    app: AppState,
}

async fn harness() -> Harness {
    harness_with(&[]).await
}

/// A harness whose configuration also takes `settings` (`CLARIBI_...` variables).
async fn harness_with(settings: &[(&str, &str)]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let mut vars = vec![
        ("CLARIBI_SERVER__DATA_DIR", data.as_str()),
        ("CLARIBI_BOOTSTRAP__ADMIN_EMAIL", OWNER),
        ("CLARIBI_BOOTSTRAP__ADMIN_PASSWORD", PASSWORD),
        ("CLARIBI_AUTH__ARGON2_MEMORY_KIB", "64"),
        ("CLARIBI_AUTH__ARGON2_ITERATIONS", "1"),
    ];
    vars.extend_from_slice(settings);
    let loaded = Config::load_from_env_for_test(&vars).unwrap();
    let app: AppState = Arc::new(App::open(loaded.config).unwrap());
    crate::ops::accounts::bootstrap(&app).await.unwrap();
    let starting = app.clone();
    tokio::task::spawn_blocking(move || ops::feed::start(&starting, "in-process"))
        .await
        .unwrap()
        .unwrap();
    Harness { _dir: dir, app }
}

struct Answer {
    status: u16,
    body: Value,
    /// The body as text (what is not one JSON document: JSON Lines, CSV).
    text: String,
}

impl Harness {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = warp::test::request()
            .method(method)
            .path(path)
            .remote_addr("127.0.0.1:40000".parse().unwrap());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.reply(&super::routes(self.app.clone())).await;
        // A streamed body (the audit export) is sent by the connection loop, not warp: read
        // here from its channel.
        let streamed = response
            .extensions()
            .get::<crate::http::reply::Streamed>()
            .and_then(|s| s.0.lock().unwrap().take());
        let mut bytes = response.body().to_vec();
        if let Some(mut chunks) = streamed {
            while let Some(chunk) = chunks.recv().await {
                bytes.extend_from_slice(&chunk.unwrap());
            }
        }
        Answer {
            status: response.status().as_u16(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn login(&self, email: &str, password: &str) -> Answer {
        self.call(
            "POST",
            "/api/auth/login/",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    async fn owner(&self) -> String {
        let answer = self.login(OWNER, PASSWORD).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body["access"].as_str().unwrap().to_string()
    }

    async fn key(&self, token: &str, body: Value) -> Value {
        let answer = self
            .call("POST", "/api/auth/api-keys/", Some(token), Some(body))
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_on_the_next_request_and_its_writes_fail() {
    let h = harness().await;
    let owner = h.owner().await;
    let key = h.key(&owner, json!({"name": "etl"})).await;
    let secret = key["key"].as_str().unwrap();
    assert_eq!(
        h.call("GET", "/api/v1/auth/verify/", Some(secret), None)
            .await
            .status,
        200
    );
    // A principal authenticated before the revoke, as a request waiting for its body is.
    let principal = h
        .app
        .auth
        .authenticate_key(
            secret,
            crate::domain::now(),
            &crate::auth::refusals::Client::default(),
        )
        .unwrap();
    let revoke = h
        .call(
            "DELETE",
            &format!("/api/auth/api-keys/{}/", key["id"]),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(revoke.status, 204);
    // Revoking it again answers only once every server has the revocation: it is a change
    // with a feed entry of its own, not a no-op that skips the confirmation.
    let before = h.app.store.read(crate::store::feed::head).await.unwrap();
    let again = h
        .call(
            "DELETE",
            &format!("/api/auth/api-keys/{}/", key["id"]),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(again.status, 204);
    let now = h.app.store.read(crate::store::feed::head).await.unwrap();
    assert_eq!(now, before + 1);
    let after = h
        .call("GET", "/api/v1/auth/verify/", Some(secret), None)
        .await;
    assert_eq!(
        (after.status, after.body["error"].as_str()),
        (401, Some("api_key_revoked"))
    );
    let authorized =
        crate::auth::principal::authorize(principal, crate::auth::principal::Guard::Any).unwrap();
    let caller = ops::Caller::new(authorized, ops::Client::default());
    let organization = caller.organization_id();
    let write = ops::change(&h.app, &caller.actor(), move |c| {
        Ok(crate::store::data_sources::create(
            c.tx,
            organization,
            "late",
            "file",
            1,
        )?)
    })
    .await;
    assert!(matches!(write, Err(ApiError::ApiKeyRevoked)), "{write:?}");
    let sources = h
        .call("GET", "/api/v1/data-sources/", Some(&owner), None)
        .await;
    assert_eq!(sources.body["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_rotated_once_and_only_by_its_creator() {
    let h = harness().await;
    let owner = h.owner().await;
    let key = h
        .key(&owner, json!({"name": "ci", "scopes": ["reports:read"]}))
        .await;
    let path = format!("/api/auth/api-keys/{}/rotate/", key["id"]);
    let rotated = h.call("POST", &path, Some(&owner), None).await;
    assert_eq!(rotated.status, 201);
    assert_eq!(rotated.body["scopes"], json!(["reports:read"]));
    assert_eq!(h.call("POST", &path, Some(&owner), None).await.status, 409);

    let made = h
        .call(
            "POST",
            "/api/v1/users/",
            Some(&owner),
            Some(json!({"email": "adam@example.com", "password": "admin-password-5", "role": "administrator"})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let admin = h.login("adam@example.com", "admin-password-5").await.body["access"]
        .as_str()
        .unwrap()
        .to_string();
    let successor = format!("/api/auth/api-keys/{}/rotate/", rotated.body["id"]);
    let refused = h.call("POST", &successor, Some(&admin), None).await;
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (403, Some("permission_denied"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_checked_the_password_before_a_reset_opens_no_session() {
    let h = harness().await;
    let user = h
        .app
        .store
        .read(|c| {
            crate::store::users::find_by_email(c, &crate::domain::Email::parse(OWNER).unwrap())
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
    assert_eq!(h.login(OWNER, PASSWORD).await.status, 401);
    assert_eq!(h.login(OWNER, "another-pass-99").await.status, 200);
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
async fn past_its_lease_a_server_reads_the_feed_before_it_answers() {
    let h = harness().await;
    let owner = h.owner().await;
    let victim = h.owner().await;
    let me = h.call("GET", "/api/auth/me/", Some(&owner), None).await;
    assert_eq!(me.status, 200);
    let user_id = me.body["id"].as_i64().unwrap();
    // The lease ran out: this server could not publish its position (say, the database
    // refuses writes). Another server then revokes the second session; this one has not
    // read that change.
    h.app.auth.live.current_until(ops::feed::mono_ms() - 1);
    h.app
        .store
        .write(move |tx| {
            let newest = crate::store::sessions::live_for_user(tx, user_id)?
                .into_iter()
                .map(|s| s.id)
                .max()
                .unwrap();
            crate::store::sessions::revoke(tx, newest)?;
            crate::store::feed::append(tx, crate::store::feed::Kind::Session, newest)?;
            Ok(())
        })
        .await
        .unwrap();
    // It reads the feed itself before answering: the revoked session is refused at once,
    // the other one still works, and it is ready.
    let refused = h.call("GET", "/api/auth/me/", Some(&victim), None).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let kept = h.call("GET", "/api/auth/me/", Some(&owner), None).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_eq!(h.call("GET", "/readyz", None, None).await.status, 200);

    // When the feed cannot be read either, it cannot know what it missed: it refuses every
    // authenticated request and is not ready, at once (no request waits for the database
    // that has just failed), until the follower's next poll reads the feed again.
    let database = h.app.config.database.path(&h.app.config.server);
    let other = rusqlite::Connection::open(&database).unwrap();
    other
        .execute_batch("ALTER TABLE feed_head RENAME TO feed_head_away")
        .unwrap();
    let refused = h.call("GET", "/api/auth/me/", Some(&owner), None).await;
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (503, Some("unavailable"))
    );
    assert_eq!(h.call("GET", "/readyz", None, None).await.status, 503);
    assert_eq!(h.call("GET", "/healthz", None, None).await.status, 200);
    other
        .execute_batch("ALTER TABLE feed_head_away RENAME TO feed_head")
        .unwrap();
    // Until a poll of the feed works, the refusal stands without another try.
    let refused = h.call("GET", "/api/auth/me/", Some(&owner), None).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(ops::feed::read_feed(&h.app).await.is_ok());
    assert_eq!(h.call("GET", "/readyz", None, None).await.status, 200);
    let back = h.call("GET", "/api/auth/me/", Some(&owner), None).await;
    assert_eq!(back.status, 200, "{}", back.body);
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
        let answer = h.login(OWNER, PASSWORD).await;
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
