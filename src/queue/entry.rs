//! Listing a queue directory: its entries (a `qf` and, normally, its `df`) with sizes and
//! ages, oldest first, plus the `df` files that have no `qf` beside them.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
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
    let mut qfs: Vec<(QueueId, Metadata)> = Vec::new();
    let mut dfs: HashMap<QueueId, Metadata> = HashMap::new();
    let reader = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for item in reader {
        let item = item.map_err(|e| Error::io(dir, e))?;
        let name = item.file_name();
        let Some((kind, id)) = name.to_str().and_then(QueueId::from_file_name) else {
            continue;
        };
        if kind != "qf" && kind != "df" {
            continue;
        }
        let meta = match item.metadata() {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(item.path(), e)),
        };
        if kind == "qf" {
            qfs.push((id, meta));
        } else {
            dfs.insert(id, meta);
        }
    }
    let mut entries: Vec<Entry> = qfs
        .into_iter()
        .map(|(id, meta)| {
            let df_bytes = dfs.remove(&id).map(|df| df.len());
            Entry {
                dir: dir.to_path_buf(),
                qf_bytes: meta.len(),
                df_bytes,
                queued: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                id,
            }
        })
        .collect();
    entries.sort_by(|a, b| a.queued.cmp(&b.queued).then_with(|| a.id.cmp(&b.id)));
    let mut orphan_dfs: Vec<OrphanDf> = dfs
        .into_iter()
        .map(|(id, meta)| OrphanDf {
            path: dir.join(id.df_name()),
            bytes: meta.len(),
            changed: change_time(&meta),
            id,
        })
        .collect();
    orphan_dfs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(DirListing {
        entries,
        orphan_dfs,
    })
}

fn change_time(meta: &Metadata) -> SystemTime {
    let secs = u64::try_from(meta.ctime()).unwrap_or(0);
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
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
}
