//! Notices of keys about to expire (contract 10.4): email through a real SMTP server (aiosmtpd
//! from PyPI, installed by scripts/test, run by each test on a free loopback port into a
//! Maildir) and a webhook to an HTTP receiver the test runs, whose signature is checked as a
//! receiver would.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use crate::api_keys::create_key;
use crate::support::{server, Server, P};

pub const SECRET: &str = "the-webhook-secret-of-this-test";
const DAY: i64 = 86_400;

/// A running aiosmtpd; killed when dropped.
pub struct Smtp {
    child: Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl Smtp {
    pub fn start() -> Smtp {
        let python = std::env::var_os("CLARIBI_TEST_SMTP")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let cache = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(std::env::var("HOME").unwrap()).join(".cache")
                    });
                cache.join("claribi-test-tools/smtp/bin/python")
            });
        assert!(
            python.is_file(),
            "aiosmtpd is not installed ({}): scripts/test installs it",
            python.display()
        );
        let maildir = tempfile::tempdir().unwrap();
        let port = crate::pg::free_port();
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("aiosmtpd");
        let smtp = Smtp {
            child,
            port,
            maildir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        // Ready when it greets.
        loop {
            if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let mut line = String::new();
                if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("220") {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        smtp
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message delivered, as its text.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.path().join("mail").join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                out.push(std::fs::read_to_string(entry.path()).unwrap());
            }
        }
        out
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the receiver took.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// An HTTP receiver of webhooks on a free loopback port: it answers `500` to the first
/// `failing` requests, then `204`; it runs until the test process ends.
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn start(failing: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/claribi", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let (kept, failing) = (received.clone(), Arc::new(AtomicUsize::new(failing)));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&stream);
                let mut headers = HashMap::new();
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = header.trim_end().split_once(':') {
                        headers.insert(k.to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let length: usize = headers
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let fail = failing
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if !fail {
                    kept.lock().unwrap().push(Received { headers, body });
                }
                let status = if fail {
                    "500 Internal Server Error"
                } else {
                    "204 No Content"
                };
                let _ = (&stream).write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                );
            }
        });
        Receiver { url, received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// The body of a received webhook, once its signature is checked as a receiver does: the
/// HMAC-SHA256 of the raw body with the shared secret, compared in constant time.
pub fn verified(r: &Received) -> Value {
    let header = r
        .headers
        .get("x-claribi-signature")
        .expect("X-Claribi-Signature");
    let hex = header.strip_prefix("sha256=").expect("sha256=...");
    let signature: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&r.body);
    mac.verify_slice(&signature)
        .expect("the signature matches the body");
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    serde_json::from_slice(&r.body).unwrap()
}

/// A server sending notices to `smtp` and `receiver`, looking every second.
pub fn notifying(smtp: &Smtp, receiver: &Receiver) -> crate::support::Options {
    server()
        .env("CLARIBI_NOTIFY__SMTP_URL", &smtp.url())
        .env("CLARIBI_NOTIFY__FROM", "claribi <claribi@example.test>")
        .env("CLARIBI_NOTIFY__WEBHOOK_URL", &receiver.url)
        .env("CLARIBI_NOTIFY__WEBHOOK_SECRET", SECRET)
        .env("CLARIBI_NOTIFY__INTERVAL", "1s")
}

/// Moves a key in time, behind the server's back: made `age` seconds ago, expiring in `left`.
pub fn age_key(s: &Server, id: i64, age: i64, left: i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let changed = s.sql().execute(
        "UPDATE api_keys SET created_at = ?1, expires_at = ?2 WHERE id = ?3",
        &[P::I(now - age), P::I(now + left), P::I(id)],
    );
    assert_eq!(changed, 1);
}

/// Waits until `done` holds, for at most `limit`.
pub fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_key_crossing_seven_days_gets_one_mail_and_one_signed_webhook_across_a_restart() {
    let smtp = Smtp::start();
    // The first webhook is refused: it is tried again.
    let receiver = Receiver::start(1);
    let s = notifying(&smtp, &receiver).start();
    let owner = s.owner_token();
    s.create_user("ana@example.com", "analyst", "analyst-password-3");
    let ana = s.token("ana@example.com", "analyst-password-3");
    let key = create_key(
        &s,
        &ana,
        json!({"name": "nightly load", "expires_in_days": 30}),
    );
    let id = key["id"].as_i64().unwrap();
    // A service account's key crossing 30 days: its creator and the administrators hear.
    let account = s
        .post("/api/v1/service-accounts/")
        .bearer(&owner)
        .json(&json!({"name": "exporter", "role": "viewer"}))
        .json();
    let sa_key = s
        .post(&format!("/api/v1/service-accounts/{}/keys/", account["id"]))
        .bearer(&owner)
        .json(&json!({"name": "export", "expires_in_days": 90}))
        .json();
    // A key far from expiry, and one that never expires: no notice.
    create_key(&s, &ana, json!({"name": "yearly", "expires_in_days": 365}));
    create_key(&s, &ana, json!({"name": "forever"}));

    age_key(&s, id, 23 * DAY, 7 * DAY - 120);
    age_key(&s, sa_key["id"].as_i64().unwrap(), 61 * DAY, 29 * DAY);
    wait_for(
        Duration::from_secs(30),
        "two mails and two webhooks",
        || smtp.messages().len() >= 2 && receiver.received().len() >= 2,
    );

    let mails = smtp.messages();
    let to_ana: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains("To: ana@example.com"))
        .collect();
    assert_eq!(to_ana.len(), 1, "{mails:#?}");
    let mail = to_ana[0];
    assert!(
        mail.contains("From: claribi <claribi@example.test>"),
        "{mail}"
    );
    assert!(mail.contains("Subject: "), "{mail}");
    assert!(
        mail.contains("\"nightly load\"") && mail.contains("expires in 7 days"),
        "{mail}"
    );
    assert!(mail.contains(key["prefix"].as_str().unwrap()), "{mail}");
    let to_owner: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains(&format!("To: {}", crate::support::ADMIN_EMAIL)))
        .collect();
    assert_eq!(to_owner.len(), 1, "{mails:#?}");
    assert!(to_owner[0].contains("service account"), "{}", to_owner[0]);

    let hooks: Vec<Value> = receiver.received().iter().map(verified).collect();
    let ana_hook = hooks
        .iter()
        .find(|h| h["key"]["id"] == id)
        .expect("the webhook of ana's key");
    assert_eq!(ana_hook["event"], "api_key.expiring");
    assert_eq!(ana_hook["key"]["prefix"], key["prefix"]);
    assert_eq!(ana_hook["key"]["name"], "nightly load");
    assert!(ana_hook["key"]["expires_at"].is_string(), "{ana_hook}");
    assert_eq!(ana_hook["organization"]["name"], "Default Organization");
    assert_eq!(ana_hook["owner"]["type"], "user");
    assert_eq!(ana_hook["owner"]["email"], "ana@example.com");
    assert_eq!(ana_hook["days_left"], 7);
    let sa_hook = hooks
        .iter()
        .find(|h| h["key"]["id"] == sa_key["id"])
        .expect("the webhook of the service account's key");
    assert_eq!(sa_hook["owner"]["type"], "service_account");
    assert_eq!(sa_hook["owner"]["name"], "exporter");
    assert_eq!(sa_hook["days_left"], 29);

    // Nothing more, however long it runs, nor after a restart.
    std::thread::sleep(Duration::from_secs(3));
    let s = s.kill_and_restart();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(smtp.messages().len(), 2);
    assert_eq!(receiver.received().len(), 2);
    let states = s.sql().rows(
        "SELECT state, COUNT(*) FROM key_notices GROUP BY state ORDER BY state",
        &[],
    );
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(
        (states[0][0].text(), states[0][1].int()),
        ("sent".to_string(), 4)
    );

    // The next threshold is news again: one more of each.
    age_key(&s, id, 29 * DAY, DAY - 60);
    wait_for(Duration::from_secs(30), "the one-day notices", || {
        smtp.messages().len() == 3 && receiver.received().len() == 3
    });
    let last: Vec<Value> = receiver.received().iter().map(verified).collect();
    assert!(last
        .iter()
        .any(|h| h["key"]["id"] == id && h["days_left"] == 1));
    // A revoked key's notice never leaves.
    let doomed = create_key(&s, &ana, json!({"name": "doomed", "expires_in_days": 30}));
    s.request("DELETE", &format!("/api/auth/api-keys/{}/", doomed["id"]))
        .bearer(&ana)
        .send();
    age_key(&s, doomed["id"].as_i64().unwrap(), 28 * DAY, 2 * DAY);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(smtp.messages().len(), 3);
    // The console's banner reads the expiring keys from the list.
    let soon = s
        .get("/api/auth/api-keys/?expiring_within=7d")
        .bearer(&ana)
        .send()
        .json();
    assert_eq!(soon["count"], 1, "{soon}");
    assert_eq!(soon["results"][0]["id"], id);
}
