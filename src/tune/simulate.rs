//! `solve --simulate`: replays an arrival trace through a model of the feed and work
//! loops, with the run settings' `sizes`, `nq`, delays, `maxpass` and per-queue timing,
//! under a feed policy, and reports the latency (arrival in `in` to the end of the pass
//! that scanned the message) per size class.
//!
//! The model, event by event:
//! - The feed runs a pass every `feed_loop_delay` seconds from the first arrival; a pass
//!   places every message that has arrived, oldest first, with the real policy code
//!   ([`crate::feed::pick_queue`]), seeing each queue's messages and bytes (a batch being
//!   scanned still counts) and its `free` time. A pass itself takes no time.
//! - Work process k (0-based, of N) first wakes `loop_delay * (k + 1/2) / N` after the
//!   first arrival: spread out, and off the feed's beat. A pass takes the batch
//!   [`plan_batch`] chooses (the rule of `work::plan_batch`), lasts exactly `t00 +
//!   t0*msgs + ts*bytes`, and its messages are done when it ends; the next pass starts
//!   `loop_delay` after this one started, or at once when it ran longer
//!   ([`Cadence::Fixed`], what `sie-work` does), and `free` is set to then. An empty
//!   queue's pass takes no time and also sets `free`.
//! - [`Cadence::AfterPass`] is a what-if for a loop that sleeps `loop_delay` after each
//!   pass (`--sleep-after-pass`).
//! - Simultaneous events: passes end first, then the feed runs, then passes start.
//!
//! What it leaves out: scan times that differ from the fitted model, the feed's own pass
//! time, locks held by admins, and the MTA's queue runs.

use std::collections::VecDeque;
use std::io::{self, Write};

use serde_json::json;

use super::trace::Arrival;
use crate::config::{FeedPolicy, QueueTiming, RunConfig};
use crate::feed::{QueueState, pick_queue};

/// A simulated message that was scanned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Done {
    pub bytes: u64,
    pub arrived: f64,
    pub done: f64,
    /// 0-based feed queue.
    pub queue: usize,
}

impl Done {
    pub fn latency(&self) -> f64 {
        self.done - self.arrived
    }
}

/// One policy's run over a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub policy: FeedPolicy,
    pub done: Vec<Done>,
    /// Messages no queue's size limit admits (the feed sends them to `error`).
    pub refused: usize,
    /// Work passes that scanned something.
    pub passes: usize,
}

/// How many of the queued sizes (oldest first) one pass takes: the rule of
/// `work::plan_batch` (predicted time within `maxpass`, at least one, at most
/// `max_batch`).
pub fn plan_batch(
    sizes: impl Iterator<Item = u64>,
    timing: QueueTiming,
    maxpass: f64,
    max_batch: usize,
) -> usize {
    let mut plan = crate::work::BatchPlan::new(timing, maxpass, max_batch);
    sizes.take_while(|&size| plan.take(size)).count()
}

#[derive(Debug, Clone)]
struct Worker {
    timing: QueueTiming,
    /// Arrival indexes in the queue, oldest first; the first `batch` are being scanned.
    queued: VecDeque<usize>,
    batch: usize,
    bytes: u64,
    /// When the running batch ends, or the next pass starts when none runs.
    next: f64,
    free_at: f64,
    /// When the running or last pass started.
    started: f64,
}

/// The first time `phase + j*delay` (j >= 0) at or after `at`.
fn grid_at_or_after(phase: f64, delay: f64, at: f64) -> f64 {
    if at <= phase {
        return phase;
    }
    if delay <= 0.0 {
        return at;
    }
    let mut t = phase + ((at - phase) / delay).ceil() * delay;
    if t < at {
        t += delay;
    }
    t
}

/// When a work process starts its next pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// `loop_delay` after the end of the last pass. Passes of different lengths shift
    /// the processes' wake times, and under `eta` (which gives the earliest waking
    /// queue the most work) they end up waking together.
    AfterPass,
    /// Every `loop_delay` from the start of the last pass (at once if it ran longer):
    /// what `sie-work` does; wake times keep their spread whatever the policy.
    Fixed,
}

/// Runs `arrivals` (sorted by time) through the loops of `run` under `policy`.
pub fn simulate(
    arrivals: &[Arrival],
    run: &RunConfig,
    policy: FeedPolicy,
    cadence: Cadence,
) -> Outcome {
    let run = RunConfig {
        feed_policy: policy,
        ..run.clone()
    };
    let count = run.sizes.len();
    let start = arrivals.first().map_or(0.0, |a| a.at);
    let mut workers: Vec<Worker> = (0..count)
        .map(|k| {
            let first = start + run.loop_delay * (k as f64 + 0.5) / count as f64;
            Worker {
                timing: run.timing(&format!("feed{}", k + 1)),
                queued: VecDeque::new(),
                batch: 0,
                bytes: 0,
                next: first,
                free_at: first,
                started: first,
            }
        })
        .collect();
    let mut outcome = Outcome {
        policy,
        done: Vec::with_capacity(arrivals.len()),
        refused: 0,
        passes: 0,
    };
    let mut fed = 0usize;
    let mut in_flight = 0usize;
    let mut next_feed = start;
    while fed < arrivals.len() || in_flight > 0 {
        if fed < arrivals.len() {
            next_feed = grid_at_or_after(next_feed, run.feed_loop_delay, arrivals[fed].at);
        }
        let feed_at = if fed < arrivals.len() {
            next_feed
        } else {
            f64::INFINITY
        };
        let earliest = |busy: bool| {
            workers
                .iter()
                .enumerate()
                .filter(|(_, w)| (w.batch > 0) == busy)
                .map(|(k, w)| (w.next, k))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
        };
        let end = earliest(true).filter(|&(t, _)| t <= feed_at);
        let begin = earliest(false).filter(|&(t, _)| t < feed_at);
        match (end, begin) {
            (Some((t, k)), b) if b.is_none_or(|(tb, _)| t <= tb) => {
                let w = &mut workers[k];
                for _ in 0..w.batch {
                    let i = w.queued.pop_front().unwrap_or_default();
                    w.bytes -= arrivals[i].bytes;
                    outcome.done.push(Done {
                        bytes: arrivals[i].bytes,
                        arrived: arrivals[i].at,
                        done: t,
                        queue: k,
                    });
                }
                in_flight -= w.batch;
                w.batch = 0;
                w.next = match cadence {
                    Cadence::AfterPass => t + run.loop_delay,
                    Cadence::Fixed => (w.started + run.loop_delay).max(t),
                };
                w.free_at = w.next;
            }
            (_, Some((t, k))) => {
                let w = &mut workers[k];
                if w.queued.is_empty() {
                    // Idle passes every loop_delay; only the one after the next feed pass
                    // can find work, and each writes free = its time + loop_delay.
                    w.next = if fed < arrivals.len() {
                        grid_at_or_after(t, run.loop_delay, feed_at)
                    } else {
                        f64::INFINITY
                    };
                    w.free_at = w.next;
                    continue;
                }
                let sizes = w.queued.iter().map(|&i| arrivals[i].bytes);
                w.batch = plan_batch(sizes, w.timing, run.maxpass, run.max_batch);
                let bytes: u64 = w
                    .queued
                    .iter()
                    .take(w.batch)
                    .map(|&i| arrivals[i].bytes)
                    .sum();
                w.started = t;
                w.next = t + w.timing.predict(w.batch, bytes).max(0.0);
                outcome.passes += 1;
            }
            _ if feed_at.is_infinite() => break,
            _ => {
                let now = feed_at;
                let mut states: Vec<QueueState> = workers
                    .iter()
                    .map(|w| QueueState {
                        msgs: w.queued.len(),
                        bytes: w.bytes,
                        free_at: Some(w.free_at),
                        timing: w.timing,
                    })
                    .collect();
                while fed < arrivals.len() && arrivals[fed].at <= now {
                    let bytes = arrivals[fed].bytes;
                    match pick_queue(&run, &states, bytes, now) {
                        Some(k) => {
                            states[k].msgs += 1;
                            states[k].bytes += bytes;
                            workers[k].queued.push_back(fed);
                            workers[k].bytes += bytes;
                            in_flight += 1;
                        }
                        None => outcome.refused += 1,
                    }
                    fed += 1;
                }
                next_feed = now + run.feed_loop_delay;
                if run.feed_loop_delay <= 0.0 && fed < arrivals.len() {
                    next_feed = arrivals[fed].at;
                }
            }
        }
    }
    outcome
}

/// Size classes of the report (decimal units): upper bounds, exclusive.
pub const CLASSES: [(&str, u64); 4] = [
    ("< 10 KB", 10_000),
    ("10-100 KB", 100_000),
    ("100 KB-1 MB", 1_000_000),
    (">= 1 MB", u64::MAX),
];

/// Latency figures of one size class, seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Nearest-rank percentile (`p` in 0..=1) of sorted values; 0 for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Latencies of the messages whose size is in `lo..hi`.
pub fn latency(done: &[Done], lo: u64, hi: u64) -> Latency {
    let mut values: Vec<f64> = done
        .iter()
        .filter(|d| (lo..hi).contains(&d.bytes))
        .map(Done::latency)
        .collect();
    values.sort_by(f64::total_cmp);
    let count = values.len();
    Latency {
        count,
        p50: percentile(&values, 0.50),
        p99: percentile(&values, 0.99),
        max: values.last().copied().unwrap_or(0.0),
        mean: if count == 0 {
            0.0
        } else {
            values.iter().sum::<f64>() / count as f64
        },
    }
}

/// Per class (then `all`): label and latency.
pub fn by_class(done: &[Done]) -> Vec<(&'static str, Latency)> {
    let mut lo = 0;
    let mut rows = Vec::new();
    for (label, hi) in CLASSES {
        rows.push((label, latency(done, lo, hi)));
        lo = hi;
    }
    rows.push(("all", latency(done, 0, u64::MAX)));
    rows
}

pub fn policy_name(policy: FeedPolicy) -> &'static str {
    match policy {
        FeedPolicy::Bytes => "bytes",
        FeedPolicy::Eta => "eta",
    }
}

/// A table: one row per size class, p50/p99 (and max) per policy.
pub fn write_text(outcomes: &[Outcome], out: &mut impl Write) -> io::Result<()> {
    write!(out, "{:<12} {:>7}", "size class", "msgs")?;
    for o in outcomes {
        let name = policy_name(o.policy);
        write!(
            out,
            " {:>10} {:>10} {:>10}",
            format!("{name} p50"),
            format!("{name} p99"),
            format!("{name} max")
        )?;
    }
    writeln!(out)?;
    let tables: Vec<_> = outcomes.iter().map(|o| by_class(&o.done)).collect();
    let rows = tables.first().map_or(0, Vec::len);
    for row in 0..rows {
        let (label, first) = tables[0][row];
        write!(out, "{label:<12} {:>7}", first.count)?;
        for table in &tables {
            let l = table[row].1;
            write!(out, " {:>10.3} {:>10.3} {:>10.3}", l.p50, l.p99, l.max)?;
        }
        writeln!(out)?;
    }
    for o in outcomes {
        writeln!(
            out,
            "{}: {} passes, {} refused (too big for every queue)",
            policy_name(o.policy),
            o.passes,
            o.refused
        )?;
    }
    Ok(())
}

/// One JSON object per policy and size class.
pub fn write_json(outcomes: &[Outcome], out: &mut impl Write) -> io::Result<()> {
    for o in outcomes {
        for (class, l) in by_class(&o.done) {
            let value = json!({
                "policy": policy_name(o.policy), "class": class, "msgs": l.count,
                "p50": l.p50, "p99": l.p99, "max": l.max, "mean": l.mean,
                "passes": o.passes, "refused": o.refused,
            });
            serde_json::to_writer(&mut *out, &value)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{Entry, QueueId};
    use crate::tune::trace::Rng;

    fn run(queues: usize) -> RunConfig {
        let mut sizes = vec![2 << 20; queues];
        sizes[queues - 1] = 0;
        RunConfig {
            sizes,
            nq: queues - 1,
            ..RunConfig::default()
        }
    }

    #[test]
    fn messages_wait_for_the_feed_and_their_queue() {
        let mut run = run(2);
        run.nq = 2;
        run.loop_delay = 2.0;
        run.feed_loop_delay = 1.0;
        let timing = QueueTiming {
            t00: 0.5,
            t0: 0.25,
            ts: 0.0,
        };
        run.queue.insert("feed1".into(), timing);
        // The feed runs at 10, 11 ...; feed1 first wakes at 10.5, feed2 at 11.5. The
        // first message goes to feed1 at 10 and is scanned from 10.5 to 11.25; the second
        // arrives at 10.2 and is placed at 11, while that pass is under way.
        let trace = [
            Arrival { at: 10.0, bytes: 0 },
            Arrival {
                at: 10.2,
                bytes: 100,
            },
        ];
        let bytes = simulate(&trace, &run, FeedPolicy::Bytes, Cadence::AfterPass);
        assert_eq!((bytes.done[0].queue, bytes.done[0].done), (0, 11.25));
        // Least bytes: feed1 holds 0 bytes, so it gets it, and scans it after its sleep.
        assert_eq!(
            (bytes.done[1].queue, bytes.done[1].done),
            (0, 11.25 + 2.0 + 0.75)
        );
        // eta: feed1 would take until 14; feed2 wakes at 11.5.
        let eta = simulate(&trace, &run, FeedPolicy::Eta, Cadence::AfterPass);
        let expected = 11.5 + QueueTiming::default().predict(1, 100);
        assert_eq!((eta.done[1].queue, eta.done[1].done), (1, expected));
        assert_eq!(eta.passes, 2);
        // A fixed cadence wakes feed1 at 12.5 (10.5 + 2) instead of 13.25.
        let fixed = simulate(&trace, &run, FeedPolicy::Bytes, Cadence::Fixed);
        assert_eq!(fixed.done[1].done, 12.5 + 0.75);
    }

    #[test]
    fn every_message_is_done_once_under_both_policies() {
        let mut rng = Rng::new(3);
        let mut at = 0.0;
        let trace: Vec<Arrival> = (0..3000)
            .map(|_| {
                at += rng.exponential(40.0);
                let bytes = if rng.uniform() < 0.02 {
                    5 << 20
                } else {
                    1000 + rng.next_u64() % 200_000
                };
                Arrival { at, bytes }
            })
            .collect();
        let mut run = run(5);
        run.sizes[4] = 4 << 20;
        for policy in [FeedPolicy::Bytes, FeedPolicy::Eta] {
            let out = simulate(&trace, &run, policy, Cadence::AfterPass);
            assert_eq!(out.done.len() + out.refused, trace.len());
            assert!(out.refused > 0);
            assert!(out.done.iter().all(|d| d.latency() >= 0.0));
            let mut arrived: Vec<f64> = out.done.iter().map(|d| d.arrived).collect();
            arrived.sort_by(f64::total_cmp);
            arrived.dedup();
            assert_eq!(arrived.len(), out.done.len());
        }
    }

    #[test]
    fn the_batch_rule_is_the_work_pass_rule() {
        let timing = QueueTiming {
            t00: 1.0,
            t0: 0.5,
            ts: 0.001,
        };
        let mut rng = Rng::new(11);
        for _ in 0..200 {
            let sizes: Vec<u64> = (0..rng.next_u64() % 20)
                .map(|_| rng.next_u64() % 5000)
                .collect();
            let entries: Vec<Entry> = sizes
                .iter()
                .enumerate()
                .map(|(i, &bytes)| Entry {
                    id: QueueId::parse(&format!("ID{i:04}")).unwrap(),
                    dir: "/nonexistent".into(),
                    qf_bytes: 0,
                    df_bytes: Some(bytes),
                    queued: std::time::SystemTime::UNIX_EPOCH,
                })
                .collect();
            let maxpass = 1.0 + rng.uniform() * 10.0;
            let max_batch = 1 + (rng.next_u64() % 10) as usize;
            assert_eq!(
                plan_batch(sizes.iter().copied(), timing, maxpass, max_batch),
                crate::work::plan_batch(&entries, timing, maxpass, max_batch)
            );
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 100.0);
        assert_eq!(percentile(&values, 0.99), 198.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
        assert_eq!(percentile(&[7.0], 0.01), 7.0);
    }
}
