//! The rc.d scripts start, report and stop SIE through pid and stop files.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::spool::{TestSpool, test_id, wait_until};

fn rc(spool: &TestSpool, script: &str, args: &[&str]) -> Output {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_sie")).parent().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("rc.d")
        .join(script);
    Command::new("sh")
        .arg(script)
        .args(args)
        .env("SIE_BIN", bin_dir)
        .env("SIE_SPOOL", spool.spool.root())
        .env("SIE_CONFIG", &spool.config)
        .env("SIE_STOP_TIMEOUT", "30")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[test]
fn rc_sie_starts_reports_and_stops_the_supervisor() {
    let spool = TestSpool::new();
    let started = rc(&spool, "rc.sie", &["start"]);
    assert!(started.status.success(), "{}", text(&started));
    assert!(
        text(&started).contains("sie: started, pid"),
        "{}",
        text(&started)
    );
    let status = rc(&spool, "rc.sie", &["status"]);
    assert!(text(&status).contains("sie: running"), "{}", text(&status));
    let id = spool.queue_message("in", &test_id(1), "via rc", b"hello\n");
    assert!(wait_until(Duration::from_secs(30), || spool.ids("out")
        == [id.to_string()]));
    let stopped = rc(&spool, "rc.sie", &["stop"]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    assert!(
        text(&stopped).contains("sie: stopped"),
        "{}",
        text(&stopped)
    );
    let status = rc(&spool, "rc.sie", &["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
    for process in ["sie", "feed", "feed1", "feed5"] {
        assert!(
            !spool.spool.pid_file(process).exists(),
            "{process} left a pid file"
        );
    }
}

#[test]
fn rc_sie_feed_and_rc_sie_work_run_the_loops_without_the_supervisor() {
    let spool = TestSpool::new();
    assert!(rc(&spool, "rc.sie-feed", &["start"]).status.success());
    let work = rc(&spool, "rc.sie-work", &["start"]);
    assert!(work.status.success(), "{}", text(&work));
    for k in 1..=5 {
        assert!(
            text(&work).contains(&format!("feed{k}: started")),
            "{}",
            text(&work)
        );
    }
    let again = rc(&spool, "rc.sie-feed", &["start"]);
    assert!(text(&again).contains("already running"), "{}", text(&again));
    let id = spool.queue_message("in", &test_id(2), "via rc", b"hello\n");
    assert!(wait_until(Duration::from_secs(30), || spool.ids("out")
        == [id.to_string()]));
    let stopped = rc(&spool, "rc.sie-work", &["stop"]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    assert_eq!(
        text(&stopped).matches(": stopped").count(),
        5,
        "{}",
        text(&stopped)
    );
    assert!(rc(&spool, "rc.sie-feed", &["stop"]).status.success());
    assert_eq!(
        rc(&spool, "rc.sie-work", &["status", "feed1"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        rc(&spool, "rc.sie-feed", &["status"]).status.code(),
        Some(3)
    );
}
