//! The audit log streamed to a SIEM (contract 10.5), received by Debian's rsyslog: run in the
//! foreground by each test with a configuration of its own, on a free loopback port, writing
//! every message it receives to a file the test reads. TLS with a CA made for the test.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::api_keys::create_key;
use crate::support::{server, Server};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transport {
    Tcp,
    Tls,
    Udp,
}

/// A running rsyslogd; killed when dropped.
pub struct Rsyslog {
    dir: tempfile::TempDir,
    port: u16,
    transport: Transport,
    child: Option<Child>,
}

fn rsyslogd() -> PathBuf {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("rsyslogd is not installed: scripts/test installs Debian's rsyslog packages")
}

fn free_port(transport: Transport) -> u16 {
    match transport {
        Transport::Udp => std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        _ => crate::support::free_port(),
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a certificate it signs for 127.0.0.1 and localhost.
pub fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"]);
    ca.extend(["-subj", "/CN=claribi test CA"]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    csr.extend(["-subj", "/CN=localhost"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

impl Rsyslog {
    pub fn start(transport: Transport) -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        if transport == Transport::Tls {
            make_certificates(dir.path());
        }
        let d = dir.path().display();
        let port = free_port(transport);
        let input = match transport {
            Transport::Tls => format!(
                "global(DefaultNetstreamDriver=\"ossl\"\n\
                   DefaultNetstreamDriverCAFile=\"{d}/ca.pem\"\n\
                   DefaultNetstreamDriverCertFile=\"{d}/server.pem\"\n\
                   DefaultNetstreamDriverKeyFile=\"{d}/server.key\")\n\
                 module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" \
                   StreamDriver.AuthMode=\"anon\")\n\
                 input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\" ruleset=\"siem\")\n"
            ),
            Transport::Tcp => format!(
                "module(load=\"imtcp\")\n\
                 input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\" ruleset=\"siem\")\n"
            ),
            Transport::Udp => format!(
                "module(load=\"imudp\")\n\
                 input(type=\"imudp\" port=\"{port}\" address=\"127.0.0.1\" ruleset=\"siem\")\n"
            ),
        };
        std::fs::write(
            dir.path().join("rsyslog.conf"),
            format!(
                "global(workDirectory=\"{d}\" maxMessageSize=\"64k\")\n{input}\
                 template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
                 ruleset(name=\"siem\") {{ action(type=\"omfile\" file=\"{d}/received.log\" \
                   template=\"raw\") }}\n"
            ),
        )
        .unwrap();
        let mut rsyslog = Rsyslog {
            dir,
            port,
            transport,
            child: None,
        };
        rsyslog.run();
        rsyslog
    }

    fn run(&mut self) {
        let pid_file = self.dir.path().join("rsyslogd.pid");
        let _ = std::fs::remove_file(&pid_file);
        let child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(self.dir.path().join("rsyslog.conf"))
            .arg("-i")
            .arg(&pid_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let listening = match self.transport {
                // A datagram input has nothing to connect to: its pid file says it is up.
                Transport::Udp => pid_file.exists(),
                _ => std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
            };
            if listening {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, as `systemctl stop rsyslog` does, and waits for the process to end.
    pub fn stop(&mut self) {
        crate::support::terminate(&mut self.child);
    }

    pub fn start_again(&mut self) {
        self.run();
    }

    pub fn url(&self) -> String {
        let scheme = match self.transport {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Udp => "udp",
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Every message received so far, in the order received.
    /// The messages rsyslog has written whole: a line it is still writing (no newline yet)
    /// is left for the next read.
    pub fn received(&self) -> Vec<Received> {
        let text =
            std::fs::read_to_string(self.dir.path().join("received.log")).unwrap_or_default();
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole.lines().map(Received::parse).collect()
    }

    /// Waits until every id of `ids` was received; the messages.
    pub fn wait_for(&self, ids: &[i64], within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            let seen: HashSet<i64> = received.iter().map(|r| r.id).collect();
            let missing = ids.iter().filter(|id| !seen.contains(id)).count();
            if missing == 0 {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{missing} of {} entries not received within {within:?}",
                ids.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One message as rsyslog received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub pri: u32,
    pub app: String,
    pub msgid: String,
    pub id: i64,
    pub hash: String,
    pub org: Option<i64>,
    /// MSG, after its BOM.
    pub body: String,
}

impl Received {
    fn parse(line: &str) -> Received {
        fn bad<T>(line: &str) -> T {
            panic!("not an RFC 5424 message from claribi: {line}")
        }
        let rest = line.strip_prefix('<').unwrap_or_else(|| bad(line));
        let (pri, rest) = rest.split_once('>').unwrap_or_else(|| bad(line));
        let header: Vec<&str> = rest.splitn(7, ' ').collect();
        let [version, _time, _host, app, _pid, msgid, rest] = header[..] else {
            bad(line)
        };
        assert_eq!(version, "1", "{line}");
        let (sd, body) = rest.split_once("] \u{FEFF}").unwrap_or_else(|| bad(line));
        let sd = sd
            .strip_prefix("[claribi@32473")
            .unwrap_or_else(|| bad(line));
        let param = |name: &str| {
            let start = sd.find(&format!(" {name}=\""))? + name.len() + 3;
            let end = start + sd[start..].find('"')?;
            Some(sd[start..end].to_string())
        };
        Received {
            pri: pri.parse().unwrap_or_else(|_| bad(line)),
            app: app.to_string(),
            msgid: msgid.to_string(),
            id: param("id")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| bad(line)),
            hash: param("hash").unwrap_or_else(|| bad(line)),
            org: param("org").and_then(|v| v.parse().ok()),
            body: body.to_string(),
        }
    }
}

/// The ids in the order they were first received: a resent stretch repeats ids, never skips.
fn first_seen(received: &[Received]) -> Vec<i64> {
    let mut seen = HashSet::new();
    received
        .iter()
        .filter(|r| seen.insert(r.id))
        .map(|r| r.id)
        .collect()
}

/// The organization's whole log, oldest first, through the incremental export.
fn exported(s: &Server, token: &str) -> Vec<Value> {
    let r = s
        .get("/api/v1/audit-logs/export/?format=jsonl&since_id=0")
        .bearer(token)
        .send();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/jsonl"));
    r.body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ids(entries: &[Value]) -> Vec<i64> {
    entries.iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

/// Checks every organization's hash chain from the messages alone, as a SIEM would:
/// `hash = SHA-256(previous hash of the same chain || MSG)`.
fn check_chains(received: &[Received]) {
    let mut heads = std::collections::HashMap::new();
    let mut seen = HashSet::new();
    for r in received.iter().filter(|r| seen.insert(r.id)) {
        let previous = heads.get(&r.org).cloned().unwrap_or_else(|| "0".repeat(64));
        let hash = Sha256::new()
            .chain_update(previous.as_bytes())
            .chain_update(r.body.as_bytes())
            .finalize();
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, r.hash, "entry {} does not chain", r.id);
        heads.insert(r.org, r.hash.clone());
    }
}

fn streaming_to(rsyslog: &Rsyslog) -> crate::support::Options {
    let options = server()
        .env("CLARIBI_AUDIT__SYSLOG_URL", &rsyslog.url())
        .env("CLARIBI_RATE_LIMITS__GENERAL_PER_HOUR", "10000000");
    if rsyslog.transport == Transport::Tls {
        options.env(
            "CLARIBI_AUDIT__SYSLOG_CA_FILE",
            rsyslog.ca_file().to_str().unwrap(),
        )
    } else {
        options
    }
}

fn readiness(s: &Server) -> Value {
    let r = s.get("/readyz").send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// Resident memory of the process, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// `n` audit entries (`api_key.updated`), from four clients on kept-alive connections.
fn make_entries(s: &Server, token: &str, key_id: i64, n: usize) {
    let done = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let done = done.clone();
            let url = s.url(&format!("/api/auth/api-keys/{key_id}/"));
            scope.spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                loop {
                    let i = done.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let r = agent
                        .request("PATCH", &url)
                        .set("Authorization", &format!("Bearer {token}"))
                        .send_json(json!({"name": format!("etl {i}")}));
                    assert!(r.is_ok(), "{r:?}");
                }
            });
        }
    });
}

#[test]
fn every_entry_reaches_rsyslog_over_tls_once_in_order_and_chains_from_the_messages() {
    let rsyslog = Rsyslog::start(Transport::Tls);
    let s = streaming_to(&rsyslog).start();
    let token = s.owner_token();
    assert_eq!(
        s.login("nobody@example.com", "wrong-password-1").status,
        401
    );
    create_key(&s, &token, json!({"name": "etl"}));
    let log = exported(&s, &token);
    let received = rsyslog.wait_for(&ids(&log), Duration::from_secs(10));
    // Each once, in id order; the organization's entries as its log holds them, and the
    // failed login for an unknown address, which belongs to no organization, among them.
    let order: Vec<i64> = received.iter().map(|r| r.id).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    let of_the_organization: Vec<&Received> =
        received.iter().filter(|r| r.org == Some(1)).collect();
    assert_eq!(of_the_organization.len(), log.len(), "{order:?}");
    for (r, entry) in of_the_organization.iter().zip(&log) {
        assert_eq!(r.id, entry["id"].as_i64().unwrap());
        assert_eq!(r.app, "claribi");
        assert_eq!(r.msgid, entry["action"].as_str().unwrap());
        assert_eq!(r.hash, entry["hash"].as_str().unwrap());
        // authpriv, notice for a success and warning for a failure.
        let severity = if entry["outcome"] == "success" { 5 } else { 4 };
        assert_eq!(r.pri, 10 * 8 + severity, "{}", r.body);
    }
    let unknown = received
        .iter()
        .find(|r| r.org.is_none())
        .expect("the org-less entry");
    assert_eq!((unknown.msgid.as_str(), unknown.pri), ("login.failed", 84));
    check_chains(&received);
    // The lag is read every second.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let ready = readiness(&s);
        assert_eq!(ready["status"], "ready");
        assert_eq!(ready["audit_stream"]["state"], "sending");
        if ready["audit_stream"]["lag_entries"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{ready}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn ten_thousand_entries_made_while_rsyslog_is_down_30_s_all_arrive_in_order_memory_flat() {
    let mut rsyslog = Rsyslog::start(Transport::Tls);
    let s = streaming_to(&rsyslog).start();
    let token = s.owner_token();
    let key = create_key(&s, &token, json!({"name": "etl"}));
    let key_id = key["id"].as_i64().unwrap();
    // The request path warmed up, and everything so far received.
    make_entries(&s, &token, key_id, 500);
    rsyslog.wait_for(&ids(&exported(&s, &token)), Duration::from_secs(20));

    let down = Instant::now();
    rsyslog.stop();
    make_entries(&s, &token, key_id, 2_000);
    let early = resident_kib(s.pid());
    make_entries(&s, &token, key_id, 8_000);
    let late = resident_kib(s.pid());
    // The lag is read every second.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let ready = readiness(&s);
        assert_eq!(
            ready["status"], "ready",
            "a receiver away is no reason to refuse"
        );
        assert_eq!(ready["audit_stream"]["state"], "unreachable");
        if ready["audit_stream"]["lag_entries"].as_i64().unwrap() >= 10_000 {
            break;
        }
        assert!(Instant::now() < deadline, "{ready}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Entries wait in the database: 8,000 more of them cost no memory to speak of (held in
    // memory they would take several MiB).
    assert!(
        late <= early + 2048,
        "resident memory grew from {early} KiB to {late} KiB while 8,000 entries waited"
    );
    let outage = Duration::from_secs(30).saturating_sub(down.elapsed());
    std::thread::sleep(outage);

    rsyslog.start_again();
    let log = exported(&s, &token);
    let received = rsyslog.wait_for(&ids(&log), Duration::from_secs(60));
    let order = first_seen(&received);
    assert_eq!(order, ids(&log), "an entry missing or out of order");
    check_chains(&received);
    eprintln!(
        "{} entries received, {} of them again after the outage; memory {early} -> {late} KiB",
        order.len(),
        received.len() - order.len()
    );
}

#[test]
fn a_restart_of_the_server_resumes_after_what_the_receiver_accepted() {
    let rsyslog = Rsyslog::start(Transport::Tls);
    let s = streaming_to(&rsyslog).start();
    let token = s.owner_token();
    let key_id = create_key(&s, &token, json!({"name": "etl"}))["id"]
        .as_i64()
        .unwrap();
    make_entries(&s, &token, key_id, 300);
    rsyslog.wait_for(&ids(&exported(&s, &token)), Duration::from_secs(20));
    // A clean stop records where the receiver stands: nothing is sent twice.
    let s = s.stop_and_restart_with(|_| {});
    let token = s.owner_token();
    make_entries(&s, &token, key_id, 100);
    let received = rsyslog.wait_for(&ids(&exported(&s, &token)), Duration::from_secs(20));
    assert_eq!(
        received.iter().map(|r| r.id).collect::<Vec<_>>(),
        first_seen(&received),
        "an entry was sent again after a clean restart"
    );
    // Killed in the middle of streaming: what was not confirmed is sent again, nothing lost.
    make_entries(&s, &token, key_id, 2_000);
    let s = s.kill_and_restart();
    let token = s.owner_token();
    let log = exported(&s, &token);
    let received = rsyslog.wait_for(&ids(&log), Duration::from_secs(30));
    assert_eq!(first_seen(&received), ids(&log));
    check_chains(&received);
}

#[test]
fn plain_tcp_and_udp_receivers_get_every_entry() {
    for transport in [Transport::Tcp, Transport::Udp] {
        let rsyslog = Rsyslog::start(transport);
        let s = streaming_to(&rsyslog).start();
        let token = s.owner_token();
        create_key(&s, &token, json!({"name": "etl"}));
        let log = exported(&s, &token);
        let received = rsyslog.wait_for(&ids(&log), Duration::from_secs(10));
        assert_eq!(first_seen(&received), ids(&log), "{transport:?}");
        check_chains(&received);
    }
}

#[test]
fn a_receiver_whose_certificate_the_roots_do_not_vouch_for_gets_nothing() {
    let rsyslog = Rsyslog::start(Transport::Tls);
    // No CA file: the test CA is not among the system's roots.
    let s = server()
        .env("CLARIBI_AUDIT__SYSLOG_URL", &rsyslog.url())
        .start();
    s.owner_token();
    let deadline = Instant::now() + Duration::from_secs(10);
    while readiness(&s)["audit_stream"]["state"] != "unreachable" {
        assert!(Instant::now() < deadline, "{}", readiness(&s));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(rsyslog.received().is_empty());
    assert!(
        s.log()
            .contains("the audit stream cannot reach its receiver"),
        "{}",
        s.log()
    );
}

#[test]
fn a_syslog_address_or_ca_file_that_cannot_work_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for (env, expected) in [
        (
            vec![("CLARIBI_AUDIT__SYSLOG_URL", "http://siem:514")],
            "audit.syslog_url",
        ),
        (
            vec![
                ("CLARIBI_AUDIT__SYSLOG_URL", "tls://127.0.0.1:6514"),
                ("CLARIBI_AUDIT__SYSLOG_CA_FILE", empty.to_str().unwrap()),
            ],
            "holds no PEM certificate",
        ),
        (
            vec![
                ("CLARIBI_AUDIT__SYSLOG_URL", "tcp://127.0.0.1:514"),
                ("CLARIBI_AUDIT__SYSLOG_CA_FILE", empty.to_str().unwrap()),
            ],
            "audit.syslog_ca_file",
        ),
    ] {
        let out = Command::new(crate::support::binary())
            .arg("check-config")
            .envs(env.iter().copied())
            .env("CLARIBI_SERVER__DATA_DIR", dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?} was accepted");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
    }
}

#[test]
fn several_servers_send_one_at_a_time_and_another_takes_over_from_a_killed_one() {
    let rsyslog = Rsyslog::start(Transport::Tls);
    let a = streaming_to(&rsyslog)
        .postgres()
        .env("CLARIBI_CLUSTER__LEASE", "2s")
        .start();
    let b = a.another_on_same_database();
    let token = a.owner_token();
    let key_id = create_key(&a, &token, json!({"name": "etl"}))["id"]
        .as_i64()
        .unwrap();
    make_entries(&a, &token, key_id, 200);
    make_entries(&b, &token, key_id, 200);
    let received = rsyslog.wait_for(&ids(&exported(&a, &token)), Duration::from_secs(20));
    assert_eq!(
        received.iter().map(|r| r.id).collect::<Vec<_>>(),
        first_seen(&received),
        "two servers sent the same entries"
    );
    let states = [readiness(&a), readiness(&b)].map(|r| r["audit_stream"]["state"].clone());
    let (sender, other) = match states {
        [ref x, ref y] if x == "sending" && y == "standby" => (a, b),
        [ref x, ref y] if x == "standby" && y == "sending" => (b, a),
        _ => panic!("not one sender and one on standby: {states:?}"),
    };
    // Killed in the middle of a stream: the other goes on from what was confirmed.
    make_entries(&other, &token, key_id, 3_000);
    sender.signal("KILL");
    make_entries(&other, &token, key_id, 500);
    let log = exported(&other, &token);
    let received = rsyslog.wait_for(&ids(&log), Duration::from_secs(30));
    assert_eq!(first_seen(&received), ids(&log));
    assert_eq!(readiness(&other)["audit_stream"]["state"], "sending");
    check_chains(&received);
}

#[test]
fn after_a_restore_no_id_the_siem_holds_comes_again_with_other_content() {
    let rsyslog = Rsyslog::start(Transport::Tcp);
    let s = streaming_to(&rsyslog).sqlite().start();
    let token = s.owner_token();
    let backup = s.work_dir().join("before.db");
    let out = s.cli(&["backup", "--out", backup.to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Entries made after the backup reach the SIEM, then the backup is put back.
    let key_id = create_key(&s, &token, json!({"name": "etl"}))["id"]
        .as_i64()
        .unwrap();
    make_entries(&s, &token, key_id, 20);
    let before = rsyslog.wait_for(&ids(&exported(&s, &token)), Duration::from_secs(10));
    let held = before.iter().map(|r| r.id).max().unwrap();
    let s = s.stop_and_restart_with(|stopped| {
        let out = stopped.cli(&["restore", "--from", backup.to_str().unwrap()], "");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let token = s.owner_token();
    let log = exported(&s, &token);
    let after_restore: Vec<i64> = ids(&log).into_iter().filter(|id| *id > held).collect();
    assert!(
        !after_restore.is_empty(),
        "nothing numbered after {held}: {:?}",
        ids(&log)
    );
    let received = rsyslog.wait_for(&after_restore, Duration::from_secs(10));
    // One content per id, whatever was sent twice.
    let mut hashes = std::collections::HashMap::new();
    for r in &received {
        let first = hashes.entry(r.id).or_insert_with(|| r.hash.clone());
        assert_eq!(
            *first, r.hash,
            "entry {} came twice with other content",
            r.id
        );
    }
    let restored = log
        .iter()
        .find(|e| e["action"] == "backup.restored")
        .expect("the restore is audited");
    assert!(restored["id"].as_i64().unwrap() > held, "{restored}");
}
