//! The spool: queue directories of sendmail entries (`qf<ID>` + `df<ID>`) and SIE's own
//! state under `sie/`. Everything that touches a queue entry goes through this module, so
//! sendmail's locking and the df-before-qf move order are kept in one place.

pub mod durable;
pub mod entry;
pub mod flock;
pub mod id;
pub mod mv;
pub mod qf;
pub mod read;
pub mod recover;
pub mod select;
#[cfg(test)]
pub mod testutil;

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use entry::{DirListing, Entry, ListingCache, list_dir};
pub use flock::{LockOutcome, LockedEntry, lock_entry};
pub use id::QueueId;
pub use mv::{MoveBatch, move_entry, move_with_result};

/// Queues every spool has besides the feed queues, in display order.
pub const FIXED_QUEUES: [&str; 10] = [
    "in", "out", "virus", "ext", "spam", "error", "delete", "release", "good", "archive",
];

/// Errors of the queue layer; each names the file or the queue id involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("queue id {id}: {queue} already holds an entry with this id; not overwritten")]
    Exists { id: QueueId, queue: String },
    #[error("unknown queue {0:?} (expected one of: {1})")]
    UnknownQueue(String, String),
    #[error("{0:?} is not a queue id (1 to 18 letters and digits)")]
    BadId(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The spool root and the number of feed queues: enough to name every path SIE uses.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
    feed_queues: usize,
}

impl Spool {
    pub fn new(root: impl Into<PathBuf>, feed_queues: usize) -> Spool {
        Spool {
            root: root.into(),
            feed_queues,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn feed_queue_count(&self) -> usize {
        self.feed_queues
    }

    /// `feed1` .. `feedN`.
    pub fn feed_queue_names(&self) -> Vec<String> {
        (1..=self.feed_queues).map(|k| format!("feed{k}")).collect()
    }

    /// Every queue that holds messages: in, feed1..N, then the result queues.
    pub fn queue_names(&self) -> Vec<String> {
        let mut names = vec!["in".to_string()];
        names.extend(self.feed_queue_names());
        names.extend(FIXED_QUEUES[1..].iter().map(|q| q.to_string()));
        names
    }

    /// The directory of a queue, refusing names that are not queues of this spool.
    pub fn queue_dir(&self, name: &str) -> Result<PathBuf> {
        let names = self.queue_names();
        if names.iter().any(|q| q == name) {
            Ok(self.root.join(name))
        } else {
            Err(Error::UnknownQueue(name.to_string(), names.join(" ")))
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join("sie")
    }

    pub fn locks_dir(&self) -> PathBuf {
        self.state_dir().join("locks")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir().join("logs")
    }

    pub fn pids_dir(&self) -> PathBuf {
        self.state_dir().join("pids")
    }

    pub fn stats_dir(&self) -> PathBuf {
        self.state_dir().join("stats")
    }

    /// Scratch space of one process, emptied when that process starts.
    pub fn work_dir(&self, process: &str) -> PathBuf {
        self.state_dir().join("work").join(process)
    }

    /// Where the result files of messages moved to `queue` live (`msg_virus`, ...).
    pub fn results_dir(&self, queue: &str) -> PathBuf {
        self.state_dir()
            .join("results")
            .join(format!("msg_{queue}"))
    }

    pub fn log_file(&self, process: &str) -> PathBuf {
        self.logs_dir().join(format!("{process}.log"))
    }

    pub fn lock_file(&self, queue: &str) -> PathBuf {
        self.locks_dir().join(format!("lock.{queue}"))
    }

    pub fn stop_file(&self, process: &str) -> PathBuf {
        self.locks_dir().join(format!("stop.{process}"))
    }

    pub fn free_file(&self, queue: &str) -> PathBuf {
        self.locks_dir().join(format!("free.{queue}"))
    }

    pub fn pid_file(&self, process: &str) -> PathBuf {
        self.pids_dir().join(format!("{process}.pid"))
    }

    /// Creates every directory of the spool that is missing, mode 0700 like sendmail's.
    pub fn ensure_tree(&self) -> Result<()> {
        let mut dirs: Vec<PathBuf> = self
            .queue_names()
            .iter()
            .map(|q| self.root.join(q))
            .collect();
        dirs.extend([
            self.locks_dir(),
            self.logs_dir(),
            self.pids_dir(),
            self.stats_dir(),
            self.state_dir().join("work"),
        ]);
        for verdict in ["virus", "ext", "spam", "error"] {
            dirs.push(self.results_dir(verdict));
        }
        for dir in dirs {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Error::io(&dir, e))?;
        }
        Ok(())
    }

    /// Writes the result file that says why message `id` went to `queue`.
    pub fn write_result(&self, queue: &str, id: &QueueId, text: &str) -> Result<()> {
        self.write_results(&[(queue, id, text)]).remove(0)
    }

    /// Writes the result files of several messages, `(queue, id, text)` each, with one
    /// fsync per results directory rather than one per file. Every file that comes back
    /// `Ok` is durable when this returns.
    pub fn write_results(&self, results: &[(&str, &QueueId, &str)]) -> Vec<Result<()>> {
        let written: Vec<Result<PathBuf>> = results
            .iter()
            .map(|&(queue, id, text)| self.write_synced_result(queue, id, text))
            .collect();
        let dirs: BTreeSet<PathBuf> = written
            .iter()
            .filter_map(|path| Some(path.as_ref().ok()?.parent()?.to_path_buf()))
            .collect();
        let unsynced: Vec<(PathBuf, String)> = dirs
            .into_iter()
            .filter_map(|dir| {
                let why = durable::sync_dir(&dir).err()?.to_string();
                Some((dir, why))
            })
            .collect();
        written
            .into_iter()
            .map(|path| {
                let path = path?;
                match unsynced.iter().find(|(dir, _)| path.parent() == Some(dir)) {
                    Some((dir, why)) => Err(Error::io(dir, io::Error::other(why.clone()))),
                    None => Ok(()),
                }
            })
            .collect()
    }

    fn write_synced_result(&self, queue: &str, id: &QueueId, text: &str) -> Result<PathBuf> {
        let dir = self.results_dir(queue);
        let path = dir.join(id.as_str());
        match durable::write_synced(&path, text.as_bytes(), 0o600) {
            // The directory is made at start-up; it is made again only if it went away.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)
                    .map_err(|e| Error::io(&dir, e))?;
                durable::write_synced(&path, text.as_bytes(), 0o600)
            }
            written => written,
        }
        .map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }

    /// Shared while an entry moves; exclusive while start-up recovery looks for split
    /// entries, so recovery never mistakes a move in progress for a crash leftover.
    pub(crate) fn move_guard(&self, exclusive: bool) -> Result<File> {
        let path = self.locks_dir().join("spool");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let locked = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        locked.map_err(|e| Error::io(&path, e))?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_tree_creates_every_queue() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("queues"), 5);
        spool.ensure_tree().unwrap();
        for q in spool.queue_names() {
            assert!(dir.path().join("queues").join(&q).is_dir(), "{q}");
        }
        assert!(spool.results_dir("virus").is_dir());
        assert!(spool.queue_dir("feed5").is_ok());
        assert!(spool.queue_dir("feed6").is_err());
        assert!(spool.queue_dir("../in").is_err());
    }

    #[test]
    fn a_result_file_is_written_even_when_its_directory_went_away() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("queues"), 1);
        spool.ensure_tree().unwrap();
        let id = QueueId::parse("6ALNNrgA023896").unwrap();
        spool.write_result("spam", &id, "verdict: spam\n").unwrap();
        fs::remove_dir_all(spool.results_dir("spam")).unwrap();
        spool.write_result("spam", &id, "verdict: spam\n").unwrap();
        let text = fs::read_to_string(spool.results_dir("spam").join(id.as_str())).unwrap();
        assert_eq!(text, "verdict: spam\n");
    }

    #[test]
    fn results_written_together_come_back_in_order_each_with_its_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("queues"), 1);
        spool.ensure_tree().unwrap();
        // A file where the virus results directory belongs: that write alone fails.
        fs::remove_dir_all(spool.results_dir("virus")).unwrap();
        fs::write(spool.results_dir("virus"), "").unwrap();
        let ids: Vec<QueueId> = ["6ALNNrgA023896", "6ALNNrgA023897", "6ALNNrgA023898"]
            .iter()
            .map(|id| QueueId::parse(id).unwrap())
            .collect();
        let outcomes = spool.write_results(&[
            ("spam", &ids[0], "verdict: spam\n"),
            ("virus", &ids[1], "verdict: virus\n"),
            ("spam", &ids[2], "verdict: spam, too\n"),
        ]);
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok());
        let Err(Error::Io { path, .. }) = &outcomes[1] else {
            panic!("{:?}", outcomes[1]);
        };
        assert!(
            path.ends_with("msg_virus/6ALNNrgA023897"),
            "{}",
            path.display()
        );
        let read = |id: &QueueId| fs::read_to_string(spool.results_dir("spam").join(id.as_str()));
        assert_eq!(read(&ids[0]).unwrap(), "verdict: spam\n");
        assert_eq!(read(&ids[2]).unwrap(), "verdict: spam, too\n");
        let left: Vec<_> = fs::read_dir(spool.results_dir("spam")).unwrap().collect();
        assert_eq!(left.len(), 2, "no temp file is left behind");
    }
}
