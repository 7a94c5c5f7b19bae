//! One feed pass: take each message from `in`, oldest first, and move it to the feed queue
//! whose size limit admits it and which has the fewest bytes queued. Broken entries go to
//! `error` with a reason; entries the MTA holds are left for the next pass.

use std::time::SystemTime;

use crate::config::RunConfig;
use crate::log::ProcessLog;
use crate::queue::recover::{OrphanAction, quarantine_orphan_df};
use crate::queue::{self, LockOutcome, LockedEntry, Spool, list_dir, lock_entry, move_with_result};

/// Picks the feed queue (0-based) for a message of `bytes`, given the bytes queued in
/// each queue and each queue's size limit (0 = none). Queues up to `nq` take any message
/// within their limit; a queue above `nq` takes only messages bigger than every lower
/// limit. Among those that admit it, the least loaded wins, the lowest number on ties.
pub fn least_loaded_queue(loads: &[u64], sizes: &[u64], nq: usize, bytes: u64) -> Option<usize> {
    let admits = |k: usize| {
        let within_limit = sizes[k] == 0 || bytes <= sizes[k];
        let big_enough = k < nq || sizes[..k].iter().all(|&lower| lower != 0 && bytes > lower);
        within_limit && big_enough
    };
    (0..sizes.len().min(loads.len()))
        .filter(|&k| admits(k))
        .min_by_key(|&k| (loads[k], k))
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

/// Runs one feed pass over `in`.
pub fn feed_pass(
    spool: &Spool,
    run: &RunConfig,
    log: &mut ProcessLog,
) -> queue::Result<FeedReport> {
    let mut report = FeedReport::default();
    let in_dir = spool.queue_dir("in")?;
    let listing = list_dir(&in_dir)?;
    let feed_names = spool.feed_queue_names();
    let mut loads = Vec::with_capacity(feed_names.len());
    for name in &feed_names {
        loads.push(list_dir(&spool.queue_dir(name)?)?.total_bytes());
    }
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
        let Some(df_bytes) = entry.df_len()? else {
            let reason = format!(
                "df{} is missing; sendmail would deliver an empty body",
                entry.id
            );
            quarantine(spool, &mut entry, "missing-df", &reason, log, &mut report);
            continue;
        };
        let bytes = entry.qf_len() + df_bytes;
        let Some(k) = least_loaded_queue(&loads, &run.sizes, run.nq, bytes) else {
            let reason =
                format!("message of {bytes} bytes exceeds the size limit of every feed queue");
            quarantine(spool, &mut entry, "too-big", &reason, log, &mut report);
            continue;
        };
        match move_with_result(spool, &mut entry, &feed_names[k], None) {
            Ok(()) => {
                loads[k] += bytes;
                report.moved += 1;
                report.bytes += bytes;
                log.line(&format!("{} {bytes} -> q{}", entry.id, k + 1));
            }
            Err(e) => {
                report.skipped += 1;
                log.line(&format!("Cannot move {}: {e}", entry.id));
            }
        }
    }
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
}
