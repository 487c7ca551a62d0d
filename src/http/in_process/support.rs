//! A synchronous client of the server in process, shaped like the end-to-end harness
//! (`tests/e2e/support.rs`) so that a test reads the same at either level. Requests go through
//! the whole route table (`http::routes`: authentication, guards, handlers, operations) on a
//! runtime of the server's own, against a temporary SQLite store (or a database of the run's
//! PostgreSQL cluster with `CLARIBI_TEST_STORE=postgres`), with cheap argon2 and no socket.
//! What needs a process, a signal, the CLI or the wire stays end to end.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::config::Config;
use crate::ops::{self, App, AppState};

pub const ADMIN_EMAIL: &str = "owner@example.com";
pub const ADMIN_PASSWORD: &str = "violet-tiger-42";

/// Where requests come from.
const CLIENT: &str = "127.0.0.1:40000";

/// A server in this process; its runtime, store and data directory go when it is dropped.
pub struct Server {
    app: AppState,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

pub struct Options {
    env: Vec<(String, String)>,
}

pub fn server() -> Options {
    Options { env: Vec::new() }
}

impl Options {
    /// A setting, as the `CLARIBI_...` variable that names it.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn start(self) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data").display().to_string();
        let mut vars: Vec<(&str, &str)> = vec![
            ("CLARIBI_SERVER__DATA_DIR", &data),
            ("CLARIBI_BOOTSTRAP__ADMIN_EMAIL", ADMIN_EMAIL),
            ("CLARIBI_BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD),
            // Hashing at the cost of production would be most of a test's time.
            ("CLARIBI_AUTH__ARGON2_MEMORY_KIB", "64"),
            ("CLARIBI_AUTH__ARGON2_ITERATIONS", "1"),
        ];
        // `CLARIBI_TEST_STORE=postgres` (the second pass of `scripts/test`): a fresh database
        // of the run's throwaway cluster, as the end-to-end tests get.
        let database = super::pg::enabled().then(|| super::pg::cluster().database());
        if let Some(url) = &database {
            vars.push(("CLARIBI_DATABASE__URL", url));
        }
        vars.extend(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let config = Config::load_from_env_for_test(&vars)
            .expect("test configuration")
            .config;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let app: AppState = {
            let _inside = runtime.enter();
            Arc::new(App::open(config).expect("open the application"))
        };
        runtime
            .block_on(ops::accounts::bootstrap(&app))
            .expect("bootstrap");
        let starting = app.clone();
        let started = runtime
            .block_on(async move {
                tokio::task::spawn_blocking(move || ops::feed::start(&starting, "in-process")).await
            })
            .expect("feed task")
            .expect("feed");
        // The background work of `serve` that answers depend on: the feed (changes made
        // around the API) and the usage flush (last use, counts, refused uses audited).
        runtime.spawn(ops::feed::follow(app.clone(), started));
        runtime.spawn(ops::usage::flush_periodically(app.clone()));
        Server {
            app,
            runtime: Some(runtime),
            _dir: dir,
        }
    }
}

impl Server {
    pub fn start() -> Server {
        server().start()
    }

    /// The id of the organization's user with `email`, as `token`'s holder lists them.
    pub fn user_id(&self, token: &str, email: &str) -> i64 {
        let users = self
            .get(&format!("/api/v1/users/?search={email}"))
            .bearer(token)
            .send();
        assert_eq!(users.status, 200, "{}", users.body);
        let found = users.json();
        assert_eq!(found["count"], 1, "{email}: {found}");
        found["results"][0]["id"].as_i64().unwrap()
    }

    /// The server's data directory (`server.data_dir`).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    pub fn request(&self, method: &str, path: &str) -> Req<'_> {
        Req {
            server: self,
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
        }
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.request("GET", path)
    }

    pub fn post(&self, path: &str) -> Req<'_> {
        self.request("POST", path)
    }

    pub fn login(&self, email: &str, password: &str) -> Resp {
        self.post("/api/auth/login/")
            .json(&json!({"email": email, "password": password}))
    }

    /// Logs in as the bootstrap owner and returns the access token.
    pub fn owner_token(&self) -> String {
        self.token(ADMIN_EMAIL, ADMIN_PASSWORD)
    }

    /// Logs in (no second factor) and returns the access token.
    pub fn token(&self, email: &str, password: &str) -> String {
        let resp = self.login(email, password);
        assert_eq!(resp.status, 200, "{email}: {}", resp.body);
        resp.json()["access"].as_str().unwrap().to_string()
    }

    /// Creates a user of the owner's organization, as the owner would, and checks it can log in.
    pub fn create_user(&self, email: &str, role: &str, password: &str) {
        let owner = self.owner_token();
        let made = self
            .post("/api/v1/users/")
            .bearer(&owner)
            .json(&json!({"email": email, "role": role, "password": password}));
        assert_eq!(made.status, 201, "user {email}: {}", made.body);
        let first = self.login(email, password);
        assert_eq!(first.status, 200, "user {email} not usable: {}", first.body);
    }

    /// A new organization with its owner, as `claribi org create` makes it.
    pub fn create_organization(&self, name: &str, owner_email: &str, password: &str) {
        let app = self.app.clone();
        let (name, owner) = (
            name.to_string(),
            crate::domain::Email::parse(owner_email).expect("owner email"),
        );
        let password = crate::domain::Secret::new(password);
        self.runtime()
            .block_on(async move {
                let hash =
                    ops::accounts::hash_new_password(&app, "password", password, owner.as_str())
                        .await?;
                ops::accounts::create_organization(
                    &app,
                    &ops::Actor::System("test"),
                    name,
                    owner,
                    String::new(),
                    hash,
                    ops::accounts::OwnerPassword::SetByOther,
                )
                .await
            })
            .expect("organization");
    }

    /// Runs a statement on the store behind the server's back (what an operator with a
    /// database shell can do); `?1`, `?2`... take `params`.
    pub fn execute(&self, statement: &str, params: &[i64]) -> u64 {
        let (statement, params) = (statement.to_string(), params.to_vec());
        self.app
            .store
            .write_blocking(move |db| {
                let params: Vec<&dyn crate::store::sql::Param> = params
                    .iter()
                    .map(|p| p as &dyn crate::store::sql::Param)
                    .collect();
                db.execute(&statement, &params)
            })
            .expect("statement")
    }

    /// Every audit entry of every organization, oldest first.
    pub fn audit(&self) -> Vec<crate::store::audit::Stored> {
        self.app
            .store
            .read_blocking(|db| crate::store::audit::after(db, 0, u32::MAX))
            .expect("audit log")
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("running")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

pub struct Req<'a> {
    server: &'a Server,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

/// A response, whatever its status.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the contract's error shape and returns the `error` code.
    pub fn error_code(&self) -> String {
        let body = self.json();
        assert_eq!(body["status"].as_u64(), Some(self.status as u64), "{body}");
        assert!(body["message"].is_string(), "{body}");
        body["error"].as_str().expect("error code").to_string()
    }
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    pub fn send(self) -> Resp {
        self.finish(None)
    }

    pub fn json(self, body: &Value) -> Resp {
        self.finish(Some(("application/json", body.to_string().into_bytes())))
    }

    pub fn raw(self, content_type: &str, body: &[u8]) -> Resp {
        self.finish(Some((content_type, body.to_vec())))
    }

    fn finish(self, body: Option<(&str, Vec<u8>)>) -> Resp {
        let mut request = warp::test::request()
            .method(&self.method)
            .path(&self.path)
            .remote_addr(CLIENT.parse().expect("client address"));
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let app = self.server.app.clone();
        self.server.runtime().block_on(async move {
            let response = request.reply(&crate::http::routes(app)).await;
            // A streamed body (the audit export) is sent by the connection loop, not warp:
            // read here from its channel.
            let streamed = response
                .extensions()
                .get::<crate::http::reply::Streamed>()
                .and_then(|s| s.0.lock().unwrap().take());
            let mut bytes = response.body().to_vec();
            if let Some(mut chunks) = streamed {
                while let Some(chunk) = chunks.recv().await {
                    bytes.extend_from_slice(&chunk.expect("streamed chunk"));
                }
            }
            Resp {
                status: response.status().as_u16(),
                headers: response
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            }
        })
    }
}

/// The time now, in seconds since the epoch.
pub fn unix_now() -> i64 {
    crate::domain::now()
}

/// Runs `test` once more if the clock hour turned while it ran. Rate limits count in windows
/// aligned to the clock hour, so a test that uses a limit up cannot tell a new window from a
/// failure: a failure within one hour is reported as it is.
pub fn within_one_rate_window<T>(mut test: impl FnMut() -> T) -> T {
    loop {
        let hour = unix_now() / 3600;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut test));
        if unix_now() / 3600 != hour {
            continue;
        }
        match outcome {
            Ok(value) => return value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
