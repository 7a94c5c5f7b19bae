//! Listing a queue directory: its entries (a `qf` and, normally, its `df`) with sizes and
//! ages, oldest first, plus the `df` files that have no `qf` beside them.

use std::collections::{HashMap, HashSet};
use std::fs::{self, Metadata};
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{Error, QueueId, Result};

/// One queue entry as seen by a directory listing (nothing is locked or read).
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: QueueId,
    pub dir: PathBuf,
    pub qf_bytes: u64,
    /// `None` when the df is missing.
    pub df_bytes: Option<u64>,
    /// The qf's modification time: when sendmail committed it (renames keep it).
    pub queued: SystemTime,
}

impl Entry {
    /// Bytes the message occupies: control file plus body.
    pub fn bytes(&self) -> u64 {
        self.qf_bytes + self.df_bytes.unwrap_or(0)
    }

    pub fn qf_path(&self) -> PathBuf {
        self.dir.join(self.id.qf_name())
    }

    pub fn df_path(&self) -> PathBuf {
        self.dir.join(self.id.df_name())
    }
}

/// A `df` with no `qf` of the same id in its directory.
#[derive(Debug, Clone)]
pub struct OrphanDf {
    pub id: QueueId,
    pub path: PathBuf,
    pub bytes: u64,
    /// Last status change: a rename sets it, so it tells how long the df has sat here.
    pub changed: SystemTime,
}

#[derive(Debug, Default)]
pub struct DirListing {
    /// Oldest first (by qf time, then id).
    pub entries: Vec<Entry>,
    pub orphan_dfs: Vec<OrphanDf>,
}

impl DirListing {
    pub fn total_bytes(&self) -> u64 {
        self.entries.iter().map(Entry::bytes).sum()
    }
}

/// Lists one queue directory. Names that are not `qf`/`df` files are ignored; files that
/// vanish while listing (moved by another process) are simply not listed.
pub fn list_dir(dir: &Path) -> Result<DirListing> {
    ListingCache::default().list(dir)
}

/// What the last listing of each directory learned about its files, for a loop that
/// lists the same queues every pass: a name whose directory entry still points at the
/// same inode is not statted again, so a backlog costs one stat per file, not one per
/// file per pass. Only sizes and queue times come from it, for ordering and batch
/// planning; the entry itself is read under its lock. (A file deleted and re-created
/// under the same name may get the same inode number back and keep its old size here
/// until it changes name; queue ids are not reused, and the cost would be a batch
/// planned on that old size.) A df without a qf is always statted afresh, since its age
/// decides whether it is quarantined.
#[derive(Debug, Default)]
pub struct ListingCache {
    dirs: HashMap<PathBuf, HashMap<String, KnownFile>>,
}

#[derive(Debug, Clone, Copy)]
struct KnownFile {
    /// The inode number the directory entry gave (`d_ino`), not `st_ino`: it is what
    /// the next listing can compare without a stat.
    ino: u64,
    len: u64,
    modified: SystemTime,
}

impl ListingCache {
    /// Lists `dir` as `list_dir` does, statting only names it has not seen before.
    pub fn list(&mut self, dir: &Path) -> Result<DirListing> {
        let known = self.dirs.entry(dir.to_path_buf()).or_default();
        let mut seen: HashMap<String, KnownFile> = HashMap::with_capacity(known.len());
        let mut qfs: Vec<(QueueId, KnownFile)> = Vec::new();
        let mut dfs: HashMap<QueueId, KnownFile> = HashMap::new();
        let reader = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for item in reader {
            let item = item.map_err(|e| Error::io(dir, e))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let Some((kind, id)) = QueueId::from_file_name(name) else {
                continue;
            };
            if kind != "qf" && kind != "df" {
                continue;
            }
            let ino = item.ino();
            // The known name moves over with its key, so a pass allocates only for
            // names it has not seen.
            let (key, file) = match known.remove_entry(name) {
                Some((key, file)) if file.ino == ino => (key, file),
                _ => match item.metadata() {
                    Ok(meta) if meta.is_file() => (
                        name.to_string(),
                        KnownFile {
                            ino,
                            len: meta.len(),
                            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        },
                    ),
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(item.path(), e)),
                },
            };
            seen.insert(key, file);
            if kind == "qf" {
                qfs.push((id, file));
            } else {
                dfs.insert(id, file);
            }
        }
        *known = seen;
        let mut entries: Vec<Entry> = qfs
            .into_iter()
            .map(|(id, qf)| Entry {
                dir: dir.to_path_buf(),
                qf_bytes: qf.len,
                df_bytes: dfs.remove(&id).map(|df| df.len),
                queued: qf.modified,
                id,
            })
            .collect();
        entries.sort_by(|a, b| a.queued.cmp(&b.queued).then_with(|| a.id.cmp(&b.id)));
        let mut orphan_dfs = Vec::new();
        for id in dfs.into_keys() {
            orphan_dfs.extend(orphan_df(dir, id)?);
        }
        orphan_dfs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(DirListing {
            entries,
            orphan_dfs,
        })
    }
}

/// The entries of one queue directory that are not whole: qfs without their df and dfs
/// without their qf. Found from the names alone (no stat of whole entries), which is
/// all start-up recovery needs, however long the queue.
#[derive(Debug, Default)]
pub struct Unpaired {
    pub qfs_without_df: Vec<QueueId>,
    pub orphan_dfs: Vec<OrphanDf>,
}

/// Lists the entries of `dir` that are not whole.
pub fn unpaired(dir: &Path) -> Result<Unpaired> {
    let mut qfs = HashSet::new();
    let mut dfs = HashSet::new();
    let reader = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for item in reader {
        let item = item.map_err(|e| Error::io(dir, e))?;
        let name = item.file_name();
        let Some((kind, id)) = name.to_str().and_then(QueueId::from_file_name) else {
            continue;
        };
        match item.file_type() {
            Ok(kind) if kind.is_file() => {}
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(item.path(), e)),
        }
        match kind {
            "qf" => qfs.insert(id),
            "df" => dfs.insert(id),
            _ => false,
        };
    }
    let mut qfs_without_df: Vec<QueueId> = qfs.difference(&dfs).cloned().collect();
    qfs_without_df.sort();
    let mut orphan_dfs = Vec::new();
    for id in dfs.difference(&qfs) {
        orphan_dfs.extend(orphan_df(dir, id.clone())?);
    }
    orphan_dfs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Unpaired {
        qfs_without_df,
        orphan_dfs,
    })
}

/// The df `id` in `dir`, statted now, when it is still there and a plain file.
fn orphan_df(dir: &Path, id: QueueId) -> Result<Option<OrphanDf>> {
    let path = dir.join(id.df_name());
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(Some(OrphanDf {
            bytes: meta.len(),
            changed: change_time(&meta),
            path,
            id,
        })),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The inode change time to the nanosecond: cut to whole seconds, a df written a
/// moment ago could look a second older and pass a short `orphan_age`.
fn change_time(meta: &Metadata) -> SystemTime {
    let secs = u64::try_from(meta.ctime()).unwrap_or(0);
    let nanos = u32::try_from(meta.ctime_nsec()).unwrap_or(0);
    SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn touch(path: &Path, bytes: usize, age_secs: u64) {
        fs::write(path, vec![b'x'; bytes]).unwrap();
        let when = SystemTime::now() - Duration::from_secs(age_secs);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    #[test]
    fn lists_oldest_first_with_sizes_and_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(&d.join("qfNEW00000000001"), 10, 5);
        touch(&d.join("dfNEW00000000001"), 100, 5);
        touch(&d.join("qfOLD00000000001"), 20, 500);
        touch(&d.join("dfOLD00000000001"), 200, 500);
        touch(&d.join("qfNODF0000000001"), 30, 50);
        touch(&d.join("dfLONELY00000001"), 7, 50);
        touch(&d.join(".gitkeep"), 0, 0);
        touch(&d.join("tfNEW00000000001"), 3, 0);
        let listing = list_dir(d).unwrap();
        let ids: Vec<_> = listing.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["OLD00000000001", "NODF0000000001", "NEW00000000001"]);
        assert_eq!(listing.entries[0].bytes(), 220);
        assert_eq!(listing.entries[1].df_bytes, None);
        assert_eq!(listing.orphan_dfs.len(), 1);
        assert_eq!(listing.orphan_dfs[0].id.as_str(), "LONELY00000001");
        assert_eq!(listing.total_bytes(), 110 + 220 + 30);
    }

    #[test]
    fn a_cached_listing_sees_new_replaced_and_gone_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(&d.join("qfA00000000001"), 10, 50);
        touch(&d.join("dfA00000000001"), 100, 50);
        touch(&d.join("qfB00000000001"), 20, 40);
        touch(&d.join("dfB00000000001"), 200, 40);
        let mut cache = ListingCache::default();
        let first = cache.list(d).unwrap();
        assert_eq!(first.total_bytes(), 330);

        // A replaced qf (a new inode, as sendmail's tf rename makes) is statted again;
        // a removed entry is gone; a new one appears; a df left alone is an orphan with
        // its current size.
        touch(&d.join("qfA00000000001.new"), 15, 5);
        fs::rename(d.join("qfA00000000001.new"), d.join("qfA00000000001")).unwrap();
        fs::remove_file(d.join("qfB00000000001")).unwrap();
        touch(&d.join("qfC00000000001"), 30, 30);
        touch(&d.join("dfC00000000001"), 300, 30);
        let second = cache.list(d).unwrap();
        let fresh = list_dir(d).unwrap();
        let summary = |l: &DirListing| -> Vec<(String, u64, Option<u64>, SystemTime)> {
            l.entries
                .iter()
                .map(|e| (e.id.to_string(), e.qf_bytes, e.df_bytes, e.queued))
                .collect()
        };
        assert_eq!(summary(&second), summary(&fresh));
        let ids: Vec<_> = second.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["C00000000001", "A00000000001"]);
        assert_eq!(second.entries[1].qf_bytes, 15);
        assert_eq!(second.orphan_dfs.len(), 1);
        assert_eq!(second.orphan_dfs[0].id.as_str(), "B00000000001");
        assert_eq!(second.orphan_dfs[0].bytes, 200);
    }
}
