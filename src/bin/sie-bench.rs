//! sie-bench — small helpers for `tools/bench`, the benchmark driver.
//!
//! `tools/bench` runs the real programs (`msgscan`, `sie`, `clamscan`, `clamd`,
//! `spamassassin`, `sendmail`) and times them; this program does the parts a shell
//! does badly:
//!
//! - `spam-hits RULES_DIR PATH...`: the spam rules that hit each message (SIE's
//!   engine, `SpamRules::check`), one JSON object per message;
//! - `spam-compare --sie FILE --sa DIR`: agreement between those hits and the
//!   `X-Spam-Status:`/`X-Spam-Tests:` headers SpamAssassin wrote for the same files;
//! - `smtp-send --port P --clients K FILE...`: send messages over SMTP to 127.0.0.1
//!   with K parallel sessions and time it;
//! - `inject`: rename prepared queue entries into a spool's `in` at steady rates and
//!   log when; `latency`: from that log and the ctime of each qf in its end queue,
//!   the time every message took from `in` to the end;
//! - `free-port`: a free TCP port on 127.0.0.1.
//!
//! Every command prints JSON on stdout. EXIT STATUS: 0 ok, 2 fatal error.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use rayon::prelude::*;
use serde_json::json;
use sie::rules::spam::SpamRules;

/// Helpers for tools/bench (spam hits, SMTP sending, queue injection, latency).
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  sie-bench spam-hits vdl /tmp/corpus/eml > hits.jsonl\n  sie-bench spam-compare --sie hits.jsonl --sa /tmp/sa-out\n  sie-bench smtp-send --port 2525 --clients 4 /tmp/corpus/eml/*.eml\n  sie-bench inject --spool /tmp/q --bg /tmp/big --bg-rate 20 --probes /tmp/small --probe-rate 20 --duration 30 --log inject.tsv\n  sie-bench latency --spool /tmp/q --log inject.tsv"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Spam rules hit per message, by SIE's engine: one JSON object per message
    SpamHits {
        /// Directory holding the rules (spam.vdl and/or *.cf)
        rules: PathBuf,
        /// Message files or directories of them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Compare SIE's hits (spam-hits output) with SpamAssassin's output messages
    SpamCompare {
        /// spam-hits output
        #[arg(long)]
        sie: PathBuf,
        /// Directory of messages as SpamAssassin returned them, same file names
        #[arg(long)]
        sa: PathBuf,
    },
    /// Send messages over SMTP to 127.0.0.1:PORT with parallel sessions
    SmtpSend {
        #[arg(long)]
        port: u16,
        /// Parallel SMTP clients; each sends its share of the messages
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Messages per SMTP session (connection); 0: one session per client for all
        #[arg(long, default_value_t = 1)]
        per_session: usize,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Rename queue entries into SPOOL/in at steady rates, logging each injection
    Inject {
        #[arg(long)]
        spool: PathBuf,
        /// Directory of background entries (qf+df), injected in name order
        #[arg(long)]
        bg: PathBuf,
        /// Background messages per second
        #[arg(long)]
        bg_rate: f64,
        /// Directory of probe entries (small messages), injected in name order
        #[arg(long)]
        probes: PathBuf,
        /// Probe messages per second
        #[arg(long)]
        probe_rate: f64,
        /// Seconds to inject for
        #[arg(long)]
        duration: f64,
        /// Log written: kind, id, bytes, epoch seconds of the qf rename
        #[arg(long)]
        log: PathBuf,
    },
    /// Time from injection to the end queue for every logged message
    Latency {
        #[arg(long)]
        spool: PathBuf,
        #[arg(long)]
        log: PathBuf,
    },
    /// A free TCP port on 127.0.0.1
    FreePort,
}

fn main() -> ExitCode {
    // The spam engine runs as in the work loops, without huge pages.
    sie::cli::use_small_pages();
    let args = Args::parse();
    let result = match args.command {
        Command::SpamHits { rules, paths } => spam_hits(&rules, &paths),
        Command::SpamCompare { sie, sa } => spam_compare(&sie, &sa),
        Command::SmtpSend {
            port,
            clients,
            per_session,
            files,
        } => smtp_send(port, clients, per_session, &files),
        Command::Inject {
            spool,
            bg,
            bg_rate,
            probes,
            probe_rate,
            duration,
            log,
        } => inject(&spool, &bg, bg_rate, &probes, probe_rate, duration, &log),
        Command::Latency { spool, log } => latency(&spool, &log),
        Command::FreePort => free_port(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sie-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Regular files named by `paths` (directories: the files directly in them), sorted.
fn files_of(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            for entry in fs::read_dir(path).with_context(|| path.display().to_string())? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    files.push(entry.path());
                }
            }
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn spam_hits(rules_dir: &Path, paths: &[PathBuf]) -> Result<()> {
    let (rules, problems) = SpamRules::load_dir(rules_dir)?;
    for problem in &problems {
        eprintln!("sie-bench: skipped {problem}");
    }
    let files = files_of(paths)?;
    let lines: Vec<Result<String>> = files
        .par_iter()
        .map(|path| {
            let message = fs::read(path).with_context(|| path.display().to_string())?;
            let result = rules.check(&message);
            let hits: Vec<&str> = result.hits.iter().map(|h| h.name.as_str()).collect();
            Ok(json!({
                "file": file_name(path),
                "score": result.score,
                "threshold": result.threshold,
                "spam": !result.hits.is_empty() && result.is_spam(),
                "hits": hits,
            })
            .to_string())
        })
        .collect();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in lines {
        writeln!(out, "{}", line?)?;
    }
    Ok(())
}

/// What SpamAssassin said about one message.
struct SaResult {
    spam: bool,
    hits: BTreeSet<String>,
}

/// Reads `X-Spam-Status: Yes, score=6.2 required=5.0 tests=...` and
/// `X-Spam-Tests: A=1.5,B=2` (unfolded) from the header of a checked message.
fn parse_sa(output: &[u8]) -> Option<SaResult> {
    let text = String::from_utf8_lossy(output);
    let mut status = None;
    let mut tests = None;
    for line in text.lines() {
        if line.is_empty() || line == "\r" {
            break;
        }
        if let Some(value) = line.strip_prefix("X-Spam-Status:") {
            status = Some(value.trim().to_string());
        } else if let Some(value) = line.strip_prefix("X-Spam-Tests:") {
            tests = Some(value.trim().to_string());
        }
    }
    let status = status?;
    let tests = tests?;
    let hits = if tests == "none" || tests.is_empty() {
        BTreeSet::new()
    } else {
        tests
            .split(',')
            .map(|pair| pair.split('=').next().unwrap_or(pair).trim().to_string())
            .filter(|name| !name.is_empty())
            .collect()
    };
    Some(SaResult {
        spam: status.starts_with("Yes"),
        hits,
    })
}

fn spam_compare(sie: &Path, sa_dir: &Path) -> Result<()> {
    let text = fs::read_to_string(sie).with_context(|| sie.display().to_string())?;
    let mut messages = 0usize;
    let mut unreadable = Vec::new();
    let (mut same_verdict, mut same_rules) = (0usize, 0usize);
    let (mut sie_spam, mut sa_spam) = (0usize, 0usize);
    let mut differences = Vec::new();
    let mut rule_diffs: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)?;
        let file = value["file"].as_str().unwrap_or_default().to_string();
        let ours_spam = value["spam"].as_bool().unwrap_or(false);
        let ours: BTreeSet<String> = value["hits"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        messages += 1;
        sie_spam += usize::from(ours_spam);
        let Some(theirs) = fs::read(sa_dir.join(&file)).ok().and_then(|o| parse_sa(&o)) else {
            unreadable.push(file);
            continue;
        };
        sa_spam += usize::from(theirs.spam);
        same_verdict += usize::from(ours_spam == theirs.spam);
        if ours == theirs.hits {
            same_rules += 1;
        } else {
            for name in ours.difference(&theirs.hits) {
                rule_diffs.entry(name.clone()).or_default().0 += 1;
            }
            for name in theirs.hits.difference(&ours) {
                rule_diffs.entry(name.clone()).or_default().1 += 1;
            }
            if differences.len() < 10 {
                let only_sie: Vec<&String> = ours.difference(&theirs.hits).collect();
                let only_sa: Vec<&String> = theirs.hits.difference(&ours).collect();
                differences.push(json!({
                    "file": file, "only_sie": only_sie, "only_spamassassin": only_sa,
                }));
            }
        }
    }
    let pct = |n: usize| {
        if messages == 0 {
            0.0
        } else {
            100.0 * n as f64 / messages as f64
        }
    };
    let by_rule: Vec<serde_json::Value> = rule_diffs
        .iter()
        .map(|(name, (sie_only, sa_only))| {
            json!({"rule": name, "only_sie": sie_only, "only_spamassassin": sa_only})
        })
        .collect();
    println!(
        "{}",
        json!({
            "messages": messages,
            "sie_spam": sie_spam,
            "spamassassin_spam": sa_spam,
            "same_verdict": same_verdict,
            "same_verdict_pct": pct(same_verdict),
            "same_rules": same_rules,
            "same_rules_pct": pct(same_rules),
            "spamassassin_unreadable": unreadable,
            "rule_differences": by_rule,
            "examples": differences,
        })
    );
    Ok(())
}

/// One SMTP reply: the code of its last line and the whole text.
fn reply(reader: &mut impl BufRead) -> Result<(u16, String)> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            bail!("connection closed (after {text:?})");
        }
        text.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            return Ok((code, text));
        }
    }
}

fn expect(reader: &mut impl BufRead, want: u16, what: &str) -> Result<()> {
    let (code, text) = reply(reader)?;
    if code != want {
        bail!("{what}: expected {want}, got {}", text.trim_end());
    }
    Ok(())
}

/// The message as DATA content: CRLF line ends, dot-stuffed, ending in CRLF.
fn data_block(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 40 + 8);
    for line in message.split_inclusive(|b| *b == b'\n') {
        let body = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if body.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// An SMTP client sending the messages the shared counter hands it, `per_session` per
/// connection (0: all in one session), each session opened with EHLO and closed with QUIT.
fn smtp_client(
    port: u16,
    files: &[PathBuf],
    next: &AtomicUsize,
    per_session: usize,
) -> Result<(usize, u64, usize)> {
    let (mut sent, mut bytes, mut sessions) = (0usize, 0u64, 0usize);
    loop {
        let mut index = next.fetch_add(1, Ordering::Relaxed);
        if index >= files.len() {
            return Ok((sent, bytes, sessions));
        }
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        sessions += 1;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = BufWriter::new(stream);
        expect(&mut reader, 220, "greeting")?;
        writer.write_all(b"EHLO client.test\r\n")?;
        writer.flush()?;
        expect(&mut reader, 250, "EHLO")?;
        let mut in_session = 0usize;
        loop {
            let path = &files[index];
            let message = fs::read(path).with_context(|| path.display().to_string())?;
            writer.write_all(b"MAIL FROM:<sender@client.test>\r\n")?;
            writer.flush()?;
            expect(&mut reader, 250, "MAIL")?;
            writer.write_all(b"RCPT TO:<rcpt@dest.test>\r\n")?;
            writer.flush()?;
            expect(&mut reader, 250, "RCPT")?;
            writer.write_all(b"DATA\r\n")?;
            writer.flush()?;
            expect(&mut reader, 354, "DATA")?;
            writer.write_all(&data_block(&message))?;
            writer.flush()?;
            expect(&mut reader, 250, "end of DATA")?;
            sent += 1;
            bytes += message.len() as u64;
            in_session += 1;
            if per_session != 0 && in_session >= per_session {
                break;
            }
            index = next.fetch_add(1, Ordering::Relaxed);
            if index >= files.len() {
                break;
            }
        }
        writer.write_all(b"QUIT\r\n")?;
        writer.flush()?;
        let _ = reply(&mut reader);
    }
}

fn smtp_send(port: u16, clients: usize, per_session: usize, paths: &[PathBuf]) -> Result<()> {
    let files = files_of(paths)?;
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<Result<(usize, u64, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients.max(1))
            .map(|_| scope.spawn(|| smtp_client(port, &files, &next, per_session)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("panic"))))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let (mut sent, mut bytes, mut sessions, mut errors) = (0usize, 0u64, 0usize, Vec::new());
    for result in results {
        match result {
            Ok((n, b, c)) => {
                sent += n;
                bytes += b;
                sessions += c;
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    println!(
        "{}",
        json!({
            "messages": sent, "bytes": bytes, "seconds": seconds, "clients": clients,
            "sessions": sessions, "per_session": per_session,
            "msgs_per_s": sent as f64 / seconds, "mb_per_s": bytes as f64 / 1e6 / seconds,
            "errors": errors,
        })
    );
    if sent != files.len() {
        bail!("sent {sent} of {} messages", files.len());
    }
    Ok(())
}

fn epoch(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Queue ids of the entries (qf names) in `dir`, sorted.
fn entry_ids(dir: &Path) -> Result<Vec<String>> {
    let mut ids: Vec<String> = fs::read_dir(dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("qf"))
                .map(str::to_string)
        })
        .collect();
    ids.sort();
    Ok(ids)
}

#[allow(clippy::too_many_arguments)]
fn inject(
    spool: &Path,
    bg: &Path,
    bg_rate: f64,
    probes: &Path,
    probe_rate: f64,
    duration: f64,
    log: &Path,
) -> Result<()> {
    let in_dir = spool.join("in");
    let bg_ids = entry_ids(bg)?;
    let probe_ids = entry_ids(probes)?;
    // The timeline: (due seconds, kind, id); background entries are used once each.
    let mut events: Vec<(f64, &str, &Path, &String)> = Vec::new();
    if bg_rate > 0.0 {
        for (i, id) in bg_ids.iter().enumerate() {
            let due = i as f64 / bg_rate;
            if due >= duration {
                break;
            }
            events.push((due, "bg", bg, id));
        }
    }
    if probe_rate > 0.0 {
        for (i, id) in probe_ids.iter().enumerate() {
            let due = (i as f64 + 0.5) / probe_rate;
            if due >= duration {
                break;
            }
            events.push((due, "probe", probes, id));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = BufWriter::new(fs::File::create(log)?);
    let started = Instant::now();
    let mut late = 0usize;
    let (mut n_bg, mut n_probe, mut bytes) = (0usize, 0usize, 0u64);
    for (due, kind, dir, id) in &events {
        let now = started.elapsed().as_secs_f64();
        if *due > now {
            std::thread::sleep(Duration::from_secs_f64(due - now));
        } else if now - due > 0.01 {
            late += 1;
        }
        let df = dir.join(format!("df{id}"));
        let size = fs::metadata(&df).map(|m| m.len()).unwrap_or(0)
            + fs::metadata(dir.join(format!("qf{id}")))?.len();
        if df.exists() {
            fs::rename(&df, in_dir.join(format!("df{id}")))?;
        }
        let at = epoch(SystemTime::now());
        fs::rename(dir.join(format!("qf{id}")), in_dir.join(format!("qf{id}")))?;
        writeln!(out, "{kind}\t{id}\t{size}\t{at:.6}")?;
        bytes += size;
        if *kind == "bg" {
            n_bg += 1;
        } else {
            n_probe += 1;
        }
    }
    out.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "background": n_bg, "probes": n_probe, "bytes": bytes, "seconds": seconds,
            "late_events": late, "bg_rate": bg_rate, "probe_rate": probe_rate,
        })
    );
    Ok(())
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

const END_QUEUES: [&str; 6] = ["out", "virus", "ext", "spam", "error", "good"];

fn latency(spool: &Path, log: &Path) -> Result<()> {
    let mut text = String::new();
    fs::File::open(log)?.read_to_string(&mut text)?;
    let mut by_kind: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
    let mut queues: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [kind, id, _size, at] = fields[..] else {
            bail!("bad log line {line:?}");
        };
        let at: f64 = at.parse()?;
        let entry = by_kind.entry(kind.to_string()).or_default();
        let found = END_QUEUES.iter().find_map(|q| {
            fs::metadata(spool.join(q).join(format!("qf{id}")))
                .ok()
                .map(|m| (q, m))
        });
        match found {
            Some((queue, meta)) => {
                let ctime = meta.ctime() as f64 + meta.ctime_nsec() as f64 * 1e-9;
                entry.0.push(ctime - at);
                *queues.entry(format!("{kind}:{queue}")).or_default() += 1;
            }
            None => entry.1 += 1,
        }
    }
    let mut result = serde_json::Map::new();
    for (kind, (mut values, missing)) in by_kind {
        values.sort_by(f64::total_cmp);
        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
        result.insert(
            kind,
            json!({
                "count": values.len(), "missing": missing,
                "p50": percentile(&values, 50.0), "p90": percentile(&values, 90.0),
                "p99": percentile(&values, 99.0), "max": values.last().copied().unwrap_or(f64::NAN),
                "min": values.first().copied().unwrap_or(f64::NAN), "mean": mean,
            }),
        );
    }
    result.insert("end_queues".to_string(), json!(queues));
    println!("{}", serde_json::Value::Object(result));
    Ok(())
}

fn free_port() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?.port());
    Ok(())
}
