//! Start-up recovery and orphan handling. A crash between the df and qf renames of a move
//! splits an entry across two queues; recovery puts the df back beside its qf. A df that
//! belongs to no qf anywhere is moved to `error` with a reason; nothing is ever deleted.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::durable::sync_dir;
use super::entry::{OrphanDf, unpaired};
use super::mv::rename_no_replace;
use super::{Error, LockOutcome, QueueId, Result, Spool, lock_entry};

/// What one recovery run did, for the process log.
#[derive(Debug, Default)]
pub struct Recovery {
    /// `(id, where the df was, the queue it was put back in)`.
    pub reunited: Vec<(QueueId, PathBuf, PathBuf)>,
    /// dfs with no qf anywhere, moved to `error`.
    pub orphans_quarantined: Vec<(QueueId, PathBuf)>,
    /// Things seen but left alone, one sentence each.
    pub left_alone: Vec<String>,
}

/// Reunites split entries and quarantines old orphan dfs in every queue of the spool.
/// Holds the spool's move guard exclusively, so no SIE move is half done meanwhile.
pub fn recover_spool(spool: &Spool, orphan_age: Duration) -> Result<Recovery> {
    let _guard = spool.move_guard(true)?;
    let mut recovery = Recovery::default();
    let mut listings = Vec::new();
    for queue in spool.queue_names() {
        let dir = spool.queue_dir(&queue)?;
        if dir.is_dir() {
            listings.push((dir.clone(), unpaired(&dir)?));
        }
    }
    let mut orphans: Vec<OrphanDf> = listings
        .iter()
        .flat_map(|(_, listing)| listing.orphan_dfs.iter().cloned())
        .collect();
    for (dir, listing) in &listings {
        for id in &listing.qfs_without_df {
            let Some(pos) = orphans.iter().position(|o| o.id == *id) else {
                continue;
            };
            let (LockOutcome::Locked(locked) | LockOutcome::Incomplete(locked)) =
                lock_entry(dir, id)?
            else {
                recovery.left_alone.push(format!(
                    "{}: qf in {} is in use; its df in {} is left for later",
                    id,
                    dir.display(),
                    orphans[pos].path.display()
                ));
                continue;
            };
            let orphan = orphans.remove(pos);
            let target = dir.join(id.df_name());
            rename_no_replace(&orphan.path, &target).map_err(|e| Error::io(&orphan.path, e))?;
            sync_dir(dir).map_err(|e| Error::io(dir, e))?;
            let from_dir = orphan.path.parent().unwrap_or(Path::new("."));
            sync_dir(from_dir).map_err(|e| Error::io(from_dir, e))?;
            recovery
                .reunited
                .push((id.clone(), orphan.path.clone(), dir.clone()));
            drop(locked);
        }
    }
    for orphan in orphans {
        match quarantine_orphan_df(spool, &orphan, orphan_age)? {
            OrphanAction::Quarantined => recovery
                .orphans_quarantined
                .push((orphan.id.clone(), orphan.path.clone())),
            OrphanAction::Kept(why) => recovery.left_alone.push(why),
        }
    }
    Ok(recovery)
}

/// What became of an orphan df.
#[derive(Debug, PartialEq, Eq)]
pub enum OrphanAction {
    Quarantined,
    /// Left where it is, with the reason.
    Kept(String),
}

/// Moves a df that has no qf to `error`, with a reason file, unless it may still be
/// in use: sendmail holds a flock on a df while it writes it, and a df that arrived
/// (or was renamed) less than `orphan_age` ago may be waiting for its qf.
pub fn quarantine_orphan_df(
    spool: &Spool,
    orphan: &OrphanDf,
    orphan_age: Duration,
) -> Result<OrphanAction> {
    let age = SystemTime::now()
        .duration_since(orphan.changed)
        .unwrap_or_default();
    if age < orphan_age {
        return Ok(OrphanAction::Kept(format!(
            "{}: df without qf at {} is {}s old; waiting for its qf",
            orphan.id,
            orphan.path.display(),
            age.as_secs()
        )));
    }
    // The listing that found the df alone can be older than its qf: sendmail writes
    // the df first, and a directory read may pass the qf's place before it exists.
    if orphan.path.with_file_name(orphan.id.qf_name()).exists() {
        return Ok(OrphanAction::Kept(format!(
            "{}: the qf of the df at {} has arrived",
            orphan.id,
            orphan.path.display()
        )));
    }
    let file = match File::open(&orphan.path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(OrphanAction::Kept(format!(
                "{}: df already gone",
                orphan.id
            )));
        }
        Err(e) => return Err(Error::io(&orphan.path, e)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Ok(OrphanAction::Kept(format!(
                "{}: df without qf at {} is locked by its writer",
                orphan.id,
                orphan.path.display()
            )));
        }
        Err(TryLockError::Error(e)) => return Err(Error::io(&orphan.path, e)),
    }
    let error_dir = spool.queue_dir("error")?;
    let target = error_dir.join(orphan.id.df_name());
    let exists = || Error::Exists {
        id: orphan.id.clone(),
        queue: "error".into(),
    };
    if target.symlink_metadata().is_ok() {
        return Err(exists());
    }
    let from = orphan.path.parent().unwrap_or(Path::new("."));
    let reason = format!(
        "verdict: error\nname: orphan-df\nwhere: {}\nwhy: df{} had no qf in any queue for {}s; its envelope is lost, the body is kept here\n",
        from.display(),
        orphan.id,
        age.as_secs()
    );
    spool.write_result("error", &orphan.id, &reason)?;
    match rename_no_replace(&orphan.path, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists()),
        Err(e) => return Err(Error::io(&orphan.path, e)),
    }
    sync_dir(&error_dir).map_err(|e| Error::io(&error_dir, e))?;
    sync_dir(from).map_err(|e| Error::io(from, e))?;
    Ok(OrphanAction::Quarantined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::testutil::temp_spool;
    use std::fs;

    const QF: &[u8] = b"V8\nS<a@b>\nRPFD:<c@d>\n.\n";

    #[test]
    fn a_split_move_is_reunited_where_the_qf_is() {
        let (_dir, spool) = temp_spool(2);
        let feed1 = spool.queue_dir("feed1").unwrap();
        let out = spool.queue_dir("out").unwrap();
        fs::write(feed1.join("qf6ALNNrgA023896"), QF).unwrap();
        fs::write(out.join("df6ALNNrgA023896"), b"body\n").unwrap();
        let recovery = recover_spool(&spool, Duration::from_secs(3600)).unwrap();
        assert_eq!(recovery.reunited.len(), 1);
        assert_eq!(fs::read(feed1.join("df6ALNNrgA023896")).unwrap(), b"body\n");
        assert!(!out.join("df6ALNNrgA023896").exists());
    }

    #[test]
    fn a_young_orphan_is_kept_and_an_old_one_goes_to_error() {
        let (_dir, spool) = temp_spool(2);
        let inq = spool.queue_dir("in").unwrap();
        fs::write(inq.join("df6ALNNrgA023897"), b"body\n").unwrap();
        let recovery = recover_spool(&spool, Duration::from_secs(3600)).unwrap();
        assert!(recovery.orphans_quarantined.is_empty());
        assert_eq!(recovery.left_alone.len(), 1);
        assert!(inq.join("df6ALNNrgA023897").exists());

        let recovery = recover_spool(&spool, Duration::ZERO).unwrap();
        assert_eq!(recovery.orphans_quarantined.len(), 1);
        let error = spool.queue_dir("error").unwrap();
        assert_eq!(fs::read(error.join("df6ALNNrgA023897")).unwrap(), b"body\n");
        let reason = fs::read_to_string(spool.results_dir("error").join("6ALNNrgA023897")).unwrap();
        assert!(reason.contains("orphan-df"), "{reason}");
    }

    #[test]
    fn a_df_being_written_is_left_alone() {
        let (_dir, spool) = temp_spool(2);
        let inq = spool.queue_dir("in").unwrap();
        let path = inq.join("df6ALNNrgA023898");
        fs::write(&path, b"partial").unwrap();
        let writer = File::open(&path).unwrap();
        writer.lock().unwrap();
        let recovery = recover_spool(&spool, Duration::ZERO).unwrap();
        assert!(recovery.orphans_quarantined.is_empty());
        assert!(path.exists());
    }
}
