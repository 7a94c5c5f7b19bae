//! Nothing is lost or duplicated when feed and work processes are killed with SIGKILL at
//! random moments: 2,000 messages flow while the loops are killed at least 20 times (the
//! supervisor restarts them, and each restart recovers split entries), and at the end
//! every message is in exactly one end queue with its body unchanged.

mod common;

use std::collections::HashMap;
use std::fs;
use std::time::{Duration, SystemTime};

use common::spool::{TestSpool, terminate, test_id, wait_until};

const MESSAGES: u32 = 2000;
const MIN_KILLS: usize = 20;
/// Kills made in all: well above the minimum, so some land inside passes and moves.
const KILLS: usize = 40;

/// A small xorshift generator; the seed is printed so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// True when `pid` exists and is not a zombie.
fn running(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

fn kind_of(n: u32) -> &'static str {
    match n % 100 {
        0 => "virus",
        1 => "ext",
        _ => "out",
    }
}

fn body_of(n: u32) -> Vec<u8> {
    let eicar = concat!(
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    );
    let text = match kind_of(n) {
        "virus" => format!("--b\nContent-Type: text/plain\n\n{eicar}\n--b--\n"),
        "ext" => "--b\nContent-Type: application/octet-stream; name=\"run.exe\"\nContent-Disposition: attachment; filename=\"run.exe\"\n\nMZ\n--b--\n".to_string(),
        _ => format!("--b\nContent-Type: text/plain\n\nmessage {n}\n{}\n--b--\n", "line of text\n".repeat((n % 40) as usize)),
    };
    text.into_bytes()
}

#[test]
fn killing_feed_and_work_at_random_loses_and_duplicates_nothing() {
    let spool = TestSpool::with_config(
        "[run]\nfeed_loop_delay = 0.05\nloop_delay = 0.05\nmax_batch = 40\norphan_age = 60\n",
    );
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("kill schedule seed: {seed}");
    let mut rng = Rng(seed);
    let headers = [
        ("MIME-Version", "1.0"),
        ("Content-Type", "multipart/mixed; boundary=\"b\""),
    ];
    let mut expected: HashMap<String, (&str, Vec<u8>)> = HashMap::new();
    let mut queue_wave = |from: u32, to: u32| {
        for n in from..to {
            let body = body_of(n);
            let id = spool.queue_message_with("in", &test_id(n), &headers, &body);
            expected.insert(id.to_string(), (kind_of(n), body));
        }
    };
    queue_wave(0, MESSAGES / 4);
    let mut sie = spool.start_sie();
    let processes: Vec<String> = std::iter::once("feed".to_string())
        .chain((1..=5).map(|k| format!("feed{k}")))
        .collect();
    let mut kills = 0usize;
    let mut wave = 1;
    while kills < KILLS {
        std::thread::sleep(Duration::from_millis(10 + rng.below(140)));
        if wave < 4 && kills % 10 == 9 {
            queue_wave(wave * MESSAGES / 4, (wave + 1) * MESSAGES / 4);
            wave += 1;
        }
        let name = &processes[rng.below(processes.len() as u64) as usize];
        let Some(pid) = sie::lockfile::read_pid_file(&spool.spool.pid_file(name)) else {
            continue;
        };
        // A killed child stays a zombie until the supervisor reaps it; only a running
        // process counts as a kill.
        if !running(pid) {
            continue;
        }
        let pid = nix::unistd::Pid::from_raw(pid);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok() {
            kills += 1;
        }
    }
    while wave < 4 {
        queue_wave(wave * MESSAGES / 4, (wave + 1) * MESSAGES / 4);
        wave += 1;
    }
    let busy = |spool: &TestSpool| {
        std::iter::once("in".to_string())
            .chain((1..=5).map(|k| format!("feed{k}")))
            .map(|q| spool.files(&q).len())
            .sum::<usize>()
    };
    let drained = wait_until(Duration::from_secs(240), || busy(&spool) == 0);
    let stopped = terminate(&mut sie, Duration::from_secs(60));
    if stopped != Some(0) {
        for process in std::iter::once("sie").chain(processes.iter().map(String::as_str)) {
            let log = spool.log(process);
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            println!("--- last lines of {process}.log:");
            tail.iter().rev().for_each(|line| println!("{line}"));
        }
    }
    assert_eq!(
        stopped,
        Some(0),
        "sie did not stop cleanly; its logs are above"
    );
    assert!(drained, "{} files still in in/feed queues", busy(&spool));
    let restarts = spool.log("sie").matches("restarting it").count();
    assert!(
        restarts >= MIN_KILLS,
        "supervisor restarted {restarts} processes after {kills} kills"
    );
    let logs: String = processes.iter().map(|p| spool.log(p)).collect();
    println!(
        "{kills} kills, {restarts} restarts, {} split entries recovered, {} stale queue locks cleared, {} passes",
        logs.matches("Recovered").count(),
        logs.matches("Cleared stale").count(),
        logs.matches("Started pass").count()
    );

    let mut seen: HashMap<String, String> = HashMap::new();
    for queue in sie::queue::FIXED_QUEUES
        .iter()
        .copied()
        .chain(["feed1", "feed2", "feed3", "feed4", "feed5"])
    {
        let files = spool.files(queue);
        for name in &files {
            let (kind, id) = name.split_at(2);
            assert!(kind == "qf" || kind == "df", "stray file {queue}/{name}");
            let partner = format!("{}{id}", if kind == "qf" { "df" } else { "qf" });
            assert!(
                files.contains(&partner),
                "{queue}/{name} has no {partner} beside it"
            );
            if kind == "qf" {
                if let Some(first) = seen.insert(id.to_string(), queue.to_string()) {
                    panic!("{id} is in both {first} and {queue}");
                }
                let body = fs::read(spool.queue(queue).join(format!("df{id}"))).unwrap();
                let (want_queue, want_body) = &expected[id];
                assert_eq!(
                    &queue,
                    want_queue,
                    "{id} ended in {queue}: {}",
                    spool.result(queue, id).unwrap_or_default()
                );
                assert!(&body == want_body, "{id}: body changed");
            }
        }
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "every message is somewhere exactly once"
    );
}
