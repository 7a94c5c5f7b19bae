//! The web console in headless Chromium (through chromedriver): log in, list the
//! virus queue, open a message, release one, delete one, a hostile message that must
//! stay inert, the live numbers refreshing without a reload, log out. Screenshots of
//! each step go to `target/web-screenshots/`.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::spool::TestSpool;
use common::web::{WebServer, queue_entry};

const PASSWORD: &str = "browser pass phrase";
const RELEASE_ME: &str = "6ALBRW00000001";
const DELETE_ME: &str = "6ALBRW00000002";
const HOSTILE: &str = "6ALBRW00000003";
const LATE: &str = "6ALBRW00000004";

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/web-screenshots")
}

const RESULT: &str = "id: x\nverdict: virus\nname: Eicar-Test-Signature\nwhere: part 2 (eicar.com)\nwhy: the signature matched\n";

/// A message whose subject, attachment names and HTML body try to run script.
fn hostile_body() -> Vec<u8> {
    let mut zip = Vec::new();
    {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(&mut zip));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        writer
            .start_file(
                "<img src=x onerror=\"window.pwned=5;alert(5)\">.txt",
                options,
            )
            .unwrap();
        std::io::Write::write_all(&mut writer, b"inner").unwrap();
        writer.finish().unwrap();
    }
    let mut body = b"--B\nContent-Type: text/html\n\n<html><body><h1 id=\"inner\">hi</h1><script>window.pwned=1;alert(1)</script><img src=x onerror=\"window.pwned=2;alert(2)\"><a href=\"javascript:window.pwned=6\">x</a></body></html>\n--B\nContent-Type: application/zip; name=\"<script>window.pwned=3;alert(3)</script>\x1b[2J.zip\"\nContent-Transfer-Encoding: base64\n\n".to_vec();
    body.extend_from_slice(sie::scan::encode_base64(&zip).as_bytes());
    body.extend_from_slice(b"\n--B--\n\xff\xfe odd bytes\n");
    body
}

#[test]
fn an_admin_works_the_virus_queue_in_a_real_browser() {
    let spool = TestSpool::new();
    let to = ["user@example.org"];
    queue_entry(
        &spool,
        "virus",
        RELEASE_ME,
        ("x@client.test", &to),
        &[("Subject", "release me")],
        b"a clean body\n",
        Some(RESULT),
    );
    queue_entry(
        &spool,
        "virus",
        DELETE_ME,
        ("x@client.test", &to),
        &[("Subject", "delete me")],
        b"a bad body\n",
        Some(RESULT),
    );
    let subject = "<script>window.pwned=4;alert(4)</script>\u{7}";
    let mime = [
        ("Subject", subject),
        ("MIME-Version", "1.0"),
        ("Content-Type", "multipart/mixed; boundary=B"),
    ];
    queue_entry(
        &spool,
        "virus",
        HOSTILE,
        ("x@client.test", &to),
        &mime,
        &hostile_body(),
        Some(RESULT),
    );
    let server = WebServer::start(&spool, "all admin\n", &[("admin", PASSWORD)], &[]);
    let browser = Browser::start(&screenshots());

    // Log in, choose all domains.
    browser.goto(&server.url("/login"));
    browser.type_into("#user", "admin");
    browser.type_into("#password", PASSWORD);
    browser.click("#login");
    browser.click("#domain-all");
    browser.find("#queue-virus");
    assert!(browser.current_url().ends_with("/queues"));
    browser.screenshot("01-queues");

    // The virus queue.
    browser.click("#queue-virus");
    let listing = browser.text("table.listing");
    for id in [RELEASE_ME, DELETE_ME, HOSTILE] {
        assert!(listing.contains(id), "{listing}");
    }
    assert!(listing.contains("Eicar-Test-Signature"));
    browser.screenshot("02-virus-queue");

    // Open a message and release it.
    browser.click(&format!("#open-{RELEASE_ME}"));
    assert_eq!(browser.text("#subject"), "release me");
    assert!(
        browser
            .text("table.result")
            .contains("Eicar-Test-Signature")
    );
    browser.screenshot("03-message");
    browser.click("#action-release");
    let outcome = browser.text(&format!("#outcome-{RELEASE_ME}"));
    assert!(outcome.starts_with("released"), "{outcome}");
    browser.screenshot("04-released");
    assert_eq!(spool.ids("out"), [RELEASE_ME]);
    assert_eq!(spool.ids("release"), [RELEASE_ME]);

    // Delete another.
    browser.goto(&server.url(&format!("/q/virus/{DELETE_ME}")));
    browser.click("#action-delete");
    let outcome = browser.text(&format!("#outcome-{DELETE_ME}"));
    assert!(outcome.starts_with("deleted"), "{outcome}");
    browser.screenshot("05-deleted");
    assert_eq!(spool.ids("delete"), [DELETE_ME]);
    assert_eq!(spool.ids("virus"), [HOSTILE]);

    // The hostile message renders as text and runs nothing.
    browser.goto(&server.url(&format!("/q/virus/{HOSTILE}")));
    let shown = browser.text("#subject");
    assert!(
        shown.starts_with("<script>window.pwned=4;alert(4)</script>"),
        "{shown}"
    );
    assert!(shown.contains("\\u{7}"), "{shown}");
    let tree = browser.text("table.tree");
    assert!(tree.contains("<img src=x onerror="), "{tree}");
    assert!(browser.text("pre.text").contains("<script>window.pwned=1"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(browser.alert_text(), None, "no alert opened");
    assert_eq!(browser.script("return typeof window.pwned;"), "undefined");
    let markup = browser.script(
        "return document.querySelectorAll('main script, main img, main iframe, #inner').length;",
    );
    assert_eq!(markup, 0, "no element of the message became markup");
    browser.screenshot("06-hostile-message");

    // The live numbers follow the spool without a reload.
    browser.goto(&server.url("/queues"));
    browser.script("window.sameDocument = 'yes'; return 0;");
    let before = browser.text("#live-virus-messages");
    assert_eq!(before, "1");
    queue_entry(
        &spool,
        "virus",
        LATE,
        ("x@client.test", &to),
        &[("Subject", "late")],
        b"late\n",
        Some(RESULT),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while browser.text("#live-virus-messages") != "2" {
        assert!(Instant::now() < deadline, "the live count did not change");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        browser.script("return window.sameDocument;"),
        "yes",
        "no reload"
    );
    browser.screenshot("07-live");

    // Log out: the queues are out of reach again.
    browser.click("#logout");
    browser.find("#login");
    browser.goto(&server.url("/queues"));
    browser.find("#login");
    assert!(browser.current_url().ends_with("/login"));
    browser.screenshot("08-logged-out");
    for name in [
        "01-queues",
        "04-released",
        "06-hostile-message",
        "08-logged-out",
    ] {
        assert!(screenshots().join(format!("{name}.png")).is_file());
    }
    let audit = server.audit();
    assert!(audit.contains(&format!(
        "action=release queue=virus id={RELEASE_ME} result=ok"
    )));
    assert!(audit.contains(&format!(
        "action=delete queue=virus id={DELETE_ME} result=ok"
    )));
}
