//! `rotate`, the cron job: moves every process log and every quarantine queue's entries
//! into a new period directory of the archive (format: `report::archive`), then writes
//! the period's statistics and HTML summary. Safe while SIE runs; loses nothing.
//!
//! Decisions:
//! - One period per run: `archive/<YYYY-MM-DD>` (local date), `.2`, `.3` ... for later
//!   runs of the same day. Two rotates never run at once (`sie/locks/lock.rotate`, a
//!   lock left by a dead pid is cleared).
//! - Logs: each `sie/logs/<name>.log` is renamed to `<name>.log.<period>` in the same
//!   directory; writers notice at their next line and start a new file (see `log`).
//!   rotate then takes the renamed file's flock exclusively once, which waits for a line
//!   being written and proves no later line can reach it, compresses it into
//!   `<period>/logs/<name>.log.gz`, verifies the copy and only then unlinks it. A
//!   renamed log left by a crash is finished by the next run, into its own period.
//! - Queues: `virus ext spam error delete release` are archived; `in`, `out`, the feed
//!   queues and `good` are never touched (mail on its way). Each entry is flocked as
//!   sendmail does (an entry locked elsewhere is skipped this run), appended with its
//!   result file, the part fsynced, read back and checked, and only then are the df,
//!   the qf and the result file unlinked and the directories fsynced. A df without its
//!   qf is left to start-up recovery.

pub mod chart;
pub mod summary;

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use chrono::Local;

use crate::lockfile::{Holder, LockError, QueueLockOutcome, try_lock_queue};
use crate::log::tail::spool_logs;
use crate::queue::durable::sync_dir;
use crate::queue::{self, LockOutcome, LockedEntry, QueueId, Spool, list_dir, lock_entry};
use crate::report::archive::{
    self, ARCHIVED_QUEUES, ArchiveError, ContentDigest, ENTRIES_PER_PART, MemberKind, PartWriter,
    archive_root, commit_part, for_each_member, is_period_name, period_order,
};

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Queue(#[from] queue::Error),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("another rotate is running (pid {0}, sie/locks/lock.rotate)")]
    AlreadyRunning(i32),
    #[error("{path}: archived copy differs from {source_path}; both kept")]
    LogConflict { path: PathBuf, source_path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RotateError + '_ {
    move |source| RotateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub type Result<T> = std::result::Result<T, RotateError>;

/// What one run did.
#[derive(Debug, Default)]
pub struct RotateReport {
    /// The period this run created.
    pub period: String,
    pub period_dir: PathBuf,
    /// Logs rotated into this period, by process name.
    pub logs: Vec<String>,
    /// (queue, entries archived) for queues that had entries.
    pub archived: Vec<(String, usize)>,
    /// `<queue>/<id>`: entries locked by someone else, left for the next run.
    pub skipped: Vec<String>,
    /// What was finished from an earlier, interrupted run, one sentence each.
    pub recovered: Vec<String>,
    pub summary: PathBuf,
}

/// Archives logs and quarantine queues into a new period and writes its reports.
pub fn rotate(spool: &Spool) -> Result<RotateReport> {
    spool.ensure_tree()?;
    let root = archive_root(spool);
    make_dir(&root)?;
    let holder = Holder {
        pid: std::process::id() as i32,
        name: "rotate".to_string(),
    };
    let _lock = match try_lock_queue(spool, "rotate", &holder)? {
        QueueLockOutcome::Taken(lock) => lock,
        QueueLockOutcome::Held(other) => return Err(RotateError::AlreadyRunning(other.pid)),
    };
    let mut report = RotateReport::default();
    let (touched, waiting) = recover(spool, &mut report)?;
    let (period, dir) = new_period(&root)?;
    report.period = period.clone();
    report.period_dir = dir.clone();
    report.logs = rotate_logs(spool, &period, &dir)?;
    for queue in ARCHIVED_QUEUES {
        let archived = archive_queue(spool, queue, &dir, &waiting, &mut report.skipped)?;
        if archived > 0 {
            report.archived.push((queue.to_string(), archived));
        }
    }
    for earlier in touched {
        summary::write_period_reports(spool, &earlier)?;
    }
    report.summary = summary::write_period_reports(spool, &period)?;
    Ok(report)
}

fn make_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))
}

/// Creates the first free period directory of today.
fn new_period(root: &Path) -> Result<(String, PathBuf)> {
    let date = Local::now().format("%Y-%m-%d").to_string();
    for seq in 1.. {
        let name = match seq {
            1 => date.clone(),
            n => format!("{date}.{n}"),
        };
        let dir = root.join(&name);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                sync_dir(root).map_err(io_err(root))?;
                return Ok((name, dir));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(&dir)(e)),
        }
    }
    unreachable!("period numbers are unbounded")
}

/// Renames every live log aside, waits out lines being written, then compresses each.
fn rotate_logs(spool: &Spool, period: &str, period_dir: &Path) -> Result<Vec<String>> {
    let logs_dir = spool.logs_dir();
    let live = spool_logs(spool).map_err(|e| RotateError::Io {
        path: e.path,
        source: e.source,
    })?;
    let mut renamed = Vec::new();
    for path in live {
        let Some(name) = log_name(&path) else {
            continue;
        };
        let aside = logs_dir.join(format!("{name}.log.{period}"));
        fs::rename(&path, &aside).map_err(io_err(&path))?;
        renamed.push((name, aside));
    }
    sync_dir(&logs_dir).map_err(io_err(&logs_dir))?;
    let mut names = Vec::new();
    for (name, aside) in renamed {
        finish_log(&aside, period_dir, &name)?;
        names.push(name);
    }
    sync_dir(&logs_dir).map_err(io_err(&logs_dir))?;
    Ok(names)
}

/// `feed1` for `.../feed1.log`.
fn log_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".log")?;
    (!stem.is_empty() && !stem.starts_with('.')).then(|| stem.to_string())
}

/// Drains writers of a renamed log, archives it verified, and unlinks it. When the
/// period already holds this log (a crash came after its copy), the copy must match.
fn finish_log(aside: &Path, period_dir: &Path, name: &str) -> Result<()> {
    let file = fs::File::open(aside).map_err(io_err(aside))?;
    // Every line that could still reach this file is written under a shared flock
    // taken before the rename; once this exclusive one is granted, none is left.
    file.lock().map_err(io_err(aside))?;
    file.unlock().map_err(io_err(aside))?;
    drop(file);
    let archived = period_dir.join("logs").join(format!("{name}.log.gz"));
    if archived.exists() {
        if archive::gz_digest(&archived)? != archive::file_digest(aside)? {
            return Err(RotateError::LogConflict {
                path: archived,
                source_path: aside.to_path_buf(),
            });
        }
    } else {
        archive::write_log_gz(aside, period_dir, name)?;
    }
    fs::remove_file(aside).map_err(io_err(aside))
}

/// Archives every entry of `queue` that can be locked, in parts; returns how many.
/// Entries still waiting in an earlier verified part (`waiting`, `<queue>/<id>`) are
/// skipped: they are archived already.
fn archive_queue(
    spool: &Spool,
    queue: &str,
    period_dir: &Path,
    waiting: &BTreeSet<String>,
    skipped: &mut Vec<String>,
) -> Result<usize> {
    let queue_dir = spool.queue_dir(queue)?;
    let listing = list_dir(&queue_dir)?;
    let mut archived = 0;
    let mut part = 0;
    let mut pending = listing.entries.iter().peekable();
    while pending.peek().is_some() {
        let mut locked = Vec::new();
        for entry in pending.by_ref() {
            let name = format!("{queue}/{}", entry.id);
            if waiting.contains(&name) {
                skipped.push(name);
                continue;
            }
            match lock_entry(&queue_dir, &entry.id)? {
                LockOutcome::Locked(held) | LockOutcome::Incomplete(held) => locked.push(held),
                LockOutcome::Busy => skipped.push(name),
                LockOutcome::Replaced | LockOutcome::Vanished => {}
            }
            if locked.len() == ENTRIES_PER_PART {
                break;
            }
        }
        if locked.is_empty() {
            break;
        }
        part += 1;
        archived += archive_part(spool, queue, period_dir, part, &locked)?;
    }
    Ok(archived)
}

/// Writes one verified part of locked entries, then removes them from the queue.
fn archive_part(
    spool: &Spool,
    queue: &str,
    period_dir: &Path,
    part: usize,
    locked: &[LockedEntry],
) -> Result<usize> {
    let results = spool.results_dir(queue);
    let mut writer = PartWriter::create(period_dir, queue, part)?;
    for entry in locked {
        let qf_path = entry.qf_path();
        let qf = match entry.qf_bytes().len() as u64 == entry.qf_len() {
            true => entry.qf_bytes().to_vec(),
            false => fs::read(&qf_path).map_err(io_err(&qf_path))?,
        };
        writer.append(&entry.id.qf_name(), qf.len() as u64, entry.queued, &qf[..])?;
        let df_path = entry.df_path();
        match fs::File::open(&df_path) {
            Ok(df) => {
                let meta = df.metadata().map_err(io_err(&df_path))?;
                let mtime = meta.modified().unwrap_or(entry.queued);
                writer.append(&entry.id.df_name(), meta.len(), mtime, df)?;
            }
            // Broken entries (in `error`) may lack their df; the qf alone is archived.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&df_path)(e)),
        }
        let result_path = results.join(entry.id.as_str());
        match fs::File::open(&result_path) {
            Ok(result) => {
                let meta = result.metadata().map_err(io_err(&result_path))?;
                let mtime = meta.modified().unwrap_or(entry.queued);
                writer.append(&format!("result/{}", entry.id), meta.len(), mtime, result)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&result_path)(e)),
        }
    }
    let verified = writer.finish()?;
    for entry in locked {
        remove_entry(entry, &results)?;
    }
    sync_removals(spool, queue)?;
    commit_part(&verified)?;
    Ok(locked.len())
}

/// Unlinks an archived entry, still locked: df first, so a crash never leaves a df
/// without its qf (which recovery would take for an orphan), then qf, then result.
fn remove_entry(entry: &LockedEntry, results: &Path) -> Result<()> {
    for path in [
        entry.df_path(),
        entry.qf_path(),
        results.join(entry.id.as_str()),
    ] {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    Ok(())
}

fn sync_removals(spool: &Spool, queue: &str) -> Result<()> {
    let queue_dir = spool.queue_dir(queue)?;
    sync_dir(&queue_dir).map_err(io_err(&queue_dir))?;
    let results = spool.results_dir(queue);
    if results.is_dir() {
        sync_dir(&results).map_err(io_err(&results))?;
    }
    Ok(())
}

/// Finishes what an interrupted run left: temp files are deleted (their entries are
/// still queued), verified parts get their entries removed and their final name,
/// renamed logs are archived. Returns the earlier periods whose reports must be
/// written again, and the entries (`<queue>/<id>`) of verified parts that could not
/// be finished because someone else holds them.
fn recover(spool: &Spool, report: &mut RotateReport) -> Result<(Vec<String>, BTreeSet<String>)> {
    let root = archive_root(spool);
    let mut touched = Vec::new();
    let mut waiting = BTreeSet::new();
    let mut periods: Vec<String> = Vec::new();
    for item in fs::read_dir(&root).map_err(io_err(&root))? {
        let name = item
            .map_err(io_err(&root))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if is_period_name(&name) {
            periods.push(name);
        }
    }
    periods.sort_by_key(|n| period_order(n));
    for period in &periods {
        let dir = root.join(period);
        let mut changed = false;
        for sub in [dir.clone(), dir.join("logs")] {
            let Ok(reader) = fs::read_dir(&sub) else {
                continue;
            };
            for item in reader {
                let path = item.map_err(io_err(&sub))?.path();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.starts_with('.') && name.ends_with(".tmp") {
                    fs::remove_file(&path).map_err(io_err(&path))?;
                    report
                        .recovered
                        .push(format!("removed unfinished {}", path.display()));
                } else if let Some(part) = name.strip_suffix(".verified") {
                    let Some((queue, _)) = archive::parse_part_name(part) else {
                        continue;
                    };
                    if finish_verified_part(spool, queue, &path, report, &mut waiting)? {
                        changed = true;
                    }
                }
            }
        }
        if changed {
            touched.push(period.clone());
        }
    }
    let logs_dir = spool.logs_dir();
    for item in fs::read_dir(&logs_dir).map_err(io_err(&logs_dir))? {
        let path = item.map_err(io_err(&logs_dir))?.path();
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some((name, period)) = file_name.split_once(".log.") else {
            continue;
        };
        if !is_period_name(period) || name.is_empty() || name.starts_with('.') {
            continue;
        }
        let dir = root.join(period);
        make_dir(&dir)?;
        finish_log(&path, &dir, name)?;
        report.recovered.push(format!(
            "archived {} left by an interrupted run",
            path.display()
        ));
        if !touched.iter().any(|p| p == period) {
            touched.push(period.to_string());
        }
    }
    sync_dir(&logs_dir).map_err(io_err(&logs_dir))?;
    Ok((touched, waiting))
}

/// Removes from `queue` the entries of a verified part that are still there with the
/// archived content, then gives the part its final name. An entry locked elsewhere
/// keeps the part `.verified` for the next run (and is added to `waiting`). Returns
/// whether the part was committed.
fn finish_verified_part(
    spool: &Spool,
    queue: &str,
    verified: &Path,
    report: &mut RotateReport,
    waiting: &mut BTreeSet<String>,
) -> Result<bool> {
    let queue_dir = spool.queue_dir(queue)?;
    let results = spool.results_dir(queue);
    // (id, qf bytes, df digest) of every archived entry.
    let mut archived: Vec<(QueueId, Vec<u8>, Option<ContentDigest>)> = Vec::new();
    for_each_member(verified, |member| {
        match member.kind {
            MemberKind::Qf => {
                let qf = member.read_to_vec(u64::MAX)?;
                archived.push((member.id.clone(), qf, None));
            }
            MemberKind::Df => {
                let digest = member.digest()?;
                if let Some(last) = archived.iter_mut().rev().find(|a| a.0 == member.id) {
                    last.2 = Some(digest);
                }
            }
            MemberKind::Result => {}
        }
        Ok(archive::Flow::Skip)
    })?;
    let mut busy = false;
    for (id, qf, df) in &archived {
        let held = match lock_entry(&queue_dir, id)? {
            LockOutcome::Locked(held) | LockOutcome::Incomplete(held) => held,
            LockOutcome::Busy | LockOutcome::Replaced => {
                waiting.insert(format!("{queue}/{id}"));
                busy = true;
                continue;
            }
            LockOutcome::Vanished => {
                remove_stale_result(&results, id)?;
                continue;
            }
        };
        let qf_now = fs::read(held.qf_path()).map_err(io_err(&held.qf_path()))?;
        let df_now = match held.df_len()? {
            Some(_) => Some(archive::file_digest(&held.df_path())?),
            None => None,
        };
        // A df already unlinked before the crash is fine; one that differs is not ours.
        let same = qf_now == *qf && (df_now.is_none() || df_now == *df);
        if same {
            remove_entry(&held, &results)?;
            report.recovered.push(format!(
                "removed {queue}/{id}, archived in {}",
                verified.display()
            ));
        } else {
            report.recovered.push(format!(
                "kept {queue}/{id}: differs from its copy in {}",
                verified.display()
            ));
        }
    }
    sync_removals(spool, queue)?;
    if busy {
        report.recovered.push(format!(
            "{} waits for entries locked elsewhere",
            verified.display()
        ));
        return Ok(false);
    }
    commit_part(verified)?;
    Ok(true)
}

/// The result file of an archived entry no longer queued (removed before a crash).
fn remove_stale_result(results: &Path, id: &QueueId) -> Result<()> {
    let path = results.join(id.as_str());
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::testutil::temp_spool;
    use crate::report::archive::{PartWriter, entries, periods};

    const QF: &str = "V8\nT1795303433\nS<a@b.test>\nRPFD:<c@d.test>\nHSubject: x\n.\n";

    fn queue_entry(spool: &Spool, queue: &str, id: &str) -> QueueId {
        let dir = spool.queue_dir(queue).unwrap();
        let id = QueueId::parse(id).unwrap();
        fs::write(dir.join(id.df_name()), format!("body of {id}\n")).unwrap();
        fs::write(dir.join(id.qf_name()), QF).unwrap();
        spool
            .write_result(queue, &id, &format!("verdict: {queue}\n"))
            .unwrap();
        id
    }

    /// Every archived id of `queue`, over all periods.
    fn archived_ids(spool: &Spool, queue: &str) -> Vec<String> {
        let mut ids = Vec::new();
        for period in periods(spool).unwrap() {
            for entry in entries(&period.path, queue).unwrap() {
                ids.push(entry.id.to_string());
            }
        }
        ids.sort();
        ids
    }

    #[test]
    fn entries_and_logs_move_into_a_new_period_each_run() {
        let (_dir, spool) = temp_spool(5);
        let a = queue_entry(&spool, "virus", "6ALNNrgA000001");
        queue_entry(&spool, "out", "6ALNNrgA000002");
        fs::write(spool.log_file("feed1"), "feed1: one\n").unwrap();
        let first = rotate(&spool).unwrap();
        assert_eq!(first.archived, [("virus".to_string(), 1)]);
        assert_eq!(first.logs, ["feed1"]);
        assert!(
            spool
                .queue_dir("virus")
                .unwrap()
                .read_dir()
                .unwrap()
                .next()
                .is_none()
        );
        assert!(!spool.results_dir("virus").join(a.as_str()).exists());
        assert!(
            spool
                .queue_dir("out")
                .unwrap()
                .join("qf6ALNNrgA000002")
                .exists()
        );
        let second = rotate(&spool).unwrap();
        assert_eq!(second.period, format!("{}.2", first.period));
        assert!(second.archived.is_empty() && second.logs.is_empty());
        assert_eq!(archived_ids(&spool, "virus"), ["6ALNNrgA000001"]);
        assert!(second.summary.exists());
    }

    #[test]
    fn an_entry_locked_elsewhere_is_left_for_the_next_run() {
        let (_dir, spool) = temp_spool(5);
        let id = queue_entry(&spool, "spam", "6ALNNrgA000003");
        let holder = fs::File::open(spool.queue_dir("spam").unwrap().join(id.qf_name())).unwrap();
        holder.lock().unwrap();
        let report = rotate(&spool).unwrap();
        assert_eq!(report.skipped, ["spam/6ALNNrgA000003"]);
        assert!(archived_ids(&spool, "spam").is_empty());
        holder.unlock().unwrap();
        let report = rotate(&spool).unwrap();
        assert!(report.skipped.is_empty());
        assert_eq!(archived_ids(&spool, "spam"), ["6ALNNrgA000003"]);
    }

    #[test]
    fn a_part_left_unfinished_by_a_crash_is_deleted_and_redone() {
        let (_dir, spool) = temp_spool(5);
        queue_entry(&spool, "virus", "6ALNNrgA000004");
        let old = archive_root(&spool).join("2026-11-20");
        fs::create_dir_all(&old).unwrap();
        fs::write(old.join(".virus.tar.gz.tmp"), b"half a part").unwrap();
        let report = rotate(&spool).unwrap();
        assert!(!old.join(".virus.tar.gz.tmp").exists());
        assert!(
            report.recovered[0].contains("removed unfinished"),
            "{report:?}"
        );
        assert_eq!(archived_ids(&spool, "virus"), ["6ALNNrgA000004"]);
    }

    #[test]
    fn removals_cut_short_by_a_crash_are_finished_without_duplicates() {
        let (_dir, spool) = temp_spool(5);
        let queue_dir = spool.queue_dir("virus").unwrap();
        let half = queue_entry(&spool, "virus", "6ALNNrgA000005");
        let whole = queue_entry(&spool, "virus", "6ALNNrgA000006");
        let old = archive_root(&spool).join("2026-11-20");
        fs::create_dir_all(&old).unwrap();
        let mut part = PartWriter::create(&old, "virus", 1).unwrap();
        let when = std::time::SystemTime::now();
        for id in [&half, &whole] {
            let df = fs::read(queue_dir.join(id.df_name())).unwrap();
            part.append(&id.qf_name(), QF.len() as u64, when, QF.as_bytes())
                .unwrap();
            part.append(&id.df_name(), df.len() as u64, when, &df[..])
                .unwrap();
        }
        let verified = part.finish().unwrap();
        // The crash came after the first entry's df was unlinked.
        fs::remove_file(queue_dir.join(half.df_name())).unwrap();
        let report = rotate(&spool).unwrap();
        assert!(!verified.exists() && old.join("virus.tar.gz").exists());
        assert!(report.archived.is_empty(), "nothing left to archive anew");
        assert_eq!(
            archived_ids(&spool, "virus"),
            ["6ALNNrgA000005", "6ALNNrgA000006"]
        );
        assert!(queue_dir.read_dir().unwrap().next().is_none());
        assert!(!spool.results_dir("virus").join(half.as_str()).exists());
        assert!(spool.stats_dir().join("2026-11-20.txt").exists());
    }

    #[test]
    fn a_log_renamed_before_a_crash_is_archived_in_its_own_period() {
        let (_dir, spool) = temp_spool(5);
        let aside = spool.logs_dir().join("feed2.log.2026-11-20");
        fs::write(&aside, "feed2: old line\n").unwrap();
        fs::write(spool.log_file("feed2"), "feed2: new line\n").unwrap();
        let report = rotate(&spool).unwrap();
        let old = archive_root(&spool).join("2026-11-20");
        assert_eq!(
            archive::gz_digest(&old.join("logs/feed2.log.gz"))
                .unwrap()
                .0,
            "feed2: old line\n".len() as u64
        );
        let new = report.period_dir.join("logs/feed2.log.gz");
        assert_eq!(
            archive::gz_digest(&new).unwrap().0,
            "feed2: new line\n".len() as u64
        );
        assert!(spool.logs_dir().read_dir().unwrap().next().is_none());
    }

    #[test]
    fn one_rotate_at_a_time_and_a_dead_holder_is_cleared() {
        let (_dir, spool) = temp_spool(5);
        let lock = spool.lock_file("rotate");
        fs::write(&lock, format!("{} rotate\n", std::process::id())).unwrap();
        assert!(matches!(
            rotate(&spool),
            Err(RotateError::AlreadyRunning(_))
        ));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        fs::write(&lock, format!("{dead} rotate\n")).unwrap();
        rotate(&spool).unwrap();
        assert!(!lock.exists(), "released after the run");
    }

    #[test]
    fn an_entry_of_an_unfinished_part_is_not_archived_twice() {
        let (_dir, spool) = temp_spool(5);
        let queue_dir = spool.queue_dir("virus").unwrap();
        let id = queue_entry(&spool, "virus", "6ALNNrgA000007");
        let old = archive_root(&spool).join("2026-11-20");
        fs::create_dir_all(&old).unwrap();
        let mut part = PartWriter::create(&old, "virus", 1).unwrap();
        let df = fs::read(queue_dir.join(id.df_name())).unwrap();
        let when = std::time::SystemTime::now();
        part.append(&id.qf_name(), QF.len() as u64, when, QF.as_bytes())
            .unwrap();
        part.append(&id.df_name(), df.len() as u64, when, &df[..])
            .unwrap();
        let verified = part.finish().unwrap();
        let holder = fs::File::open(queue_dir.join(id.qf_name())).unwrap();
        holder.lock().unwrap();
        let report = rotate(&spool).unwrap();
        assert!(verified.exists(), "kept until its entry can be removed");
        assert_eq!(report.skipped, ["virus/6ALNNrgA000007"]);
        holder.unlock().unwrap();
        rotate(&spool).unwrap();
        assert!(!verified.exists());
        assert_eq!(archived_ids(&spool, "virus"), ["6ALNNrgA000007"]);
        assert!(queue_dir.read_dir().unwrap().next().is_none());
    }

    #[test]
    fn lines_written_during_rotations_are_archived_exactly_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let (_dir, spool) = temp_spool(5);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (1..=4)
            .map(|k| {
                let path = spool.log_file(&format!("feed{k}"));
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut log = crate::log::ProcessLog::new(&format!("feed{k}"), path, false);
                    let mut written = 0;
                    while !stop.load(Ordering::Relaxed) && written < 20_000 {
                        log.line(&format!("line {written}"));
                        written += 1;
                        // Bursts with pauses: rotations then fall both inside a
                        // burst and between them.
                        if written % 100 == 0 {
                            std::thread::sleep(std::time::Duration::from_millis(2));
                        }
                    }
                    written
                })
            })
            .collect();
        for _ in 0..8 {
            rotate(&spool).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let written: Vec<usize> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        rotate(&spool).unwrap();
        let mut seen = std::collections::BTreeMap::new();
        let mut periods_with_lines = 0;
        for period in periods(&spool).unwrap() {
            periods_with_lines += usize::from(!period.logs.is_empty());
            for name in &period.logs {
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut archive::open_log(&period.path, name).unwrap(),
                    &mut text,
                )
                .unwrap();
                for line in text.lines() {
                    *seen.entry(line.to_string()).or_insert(0) += 1;
                }
            }
        }
        assert!(
            periods_with_lines >= 5,
            "rotations ran while the writers wrote"
        );
        assert_eq!(seen.len(), written.iter().sum::<usize>());
        assert!(seen.values().all(|&n| n == 1), "a line archived twice");
        for (k, count) in written.iter().enumerate() {
            assert!(*count > 0);
            for n in 0..*count {
                assert!(seen.contains_key(&format!("feed{}: line {n}", k + 1)));
            }
        }
        assert!(spool.logs_dir().read_dir().unwrap().next().is_none());
    }
}
