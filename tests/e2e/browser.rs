//! A small W3C WebDriver client over HTTP (ureq), driving headless Chromium through
//! chromedriver. `scripts/test` installs both from Debian's packages; without them the web
//! tests fail and say so.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(15);

pub struct Browser {
    driver: Child,
    endpoint: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn start() -> Browser {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(program).exists(),
                "{program} is missing: run scripts/test, which installs Debian's chromium and \
                 chromium-driver"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        while ureq::get(&format!("{endpoint}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let mut browser = Browser {
            driver,
            endpoint,
            session: String::new(),
            _profile: profile,
        };
        let answer = browser.call("POST", "/session", Some(capabilities));
        browser.session = answer["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}/session/{}{path}", self.endpoint, self.session)
        };
        let request = ureq::request(method, &url).timeout(Duration::from_secs(60));
        let result = match body {
            Some(body) => request.send_json(body),
            None if method == "POST" => request.send_json(json!({})),
            None => request.call(),
        };
        match result {
            Ok(r) => r.into_json::<Value>().expect("webdriver JSON")["value"].clone(),
            Err(ureq::Error::Status(code, r)) => {
                let body = r.into_string().unwrap_or_default();
                panic!("webdriver {method} {path}: {code} {body}")
            }
            Err(e) => panic!("webdriver {method} {path}: {e}"),
        }
    }

    pub fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Waits until `condition` (a JavaScript expression) is truthy; returns its value.
    pub fn wait_for(&self, condition: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.run(&format!("return ({condition});"), json!([]));
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            if Instant::now() >= deadline {
                let shot =
                    std::env::temp_dir().join(format!("claribi-web-{}.png", std::process::id()));
                self.screenshot(&shot);
                panic!(
                    "timed out waiting for {condition}\nURL: {}\nscreenshot: {}\nmessage: {}",
                    self.url(),
                    shot.display(),
                self.run(
                    "const m = document.querySelector('#message'); return m ? m.textContent : '';",
                        json!([])
                    )
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The element `css`, once it is visible.
    fn element(&self, css: &str) -> String {
        let quoted = serde_json::to_string(css).unwrap();
        self.wait_for(&format!(
            "(() => {{ const e = document.querySelector({quoted}); \
             return e && e.offsetParent !== null && !e.disabled; }})()"
        ));
        let found = self.call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("element {css}: {found}"))
            .to_string()
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), None);
    }

    /// Replaces the field's value with `text`, typed as a user would.
    pub fn fill(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/clear"), None);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Sends one key (a WebDriver key code, e.g. `"\u{E015}"` for the down arrow) to the
    /// element, as a user pressing it there would.
    pub fn press(&self, css: &str, key: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": key })),
        );
    }

    /// Runs `script` asynchronously: it calls `arguments[arguments.length - 1](value)` when done.
    pub fn run_async(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Resizes the window (the viewport narrows with it).
    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        );
    }

    pub fn select(&self, css: &str, value: &str) {
        self.element(css);
        self.run(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
             s.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([css, value]),
        );
    }

    /// The visible text of `css`, once it is shown and not empty.
    pub fn text(&self, css: &str) -> String {
        let quoted = serde_json::to_string(css).unwrap();
        self.wait_for(&format!(
            "(() => {{ const e = document.querySelector({quoted}); \
             return e && e.offsetParent !== null && e.textContent.trim(); }})()"
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// A PNG of the window, to look at when a page test fails.
    pub fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let png = self.call("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        std::fs::write(path, bytes).expect("write screenshot");
    }

    pub fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The current window's handle.
    pub fn window(&self) -> String {
        self.call("GET", "/window", None)
            .as_str()
            .expect("window handle")
            .to_string()
    }

    /// Opens a new tab (empty, with a session storage of its own, as a user's new tab) and
    /// answers its handle; the current window stays current.
    pub fn new_tab(&self) -> String {
        let made = self.call("POST", "/window/new", Some(json!({"type": "tab"})));
        made["handle"].as_str().expect("tab handle").to_string()
    }

    pub fn switch_to(&self, handle: &str) {
        self.call("POST", "/window", Some(json!({ "handle": handle })));
    }

    /// Adds Chromium's virtual authenticator (WebDriver's WebAuthn extension): a platform
    /// authenticator that keeps discoverable credentials and verifies its user. Answers its id.
    pub fn add_virtual_authenticator(&self) -> String {
        let id = self.call(
            "POST",
            "/webauthn/authenticator",
            Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            })),
        );
        id.as_str().expect("authenticator id").to_string()
    }

    /// Makes pages see `prefers-color-scheme: scheme` (`dark` or `light`), as a browser set
    /// to that theme (Chromium's DevTools protocol, through chromedriver).
    pub fn prefer_color_scheme(&self, scheme: &str) {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({
                "cmd": "Emulation.setEmulatedMedia",
                "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] },
            })),
        );
    }

    /// The credentials the virtual authenticator `id` holds.
    pub fn authenticator_credentials(&self, id: &str) -> Vec<Value> {
        let found = self.call(
            "GET",
            &format!("/webauthn/authenticator/{id}/credentials"),
            None,
        );
        found.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(&format!("{}/session/{}", self.endpoint, self.session))
                .timeout(Duration::from_secs(10))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
