//! The only code that moves queue entries: rename the df, then the qf (the commit
//! record), both while the qf lock is held, then fsync both directories (once per batch
//! of moves). A crash between the two renames leaves a split entry that start-up
//! recovery reunites.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};

use super::durable::sync_dir;
use super::{Error, LockedEntry, Result, Spool};

/// Moves a locked entry into `to_dir`, refusing to overwrite an entry of the same id,
/// and makes the move durable. On success the entry names its new directory and is
/// still locked.
pub fn move_entry(spool: &Spool, entry: &mut LockedEntry, to_dir: &Path) -> Result<()> {
    let mut batch = MoveBatch::default();
    batch.move_entry(spool, entry, to_dir)?;
    batch.sync()
}

/// Writes the result file saying why the entry goes to `queue` (when there is one), then
/// moves it there durably.
pub fn move_with_result(
    spool: &Spool,
    entry: &mut LockedEntry,
    queue: &str,
    result: Option<&str>,
) -> Result<()> {
    let mut batch = MoveBatch::default();
    batch.move_with_result(spool, entry, queue, result)?;
    batch.sync()
}

/// Moves made together (one pass): each is renamed at once, and `sync` then fsyncs
/// every directory involved once, instead of twice per move. Until `sync` returns, a
/// crash may undo some renames, which only puts entries back where they were (or splits
/// one, which recovery reunites); callers keep the entries locked until then, so the
/// MTA cannot deliver a move that is not durable yet.
#[derive(Debug, Default)]
pub struct MoveBatch {
    dirs: BTreeSet<PathBuf>,
    moves: usize,
    /// The spool's move guard, shared, from the first move until `sync`: one lock per
    /// batch instead of one per move.
    guard: Option<File>,
}

impl MoveBatch {
    /// Moves made since the last `sync`.
    pub fn len(&self) -> usize {
        self.moves
    }

    pub fn is_empty(&self) -> bool {
        self.moves == 0
    }

    /// Renames a locked entry into `to_dir` (df, then qf), refusing to overwrite an
    /// entry of the same id. On success the entry names its new directory.
    pub fn move_entry(
        &mut self,
        spool: &Spool,
        entry: &mut LockedEntry,
        to_dir: &Path,
    ) -> Result<()> {
        if self.guard.is_none() {
            self.guard = Some(spool.move_guard(false)?);
        }
        let from_dir = entry.dir.clone();
        if from_dir == to_dir {
            return Ok(());
        }
        let exists = || Error::Exists {
            id: entry.id.clone(),
            queue: to_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let df_from = entry.df_path();
        let df_to = to_dir.join(entry.id.df_name());
        let qf_from = entry.qf_path();
        let qf_to = to_dir.join(entry.id.qf_name());
        // A df moved in beside another entry's qf, even for a moment, would be read as
        // that entry's body: check the qf's name before moving anything.
        if qf_to.symlink_metadata().is_ok() {
            return Err(exists());
        }
        match rename_no_replace(&df_from, &df_to) {
            Ok(()) => {}
            // A missing df is the caller's to judge (it sends such entries to `error`).
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(exists()),
            Err(e) => return Err(Error::io(df_from, e)),
        }
        if let Err(e) = rename_no_replace(&qf_from, &qf_to) {
            // Put the df back so the entry stays whole where it was.
            let _ = rename_no_replace(&df_to, &df_from);
            if e.kind() == io::ErrorKind::AlreadyExists {
                return Err(exists());
            }
            return Err(Error::io(qf_from, e));
        }
        entry.dir = to_dir.to_path_buf();
        self.dirs.insert(to_dir.to_path_buf());
        self.dirs.insert(from_dir);
        self.moves += 1;
        Ok(())
    }

    /// Writes the result file saying why the entry goes to `queue` (when there is
    /// one), then moves it there. The result file comes first: a crash in between
    /// leaves the entry where it was, to be judged again, rather than a quarantined
    /// entry with no reason.
    pub fn move_with_result(
        &mut self,
        spool: &Spool,
        entry: &mut LockedEntry,
        queue: &str,
        result: Option<&str>,
    ) -> Result<()> {
        let to_dir = spool.queue_dir(queue)?;
        if let Some(text) = result {
            spool.write_result(queue, &entry.id, text)?;
        }
        self.move_entry(spool, entry, &to_dir)
    }

    /// Makes every move so far durable: one fsync per directory, destinations and
    /// sources alike.
    pub fn sync(&mut self) -> Result<()> {
        for dir in std::mem::take(&mut self.dirs) {
            sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        self.moves = 0;
        self.guard = None;
        Ok(())
    }
}

/// Renames `from` to `to` unless `to` exists (`AlreadyExists`), in one step where the
/// file system can (`RENAME_NOREPLACE`), else by looking first.
pub(super) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL | Errno::ENOSYS) => {
            if to.symlink_metadata().is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        }
        Err(errno) => Err(io::Error::from(errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{LockOutcome, QueueId, lock_entry};

    fn spool_with_entry(id: &str) -> (tempfile::TempDir, Spool, QueueId) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path(), 2);
        spool.ensure_tree().unwrap();
        let inq = spool.queue_dir("in").unwrap();
        fs::write(inq.join(format!("qf{id}")), b"V8\nS<a@b>\nRPFD:<c@d>\n.\n").unwrap();
        fs::write(inq.join(format!("df{id}")), b"body\n").unwrap();
        (dir, spool, QueueId::parse(id).unwrap())
    }

    fn lock(spool: &Spool, queue: &str, id: &QueueId) -> LockedEntry {
        match lock_entry(&spool.queue_dir(queue).unwrap(), id).unwrap() {
            LockOutcome::Locked(entry) => entry,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn moves_df_and_qf_together() {
        let (_dir, spool, id) = spool_with_entry("6ALNNrgA023896");
        let mut entry = lock(&spool, "in", &id);
        let out = spool.queue_dir("out").unwrap();
        move_entry(&spool, &mut entry, &out).unwrap();
        assert_eq!(entry.dir, out);
        assert!(out.join("qf6ALNNrgA023896").exists());
        assert_eq!(fs::read(out.join("df6ALNNrgA023896")).unwrap(), b"body\n");
        let inq = spool.queue_dir("in").unwrap();
        assert_eq!(fs::read_dir(inq).unwrap().count(), 0);
    }

    #[test]
    fn refuses_to_clobber_an_entry_of_the_same_id() {
        let (_dir, spool, id) = spool_with_entry("6ALNNrgA023896");
        let out = spool.queue_dir("out").unwrap();
        fs::write(out.join("df6ALNNrgA023896"), b"other\n").unwrap();
        let mut entry = lock(&spool, "in", &id);
        let err = move_entry(&spool, &mut entry, &out).unwrap_err();
        assert!(matches!(err, Error::Exists { .. }), "{err}");
        assert!(err.to_string().contains("6ALNNrgA023896"));
        assert_eq!(fs::read(out.join("df6ALNNrgA023896")).unwrap(), b"other\n");
        assert!(entry.qf_path().exists() && entry.df_path().exists());
    }

    #[test]
    fn refuses_when_only_the_qf_name_is_taken_and_moves_nothing() {
        let (_dir, spool, id) = spool_with_entry("6ALNNrgA023896");
        let out = spool.queue_dir("out").unwrap();
        fs::write(out.join("qf6ALNNrgA023896"), b"V8\n.\n").unwrap();
        let mut entry = lock(&spool, "in", &id);
        let err = move_entry(&spool, &mut entry, &out).unwrap_err();
        assert!(matches!(err, Error::Exists { .. }), "{err}");
        assert!(!out.join("df6ALNNrgA023896").exists());
        assert!(entry.qf_path().exists() && entry.df_path().exists());
    }

    #[test]
    fn a_batch_holds_the_move_guard_until_it_is_synced() {
        let (_dir, spool, id) = spool_with_entry("6ALNNrgA023896");
        let mut entry = lock(&spool, "in", &id);
        let mut batch = MoveBatch::default();
        batch
            .move_entry(&spool, &mut entry, &spool.queue_dir("out").unwrap())
            .unwrap();
        let guard_path = spool.locks_dir().join("spool");
        let recovery = fs::File::options().write(true).open(&guard_path).unwrap();
        assert!(
            recovery.try_lock().is_err(),
            "recovery must wait for the batch"
        );
        batch.sync().unwrap();
        recovery.try_lock().unwrap();
    }
}
