//! What a read-write user can do to a message: release it (a durable copy into
//! `release`, then the entry itself into `out`), delete it (into `delete`; nothing is
//! unlinked), rescan it with the installed definitions, download it. Moves go through
//! the queue layer, under sendmail's qf lock; an entry in use is left alone.

use std::fs;
use std::io;
use std::path::Path;

use super::messages::read_message;
use crate::queue::durable::write_atomic;
use crate::queue::qf::ControlFile;
use crate::queue::{self, LockOutcome, LockedEntry, QueueId, Spool, lock_entry, move_entry};
use crate::rules::RuleSet;
use crate::rules::exceptions::Envelope;
use crate::scan::{ScanOptions, Verdict, scan_message_with_rules};

/// Queues a message can be released from.
pub const RELEASE_FROM: [&str; 5] = ["virus", "ext", "spam", "error", "delete"];

/// Queues a message can be deleted from (moved to `delete`).
pub const DELETE_FROM: [&str; 5] = ["virus", "ext", "spam", "error", "release"];

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("queue id {id}: in use (locked by an MTA or SIE); try again")]
    Busy { id: QueueId },
    #[error("queue id {id}: no longer in {queue}")]
    Gone { id: QueueId, queue: String },
    #[error("queue id {id}: control file incomplete (being written?)")]
    Incomplete { id: QueueId },
    #[error("queue id {id}: {problem}")]
    Unreadable { id: QueueId, problem: String },
    #[error("queue id {id}: not allowed for this user")]
    NotAllowed { id: QueueId },
    #[error("queue id {id}: {queue} already holds an entry with this id; nothing moved")]
    Exists { id: QueueId, queue: String },
    #[error("queue id {id}: df missing; a message without body is not released")]
    NoBody { id: QueueId },
    #[error("queue id {id}: {queue} does not take this action")]
    WrongQueue { id: QueueId, queue: String },
    #[error("{path}: {error}")]
    Io {
        path: std::path::PathBuf,
        error: io::Error,
    },
    #[error(transparent)]
    Queue(#[from] queue::Error),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ActionError + '_ {
    move |source| ActionError::Io {
        path: path.to_path_buf(),
        error: source,
    }
}

/// Locks entry `id` of `queue` and checks, on the control file read under the lock,
/// that `allowed` lets the user act on it.
fn lock_allowed(
    spool: &Spool,
    queue: &str,
    id: &QueueId,
    allowed: &dyn Fn(&ControlFile) -> bool,
) -> Result<LockedEntry, ActionError> {
    let dir = spool.queue_dir(queue)?;
    let entry = match lock_entry(&dir, id)? {
        LockOutcome::Locked(entry) => entry,
        LockOutcome::Busy => return Err(ActionError::Busy { id: id.clone() }),
        LockOutcome::Incomplete(_) => return Err(ActionError::Incomplete { id: id.clone() }),
        LockOutcome::Replaced | LockOutcome::Vanished => {
            return Err(ActionError::Gone {
                id: id.clone(),
                queue: queue.to_string(),
            });
        }
    };
    let control = entry.control().map_err(|e| ActionError::Unreadable {
        id: id.clone(),
        problem: e.to_string(),
    })?;
    if !allowed(&control) {
        return Err(ActionError::NotAllowed { id: id.clone() });
    }
    Ok(entry)
}

fn refuse_existing(dir: &Path, id: &QueueId, queue: &str) -> Result<(), ActionError> {
    for name in [id.qf_name(), id.df_name()] {
        if dir.join(name).symlink_metadata().is_ok() {
            return Err(ActionError::Exists {
                id: id.clone(),
                queue: queue.to_string(),
            });
        }
    }
    Ok(())
}

/// Releases entry `id` of `queue`: writes a durable copy into `release` (df, then qf),
/// then moves the entry to `out` under its lock. Succeeds only when the entry is in
/// `out`; on any failure the entry stays where it was and the copy is taken back.
pub fn release(
    spool: &Spool,
    queue: &str,
    id: &QueueId,
    allowed: &dyn Fn(&ControlFile) -> bool,
) -> Result<(), ActionError> {
    if !RELEASE_FROM.contains(&queue) {
        return Err(ActionError::WrongQueue {
            id: id.clone(),
            queue: queue.to_string(),
        });
    }
    let out = spool.queue_dir("out")?;
    let kept = spool.queue_dir("release")?;
    let mut entry = lock_allowed(spool, queue, id, allowed)?;
    refuse_existing(&out, id, "out")?;
    let df = match fs::read(entry.df_path()) {
        Ok(df) => df,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ActionError::NoBody { id: id.clone() });
        }
        Err(e) => return Err(io_error(&entry.df_path())(e)),
    };
    let (copy_df, copy_qf) = (kept.join(id.df_name()), kept.join(id.qf_name()));
    // A release interrupted after its copy was written left that exact copy: it
    // serves again. Any other entry of this id in `release` is never overwritten.
    let copied_before = fs::read(&copy_qf).is_ok_and(|qf| qf == entry.qf_bytes())
        && fs::read(&copy_df).is_ok_and(|kept_df| kept_df == df);
    if !copied_before {
        refuse_existing(&kept, id, "release")?;
        write_atomic(&copy_df, &df, 0o600).map_err(io_error(&copy_df))?;
        if let Err(e) = write_atomic(&copy_qf, entry.qf_bytes(), 0o600) {
            take_back_copy(&entry, &copy_qf, &copy_df);
            return Err(io_error(&copy_qf)(e));
        }
    }
    if let Err(e) = move_entry(spool, &mut entry, &out) {
        if !copied_before {
            take_back_copy(&entry, &copy_qf, &copy_df);
        }
        return Err(e.into());
    }
    let arrived = out.join(id.qf_name()).is_file() && out.join(id.df_name()).is_file();
    entry.unlock();
    if arrived {
        Ok(())
    } else {
        Err(ActionError::Gone {
            id: id.clone(),
            queue: "out".to_string(),
        })
    }
}

/// Removes the copy written into `release` when the release failed, and only while
/// the original is still whole where it was (the copy is then a duplicate): qf first,
/// so the copy never becomes a qf without its df.
fn take_back_copy(original: &LockedEntry, copy_qf: &Path, copy_df: &Path) {
    if original.qf_path().is_file() && original.df_path().is_file() {
        let _ = fs::remove_file(copy_qf);
        let _ = fs::remove_file(copy_df);
    }
}

/// Moves entry `id` of `queue` into `delete` under its lock.
pub fn delete(
    spool: &Spool,
    queue: &str,
    id: &QueueId,
    allowed: &dyn Fn(&ControlFile) -> bool,
) -> Result<(), ActionError> {
    if !DELETE_FROM.contains(&queue) {
        return Err(ActionError::WrongQueue {
            id: id.clone(),
            queue: queue.to_string(),
        });
    }
    let target = spool.queue_dir("delete")?;
    let mut entry = lock_allowed(spool, queue, id, allowed)?;
    move_entry(spool, &mut entry, &target)?;
    entry.unlock();
    Ok(())
}

/// Scans entry `id` of `queue` with `rules`; moves nothing.
pub fn rescan(
    spool: &Spool,
    queue: &str,
    id: &QueueId,
    rules: &RuleSet,
    options: &ScanOptions,
    allowed: &dyn Fn(&ControlFile) -> bool,
) -> Result<Verdict, ActionError> {
    let (message, control) = read_entry(spool, queue, id)?;
    if !allowed(&control) {
        return Err(ActionError::NotAllowed { id: id.clone() });
    }
    let sender = control.sender().unwrap_or_default();
    let recipients = control.recipients();
    let envelope = Envelope {
        sender: &sender,
        recipients: &recipients,
    };
    Ok(scan_message_with_rules(&message, options, rules, &envelope))
}

/// The message as MTA-out would send it (headers from the qf, then the df), with its
/// control file, read without a lock.
pub fn read_entry(
    spool: &Spool,
    queue: &str,
    id: &QueueId,
) -> Result<(Vec<u8>, ControlFile), ActionError> {
    let dir = spool.queue_dir(queue)?;
    if !dir.join(id.qf_name()).is_file() {
        return Err(ActionError::Gone {
            id: id.clone(),
            queue: queue.to_string(),
        });
    }
    read_message(&dir, id).map_err(|problem| ActionError::Unreadable {
        id: id.clone(),
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::qf::ControlFileBuilder;

    fn spool_with(queue: &str, id: &str) -> (tempfile::TempDir, Spool, QueueId) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path(), 2);
        spool.ensure_tree().unwrap();
        let qf = ControlFileBuilder {
            created: 1,
            sender: "a@b.test".into(),
            recipients: vec!["c@d.test".into()],
            helo: "b.test".into(),
            headers: vec![("Subject".into(), "held".into())],
            body_bytes: 5,
        }
        .build();
        let qdir = spool.queue_dir(queue).unwrap();
        fs::write(qdir.join(format!("df{id}")), "body\n").unwrap();
        fs::write(qdir.join(format!("qf{id}")), qf).unwrap();
        (dir, spool, QueueId::parse(id).unwrap())
    }

    fn files(spool: &Spool, queue: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(spool.queue_dir(queue).unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn release_keeps_a_copy_and_moves_the_entry_to_out() {
        let (_dir, spool, id) = spool_with("virus", "6ALNNrgA023896");
        let qf_before = fs::read(spool.queue_dir("virus").unwrap().join(id.qf_name())).unwrap();
        release(&spool, "virus", &id, &|_| true).unwrap();
        let both = ["df6ALNNrgA023896", "qf6ALNNrgA023896"];
        assert_eq!(files(&spool, "out"), both);
        assert_eq!(files(&spool, "release"), both);
        assert!(files(&spool, "virus").is_empty());
        let kept = fs::read(spool.queue_dir("release").unwrap().join(id.qf_name())).unwrap();
        assert_eq!(kept, qf_before);
    }

    #[test]
    fn a_locked_refused_or_clashing_entry_is_not_released() {
        let (_dir, spool, id) = spool_with("virus", "6ALNNrgA023896");
        let qf = spool.queue_dir("virus").unwrap().join(id.qf_name());
        let holder = fs::File::open(&qf).unwrap();
        holder.lock().unwrap();
        let err = release(&spool, "virus", &id, &|_| true).unwrap_err();
        assert!(matches!(err, ActionError::Busy { .. }), "{err}");
        holder.unlock().unwrap();
        let err = release(&spool, "virus", &id, &|_| false).unwrap_err();
        assert!(matches!(err, ActionError::NotAllowed { .. }), "{err}");
        fs::write(
            spool.queue_dir("out").unwrap().join("df6ALNNrgA023896"),
            "x",
        )
        .unwrap();
        let err = release(&spool, "virus", &id, &|_| true).unwrap_err();
        assert!(matches!(err, ActionError::Exists { .. }), "{err}");
        assert_eq!(files(&spool, "virus").len(), 2);
        assert!(files(&spool, "release").is_empty());
        let err = release(&spool, "out", &id, &|_| true).unwrap_err();
        assert!(matches!(err, ActionError::WrongQueue { .. }), "{err}");
    }

    #[test]
    fn a_copy_left_by_an_interrupted_release_serves_again() {
        let (_dir, spool, id) = spool_with("virus", "6ALNNrgA023898");
        let virus = spool.queue_dir("virus").unwrap();
        let kept = spool.queue_dir("release").unwrap();
        for name in [id.df_name(), id.qf_name()] {
            fs::copy(virus.join(&name), kept.join(&name)).unwrap();
        }
        release(&spool, "virus", &id, &|_| true).unwrap();
        assert_eq!(files(&spool, "out").len(), 2);
        assert_eq!(files(&spool, "release").len(), 2);
        let (_dir, spool, id) = spool_with("virus", "6ALNNrgA023899");
        let kept = spool.queue_dir("release").unwrap();
        fs::write(kept.join(id.df_name()), "another message\n").unwrap();
        let err = release(&spool, "virus", &id, &|_| true).unwrap_err();
        assert!(matches!(err, ActionError::Exists { .. }), "{err}");
        assert_eq!(
            fs::read(kept.join(id.df_name())).unwrap(),
            b"another message\n"
        );
        assert_eq!(files(&spool, "virus").len(), 2);
    }

    #[test]
    fn delete_moves_to_the_delete_queue() {
        let (_dir, spool, id) = spool_with("spam", "6ALNNrgA023897");
        delete(&spool, "spam", &id, &|_| true).unwrap();
        assert_eq!(files(&spool, "delete").len(), 2);
        let err = delete(&spool, "spam", &id, &|_| true).unwrap_err();
        assert!(matches!(err, ActionError::Gone { .. }), "{err}");
    }
}
