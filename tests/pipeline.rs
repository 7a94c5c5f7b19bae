//! The pipeline on a spool of sendmail-shaped entries: every message ends in exactly one
//! queue with a reason, entries the MTA holds are not touched, and the loops obey stop
//! files, signals and settings reloads.

mod common;

use std::fs::{self, File};
use std::time::Duration;

use common::spool::{TestSpool, set_file_age, terminate, test_id, wait_until};

const EICAR_HEAD: &str = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$";
const EICAR_TAIL: &str = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

const MULTIPART: [(&str, &str); 2] = [
    ("MIME-Version", "1.0"),
    ("Content-Type", "multipart/mixed; boundary=\"b1\""),
];

fn attachment_body(name: &str, content: &[u8]) -> Vec<u8> {
    let body = format!(
        "--b1\nContent-Type: text/plain\n\nsee attached\n--b1\nContent-Type: application/octet-stream; name=\"{name}\"\nContent-Disposition: attachment; filename=\"{name}\"\nContent-Transfer-Encoding: base64\n\n{}\n--b1--\n",
        base64(content)
    );
    body.into_bytes()
}

fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn settled(spool: &TestSpool) -> bool {
    let mut busy = spool.files("in").len();
    for k in 1..=5 {
        busy += spool.files(&format!("feed{k}")).len();
    }
    busy == 0
}

#[test]
fn every_message_reaches_its_queue_with_a_reason() {
    let spool = TestSpool::new();
    let clean: Vec<_> = (0..3)
        .map(|n| {
            spool.queue_message(
                "in",
                &test_id(n),
                "hello",
                format!("clean body {n}\n").as_bytes(),
            )
        })
        .collect();
    let eicar = format!("{EICAR_HEAD}{EICAR_TAIL}");
    let body = attachment_body("eicar.txt", eicar.as_bytes());
    let virus = spool.queue_message_with("in", &test_id(10), &MULTIPART, &body);
    let body = attachment_body("invoice.pdf.exe", b"MZ harmless");
    let ext = spool.queue_message_with("in", &test_id(11), &MULTIPART, &body);
    let empty_body = spool.queue_message("in", &test_id(12), "empty", b"");

    // Broken entries, each aged past orphan_age so it counts as broken, not in progress.
    let inq = spool.queue("in");
    let truncated = test_id(20);
    fs::write(inq.join(format!("df{truncated}")), b"body\n").unwrap();
    fs::write(
        inq.join(format!("qf{truncated}")),
        b"V8\nT1795303433\nS<a@b.test>\nRPFD:<c@d.test>\nH??Subj",
    )
    .unwrap();
    set_file_age(&inq.join(format!("qf{truncated}")), 60);
    let no_df = spool.queue_message("in", &test_id(21), "no df", b"x\n");
    fs::remove_file(inq.join(format!("df{no_df}"))).unwrap();
    let orphan = test_id(22);
    fs::write(inq.join(format!("df{orphan}")), b"orphan body\n").unwrap();
    let garbage = test_id(23);
    fs::write(inq.join(format!("df{garbage}")), b"body\n").unwrap();
    fs::write(
        inq.join(format!("qf{garbage}")),
        b"\x00\xff\x13garbage\x80\n\x01\n.\n",
    )
    .unwrap();
    let garbage_unterminated = test_id(24);
    fs::write(inq.join(format!("df{garbage_unterminated}")), b"body\n").unwrap();
    fs::write(
        inq.join(format!("qf{garbage_unterminated}")),
        [0x9c_u8; 300],
    )
    .unwrap();
    set_file_age(&inq.join(format!("qf{garbage_unterminated}")), 60);
    // A broken entry already in a feed queue is judged by work, not feed.
    let feed_no_df = spool.queue_message("feed2", &test_id(25), "no df", b"x\n");
    fs::remove_file(spool.queue("feed2").join(format!("df{feed_no_df}"))).unwrap();
    std::thread::sleep(Duration::from_millis(1100));

    let mut sie = spool.start_sie();
    let done = wait_until(Duration::from_secs(60), || settled(&spool));
    let status = terminate(&mut sie, Duration::from_secs(30));
    assert!(
        done,
        "in/feed queues not drained: in={:?}",
        spool.files("in")
    );
    assert_eq!(status, Some(0), "sie exits 0 after SIGTERM");

    let mut expected_out: Vec<String> = clean.iter().map(|id| id.to_string()).collect();
    expected_out.push(empty_body.to_string());
    expected_out.sort();
    assert_eq!(
        spool.ids("out"),
        expected_out,
        "clean messages, the empty body included"
    );
    for id in &expected_out {
        assert!(
            spool.files("out").contains(&format!("df{id}")),
            "df{id} travelled with its qf"
        );
    }
    assert_eq!(spool.ids("virus"), [virus.to_string()]);
    let why = spool.result("virus", virus.as_str()).unwrap();
    assert!(
        why.contains("verdict: virus") && why.to_lowercase().contains("eicar"),
        "{why}"
    );
    assert_eq!(spool.ids("ext"), [ext.to_string()]);
    let why = spool.result("ext", ext.as_str()).unwrap();
    assert!(why.contains("invoice.pdf.exe"), "{why}");

    let mut broken = vec![
        truncated.clone(),
        no_df.to_string(),
        garbage.clone(),
        garbage_unterminated.clone(),
        feed_no_df.to_string(),
    ];
    broken.sort();
    assert_eq!(spool.ids("error"), broken);
    assert!(
        spool.files("error").contains(&format!("df{orphan}")),
        "the orphan df is kept in error"
    );
    for (id, word) in [
        (&truncated, "truncated"),
        (&no_df.to_string(), "missing"),
        (&garbage, "control file"),
        (&garbage_unterminated, "truncated"),
        (&feed_no_df.to_string(), "missing"),
        (&orphan, "no qf"),
    ] {
        let why = spool
            .result("error", id)
            .unwrap_or_else(|| panic!("no result file for {id}"));
        assert!(why.contains(word), "{id}: {why}");
    }

    let feed_log = spool.log("feed");
    assert!(
        feed_log.contains(&format!("{} ", clean[0])) && feed_log.contains(" -> q"),
        "{feed_log}"
    );
    let work_logs: String = (1..=5).map(|k| spool.log(&format!("feed{k}"))).collect();
    assert!(work_logs.contains(": Stats: vir:"), "{work_logs}");
    assert!(work_logs.contains(&format!("Clean, moving: {}", clean[0])));
    let sleeps: Vec<f64> = work_logs
        .lines()
        .filter_map(|line| line.split(": Sleeping: ").nth(1))
        .map(|secs| secs.trim().parse().unwrap())
        .collect();
    assert!(
        !sleeps.is_empty() && sleeps.iter().all(|&secs| (0.0..=0.1).contains(&secs)),
        "a pass sleeps the rest of the 0.1 s cadence: {sleeps:?}"
    );
    assert!(spool.spool.free_file("feed1").exists());
    for process in ["sie", "feed", "feed1", "feed5"] {
        assert!(
            !spool.spool.pid_file(process).exists(),
            "{process} pid file removed at exit"
        );
        assert!(
            !spool.spool.stop_file(process).exists(),
            "{process} stop file consumed"
        );
    }
}

#[test]
fn an_entry_locked_by_the_mta_is_left_alone_until_released() {
    let spool = TestSpool::new();
    let held_in = spool.queue_message("in", &test_id(1), "held in", b"held in in\n");
    let held_feed = spool.queue_message("feed1", &test_id(2), "held", b"held in feed1\n");
    let free = spool.queue_message("in", &test_id(3), "free", b"free\n");
    let lock_in = File::options()
        .read(true)
        .write(true)
        .open(spool.queue("in").join(held_in.qf_name()))
        .unwrap();
    lock_in.lock().unwrap();
    let lock_feed = File::options()
        .read(true)
        .write(true)
        .open(spool.queue("feed1").join(held_feed.qf_name()))
        .unwrap();
    lock_feed.lock().unwrap();

    let mut sie = spool.start_sie();
    assert!(wait_until(Duration::from_secs(30), || spool.ids("out")
        == [free.to_string()]));
    // Ten more feed and work passes at 0.1 s: the held entries must not move.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        spool.files("in"),
        [format!("df{held_in}"), format!("qf{held_in}")]
    );
    assert_eq!(
        spool.files("feed1"),
        [format!("df{held_feed}"), format!("qf{held_feed}")]
    );

    drop(lock_in);
    drop(lock_feed);
    let mut all = vec![held_in.to_string(), held_feed.to_string(), free.to_string()];
    all.sort();
    assert!(
        wait_until(Duration::from_secs(30), || spool.ids("out") == all),
        "out: {:?}",
        spool.ids("out")
    );
    assert_eq!(terminate(&mut sie, Duration::from_secs(30)), Some(0));
}

#[test]
fn a_work_loop_stops_on_its_stop_file_and_keeps_good_settings_on_a_bad_reload() {
    let spool = TestSpool::new();
    let mut work = spool.start_work("feed1");
    assert!(wait_until(Duration::from_secs(10), || spool
        .spool
        .pid_file("feed1")
        .exists()));
    fs::write(&spool.config, "[run]\nloop_delay = 0.1\nnq = \"four\"\n").unwrap();
    let reported = wait_until(Duration::from_secs(10), || {
        spool
            .log("feed1")
            .contains("Keeping the last good run settings")
    });
    let id = spool.queue_message("feed1", &test_id(7), "after reload", b"still working\n");
    assert!(reported, "log: {}", spool.log("feed1"));
    assert!(
        spool.log("feed1").contains("sie.toml:3:"),
        "{}",
        spool.log("feed1")
    );
    assert!(wait_until(Duration::from_secs(10), || spool.ids("out")
        == [id.to_string()]));

    fs::write(spool.spool.stop_file("feed1"), "stop\n").unwrap();
    let exited = wait_until(Duration::from_secs(10), || {
        work.try_wait().unwrap().is_some()
    });
    assert!(exited, "sie-work exits after its stop file appears");
    assert_eq!(work.wait().unwrap().code(), Some(0));
    assert!(!spool.spool.stop_file("feed1").exists());
}

#[test]
fn an_admin_lock_holds_the_work_loop_until_unlocked() {
    let spool = TestSpool::new();
    fs::write(spool.spool.lock_file("feed1"), "0 admin test\n").unwrap();
    let id = spool.queue_message("feed1", &test_id(8), "locked queue", b"wait\n");
    let mut work = spool.start_work("feed1");
    assert!(wait_until(Duration::from_secs(10), || spool
        .log("feed1")
        .contains("Waiting for lock.feed1")));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        spool.ids("feed1"),
        [id.to_string()],
        "nothing is scanned while an admin holds the lock"
    );
    fs::remove_file(spool.spool.lock_file("feed1")).unwrap();
    assert!(wait_until(Duration::from_secs(10), || spool.ids("out")
        == [id.to_string()]));
    // The Stats line follows the moves.
    assert!(wait_until(Duration::from_secs(10), || spool
        .log("feed1")
        .contains("Stats:")));
    let log = spool.log("feed1");
    let stats = log.lines().find(|l| l.contains("Stats:")).unwrap();
    let lock: f64 = stats.split("lock:").nth(1).unwrap().trim().parse().unwrap();
    assert!(
        lock >= 0.5,
        "the Stats line counts the wait for the lock: {stats}"
    );
    assert_eq!(terminate(&mut work, Duration::from_secs(10)), Some(0));
}

#[test]
fn real_sendmail_entries_pass_through_byte_for_byte() {
    let spool = TestSpool::new();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real");
    let manifest = fs::read_to_string(fixtures.join("MANIFEST")).unwrap();
    let ids: Vec<&str> = manifest
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    for id in &ids {
        for kind in ["df", "qf"] {
            fs::copy(
                fixtures.join(format!("{kind}{id}")),
                spool.queue("in").join(format!("{kind}{id}")),
            )
            .unwrap();
        }
    }
    let mut sie = spool.start_sie();
    let mut want: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    want.sort();
    let arrived = wait_until(Duration::from_secs(30), || spool.ids("out") == want);
    assert_eq!(terminate(&mut sie, Duration::from_secs(30)), Some(0));
    assert!(arrived, "out: {:?}", spool.ids("out"));
    for id in &ids {
        for kind in ["df", "qf"] {
            let name = format!("{kind}{id}");
            assert_eq!(
                fs::read(spool.queue("out").join(&name)).unwrap(),
                fs::read(fixtures.join(&name)).unwrap(),
                "{name} is unchanged by the trip through SIE"
            );
        }
    }
}

#[test]
fn unscannable_messages_go_to_the_configured_queue() {
    let spool = TestSpool::with_config(&format!(
        "{}unscannable_queue = \"virus\"\n[run.limits]\nmax_depth = 2\n",
        common::spool::FAST_RUN
    ));
    let mut body = String::new();
    for level in 0..5 {
        body.push_str(&format!(
            "--b{level}\nContent-Type: multipart/mixed; boundary=\"b{}\"\n\n",
            level + 1
        ));
    }
    body.push_str("--b5\nContent-Type: text/plain\n\ndeep\n");
    let headers = [
        ("MIME-Version", "1.0"),
        ("Content-Type", "multipart/mixed; boundary=\"b0\""),
    ];
    let id = spool.queue_message_with("feed1", &test_id(30), &headers, body.as_bytes());
    let mut sie = spool.start_sie();
    let arrived = wait_until(Duration::from_secs(30), || {
        spool.ids("virus") == [id.to_string()]
    });
    assert_eq!(terminate(&mut sie, Duration::from_secs(30)), Some(0));
    assert!(
        arrived,
        "virus: {:?} error: {:?}",
        spool.ids("virus"),
        spool.ids("error")
    );
    let why = spool.result("virus", id.as_str()).unwrap();
    assert!(
        why.contains("verdict: unscannable") && why.contains("max_depth"),
        "{why}"
    );
}

#[test]
fn sie_stops_a_loop_it_restarted_just_before_the_stop() {
    let spool = TestSpool::new();
    let mut sie = spool.start_sie();
    let pid_file = spool.spool.pid_file("feed1");
    assert!(wait_until(Duration::from_secs(30), || spool
        .log("feed1")
        .contains("Starting, pid")));
    let pid = sie::lockfile::read_pid_file(&pid_file).expect("feed1 wrote its pid file");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The supervisor logs the death, waits half a second and starts feed1 again; the stop
    // arrives in that half second, so the new feed1 starts with its stop already asked
    // for, and must still stop.
    assert!(wait_until(Duration::from_secs(10), || spool
        .log("sie")
        .contains("feed1 exited")));
    let status = terminate(&mut sie, Duration::from_secs(20));
    assert_eq!(status, Some(0), "sie log:\n{}", spool.log("sie"));
    assert!(
        spool.log("sie").matches("Started feed1").count() == 2,
        "feed1 was restarted once: {}",
        spool.log("sie")
    );
    let log = spool.log("sie");
    assert!(!log.contains("killing it"), "{log}");
    // The new feed1 either finished its start and logged its stop, or SIGTERM ended it
    // before it had started anything; no loop outlives the supervisor either way.
    for line in log.lines().filter(|l| l.contains("Started ")) {
        let pid: i32 = line
            .rsplit(' ')
            .next()
            .unwrap()
            .trim_end_matches('.')
            .parse()
            .unwrap();
        assert!(
            !sie::lockfile::process_alive(pid),
            "still running after sie: {line}"
        );
    }
    for process in ["feed", "feed2", "feed3", "feed4", "feed5"] {
        let log = spool.log(process);
        assert!(
            log.trim_end().ends_with("Stopped."),
            "{process} log:\n{log}"
        );
    }
}

#[test]
fn sie_recovers_the_spool_once_before_its_loops_start_without_huge_pages() {
    let spool = TestSpool::new();
    // A crash between the df and the qf rename of a move from feed2 to out.
    let id = spool.queue_message("feed2", &test_id(40), "split", b"split body\n");
    let df = fs::read(spool.queue("feed2").join(id.df_name())).unwrap();
    fs::rename(
        spool.queue("feed2").join(id.df_name()),
        spool.queue("out").join(id.df_name()),
    )
    .unwrap();
    let mut sie = spool.start_sie();
    assert!(wait_until(Duration::from_secs(30), || spool
        .ids("out")
        .contains(&id.to_string())));
    assert!(wait_until(Duration::from_secs(10), || [
        "feed", "feed1", "feed2"
    ]
    .iter()
    .all(|p| spool.log(p).contains("Starting, pid"))));
    // Loops run without transparent huge pages (see `cli::use_small_pages`).
    let pid = sie::lockfile::read_pid_file(&spool.spool.pid_file("feed1")).unwrap();
    let status_file = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status_file.contains("THP_enabled:\t0"), "{status_file}");
    let status = terminate(&mut sie, Duration::from_secs(20));
    assert_eq!(status, Some(0), "sie log:\n{}", spool.log("sie"));
    let reunited = format!("Recovered {id}: df from ");
    assert_eq!(
        spool.log("sie").matches(&reunited).count(),
        1,
        "{}",
        spool.log("sie")
    );
    for process in ["feed", "feed1", "feed2", "feed3", "feed4", "feed5"] {
        let log = spool.log(process);
        assert!(!log.contains("Recovered"), "{process} log:\n{log}");
    }
    assert_eq!(fs::read(spool.queue("out").join(id.df_name())).unwrap(), df);
}

#[test]
fn the_feed_takes_messages_queued_while_it_lists_in() {
    // sendmail writes the df, then the qf, so a directory read running meanwhile can
    // see the df alone (which is not an orphan yet, however short `orphan_age` is: 1 s
    // here) or the qf alone (it passed the df's place before the df was written).
    const MESSAGES: u32 = 3000;
    let spool = TestSpool::new();
    let config = sie::config::Config::load(Some(&spool.config)).unwrap();
    let mut log = sie::log::ProcessLog::new("feed", spool.spool.log_file("feed"), false);
    let mut listings = sie::queue::ListingCache::default();
    let mut pass = || {
        sie::feed::feed_pass(&spool.spool, &config.run, &mut log, &mut listings).unwrap();
    };
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for n in 0..MESSAGES {
                spool.queue_message("in", &test_id(5000 + n), "queued meanwhile", b"body\n");
            }
        });
        while !writer.is_finished() {
            pass();
        }
    });
    pass();
    let errors = spool.ids("error");
    assert!(
        errors.is_empty(),
        "{} sent to error, the first: {}feed log:\n{}",
        errors.len(),
        spool.result("error", &errors[0]).unwrap_or_default(),
        spool
            .log("feed")
            .lines()
            .filter(|l| l.contains(&errors[0]))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let fed: usize = (1..=5).map(|k| spool.ids(&format!("feed{k}")).len()).sum();
    assert_eq!(fed, MESSAGES as usize);
}
