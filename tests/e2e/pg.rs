//! A throwaway PostgreSQL for the end-to-end tests: one cluster per test run, in a temporary
//! directory, on a free loopback port, run as an unprivileged user (PostgreSQL refuses root,
//! and CI runs as root: then as the `postgres` user that Debian's package creates). Each server
//! a test starts gets a database of its own (or shares one with `Server::beside`). The cluster
//! stops when the test process ends: a watchdog beside it stops it as soon as our process is
//! gone, however the tests end.
//!
//! `CLARIBI_TEST_STORE=postgres` runs every end-to-end test that is about behaviour on
//! PostgreSQL instead of SQLite (`scripts/test` runs the suite both ways), and the library's
//! in-process tests of the contract, which include this file.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A TCP port on loopback that nothing listens on (for a counterpart the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether this run's servers use PostgreSQL.
pub fn enabled() -> bool {
    std::env::var("CLARIBI_TEST_STORE").is_ok_and(|v| v == "postgres")
}

pub struct Cluster {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    owner: Option<String>,
    next: AtomicU32,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The run's cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(Cluster::start)
}

fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("postgres").exists());
    versions.sort();
    versions
        .pop()
        .expect("PostgreSQL is not installed: scripts/test installs Debian's postgresql package")
}

fn is_root() -> bool {
    // The effective user of /proc/self is ours.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

impl Cluster {
    /// A cluster of a test's own (to be stopped and started again without the others').
    pub fn start_private() -> Cluster {
        Cluster::start()
    }

    fn start() -> Cluster {
        static PRIVATE: AtomicU32 = AtomicU32::new(0);
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!(
            "claribi-pg-{}-{}",
            std::process::id(),
            PRIVATE.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let owner = is_root().then(|| "postgres".to_string());
        if let Some(user) = &owner {
            let ok = Command::new("chown")
                .args([&format!("{user}:"), dir.to_str().unwrap()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the cluster directory to {user}");
        }
        let cluster = Cluster {
            port: free_port(),
            dir,
            bin,
            owner,
            next: AtomicU32::new(0),
        };
        let data = cluster.dir.join("data");
        let out = cluster
            .as_owner(&cluster.bin.join("initdb"))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
            ])
            .args(["--no-locale", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.run();
        cluster
    }

    /// A command run as the cluster's owner.
    fn as_owner(&self, program: &Path) -> Command {
        match &self.owner {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    /// Starts the server (again) on the cluster's port, with a watchdog that stops it when
    /// the test process is gone. Durability is not what these tests are about: no fsync.
    pub fn run(&self) {
        let data = self.dir.join("data");
        let script = format!(
            "{postgres} -D {data} -p {port} -k {sock} -c listen_addresses=127.0.0.1 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=400 -c shared_buffers=32MB >>{log} 2>&1 & pg=$!; \
             while [ -d /proc/{parent} ] && kill -0 $pg 2>/dev/null; do sleep 1; done; \
             kill -INT $pg 2>/dev/null; wait $pg; [ -d /proc/{parent} ] || rm -rf {dir}",
            postgres = self.bin.join("postgres").display(),
            data = data.display(),
            port = self.port,
            sock = self.dir.display(),
            log = self.dir.join("log").display(),
            parent = std::process::id(),
            dir = self.dir.display(),
        );
        let mut shell = self.as_owner(Path::new("/bin/sh"));
        shell
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut watchdog = shell.spawn().expect("start postgres");
        // Reaped when PostgreSQL stops (a restart by a test, or the end of the run).
        std::thread::spawn(move || watchdog.wait());
        let deadline = Instant::now() + Duration::from_secs(30);
        while postgres::Client::connect(&self.url("postgres"), postgres::NoTls).is_err() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start: {}",
                std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (fast: sessions are ended), keeping the cluster's files.
    pub fn stop(&self) {
        let out = self
            .as_owner(&self.bin.join("pg_ctl"))
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(self.dir.join("data"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database; its URL.
    pub fn database(&self) -> String {
        let name = format!("claribi_{}", self.next.fetch_add(1, Ordering::Relaxed));
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("connect to the test cluster");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        self.url(&name)
    }

    /// A connection to one of the cluster's databases, for a test's own checks.
    pub fn connect(&self, url: &str) -> postgres::Client {
        postgres::Client::connect(url, postgres::NoTls).expect("connect")
    }
}
