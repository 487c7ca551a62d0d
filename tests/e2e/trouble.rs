//! Database trouble from outside the process: another process holding the write lock past
//! `database.busy_timeout`, the data directory made read-only, the disk full. Each time the
//! server answers promptly `503 unavailable` with `Retry-After`, keeps answering authenticated
//! reads from its live state, loses nothing it acknowledged, and resumes by itself. On SQLite
//! in every run (`scripts/test` runs this module once).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

/// The longest a refused request may take: the busy timeout the tests set, and a margin for
/// a loaded machine.
const PROMPT: Duration = Duration::from_secs(3);

fn troubled() -> Options {
    server()
        .sqlite()
        .env("CLARIBI_DATABASE__BUSY_TIMEOUT", "300ms")
        // Past a lease without a published position, the server reads the feed itself.
        .env("CLARIBI_CLUSTER__LEASE", "1s")
        .env("CLARIBI_AUTH__ARGON2_MEMORY_KIB", "64")
        .env("CLARIBI_AUTH__ARGON2_ITERATIONS", "1")
}

fn create_key(s: &Server, owner: &str, name: &str) -> Resp {
    s.post("/api/auth/api-keys/")
        .bearer(owner)
        .json(&json!({ "name": name }))
}

/// A refused write: `503 unavailable`, `Retry-After`, within `PROMPT`.
fn assert_unavailable(r: &Resp, took: Duration, what: &str) {
    assert_eq!(r.status, 503, "{what}: {}", r.body);
    assert_eq!(r.error_code(), "unavailable", "{what}");
    let wait: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{what}: Retry-After {wait}");
    assert!(took < PROMPT, "{what}: answered after {took:?}");
}

/// The authenticated read path, from the live state and from the database.
fn assert_reads_go_on(s: &Server, owner: &str, key: &str) {
    assert_eq!(s.get("/api/v1/auth/verify/").bearer(key).send().status, 200);
    assert_eq!(s.get("/api/auth/me/").bearer(owner).send().status, 200);
    let keys = s.get("/api/auth/api-keys/").bearer(owner).send();
    assert_eq!(keys.status, 200, "{}", keys.body);
    assert_eq!(s.get("/readyz").send().status, 200);
}

/// Writes again within a few seconds of the trouble's end, without a restart.
fn assert_resumes(s: &Server, owner: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = create_key(s, owner, "after the trouble");
        if r.status == 201 {
            return r.json()["key"].as_str().unwrap().to_string();
        }
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(Instant::now() < deadline, "did not resume: {}", r.body);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// After SIGKILL and a restart, every key whose creation was answered works.
fn assert_kept(s: Server, keys: &[String]) {
    let s = s.kill_and_restart();
    for key in keys {
        let status = s.get("/api/v1/auth/verify/").bearer(key).send().status;
        assert_eq!(status, 200, "an acknowledged key was lost");
    }
}

#[test]
fn a_write_lock_held_by_another_process_is_a_prompt_503_and_reads_go_on() {
    let s = troubled().start();
    let owner = s.owner_token();
    let key = create_key(&s, &owner, "reader").json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let database = s.data_dir().join("claribi.db");
    let other = rusqlite::Connection::open(&database).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Past the lease: this server cannot publish its position any more.
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let refused = create_key(&s, &owner, "while locked");
    assert_unavailable(&refused, started.elapsed(), "a key creation");
    let started = Instant::now();
    let login = s.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    assert_unavailable(&login, started.elapsed(), "a login");
    assert_reads_go_on(&s, &owner, &key);

    other.execute_batch("ROLLBACK").unwrap();
    let after = assert_resumes(&s, &owner);
    assert_kept(s, &[key, after]);
}

/// A small ext4 file system on a loop device, mounted for one test; unmounted when dropped.
/// Needs root, as CI runs: without it the tests that use it fail, saying so, rather than pass
/// without having checked anything.
struct LoopFs {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl LoopFs {
    fn new(mib: u64) -> LoopFs {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        assert!(
            root,
            "mounting a loop file system needs root (CI runs as root); to leave the full-disk \
             and read-only tests out on purpose: scripts/test -- --skip trouble::a_full_disk \
             --skip trouble::a_read_only"
        );
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(mib << 20)
            .unwrap();
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        // No blocks reserved for root: the server runs as root here and would use them.
        run("mkfs.ext4", &["-q", "-m", "0", path(&image)]);
        run("mount", &["-o", "loop", path(&image), path(&mount)]);
        LoopFs { _dir: dir, mount }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.mount.join(name)
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("chattr")
            .args(["-R", "-i", path(&self.mount)])
            .status();
        let _ = Command::new("umount")
            .args(["-l", path(&self.mount)])
            .status();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_full_disk_is_a_prompt_503_reads_go_on_and_writes_resume_when_space_is_back() {
    let fs = LoopFs::new(48);
    let s = troubled()
        .env("CLARIBI_SERVER__DATA_DIR", path(&fs.path("data")))
        .start();
    let owner = s.owner_token();
    let key = create_key(&s, &owner, "reader").json()["key"]
        .as_str()
        .unwrap()
        .to_string();

    // Fill every block that is left.
    let filler = fs.path("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
        let small = [0u8; 4096];
        while f.write_all(&small).is_ok() {}
        let _ = f.sync_all();
    }
    // Writes go on while the database and its log have room in blocks they already hold,
    // then are refused; every creation answered 201 is kept.
    let mut acknowledged = vec![key.clone()];
    let refused = loop {
        let started = Instant::now();
        let r = create_key(&s, &owner, "on a full disk");
        match r.status {
            201 => acknowledged.push(r.json()["key"].as_str().unwrap().to_string()),
            _ => break (r, started.elapsed()),
        }
        assert!(acknowledged.len() < 2000, "the disk never filled up");
    };
    assert_unavailable(&refused.0, refused.1, "a key creation on a full disk");
    std::thread::sleep(Duration::from_millis(1500));
    assert_reads_go_on(&s, &owner, &key);

    std::fs::remove_file(&filler).unwrap();
    acknowledged.push(assert_resumes(&s, &owner));
    assert_kept(s, &acknowledged);
}

#[test]
fn a_read_only_data_directory_is_a_prompt_503_reads_go_on_and_writes_resume() {
    let fs = LoopFs::new(48);
    let data = fs.path("data");
    let s = troubled()
        .env("CLARIBI_SERVER__DATA_DIR", path(&data))
        .start();
    let owner = s.owner_token();
    let reader = create_key(&s, &owner, "reader").json();
    let key = reader["key"].as_str().unwrap().to_string();
    // Immutable: no write through the files the server holds open, no new file in the
    // directory (chmod would not stop a process that has its files open, nor root). SQLite's
    // shared-memory index stays writable: it is memory, not data.
    let mut immutable: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with("-shm"))
        .collect();
    immutable.push(data.clone());
    let names: Vec<&str> = immutable.iter().map(|p| path(p)).collect();
    run("chattr", &[&["+i"], names.as_slice()].concat());

    let started = Instant::now();
    let refused = create_key(&s, &owner, "read-only");
    assert_unavailable(&refused, started.elapsed(), "a key creation");
    std::thread::sleep(Duration::from_millis(1500));
    assert_reads_go_on(&s, &owner, &key);
    let started = Instant::now();
    let revoke = s
        .request("DELETE", &format!("/api/auth/api-keys/{}/", reader["id"]))
        .bearer(&owner)
        .send();
    assert_unavailable(&revoke, started.elapsed(), "a revocation");
    assert_eq!(
        s.get("/api/v1/auth/verify/").bearer(&key).send().status,
        200,
        "a refused revocation changed nothing"
    );

    run("chattr", &[&["-i"], names.as_slice()].concat());
    let after = assert_resumes(&s, &owner);
    assert_kept(s, &[key, after]);
}
