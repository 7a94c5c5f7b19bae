//! One work pass over a feed queue: take the queue lock, choose a batch oldest first
//! that fits `maxpass`, scan it in parallel, release the lock, then move each message to
//! its result queue with a result file, and log the `Stats:` line.

use std::time::{Duration, Instant, SystemTime};

use chrono::Local;
use rayon::prelude::*;

use crate::config::{QueueTiming, RunConfig};
use crate::inputs::assemble_message;
use crate::lockfile::{self, Holder, QueueLockOutcome, stale_lock_cleared};
use crate::log::{ProcessLog, StatsLine};
use crate::notify::Notice;
use crate::queue::recover::{OrphanAction, quarantine_orphan_df};
use crate::queue::{
    self, Entry, ListingCache, LockOutcome, LockedEntry, MoveBatch, Spool, lock_entry,
};
use crate::rules::exceptions::Envelope;
use crate::rules::{ActiveRules, Refresh, RuleSet};
use crate::scan::{ScanOptions, Verdict, VerdictKind, scan_message_with_rules};
use crate::timefmt::{now_epoch, pass_id};

#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Queue(#[from] queue::Error),
    #[error(transparent)]
    Lock(#[from] lockfile::LockError),
}

/// How many of the listed entries (oldest first) one pass takes: as many as keep the
/// predicted time `t00 + t0*msgs + ts*bytes` within `maxpass`, at least one, at most
/// `max_batch`.
pub fn plan_batch(entries: &[Entry], timing: QueueTiming, maxpass: f64, max_batch: usize) -> usize {
    let mut plan = BatchPlan::new(timing, maxpass, max_batch);
    entries
        .iter()
        .take_while(|entry| plan.take(entry.bytes()))
        .count()
}

/// The batch rule one message at a time, so a pass can pass over entries it cannot lock
/// and still fill its batch.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    timing: QueueTiming,
    maxpass: f64,
    max_batch: usize,
    msgs: usize,
    bytes: u64,
}

impl BatchPlan {
    pub fn new(timing: QueueTiming, maxpass: f64, max_batch: usize) -> BatchPlan {
        BatchPlan {
            timing,
            maxpass,
            max_batch,
            msgs: 0,
            bytes: 0,
        }
    }

    /// Whether a message of `bytes` still fits: the first always does.
    pub fn fits(&self, bytes: u64) -> bool {
        self.msgs < self.max_batch
            && (self.msgs == 0
                || self.timing.predict(self.msgs + 1, self.bytes + bytes) <= self.maxpass)
    }

    /// Counts a message of `bytes` in when it fits; says whether it did.
    pub fn take(&mut self, bytes: u64) -> bool {
        let fits = self.fits(bytes);
        if fits {
            self.msgs += 1;
            self.bytes += bytes;
        }
        fits
    }

    /// Messages and bytes taken so far.
    pub fn taken(&self) -> (usize, u64) {
        (self.msgs, self.bytes)
    }
}

/// How a pass ended.
#[derive(Debug)]
pub enum PassEnd {
    /// The pass's statistics, and a notice for each message it quarantined (moved
    /// durably by then), for the notifications.
    Finished(StatsLine, Vec<Notice>),
    /// The queue was empty: nothing was logged, so idle queues keep their logs short.
    Idle,
    /// A stop was requested while waiting for the queue lock.
    Stopped,
}

/// What a work loop carries from one pass to the next.
#[derive(Debug, Default)]
pub struct WorkState {
    /// The definitions in use, reloaded when a new set is installed.
    pub rules: ActiveRules,
    /// What earlier listings learned about the queue's files.
    pub listings: ListingCache,
}

/// Runs one pass over `queue`. `should_stop` is polled while the queue lock is held by
/// someone else, so a stop request is not held up by an admin's `lock`.
pub fn work_pass(
    spool: &Spool,
    queue: &str,
    run: &RunConfig,
    log: &mut ProcessLog,
    pass: u64,
    state: &mut WorkState,
    should_stop: &dyn Fn() -> bool,
) -> Result<PassEnd, WorkError> {
    let WorkState { rules, listings } = state;
    let started = Instant::now();
    let started_at = Local::now();
    let holder = Holder {
        pid: std::process::id() as i32,
        name: format!("sie-work {queue}"),
    };
    let mut waiting_logged = false;
    let queue_lock = loop {
        match lockfile::try_lock_queue(spool, queue, &holder)? {
            QueueLockOutcome::Taken(lock) => break lock,
            QueueLockOutcome::Held(other) => {
                if !waiting_logged {
                    log.line(&format!(
                        "Waiting for lock.{queue} held by pid {} ({})",
                        other.pid, other.name
                    ));
                    // Seen now, not when the wait is over.
                    log.flush();
                    waiting_logged = true;
                }
                if should_stop() {
                    return Ok(PassEnd::Stopped);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    // Definitions change only while every work queue is locked, so a set loaded
    // here stays whole for the scan.
    match rules.refresh(spool) {
        Refresh::Unchanged => {}
        Refresh::Loaded { from, problems } => log.line(&format!(
            "Loaded definitions from {} ({problems} lines skipped)",
            from.display()
        )),
        Refresh::Failed { from, error } => log.line(&format!(
            "Keeping the loaded definitions; {} failed to load: {error}",
            from.display()
        )),
    }
    let rule_set = rules.rules();
    if let Some(stale) = &queue_lock.cleared_stale {
        log.line(&stale_lock_cleared(queue, stale));
    }
    let lock_secs = started.elapsed().as_secs_f64();
    let dir = spool.queue_dir(queue)?;
    let listing = listings.list(&dir)?;
    if listing.entries.is_empty() && listing.orphan_dfs.is_empty() {
        return Ok(PassEnd::Idle);
    }
    log.dated(&format!("Started pass {}.", pass_id(started_at, pass)));
    for orphan in &listing.orphan_dfs {
        match quarantine_orphan_df(spool, orphan, run.orphan_age()) {
            Ok(OrphanAction::Quarantined) => {
                log.line(&format!("Error, moving: {} (df without qf)", orphan.id))
            }
            Ok(OrphanAction::Kept(_)) => {}
            Err(e) => log.line(&format!("Cannot move orphan df{}: {e}", orphan.id)),
        }
    }
    let timing = run.timing(queue);
    // Oldest first; an entry someone else holds (the feed until its moves are durable,
    // or the MTA) is passed over, and the next one fills its place in the batch.
    let mut plan = BatchPlan::new(timing, run.maxpass, run.max_batch);
    let mut locked: Vec<LockedEntry> = Vec::new();
    let mut broken: Vec<(LockedEntry, Verdict)> = Vec::new();
    for listed in &listing.entries {
        if !plan.fits(listed.bytes()) {
            break;
        }
        match lock_entry(&dir, &listed.id)? {
            LockOutcome::Locked(entry) => {
                plan.take(listed.bytes());
                locked.push(entry);
            }
            LockOutcome::Incomplete(entry) => {
                let age = SystemTime::now()
                    .duration_since(entry.queued)
                    .unwrap_or_default();
                if age >= run.orphan_age() {
                    plan.take(listed.bytes());
                    let verdict = error_verdict(
                        "truncated-qf",
                        "control file is empty or truncated (no \".\" line)",
                    );
                    broken.push((entry, verdict));
                }
            }
            LockOutcome::Busy | LockOutcome::Replaced | LockOutcome::Vanished => {}
        }
    }
    // While the pass runs, free.<queue> says when it should end by the fitted timing,
    // so the feed's eta policy sees a busy queue as busy.
    let (batch, batch_bytes) = plan.taken();
    let predicted_end = now_epoch() + timing.predict(batch, batch_bytes) + run.loop_delay;
    lockfile::write_free(spool, queue, predicted_end)?;
    let options = run.scan_options(queue);
    let cpu_before = cpu_seconds();
    let verdicts: Vec<(Verdict, u64)> = locked
        .par_iter()
        .map(|entry| scan_entry(entry, &options, &rule_set))
        .collect();
    let vf = cpu_seconds() - cpu_before;
    drop(queue_lock);

    let mut stats = StatsLine {
        lock: lock_secs,
        vf,
        ..StatsLine::default()
    };
    let judged: Vec<(LockedEntry, (Verdict, u64))> = locked
        .into_iter()
        .zip(verdicts)
        .chain(broken.into_iter().map(|(entry, verdict)| {
            let bytes = entry.qf_len();
            (entry, (verdict, bytes))
        }))
        .collect();
    let written = write_result_files(spool, &judged, run);
    let mut batch = MoveBatch::default();
    let mut moved = Vec::new();
    let mut notices = Vec::new();
    for ((mut entry, (verdict, bytes)), written) in judged.into_iter().zip(written) {
        stats.msgs += 1;
        stats.bytes += bytes;
        match verdict.kind {
            VerdictKind::Clean => match verdict.pardoned_kind() {
                Some(VerdictKind::Virus) => stats.vir_ex += 1,
                Some(VerdictKind::Ext) => stats.ext_ex += 1,
                Some(_) => stats.spam_ex += 1,
                None => stats.clean += 1,
            },
            VerdictKind::Virus => stats.vir += 1,
            VerdictKind::Ext => stats.ext += 1,
            VerdictKind::Spam => stats.spam += 1,
            VerdictKind::Unscannable | VerdictKind::Error => {}
        }
        if let Some(queue) = deliver(spool, &mut batch, &mut entry, &verdict, written, run, log)
            && let Some(notice) =
                Notice::new(&entry.id, entry.control().ok().as_ref(), &verdict, &queue)
        {
            notices.push(notice);
        }
        moved.push(entry);
    }
    // The entries stay locked until their moves are durable.
    batch.sync()?;
    drop(moved);
    stats.vs = started.elapsed().as_secs_f64();
    log.line(&stats.to_string());
    log.dated("Finished pass.");
    Ok(PassEnd::Finished(stats, notices))
}

/// The queue a verdict sends its message to.
fn result_queue<'a>(verdict: &Verdict, run: &'a RunConfig) -> &'a str {
    match verdict.kind {
        VerdictKind::Clean if run.good_queue => "good",
        VerdictKind::Unscannable => run.unscannable_queue.as_str(),
        kind => kind.queue(),
    }
}

/// Writes the result file of every judged entry that is not clean, before any of them
/// moves, with one fsync per results directory. The files are durable before the first
/// move, so a crash in between leaves entries where they were, to be judged again, never
/// a quarantined message without its reason. One result per entry, in order.
fn write_result_files(
    spool: &Spool,
    judged: &[(LockedEntry, (Verdict, u64))],
    run: &RunConfig,
) -> Vec<queue::Result<()>> {
    let texts: Vec<Option<(&str, String)>> = judged
        .iter()
        .map(|(entry, (verdict, _))| {
            (verdict.kind != VerdictKind::Clean).then(|| {
                (
                    result_queue(verdict, run),
                    verdict.result_text(entry.id.as_str()),
                )
            })
        })
        .collect();
    let wanted: Vec<(&str, &queue::QueueId, &str)> = judged
        .iter()
        .zip(&texts)
        .filter_map(|((entry, _), text)| {
            let (queue, text) = text.as_ref()?;
            Some((*queue, &entry.id, text.as_str()))
        })
        .collect();
    let mut outcomes = spool.write_results(&wanted).into_iter();
    texts
        .iter()
        .map(|text| match text {
            Some(_) => outcomes.next().unwrap_or(Ok(())),
            None => Ok(()),
        })
        .collect()
}

/// Moves a judged entry to its result queue, its result file already `written`; if that
/// queue already holds the id, the entry goes to `error` instead so it does not block the
/// feed queue. Returns the queue it went to, `None` when it could not be moved.
fn deliver(
    spool: &Spool,
    batch: &mut MoveBatch,
    entry: &mut LockedEntry,
    verdict: &Verdict,
    written: queue::Result<()>,
    run: &RunConfig,
    log: &mut ProcessLog,
) -> Option<String> {
    let queue = result_queue(verdict, run);
    let label = label(verdict.kind);
    match written.and_then(|()| batch.move_with_result(spool, entry, queue, None)) {
        Ok(()) if verdict.kind == VerdictKind::Clean => {
            log.line(&format!("{label}, moving: {}", entry.id));
            Some(queue.to_string())
        }
        Ok(()) => {
            log.line(&format!(
                "{label}, moving: {} ({}: {})",
                entry.id, verdict.name, verdict.reason
            ));
            Some(queue.to_string())
        }
        Err(queue::Error::Exists { .. }) if queue != "error" => {
            let why = format!("{queue} already holds an entry with id {}", entry.id);
            let text = format!("verdict: error\nname: duplicate-id\nwhere: {queue}\nwhy: {why}\n");
            match batch.move_with_result(spool, entry, "error", Some(&text)) {
                Ok(()) => {
                    log.line(&format!("Error, moving: {} ({why})", entry.id));
                    Some("error".to_string())
                }
                Err(e) => {
                    log.line(&format!("Cannot move {}: {e}", entry.id));
                    None
                }
            }
        }
        Err(e) => {
            log.line(&format!("Cannot move {}: {e}", entry.id));
            None
        }
    }
}

fn label(kind: VerdictKind) -> &'static str {
    match kind {
        VerdictKind::Clean => "Clean",
        VerdictKind::Virus => "Virus",
        VerdictKind::Ext => "Ext",
        VerdictKind::Spam => "Spam",
        VerdictKind::Unscannable => "Unscannable",
        VerdictKind::Error => "Error",
    }
}

fn error_verdict(name: &str, reason: &str) -> Verdict {
    Verdict::new(VerdictKind::Error, name, "", reason)
}

/// Re-reads and scans one locked entry; any problem with the entry is an error verdict.
/// Returns the verdict and the entry's size in bytes.
fn scan_entry(entry: &LockedEntry, options: &ScanOptions, rules: &RuleSet) -> (Verdict, u64) {
    let control = match entry.control() {
        Ok(control) => control,
        Err(e) => return (error_verdict("bad-qf", &e.to_string()), entry.qf_len()),
    };
    let df_path = entry.df_path();
    match assemble_message(&control, &df_path) {
        Ok((message, df_bytes)) => {
            let sender = control.sender().unwrap_or_default();
            let recipients = control.recipients();
            let envelope = Envelope {
                sender: &sender,
                recipients: &recipients,
            };
            let verdict = scan_message_with_rules(&message, options, rules, &envelope);
            (verdict, entry.qf_len() + df_bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            error_verdict(
                "missing-df",
                &format!(
                    "df{} is missing; sendmail would deliver an empty body",
                    entry.id
                ),
            ),
            entry.qf_len(),
        ),
        Err(e) => (
            error_verdict("unreadable-df", &format!("{}: {e}", df_path.display())),
            entry.qf_len(),
        ),
    }
}

/// CPU seconds used by this process so far, all threads.
fn cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|usage| {
            let user = usage.user_time();
            let system = usage.system_time();
            (user.tv_sec() + system.tv_sec()) as f64
                + (user.tv_usec() + system.tv_usec()) as f64 / 1e6
        })
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueueId;
    use std::path::PathBuf;

    fn entries(sizes: &[u64]) -> Vec<Entry> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &bytes)| Entry {
                id: QueueId::parse(&format!("ID{i:012}")).unwrap(),
                dir: PathBuf::from("/nonexistent"),
                qf_bytes: 0,
                df_bytes: Some(bytes),
                queued: SystemTime::UNIX_EPOCH,
            })
            .collect()
    }

    const TIMING: QueueTiming = QueueTiming {
        t00: 1.0,
        t0: 0.5,
        ts: 0.001,
    };

    #[test]
    fn batch_stops_before_maxpass() {
        // 1 + 0.5n + 0.001*bytes: 3 messages of 1000 bytes = 1 + 1.5 + 3 = 5.5
        let list = entries(&[1000; 10]);
        assert_eq!(plan_batch(&list, TIMING, 5.5, 100), 3);
        assert_eq!(plan_batch(&list, TIMING, 5.49, 100), 2);
    }

    #[test]
    fn batch_takes_at_least_one_and_at_most_max_batch() {
        assert_eq!(plan_batch(&entries(&[10_000_000]), TIMING, 1.0, 100), 1);
        assert_eq!(plan_batch(&entries(&[1; 50]), TIMING, 1e9, 20), 20);
        assert_eq!(plan_batch(&[], TIMING, 10.0, 20), 0);
    }

    #[test]
    fn a_big_message_ends_the_batch_even_if_small_ones_follow() {
        let list = entries(&[1000, 100_000, 10, 10]);
        assert_eq!(plan_batch(&list, TIMING, 10.0, 100), 1);
    }

    #[test]
    fn a_pass_passes_over_held_entries_and_still_fills_its_batch() {
        let (_dir, spool) = crate::queue::testutil::temp_spool(1);
        let feed1 = spool.queue_dir("feed1").unwrap();
        let ids = [
            "ID0000000001",
            "ID0000000002",
            "ID0000000003",
            "ID0000000004",
        ];
        for (age, id) in ids.iter().enumerate() {
            let qf = feed1.join(format!("qf{id}"));
            std::fs::write(&qf, b"V8\nS<a@example.com>\nRPFD:<b@example.com>\n.\n").unwrap();
            std::fs::write(feed1.join(format!("df{id}")), b"hello\n").unwrap();
            let when = SystemTime::now() - Duration::from_secs(100 - age as u64);
            std::fs::File::options()
                .write(true)
                .open(&qf)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        // The oldest entry is held, as the feed holds a moved entry until its move is
        // durable.
        let held = std::fs::File::options()
            .read(true)
            .write(true)
            .open(feed1.join(format!("qf{}", ids[0])))
            .unwrap();
        held.try_lock().unwrap();
        let run = RunConfig {
            max_batch: 2,
            ..RunConfig::default()
        };
        let mut log = ProcessLog::new("feed1", spool.log_file("feed1"), false);
        let mut state = WorkState::default();
        let end = work_pass(&spool, "feed1", &run, &mut log, 1, &mut state, &|| false).unwrap();
        let PassEnd::Finished(stats, _) = end else {
            panic!("{end:?}");
        };
        assert_eq!(stats.msgs, 2);
        let out = spool.queue_dir("out").unwrap();
        assert!(out.join(format!("qf{}", ids[1])).exists());
        assert!(out.join(format!("qf{}", ids[2])).exists());
        assert!(feed1.join(format!("qf{}", ids[0])).exists());
        assert!(feed1.join(format!("qf{}", ids[3])).exists());
    }
}
