//! Installing definitions. A definitions directory (or a `.tar.gz` of one) is copied into
//! a new set `<spool>/sie/vdl/set.<n>/`, compiled and self-tested there, and becomes the
//! run-time set by swapping the `current` symlink while every work queue is locked, so
//! no scan sees half a set. Anything that fails leaves the old set running, and an
//! interrupted install (a signal raises the caller's flag) installs nothing and leaves no
//! queue locked; a lock left by an install that was killed outright names a dead pid and
//! is cleared, with a report, by the next lock taker.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::lockfile::{
    self, Holder, LockQueuesOutcome, LockWait, expand_names, lock_queues, process_alive,
    unlock_queue,
};
use crate::queue::{Spool, durable::sync_dir};
use crate::rules::LoadProblem;

/// Extensions of the files a definitions directory may hold; others are ignored.
pub const DEFINITION_EXTENSIONS: [&str; 10] = [
    "vdl", "hdb", "hsb", "ndb", "ldb", "fp", "sfp", "ign2", "ign", "cf",
];

/// How many installed sets are kept (the current one, the one before, and one more).
const SETS_KEPT: usize = 3;

/// A definitions file larger than this is refused rather than copied.
const MAX_DEFINITION_FILE_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{source_dir}: definitions rejected, the installed set stays: {reason}")]
    Rejected { source_dir: PathBuf, reason: String },
    #[error("work queue {queue} stayed locked by pid {pid} ({name}); nothing was installed")]
    QueuesBusy {
        queue: String,
        pid: i32,
        name: String,
    },
    #[error("interrupted before the switch; nothing was installed")]
    Interrupted,
    #[error(transparent)]
    Lock(#[from] lockfile::LockError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What an install did.
#[derive(Debug)]
pub struct InstallReport {
    pub set_dir: PathBuf,
    pub files: Vec<String>,
    /// Lines that were reported and skipped while compiling the set.
    pub problems: Vec<LoadProblem>,
    /// The validator's one-line account of the set (counts, self-test).
    pub summary: String,
}

/// Compiles and self-tests a staged set: `Ok((summary, problems))` to install it,
/// `Err(reason)` to refuse it.
pub type Validator<'a> = dyn Fn(&Path) -> Result<(String, Vec<LoadProblem>), String> + 'a;

/// The directory of the installed run-time set, if one is installed.
pub fn installed_set(spool: &Spool) -> Option<PathBuf> {
    let current = vdl_root(spool).join("current");
    let target = fs::read_link(&current).ok()?;
    let resolved = vdl_root(spool).join(target);
    resolved.is_dir().then_some(resolved)
}

fn vdl_root(spool: &Spool) -> PathBuf {
    spool.state_dir().join("vdl")
}

/// Installs the definitions in `source` (a directory, or a `.tar.gz`/`.tgz` of one).
pub fn install(
    spool: &Spool,
    source: &Path,
    validate: &Validator<'_>,
    wait: LockWait<'_>,
) -> Result<InstallReport, InstallError> {
    let root = vdl_root(spool);
    fs::create_dir_all(&root).map_err(io_err(&root))?;
    remove_dead_stages(&root);
    let stage = root.join(format!(".stage.{}", std::process::id()));
    if stage.exists() {
        fs::remove_dir_all(&stage).map_err(io_err(&stage))?;
    }
    fs::create_dir(&stage).map_err(io_err(&stage))?;
    let staged = stage_files(source, &stage).and_then(|files| {
        let (summary, problems) = validate(&stage).map_err(|reason| InstallError::Rejected {
            source_dir: source.to_path_buf(),
            reason,
        })?;
        Ok((files, summary, problems))
    });
    let (files, summary, problems) = match staged {
        Ok(staged) => staged,
        Err(e) => {
            let _ = fs::remove_dir_all(&stage);
            return Err(e);
        }
    };
    let set_name = format!("set.{}", next_generation(&root)?);
    let set_dir = root.join(&set_name);
    fs::rename(&stage, &set_dir).map_err(io_err(&set_dir))?;
    sync_dir(&root).map_err(io_err(&root))?;
    if let Err(e) = swap_under_queue_locks(spool, &root, &set_name, wait) {
        let _ = fs::remove_dir_all(&set_dir);
        return Err(e);
    }
    prune_old_sets(&root);
    Ok(InstallReport {
        set_dir,
        files,
        problems,
        summary,
    })
}

/// Copies the definition files of `source` into `stage`, fsyncing each; a tarball is
/// unpacked first. Only plain files with definition extensions and simple names count.
fn stage_files(source: &Path, stage: &Path) -> Result<Vec<String>, InstallError> {
    let name = source.to_string_lossy();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        let unpacked = stage.join(".unpacked");
        fs::create_dir(&unpacked).map_err(io_err(&unpacked))?;
        let file = File::open(source).map_err(io_err(source))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let entries = archive.entries().map_err(io_err(source))?;
        for entry in entries {
            let mut entry = entry.map_err(io_err(source))?;
            let path = entry.path().map_err(io_err(source))?.into_owned();
            let Some(file_name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            // Only the file name is used: a member path never picks where a file lands.
            if !entry.header().entry_type().is_file() || !is_definition_file(&file_name) {
                continue;
            }
            if entry.size() > MAX_DEFINITION_FILE_BYTES {
                return Err(rejected(
                    source,
                    format!("{file_name} is larger than 1 GiB"),
                ));
            }
            let target = unpacked.join(&file_name);
            let mut out = File::create(&target).map_err(io_err(&target))?;
            io::copy(&mut (&mut entry).take(MAX_DEFINITION_FILE_BYTES), &mut out)
                .map_err(io_err(&target))?;
        }
        let files = stage_files(&unpacked, stage);
        let _ = fs::remove_dir_all(&unpacked);
        return files;
    }
    let mut files = Vec::new();
    for item in fs::read_dir(source).map_err(io_err(source))? {
        let item = item.map_err(io_err(source))?;
        let Some(file_name) = item.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let meta = item.metadata().map_err(io_err(&item.path()))?;
        if !meta.is_file() || !is_definition_file(&file_name) {
            continue;
        }
        if meta.len() > MAX_DEFINITION_FILE_BYTES {
            return Err(rejected(
                source,
                format!("{file_name} is larger than 1 GiB"),
            ));
        }
        let target = stage.join(&file_name);
        fs::copy(item.path(), &target).map_err(io_err(&target))?;
        File::open(&target)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&target))?;
        files.push(file_name);
    }
    if files.is_empty() {
        return Err(rejected(
            source,
            "no definition files (*.vdl, *.hdb, *.hsb, *.ndb, *.ldb, *.fp, *.sfp, *.ign2, *.ign, *.cf)"
                .into(),
        ));
    }
    files.sort();
    sync_dir(stage).map_err(io_err(stage))?;
    Ok(files)
}

fn rejected(source: &Path, reason: String) -> InstallError {
    InstallError::Rejected {
        source_dir: source.to_path_buf(),
        reason,
    }
}

fn is_definition_file(name: &str) -> bool {
    let simple = !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    let extension = name.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
    simple && DEFINITION_EXTENSIONS.contains(&extension)
}

fn generations(root: &Path) -> Result<Vec<u64>, InstallError> {
    let mut found = Vec::new();
    for item in fs::read_dir(root).map_err(io_err(root))? {
        let item = item.map_err(io_err(root))?;
        if let Some(n) = item
            .file_name()
            .to_str()
            .and_then(|name| name.strip_prefix("set."))
            .and_then(|n| n.parse().ok())
        {
            found.push(n);
        }
    }
    found.sort_unstable();
    Ok(found)
}

fn next_generation(root: &Path) -> Result<u64, InstallError> {
    Ok(generations(root)?.last().map_or(1, |n| n + 1))
}

/// Locks every work queue, points `current` at the new set (and `previous` at the old
/// one) with atomic renames of fresh symlinks, and unlocks again, also on failure.
fn swap_under_queue_locks(
    spool: &Spool,
    root: &Path,
    set_name: &str,
    wait: LockWait<'_>,
) -> Result<(), InstallError> {
    let queues = expand_names(&["all".to_string()], &spool.feed_queue_names())?;
    let holder = Holder {
        pid: std::process::id() as i32,
        name: "updatevdl".into(),
    };
    let interrupted = wait.interrupted;
    let taken = match lock_queues(spool, &queues, &holder, wait)? {
        LockQueuesOutcome::Locked(locked) => locked
            .into_iter()
            .filter(|q| q.earlier_admin.is_none())
            .map(|q| q.queue)
            .collect::<Vec<_>>(),
        LockQueuesOutcome::Interrupted => return Err(InstallError::Interrupted),
        LockQueuesOutcome::TimedOut { queue, holder } => {
            return Err(InstallError::QueuesBusy {
                queue,
                pid: holder.pid,
                name: holder.name,
            });
        }
    };
    let swapped = (|| {
        if interrupted.load(Ordering::SeqCst) {
            return Err(InstallError::Interrupted);
        }
        let current = root.join("current");
        if let Ok(old) = fs::read_link(&current) {
            replace_symlink(root, "previous", &old)?;
        }
        replace_symlink(root, "current", Path::new(set_name))?;
        sync_dir(root).map_err(io_err(root))
    })();
    for queue in &taken {
        unlock_queue(spool, queue)?;
    }
    swapped
}

fn replace_symlink(root: &Path, name: &str, target: &Path) -> Result<(), InstallError> {
    let temp = root.join(format!(".{name}.{}", std::process::id()));
    let _ = fs::remove_file(&temp);
    symlink(target, &temp).map_err(io_err(&temp))?;
    let link = root.join(name);
    fs::rename(&temp, &link).map_err(io_err(&link))
}

/// Removes `.stage.<pid>` directories left by installs that died while staging.
fn remove_dead_stages(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(".stage."))
            .and_then(|pid| pid.parse::<i32>().ok());
        if pid.is_some_and(|pid| !process_alive(pid)) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes sets older than the last few, never the current or previous one. A set that
/// cannot be removed is left; it costs only disk space.
fn prune_old_sets(root: &Path) {
    let keep: Vec<PathBuf> = ["current", "previous"]
        .iter()
        .filter_map(|link| fs::read_link(root.join(link)).ok())
        .collect();
    let Ok(all) = generations(root) else {
        return;
    };
    let old = all.len().saturating_sub(SETS_KEPT);
    for n in &all[..old] {
        let name = PathBuf::from(format!("set.{n}"));
        if !keep.contains(&name) {
            let _ = fs::remove_dir_all(root.join(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::testutil::temp_spool;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use crate::lockfile::{QueueLockOutcome, queue_lock_holder, try_lock_queue};

    fn source(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
        let source = dir.join("src");
        fs::create_dir_all(&source).unwrap();
        for (name, text) in files {
            fs::write(source.join(name), text).unwrap();
        }
        source
    }

    macro_rules! wait {
        ($millis:expr) => {
            LockWait::uninterrupted(
                Duration::from_millis($millis),
                &mut |_: &str, _: &Holder| {},
            )
        };
    }

    #[test]
    fn an_interrupted_install_installs_nothing_and_unlocks() {
        let (dir, spool) = temp_spool(2);
        let good = source(&dir.path().join("good"), &[("virus.vdl", "good")]);
        install(&spool, &good, &accept, wait!(1000)).unwrap();
        fs::create_dir(vdl_root(&spool).join(format!(".stage.{}", i32::MAX))).unwrap();
        let new = source(&dir.path().join("new"), &[("virus.vdl", "new")]);
        let interrupted = AtomicBool::new(true);
        let mut cleared = Vec::new();
        let err = install(
            &spool,
            &new,
            &accept,
            LockWait {
                timeout: Duration::from_secs(1),
                interrupted: &interrupted,
                on_stale: &mut |queue: &str, _: &Holder| cleared.push(queue.to_string()),
            },
        )
        .unwrap_err();
        assert!(matches!(err, InstallError::Interrupted), "{err}");
        let current = installed_set(&spool).unwrap();
        assert_eq!(
            fs::read_to_string(current.join("virus.vdl")).unwrap(),
            "good"
        );
        assert_eq!(generations(&vdl_root(&spool)).unwrap(), [1]);
        for queue in spool.feed_queue_names() {
            assert!(
                queue_lock_holder(&spool, &queue).unwrap().is_none(),
                "{queue}"
            );
        }
        assert!(
            !vdl_root(&spool)
                .join(format!(".stage.{}", i32::MAX))
                .exists(),
            "a dead install's stage is removed"
        );
        assert!(cleared.is_empty());
    }

    fn accept(dir: &Path) -> Result<(String, Vec<LoadProblem>), String> {
        let text = fs::read_to_string(dir.join("virus.vdl")).map_err(|e| e.to_string())?;
        if text.contains("bad") {
            return Err("self-test failed".into());
        }
        Ok((format!("{} bytes", text.len()), Vec::new()))
    }

    #[test]
    fn a_good_set_becomes_current_and_the_old_one_previous() {
        let (dir, spool) = temp_spool(2);
        assert!(installed_set(&spool).is_none());
        let one = source(
            &dir.path().join("one"),
            &[("virus.vdl", "one"), ("notes.txt", "x")],
        );
        let report = install(&spool, &one, &accept, wait!(1000)).unwrap();
        assert_eq!(
            report.files,
            ["virus.vdl"],
            "only definition files are copied"
        );
        assert_eq!(installed_set(&spool).unwrap(), report.set_dir);
        let two = source(&dir.path().join("two"), &[("virus.vdl", "two")]);
        install(&spool, &two, &accept, wait!(1000)).unwrap();
        let current = installed_set(&spool).unwrap();
        assert_eq!(
            fs::read_to_string(current.join("virus.vdl")).unwrap(),
            "two"
        );
        let previous = fs::read_link(vdl_root(&spool).join("previous")).unwrap();
        assert_eq!(previous, PathBuf::from("set.1"));
        for queue in spool.feed_queue_names() {
            assert!(
                queue_lock_holder(&spool, &queue).unwrap().is_none(),
                "{queue} unlocked again"
            );
        }
    }

    #[test]
    fn a_rejected_set_leaves_the_old_one_running() {
        let (dir, spool) = temp_spool(2);
        let good = source(&dir.path().join("good"), &[("virus.vdl", "good")]);
        install(&spool, &good, &accept, wait!(1000)).unwrap();
        let bad = source(&dir.path().join("bad"), &[("virus.vdl", "bad")]);
        let err = install(&spool, &bad, &accept, wait!(1000)).unwrap_err();
        assert!(err.to_string().contains("self-test failed"), "{err}");
        let current = installed_set(&spool).unwrap();
        assert_eq!(
            fs::read_to_string(current.join("virus.vdl")).unwrap(),
            "good"
        );
        assert_eq!(
            generations(&vdl_root(&spool)).unwrap(),
            [1],
            "the rejected set is gone"
        );
    }

    #[test]
    fn a_busy_queue_means_nothing_is_installed_and_nothing_stays_locked() {
        let (dir, spool) = temp_spool(2);
        let holder = Holder {
            pid: std::process::id() as i32,
            name: "sie-work feed2".into(),
        };
        let QueueLockOutcome::Taken(pass) = try_lock_queue(&spool, "feed2", &holder).unwrap()
        else {
            panic!("feed2 must lock");
        };
        let new = source(&dir.path().join("new"), &[("virus.vdl", "new")]);
        let err = install(&spool, &new, &accept, wait!(200)).unwrap_err();
        assert!(
            matches!(err, InstallError::QueuesBusy { ref queue, .. } if queue == "feed2"),
            "{err}"
        );
        assert!(installed_set(&spool).is_none());
        assert!(queue_lock_holder(&spool, "feed1").unwrap().is_none());
        drop(pass);
    }

    #[test]
    fn a_tarball_installs_by_file_name_only() {
        let (dir, spool) = temp_spool(2);
        let tarball = dir.path().join("defs.tar.gz");
        let file = File::create(&tarball).unwrap();
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ));
        for (path, text) in [
            ("defs/virus.vdl", "tar"),
            ("../../escape.ndb", "x"),
            ("defs/readme", "y"),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            // append_data refuses `..`; write the raw name to test a hostile archive.
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, text.as_bytes()).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
        let report = install(&spool, &tarball, &accept, wait!(1000)).unwrap();
        assert_eq!(report.files, ["escape.ndb", "virus.vdl"]);
        assert!(!dir.path().join("escape.ndb").exists());
        assert!(!spool.state_dir().join("escape.ndb").exists());
    }
}
