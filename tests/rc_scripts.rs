//! The rc.d scripts start, report and stop SIE through pid and stop files, and every
//! job of `tools/crontab.example` runs as cron would run it.

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

/// The jobs of `tools/crontab.example` as cron would run them: its variables, then each
/// command with `\%` turned into `%`, by /bin/sh.
fn crontab_jobs() -> (Vec<(String, String)>, Vec<String>) {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/crontab.example"),
    )
    .unwrap();
    let mut vars = Vec::new();
    let mut jobs = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let first = line.split_whitespace().next().unwrap();
        if let Some((name, value)) = first.split_once('=') {
            vars.push((name.to_string(), value.to_string()));
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().take(5).collect();
        assert_eq!(fields.len(), 5, "five time fields: {line}");
        for field in &fields {
            assert!(
                field
                    .chars()
                    .all(|c| c.is_ascii_digit() || "*/,-".contains(c)),
                "time field {field:?}: {line}"
            );
        }
        let mut rest = line;
        for _ in 0..5 {
            rest = rest.trim_start().split_once(char::is_whitespace).unwrap().1;
        }
        jobs.push(rest.trim().replace("\\%", "%"));
    }
    (vars, jobs)
}

#[test]
fn every_job_of_the_crontab_example_runs() {
    let spool = TestSpool::new();
    let (vars, jobs) = crontab_jobs();
    let names: Vec<&str> = vars.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "SIE_SPOOL",
            "SIE_CONFIG",
            "SIE_RC",
            "SIE_INCOMING",
            "PATH",
            "MAILTO"
        ]
    );
    assert_eq!(jobs.len(), 4, "{jobs:?}");

    // A week of passes in feed1's log, for solve; a definitions tarball, for updatevdl.
    let now = chrono::Local::now();
    let mut log = String::new();
    for pass in 0..40u32 {
        let at = now - chrono::Duration::hours(i64::from(pass) * 3 + 1);
        let (msgs, bytes) = (1 + pass % 7, 2_000 + u64::from(pass % 5) * 30_000);
        let vs = 0.05 + 0.01 * f64::from(msgs) + 2e-6 * bytes as f64;
        log.push_str(&format!(
            "feed1: {}: Started pass {}.{pass}.\nfeed1: Stats: vir:0 ext:0 spam:0 vir-ex:0 ext-ex:0 spam-ex:0 clean:{msgs} msgs:{msgs} bytes:{bytes} vf:0.01 vs:{vs:.3} lock:0.000\n",
            sie::timefmt::log_date(at),
            at.format("%Y%m%d%H%M%S")
        ));
    }
    std::fs::write(spool.spool.log_file("feed1"), log).unwrap();
    let incoming = spool.dir.path().join("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    let tarball = incoming.join("defs.tar.gz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&tarball)
        .arg("-C")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vdl"))
        .args(["virus.vdl", "spam.vdl", "exceptions.vdl"])
        .status()
        .unwrap();
    assert!(status.success());

    let bin_dir = Path::new(env!("CARGO_BIN_EXE_sie")).parent().unwrap();
    let run = |job: &str| {
        let output = Command::new("sh")
            .arg("-c")
            .arg(job)
            .env("SIE_SPOOL", spool.spool.root())
            .env("SIE_CONFIG", &spool.config)
            .env(
                "SIE_RC",
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rc.d"),
            )
            .env("SIE_INCOMING", &incoming)
            .env("SIE_BIN", bin_dir)
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .output()
            .unwrap();
        assert!(output.status.success(), "{job}: {}", text(&output));
        text(&output)
    };
    let job = |program: &str| jobs.iter().find(|j| j.contains(program)).unwrap().as_str();

    run(job("updatevdl"));
    assert!(incoming.join("defs.tar.gz.installed").exists());
    assert!(spool.spool.state_dir().join("vdl/current").exists());
    run(job("updatevdl"));

    run(job("solve"));
    let settings = std::fs::read_to_string(&spool.config).unwrap();
    assert!(settings.contains("[run.queue.feed1]"), "{settings}");

    run(job("rotate"));
    let periods: Vec<_> = std::fs::read_dir(spool.spool.root().join("archive"))
        .unwrap()
        .collect();
    assert_eq!(periods.len(), 1, "one archived period");

    let started = run(job("rc.sie"));
    assert!(started.is_empty(), "quiet: {started}");
    assert!(wait_until(Duration::from_secs(20), || spool
        .spool
        .pid_file("sie")
        .exists()));
    run(job("rc.sie"));
    let stopped = rc(&spool, "rc.sie", &["stop"]);
    assert!(stopped.status.success(), "{}", text(&stopped));
}
