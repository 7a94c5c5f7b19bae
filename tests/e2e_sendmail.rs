//! End-to-end tests with real sendmail (Debian `sendmail-bin` 8.17) on loopback.
//!
//! ```text
//! swaks ──SMTP──> sendmail A (-bD, queueonly) ──> <spool>/in
//!                 sie (feed + 5 work loops)   ──> <spool>/out | virus | ext | …
//!                 sendmail B (-q1s on out)    ──SMTP──> test sink (Rust, in-process)
//! ```
//!
//! Requirements (the tests FAIL, not skip, without them): root, packages
//! `sendmail-bin` and `swaks`, and permission to create UTS + mount namespaces
//! (`unshare`). Every sendmail runs inside its own namespace with private
//! hosts/nsswitch/resolv files (see `SENDMAIL.md` §2 and `tests/common/sendmail.rs`).
//!
//! Run: `cargo test --test e2e_sendmail -- --nocapture`

mod common;

use common::sendmail::{
    Mta, base64_lines, compose, descendants, df_ids, entry_files, free_port, move_entry,
    process_alive, qf_ids, require_tools, send, send_data, sigterm, wait_gone_or_kill,
};
use common::sink::{Sink, SinkMessage};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The EICAR test file, assembled at run time so this source file does not
/// itself contain the signature.
fn eicar() -> Vec<u8> {
    let parts = [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-",
        "TEST-FILE!$H+H*",
    ];
    parts.concat().into_bytes()
}

/// The body part of a composed message (after the first empty line).
fn body_of(data: &[u8]) -> &[u8] {
    match data.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &data[i + 4..],
        None => &[],
    }
}

/// A deterministic, harmless "PDF" for attachments (content is irrelevant to the scan).
fn fake_pdf(tag: &str) -> Vec<u8> {
    format!(
        "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
         2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n\
         % {tag}\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )
    .into_bytes()
}

/// A body of at least `min` bytes, made of short, plain lines.
fn long_body(marker: &str, min: usize) -> String {
    let mut b = format!("Hello,\n\nthis is the long test message {marker}.\n\n");
    let mut n = 0;
    while b.len() < min {
        n += 1;
        b.push_str(&format!(
            "Line {n:04} of {marker}: the quick brown fox jumps over the lazy dog.\n"
        ));
    }
    b.push_str("\nRegards,\nthe test suite\n");
    b
}

/// Kills (SIGKILL) and reaps a child on drop unless it was already waited for.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// SIGTERM to the child only (it must stop its own children), then waits up
    /// to `timeout`. Returns the exit status (None if it had to be killed) and
    /// the descendants that were still alive 10 s after it exited (then killed).
    fn terminate(&mut self, timeout: Duration) -> (Option<ExitStatus>, Vec<u32>) {
        let Some(mut child) = self.0.take() else {
            return (None, Vec::new());
        };
        let before = descendants(child.id());
        sigterm(child.id());
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let grace = Instant::now() + Duration::from_secs(10);
        while before.iter().any(|&p| process_alive(p)) && Instant::now() < grace {
            thread::sleep(Duration::from_millis(50));
        }
        let left: Vec<u32> = before.into_iter().filter(|&p| process_alive(p)).collect();
        wait_gone_or_kill(&left, Duration::ZERO);
        (status, left)
    }
    fn exited(&mut self) -> Option<ExitStatus> {
        self.0.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for ChildGuard {
    /// Failure path: kill the child and everything it started.
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let kids = descendants(child.id());
            let _ = child.kill();
            let _ = child.wait();
            for &k in &kids {
                sigterm(k);
            }
            wait_gone_or_kill(&kids, Duration::from_secs(5));
        }
    }
}

fn tail(path: &Path, max: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Sanity: sendmail A queued exactly these ids (qf and df) in `dir`.
fn assert_queued(dir: &Path, ids: &[String]) {
    let qf: BTreeSet<String> = qf_ids(dir).into_iter().collect();
    let df: BTreeSet<String> = df_ids(dir).into_iter().collect();
    let want: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(qf, want, "qf files in {}", dir.display());
    assert_eq!(df, want, "df files in {}", dir.display());
}

/// Checks one relayed message against what was sent.
fn check_relayed(got: &SinkMessage, id: &str, from: &str, to: &[&str], subject: &str, sent: &[u8]) {
    assert_eq!(
        got.received_ids(),
        vec![id.to_string()],
        "exactly one Received (A's) naming {id}"
    );
    let received = got.header("Received").unwrap();
    assert!(
        received.contains("by mta.pipeline.test") && received.contains("[127.0.0.1]"),
        "{id}: unexpected Received: {received}"
    );
    assert_eq!(got.from, from, "{id}: envelope sender");
    let mut want_rcpts: Vec<String> = to.iter().map(|s| s.to_string()).collect();
    let mut got_rcpts = got.rcpts.clone();
    want_rcpts.sort();
    got_rcpts.sort();
    assert_eq!(got_rcpts, want_rcpts, "{id}: envelope recipients");
    assert_eq!(
        got.header("Subject").as_deref(),
        Some(subject),
        "{id}: Subject"
    );
    assert!(got.header("Date").is_some(), "{id}: A adds Date");
    assert!(
        got.header("Message-Id").is_some(),
        "{id}: A adds Message-Id"
    );
    assert!(
        got.header("Return-Path").is_none(),
        "{id}: Return-Path must not be relayed"
    );
    let want_body = body_of(sent);
    if got.body() != want_body {
        panic!(
            "{id}: body changed in transit\n--- sent ({} bytes) ---\n{}\n--- got ({} bytes) ---\n{}",
            want_body.len(),
            String::from_utf8_lossy(want_body),
            got.body().len(),
            String::from_utf8_lossy(got.body())
        );
    }
}

/// Harness self-test: A queues, a hand move (df then qf) puts the entries in
/// `out`, B delivers them to the sink — once with a synchronous `-qf` run and
/// once with the persistent `-q1s` runner. No SIE involved.
#[test]
fn sendmail_round_trip_without_sie() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let q_in = tmp.path().join("queues/in");
    let q_out = tmp.path().join("queues/out");
    fs::create_dir_all(&q_in).unwrap();
    fs::create_dir_all(&q_out).unwrap();

    let sink = Sink::start();
    let mta = Mta::prepare(&tmp.path().join("mta"), free_port(), sink.port()).unwrap();
    let mut a = mta.start_a(&q_in).expect("start sendmail A");

    struct Sent<'a> {
        id: String,
        from: &'a str,
        to: Vec<&'a str>,
        subject: String,
        data: Vec<u8>,
    }
    let pdf = fake_pdf("round trip");
    // (envelope sender, recipients, subject, body, attachment)
    type Case<'a> = (
        &'a str,
        Vec<&'a str>,
        String,
        String,
        Option<(&'a str, &'a [u8])>,
    );
    let cases: Vec<Case> = vec![
        (
            "alice@client.test",
            vec!["bob@dest.test"],
            "round trip plain".into(),
            "Hi Bob,\nplain message, round trip 1.\n".into(),
            None,
        ),
        (
            "alice@client.test",
            vec!["carol@dest.test"],
            "round trip attachment".into(),
            "See the attached document.\n".into(),
            Some(("report.pdf", &pdf[..])),
        ),
        (
            "alice@client.test",
            vec!["dave@dest.test"],
            "round trip big".into(),
            long_body("round-trip-big", 6000),
            None,
        ),
        (
            // null sender, two recipients, lines that need dot-stuffing, a literal \n and %TOKEN%
            "",
            vec!["erin@dest.test", "frank@other.test"],
            "round trip dots".into(),
            ".leading dot\n..two dots\n.\nliteral \\n and %DATE% stay as they are\nend\n".into(),
            None,
        ),
    ];
    let mut sent = Vec::new();
    for (from, to, subject, body, att) in cases {
        let to_list = to.join(",");
        let data = compose(from, &to_list, &subject, &body, att);
        let id = send_data(mta.in_port(), from, &to_list, &data).expect("swaks send");
        assert!(id.len() >= 14, "queue id {id:?} too short");
        sent.push(Sent {
            id,
            from,
            to,
            subject,
            data,
        });
    }
    let ids: Vec<String> = sent.iter().map(|s| s.id.clone()).collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "distinct ids"
    );
    // The qf is complete and unlocked when swaks reads the 250 (SENDMAIL.md §6.5).
    assert_queued(&q_in, &ids);
    for id in &ids {
        let qf = fs::read(q_in.join(format!("qf{id}"))).unwrap();
        assert!(
            qf.starts_with(b"V8\n") && qf.ends_with(b"\n.\n"),
            "qf{id} shape"
        );
    }
    let mailq = mta.mailq(&q_in).unwrap();
    for id in &ids {
        assert!(
            mailq.stdout.contains(id.as_str()),
            "mailq lists {id}:\n{}",
            mailq.stdout
        );
    }

    // A is queue-only: nothing may reach the sink on its own.
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(sink.count(), 0, "sendmail A delivered by itself");
    assert_eq!(sink.connections(), 0, "sendmail A connected to the sink");

    // Hand move of the first three, then one synchronous B run.
    for s in &sent[..3] {
        move_entry(&q_in, &q_out, &s.id).unwrap();
    }
    let run = mta.run_b_once(&q_out, &["-v"]).unwrap();
    assert!(
        run.success(),
        "B -qf failed: {}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(
        sink.count(),
        3,
        "B -qf delivered synchronously:\n{}",
        run.stdout
    );
    assert!(
        entry_files(&q_out).is_empty(),
        "out is empty after B: {:?}",
        entry_files(&q_out)
    );

    // The persistent runner picks up the fourth within about a second.
    let mut b = mta.start_b(&q_out).expect("start sendmail B -q1s");
    assert!(b.pid() > 0);
    move_entry(&q_in, &q_out, &sent[3].id).unwrap();
    assert!(
        sink.wait_for(4, Duration::from_secs(30)),
        "B -q1s did not deliver; out: {:?}",
        entry_files(&q_out)
    );
    b.stop();
    assert!(
        entry_files(&q_in).is_empty(),
        "in is empty: {:?}",
        entry_files(&q_in)
    );

    let got = sink.messages();
    assert_eq!(got.len(), 4);
    for s in &sent {
        let m = got
            .iter()
            .find(|m| m.received_ids().contains(&s.id))
            .unwrap_or_else(|| panic!("{} not at the sink", s.id));
        check_relayed(m, &s.id, s.from, &s.to, &s.subject, &s.data);
    }
    a.stop();
}

/// The full pipeline: swaks → A → sie → B → sink, 50 messages.
#[test]
fn sie_end_to_end_with_real_sendmail() {
    require_tools();
    let (Some(sie_bin), qls_bin) = (
        option_env!("CARGO_BIN_EXE_sie"),
        option_env!("CARGO_BIN_EXE_qls"),
    ) else {
        panic!("the `sie` binary is not part of this build (CARGO_BIN_EXE_sie unset)");
    };
    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("spool");
    let q_in = spool.join("in");
    let q_out = spool.join("out");
    // sendmail does not create its queue directory; sie creates the rest of the tree.
    fs::create_dir_all(&q_in).unwrap();
    fs::create_dir_all(&q_out).unwrap();
    let config = tmp.path().join("sie.toml");
    fs::write(&config, "[run]\nfeed_loop_delay = 0.2\nloop_delay = 0.2\n").unwrap();

    let sink = Sink::start();
    let mta = Mta::prepare(&tmp.path().join("mta"), free_port(), sink.port()).unwrap();
    let mut a = mta.start_a(&q_in).expect("start sendmail A");

    // ---- the 50 messages
    const TOTAL: usize = 50;
    const EICAR_AT: usize = 7; // sent before sie runs (backlog)
    const EXE_AT: usize = 31; // sent while sie runs
    struct Msg {
        from: String,
        to: Vec<String>,
        subject: String,
        data: Vec<u8>,
        id: String,
    }
    let eicar = eicar();
    let mut msgs: Vec<Msg> = Vec::new();
    let make = |i: usize| -> Msg {
        let marker = format!(
            "SIE-E2E-{i:03}-{:08x}",
            0x9e37_79b9u32.wrapping_mul(i as u32 + 1)
        );
        let from = format!("sender{i}@client.test");
        let mut to = vec![format!("rcpt{i}@dest.test")];
        if i.is_multiple_of(12) {
            to.push(format!("copy{i}@other.test"));
        }
        let subject = format!("e2e message {i}");
        let plain = format!("Hello,\n\nthis is message {marker}.\n\nBest regards,\nsender {i}\n");
        let (body, att_name, att): (String, Option<String>, Option<Vec<u8>>) = match i {
            EICAR_AT => (plain, Some("eicar.txt".into()), Some(eicar.clone())),
            EXE_AT => (
                plain,
                Some("invoice.pdf.exe".into()),
                Some(fake_pdf(&marker)),
            ),
            _ if i % 10 == 9 => (long_body(&marker, 5000 + 97 * i), None, None),
            _ if i % 5 == 1 => (
                plain,
                Some(format!("document-{i}.pdf")),
                Some(fake_pdf(&marker)),
            ),
            _ if i % 5 == 3 => (
                plain,
                Some(format!("notes-{i}.txt")),
                Some(format!("notes for {marker}\nnothing to see here\n").into_bytes()),
            ),
            _ => (plain, None, None),
        };
        let attachment = att_name.as_deref().zip(att.as_deref());
        let data = compose(&from, &to.join(","), &subject, &body, attachment);
        Msg {
            from,
            to,
            subject,
            data,
            id: String::new(),
        }
    };
    let send_one = |m: &mut Msg| {
        m.id = send_data(mta.in_port(), &m.from, &m.to.join(","), &m.data)
            .unwrap_or_else(|e| panic!("swaks: {e}"));
    };

    // ---- phase 1: a backlog queued by A before sie starts; A must not deliver it
    for i in 0..TOTAL / 2 {
        let mut m = make(i);
        send_one(&mut m);
        msgs.push(m);
    }
    let backlog: Vec<String> = msgs.iter().map(|m| m.id.clone()).collect();
    assert_queued(&q_in, &backlog);
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(sink.count(), 0, "sendmail A delivered by itself");
    assert_eq!(sink.connections(), 0, "sendmail A connected to the sink");

    // ---- start sie and B
    let sie_out = tmp.path().join("sie.stdout");
    let sie_err = tmp.path().join("sie.stderr");
    let mut sie = ChildGuard(Some(
        Command::new(sie_bin)
            .arg("--spool")
            .arg(&spool)
            .arg("--config")
            .arg(&config)
            .env("SIE_SPOOL", &spool)
            .env("SIE_CONFIG", &config)
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&sie_out).unwrap())
            .stderr(fs::File::create(&sie_err).unwrap())
            .spawn()
            .expect("spawn sie"),
    ));
    let mut b = mta.start_b(&q_out).expect("start sendmail B -q1s");

    // ---- phase 2: the rest while everything runs
    for i in TOTAL / 2..TOTAL {
        let mut m = make(i);
        send_one(&mut m);
        msgs.push(m);
    }
    let all_ids: BTreeSet<String> = msgs.iter().map(|m| m.id.clone()).collect();
    assert_eq!(
        all_ids.len(),
        TOTAL,
        "swaks returned {TOTAL} distinct queue ids"
    );
    let eicar_id = msgs[EICAR_AT].id.clone();
    let exe_id = msgs[EXE_AT].id.clone();
    let clean: Vec<&Msg> = msgs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != EICAR_AT && *i != EXE_AT)
        .map(|(_, m)| m)
        .collect();

    // ---- wait until everything settled
    let transit: Vec<PathBuf> = ["in", "feed1", "feed2", "feed3", "feed4", "feed5", "out"]
        .iter()
        .map(|q| spool.join(q))
        .collect();
    let diagnostics = |why: &str| -> String {
        let mut s = format!("{why}\nsink: {} messages\n", sink.count());
        if let Ok(rd) = fs::read_dir(&spool) {
            let mut dirs: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            dirs.sort();
            for d in dirs {
                if d.is_dir() && d.file_name().is_some_and(|n| n != "sie") {
                    s.push_str(&format!("{}: {:?}\n", d.display(), entry_files(&d)));
                }
            }
        }
        s.push_str(&format!("--- sie stderr ---\n{}\n", tail(&sie_err, 4000)));
        s.push_str(&format!("--- sie stdout ---\n{}\n", tail(&sie_out, 4000)));
        if let Ok(rd) = fs::read_dir(spool.join("sie/logs")) {
            for e in rd.flatten() {
                s.push_str(&format!(
                    "--- {} ---\n{}\n",
                    e.path().display(),
                    tail(&e.path(), 2000)
                ));
            }
        }
        s.push_str(&format!("--- sendmail A stderr ---\n{}\n", a.stderr()));
        s
    };
    // Settled: nothing in transit and every message accounted for at the sink or
    // in some other queue; or nothing in transit and no change for 10 s (then the
    // assertions below say what is missing). Bounded by 120 s overall.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_state = (usize::MAX, usize::MAX);
    let mut last_change = Instant::now();
    loop {
        let transit_empty = transit.iter().all(|d| entry_files(d).is_empty());
        let parked: usize = fs::read_dir(&spool)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir() && e.file_name() != "sie")
                    .filter(|e| !transit.contains(&e.path()))
                    .map(|e| qf_ids(&e.path()).len())
                    .sum()
            })
            .unwrap_or(0);
        let state = (sink.count(), parked);
        if state != last_state {
            last_state = state;
            last_change = Instant::now();
        }
        if transit_empty
            && (state.0 + state.1 >= TOTAL || last_change.elapsed() > Duration::from_secs(10))
        {
            break;
        }
        if let Some(status) = sie.exited() {
            panic!(
                "{}",
                diagnostics(&format!("sie exited early with {status}"))
            );
        }
        if Instant::now() >= deadline {
            panic!("{}", diagnostics("pipeline did not settle within 120 s"));
        }
        thread::sleep(Duration::from_millis(200));
    }
    // Give a stray duplicate the chance to show up before counting.
    thread::sleep(Duration::from_secs(2));

    // ---- clean messages: each exactly once at the sink, body intact
    let got = sink.messages();
    let mut by_id: BTreeMap<String, Vec<&SinkMessage>> = BTreeMap::new();
    for m in &got {
        let ids = m.received_ids();
        assert_eq!(
            ids.len(),
            1,
            "one Received (A's) per relayed message: {ids:?}"
        );
        by_id.entry(ids[0].clone()).or_default().push(m);
    }
    for m in &clean {
        let found = by_id.get(&m.id).unwrap_or_else(|| {
            panic!(
                "{}",
                diagnostics(&format!("clean {} never reached the sink", m.id))
            )
        });
        assert_eq!(found.len(), 1, "{} delivered {} times", m.id, found.len());
        let to: Vec<&str> = m.to.iter().map(String::as_str).collect();
        check_relayed(found[0], &m.id, &m.from, &to, &m.subject, &m.data);
    }
    assert!(
        !by_id.contains_key(&eicar_id),
        "EICAR message {eicar_id} was delivered"
    );
    assert!(
        !by_id.contains_key(&exe_id),
        ".exe message {exe_id} was delivered"
    );
    assert_eq!(got.len(), clean.len(), "sink message count");

    // ---- quarantines
    for (queue, id, results, what) in [
        ("virus", &eicar_id, "msg_virus", "EICAR"),
        ("ext", &exe_id, "msg_ext", "invoice.pdf.exe"),
    ] {
        let dir = spool.join(queue);
        if !dir.join(format!("qf{id}")).is_file() {
            panic!(
                "{}",
                diagnostics(&format!("{what}: {queue}/qf{id} missing"))
            );
        }
        assert!(
            dir.join(format!("df{id}")).is_file(),
            "{what}: {queue}/df{id} missing"
        );
        let rdir = spool.join("sie/results").join(results);
        let result_files: Vec<String> = fs::read_dir(&rdir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| n.starts_with(id.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            !result_files.is_empty(),
            "{what}: no result file for {id} in {}",
            rdir.display()
        );
    }
    // The quarantined EICAR entry is unmodified: its df still holds the attachment.
    let eicar_df = fs::read_to_string(spool.join(format!("virus/df{eicar_id}"))).unwrap();
    let eicar_b64 = base64_lines(&eicar).replace("\r\n", "\n");
    assert!(
        eicar_df.contains(eicar_b64.trim_end()),
        "virus/df{eicar_id} lost its attachment"
    );

    // ---- accounting by queue id: sink + every queue == the 50 sent, no duplicates
    let mut seen: Vec<String> = by_id.keys().cloned().collect();
    let mut where_is: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in fs::read_dir(&spool).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !e.path().is_dir() || name == "sie" {
            continue;
        }
        for id in qf_ids(&e.path()) {
            where_is.entry(id.clone()).or_default().push(name.clone());
            seen.push(id);
        }
    }
    let seen_set: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        seen.len(),
        TOTAL,
        "sink + queues hold {} entries: {where_is:?}",
        seen.len()
    );
    assert_eq!(seen_set, all_ids, "ids at sink + in queues != ids sent");
    assert_eq!(where_is.get(&eicar_id), Some(&vec!["virus".to_string()]));
    assert_eq!(where_is.get(&exe_id), Some(&vec!["ext".to_string()]));

    // ---- qls view of the same state
    if let Some(qls) = qls_bin {
        let out = Command::new(qls)
            .arg("--spool")
            .arg(&spool)
            .output()
            .expect("run qls");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("qls --spool {}:\n{text}", spool.display());
        assert!(
            out.status.success(),
            "qls failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let msgs_of = |q: &str| -> Option<u64> {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 3 && f[0] == q)
                    .then(|| f[1].parse().ok())
                    .flatten()
            })
        };
        assert_eq!(msgs_of("virus"), Some(1), "qls virus line");
        assert_eq!(msgs_of("ext"), Some(1), "qls ext line");
        assert_eq!(msgs_of("in"), Some(0), "qls in line");
        assert_eq!(msgs_of("out"), Some(0), "qls out line");
    }

    // ---- clean stop
    b.stop();
    let (status, leftovers) = sie.terminate(Duration::from_secs(60));
    match status {
        Some(s) if s.code() == Some(0) => {}
        other => panic!(
            "{}",
            diagnostics(&format!("sie did not exit 0 after SIGTERM: {other:?}"))
        ),
    }
    assert!(
        leftovers.is_empty(),
        "sie exited but its child processes {leftovers:?} were still running 10 s later"
    );
    a.stop();
    println!(
        "e2e ok: {} clean delivered, EICAR {eicar_id} in virus, exe {exe_id} in ext",
        clean.len()
    );
}

/// The fixtures in `tests/data/real` are still what this sendmail writes: the same
/// messages queued now give control files with the same records, in the same order, that
/// SIE parses and writes back byte for byte. To refresh the fixtures:
/// `SIE_CAPTURE_DIR=tests/data/real cargo test --test e2e_sendmail fixtures_match`
#[test]
fn fixtures_match_what_sendmail_writes_now() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = std::env::var("SIE_CAPTURE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| tmp.path().join("captured"));
    fs::create_dir_all(&out_dir).unwrap();
    let q_in = tmp.path().join("queues/in");
    fs::create_dir_all(&q_in).unwrap();
    let sink = Sink::start();
    let mta = Mta::prepare(&tmp.path().join("mta"), free_port(), sink.port()).unwrap();
    let mut a = mta.start_a(&q_in).expect("start sendmail A");
    let pdf = fake_pdf("fixture");
    let mut ids = Vec::new();
    let mut manifest = String::new();
    // (kind, envelope sender, recipients, body, attachment)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        String,
        Option<(&'a str, &'a [u8])>,
    );
    let cases: Vec<Case> = vec![
        (
            "plain",
            "sender@client.test",
            "rcpt1@dest.test",
            "Hello,\n\nthis is a plain fixture message.\n\nBye\n".into(),
            None,
        ),
        (
            "attachment",
            "sender@client.test",
            "rcpt2@dest.test",
            "Please find the report attached.\n".into(),
            Some(("report.pdf", &pdf[..])),
        ),
        (
            "big",
            "sender@client.test",
            "rcpt3@dest.test",
            long_body("fixture-big", 6000),
            None,
        ),
        (
            "nullsender-2rcpt",
            "",
            "rcpt4@dest.test,rcpt5@other.test",
            "A message with a null sender and two recipients.\n.leading dot line\n".into(),
            None,
        ),
    ];
    for (kind, from, to, body, att) in cases {
        let subject = format!("fixture {kind}");
        let id = send(mta.in_port(), from, to, &subject, &body, att).unwrap();
        manifest.push_str(&format!("{id} {kind}\n"));
        ids.push(id);
    }
    a.stop();
    for id in &ids {
        for p in ["qf", "df"] {
            fs::copy(
                q_in.join(format!("{p}{id}")),
                out_dir.join(format!("{p}{id}")),
            )
            .unwrap();
        }
    }
    fs::write(out_dir.join("MANIFEST"), &manifest).unwrap();
    assert_eq!(sink.count(), 0);

    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real");
    let committed = fs::read_to_string(fixtures.join("MANIFEST")).unwrap();
    for (line, (new_id, kind)) in committed
        .lines()
        .zip(manifest.lines().map(|l| l.split_once(' ').unwrap()))
    {
        let (old_id, old_kind) = line.split_once(' ').unwrap();
        assert_eq!(old_kind, kind, "MANIFEST order");
        let old = fs::read(fixtures.join(format!("qf{old_id}"))).unwrap();
        let new = fs::read(out_dir.join(format!("qf{new_id}"))).unwrap();
        for qf in [&old, &new] {
            let parsed = sie::queue::qf::ControlFile::parse(qf).unwrap();
            assert_eq!(
                &parsed.to_bytes(),
                qf,
                "{kind}: parse + write is byte-identical"
            );
        }
        assert_eq!(
            record_shape(&old),
            record_shape(&new),
            "{kind}: record layout changed"
        );
        assert_eq!(
            fs::read(fixtures.join(format!("df{old_id}"))).unwrap(),
            fs::read(out_dir.join(format!("df{new_id}"))).unwrap(),
            "{kind}: df"
        );
    }
}

/// The record types of a control file in order, with header names for `H` records:
/// what stays the same when the same message is queued again.
fn record_shape(qf: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(qf)
        .lines()
        .filter(|line| !line.starts_with([' ', '\t']))
        .map(|line| match line.strip_prefix('H') {
            Some(header) => format!("H{}", header.split(':').next().unwrap_or("")),
            None => line.chars().take(1).collect(),
        })
        .collect()
}
