//! The live view of a spool that `mon` and the web console's queue page both show:
//! messages and bytes per queue (the queue layer's listing, the same numbers as `qls`),
//! messages per minute and the last verdicts (read from the work logs). Read-only.
//!
//! Definitions, for admins comparing screens:
//! - **messages per minute**: messages whose work pass ended in the last 60 seconds, summed
//!   over the work queues from their `Stats:` lines (`msgs`, so messages sent to `error`
//!   count too). A pass ends at its `Started pass` log date plus the `Stats:` line's `vs`.
//!   It is a plain count over the last minute, not an extrapolation.
//! - **last verdicts**: the `<Verdict>, moving: <id> (<name>: <why>)` lines of the work
//!   logs, newest first, each dated by the start of its pass (log dates have whole seconds).
//! - A first snapshot reads the last [`START_LINES`] lines of each work log; a
//!   [`LiveMonitor`] kept between snapshots then follows the logs, rotations included.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use crate::log::StatsLine;
use crate::log::tail::{Follower, TailError, TailLine};
use crate::queue::{self, Spool};
use crate::report::listing::summarize;
use crate::timefmt::{date_to_epoch, now_epoch};

/// The window of [`LiveSnapshot::per_minute`], in seconds.
pub const RATE_WINDOW_SECS: f64 = 60.0;

/// How many verdicts a snapshot carries at most.
pub const VERDICTS_KEPT: usize = 50;

/// Lines read from the end of each work log by the first snapshot: a minute of passes
/// at about 150 messages per second per queue. Past that rate the first minute's
/// count is low and is right one minute later.
pub const START_LINES: usize = 10_000;

/// The queues shown, in order: `in`, `feed1..N`, the result queues, then `delete` and
/// `release`. `good` (only used with `good_queue = true`) is added when it holds
/// messages; `archive` holds dated directories, not entries, and is never shown.
pub fn monitored_queues(spool: &Spool) -> Vec<String> {
    let mut queues = vec!["in".to_string()];
    queues.extend(spool.feed_queue_names());
    queues.extend(
        ["out", "virus", "ext", "spam", "error", "delete", "release"]
            .iter()
            .map(|q| q.to_string()),
    );
    queues
}

/// What one queue holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueLoad {
    pub queue: String,
    /// Entries (a qf, with or without its df).
    pub messages: usize,
    /// qf + df bytes of those entries.
    pub bytes: u64,
}

/// One message moved out of a work queue, as its work log told it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The queue id.
    pub id: String,
    /// The work queue that scanned it (`feed1`), i.e. the log it was read from.
    pub queue: String,
    /// `clean`, `virus`, `ext`, `spam`, `unscannable` or `error`.
    pub verdict: String,
    /// The signature, rule or limit (empty for clean messages).
    pub name: String,
    /// Why, as the log line says it (empty for clean messages).
    pub why: String,
    /// When its pass started, epoch seconds.
    pub at: f64,
}

/// Everything `mon` draws.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveSnapshot {
    /// When the snapshot was taken, epoch seconds.
    pub taken: f64,
    /// In the order of [`monitored_queues`].
    pub queues: Vec<QueueLoad>,
    /// Messages whose work pass ended in the last [`RATE_WINDOW_SECS`].
    pub per_minute: u64,
    /// Newest first, at most [`VERDICTS_KEPT`].
    pub last_verdicts: Vec<Verdict>,
}

impl LiveSnapshot {
    /// Messages in all shown queues.
    pub fn total_messages(&self) -> usize {
        self.queues.iter().map(|q| q.messages).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Queue(#[from] queue::Error),
    #[error(transparent)]
    Log(#[from] TailError),
}

/// One snapshot with no history: the rate and verdicts come from the logs' last
/// [`START_LINES`] lines. Keep a [`LiveMonitor`] to take snapshots repeatedly.
pub fn snapshot(spool: &Spool) -> Result<LiveSnapshot, LiveError> {
    LiveMonitor::new(spool).snapshot()
}

/// Takes snapshots one after the other, following the work logs between them.
#[derive(Debug)]
pub struct LiveMonitor {
    spool: Spool,
    logs: Follower,
    started: bool,
    /// Per work log: the start (epoch seconds) of the pass whose lines are being read.
    pass_start: HashMap<String, f64>,
    /// End time and message count of passes that may still be in the rate window.
    passes: VecDeque<(f64, u64)>,
    /// Oldest first.
    verdicts: VecDeque<Verdict>,
}

impl LiveMonitor {
    pub fn new(spool: &Spool) -> LiveMonitor {
        let logs = spool
            .feed_queue_names()
            .iter()
            .map(|q| spool.log_file(q))
            .collect::<Vec<_>>();
        LiveMonitor {
            spool: spool.clone(),
            logs: Follower::files(logs),
            started: false,
            pass_start: HashMap::new(),
            passes: VecDeque::new(),
            verdicts: VecDeque::new(),
        }
    }

    pub fn snapshot(&mut self) -> Result<LiveSnapshot, LiveError> {
        self.snapshot_at(now_epoch())
    }

    fn snapshot_at(&mut self, now: f64) -> Result<LiveSnapshot, LiveError> {
        let mut queues = Vec::new();
        for queue in monitored_queues(&self.spool) {
            queues.push(load(&self.spool, &queue)?);
        }
        let good = load(&self.spool, "good")?;
        if good.messages > 0 {
            queues.push(good);
        }
        self.read_logs()?;
        let window_start = now - RATE_WINDOW_SECS;
        self.passes.retain(|(end, _)| *end > window_start);
        Ok(LiveSnapshot {
            taken: now,
            queues,
            per_minute: self.passes.iter().map(|(_, msgs)| msgs).sum(),
            last_verdicts: self.verdicts.iter().rev().cloned().collect(),
        })
    }

    fn read_logs(&mut self) -> Result<(), TailError> {
        let lines = if self.started {
            self.logs.poll()?
        } else {
            self.started = true;
            self.logs.start(START_LINES)?
        };
        let before = self.verdicts.len();
        for line in &lines {
            self.take_line(line);
        }
        if self.verdicts.len() > before {
            // Logs are read one after the other: order what they added by time. The sort
            // is stable, so lines of one second keep their log order.
            self.verdicts
                .make_contiguous()
                .sort_by(|a, b| a.at.total_cmp(&b.at));
            let excess = self.verdicts.len().saturating_sub(VERDICTS_KEPT);
            self.verdicts.drain(..excess);
        }
        Ok(())
    }

    fn take_line(&mut self, line: &TailLine) {
        // Every line starts with the process name: `feed1: ...`.
        let Some((_, text)) = line.line.split_once(": ") else {
            return;
        };
        if let Some((date, _)) = text.split_once(": Started pass ") {
            match date_to_epoch(date) {
                Some(start) => self.pass_start.insert(line.name.clone(), start),
                None => self.pass_start.remove(&line.name),
            };
            return;
        }
        // Lines before the first `Started pass` read belong to a pass of unknown date.
        let Some(&start) = self.pass_start.get(&line.name) else {
            return;
        };
        if let Some(stats) = StatsLine::from_log_line(text) {
            self.passes.push_back((start + stats.vs, stats.msgs));
        } else if let Some(verdict) = parse_moving(text, &line.name, start) {
            self.verdicts.push_back(verdict);
        }
    }
}

fn load(spool: &Spool, queue: &str) -> Result<QueueLoad, queue::Error> {
    let summary = summarize(spool, queue)?;
    Ok(QueueLoad {
        queue: summary.queue,
        messages: summary.msgs,
        bytes: summary.bytes,
    })
}

/// `Virus, moving: <id> (<name>: <why>)`, `Clean, moving: <id>`, `Error, moving: <id> (<why>)`.
fn parse_moving(text: &str, queue: &str, at: f64) -> Option<Verdict> {
    let (label, rest) = text.split_once(", moving: ")?;
    let verdict = match label {
        "Clean" | "Virus" | "Ext" | "Spam" | "Unscannable" | "Error" => label.to_lowercase(),
        _ => return None,
    };
    let (id, detail) = match rest.split_once(' ') {
        Some((id, detail)) => (id, detail.strip_prefix('(')?.strip_suffix(')')?),
        None => (rest, ""),
    };
    let (name, why) = match detail.split_once(": ") {
        Some((name, why)) => (name, why),
        None => ("", detail),
    };
    Some(Verdict {
        id: id.to_string(),
        queue: queue.to_string(),
        verdict,
        name: name.to_string(),
        why: why.to_string(),
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::testutil::temp_spool;
    use crate::timefmt::log_date;
    use chrono::{Local, TimeZone};
    use std::fs;
    use std::io::Write;

    fn entry(spool: &Spool, queue: &str, id: &str, qf: usize, df: usize) {
        let dir = spool.queue_dir(queue).unwrap();
        fs::write(dir.join(format!("df{id}")), vec![b'b'; df]).unwrap();
        fs::write(dir.join(format!("qf{id}")), vec![b'q'; qf]).unwrap();
    }

    fn append(spool: &Spool, log: &str, lines: &[String]) {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(spool.log_file(log))
            .unwrap();
        for line in lines {
            writeln!(file, "{log}: {line}").unwrap();
        }
    }

    /// The log lines of one pass that started at `start` (epoch seconds).
    fn pass(start: i64, moves: &[&str], vs: f64) -> Vec<String> {
        let date = log_date(Local.timestamp_opt(start, 0).unwrap());
        let mut lines = vec![format!("{date}: Started pass 1.2.3.")];
        lines.extend(moves.iter().map(|m| m.to_string()));
        let stats = StatsLine {
            msgs: moves.len() as u64,
            vs,
            ..StatsLine::default()
        };
        lines.push(stats.to_string());
        lines.push(format!("{date}: Finished pass."));
        lines.push(format!("{date}: Sleeping: 1"));
        lines
    }

    #[test]
    fn queues_come_in_order_with_messages_and_bytes() {
        let (_dir, spool) = temp_spool(2);
        entry(&spool, "in", "6ALNNrgA000001", 100, 1000);
        entry(&spool, "in", "6ALNNrgA000002", 50, 0);
        entry(&spool, "feed2", "6ALNNrgA000003", 10, 20);
        fs::write(
            spool.queue_dir("virus").unwrap().join("dfLONELY0000001"),
            "x",
        )
        .unwrap();
        let snap = snapshot(&spool).unwrap();
        let names: Vec<&str> = snap.queues.iter().map(|q| q.queue.as_str()).collect();
        assert_eq!(
            names,
            [
                "in", "feed1", "feed2", "out", "virus", "ext", "spam", "error", "delete", "release"
            ]
        );
        let rows: Vec<(usize, u64)> = snap.queues.iter().map(|q| (q.messages, q.bytes)).collect();
        assert_eq!(rows[0], (2, 1150));
        assert_eq!(rows[2], (1, 30));
        assert_eq!(rows[4], (0, 0), "a df without qf is no message");
        assert_eq!(snap.total_messages(), 3);
        assert_eq!(snap.per_minute, 0);
        assert!(snap.last_verdicts.is_empty());

        entry(&spool, "good", "6ALNNrgA000004", 1, 1);
        let snap = snapshot(&spool).unwrap();
        let last = snap.queues.last().unwrap();
        assert_eq!(
            (last.queue.as_str(), last.messages, last.bytes),
            ("good", 1, 2)
        );
    }

    #[test]
    fn rate_counts_passes_that_ended_in_the_last_minute() {
        let (_dir, spool) = temp_spool(2);
        let now = now_epoch().floor() as i64;
        // Ended 90 s ago: outside the window.
        append(
            &spool,
            "feed1",
            &pass(now - 100, &["Clean, moving: OLD00000000001"], 10.0),
        );
        // Started 70 s ago but ran 20 s: ended 50 s ago, inside.
        append(
            &spool,
            "feed1",
            &pass(now - 70, &["Clean, moving: A0000000000001"; 3], 20.0),
        );
        append(
            &spool,
            "feed2",
            &pass(now - 5, &["Clean, moving: B0000000000001"; 2], 0.5),
        );
        let mut monitor = LiveMonitor::new(&spool);
        let first = monitor.snapshot_at(now as f64).unwrap();
        assert_eq!(first.per_minute, 5);
        assert_eq!(snapshot(&spool).unwrap().per_minute, 5, "one-shot agrees");

        // Followed between snapshots: a new pass counts, old passes leave the window.
        append(
            &spool,
            "feed2",
            &pass(
                now + 30,
                &["Spam, moving: C0000000000001 (BAYES: score 9.1)"],
                0.2,
            ),
        );
        assert_eq!(
            monitor.snapshot_at(now as f64 + 31.0).unwrap().per_minute,
            3
        );
        assert_eq!(
            monitor.snapshot_at(now as f64 + 80.0).unwrap().per_minute,
            1
        );
        assert_eq!(
            monitor.snapshot_at(now as f64 + 200.0).unwrap().per_minute,
            0
        );
    }

    #[test]
    fn verdicts_are_parsed_newest_first() {
        let (_dir, spool) = temp_spool(2);
        let now = now_epoch().floor() as i64;
        // A pass whose start was rotated away: its lines have no date and are skipped.
        append(
            &spool,
            "feed1",
            &["Clean, moving: NODATE00000001".to_string()],
        );
        append(
            &spool,
            "feed1",
            &pass(
                now - 20,
                &[
                    "Clean, moving: 6AM0Crsh016634",
                    "Virus, moving: 6AM0CrXU016646 (Eicar-Test-Signature: part 1 (eicar.com))",
                ],
                0.1,
            ),
        );
        append(
            &spool,
            "feed2",
            &pass(
                now - 10,
                &[
                    "Ext, moving: 6AM0CrXU016647 (ext:exe: invoice.pdf.exe)",
                    "Error, moving: 6AM0CrXU016648 (df without qf)",
                    "Cannot move 6AM0CrXU016649: disk full",
                ],
                0.1,
            ),
        );
        let snap = snapshot(&spool).unwrap();
        let seen: Vec<(&str, &str, &str, &str, &str)> = snap
            .last_verdicts
            .iter()
            .map(|v| {
                (
                    v.id.as_str(),
                    v.queue.as_str(),
                    v.verdict.as_str(),
                    v.name.as_str(),
                    v.why.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("6AM0CrXU016648", "feed2", "error", "", "df without qf"),
                (
                    "6AM0CrXU016647",
                    "feed2",
                    "ext",
                    "ext:exe",
                    "invoice.pdf.exe"
                ),
                (
                    "6AM0CrXU016646",
                    "feed1",
                    "virus",
                    "Eicar-Test-Signature",
                    "part 1 (eicar.com)"
                ),
                ("6AM0Crsh016634", "feed1", "clean", "", ""),
            ]
        );
        assert_eq!(snap.last_verdicts[0].at, (now - 10) as f64);
        assert_eq!(snap.last_verdicts[3].at, (now - 20) as f64);
    }

    #[test]
    fn only_the_newest_verdicts_are_kept() {
        let (_dir, spool) = temp_spool(2);
        let now = now_epoch().floor() as i64;
        let moves: Vec<String> = (0..VERDICTS_KEPT + 7)
            .map(|n| format!("Clean, moving: 6ALNNrgA{n:06}"))
            .collect();
        let moves: Vec<&str> = moves.iter().map(String::as_str).collect();
        append(&spool, "feed1", &pass(now - 1, &moves, 0.1));
        let snap = snapshot(&spool).unwrap();
        assert_eq!(snap.last_verdicts.len(), VERDICTS_KEPT);
        let newest = format!("6ALNNrgA{:06}", VERDICTS_KEPT + 6);
        assert_eq!(snap.last_verdicts[0].id, newest);
        assert_eq!(snap.per_minute, (VERDICTS_KEPT + 7) as u64);
    }
}
