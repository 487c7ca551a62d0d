//! Entry points for the fuzz targets in `fuzz/`, compiled only with the `fuzzing` feature
//! (never in a shipped build). Each runs the same code as a request does; nothing here is a copy.
// A fuzz harness reports what it finds by panicking, and may fail loudly when it cannot set up.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::{Arc, OnceLock};

use warp::http::{HeaderName, HeaderValue, Method};

use super::router::{Space, Verb};
use super::{ROUTER, ROUTES};
use crate::config::Config;
use crate::ops::{App, AppState};

/// The router and its path normalization: the pattern `path` resolves to, if any.
pub fn route(method: &[u8], path: &str) -> Option<&'static str> {
    let method = Method::from_bytes(method).ok()?;
    match ROUTER.find(&method, path) {
        super::router::Match::Found(route, _) => Some(route.pattern),
        _ => None,
    }
}

/// Every route as a request path a client would send, `{id}` and `{token}` filled in.
pub fn route_paths(id: &str, token: &str) -> Vec<(Method, String)> {
    ROUTES
        .iter()
        .map(|r| {
            let method = match r.verb {
                Verb::Get => Method::GET,
                Verb::Post => Method::POST,
                Verb::Patch => Method::PATCH,
                Verb::Delete => Method::DELETE,
            };
            let path = r.pattern.replace("{id}", id).replace("{token}", token);
            let path = match r.space {
                Space::Api => format!("/api/{path}/"),
                Space::Root if path.is_empty() => "/".to_string(),
                Space::Root => format!("/{path}"),
            };
            (method, path)
        })
        .collect()
}

/// Every property name of every request and answer schema in the OpenAPI document: the
/// words the request target builds its JSON bodies from.
pub fn field_names() -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    out.extend(props.keys().cloned());
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let doc: serde_json::Value =
        serde_json::from_str(&crate::http::openapi::DOCUMENT).unwrap_or_default();
    let mut out = Vec::new();
    walk(&doc, &mut out);
    out.sort();
    out.dedup();
    out
}

/// A whole server in this process: the application on a fresh data directory, its owner's
/// access token and an API key, and a runtime to answer on.
pub struct Stack {
    runtime: tokio::runtime::Runtime,
    app: AppState,
    _dir: tempfile::TempDir,
    pub owner_token: String,
    pub key: String,
}

/// The stack, made once per fuzzing process.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        // On /dev/shm when there is one: every accepted write syncs.
        let dir = tempfile::Builder::new()
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temp dir");
        let data = dir.path().join("data").display().to_string();
        let loaded = Config::load_from_env_for_test(&[
            ("CLARIBI_SERVER__DATA_DIR", &data),
            ("CLARIBI_BOOTSTRAP__ADMIN_EMAIL", "owner@example.com"),
            ("CLARIBI_BOOTSTRAP__ADMIN_PASSWORD", "violet-tiger-42"),
            ("CLARIBI_AUTH__ARGON2_MEMORY_KIB", "64"),
            ("CLARIBI_AUTH__ARGON2_ITERATIONS", "1"),
            ("CLARIBI_RATE_LIMITS__GENERAL_PER_HOUR", "4000000000"),
            ("CLARIBI_RATE_LIMITS__GENERATION_PER_HOUR", "4000000000"),
        ])
        .expect("config");
        let app: AppState = Arc::new(App::open(loaded.config).expect("open"));
        let (owner_token, key) = runtime.block_on(async {
            crate::ops::accounts::bootstrap(&app)
                .await
                .expect("bootstrap");
            let starting = app.clone();
            tokio::task::spawn_blocking(move || crate::ops::feed::start(&starting, "fuzz"))
                .await
                .expect("join")
                .expect("feed");
            let login = call(
                &app,
                Method::POST,
                "/api/auth/login/",
                &[("content-type", "application/json")],
                br#"{"email":"owner@example.com","password":"violet-tiger-42"}"#,
            )
            .await;
            let token = login["access"].as_str().expect("token").to_string();
            let bearer = format!("Bearer {token}");
            let key = call(
                &app,
                Method::POST,
                "/api/auth/api-keys/",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &bearer),
                ],
                br#"{"name":"fuzz"}"#,
            )
            .await;
            (token, key["key"].as_str().expect("key").to_string())
        });
        Stack {
            runtime,
            app,
            _dir: dir,
            owner_token,
            key,
        }
    })
}

async fn call(
    app: &AppState,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> serde_json::Value {
    let mut request = warp::test::request()
        .method(method.as_str())
        .path(path)
        .remote_addr(([127, 0, 0, 1], 40000).into());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .body(body)
        .reply(&crate::http::routes(app.clone()))
        .await;
    serde_json::from_slice(response.body()).unwrap_or_default()
}

impl Stack {
    /// Answers one request; `None` when warp's test client could not even form it (a path
    /// that is not a URI, a header that is not one). Panics only if the server does.
    pub fn request(
        &self,
        method: &[u8],
        path: &str,
        headers: &[(Vec<u8>, Vec<u8>)],
        body: &[u8],
    ) -> Option<u16> {
        let method = Method::from_bytes(method).ok()?;
        if !path.starts_with('/') || path.parse::<warp::http::Uri>().is_err() {
            return None;
        }
        let mut request = warp::test::request()
            .method(method.as_str())
            .path(path)
            .remote_addr(([127, 0, 0, 1], 40000).into());
        for (name, value) in headers {
            let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            else {
                return None;
            };
            request = request.header(name, value);
        }
        let filter = crate::http::routes(self.app.clone());
        let response = self.runtime.block_on(request.body(body).reply(&filter));
        let status = response.status().as_u16();
        assert!(
            status != 500,
            "500 for {method} {path}: {:?}",
            response.body()
        );
        Some(status)
    }
}

/// The configuration loader on `text` as the configuration file.
pub fn config(text: &[u8]) {
    static FILE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = FILE.get_or_init(|| {
        tempfile::Builder::new()
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temp dir")
    });
    let path = dir.path().join("claribi.toml");
    std::fs::write(&path, text).expect("write");
    let _ = Config::load(crate::config::Source::Explicit(&path));
}
