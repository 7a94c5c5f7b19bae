//! Following several logs at once (`ptail`): each new complete line comes out tagged
//! with its log's name, printed `<name>| <line>`. A log that is truncated is read again
//! from its start; one that is rotated (a new file at the path) is read to its end and
//! then the new file from its start. A watched directory's new `*.log` files are picked up.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::queue::Spool;

/// One line of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailLine {
    /// The log's file stem (`feed1` for `feed1.log`).
    pub name: String,
    /// The line without its newline.
    pub line: String,
}

impl fmt::Display for TailLine {
    /// `feed1| feed1: Stats: ...`: SIE's own lines already start with the process name,
    /// so the log name is set off by `|` rather than by another colon.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}| {}", self.name, self.line)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct TailError {
    pub path: PathBuf,
    pub source: io::Error,
}

fn tail_err(path: &Path) -> impl FnOnce(io::Error) -> TailError + '_ {
    move |source| TailError {
        path: path.to_path_buf(),
        source,
    }
}

/// A log named on the command line: a path, or a process name (`feed1`, `feed1.log`)
/// meaning that process's log in the spool.
pub fn log_path(spool: &Spool, arg: &str) -> PathBuf {
    let path = Path::new(arg);
    if arg.contains('/') || path.exists() {
        path.to_path_buf()
    } else {
        spool.log_file(arg.strip_suffix(".log").unwrap_or(arg))
    }
}

/// Every `*.log` in the spool's log directory, sorted by name.
pub fn spool_logs(spool: &Spool) -> Result<Vec<PathBuf>, TailError> {
    let dir = spool.logs_dir();
    let mut logs = Vec::new();
    for item in fs::read_dir(&dir).map_err(tail_err(&dir))? {
        let path = item.map_err(tail_err(&dir))?.path();
        if path.extension().is_some_and(|e| e == "log") && path.is_file() {
            logs.push(path);
        }
    }
    logs.sort();
    Ok(logs)
}

/// One followed file.
#[derive(Debug)]
struct Source {
    name: String,
    path: PathBuf,
    /// The open file and its (device, inode); `None` until the path exists.
    open: Option<(File, (u64, u64))>,
    /// Bytes of the open file already read.
    pos: u64,
    /// The start of a line whose newline has not been written yet.
    partial: Vec<u8>,
}

impl Source {
    fn new(path: PathBuf) -> Source {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Source {
            name,
            path,
            open: None,
            pos: 0,
            partial: Vec::new(),
        }
    }

    /// Opens the file at the path, if there is one.
    fn open(&mut self) -> Result<bool, TailError> {
        match File::open(&self.path) {
            Ok(file) => {
                let meta = file.metadata().map_err(tail_err(&self.path))?;
                self.open = Some((file, (meta.dev(), meta.ino())));
                self.pos = 0;
                self.partial.clear();
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(tail_err(&self.path)(e)),
        }
    }

    /// Opens the file and returns its last `n` complete lines; following starts at its
    /// current end.
    fn start(&mut self, n: usize) -> Result<Vec<TailLine>, TailError> {
        if !self.open()? {
            return Ok(Vec::new());
        }
        let Some((file, _)) = self.open.as_mut() else {
            return Ok(Vec::new());
        };
        let len = file.metadata().map_err(tail_err(&self.path))?.len();
        let text = last_lines(file, len, n).map_err(tail_err(&self.path))?;
        self.pos = len;
        let mut lines = self.split(&text);
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
        Ok(lines)
    }

    /// New complete lines since the last call.
    fn poll(&mut self) -> Result<Vec<TailLine>, TailError> {
        let mut lines = Vec::new();
        if self.open.is_none() && !self.open()? {
            return Ok(lines);
        }
        lines.extend(self.read_new()?);
        let current = match fs::metadata(&self.path) {
            Ok(meta) => Some((meta.dev(), meta.ino())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(tail_err(&self.path)(e)),
        };
        let held = self.open.as_ref().map(|(_, id)| *id);
        if current.is_some() && current != held {
            // Rotated: the old file is drained above; finish its last line, go on with
            // the new file from its start.
            if !self.partial.is_empty() {
                let rest = std::mem::take(&mut self.partial);
                lines.push(self.line(&rest));
            }
            if self.open()? {
                lines.extend(self.read_new()?);
            }
        }
        Ok(lines)
    }

    fn read_new(&mut self) -> Result<Vec<TailLine>, TailError> {
        let Some((file, _)) = self.open.as_mut() else {
            return Ok(Vec::new());
        };
        let len = file.metadata().map_err(tail_err(&self.path))?.len();
        if len < self.pos {
            // Truncated: whatever is there now is new.
            self.pos = 0;
            self.partial.clear();
        }
        if len == self.pos {
            return Ok(Vec::new());
        }
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(self.pos))
            .and_then(|_| file.take(len - self.pos).read_to_end(&mut bytes))
            .map_err(tail_err(&self.path))?;
        self.pos += bytes.len() as u64;
        Ok(self.split(&bytes))
    }

    /// Complete lines of `partial` + `bytes`; the unfinished end stays in `partial`.
    fn split(&mut self, bytes: &[u8]) -> Vec<TailLine> {
        let mut data = std::mem::take(&mut self.partial);
        data.extend_from_slice(bytes);
        let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = data.split_off(complete);
        data.split_inclusive(|&b| b == b'\n')
            .map(|raw| self.line(&raw[..raw.len() - 1]))
            .collect()
    }

    fn line(&self, raw: &[u8]) -> TailLine {
        TailLine {
            name: self.name.clone(),
            line: String::from_utf8_lossy(raw).into_owned(),
        }
    }
}

/// The bytes holding the last `n` lines of a `len`-byte file (and a partial line after
/// them), read backwards in blocks so a big log is not read whole.
fn last_lines(file: &mut File, len: u64, n: usize) -> io::Result<Vec<u8>> {
    const BLOCK: u64 = 8192;
    let mut start = len;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        // The last complete line ends at the last newline; count newlines before it.
        let end = tail.iter().rposition(|&b| b == b'\n').unwrap_or(0);
        let newlines = tail[..end].iter().filter(|&&b| b == b'\n').count();
        if start == 0 || (tail.contains(&b'\n') && newlines >= n) {
            break;
        }
        let from = start.saturating_sub(BLOCK);
        let mut block = vec![0; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut block)?;
        block.extend_from_slice(&tail);
        tail = block;
        start = from;
    }
    if start > 0 {
        // The first line in the buffer may be cut: keep only what follows a newline.
        let cut = tail
            .iter()
            .position(|&b| b == b'\n')
            .map_or(tail.len(), |i| i + 1);
        tail.drain(..cut);
    }
    Ok(tail)
}

/// Several logs followed together.
#[derive(Debug, Default)]
pub struct Follower {
    sources: Vec<Source>,
    /// A directory whose `*.log` files are all followed, new ones included.
    dir: Option<PathBuf>,
}

impl Follower {
    /// Follows the given files (a file that does not exist yet is read from its start
    /// once it appears).
    pub fn files(paths: impl IntoIterator<Item = PathBuf>) -> Follower {
        Follower {
            sources: paths.into_iter().map(Source::new).collect(),
            dir: None,
        }
    }

    /// Follows every `*.log` in `dir`, including logs created later.
    pub fn dir(dir: &Path) -> Result<Follower, TailError> {
        let mut follower = Follower {
            sources: Vec::new(),
            dir: Some(dir.to_path_buf()),
        };
        follower.scan_dir()?;
        Ok(follower)
    }

    /// The names being followed, in order.
    pub fn names(&self) -> Vec<&str> {
        self.sources.iter().map(|s| s.name.as_str()).collect()
    }

    fn scan_dir(&mut self) -> Result<(), TailError> {
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        let known: HashSet<PathBuf> = self.sources.iter().map(|s| s.path.clone()).collect();
        let mut found = Vec::new();
        for item in fs::read_dir(&dir).map_err(tail_err(&dir))? {
            let path = item.map_err(tail_err(&dir))?.path();
            if path.extension().is_some_and(|e| e == "log") && !known.contains(&path) {
                found.push(path);
            }
        }
        found.sort();
        self.sources.extend(found.into_iter().map(Source::new));
        Ok(())
    }

    /// Opens every log present and returns the last `n` lines of each (log by log);
    /// following goes on from their current ends.
    pub fn start(&mut self, n: usize) -> Result<Vec<TailLine>, TailError> {
        let mut lines = Vec::new();
        for source in &mut self.sources {
            lines.extend(source.start(n)?);
        }
        Ok(lines)
    }

    /// The lines written to any log since the last call (call every 200 ms or so).
    pub fn poll(&mut self) -> Result<Vec<TailLine>, TailError> {
        self.scan_dir()?;
        let mut lines = Vec::new();
        for source in &mut self.sources {
            lines.extend(source.poll()?);
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    fn shown(lines: Vec<TailLine>) -> Vec<String> {
        lines.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn starts_with_the_last_lines_then_follows_appends() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("feed1.log");
        let many: String = (1..=3000).map(|i| format!("feed1: line {i}\n")).collect();
        append(&log, &many);
        let mut follower = Follower::files([log.clone()]);
        assert_eq!(
            shown(follower.start(2).unwrap()),
            ["feed1| feed1: line 2999", "feed1| feed1: line 3000"]
        );
        assert!(follower.poll().unwrap().is_empty());
        append(&log, "feed1: new\nfeed1: half");
        assert_eq!(shown(follower.poll().unwrap()), ["feed1| feed1: new"]);
        append(&log, " done\n");
        assert_eq!(shown(follower.poll().unwrap()), ["feed1| feed1: half done"]);
    }

    #[test]
    fn short_files_and_zero_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("feed.log");
        append(&log, "a\nb\n");
        assert_eq!(
            shown(Follower::files([log.clone()]).start(10).unwrap()),
            ["feed| a", "feed| b"]
        );
        let mut follower = Follower::files([log.clone()]);
        assert!(follower.start(0).unwrap().is_empty());
        append(&log, "c\n");
        assert_eq!(shown(follower.poll().unwrap()), ["feed| c"]);
    }

    #[test]
    fn truncation_restarts_from_the_top() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("feed2.log");
        append(&log, "old line one\nold line two\n");
        let mut follower = Follower::files([log.clone()]);
        follower.start(0).unwrap();
        fs::write(&log, "x\n").unwrap();
        assert_eq!(shown(follower.poll().unwrap()), ["feed2| x"]);
    }

    #[test]
    fn rotation_drains_the_old_file_then_reads_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("feed3.log");
        append(&log, "before\n");
        let mut follower = Follower::files([log.clone()]);
        follower.start(5).unwrap();
        append(&log, "last of old\n");
        fs::rename(&log, dir.path().join("feed3.log.1")).unwrap();
        // Not yet recreated: nothing is lost, nothing is invented.
        assert_eq!(shown(follower.poll().unwrap()), ["feed3| last of old"]);
        append(&dir.path().join("feed3.log.1"), "late write to old\n");
        append(&log, "first of new\n");
        assert_eq!(
            shown(follower.poll().unwrap()),
            ["feed3| late write to old", "feed3| first of new"]
        );
        append(&log, "second of new\n");
        assert_eq!(shown(follower.poll().unwrap()), ["feed3| second of new"]);
    }

    #[test]
    fn a_watched_directory_picks_up_new_logs() {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("feed.log"), "feed: started\n");
        append(&dir.path().join("notes.txt"), "not a log\n");
        let mut follower = Follower::dir(dir.path()).unwrap();
        assert_eq!(follower.names(), ["feed"]);
        assert_eq!(shown(follower.start(1).unwrap()), ["feed| feed: started"]);
        append(&dir.path().join("feed4.log"), "feed4: one\nfeed4: two\n");
        append(&dir.path().join("feed.log"), "feed: more\n");
        assert_eq!(
            shown(follower.poll().unwrap()),
            ["feed| feed: more", "feed4| feed4: one", "feed4| feed4: two"]
        );
        assert_eq!(follower.names(), ["feed", "feed4"]);
    }
}
