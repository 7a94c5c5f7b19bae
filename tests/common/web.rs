//! The web console under test: `sie-web` started on a loopback port of a test spool
//! with its users and passwords set through `sie-web passwd`, and an HTTP client that
//! keeps the session cookie and reads the CSRF token from the pages, like a browser.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::spool::TestSpool;

pub fn sie_web() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sie-web"))
}

/// A running `sie-web`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct WebServer {
    child: Child,
    /// `http://127.0.0.1:<port>` (or `https://...`).
    pub base: String,
    pub audit_log: PathBuf,
}

impl WebServer {
    /// Writes the users file, sets each `(user, password)` with `sie-web passwd`, and
    /// starts the console on a free loopback port with `extra` flags.
    pub fn start(
        spool: &TestSpool,
        users: &str,
        passwords: &[(&str, &str)],
        extra: &[&str],
    ) -> WebServer {
        let web_dir = spool.spool.state_dir().join("web");
        fs::create_dir_all(&web_dir).unwrap();
        fs::write(web_dir.join("users"), users).unwrap();
        for (user, password) in passwords {
            set_password(spool, user, password);
        }
        let mut child = web_command(spool)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("sie-web: listening on ")
            .unwrap_or_else(|| panic!("sie-web did not start: {line:?}"))
            .trim_end_matches('/')
            .to_string();
        WebServer {
            child,
            base,
            audit_log: web_dir.join("audit.log"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn audit(&self) -> String {
        fs::read_to_string(&self.audit_log).unwrap_or_default()
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        super::spool::terminate(&mut self.child, Duration::from_secs(10));
    }
}

/// `sie-web --spool <spool> --config <config>`.
pub fn web_command(spool: &TestSpool) -> Command {
    let mut command = Command::new(sie_web());
    command
        .arg("--spool")
        .arg(spool.spool.root())
        .arg("--config")
        .arg(&spool.config)
        .stdin(Stdio::null());
    command
}

/// `sie-web passwd <user>` with the password on standard input.
pub fn set_password(spool: &TestSpool, user: &str, password: &str) {
    let mut child = web_command(spool)
        .args(["passwd", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait().unwrap().success(), "sie-web passwd {user}");
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> Option<String> {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_string())
    }
}

/// A browser-like client: keeps the `sie_session` cookie, follows no redirects.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    pub cookie: Option<String>,
}

impl Client {
    pub fn new(server: &WebServer) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client {
            agent,
            base: server.base.clone(),
            cookie: None,
        }
    }

    fn finish(&mut self, response: ureq::http::Response<ureq::Body>) -> Answer {
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        for (name, value) in &headers {
            if name.eq_ignore_ascii_case("set-cookie")
                && let Some(rest) = value.strip_prefix("sie_session=")
            {
                let token = rest.split(';').next().unwrap_or("").to_string();
                self.cookie = (!token.is_empty()).then_some(token);
            }
        }
        let body = response.into_body().read_to_string().unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn get(&mut self, path: &str) -> Answer {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", format!("sie_session={cookie}"));
        }
        let response = request.call().unwrap();
        self.finish(response)
    }

    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut request = self.agent.post(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", format!("sie_session={cookie}"));
        }
        let response = request.send_form(fields.iter().copied()).unwrap();
        self.finish(response)
    }

    /// Posts a form with the CSRF token read from `page`.
    pub fn post_with_csrf(&mut self, page: &str, path: &str, fields: &[(&str, &str)]) -> Answer {
        let csrf = self.get(page).csrf().expect("the page has a form");
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all)
    }

    /// Logs in and chooses `domain` ("" for all); panics unless both work.
    pub fn login(&mut self, user: &str, password: &str, domain: &str) {
        let page = self.get("/login");
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = page.csrf().unwrap();
        let answer = self.post(
            "/login",
            &[("csrf", &csrf), ("user", user), ("password", password)],
        );
        assert_eq!(answer.status, 303, "login of {user}: {}", answer.body);
        assert_eq!(answer.header("location"), Some("/domains"));
        let answer = self.post_with_csrf("/domains", "/domains", &[("domain", domain)]);
        assert_eq!(answer.status, 303, "domain {domain}: {}", answer.body);
    }
}

/// Queues a message the way sendmail does (df, then the qf through a tf renamed over
/// it) with the given envelope; `result` is written as its result file.
pub fn queue_entry(
    spool: &TestSpool,
    queue: &str,
    id: &str,
    envelope: (&str, &[&str]),
    headers: &[(&str, &str)],
    body: &[u8],
    result: Option<&str>,
) {
    let dir = spool.queue(queue);
    let (sender, recipients) = envelope;
    let qf = sie::queue::qf::ControlFileBuilder {
        created: 1795303433,
        sender: sender.to_string(),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        helo: "client.test".into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body_bytes: body.len() as u64,
    }
    .build();
    fs::write(dir.join(format!("df{id}")), body).unwrap();
    fs::write(dir.join(format!("tf{id}")), qf).unwrap();
    fs::rename(dir.join(format!("tf{id}")), dir.join(format!("qf{id}"))).unwrap();
    if let Some(text) = result {
        let id = sie::queue::QueueId::parse(id).unwrap();
        spool.spool.write_result(queue, &id, text).unwrap();
    }
}
