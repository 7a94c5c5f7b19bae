//! Headless Chromium driven through chromedriver's W3C WebDriver JSON API, with the
//! small HTTP client the HTTP tests already use (a full WebDriver crate would pull
//! in a second HTTP stack for the dozen commands these tests need). chromedriver
//! listens on a free loopback port; both processes end when the `Browser` drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::sendmail::{base64_decode, free_port};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// W3C's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    agent: ureq::Agent,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
    screenshots: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; fails loudly when either
    /// is missing (`tools/test` installs chromium and chromium-driver).
    pub fn start(screenshot_dir: &Path) -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: apt-get install chromium chromium-driver"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while agent.get(format!("{base}/status")).call().is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-quic".to_string(),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--window-size=1280,1024".to_string(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let mut browser = Browser {
            driver,
            agent,
            session: String::new(),
            base,
            _profile: profile,
            screenshots: screenshot_dir.to_path_buf(),
        };
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        std::fs::create_dir_all(&browser.screenshots).unwrap();
        browser
    }

    /// One WebDriver command; returns its `value`, panicking on a WebDriver error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let value = self.try_call(method, path, body);
        if let Some(error) = value.get("error") {
            panic!("WebDriver {method} {path}: {error}: {}", value["message"]);
        }
        value
    }

    /// One WebDriver command; an error comes back as the `value` holding it.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .content_type("application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        }
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let text = response.into_body().read_to_string().unwrap();
        let answer: Value = serde_json::from_str(&text).unwrap();
        answer["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        );
    }

    pub fn current_url(&self) -> String {
        self.call("GET", &self.session_path("/url"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element matching a CSS selector, waiting for it up to 20 s.
    pub fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.try_call(
                "POST",
                &self.session_path("/element"),
                Some(json!({"using": "css selector", "value": css})),
            );
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} on {}",
                self.current_url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{element}/click")),
            None,
        );
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{element}/value")),
            Some(json!({"text": text})),
        );
    }

    pub fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.call(
            "GET",
            &self.session_path(&format!("/element/{element}/text")),
            None,
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Runs a script in the page and returns its result.
    pub fn script(&self, source: &str) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": source, "args": []})),
        )
    }

    /// The text of an open alert dialog, if one is open.
    pub fn alert_text(&self) -> Option<String> {
        let value = self.try_call("GET", &self.session_path("/alert/text"), None);
        value.as_str().map(str::to_string)
    }

    /// Saves a PNG screenshot as `<dir>/<name>.png` and returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.call("GET", &self.session_path("/screenshot"), None);
        let png = base64_decode(encoded.as_str().unwrap()).expect("screenshot is base64");
        assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}{}", self.base, self.session_path(""));
            let _ = self.agent.delete(&url).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
