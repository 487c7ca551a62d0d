//! In-process tests of the whole pipeline: the route table, authentication, handlers and the
//! operations layer against a temporary store, through `warp::test`, with cheap argon2. Breadth
//! lives here, by feature; the end-to-end suite keeps to what needs the real binary.
//!
//! Tests speak through `support`, a synchronous client shaped like the end-to-end harness, so
//! a test moves between the two levels unchanged. Those that reach into the application
//! between two requests (a principal held across a revoke, a lease run out) use the
//! asynchronous `Harness` below.

mod api_keys;
mod authenticator;
mod contract;
mod feed;
mod key_lifecycle;
mod lists;
mod passkeys;
mod passwords;
#[path = "../../../tests/e2e/pg.rs"]
mod pg;
mod policy;
mod resources;
mod service_accounts;
mod sessions;
mod support;

use std::sync::Arc;

use serde_json::{json, Value};

use crate::config::Config;
use crate::ops;
use crate::ops::{App, AppState};

use support::{ADMIN_EMAIL, ADMIN_PASSWORD};

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
        ("CLARIBI_BOOTSTRAP__ADMIN_EMAIL", ADMIN_EMAIL),
        ("CLARIBI_BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD),
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
        let answer = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
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
