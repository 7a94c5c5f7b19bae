//! One feed pass: take each message from `in`, oldest first, and move it to a feed queue
//! whose size limit admits it: the one with the fewest bytes queued (`feed_policy =
//! "bytes"`, the default) or the one predicted to finish it first (`"eta"`). Broken entries
//! go to `error` with a reason; entries the MTA holds are left for the next pass.

use std::time::SystemTime;

use crate::config::{FeedPolicy, QueueTiming, RunConfig};
use crate::lockfile::read_free;
use crate::log::ProcessLog;
use crate::queue::recover::{OrphanAction, quarantine_orphan_df};
use crate::queue::{
    self, ListingCache, LockOutcome, LockedEntry, MoveBatch, Spool, lock_entry, move_with_result,
};

/// Moves made before their directories are fsynced together; it bounds the qf files
/// held open and locked meanwhile.
const SYNC_EVERY: usize = 128;

/// Picks the feed queue (0-based) for a message of `bytes`, given the bytes queued in
/// each queue and each queue's size limit (0 = none). Queues up to `nq` take any message
/// within their limit; a queue above `nq` takes only messages bigger than every lower
/// limit. Among those that admit it, the least loaded wins, the lowest number on ties.
pub fn least_loaded_queue(loads: &[u64], sizes: &[u64], nq: usize, bytes: u64) -> Option<usize> {
    (0..sizes.len().min(loads.len()))
        .filter(|&k| admits(sizes, nq, k, bytes))
        .min_by_key(|&k| (loads[k], k))
}

/// Whether queue `k` (0-based) takes a message of `bytes` under `sizes` and `nq`.
fn admits(sizes: &[u64], nq: usize, k: usize, bytes: u64) -> bool {
    let within_limit = sizes[k] == 0 || bytes <= sizes[k];
    let big_enough = k < nq || sizes[..k].iter().all(|&lower| lower != 0 && bytes > lower);
    within_limit && big_enough
}

/// What the `eta` policy knows about one feed queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueState {
    /// Messages queued, including a batch being scanned right now.
    pub msgs: usize,
    /// Bytes queued (qf + df), likewise.
    pub bytes: u64,
    /// Epoch seconds at which the queue's work process is next ready (`free.<queue>`);
    /// `None` when it has not written one.
    pub free_at: Option<f64>,
    pub timing: QueueTiming,
}

/// The shape of a work loop, from the run settings: batches of at most `max_batch`
/// messages predicted to fit `maxpass`, passes `loop_delay` apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopShape {
    pub maxpass: f64,
    pub max_batch: usize,
    pub loop_delay: f64,
}

impl LoopShape {
    pub fn of(run: &RunConfig) -> LoopShape {
        LoopShape {
            maxpass: run.maxpass,
            max_batch: run.max_batch,
            loop_delay: run.loop_delay,
        }
    }
}

/// Predicted epoch time at which a message of `bytes` would be scanned if it joined the
/// end of `queue` now.
///
/// `duration(m, b)`, the time to work `m` messages of `b` bytes: the work is `W = t0*m +
/// ts*b`, done in `P = max(1, ceil(W / (maxpass - t00)), ceil(m / max_batch))` passes
/// (`m` passes when `maxpass <= t00`), so `P*t00 + W + (P-1)*loop_delay`. Batch edges
/// are smoothed over: this is a forecast, not `plan_batch`.
///
/// - The process is asleep or idle (`free` is in the future, or nothing is queued): the
///   message is done at `max(now, free) + duration(queued + it)`.
/// - `free` has passed and messages are queued: a pass is under way and took what was
///   listed, so the message waits for its end, `free + duration(queued)`, then a sleep,
///   then a pass of its own: `+ loop_delay + t00 + t0 + ts*bytes`. When that end is
///   already past (the process is slower than its parameters, stuck, or dead), all the
///   queued work is counted from now instead, so a stalled queue stops attracting mail.
/// - No `free` file: the process is taken to be ready now.
pub fn predicted_done(queue: &QueueState, shape: &LoopShape, now: f64, bytes: u64) -> f64 {
    let t = queue.timing;
    let duration = |msgs: usize, bytes: u64| {
        let msgs = msgs as f64;
        let work = t.t0 * msgs + t.ts * bytes as f64;
        let per_pass = shape.maxpass - t.t00;
        let passes = if per_pass > 0.0 {
            let by_time = (work / per_pass).ceil();
            let by_count = (msgs / shape.max_batch.max(1) as f64).ceil();
            by_time.max(by_count).max(1.0)
        } else {
            msgs.max(1.0)
        };
        passes * t.t00 + work + (passes - 1.0) * shape.loop_delay
    };
    match queue.free_at {
        Some(free) if free <= now && queue.msgs > 0 => {
            let mut end = free + duration(queue.msgs, queue.bytes);
            if end < now {
                end = now + duration(queue.msgs, queue.bytes);
            }
            end + shape.loop_delay + t.predict(1, bytes)
        }
        free => {
            let start = free.map_or(now, |free| free.max(now));
            start + duration(queue.msgs + 1, queue.bytes + bytes)
        }
    }
}

/// The `eta` policy: among the queues that admit a message of `bytes` (same `sizes`/`nq`
/// rules as [`least_loaded_queue`]), the one with the earliest [`predicted_done`], the
/// lowest number on ties.
pub fn eta_queue(
    queues: &[QueueState],
    sizes: &[u64],
    nq: usize,
    bytes: u64,
    shape: &LoopShape,
    now: f64,
) -> Option<usize> {
    (0..sizes.len().min(queues.len()))
        .filter(|&k| admits(sizes, nq, k, bytes))
        .map(|k| (predicted_done(&queues[k], shape, now, bytes), k))
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
        .map(|(_, k)| k)
}

/// The queue `run.feed_policy` picks for a message of `bytes`, given every feed queue's
/// state at `now` (epoch seconds).
pub fn pick_queue(run: &RunConfig, queues: &[QueueState], bytes: u64, now: f64) -> Option<usize> {
    match run.feed_policy {
        FeedPolicy::Bytes => {
            let loads: Vec<u64> = queues.iter().map(|q| q.bytes).collect();
            least_loaded_queue(&loads, &run.sizes, run.nq, bytes)
        }
        FeedPolicy::Eta => eta_queue(queues, &run.sizes, run.nq, bytes, &LoopShape::of(run), now),
    }
}

/// What a feed pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FeedReport {
    pub moved: usize,
    pub bytes: u64,
    pub errors: usize,
    /// Entries left in `in` for now (locked by the MTA, incomplete, or not movable).
    pub skipped: usize,
}

/// Runs one feed pass over `in`; `listings` carries what earlier passes of this loop
/// learned about the queues' files.
pub fn feed_pass(
    spool: &Spool,
    run: &RunConfig,
    log: &mut ProcessLog,
    listings: &mut ListingCache,
) -> queue::Result<FeedReport> {
    let mut report = FeedReport::default();
    let in_dir = spool.queue_dir("in")?;
    let listing = listings.list(&in_dir)?;
    let feed_names = spool.feed_queue_names();
    let mut queues = Vec::with_capacity(feed_names.len());
    let mut queue_dirs = Vec::with_capacity(feed_names.len());
    for name in &feed_names {
        let dir = spool.queue_dir(name)?;
        let queued = listings.list(&dir)?;
        queue_dirs.push(dir);
        queues.push(QueueState {
            msgs: queued.entries.len(),
            bytes: queued.total_bytes(),
            free_at: read_free(spool, name),
            timing: run.timing(name),
        });
    }
    let now = crate::timefmt::now_epoch();
    let mut batch = MoveBatch::default();
    let mut moved = Vec::new();
    for listed in &listing.entries {
        let mut entry = match lock_entry(&in_dir, &listed.id)? {
            LockOutcome::Locked(entry) => entry,
            LockOutcome::Incomplete(mut entry) => {
                if older_than(entry.queued, run) {
                    let reason = "control file is empty or truncated (no \".\" line) and no process holds it";
                    quarantine(spool, &mut entry, "truncated-qf", reason, log, &mut report);
                } else {
                    report.skipped += 1;
                }
                continue;
            }
            LockOutcome::Busy => {
                report.skipped += 1;
                continue;
            }
            LockOutcome::Replaced | LockOutcome::Vanished => continue,
        };
        if let Err(problem) = entry.control() {
            quarantine(
                spool,
                &mut entry,
                "bad-qf",
                &problem.to_string(),
                log,
                &mut report,
            );
            continue;
        }
        // The listing's size: a df does not change under a complete qf, and one gone
        // since would be found by the work loop (`missing-df`). A listing without the
        // df proves nothing: a directory read while sendmail queues a message can
        // pass the df's place before the df is written and reach the qf's after the
        // qf is, so the df is looked for again under the lock.
        let df_bytes = match listed
            .df_bytes
            .map_or_else(|| entry.df_len(), |b| Ok(Some(b)))
        {
            Ok(bytes) => bytes,
            Err(e) => {
                log.line(&format!("Cannot move {}: {e}", entry.id));
                report.skipped += 1;
                continue;
            }
        };
        let Some(df_bytes) = df_bytes else {
            let reason = format!(
                "df{} is missing; sendmail would deliver an empty body",
                entry.id
            );
            quarantine(spool, &mut entry, "missing-df", &reason, log, &mut report);
            continue;
        };
        let bytes = entry.qf_len() + df_bytes;
        let Some(k) = pick_queue(run, &queues, bytes, now) else {
            let reason =
                format!("message of {bytes} bytes exceeds the size limit of every feed queue");
            quarantine(spool, &mut entry, "too-big", &reason, log, &mut report);
            continue;
        };
        match batch.move_entry(spool, &mut entry, &queue_dirs[k]) {
            Ok(()) => {
                queues[k].msgs += 1;
                queues[k].bytes += bytes;
                report.moved += 1;
                report.bytes += bytes;
                log.line(&format!("{} {bytes} -> q{}", entry.id, k + 1));
                moved.push(entry);
                if moved.len() >= SYNC_EVERY {
                    batch.sync()?;
                    moved.clear();
                    log.flush();
                }
            }
            Err(e) => {
                report.skipped += 1;
                log.line(&format!("Cannot move {}: {e}", entry.id));
            }
        }
    }
    // The moved entries stay locked until their moves are durable.
    batch.sync()?;
    drop(moved);
    log.flush();
    for orphan in &listing.orphan_dfs {
        match quarantine_orphan_df(spool, orphan, run.orphan_age()) {
            Ok(OrphanAction::Quarantined) => {
                report.errors += 1;
                log.line(&format!("Error, moving: {} (df without qf)", orphan.id));
            }
            Ok(OrphanAction::Kept(_)) => {}
            Err(e) => log.line(&format!("Cannot move orphan df{}: {e}", orphan.id)),
        }
    }
    Ok(report)
}

fn older_than(when: SystemTime, run: &RunConfig) -> bool {
    SystemTime::now()
        .duration_since(when)
        .is_ok_and(|age| age >= run.orphan_age())
}

/// Moves a broken entry to `error` with its reason and logs it.
pub(crate) fn quarantine(
    spool: &Spool,
    entry: &mut LockedEntry,
    name: &str,
    why: &str,
    log: &mut ProcessLog,
    report: &mut FeedReport,
) {
    let from = entry.dir.display().to_string();
    let text = format!("verdict: error\nname: {name}\nwhere: {from}\nwhy: {why}\n");
    match move_with_result(spool, entry, "error", Some(&text)) {
        Ok(()) => {
            report.errors += 1;
            log.line(&format!("Error, moving: {} ({why})", entry.id));
        }
        Err(e) => {
            report.skipped += 1;
            log.line(&format!("Cannot move {} to error: {e}", entry.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn least_load_wins_and_ties_go_to_the_lowest_queue() {
        let sizes = [2 * MB, 2 * MB, 2 * MB, 2 * MB, 0];
        assert_eq!(
            least_loaded_queue(&[0, 0, 0, 0, 0], &sizes, 4, 100),
            Some(0)
        );
        assert_eq!(
            least_loaded_queue(&[5, 3, 3, 9, 0], &sizes, 4, 100),
            Some(1)
        );
        assert_eq!(
            least_loaded_queue(&[5, 3, 3, 9, 0], &sizes, 4, 100),
            Some(1)
        );
    }

    #[test]
    fn big_messages_go_only_to_the_queues_above_nq() {
        let sizes = [2 * MB, 2 * MB, 2 * MB, 2 * MB, 0];
        assert_eq!(
            least_loaded_queue(&[9, 9, 9, 9, 99], &sizes, 4, 3 * MB),
            Some(4)
        );
        assert_eq!(
            least_loaded_queue(&[9, 9, 9, 9, 0], &sizes, 4, 2 * MB),
            Some(0),
            "a message at the limit fits the small queues, and q5 only takes bigger ones"
        );
    }

    #[test]
    fn limits_decide_and_a_message_no_queue_admits_gets_none() {
        let sizes = [1000, 5000, 0];
        assert_eq!(least_loaded_queue(&[0, 10, 10], &sizes, 2, 2000), Some(1));
        assert_eq!(least_loaded_queue(&[0, 0, 0], &sizes, 2, 6000), Some(2));
        assert_eq!(least_loaded_queue(&[0, 0], &[1000, 2000], 2, 6000), None);
        assert_eq!(
            least_loaded_queue(&[0, 0, 0], &[1000, 0, 9000], 2, 6000),
            Some(1),
            "an unlimited lower queue keeps the queues above nq from taking anything"
        );
    }

    #[test]
    fn nq_equal_to_the_queue_count_means_every_queue_takes_any_size() {
        let sizes = [0, 0, 0];
        assert_eq!(least_loaded_queue(&[7, 3, 5], &sizes, 3, 10 * MB), Some(1));
    }

    const NOW: f64 = 1_000_000.0;
    const SHAPE: LoopShape = LoopShape {
        maxpass: 5.0,
        max_batch: 256,
        loop_delay: 1.0,
    };

    fn state(msgs: usize, bytes: u64, free_in: Option<f64>) -> QueueState {
        QueueState {
            msgs,
            bytes,
            free_at: free_in.map(|secs| NOW + secs),
            timing: QueueTiming::default(),
        }
    }

    #[test]
    fn eta_ties_go_to_the_lowest_queue() {
        let sizes = [2 * MB, 2 * MB, 2 * MB, 2 * MB, 0];
        let queues = [state(0, 0, Some(0.5)); 5];
        assert_eq!(eta_queue(&queues, &sizes, 4, 100, &SHAPE, NOW), Some(0));
        let mut queues = [state(3, 9000, None); 5];
        queues[0] = state(4, 9000, None);
        assert_eq!(eta_queue(&queues, &sizes, 4, 100, &SHAPE, NOW), Some(1));
    }

    #[test]
    fn eta_prefers_the_queue_that_wakes_first_over_the_emptiest() {
        let sizes = [2 * MB, 2 * MB, 0];
        let queues = [
            state(0, 0, Some(0.9)),
            state(2, 100_000, Some(0.1)),
            state(0, 0, None),
        ];
        let loads: Vec<u64> = queues.iter().map(|q| q.bytes).collect();
        assert_eq!(least_loaded_queue(&loads, &sizes, 2, 5000), Some(0));
        assert_eq!(eta_queue(&queues, &sizes, 2, 5000, &SHAPE, NOW), Some(1));
    }

    #[test]
    fn eta_counts_messages_not_only_bytes() {
        // Default timing: 50 small messages (t0 each) outweigh one 1.9 MB message.
        let sizes = [2 * MB, 2 * MB];
        let queues = [
            state(50, 250_000, Some(0.2)),
            state(1, 1_900_000, Some(0.2)),
        ];
        let loads = [250_000, 1_900_000];
        assert_eq!(least_loaded_queue(&loads, &sizes, 2, 5000), Some(0));
        assert_eq!(eta_queue(&queues, &sizes, 2, 5000, &SHAPE, NOW), Some(1));
    }

    #[test]
    fn eta_keeps_the_size_limits_and_nq() {
        let sizes = [2 * MB, 2 * MB, 0];
        let queues = [
            state(0, 0, None),
            state(0, 0, None),
            state(500, 900 * MB, Some(60.0)),
        ];
        assert_eq!(eta_queue(&queues, &sizes, 2, 3 * MB, &SHAPE, NOW), Some(2));
        assert_eq!(eta_queue(&queues, &sizes, 2, MB, &SHAPE, NOW), Some(0));
        assert_eq!(
            eta_queue(&queues[..2], &sizes[..2], 2, 3 * MB, &SHAPE, NOW),
            None
        );
    }

    #[test]
    fn predicted_done_adds_a_pass_overhead_and_a_sleep_per_extra_batch() {
        let timing = QueueTiming {
            t00: 1.0,
            t0: 0.5,
            ts: 0.0,
        };
        let shape = LoopShape {
            maxpass: 5.5,
            max_batch: 256,
            loop_delay: 2.0,
        };
        let queue = |msgs, free_in: Option<f64>| QueueState {
            msgs,
            bytes: 0,
            free_at: free_in.map(|secs| NOW + secs),
            timing,
        };
        // Alone: one pass, 1 + 0.5 s after the queue is free.
        assert_eq!(
            predicted_done(&queue(0, Some(3.0)), &shape, NOW, 10),
            NOW + 4.5
        );
        // An idle queue with a free time in the past, or none, is ready now.
        assert_eq!(
            predicted_done(&queue(0, Some(-9.0)), &shape, NOW, 10),
            NOW + 1.5
        );
        // A pass under way since 0.5 s ago with 3 messages (1 + 1.5 s): it ends in 2 s,
        // then a 2 s sleep and a pass of 1 + 0.5 s for the new message.
        assert_eq!(
            predicted_done(&queue(3, Some(-0.5)), &shape, NOW, 10),
            NOW + 2.0 + 2.0 + 1.5
        );
        // One that should have ended long ago: its queued work counts from now.
        assert_eq!(
            predicted_done(&queue(3, Some(-600.0)), &shape, NOW, 10),
            NOW + 2.5 + 2.0 + 1.5
        );
        assert_eq!(predicted_done(&queue(0, None), &shape, NOW, 10), NOW + 1.5);
        // 10 messages = 5 s of work, 4.5 s per pass: two passes, two t00, one sleep.
        assert_eq!(
            predicted_done(&queue(9, None), &shape, NOW, 10),
            NOW + 2.0 + 5.0 + 2.0
        );
        // max_batch bounds a pass too: 20 messages in batches of 8 take three passes.
        let small = LoopShape {
            max_batch: 8,
            maxpass: 1e9,
            ..shape
        };
        assert_eq!(
            predicted_done(&queue(19, None), &small, NOW, 10),
            NOW + 3.0 + 10.0 + 4.0
        );
    }

    #[test]
    fn the_run_setting_chooses_the_policy() {
        let mut run = RunConfig {
            sizes: vec![2 * MB, 2 * MB],
            nq: 2,
            ..RunConfig::default()
        };
        let queues = [state(0, 0, Some(0.9)), state(1, 10, Some(0.05))];
        assert_eq!(pick_queue(&run, &queues, 100, NOW), Some(0));
        run.feed_policy = FeedPolicy::Eta;
        assert_eq!(pick_queue(&run, &queues, 100, NOW), Some(1));
    }
}
