//! Release is exact: a message queued by a real sendmail and quarantined in `virus`,
//! released from the web console, is delivered once by the out-queue sendmail (`-q1s`
//! on `out`, relaying to the SMTP sink), while its copy stays in `release`
//! undelivered; releasing it again finds nothing to release.

mod common;

use std::time::Duration;

use common::sendmail::{Mta, compose, free_port, move_entry, require_tools, send_data};
use common::sink::Sink;
use common::spool::TestSpool;
use common::web::{Client, WebServer};

#[test]
fn a_released_message_is_delivered_once() {
    require_tools();
    let spool = TestSpool::new();
    let sink = Sink::start();
    let mta = Mta::prepare(&spool.dir.path().join("mta"), free_port(), sink.port()).unwrap();
    let mut a = mta.start_a(&spool.queue("in")).expect("start sendmail A");
    let data = compose(
        "sender@client.test",
        "user@example.org",
        "held by mistake",
        "Hello,\nthis one was quarantined by mistake.\n",
        None,
    );
    let id = send_data(
        mta.in_port(),
        "sender@client.test",
        "user@example.org",
        &data,
    )
    .unwrap();
    a.stop();
    move_entry(&spool.queue("in"), &spool.queue("virus"), &id).unwrap();
    let queue_id = sie::queue::QueueId::parse(&id).unwrap();
    spool
        .spool
        .write_result("virus", &queue_id, "verdict: virus\nname: Test-Signature\n")
        .unwrap();

    let server = WebServer::start(
        &spool,
        "example.org owner\n",
        &[("owner", "pass phrase")],
        &[],
    );
    let mut owner = Client::new(&server);
    owner.login("owner", "pass phrase", "example.org");
    let mut b = mta
        .start_b(&spool.queue("out"))
        .expect("start sendmail B -q1s");
    let answer = owner.post_with_csrf(
        &format!("/q/virus/{id}"),
        "/q/virus/action",
        &[("action", "release"), ("id", &id)],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("released: now in out"));

    assert!(
        sink.wait_for(1, Duration::from_secs(60)),
        "B did not deliver the released message"
    );
    // B runs the out queue every second: give it several more runs to show it
    // delivers nothing twice, and that the copy in `release` is never sent.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(sink.count(), 1, "delivered exactly once");
    let got = &sink.messages()[0];
    assert!(got.received_ids().contains(&id), "{:?}", got.received_ids());
    assert_eq!(got.header("Subject").as_deref(), Some("held by mistake"));
    assert!(got.text().contains("this one was quarantined by mistake."));
    assert!(
        common::sendmail::entry_files(&spool.queue("out")).is_empty(),
        "out drained"
    );
    assert_eq!(
        spool.ids("release"),
        std::slice::from_ref(&id),
        "the copy is kept"
    );
    assert!(spool.ids("virus").is_empty());

    let again = owner.post_with_csrf(
        "/q/virus",
        "/q/virus/action",
        &[("action", "release"), ("id", &id)],
    );
    assert_eq!(again.status, 404, "nothing left to release");
    let from_copy = owner.post_with_csrf(
        "/q/release",
        "/q/release/action",
        &[("action", "release"), ("id", &id)],
    );
    assert_eq!(from_copy.status, 400, "the kept copy is not released again");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.count(), 1);
    b.stop();
}
