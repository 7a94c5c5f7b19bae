//! Durable file writes: a temp file in the same directory, `sync_all`, `rename`, then an
//! fsync of the directory, so a crash leaves either the old file or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static TEMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `contents` atomically and durably, with the given mode.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    write_synced(path, contents, mode)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Replaces `path` with `contents` atomically, its data made durable, but leaves the
/// fsync of its directory to the caller: files written together then share one
/// directory fsync. Until that fsync, a crash may leave the old file (or none).
pub fn write_synced(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    replace(path, contents, mode, true)
}

/// Replaces `path` with `contents` atomically (readers see the old or the new file,
/// never part of one) but without fsync: for advisory files such as `free.<queue>`,
/// rewritten every pass, whose loss in a crash costs nothing.
pub fn replace_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    replace(path, contents, mode, false)
}

fn replace(path: &Path, contents: &[u8], mode: u32, durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // pid + sequence: a leftover temp file of a crashed process with a reused pid is
    // still not reused, because create_new refuses it and the sequence moves on.
    let (temp, mut file) = loop {
        let seq = TEMP_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let candidate = dir.join(format!(".tmp.{name}.{}.{seq}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&candidate)
        {
            Ok(file) => break (candidate, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        file.write_all(contents)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Makes the directory entries of `dir` durable (created, renamed or removed names).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_atomic_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reason");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file is left behind");
    }
}
