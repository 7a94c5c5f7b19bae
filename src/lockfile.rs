//! SIE's own control files: `sie/locks/lock.<q>` (a work queue is locked while it
//! scans and while an admin or `updatevdl` holds it), `stop.<process>`, `free.<q>`, and
//! `sie/pids/<process>.pid`. A lock file records its holder's pid so a dead holder's lock
//! is recognised as stale and cleared.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::queue::{Spool, durable};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
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
    writeln!(file, "{} {}", holder.pid, holder.name)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&draft))?;
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
    durable::write_atomic(&path, format!("{epoch_secs:.3}\n").as_bytes(), 0o644)
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

    fn spool() -> (tempfile::TempDir, Spool) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path(), 2);
        spool.ensure_tree().unwrap();
        (dir, spool)
    }

    fn me() -> Holder {
        Holder {
            pid: std::process::id() as i32,
            name: "test".into(),
        }
    }

    #[test]
    fn a_queue_lock_excludes_and_is_removed_on_drop() {
        let (_dir, spool) = spool();
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
        let (_dir, spool) = spool();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id() as i32;
        child.wait().unwrap();
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
    fn stop_free_and_pid_files() {
        let (_dir, spool) = spool();
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
        drop(pid);
        assert!(!spool.pid_file("feed").exists());
    }
}
