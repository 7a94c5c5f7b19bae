//! Definitions end to end: msgscan's inputs, outputs and exit codes; updatevdl's
//! install, rejection and stale-lock handling; a running work loop picking up a new set
//! at its next pass; updatevdl interrupted or killed while it holds queue locks, and
//! `lock`/`unlock` agreeing with it; exceptions counted as vir-ex in the Stats line.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;

use common::spool::{TestSpool, terminate, test_id, wait_until};

fn eicar() -> String {
    String::from_utf8(sie::scan::virus::eicar_test_file()).unwrap()
}

fn msgscan(spool: &TestSpool, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_msgscan"))
        .arg("--spool")
        .arg(spool.spool.root())
        .args(args)
        .output()
        .unwrap()
}

fn updatevdl(spool: &TestSpool, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_updatevdl"))
        .arg("--spool")
        .arg(spool.spool.root())
        .args(["--timeout", "20"])
        .args(args)
        .output()
        .unwrap()
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn verdict_of<'a>(lines: &'a [serde_json::Value], path_end: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|line| line["path"].as_str().unwrap().ends_with(path_end))
        .unwrap_or_else(|| panic!("no result for {path_end}: {lines:?}"))
}

fn message_with_attachment(name: &str, data: &[u8]) -> String {
    format!(
        "From: a@client.test\nTo: b@dest.test\nSubject: files\nDate: Sun, 22 Nov 2026 10:00:00 +0000\nMessage-Id: <x@client.test>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: application/octet-stream; name=\"{name}\"\nContent-Transfer-Encoding: base64\n\n{}\n--b--\n",
        sie::scan::encode_base64(data)
    )
}

#[test]
fn msgscan_scans_messages_mboxes_files_and_queue_entries() {
    let spool = TestSpool::new();
    let dir = spool.dir.path().join("inputs");
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("clean.eml"), "From: a@client.test\nSubject: minutes\nDate: Sun, 22 Nov 2026 10:00:00 +0000\nMessage-Id: <m@client.test>\n\nThe minutes.\n").unwrap();
    fs::write(
        dir.join("virus.eml"),
        message_with_attachment("notes.txt", eicar().as_bytes()),
    )
    .unwrap();
    fs::write(
        dir.join("sub/ext.eml"),
        message_with_attachment("invoice.pdf.exe", b"MZ"),
    )
    .unwrap();
    let mbox = format!(
        "From a@client.test Sun Nov 22 10:00:00 2026\nSubject: one\n\nfirst\n\nFrom b@client.test Sun Nov 22 10:00:01 2026\nSubject: two\n\n{}\n",
        eicar()
    );
    fs::write(dir.join("box.mbox"), mbox).unwrap();
    fs::write(dir.join("payload.bin"), eicar()).unwrap();
    let output = msgscan(&spool, &["--json", dir.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(verdict_of(&lines, "clean.eml")["verdict"], "clean");
    let virus = verdict_of(&lines, "virus.eml");
    assert_eq!(virus["verdict"], "virus");
    assert_eq!(virus["name"], "Eicar-Test-Signature");
    assert!(virus["where"].as_str().unwrap().contains("notes.txt"));
    assert_eq!(verdict_of(&lines, "ext.eml")["verdict"], "ext");
    assert_eq!(verdict_of(&lines, "box.mbox#1")["verdict"], "clean");
    assert_eq!(verdict_of(&lines, "box.mbox#2")["verdict"], "virus");
    assert_eq!(verdict_of(&lines, "payload.bin")["verdict"], "virus");
    for line in &lines {
        for key in ["path", "verdict", "name", "where", "score"] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
    }

    let clean_only = msgscan(&spool, &[dir.join("clean.eml").to_str().unwrap()]);
    assert_eq!(clean_only.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&clean_only.stdout).ends_with("clean.eml: clean\n"));

    let id = spool.queue_message("virus", &test_id(5), "held", eicar().as_bytes());
    let output = msgscan(&spool, &[id.as_str()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(&format!("virus/{id}: virus Eicar-Test-Signature")),
        "{text}"
    );
    assert_eq!(msgscan(&spool, &["NOSUCHID000000"]).status.code(), Some(2));
}

#[test]
fn msgscan_uses_clamav_files_and_reports_lines_it_cannot_use() {
    let spool = TestSpool::new();
    let vdl = spool.dir.path().join("vdl");
    fs::create_dir_all(&vdl).unwrap();
    // "zz-marker-zz" in hex, a second signature with a wildcard, and an entry-point
    // offset SIE does not support.
    fs::write(
        vdl.join("custom.ndb"),
        "Custom.Marker-1:0:*:7a7a2d6d61726b65722d7a7a\nCustom.Wild-1:0:*:6162636465??6768696a\nCustom.EP-1:1:EP+0:bb71104000\n",
    )
    .unwrap();
    let sample = spool.dir.path().join("sample.txt");
    fs::write(&sample, "text with zz-marker-zz inside").unwrap();
    let output = msgscan(
        &spool,
        &["--vdl", vdl.to_str().unwrap(), sample.to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("virus Custom.Marker-1.UNOFFICIAL"), "{text}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("custom.ndb:3:"),
        "the unsupported line is named: {stderr}"
    );
}

#[test]
fn updatevdl_installs_for_the_next_pass_and_keeps_the_old_set_on_failure() {
    let spool = TestSpool::new();
    let mut work = spool.start_work("feed1");
    let defs = defs_with_marker(&spool);
    // A lock left by an updatevdl that died must not block the next one.
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    fs::write(
        spool.spool.lock_file("feed3"),
        format!("{dead_pid} updatevdl\n"),
    )
    .unwrap();
    let output = updatevdl(&spool, &[defs.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("self-test passed"));
    assert!(
        !spool.spool.lock_file("feed3").exists(),
        "every queue unlocked again"
    );
    let cleared = format!("Cleared stale lock.feed3 of dead pid {dead_pid} (updatevdl)");
    assert!(String::from_utf8_lossy(&output.stderr).contains(&cleared));
    assert!(
        spool.log("updatevdl").contains(&cleared),
        "{}",
        spool.log("updatevdl")
    );

    let id = spool.queue_message("feed1", &test_id(9), "marker", b"body with zz-marker-zz\n");
    assert!(wait_until(Duration::from_secs(20), || spool.ids("virus")
        == [id.to_string()]));
    assert!(
        spool
            .result("virus", id.as_str())
            .unwrap()
            .contains("Custom.Marker")
    );
    // A pass's lines reach the log once its moves are durable, just after.
    assert!(wait_until(Duration::from_secs(10), || spool
        .log("feed1")
        .contains("Loaded definitions from")));

    let broken = spool.dir.path().join("broken");
    fs::create_dir_all(&broken).unwrap();
    fs::write(
        broken.join("bad.ndb"),
        "Bad.Sig-1:0:*:414243444546\n\nBad.Sig-2:0:*:474849\n",
    )
    .unwrap();
    let before = fs::read_link(spool.spool.state_dir().join("vdl/current")).unwrap();
    let output = updatevdl(&spool, &[broken.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("bad.ndb:2"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        fs::read_link(spool.spool.state_dir().join("vdl/current")).unwrap(),
        before
    );
    assert_eq!(terminate(&mut work, Duration::from_secs(10)), Some(0));
}

/// A definitions directory with the shipped files and one extra signature.
fn defs_with_marker(spool: &TestSpool) -> std::path::PathBuf {
    let defs = spool.dir.path().join("defs");
    fs::create_dir_all(&defs).unwrap();
    for name in ["virus.vdl", "spam.vdl", "exceptions.vdl"] {
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("vdl").join(name),
            defs.join(name),
        )
        .unwrap();
    }
    let mut virus = fs::read_to_string(defs.join("virus.vdl")).unwrap();
    virus.push_str("text Custom.Marker \"zz-marker-zz\"\n");
    fs::write(defs.join("virus.vdl"), virus).unwrap();
    defs
}

/// Starts updatevdl on `defs` and waits until it holds feed1 and feed2 while it waits
/// for feed3, which the test holds as a live work pass.
fn updatevdl_waiting_on_feed3(spool: &TestSpool, defs: &Path) -> std::process::Child {
    fs::write(
        spool.spool.lock_file("feed3"),
        format!("{} sie-work feed3\n", std::process::id()),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_updatevdl"))
        .arg("--spool")
        .arg(spool.spool.root())
        .args(["--timeout", "60"])
        .arg(defs)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let held_by_updatevdl = |queue: &str| {
        fs::read_to_string(spool.spool.lock_file(queue))
            .is_ok_and(|text| text == format!("{} updatevdl\n", child.id()))
    };
    assert!(
        wait_until(Duration::from_secs(30), || held_by_updatevdl("feed1")
            && held_by_updatevdl("feed2")),
        "updatevdl never locked feed1 and feed2"
    );
    child
}

fn current_set(spool: &TestSpool) -> std::path::PathBuf {
    fs::read_link(spool.spool.state_dir().join("vdl/current")).unwrap()
}

#[test]
fn an_interrupted_updatevdl_installs_nothing_and_leaves_no_lock() {
    let spool = TestSpool::new();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("vdl");
    assert_eq!(
        updatevdl(&spool, &[shipped.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    let before = current_set(&spool);
    let defs = defs_with_marker(&spool);
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let mut child = updatevdl_waiting_on_feed3(&spool, &defs);
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        let output = wait_with_timeout(&mut child, Duration::from_secs(10));
        assert_eq!(output.0, Some(2), "{signal}: {}", output.1);
        assert!(output.1.contains("interrupted"), "{signal}: {}", output.1);
        for queue in ["feed1", "feed2", "feed4", "feed5"] {
            assert!(
                !spool.spool.lock_file(queue).exists(),
                "{signal}: {queue} left locked"
            );
        }
        assert_eq!(current_set(&spool), before, "{signal}: nothing installed");
    }
    assert!(
        spool
            .log("updatevdl")
            .contains("Not installed: interrupted")
    );
    assert!(
        spool.spool.lock_file("feed3").exists(),
        "the live holder's lock is never touched"
    );

    // `unlock` keeps a live pass's lock; `lock` waits for it and gives up cleanly.
    let unlock = spool.run("unlock", &["all"]);
    assert_eq!(unlock.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unlock.stderr).contains("feed3: held by running pid"));
    let lock = spool.run("lock", &["--timeout", "0.5", "all"]);
    assert_eq!(lock.status.code(), Some(1));
    for queue in ["feed1", "feed2", "feed4", "feed5"] {
        assert!(
            !spool.spool.lock_file(queue).exists(),
            "lock left {queue} locked"
        );
    }
}

#[test]
fn a_killed_updatevdls_locks_are_cleared_by_the_work_loops_and_lock() {
    let spool = TestSpool::new();
    let defs = defs_with_marker(&spool);
    let mut child = updatevdl_waiting_on_feed3(&spool, &defs);
    let dead_pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(spool.spool.lock_file("feed1").exists() && spool.spool.lock_file("feed2").exists());

    let mut work = spool.start_work("feed1");
    let id = spool.queue_message("feed1", &test_id(11), "after a kill", b"plain body\n");
    assert!(
        wait_until(Duration::from_secs(20), || spool.ids("out")
            == [id.to_string()]),
        "feed1 must run again: {}",
        spool.log("feed1")
    );
    let cleared = format!("Cleared stale lock.feed1 of dead pid {dead_pid} (updatevdl)");
    assert!(
        wait_until(Duration::from_secs(10), || spool
            .log("feed1")
            .contains(&cleared)),
        "{}",
        spool.log("feed1")
    );
    assert_eq!(terminate(&mut work, Duration::from_secs(10)), Some(0));

    let lock = spool.run("lock", &["--timeout", "5", "feed2"]);
    assert_eq!(lock.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&lock.stdout);
    assert!(
        stdout.contains(&format!(
            "Cleared stale lock.feed2 of dead pid {dead_pid} (updatevdl)"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("feed2 locked (lock by"), "{stdout}");
    let unlock = spool.run("unlock", &["feed2"]);
    assert_eq!(unlock.status.code(), Some(0));
    assert!(!spool.spool.lock_file("feed2").exists());
}

/// Waits for `child`; returns its exit code and what it wrote to stderr.
fn wait_with_timeout(child: &mut std::process::Child, timeout: Duration) -> (Option<i32>, String) {
    let exited = wait_until(timeout, || child.try_wait().unwrap().is_some());
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

#[test]
fn an_exception_delivers_the_message_and_counts_vir_ex() {
    let spool = TestSpool::new();
    let defs = spool.dir.path().join("defs");
    fs::create_dir_all(&defs).unwrap();
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("vdl/virus.vdl"),
        defs.join("virus.vdl"),
    )
    .unwrap();
    fs::write(
        defs.join("exceptions.vdl"),
        "except virus rule Eicar-Test-Signature recipient rcpt@dest.test\n",
    )
    .unwrap();
    assert_eq!(
        updatevdl(&spool, &[defs.to_str().unwrap()]).status.code(),
        Some(0)
    );
    let id = spool.queue_message("feed2", &test_id(11), "test file", eicar().as_bytes());
    let mut work = spool.start_work("feed2");
    assert!(wait_until(Duration::from_secs(20), || spool.ids("out")
        == [id.to_string()]));
    assert_eq!(terminate(&mut work, Duration::from_secs(10)), Some(0));
    let stats = spool
        .log("feed2")
        .lines()
        .find(|l| l.contains("Stats:"))
        .unwrap()
        .to_string();
    assert!(
        stats.contains("vir:0") && stats.contains("vir-ex:1") && stats.contains("clean:0"),
        "{stats}"
    );
}
