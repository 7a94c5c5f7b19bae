//! The web console over HTTP: login, sessions and cookie flags, CSRF, who may see
//! and do what (a user without rights on a message's domain gets 404 or 403 and
//! nothing moves), the actions themselves with their audit lines, listings, hostile
//! content, and TLS.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use common::spool::TestSpool;
use common::web::{Client, WebServer, queue_entry};

const USERS: &str = "# domain userid/access,... - default is rw\n\
all admin,auditor/r\n\
example.org owner,viewer/r\n\
other.test stranger\n";

const PASSWORD: &str = "correct horse battery";

const EX1: &str = "6ALWEB00000001";
const EX2: &str = "6ALWEB00000002";
const OT1: &str = "6ALWEB00000003";
const MIX: &str = "6ALWEB00000004";
const OUT: &str = "6ALWEB00000005";
const EXV: &str = "6ALWEB00000006";

fn eicar() -> String {
    [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-",
        "TEST-FILE!$H+H*",
    ]
    .concat()
}

const VIRUS_RESULT: &str = "id: x\nverdict: virus\nname: Eicar-Test-Signature\nwhere: part 2 (eicar.com)\nwhy: signature\n";

/// A spool with messages for example.org, other.test, both, and one sent from
/// example.org, and a console with every kind of user.
fn setup() -> (TestSpool, WebServer) {
    let spool = TestSpool::new();
    let subject = |s| vec![("From", "x@client.test"), ("Subject", s)];
    queue_entry(
        &spool,
        "virus",
        EX1,
        ("x@client.test", &["user@example.org"]),
        &subject("for example one"),
        b"hello 1\n",
        Some(VIRUS_RESULT),
    );
    queue_entry(
        &spool,
        "virus",
        EX2,
        ("x@client.test", &["a@Example.ORG"]),
        &subject("for example two"),
        b"hello 2\n",
        Some(VIRUS_RESULT),
    );
    queue_entry(
        &spool,
        "virus",
        OT1,
        ("x@client.test", &["b@other.test"]),
        &subject("for other"),
        b"hello 3\n",
        Some(VIRUS_RESULT),
    );
    queue_entry(
        &spool,
        "spam",
        MIX,
        ("x@client.test", &["a@example.org", "b@other.test"]),
        &subject("for both"),
        b"hello 4\n",
        None,
    );
    queue_entry(
        &spool,
        "ext",
        OUT,
        ("me@example.org", &["z@far.test"]),
        &subject("outbound"),
        b"hello 5\n",
        None,
    );
    let body = format!("{}\n", eicar());
    queue_entry(
        &spool,
        "virus",
        EXV,
        ("x@client.test", &["user@example.org"]),
        &subject("eicar inside"),
        body.as_bytes(),
        Some(VIRUS_RESULT),
    );
    let passwords: Vec<(&str, &str)> = ["admin", "auditor", "owner", "viewer", "stranger"]
        .iter()
        .map(|u| (*u, PASSWORD))
        .collect();
    let server = WebServer::start(&spool, USERS, &passwords, &[]);
    (spool, server)
}

fn client(server: &WebServer, user: &str) -> Client {
    let mut client = Client::new(server);
    client.login(user, PASSWORD, "");
    client
}

/// Every file of the queues an action could touch, to prove nothing moved.
fn snapshot(spool: &TestSpool) -> Vec<(String, Vec<String>)> {
    ["virus", "spam", "ext", "out", "delete", "release"]
        .iter()
        .map(|q| (q.to_string(), spool.files(q)))
        .collect()
}

#[test]
fn login_sessions_cookies_and_logout() {
    let (_spool, server) = setup();
    let mut browser = Client::new(&server);
    let answer = browser.get("/queues");
    assert_eq!(
        (answer.status, answer.header("location")),
        (303, Some("/login"))
    );

    let page = browser.get("/login");
    let cookie = page
        .header("set-cookie")
        .expect("a session cookie for the form")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "no Secure on plain HTTP: {cookie}"
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    let planted = browser.cookie.clone().unwrap();
    let csrf = page.csrf().unwrap();

    let answer = browser.post("/login", &[("user", "owner"), ("password", PASSWORD)]);
    assert_eq!(answer.status, 403, "a login without CSRF token is refused");
    let answer = browser.post(
        "/login",
        &[("csrf", &csrf), ("user", "owner"), ("password", "wrong")],
    );
    assert_eq!(answer.status, 401);
    assert!(answer.body.contains("Wrong user name or password"));
    let answer = browser.post(
        "/login",
        &[("csrf", &csrf), ("user", "nobody"), ("password", PASSWORD)],
    );
    assert_eq!(answer.status, 401);

    let answer = browser.post(
        "/login",
        &[("csrf", &csrf), ("user", "owner"), ("password", PASSWORD)],
    );
    assert_eq!(answer.status, 303, "{}", answer.body);
    let set = answer.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let session = browser.cookie.clone().unwrap();
    assert_ne!(session, planted, "login issues a new session id");

    let mut attacker = Client::new(&server);
    attacker.cookie = Some(planted);
    let answer = attacker.get("/queues");
    assert_eq!(
        answer.status, 303,
        "the id known before login is worth nothing after it"
    );

    assert_eq!(browser.get("/queues").status, 200);
    let answer = browser.post("/logout", &[]);
    assert_eq!(answer.status, 403, "logout needs the CSRF token too");
    assert_eq!(browser.get("/queues").status, 200);
    let answer = browser.post_with_csrf("/queues", "/logout", &[]);
    assert_eq!(
        (answer.status, answer.header("location")),
        (303, Some("/login"))
    );
    assert!(answer.header("set-cookie").unwrap().contains("Max-Age=0"));
    let mut stale = Client::new(&server);
    stale.cookie = Some(session);
    assert_eq!(
        stale.get("/queues").status,
        303,
        "the session ended at logout"
    );

    let audit = server.audit();
    assert!(
        audit.contains("user=owner addr=127.0.0.1:")
            && audit.contains("action=login queue=- id=- result=ok"),
        "{audit}"
    );
    assert!(
        audit.contains("user=owner")
            && audit.contains("result=refused detail=\"wrong user or password\""),
        "{audit}"
    );
    assert!(
        audit.contains("action=logout queue=- id=- result=ok"),
        "{audit}"
    );
}

#[test]
fn users_without_rights_on_a_domain_get_404_or_403_and_nothing_moves() {
    let (spool, server) = setup();
    let before = snapshot(&spool);
    let mut stranger = client(&server, "stranger");

    let listing = stranger.get("/q/virus");
    assert_eq!(listing.status, 200);
    assert!(listing.body.contains(OT1));
    assert!(
        !listing.body.contains(EX1) && !listing.body.contains(EX2) && !listing.body.contains(EXV)
    );
    assert!(
        !stranger.get("/q/ext").body.contains(OUT),
        "outbound mail of example.org"
    );

    for path in [
        format!("/q/virus/{EX1}"),
        format!("/q/virus/{EX1}/raw"),
        format!("/q/ext/{OUT}"),
    ] {
        assert_eq!(stranger.get(&path).status, 404, "{path}");
    }
    for action in ["release", "delete", "rescan"] {
        let answer = stranger.post_with_csrf(
            "/q/virus",
            "/q/virus/action",
            &[("action", action), ("id", EX1)],
        );
        assert_eq!(answer.status, 404, "{action} of another domain's message");
        let answer = stranger.post_with_csrf(
            "/q/virus",
            "/q/virus/action",
            &[("action", action), ("id", OT1), ("id", EX1)],
        );
        assert_eq!(
            answer.status, 404,
            "bulk {action} naming one foreign message"
        );
    }
    // A message for both domains: visible, but releasing it would deliver to example.org.
    let page = stranger.get(&format!("/q/spam/{MIX}"));
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("action-release") && !page.body.contains("action-delete"));
    for action in ["release", "delete", "rescan"] {
        let answer = stranger.post_with_csrf(
            "/q/spam",
            "/q/spam/action",
            &[("action", action), ("id", MIX)],
        );
        assert_eq!(answer.status, 403, "{action} of a shared message");
    }
    assert_eq!(stranger.get(&format!("/q/spam/{MIX}/raw")).status, 403);
    let answer = stranger.post_with_csrf("/domains", "/domains", &[("domain", "example.org")]);
    assert_eq!(answer.status, 403, "choosing a domain that is not theirs");
    assert_eq!(snapshot(&spool), before, "nothing moved");
    let audit = server.audit();
    assert!(
        audit.contains("user=stranger")
            && audit.contains(&format!(
                "action=release queue=virus id={EX1} result=refused"
            )),
        "{audit}"
    );
}

#[test]
fn read_only_users_see_no_buttons_and_the_server_refuses_anyway() {
    let (spool, server) = setup();
    let before = snapshot(&spool);
    for (user, id) in [("viewer", EX1), ("auditor", OT1)] {
        let mut reader = client(&server, user);
        let listing = reader.get("/q/virus");
        assert!(listing.body.contains(id), "{user} sees {id}");
        for control in ["bulk-release", "bulk-delete", "type=\"checkbox\""] {
            assert!(!listing.body.contains(control), "{user}: {control}");
        }
        let page = reader.get(&format!("/q/virus/{id}"));
        assert_eq!(page.status, 200);
        for control in ["action-release", "action-delete", "action-rescan", "/raw"] {
            assert!(!page.body.contains(control), "{user}: {control}");
        }
        for action in ["release", "delete", "rescan"] {
            let answer = reader.post_with_csrf(
                "/q/virus",
                "/q/virus/action",
                &[("action", action), ("id", id)],
            );
            assert_eq!(answer.status, 403, "{user} {action}");
        }
        assert_eq!(reader.get(&format!("/q/virus/{id}/raw")).status, 403);
    }
    assert_eq!(snapshot(&spool), before);
}

#[test]
fn posts_without_the_csrf_token_are_refused() {
    let (spool, server) = setup();
    let before = snapshot(&spool);
    let mut owner = client(&server, "owner");
    for csrf in [None, Some("0".repeat(64))] {
        let mut fields = vec![("action", "release"), ("id", EX1)];
        if let Some(token) = &csrf {
            fields.push(("csrf", token));
        }
        assert_eq!(owner.post("/q/virus/action", &fields).status, 403);
        assert_eq!(owner.post("/domains", &[("domain", "")]).status, 403);
    }
    // Another session's token is no good either.
    let mut admin = client(&server, "admin");
    let foreign = admin.get("/queues").csrf().unwrap();
    let answer = owner.post(
        "/q/virus/action",
        &[("csrf", &foreign), ("action", "delete"), ("id", EX1)],
    );
    assert_eq!(answer.status, 403);
    assert_eq!(snapshot(&spool), before);
    assert_eq!(owner.get("/queues").status, 200, "still logged in");
}

#[test]
fn release_delete_rescan_download_and_bulk_actions() {
    let (spool, server) = setup();
    let mut owner = client(&server, "owner");
    let queues = owner.get("/queues");
    assert!(queues.body.contains("id=\"queue-virus\""));

    let answer = owner.post_with_csrf(
        &format!("/q/virus/{EX1}"),
        "/q/virus/action",
        &[("action", "release"), ("id", EX1)],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("released: now in out"));
    let both = [format!("df{EX1}"), format!("qf{EX1}")];
    assert_eq!(spool.files("out"), both);
    assert_eq!(spool.files("release"), both);
    assert!(!spool.files("virus").contains(&both[1]));

    // An entry the MTA holds locked is not released, and nothing says it was.
    let qf = spool.queue("virus").join(format!("qf{EX2}"));
    let holder = fs::File::open(&qf).unwrap();
    holder.lock().unwrap();
    let answer = owner.post_with_csrf(
        "/q/virus",
        "/q/virus/action",
        &[("action", "release"), ("id", EX2)],
    );
    assert_eq!(answer.status, 409);
    assert!(answer.body.contains("in use"), "{}", answer.body);
    assert!(!answer.body.contains("released:"));
    assert!(qf.exists() && !spool.files("release").contains(&format!("qf{EX2}")));
    holder.unlock().unwrap();

    let answer = owner.post_with_csrf(
        "/q/virus",
        "/q/virus/action",
        &[("action", "rescan"), ("id", EXV)],
    );
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .body
            .contains("rescanned: virus Eicar-Test-Signature"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("id=\"then-release\"") && answer.body.contains("id=\"then-delete\"")
    );
    assert!(
        spool.files("virus").contains(&format!("qf{EXV}")),
        "rescan moves nothing"
    );

    let answer = owner.post_with_csrf(
        "/q/virus",
        "/q/virus/action",
        &[("action", "delete"), ("id", EX2), ("id", EXV)],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("2 of 2 done"));
    assert_eq!(spool.ids("delete"), [EX2, EXV]);

    let raw = owner.get(&format!("/q/ext/{OUT}/raw"));
    assert_eq!(raw.status, 200, "outbound mail of example.org");
    assert!(
        raw.header("content-disposition")
            .unwrap()
            .contains(&format!("{OUT}.eml"))
    );
    assert!(raw.body.contains("Subject: outbound\n") && raw.body.ends_with("\nhello 5\n"));
    let answer = owner.post_with_csrf(
        "/q/ext",
        "/q/ext/action",
        &[("action", "release"), ("id", OUT)],
    );
    assert_eq!(answer.status, 200);
    let answer = owner.post_with_csrf(
        "/q/out",
        "/q/out/action",
        &[("action", "release"), ("id", OUT)],
    );
    assert_eq!(answer.status, 400, "out does not take release");

    let audit = server.audit();
    for expected in [
        format!("action=release queue=virus id={EX1} result=ok"),
        format!("action=release queue=virus id={EX2} result=failed"),
        format!("action=rescan queue=virus id={EXV} result=ok"),
        format!("action=delete queue=virus id={EX2} result=ok"),
        format!("action=delete queue=virus id={EXV} result=ok"),
        format!("action=download queue=ext id={OUT} result=ok"),
    ] {
        let line = audit
            .lines()
            .find(|l| l.contains(&expected))
            .unwrap_or_else(|| panic!("{expected}\n{audit}"));
        assert!(line.contains("user=owner addr=127.0.0.1:"), "{line}");
    }
}

#[test]
fn listings_page_sort_and_search() {
    let (spool, server) = setup();
    for n in 0..60 {
        let id = format!("6ALPAG{n:08}");
        let subject = format!("bulk number {n}");
        let body = vec![b'x'; 100 + n];
        queue_entry(
            &spool,
            "spam",
            &id,
            ("x@client.test", &["a@example.org"]),
            &[("Subject", &subject)],
            &body,
            None,
        );
    }
    let mut admin = client(&server, "admin");
    let first = admin.get("/q/spam");
    assert!(
        first.body.contains("61 message(s); page 1 of 2."),
        "{}",
        first.body
    );
    assert_eq!(first.body.matches("id=\"open-").count(), 50);
    let second = admin.get("/q/spam?page=2");
    assert_eq!(second.body.matches("id=\"open-").count(), 11);
    let found = admin.get("/q/spam?q=NUMBER+42");
    assert!(found.body.contains("1 message(s)") && found.body.contains("6ALPAG00000042"));
    let by_size = admin.get("/q/spam?sort=size&order=asc");
    let smallest = by_size.body.find("6ALWEB00000004").unwrap();
    let bigger = by_size.body.find("6ALPAG00000000").unwrap();
    assert!(smallest < bigger, "8-byte body first");

    let mut viewer = client(&server, "viewer");
    let queues = viewer.get("/queues");
    assert!(
        !queues.body.contains("id=\"live\""),
        "whole-spool numbers only for `all` users"
    );
    assert_eq!(viewer.get("/live").status, 403);
    assert!(admin.get("/queues").body.contains("id=\"live\""));
    let live = admin.get("/live");
    assert_eq!(live.status, 200);
    let value: serde_json::Value = serde_json::from_str(&live.body).unwrap();
    let spam = value["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "spam")
        .unwrap();
    assert_eq!(spam["messages"], 61);
}

#[test]
fn hostile_subjects_names_and_html_render_as_text() {
    let (spool, server) = setup();
    let id = "6ALHOS00000001";
    let body = b"--B\nContent-Type: text/html\n\n<html><body><script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\"></body></html>\n--B\nContent-Type: application/octet-stream; name=\"<script>window.pwned=3</script>\x1b[31m.exe\"\nContent-Disposition: attachment; filename=\"<script>window.pwned=3</script>\x1b[31m.exe\"\n\nMZ\xff\xfe\n--B--\n";
    queue_entry(
        &spool,
        "virus",
        id,
        ("x@client.test", &["a@example.org"]),
        &[
            ("Subject", "<script>window.pwned=4</script>\u{1b}"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=B"),
        ],
        body,
        Some("verdict: ext\nname: <b>ext:exe</b>\n"),
    );
    let mut owner = client(&server, "owner");
    let page = owner.get(&format!("/q/virus/{id}"));
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("<script>window") && !page.body.contains("<img src=x"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>ext"));
    assert!(page.body.contains("&lt;script&gt;window.pwned=4"));
    assert!(
        page.body.contains("&lt;img src=x onerror="),
        "the HTML part shown as source"
    );
    assert!(
        page.body
            .contains("&lt;script&gt;window.pwned=3&lt;&#x2f;script&gt;\\u{1b}[31m.exe"),
        "the attachment name in the tree"
    );
    assert!(
        page.body.contains("\\u{1b}"),
        "control bytes shown as escapes"
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'none'")
    );
    let listing = owner.get("/q/virus");
    assert!(!listing.body.contains("<script>window"));
    assert!(
        listing.body.contains("&lt;&#x2f;script&gt;\\u{1b}"),
        "escapes in the listing too"
    );
}

/// A self-signed certificate for `localhost` and its key, written into the test's
/// directory; returns their paths and the certificate.
fn self_signed_localhost(spool: &TestSpool) -> (String, String, rcgen::Certificate) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = spool.dir.path();
    fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    (path("cert.pem"), path("key.pem"), certified.cert)
}

#[test]
fn tls_required_refuses_plain_http_and_marks_cookies_secure() {
    let spool = TestSpool::new();
    let (cert, key, certificate) = self_signed_localhost(&spool);
    let server = WebServer::start(
        &spool,
        USERS,
        &[],
        &["--tls-cert", &cert, "--tls-key", &key, "--require-tls"],
    );
    let address = server
        .base
        .strip_prefix("https://")
        .expect("an https address")
        .to_string();

    let mut plain = TcpStream::connect(&address).unwrap();
    plain
        .write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("requires TLS"),
        "{answer}"
    );
    assert!(!answer.contains("sie_session"));

    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.add(certificate.der().clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap();
        tls.write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
}

/// Writes `<spool>/archive/<period>/<queue>.tar.gz` the way `rotate` lays it out:
/// members `qf<ID>`, `df<ID>` and `result/<ID>` per entry.
fn write_archive(spool: &TestSpool, period: &str, queue: &str, from_queue: &str, ids: &[&str]) {
    let dir = spool.spool.root().join("archive").join(period);
    fs::create_dir_all(&dir).unwrap();
    let file = fs::File::create(dir.join(format!("{queue}.tar.gz"))).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::default(),
    ));
    for id in ids {
        let qdir = spool.queue(from_queue);
        let result = fs::read(spool.spool.results_dir(from_queue).join(id)).unwrap_or_default();
        for (name, data) in [
            (
                format!("qf{id}"),
                fs::read(qdir.join(format!("qf{id}"))).unwrap(),
            ),
            (
                format!("df{id}"),
                fs::read(qdir.join(format!("df{id}"))).unwrap(),
            ),
            (format!("result/{id}"), result),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o600);
            header.set_mtime(1795303433);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, &name, data.as_slice())
                .unwrap();
        }
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn archived_periods_are_listed_and_read_only() {
    let (spool, server) = setup();
    write_archive(&spool, "2026-11-21", "virus", "virus", &[EX1, OT1]);
    let mut owner = client(&server, "owner");
    let queues = owner.get("/queues");
    assert!(
        queues.body.contains("href=\"/archive/2026-11-21/virus\""),
        "{}",
        queues.body
    );
    let listing = owner.get("/archive/2026-11-21/virus");
    assert_eq!(listing.status, 200);
    assert!(
        listing.body.contains(EX1) && !listing.body.contains(OT1),
        "{}",
        listing.body
    );
    assert!(
        listing.body.contains("Eicar-Test-Signature"),
        "verdict from the archived result file"
    );
    assert!(!listing.body.contains("bulk-release") && !listing.body.contains("type=\"checkbox\""));
    let page = owner.get(&format!("/archive/2026-11-21/virus/{EX1}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("for example one") && page.body.contains("hello 1"));
    assert!(
        !page.body.contains("action-release"),
        "archived messages are read-only"
    );
    assert_eq!(
        owner
            .get(&format!("/archive/2026-11-21/virus/{OT1}"))
            .status,
        404
    );
    assert_eq!(owner.get("/archive/2026-11-21/out").status, 404);
    assert_eq!(owner.get("/archive/..%2F..%2Fetc/virus").status, 404);
}

#[test]
fn tls_offered_but_not_required_still_serves_plain_http_without_secure_cookies() {
    let spool = TestSpool::new();
    let (cert, key, _) = self_signed_localhost(&spool);
    let server = WebServer::start(
        &spool,
        USERS,
        &[],
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    let address = server.base.strip_prefix("https://").unwrap();
    let mut plain = TcpStream::connect(address).unwrap();
    plain
        .write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && !cookie.contains("Secure"),
        "{cookie}"
    );
}
