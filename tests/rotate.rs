//! `rotate` while SIE runs: every message sent ends exactly once in a queue or in an
//! archive, every log line exactly once in a live log or a rotated one, and the
//! period's HTML summary renders (headless chromium) with non-empty charts.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::spool::{TestSpool, terminate, test_id, wait_until};
use sie::report::archive::{self, ARCHIVED_QUEUES};
use sie::report::rotate::summary::{HOURLY_COLOUR, PASS_COLOUR, VERDICT_COLOURS, local_hour};

const EICAR: &str = concat!(
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
    "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
);
const SPAM_TEXT: &str = "You have won! Claim your prize now. Buy cheap viagra without prescription. Act now and send your bank details.\n";
const MULTIPART: [(&str, &str); 2] = [
    ("MIME-Version", "1.0"),
    ("Content-Type", "multipart/mixed; boundary=\"b1\""),
];

fn attachment(name: &str, content: &str) -> Vec<u8> {
    format!(
        "--b1\nContent-Type: text/plain\n\nsee attached\n--b1\nContent-Type: application/octet-stream; name=\"{name}\"\nContent-Disposition: attachment; filename=\"{name}\"\n\n{content}\n--b1--\n"
    )
    .into_bytes()
}

fn rotate(spool: &TestSpool) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_rotate"))
        .arg("--spool")
        .arg(spool.spool.root())
        .arg("--config")
        .arg(&spool.config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let code = output.status.code();
    assert!(
        code == Some(0) || code == Some(1),
        "rotate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn settled(spool: &TestSpool) -> bool {
    (1..=5).all(|k| spool.files(&format!("feed{k}")).is_empty()) && spool.files("in").is_empty()
}

/// Every log line of the spool: live logs, renamed logs not yet archived, archived logs.
fn all_log_lines(spool: &TestSpool) -> Vec<String> {
    let mut text = String::new();
    for item in fs::read_dir(spool.spool.logs_dir()).unwrap() {
        let path = item.unwrap().path();
        if path.is_file() {
            text.push_str(&fs::read_to_string(&path).unwrap());
        }
    }
    for period in archive::periods(&spool.spool).unwrap() {
        for log in &period.logs {
            let mut one = String::new();
            archive::open_log(&period.path, log)
                .unwrap()
                .read_to_string(&mut one)
                .unwrap();
            assert!(one.is_empty() || one.ends_with('\n'), "torn log {log}");
            text.push_str(&one);
        }
    }
    text.lines().map(str::to_string).collect()
}

#[test]
fn rotating_a_busy_pipeline_loses_no_message_and_no_log_line() {
    let spool = TestSpool::new();
    let mut sie = spool.start_sie();
    let mut sent: BTreeMap<String, &str> = BTreeMap::new();
    let mut virus_body = Vec::new();
    let mut rotations = 0;
    let mut busy_rotations = 0;
    for batch in 0..30u32 {
        for k in 0..10u32 {
            let n = batch * 10 + k;
            let id = test_id(n);
            let kind = match n % 10 {
                3 => {
                    virus_body = attachment("eicar.txt", EICAR);
                    spool.queue_message_with("in", &id, &MULTIPART, &virus_body);
                    "virus"
                }
                5 => {
                    let body = attachment("invoice.pdf.exe", "MZ harmless");
                    spool.queue_message_with("in", &id, &MULTIPART, &body);
                    "ext"
                }
                7 => {
                    spool.queue_message("in", &id, "Hello friend", SPAM_TEXT.as_bytes());
                    "spam"
                }
                _ => {
                    let body = format!("clean message {n}\n").repeat(1 + (n as usize % 40));
                    spool.queue_message("in", &id, "hello", body.as_bytes());
                    "out"
                }
            };
            sent.insert(id, kind);
        }
        if batch % 6 == 2 {
            busy_rotations += usize::from(!settled(&spool));
            rotate(&spool);
            rotations += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        wait_until(Duration::from_secs(90), || settled(&spool)),
        "pipeline did not drain: in={:?}",
        spool.files("in")
    );
    assert!(
        busy_rotations >= 3,
        "rotations ran while messages were queued"
    );
    rotate(&spool);
    assert_eq!(terminate(&mut sie, Duration::from_secs(60)), Some(0));

    // Before/after the last rotation, with SIE stopped: the same lines, none live after.
    let before = all_log_lines(&spool);
    let output = rotate(&spool);
    assert_eq!(output.status.code(), Some(0), "nothing is locked any more");
    rotations += 2;
    let after = all_log_lines(&spool);
    let sorted = |lines: &[String]| {
        let mut lines = lines.to_vec();
        lines.sort();
        lines
    };
    assert_eq!(
        sorted(&before),
        sorted(&after),
        "the last rotation moved lines"
    );
    let live: Vec<_> = fs::read_dir(spool.spool.logs_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(live.is_empty(), "logs left behind: {live:?}");

    // Messages: exactly once in a queue or in an archive, quarantined ones archived.
    let periods = archive::periods(&spool.spool).unwrap();
    assert_eq!(periods.len(), rotations, "one period per run");
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for queue in spool.spool.queue_names() {
        for id in spool.ids(&queue) {
            found.entry(id).or_default().push(queue.clone());
        }
    }
    for period in &periods {
        for queue in ARCHIVED_QUEUES {
            for entry in archive::entries(&period.path, queue).unwrap() {
                let text = entry.result.clone().unwrap_or_default();
                assert!(
                    text.contains(&format!("verdict: {queue}")) || queue != "virus",
                    "{}: {text}",
                    entry.id
                );
                found
                    .entry(entry.id.to_string())
                    .or_default()
                    .push(format!("archived {queue}"));
            }
        }
    }
    for (id, kind) in &sent {
        let places = found.remove(id).unwrap_or_default();
        let want = match *kind {
            "out" => "out".to_string(),
            quarantine => format!("archived {quarantine}"),
        };
        assert_eq!(places, [want], "{id}");
    }
    assert!(found.is_empty(), "ids nobody sent: {found:?}");
    for queue in ARCHIVED_QUEUES {
        assert!(spool.files(queue).is_empty(), "{queue} not emptied");
        let results = spool.spool.results_dir(queue);
        let left = fs::read_dir(&results).map(|r| r.count()).unwrap_or(0);
        assert_eq!(left, 0, "result files left in {}", results.display());
    }
    let virus_id = test_id(3);
    let copy = periods
        .iter()
        .find_map(|p| archive::read_entry(&p.path, "virus", &virus_id).unwrap())
        .expect("the first virus is archived");
    assert_eq!(copy.1, virus_body, "archived df is the body queued");
    assert!(copy.0.ends_with(b"\n.\n"));

    // Log lines: each message fed once and moved once; the Stats lines add up.
    let mut feed_lines: BTreeMap<String, usize> = BTreeMap::new();
    let mut moving_lines: BTreeMap<String, usize> = BTreeMap::new();
    let mut stats_msgs = 0;
    for line in &after {
        let (process, text) = line.split_once(": ").expect("every line names its process");
        assert!(!process.is_empty() && !process.contains(' '), "{line}");
        if let Some(stats) = sie::log::StatsLine::from_log_line(line) {
            stats_msgs += stats.msgs;
        } else if let Some((_, id)) = text.split_once(", moving: ") {
            let id = id.split_whitespace().next().unwrap().to_string();
            *moving_lines.entry(id).or_default() += 1;
        } else if process == "feed" && text.contains(" -> q") {
            let id = text.split_whitespace().next().unwrap().to_string();
            *feed_lines.entry(id).or_default() += 1;
        }
    }
    assert_eq!(
        stats_msgs,
        sent.len() as u64,
        "Stats lines count every message once"
    );
    for id in sent.keys() {
        assert_eq!(feed_lines.get(id), Some(&1), "feed line of {id}");
        assert_eq!(moving_lines.get(id), Some(&1), "moving line of {id}");
    }
    let busy_periods = periods
        .iter()
        .filter(|p| {
            fs::read_to_string(spool.spool.stats_dir().join(format!("{}.txt", p.name)))
                .unwrap()
                .lines()
                .any(|l| l.starts_with("feed1: "))
        })
        .count();
    assert!(
        busy_periods >= 2,
        "rotations split the busy run's passes over periods"
    );

    // The summary of the busiest period renders with every chart drawn.
    let busiest = periods
        .iter()
        .max_by_key(|p| p.queues.iter().map(|q| q.entries).sum::<u64>())
        .unwrap();
    let page = spool
        .spool
        .state_dir()
        .join("summary")
        .join(format!("{}.html", busiest.name));
    let html = fs::read_to_string(&page).unwrap();
    let outside = html.replace(r#"xmlns="http://www.w3.org/2000/svg""#, "");
    for external in ["<script", "<link", " src=", "url(", "http:", "https:"] {
        assert!(
            !outside.contains(external),
            "self-contained page has {external}"
        );
    }
    assert!(html.contains("<td>virus</td>"), "archived virus row");
    let index = fs::read_to_string(page.with_file_name("index.html")).unwrap();
    for period in &periods {
        assert!(index.contains(&format!("href=\"{}.html\"", period.name)));
    }
    let png = screenshot(&page, "rotate-busy-summary.png");
    assert_chart_pixels(&png);
}

/// A period with passes over three hours: one bar per hour, one point per pass.
#[test]
fn the_summary_draws_one_bar_per_hour_and_one_point_per_pass() {
    let spool = TestSpool::new();
    let start = chrono::Local::now() - chrono::Duration::hours(3);
    let mut log = String::new();
    let mut passes = 0;
    for minute in (0..150).step_by(10) {
        let when = start + chrono::Duration::minutes(minute);
        let date = sie::timefmt::log_date(when);
        log.push_str(&format!(
            "feed1: {date}: Started pass x.{minute}.\nfeed1: Stats: vir:1 ext:0 spam:1 vir-ex:0 ext-ex:0 spam-ex:0 clean:{minute} msgs:{} bytes:{} vf:0.10 vs:{}.5 lock:0.000\n",
            minute + 2,
            (minute + 2) * 3000,
            minute / 30
        ));
        passes += 1;
    }
    fs::write(spool.spool.log_file("feed1"), &log).unwrap();
    spool.queue_message("virus", &test_id(1), "bad", EICAR.as_bytes());
    spool
        .spool
        .write_result(
            "virus",
            &sie::queue::QueueId::parse(&test_id(1)).unwrap(),
            "verdict: virus\n",
        )
        .unwrap();
    let output = rotate(&spool);
    assert_eq!(output.status.code(), Some(0));
    let period = &archive::periods(&spool.spool).unwrap()[0];
    let page = spool
        .spool
        .state_dir()
        .join("summary")
        .join(format!("{}.html", period.name));
    let html = fs::read_to_string(&page).unwrap();
    let first_hour = local_hour(start.timestamp() as f64).unwrap();
    let last_hour =
        local_hour((start + chrono::Duration::minutes(140)).timestamp() as f64).unwrap();
    let hours = (last_hour - first_hour).num_hours() as usize + 1;
    let section = |class: &str| {
        let at = html.find(&format!("class=\"{class}\"")).unwrap();
        let end = at + html[at..].find("</svg>").unwrap();
        html[at..end].to_string()
    };
    assert_eq!(section("hourly").matches("class=\"bar\"").count(), hours);
    assert_eq!(section("passes").matches("class=\"point\"").count(), passes);
    assert_eq!(
        section("verdicts").matches("class=\"bar\"").count(),
        VERDICT_COLOURS.len()
    );
    let stats =
        fs::read_to_string(spool.spool.stats_dir().join(format!("{}.txt", period.name))).unwrap();
    assert!(stats.contains("archived virus: 1 entries"), "{stats}");
    assert!(
        stats.contains(&format!("feed1: {passes} passes")),
        "{stats}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(
            spool
                .spool
                .stats_dir()
                .join(format!("{}.json", period.name)),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json["archived"][0]["queue"], "virus");
    assert_eq!(json["stats"][0]["passes"], passes);
    let png = screenshot(&page, "rotate-hourly-summary.png");
    assert_chart_pixels(&png);
}

/// Renders `page` with headless chromium at 1200x1600 into `target/tmp/<name>`.
fn screenshot(page: &Path, name: &str) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_file(&out);
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", out.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium is installed (tools/test installs it)");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "chromium did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(out.exists(), "chromium wrote no screenshot");
    out
}

fn rgb(hex: &str) -> [u8; 3] {
    let value = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(value >> 16) as u8, (value >> 8) as u8, value as u8]
}

/// Every chart shows its own colour: the bars of the hourly chart, the points of the
/// scatter plot and the clean bar of the verdict mix.
fn assert_chart_pixels(png_path: &Path) {
    let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1200, 1600));
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let count = |colour: [u8; 3]| {
        pixels
            .chunks(channels)
            .filter(|p| p[..3].iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 2))
            .count()
    };
    let background = count([255, 255, 255]);
    assert!(background > 100_000, "a mostly white page");
    for (what, colour, least) in [
        ("hourly bars", HOURLY_COLOUR, 400),
        ("pass points", PASS_COLOUR, 40),
        ("clean verdict bar", VERDICT_COLOURS[0].1, 200),
    ] {
        let n = count(rgb(colour));
        assert!(
            n >= least,
            "{what}: {n} pixels of {colour} in {}",
            png_path.display()
        );
    }
}
