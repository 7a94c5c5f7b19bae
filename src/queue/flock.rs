//! sendmail's own queue-entry lock: flock(2) exclusive and non-blocking on the qf opened
//! read-write, then the checks of sendmail's `readqf()` (same inode still at the path,
//! complete file). A lock held by someone else means an MTA is using the entry: skip it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::qf::{ControlFile, MAX_QF_BYTES, QfError};
use super::read::read_expected;
use super::{Error, QueueId, Result};

/// An entry whose qf this process holds locked; the lock goes with the value.
#[derive(Debug)]
pub struct LockedEntry {
    file: File,
    pub id: QueueId,
    pub dir: PathBuf,
    qf_len: u64,
    /// The qf content, read through the locked descriptor (empty when over the limit).
    qf: Vec<u8>,
    /// The qf's modification time, when sendmail committed it.
    pub queued: SystemTime,
}

impl LockedEntry {
    pub fn qf_path(&self) -> PathBuf {
        self.dir.join(self.id.qf_name())
    }

    pub fn df_path(&self) -> PathBuf {
        self.dir.join(self.id.df_name())
    }

    pub fn qf_bytes(&self) -> &[u8] {
        &self.qf
    }

    pub fn qf_len(&self) -> u64 {
        self.qf_len
    }

    /// Parses the control file read under the lock.
    pub fn control(&self) -> std::result::Result<ControlFile, QfError> {
        if self.qf_len > MAX_QF_BYTES {
            return Err(QfError::TooLarge(self.qf_len));
        }
        ControlFile::parse(&self.qf)
    }

    /// Size of the df, or `None` when it is missing.
    pub fn df_len(&self) -> Result<Option<u64>> {
        let path = self.df_path();
        match std::fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

/// What trying to lock an entry found.
#[derive(Debug)]
pub enum LockOutcome {
    Locked(LockedEntry),
    /// Locked, but the qf is empty or lacks the `\n.\n` end: sendmail may be between
    /// creating and locking it, or the file is truncated. The caller decides by age.
    Incomplete(LockedEntry),
    /// Another process (an MTA, or another SIE process) holds the lock.
    Busy,
    /// The path now names another file (sendmail renamed a tf over it), or none.
    Replaced,
    /// The qf is gone (moved or delivered since it was listed).
    Vanished,
}

/// Tries to lock the entry `id` in `dir` without waiting.
pub fn lock_entry(dir: &Path, id: &QueueId) -> Result<LockOutcome> {
    let path = dir.join(id.qf_name());
    let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LockOutcome::Vanished),
        Err(e) => return Err(Error::io(path, e)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(LockOutcome::Busy),
        Err(TryLockError::Error(e)) => return Err(Error::io(path, e)),
    }
    let held = file.metadata().map_err(|e| Error::io(&path, e))?;
    let current = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LockOutcome::Replaced),
        Err(e) => return Err(Error::io(path, e)),
    };
    if held.nlink() == 0 || held.dev() != current.dev() || held.ino() != current.ino() {
        return Ok(LockOutcome::Replaced);
    }
    let qf_len = held.len();
    let mut qf = Vec::new();
    let complete = if qf_len > MAX_QF_BYTES {
        let mut tail = [0u8; 3];
        file.seek(SeekFrom::End(-3))
            .and_then(|_| file.read_exact(&mut tail))
            .map_err(|e| Error::io(&path, e))?;
        &tail == b"\n.\n"
    } else {
        read_expected(&file, qf_len, MAX_QF_BYTES + 1, &mut qf).map_err(|e| Error::io(&path, e))?;
        qf.ends_with(b"\n.\n") || qf == b".\n"
    };
    let entry = LockedEntry {
        file,
        id: id.clone(),
        dir: dir.to_path_buf(),
        qf_len,
        qf,
        queued: held.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    };
    Ok(if complete {
        LockOutcome::Locked(entry)
    } else {
        LockOutcome::Incomplete(entry)
    })
}

impl LockedEntry {
    /// Lets the lock go now rather than when the value is dropped.
    pub fn unlock(self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write_entry(dir: &Path, id: &str, qf: &[u8]) -> QueueId {
        fs::write(dir.join(format!("qf{id}")), qf).unwrap();
        fs::write(dir.join(format!("df{id}")), b"body\n").unwrap();
        QueueId::parse(id).unwrap()
    }

    const QF: &[u8] = b"V8\nT1\nS<a@b>\nRPFD:<c@d>\n.\n";

    #[test]
    fn a_flock_held_elsewhere_makes_the_entry_busy() {
        let dir = tempfile::tempdir().unwrap();
        let id = write_entry(dir.path(), "6ALNNrgA023896", QF);
        let holder = File::open(dir.path().join("qf6ALNNrgA023896")).unwrap();
        holder.lock().unwrap();
        assert!(matches!(
            lock_entry(dir.path(), &id).unwrap(),
            LockOutcome::Busy
        ));
        holder.unlock().unwrap();
        let LockOutcome::Locked(entry) = lock_entry(dir.path(), &id).unwrap() else {
            panic!("released entry must lock");
        };
        assert_eq!(entry.qf_bytes(), QF);
        assert_eq!(entry.df_len().unwrap(), Some(5));
        assert!(matches!(
            lock_entry(dir.path(), &id).unwrap(),
            LockOutcome::Busy
        ));
        entry.unlock();
        assert!(matches!(
            lock_entry(dir.path(), &id).unwrap(),
            LockOutcome::Locked(_)
        ));
    }

    #[test]
    fn incomplete_and_vanished_entries_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let id = write_entry(dir.path(), "6ALNNrgA023897", b"V8\nT1\nS<a@b>\n");
        assert!(matches!(
            lock_entry(dir.path(), &id).unwrap(),
            LockOutcome::Incomplete(_)
        ));
        let gone = QueueId::parse("6ALNNrgA000000").unwrap();
        assert!(matches!(
            lock_entry(dir.path(), &gone).unwrap(),
            LockOutcome::Vanished
        ));
    }
}
