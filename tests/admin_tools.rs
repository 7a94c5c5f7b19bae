//! The admin programs run as built (`qtool`, `mailq`, `qls`, `msgcat`, `stats`, `ptail`,
//! `lock`, `unlock`, `stop`, `ctime`, `time`) against a fresh spool per test.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use sie::queue::Spool;
use sie::queue::qf::{ControlFile, ControlFileBuilder};

struct Fixture {
    _dir: tempfile::TempDir,
    spool: Spool,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path().join("queues"), 5);
    spool.ensure_tree().unwrap();
    Fixture { _dir: dir, spool }
}

impl Fixture {
    /// Queues a message the way sendmail's queue-only receipt does (qf + df).
    fn put(&self, queue: &str, id: &str, body: &str) -> PathBuf {
        let dir = self.spool.queue_dir(queue).unwrap();
        let qf = ControlFileBuilder {
            created: 1795303433,
            sender: "sender@client.test".into(),
            recipients: vec!["rcpt1@dest.test".into(), "rcpt2@dest.test".into()],
            helo: "client.test".into(),
            headers: vec![
                (
                    "Received".into(),
                    format!("from client.test\n\tby mta.test with ESMTP id {id}"),
                ),
                ("From".into(), "sender@client.test".into()),
                ("Subject".into(), format!("test {id}")),
            ],
            body_bytes: body.len() as u64,
        };
        fs::write(dir.join(format!("df{id}")), body).unwrap();
        fs::write(dir.join(format!("qf{id}")), qf.build()).unwrap();
        dir
    }

    fn has(&self, queue: &str, id: &str) -> bool {
        let dir = self.spool.queue_dir(queue).unwrap();
        dir.join(format!("qf{id}")).exists() && dir.join(format!("df{id}")).exists()
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program_path(program))
            .args(args)
            .env("SIE_SPOOL", self.spool.root())
            .env_remove("SIE_CONFIG")
            .output()
            .unwrap()
    }
}

fn program_path(program: &str) -> &'static str {
    match program {
        "qtool" => env!("CARGO_BIN_EXE_qtool"),
        "mailq" => env!("CARGO_BIN_EXE_mailq"),
        "qls" => env!("CARGO_BIN_EXE_qls"),
        "msgcat" => env!("CARGO_BIN_EXE_msgcat"),
        "stats" => env!("CARGO_BIN_EXE_stats"),
        "ptail" => env!("CARGO_BIN_EXE_ptail"),
        "lock" => env!("CARGO_BIN_EXE_lock"),
        "unlock" => env!("CARGO_BIN_EXE_unlock"),
        "stop" => env!("CARGO_BIN_EXE_stop"),
        "ctime" => env!("CARGO_BIN_EXE_ctime"),
        "time" => env!("CARGO_BIN_EXE_time"),
        other => panic!("no program {other}"),
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap()
}

#[test]
fn qtool_moves_by_glob_and_refuses_to_clobber() {
    let f = fixture();
    f.put("virus", "6ALNNrgA023896", "one\n");
    f.put("virus", "6ALNNrgA023897", "two\n");
    f.put("virus", "7XYZNrgA000001", "other\n");
    f.put("out", "6ALNNrgA023897", "already there\n");
    f.spool
        .write_result(
            "virus",
            &sie::queue::QueueId::parse("6ALNNrgA023896").unwrap(),
            "EICAR\n",
        )
        .unwrap();

    let out = f.run("qtool", &["virus", "out", "6ALN*"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(stdout(&out), "6ALNNrgA023896 virus -> out\n");
    assert!(stderr(&out).contains("6ALNNrgA023897"), "{}", stderr(&out));
    assert!(f.has("out", "6ALNNrgA023896") && !f.has("virus", "6ALNNrgA023896"));
    // The clobber was refused: both copies are where they were, untouched.
    assert!(f.has("virus", "6ALNNrgA023897"));
    let kept = f.spool.queue_dir("out").unwrap().join("df6ALNNrgA023897");
    assert_eq!(fs::read_to_string(kept).unwrap(), "already there\n");
    assert!(f.has("virus", "7XYZNrgA000001"));
    // The result file is history: it stays.
    assert!(f.spool.results_dir("virus").join("6ALNNrgA023896").exists());

    let out = f.run("qtool", &["virus", "out", "NOMATCH*"]);
    assert_eq!(code(&out), 1);
    let out = f.run("qtool", &["virus", "nosuchqueue", "*"]);
    assert_eq!(code(&out), 2);
    let out = f.run("qtool", &["virus", "out", "../qfX"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn qtool_leaves_an_entry_flocked_by_someone_else_until_it_is_released() {
    let f = fixture();
    let dir = f.put("in", "6ALNNrgA023896", "body\n");
    let holder = fs::File::open(dir.join("qf6ALNNrgA023896")).unwrap();
    holder.lock().unwrap();

    let out = f.run("qtool", &["in", "feed1", "6ALNNrgA023896"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));
    assert!(f.has("in", "6ALNNrgA023896") && !f.has("feed1", "6ALNNrgA023896"));

    holder.unlock().unwrap();
    let out = f.run("qtool", &["in", "feed1", "6ALNNrgA023896"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(f.has("feed1", "6ALNNrgA023896") && !f.has("in", "6ALNNrgA023896"));
}

#[test]
fn qtool_skips_an_incomplete_entry() {
    let f = fixture();
    let dir = f.spool.queue_dir("in").unwrap();
    fs::write(dir.join("qf6ALNNrgA023896"), "V8\nT1\nS<a@b>\n").unwrap();
    fs::write(dir.join("df6ALNNrgA023896"), "body\n").unwrap();
    let out = f.run("qtool", &["in", "out", "*"]);
    assert_eq!(code(&out), 1);
    assert!(dir.join("qf6ALNNrgA023896").exists());
}

#[test]
fn mailq_lists_oldest_first_in_sendmails_layout() {
    let f = fixture();
    let dir = f.put("in", "6ALNNrgA023896", "body one\n");
    f.put("in", "6ALNNrgA023897", "body two\n");
    let qf_len = fs::metadata(dir.join("qf6ALNNrgA023896")).unwrap().len();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(dir.join("qf6ALNNrgA023897"))
        .unwrap()
        .set_modified(old)
        .unwrap();

    let out = f.run("mailq", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "\t\tin (2 requests)");
    assert!(lines[1].starts_with("-----Q-ID----- --Size-- -----Q-Time-----"));
    assert!(
        lines[2].starts_with("6ALNNrgA023897 "),
        "oldest first: {text}"
    );
    let fields: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(fields[1], (qf_len + 9).to_string());
    assert_eq!(fields.last(), Some(&"<sender@client.test>"));
    assert_eq!(lines[3].trim(), "<rcpt1@dest.test>");
    assert_eq!(lines[3].find('<'), Some(41));
    assert_eq!(lines.last(), Some(&"\t\tTotal requests: 2"));

    let out = f.run("mailq", &["--ids"]);
    assert_eq!(stdout(&out), "6ALNNrgA023897\n6ALNNrgA023896\n");
    let out = f.run("mailq", &["virus"]);
    assert_eq!(stdout(&out), "\t\tvirus is empty\n\t\tTotal requests: 0\n");
}

#[test]
fn qls_counts_messages_and_bytes_per_queue() {
    let f = fixture();
    let dir = f.put("in", "6ALNNrgA023896", "12345\n");
    f.put("in", "6ALNNrgA023897", "12345\n");
    f.put("spam", "6ALNNrgA023898", "12345\n");
    let entry_bytes = fs::metadata(dir.join("qf6ALNNrgA023896")).unwrap().len() + 6;

    let out = f.run("qls", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows: Vec<Vec<String>> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        [
            "in", "feed1", "feed2", "feed3", "feed4", "feed5", "out", "virus", "ext", "spam",
            "error", "delete", "release", "good", "total"
        ]
    );
    let row = |q: &str| rows.iter().find(|r| r[0] == q).unwrap().clone();
    assert_eq!(row("in"), ["in", "2", &(2 * entry_bytes).to_string()]);
    assert_eq!(row("spam"), ["spam", "1", &entry_bytes.to_string()]);
    assert_eq!(row("total"), ["total", "3", &(3 * entry_bytes).to_string()]);

    let out = f.run("qls", &["--json", "spam"]);
    let value: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(value["queue"], "spam");
    assert_eq!(value["msgs"], 1);
    assert_eq!(value["bytes"], entry_bytes);
}

#[test]
fn msgcat_prints_the_headers_a_blank_line_and_the_body() {
    let f = fixture();
    let dir = f.put("virus", "6ALNNrgA023896", "Hello,\r\nworld.\r\n");
    let qf = fs::read(dir.join("qf6ALNNrgA023896")).unwrap();
    let mut expected = ControlFile::parse(&qf).unwrap().header_section();
    expected.extend_from_slice(b"\nHello,\r\nworld.\r\n");

    let out = f.run("msgcat", &["virus", "6ALNNrgA023896"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, expected);
    assert!(stdout(&out).starts_with("Received: from client.test\n\tby mta.test"));

    let path = dir.join("qf6ALNNrgA023896");
    let out = f.run("msgcat", &[path.to_str().unwrap()]);
    assert_eq!(out.stdout, expected);

    let out = f.run("msgcat", &["--qf", "virus", "6ALN*"]);
    let mut raw = qf.clone();
    raw.extend_from_slice(b"--- df ---\nHello,\r\nworld.\r\n");
    assert_eq!(out.stdout, raw);

    fs::remove_file(dir.join("df6ALNNrgA023896")).unwrap();
    let out = f.run("msgcat", &["virus", "6ALNNrgA023896"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("df missing"), "{}", stderr(&out));
    let out = f.run("msgcat", &["virus", "NOSUCHID"]);
    assert_eq!(code(&out), 1);
}

const FEED1_LOG: &str = "\
feed1: Sat Nov 21 10:00:00 UTC 2026: Started pass 20261121100000.100.1.
feed1: Stats: vir:1 ext:0 spam:0 vir-ex:0 ext-ex:0 spam-ex:0 clean:2 msgs:3 bytes:3000 vf:0.50 vs:1.250 lock:0.010
feed1: Sat Nov 21 10:00:02 UTC 2026: Finished pass.
feed1: Sat Nov 21 10:01:00 UTC 2026: Started pass 20261121100100.100.2.
feed1: Stats: vir:0 ext:1 spam:2 vir-ex:0 ext-ex:0 spam-ex:0 clean:4 msgs:7 bytes:9000 vf:1.00 vs:2.000 lock:0.020
";

#[test]
fn stats_sums_the_passes_of_a_log() {
    let f = fixture();
    fs::write(f.spool.log_file("feed1"), FEED1_LOG).unwrap();
    fs::write(
        f.spool.log_file("feed"),
        "feed: Sat Nov 21 10:00:00 UTC 2026: Started.\n",
    )
    .unwrap();

    let out = f.run("stats", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("feed1: 2 passes  vir:1 ext:1 spam:2 "),
        "{text}"
    );
    let msgs: Vec<&str> = text
        .lines()
        .find(|l| l.trim_start().starts_with("msgs"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(msgs, ["msgs", "10", "7", "5.00"]);
    assert_eq!(
        text.lines().last().unwrap(),
        "Stats: vir:1 ext:1 spam:2 vir-ex:0 ext-ex:0 spam-ex:0 clean:6 msgs:10 bytes:12000 vf:1.50 vs:3.250 lock:0.030"
    );

    let out = f.run("stats", &["--json", "feed1"]);
    let last: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(last["queue"], "all");
    assert_eq!(last["bytes"]["total"], 12000.0);

    let out = f.run("stats", &["--since", "not a date"]);
    assert_eq!(code(&out), 2);

    // After a rotation the passes live on in a compressed archived log.
    let archived = f.spool.root().join("archive/2026-11-21/logs");
    fs::create_dir_all(&archived).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        fs::File::create(archived.join("feed1.log.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut gz, FEED1_LOG.as_bytes()).unwrap();
    gz.finish().unwrap();
    fs::remove_file(f.spool.log_file("feed1")).unwrap();
    let gz_path = archived.join("feed1.log.gz");
    for args in [vec![gz_path.to_str().unwrap()], vec!["--archived"]] {
        let out = f.run("stats", &args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        assert!(
            stdout(&out).starts_with("feed1: 2 passes  vir:1 ext:1 spam:2 "),
            "{args:?}: {}",
            stdout(&out)
        );
    }
    assert_eq!(
        stdout(&f.run("stats", &[])),
        stdout(&f.run("stats", &["--since", "2030-01-01"]))
    );
}

#[test]
fn ptail_once_prints_the_last_lines_of_each_log() {
    let f = fixture();
    fs::write(f.spool.log_file("feed1"), "feed1: a\nfeed1: b\nfeed1: c\n").unwrap();
    fs::write(f.spool.log_file("feed2"), "feed2: x\n").unwrap();
    let out = f.run("ptail", &["--once", "-n", "2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "feed1| feed1: b\nfeed1| feed1: c\nfeed2| feed2: x\n"
    );
    let out = f.run("ptail", &["--once", "-n", "1", "feed2"]);
    assert_eq!(stdout(&out), "feed2| feed2: x\n");
}

#[test]
fn lock_unlock_and_stop_manage_their_files() {
    let f = fixture();
    let out = f.run("lock", &["feed1", "feed2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("feed1 locked (lock by "),
        "{}",
        stdout(&out)
    );
    let text = fs::read_to_string(f.spool.lock_file("feed1")).unwrap();
    assert!(text.starts_with("0 lock by "), "{text}");
    assert!(f.spool.lock_file("feed2").exists() && !f.spool.lock_file("feed3").exists());
    assert_eq!(code(&f.run("lock", &["out"])), 2);

    // A lock held by a live work process (this test) is waited for, then given up on,
    // and the locks taken on the way are released again.
    fs::write(
        f.spool.lock_file("feed5"),
        format!("{} sie-work\n", std::process::id()),
    )
    .unwrap();
    let out = f.run("lock", &["--timeout", "0.3", "all"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(!f.spool.lock_file("feed3").exists() && f.spool.lock_file("feed1").exists());
    let out = f.run("unlock", &["feed5"]);
    assert_eq!(code(&out), 1);
    assert!(f.spool.lock_file("feed5").exists());
    fs::remove_file(f.spool.lock_file("feed5")).unwrap();

    let out = f.run("unlock", &["all"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("feed1 unlocked (was: 0 lock by "),
        "{}",
        stdout(&out)
    );
    assert!((1..=5).all(|k| !f.spool.lock_file(&format!("feed{k}")).exists()));

    let out = f.run("stop", &["all"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for process in ["sie", "feed", "feed1", "feed5", "notify"] {
        assert!(f.spool.stop_file(process).exists(), "{process}");
    }
    let out = f.run("stop", &["--cancel", "all"]);
    assert_eq!(code(&out), 0);
    assert!(!f.spool.stop_file("feed").exists());
    assert_eq!(code(&f.run("stop", &["feed9"])), 2);
}

#[test]
fn stop_wait_gives_up_on_a_live_process_and_ends_for_a_dead_one() {
    let f = fixture();
    fs::write(
        f.spool.pid_file("feed1"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let out = f.run("stop", &["--wait", "--timeout", "0.3", "feed1"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    fs::write(f.spool.pid_file("feed1"), format!("{dead}\n")).unwrap();
    let out = f.run("stop", &["--wait", "--timeout", "5", "feed1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn ctime_and_time_round_trip() {
    let f = fixture();
    let out = f.run("ctime", &["1795303433.25"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let date = stdout(&out).trim().to_string();
    assert!(date.contains(".250"), "{date}");
    let out = f.run("time", &[&date]);
    assert_eq!(stdout(&out), "1795303433.250\n");
    // Unquoted, one word per argument.
    let words: Vec<&str> = date.split_whitespace().collect();
    let out = f.run("time", &words);
    assert_eq!(stdout(&out), "1795303433.250\n");
    let out = f.run("time", &["2026-11-21T23:23:53Z", "2026-11-21T23:23:54.5Z"]);
    assert_eq!(stdout(&out), "1795303433.000\n1795303434.500\n");
    assert_eq!(code(&f.run("time", &["not-a-date"])), 2);
    assert_eq!(code(&f.run("ctime", &["soon"])), 2);
    let now: f64 = stdout(&f.run("time", &[])).trim().parse().unwrap();
    assert!(now > 1.7e9);
}

#[test]
fn every_program_has_help_with_an_example() {
    for program in [
        "qtool", "mailq", "qls", "msgcat", "stats", "ptail", "lock", "unlock", "stop", "ctime",
        "time",
    ] {
        let out = Command::new(program_path(program))
            .arg("--help")
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{program}");
        let text = stdout(&out);
        assert!(text.contains("Example"), "{program}: {text}");
        assert!(text.contains("--spool"), "{program}: {text}");
    }
}

#[test]
fn a_fatal_error_names_the_path_and_its_cause_once() {
    let f = fixture();
    let missing = f.spool.root().join("nowhere");
    let out = f.run("qls", &["--spool", missing.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    let text = stderr(&out);
    assert!(
        text.starts_with("qls: ") && text.contains("nowhere/in"),
        "{text}"
    );
    assert_eq!(
        text.matches("No such file or directory").count(),
        1,
        "{text}"
    );
}
