//! The end-to-end harness: starts the real `claribi` binary on port 0 with its own data
//! directory, waits for it to listen, and talks HTTP to it as a client would.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const ADMIN_EMAIL: &str = "owner@example.com";
pub const ADMIN_PASSWORD: &str = "violet-tiger-42";

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_claribi"))
}

/// A running server; killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    dir: Arc<tempfile::TempDir>,
    env: Vec<(String, String)>,
    log: Arc<Mutex<String>>,
}

pub struct Options {
    env: Vec<(String, String)>,
    bootstrap: bool,
    store: Store,
}

/// The database a test's server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    /// SQLite, or PostgreSQL when the run says so (`CLARIBI_TEST_STORE=postgres`).
    Default,
    /// A test about SQLite itself (its files, locks, backups).
    Sqlite,
    /// A test about several servers on PostgreSQL.
    Postgres,
}

impl Options {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Starts the server with this soft limit of open files (as systemd gives services 1024).
    pub fn open_files(self, soft: u32) -> Self {
        self.env("CLARIBI_TEST_NOFILE", &soft.to_string())
    }

    /// The shipped argon2id cost (`claribi.toml`'s), for a test about what hashing costs.
    pub fn production_hashing(self) -> Self {
        self.env("CLARIBI_AUTH__ARGON2_MEMORY_KIB", "19456")
            .env("CLARIBI_AUTH__ARGON2_ITERATIONS", "2")
    }

    /// A test about SQLite itself: runs on SQLite in every run.
    pub fn sqlite(mut self) -> Self {
        self.store = Store::Sqlite;
        self
    }

    /// On a fresh PostgreSQL database of the run's test cluster, in every run.
    pub fn postgres(mut self) -> Self {
        self.store = Store::Postgres;
        self
    }

    /// No bootstrap variables: the server makes admin@localhost with a random password.
    pub fn without_bootstrap(mut self) -> Self {
        self.bootstrap = false;
        self
    }

    pub fn start(self) -> Server {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut env = vec![
            (
                "CLARIBI_SERVER__BIND".to_string(),
                "127.0.0.1:0".to_string(),
            ),
            (
                "CLARIBI_SERVER__DATA_DIR".to_string(),
                dir.path().join("data").display().to_string(),
            ),
            ("CLARIBI_LOG__LEVEL".to_string(), "info".to_string()),
        ];
        // Cheap argon2id (1 MiB, one pass): what these tests check is what a password opens,
        // not what it costs, and the production cost (19 MiB, two passes) on every login and
        // start-up of some hundred servers took about 12 s of the SQLite pass's test time on
        // two cores. The tests about the cost itself ask for it (`production_hashing`).
        for (k, v) in [
            ("CLARIBI_AUTH__ARGON2_MEMORY_KIB", "1024"),
            ("CLARIBI_AUTH__ARGON2_ITERATIONS", "1"),
        ] {
            env.push((k.to_string(), v.to_string()));
        }
        if self.bootstrap {
            env.push(("CLARIBI_BOOTSTRAP__ADMIN_EMAIL".into(), ADMIN_EMAIL.into()));
            env.push((
                "CLARIBI_BOOTSTRAP__ADMIN_PASSWORD".into(),
                ADMIN_PASSWORD.into(),
            ));
        }
        let postgres = match self.store {
            Store::Default => crate::pg::enabled(),
            Store::Sqlite => false,
            Store::Postgres => true,
        };
        if postgres {
            env.push((
                "CLARIBI_DATABASE__URL".into(),
                crate::pg::cluster().database(),
            ));
        }
        env.extend(self.env);
        Server::spawn(dir, env)
    }
}

pub fn server() -> Options {
    Options {
        env: Vec::new(),
        bootstrap: true,
        store: Store::Default,
    }
}

impl Server {
    pub fn start() -> Server {
        server().start()
    }

    fn spawn(dir: Arc<tempfile::TempDir>, env: Vec<(String, String)>) -> Server {
        let nofile = env.iter().find(|(k, _)| k == "CLARIBI_TEST_NOFILE");
        let mut command = match nofile {
            // prlimit sets the limit on itself, then executes the server in its place.
            Some((_, soft)) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={soft}:")).arg("--").arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        command
            .arg("serve")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start claribi");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    // Pretty logs end the address at a space, JSON logs at the quote.
                    let addr: String = rest
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    let _ = tx.send(addr);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start:\n{}", log.lock().unwrap());
            }
        };
        Server {
            child: Some(child),
            base: format!("http://{addr}"),
            dir,
            env,
            log,
        }
    }

    /// The PostgreSQL database it runs on, if it does.
    pub fn database_url(&self) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == "CLARIBI_DATABASE__URL")
            .map(|(_, v)| v.clone())
    }

    /// A server of its own (own data directory) on the same PostgreSQL database: another
    /// machine behind the load balancer. Its key files (JWT secret, MFA key) are copied, as
    /// an administrator copies them to every server.
    pub fn another_on_same_database(&self) -> Server {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        for file in ["jwt-secret", "mfa-key"] {
            std::fs::copy(self.data_dir().join(file), data.join(file)).expect("copy key file");
        }
        let env = self
            .env
            .iter()
            .map(|(k, v)| match k.as_str() {
                "CLARIBI_SERVER__DATA_DIR" => (k.clone(), data.display().to_string()),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        Server::spawn(dir, env)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A second server on the same data directory and database, on a port of its own.
    pub fn beside(&self) -> Server {
        Server::spawn(self.dir.clone(), self.env.clone())
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`, ...) to the server process.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// SIGKILL, then start again on the same data directory.
    pub fn kill_and_restart(mut self) -> Server {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("wait");
        }
        Server::spawn(self.dir.clone(), self.env.clone())
    }

    /// Kills the server, runs `change` on its stopped files, and starts it again.
    pub fn kill_and_restart_with(mut self, change: impl FnOnce()) -> Server {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("wait");
        }
        change();
        Server::spawn(self.dir.clone(), self.env.clone())
    }

    /// SIGTERM (a clean stop), runs `change` on the stopped installation, starts again.
    pub fn stop_and_restart_with(mut self, change: impl FnOnce(&Server)) -> Server {
        let status = self.stop();
        assert!(status.success(), "{status:?}");
        change(&self);
        Server::spawn(self.dir.clone(), self.env.clone())
    }

    /// SIGTERM, runs `change` on the stopped installation, starts again with `env` added
    /// (a setting changed between the two runs).
    pub fn stop_and_restart_on(
        mut self,
        change: impl FnOnce(&Server),
        env: &[(&str, &str)],
    ) -> Server {
        let status = self.stop();
        assert!(status.success(), "{status:?}");
        change(&self);
        let mut all = self.env.clone();
        all.retain(|(k, _)| !env.iter().any(|(e, _)| e == k));
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Server::spawn(self.dir.clone(), all)
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.stop()
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a CLI command against this server's configuration, with `stdin` as its input.
    pub fn cli(&self, args: &[&str], stdin: &str) -> std::process::Output {
        self.cli_with(&[], args, stdin)
    }

    /// `cli` with extra environment variables.
    pub fn cli_with(
        &self,
        env: &[(&str, &str)],
        args: &[&str],
        stdin: &str,
    ) -> std::process::Output {
        let mut command = Command::new(binary());
        command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("run claribi");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().expect("claribi output")
    }

    pub fn request(&self, method: &str, path: &str) -> Req {
        Req {
            inner: ureq::request(method, &self.url(path)).timeout(Duration::from_secs(30)),
        }
    }

    pub fn get(&self, path: &str) -> Req {
        self.request("GET", path)
    }

    pub fn post(&self, path: &str) -> Req {
        self.request("POST", path)
    }

    pub fn login(&self, email: &str, password: &str) -> Resp {
        self.post("/api/auth/login/")
            .json(&serde_json::json!({"email": email, "password": password}))
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

    /// `claribi demo seed` into the bootstrap organization: data sources, `reports` reports,
    /// dashboards and a goal.
    pub fn demo_seed(&self, reports: u32) {
        let out = self.cli(
            &[
                "demo",
                "seed",
                "--org",
                "Default Organization",
                "--reports",
                &reports.to_string(),
            ],
            "",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates a user through the CLI; the command returns once the running server has it.
    pub fn create_user(&self, email: &str, role: &str, password: &str) {
        let out = self.cli(
            &[
                "user",
                "create",
                "--org",
                "Default Organization",
                "--email",
                email,
                "--role",
                role,
            ],
            &format!("{password}\n"),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let first = self.login(email, password);
        assert_eq!(first.status, 200, "user {email} not usable: {}", first.body);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub struct Req {
    inner: ureq::Request,
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

impl Req {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.inner = self.inner.set(name, value);
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    pub fn send(self) -> Resp {
        finish(self.inner.call())
    }

    pub fn json(self, body: &Value) -> Resp {
        finish(self.inner.send_json(body.clone()))
    }

    pub fn raw(self, content_type: &str, body: &[u8]) -> Resp {
        finish(
            self.inner
                .set("Content-Type", content_type)
                .send_bytes(body),
        )
    }
}

fn finish(result: Result<ureq::Response, ureq::Error>) -> Resp {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|name| {
            response
                .header(&name)
                .map(|v| (name.clone(), v.to_string()))
        })
        .collect();
    let body = response.into_string().unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

/// A raw HTTP/1.1 exchange, for what a client library will not send (chunked bodies, huge
/// headers). Returns the status code.
pub fn raw_http(base: &str, request: &[u8]) -> u16 {
    use std::io::Read;
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A raw HTTP/1.1 exchange that reads the whole answer (the request should say
/// `Connection: close`): its status and body, for headers a client library will not send.
pub fn raw_exchange(base: &str, request: &[u8]) -> (u16, String) {
    use std::io::Read;
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, b)| b.to_string());
    (status, body)
}

/// A parameter of `Sql`'s statements.
#[derive(Debug, Clone, Copy)]
pub enum P<'a> {
    I(i64),
    T(&'a str),
}

/// A column of `Sql`'s rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Cell {
    pub fn int(&self) -> i64 {
        match self {
            Cell::Int(n) => *n,
            other => panic!("not an integer: {other:?}"),
        }
    }

    pub fn opt_int(&self) -> Option<i64> {
        match self {
            Cell::Null => None,
            other => Some(other.int()),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            other => panic!("not text: {other:?}"),
        }
    }

    pub fn opt_text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            other => Some(other.text()),
        }
    }
}

/// The server's database, for a test's own reads and changes behind the server's back: the
/// SQLite file, or its PostgreSQL database. Statements use `?1`, `?2` on both.
pub enum Sql {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl Server {
    pub fn sql(&self) -> Sql {
        match self.database_url() {
            Some(url) => {
                Sql::Postgres(postgres::Client::connect(&url, postgres::NoTls).expect("connect"))
            }
            None => {
                let conn = rusqlite::Connection::open(self.data_dir().join("claribi.db")).unwrap();
                conn.busy_timeout(Duration::from_secs(5)).unwrap();
                Sql::Sqlite(conn)
            }
        }
    }
}

fn sqlite_values(params: &[P<'_>]) -> Vec<rusqlite::types::Value> {
    params
        .iter()
        .map(|p| match *p {
            P::I(n) => rusqlite::types::Value::Integer(n),
            P::T(t) => rusqlite::types::Value::Text(t.to_string()),
        })
        .collect()
}

fn postgres_values(params: &[P<'_>]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|p| match *p {
            P::I(n) => Box::new(n) as Box<dyn postgres::types::ToSql + Sync>,
            P::T(t) => Box::new(t.to_string()),
        })
        .collect()
}

fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

impl Sql {
    pub fn execute(&mut self, sql: &str, params: &[P<'_>]) -> u64 {
        match self {
            Sql::Sqlite(conn) => {
                let values = sqlite_values(params);
                conn.execute(sql, rusqlite::params_from_iter(values))
                    .unwrap() as u64
            }
            Sql::Postgres(client) => {
                let owned = postgres_values(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    owned.iter().map(|b| b.as_ref()).collect();
                client.execute(&dollars(sql), &refs).unwrap()
            }
        }
    }

    pub fn rows(&mut self, sql: &str, params: &[P<'_>]) -> Vec<Vec<Cell>> {
        match self {
            Sql::Sqlite(conn) => {
                let values = sqlite_values(params);
                let mut stmt = conn.prepare(sql).unwrap();
                let columns = stmt.column_count();
                stmt.query_map(rusqlite::params_from_iter(values), |r| {
                    (0..columns)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Null => Cell::Null,
                                rusqlite::types::ValueRef::Integer(n) => Cell::Int(n),
                                rusqlite::types::ValueRef::Real(f) => Cell::Real(f),
                                rusqlite::types::ValueRef::Text(t) => {
                                    Cell::Text(String::from_utf8_lossy(t).into_owned())
                                }
                                rusqlite::types::ValueRef::Blob(_) => Cell::Null,
                            })
                        })
                        .collect()
                })
                .unwrap()
                .map(Result::unwrap)
                .collect()
            }
            Sql::Postgres(client) => {
                use postgres::types::Type;
                let owned = postgres_values(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    owned.iter().map(|b| b.as_ref()).collect();
                client
                    .query(&dollars(sql), &refs)
                    .unwrap()
                    .iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| match *row.columns()[i].type_() {
                                Type::INT8 => {
                                    row.get::<_, Option<i64>>(i).map_or(Cell::Null, Cell::Int)
                                }
                                Type::INT4 => row
                                    .get::<_, Option<i32>>(i)
                                    .map_or(Cell::Null, |n| Cell::Int(n.into())),
                                Type::BOOL => row
                                    .get::<_, Option<bool>>(i)
                                    .map_or(Cell::Null, |b| Cell::Int(b.into())),
                                Type::FLOAT8 => {
                                    row.get::<_, Option<f64>>(i).map_or(Cell::Null, Cell::Real)
                                }
                                _ => row
                                    .get::<_, Option<String>>(i)
                                    .map_or(Cell::Null, Cell::Text),
                            })
                            .collect()
                    })
                    .collect()
            }
        }
    }

    /// The first column of the first row.
    pub fn one(&mut self, sql: &str, params: &[P<'_>]) -> Cell {
        self.rows(sql, params)
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .expect("a row")
    }

    /// Moves the feed head on: a change made behind the server's back then reaches it.
    pub fn bump_feed(&mut self) {
        self.execute("UPDATE feed_head SET seq = seq + 1", &[]);
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs `test` once more if the clock hour turned while it ran. Rate limits count in windows
/// aligned to the clock hour, so a test that uses a limit up cannot tell a new window from a
/// failure: a failure within one hour is reported as it is.
pub fn within_one_rate_window<T>(mut test: impl FnMut() -> T) -> T {
    loop {
        let hour = unix_now() / 3600;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut test));
        if unix_now() / 3600 != hour {
            eprintln!("the clock hour turned while the test ran: running it again");
            continue;
        }
        match outcome {
            Ok(value) => return value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

pub use crate::pg::free_port;

/// SIGTERM to the counterpart a test started (slapd, rsyslogd), as its service manager
/// stops it, and waits for it to end; nothing when it is not running.
pub fn terminate(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
    }
}
