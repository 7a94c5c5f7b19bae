//! SIE's own control files: `sie/locks/lock.<q>` (a work queue is locked while it
//! scans and while an admin or `updatevdl` holds it), `stop.<process>`, `free.<q>`, and
//! `sie/pids/<process>.pid`. A lock file records its holder's pid so a dead holder's lock
//! is recognised as stale and cleared.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::queue::{Spool, durable};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0:?} is not one of: {1}")]
    UnknownName(String, String),
    #[error("{process} is already running as pid {pid} ({path})")]
    AlreadyRunning {
        process: String,
        pid: i32,
        path: PathBuf,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LockError + '_ {
    move |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub type Result<T> = std::result::Result<T, LockError>;

/// Who holds a queue lock, as recorded in the lock file (`<pid> <holder>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// 0 for a lock taken by the `lock` command, which lasts until `unlock`.
    pub pid: i32,
    pub name: String,
}

impl Holder {
    fn parse(text: &str) -> Holder {
        let text = text.trim();
        let (pid, name) = text.split_once(' ').unwrap_or((text, ""));
        Holder {
            pid: pid.parse().unwrap_or(0),
            name: name.to_string(),
        }
    }

    /// A process holder whose process no longer exists.
    pub fn is_stale(&self) -> bool {
        self.pid > 0 && !process_alive(self.pid)
    }
}

/// True when a process with this pid exists (EPERM still means it exists). Pids of 0
/// or less name process groups, not processes, and count as not alive.
pub fn process_alive(pid: i32) -> bool {
    pid > 0 && !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

/// What `try_lock_queue` found.
#[derive(Debug)]
pub enum QueueLockOutcome {
    Taken(QueueLock),
    /// Held by a live process or an admin.
    Held(Holder),
}

/// A held queue lock; dropping it removes the lock file.
#[derive(Debug)]
pub struct QueueLock {
    path: PathBuf,
    /// A stale lock that was cleared to take this one, for the log.
    pub cleared_stale: Option<Holder>,
}

impl Drop for QueueLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl QueueLock {
    /// Keeps the lock file after this value is gone (the `lock` command's locks).
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

/// Takes `lock.<queue>` for `holder` if it is free or its holder is dead.
pub fn try_lock_queue(spool: &Spool, queue: &str, holder: &Holder) -> Result<QueueLockOutcome> {
    let path = spool.lock_file(queue);
    let mut cleared_stale = None;
    // The holder is written to a private file first and linked into place, so the lock
    // file never exists without its holder: an empty lock left by a process killed
    // between create and write would look like an admin lock and never be cleared.
    let draft = spool
        .locks_dir()
        .join(format!(".lock.{queue}.{}", std::process::id()));
    let _ = fs::remove_file(&draft);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&draft)
        .map_err(io_err(&draft))?;
    // No fsync: a lock file lost in a crash frees the queue, and one that survives
    // names a dead pid and is cleared as stale.
    writeln!(file, "{} {}", holder.pid, holder.name).map_err(io_err(&draft))?;
    drop(file);
    let outcome = loop {
        match fs::hard_link(&draft, &path) {
            Ok(()) => {
                break QueueLockOutcome::Taken(QueueLock {
                    path,
                    cleared_stale,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                let _ = fs::remove_file(&draft);
                return Err(io_err(&path)(e));
            }
        }
        let current = match fs::read_to_string(&path) {
            Ok(text) => Holder::parse(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                let _ = fs::remove_file(&draft);
                return Err(io_err(&path)(e));
            }
        };
        if !current.is_stale() || cleared_stale.is_some() {
            break QueueLockOutcome::Held(current);
        }
        match fs::remove_file(&path) {
            Ok(()) => cleared_stale = Some(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                let _ = fs::remove_file(&draft);
                return Err(io_err(&path)(e));
            }
        }
    };
    fs::remove_file(&draft).map_err(io_err(&draft))?;
    Ok(outcome)
}

/// Removes `lock.<queue>` whoever holds it (the `unlock` command). Returns the holder.
pub fn unlock_queue(spool: &Spool, queue: &str) -> Result<Option<Holder>> {
    let path = spool.lock_file(queue);
    let holder = match fs::read_to_string(&path) {
        Ok(text) => Holder::parse(&text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    match fs::remove_file(&path) {
        Ok(()) => Ok(Some(holder)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// The holder of `lock.<queue>`, if it is locked.
pub fn queue_lock_holder(spool: &Spool, queue: &str) -> Result<Option<Holder>> {
    let path = spool.lock_file(queue);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(Holder::parse(&text))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// The names an admin asked for, with `all` standing for every name in `known`; a name
/// that is not known is refused.
pub fn expand_names(requested: &[String], known: &[String]) -> Result<Vec<String>> {
    if requested.iter().any(|name| name == "all") {
        return Ok(known.to_vec());
    }
    for name in requested {
        if !known.contains(name) {
            return Err(LockError::UnknownName(name.clone(), known.join(" ")));
        }
    }
    Ok(requested.to_vec())
}

/// The log line for a stale lock cleared from `queue`.
pub fn stale_lock_cleared(queue: &str, dead: &Holder) -> String {
    format!(
        "Cleared stale lock.{queue} of dead pid {} ({})",
        dead.pid, dead.name
    )
}

/// A queue `lock_queues` holds for its caller.
#[derive(Debug, PartialEq, Eq)]
pub struct LockedQueue {
    pub queue: String,
    /// The admin who had locked the queue already (that lock is left as it was), or
    /// `None` when this call took the lock.
    pub earlier_admin: Option<Holder>,
}

/// What `lock_queues` achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum LockQueuesOutcome {
    /// Every queue is locked.
    Locked(Vec<LockedQueue>),
    /// A queue was still held by a running pass at the deadline; the locks this call
    /// took were released again, so nothing is left half locked.
    TimedOut { queue: String, holder: Holder },
    /// `interrupted` was raised while waiting; the locks this call took were released.
    Interrupted,
}

/// How `lock_queues` waits and whom it tells about stale locks it clears.
pub struct LockWait<'a> {
    /// How long to wait in all for running passes to release their queues.
    pub timeout: Duration,
    /// Raised by a signal handler: stop waiting and release what was taken.
    pub interrupted: &'a AtomicBool,
    /// Told `(queue, dead holder)` for every stale lock cleared on the way, for the log.
    pub on_stale: &'a mut dyn FnMut(&str, &Holder),
}

static NEVER_INTERRUPTED: AtomicBool = AtomicBool::new(false);

impl<'a> LockWait<'a> {
    /// A wait that only the timeout ends (for callers without a signal handler).
    pub fn uninterrupted(timeout: Duration, on_stale: &'a mut dyn FnMut(&str, &Holder)) -> Self {
        LockWait {
            timeout,
            interrupted: &NEVER_INTERRUPTED,
            on_stale,
        }
    }
}

/// Takes the lock (`holder`; pid 0 for an admin lock that outlasts the caller) of every
/// queue, waiting for running passes to release them. Locks of dead processes are
/// cleared and reported; a queue an admin locked already counts as locked.
pub fn lock_queues(
    spool: &Spool,
    queues: &[String],
    holder: &Holder,
    wait: LockWait<'_>,
) -> Result<LockQueuesOutcome> {
    let deadline = Instant::now() + wait.timeout;
    let mut locked: Vec<LockedQueue> = Vec::new();
    let release = |locked: &[LockedQueue]| -> Result<()> {
        for taken in locked.iter().filter(|q| q.earlier_admin.is_none()) {
            unlock_queue(spool, &taken.queue)?;
        }
        Ok(())
    };
    for queue in queues {
        loop {
            match try_lock_queue(spool, queue, holder)? {
                QueueLockOutcome::Taken(lock) => {
                    if let Some(stale) = &lock.cleared_stale {
                        (wait.on_stale)(queue, stale);
                    }
                    lock.keep();
                    locked.push(LockedQueue {
                        queue: queue.clone(),
                        earlier_admin: None,
                    });
                }
                QueueLockOutcome::Held(other) if other.pid == 0 => {
                    locked.push(LockedQueue {
                        queue: queue.clone(),
                        earlier_admin: Some(other),
                    });
                }
                QueueLockOutcome::Held(_) if wait.interrupted.load(Ordering::SeqCst) => {
                    release(&locked)?;
                    return Ok(LockQueuesOutcome::Interrupted);
                }
                QueueLockOutcome::Held(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                QueueLockOutcome::Held(other) => {
                    release(&locked)?;
                    return Ok(LockQueuesOutcome::TimedOut {
                        queue: queue.clone(),
                        holder: other,
                    });
                }
            }
            break;
        }
    }
    Ok(LockQueuesOutcome::Locked(locked))
}

/// Waits up to `timeout` until none of `processes` runs (pid file gone or naming a dead
/// process); returns those still running.
pub fn wait_stopped(spool: &Spool, processes: &[String], timeout: Duration) -> Vec<String> {
    let running =
        |process: &&String| read_pid_file(&spool.pid_file(process)).is_some_and(process_alive);
    let deadline = Instant::now() + timeout;
    while processes.iter().any(|p| running(&p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    processes.iter().filter(running).cloned().collect()
}

/// Asks `process` to exit after its current pass.
pub fn request_stop(spool: &Spool, process: &str) -> Result<()> {
    let path = spool.stop_file(process);
    durable::write_atomic(&path, b"stop\n", 0o600).map_err(io_err(&path))
}

pub fn stop_requested(spool: &Spool, process: &str) -> bool {
    spool.stop_file(process).exists()
}

/// Removes a stop file; true when there was one.
pub fn clear_stop(spool: &Spool, process: &str) -> Result<bool> {
    let path = spool.stop_file(process);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Records when a work queue will next be ready (epoch seconds with milliseconds).
pub fn write_free(spool: &Spool, queue: &str, epoch_secs: f64) -> Result<()> {
    let path = spool.free_file(queue);
    durable::replace_atomic(&path, format!("{epoch_secs:.3}\n").as_bytes(), 0o644)
        .map_err(io_err(&path))
}

pub fn read_free(spool: &Spool, queue: &str) -> Option<f64> {
    fs::read_to_string(spool.free_file(queue))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The pid file of a running process; removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Writes `sie/pids/<process>.pid`, refusing when a live process already owns it.
pub fn claim_pid_file(spool: &Spool, process: &str) -> Result<PidFile> {
    let path = spool.pid_file(process);
    if let Some(pid) = read_pid_file(&path)
        && pid != std::process::id() as i32
        && process_alive(pid)
    {
        return Err(LockError::AlreadyRunning {
            process: process.to_string(),
            pid,
            path,
        });
    }
    let text = format!("{}\n", std::process::id());
    durable::write_atomic(&path, text.as_bytes(), 0o644).map_err(io_err(&path))?;
    Ok(PidFile { path })
}

/// The pid in a pid file, if it has one.
pub fn read_pid_file(path: &Path) -> Option<i32> {
    fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::testutil::temp_spool;

    fn me() -> Holder {
        Holder {
            pid: std::process::id() as i32,
            name: "test".into(),
        }
    }

    macro_rules! quick_wait {
        () => {
            LockWait::uninterrupted(Duration::from_millis(200), &mut |_: &str, _: &Holder| {})
        };
    }

    #[test]
    fn a_queue_lock_excludes_and_is_removed_on_drop() {
        let (_dir, spool) = temp_spool(2);
        let QueueLockOutcome::Taken(lock) = try_lock_queue(&spool, "feed1", &me()).unwrap() else {
            panic!("free lock must be taken");
        };
        let QueueLockOutcome::Held(holder) = try_lock_queue(&spool, "feed1", &me()).unwrap() else {
            panic!("held lock must not be taken twice");
        };
        assert_eq!(holder, me());
        drop(lock);
        assert!(matches!(
            try_lock_queue(&spool, "feed1", &me()).unwrap(),
            QueueLockOutcome::Taken(_)
        ));
    }

    #[test]
    fn a_dead_holders_lock_is_cleared_and_an_admin_lock_is_not() {
        let (_dir, spool) = temp_spool(2);
        let dead = dead_pid();
        fs::write(spool.lock_file("feed1"), format!("{dead} sie-work\n")).unwrap();
        let QueueLockOutcome::Taken(lock) = try_lock_queue(&spool, "feed1", &me()).unwrap() else {
            panic!("stale lock must be cleared");
        };
        assert_eq!(lock.cleared_stale.as_ref().map(|h| h.pid), Some(dead));
        fs::write(spool.lock_file("feed2"), "0 admin\n").unwrap();
        assert!(matches!(
            try_lock_queue(&spool, "feed2", &me()).unwrap(),
            QueueLockOutcome::Held(Holder { pid: 0, .. })
        ));
        assert_eq!(
            unlock_queue(&spool, "feed2").unwrap().unwrap().name,
            "admin"
        );
        assert!(queue_lock_holder(&spool, "feed2").unwrap().is_none());
    }

    #[test]
    fn lock_queues_releases_what_it_took_when_one_queue_stays_busy() {
        let (_dir, spool) = temp_spool(2);
        let admin = Holder {
            pid: 0,
            name: "lock by test".into(),
        };
        let queues = expand_names(&["all".to_string()], &spool.feed_queue_names()).unwrap();
        assert_eq!(queues, ["feed1", "feed2"]);
        assert!(expand_names(&["feed9".to_string()], &queues).is_err());
        let QueueLockOutcome::Taken(busy) = try_lock_queue(&spool, "feed2", &me()).unwrap() else {
            panic!("feed2 must lock");
        };
        let outcome = lock_queues(&spool, &queues, &admin, quick_wait!()).unwrap();
        assert!(
            matches!(outcome, LockQueuesOutcome::TimedOut { ref queue, .. } if queue == "feed2")
        );
        assert!(
            queue_lock_holder(&spool, "feed1").unwrap().is_none(),
            "feed1 released again"
        );
        drop(busy);
        let outcome = lock_queues(&spool, &queues, &admin, quick_wait!()).unwrap();
        let taken = |queue: &str| LockedQueue {
            queue: queue.into(),
            earlier_admin: None,
        };
        assert_eq!(
            outcome,
            LockQueuesOutcome::Locked(vec![taken("feed1"), taken("feed2")])
        );
        assert_eq!(queue_lock_holder(&spool, "feed1").unwrap(), Some(admin));
    }

    #[test]
    fn an_interrupted_wait_releases_what_it_took_and_stale_locks_are_reported() {
        let (_dir, spool) = temp_spool(2);
        let queues = expand_names(&["all".to_string()], &spool.feed_queue_names()).unwrap();
        let dead = Holder {
            pid: dead_pid(),
            name: "updatevdl".into(),
        };
        fs::write(
            spool.lock_file("feed1"),
            format!("{} {}\n", dead.pid, dead.name),
        )
        .unwrap();
        let QueueLockOutcome::Taken(busy) = try_lock_queue(&spool, "feed2", &me()).unwrap() else {
            panic!("feed2 must lock");
        };
        let interrupted = AtomicBool::new(false);
        let mut cleared = Vec::new();
        let outcome = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(300));
                interrupted.store(true, Ordering::SeqCst);
            });
            let wait = LockWait {
                timeout: Duration::from_secs(30),
                interrupted: &interrupted,
                on_stale: &mut |queue: &str, holder: &Holder| {
                    cleared.push((queue.to_string(), holder.clone()))
                },
            };
            lock_queues(&spool, &queues, &other_process(), wait).unwrap()
        });
        assert_eq!(outcome, LockQueuesOutcome::Interrupted);
        assert_eq!(cleared, [("feed1".to_string(), dead)]);
        assert!(
            queue_lock_holder(&spool, "feed1").unwrap().is_none(),
            "feed1 released again"
        );
        assert_eq!(queue_lock_holder(&spool, "feed2").unwrap(), Some(me()));
        drop(busy);
    }

    /// A holder that is alive but is not `me()`.
    fn other_process() -> Holder {
        Holder {
            pid: std::process::id() as i32,
            name: "updatevdl".into(),
        }
    }

    /// A pid that names no process: a child that has been reaped.
    fn dead_pid() -> i32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        pid
    }

    #[test]
    fn stop_free_and_pid_files() {
        let (_dir, spool) = temp_spool(2);
        assert!(!stop_requested(&spool, "feed1"));
        request_stop(&spool, "feed1").unwrap();
        assert!(stop_requested(&spool, "feed1"));
        assert!(clear_stop(&spool, "feed1").unwrap());
        write_free(&spool, "feed1", 1795303433.25).unwrap();
        assert_eq!(read_free(&spool, "feed1"), Some(1795303433.25));
        let pid = claim_pid_file(&spool, "feed").unwrap();
        assert_eq!(
            read_pid_file(&spool.pid_file("feed")),
            Some(std::process::id() as i32)
        );
        let running = wait_stopped(&spool, &["feed".to_string()], Duration::from_millis(100));
        assert_eq!(running, ["feed"], "this process holds the pid file");
        drop(pid);
        assert!(!spool.pid_file("feed").exists());
        assert!(wait_stopped(&spool, &["feed".to_string()], Duration::ZERO).is_empty());
    }
}
