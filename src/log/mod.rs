//! The process logs in `sie/logs/<process>.log`: human lines prefixed with the process
//! name, some dated (`feed1: Thu May 23 10:18:10 EDT 2002: Started pass ...`). Each line,
//! or each group of lines a loop holds back during a pass, is one append-mode write, so
//! lines never interleave. `rotate` may rename a log away at any time: each write is made
//! under a shared flock, and only after checking that the path still names the open file
//! (else the log is reopened at its path); `rotate` takes the renamed file's flock
//! exclusively once, after which no line can reach it.

pub mod stats_line;
pub mod tail;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::Local;

pub use stats_line::StatsLine;

use crate::timefmt::log_date;

/// One process's log file.
#[derive(Debug)]
pub struct ProcessLog {
    name: String,
    path: PathBuf,
    /// The open log and its (device, inode).
    file: Option<(File, (u64, u64))>,
    /// Also copy every line to stderr (foreground runs).
    echo: bool,
    /// Lines are gathered in `pending` instead of written one by one (see `hold`).
    held: bool,
    pending: String,
}

/// Held lines are written once they reach this size, so holding never grows without
/// bound, whatever a pass logs.
const MAX_PENDING: usize = 64 * 1024;

impl ProcessLog {
    pub fn new(name: &str, path: PathBuf, echo: bool) -> ProcessLog {
        ProcessLog {
            name: name.to_string(),
            path,
            file: None,
            echo,
            held: false,
            pending: String::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the file so the next line reopens it (after a rotation).
    pub fn reopen(&mut self) {
        self.file = None;
    }

    /// Gathers the lines from now on and writes them together at `flush` or `release`.
    /// A loop holds its lines for a pass: one locked write per pass instead of five
    /// calls per message. Lines keep the time they were made at; they reach the file
    /// after the moves they report are durable, and a process killed in between loses
    /// those lines, never a message.
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// Writes the lines gathered so far; holding goes on.
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            let lines = std::mem::take(&mut self.pending);
            self.write(&lines);
        }
    }

    /// Writes the lines gathered so far, and every later line at once.
    pub fn release(&mut self) {
        self.flush();
        self.held = false;
    }

    /// `<name>: <text>`
    pub fn line(&mut self, text: &str) {
        let line = format!("{}: {text}\n", self.name);
        self.emit(&line);
    }

    /// `<name>: <date>: <text>`
    pub fn dated(&mut self, text: &str) {
        let line = format!("{}: {}: {text}\n", self.name, log_date(Local::now()));
        self.emit(&line);
    }

    fn emit(&mut self, line: &str) {
        if !self.held {
            return self.write(line);
        }
        self.pending.push_str(line);
        if self.pending.len() >= MAX_PENDING {
            self.flush();
        }
    }

    fn write(&mut self, line: &str) {
        if self.echo {
            let _ = io::stderr().lock().write_all(line.as_bytes());
        }
        // A log that cannot be written must not stop mail: report it once per reopen.
        if let Err(e) = self.append(line.as_bytes()) {
            eprintln!("{}: cannot write {}: {e}", self.name, self.path.display());
            self.file = None;
        }
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        // Renamed away again between reopening and locking only if rotations follow
        // each other within microseconds; a few tries are plenty.
        for _ in 0..8 {
            let (file, identity) = match self.file.take() {
                Some(open) => open,
                None => {
                    let file = OpenOptions::new()
                        .append(true)
                        .create(true)
                        .mode(0o644)
                        .open(&self.path)?;
                    let meta = file.metadata()?;
                    (file, (meta.dev(), meta.ino()))
                }
            };
            file.lock_shared()?;
            if names_file(&self.path, identity) {
                let written = (&file).write_all(bytes);
                file.unlock()?;
                self.file = Some((file, identity));
                return written;
            }
            // Rotated: this file is rotate's now; the line goes to a new one at the path.
            file.unlock()?;
        }
        Err(io::Error::other("the log keeps being renamed away"))
    }
}

impl Drop for ProcessLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Whether `path` names the file with this (device, inode).
fn names_file(path: &Path, identity: (u64, u64)) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| (meta.dev(), meta.ino()) == identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_process_name_and_survive_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feed1.log");
        let mut log = ProcessLog::new("feed1", path.clone(), false);
        log.dated("Started pass 1.");
        log.line("Clean, moving: 6ALNNrgA023896");
        std::fs::rename(&path, dir.path().join("feed1.log.1")).unwrap();
        log.reopen();
        log.line("after rotation");
        let old = std::fs::read_to_string(dir.path().join("feed1.log.1")).unwrap();
        let lines: Vec<_> = old.lines().collect();
        assert!(lines[0].starts_with("feed1: ") && lines[0].ends_with(": Started pass 1."));
        assert_eq!(lines[1], "feed1: Clean, moving: 6ALNNrgA023896");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "feed1: after rotation\n"
        );
    }

    #[test]
    fn held_lines_reach_the_file_together_on_flush_release_or_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feed1.log");
        let read = || std::fs::read_to_string(&path).unwrap_or_default();
        let mut log = ProcessLog::new("feed1", path.clone(), false);
        log.hold();
        log.line("Clean, moving: 6ALNNrgA023896");
        log.line("Spam, moving: 6ALNNrgA023897");
        assert_eq!(read(), "", "held lines wait for the flush");
        log.flush();
        assert_eq!(
            read(),
            "feed1: Clean, moving: 6ALNNrgA023896\nfeed1: Spam, moving: 6ALNNrgA023897\n"
        );
        log.line("still held");
        log.release();
        log.line("written at once");
        assert!(read().ends_with("feed1: still held\nfeed1: written at once\n"));
        log.hold();
        log.line("written when dropped");
        drop(log);
        assert!(read().ends_with("feed1: written when dropped\n"));
    }

    #[test]
    fn held_lines_are_written_once_they_fill_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feed.log");
        let mut log = ProcessLog::new("feed", path.clone(), false);
        log.hold();
        let text = "x".repeat(1000);
        for _ in 0..(MAX_PENDING / 1000 + 1) {
            log.line(&text);
        }
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(
            written.len() >= MAX_PENDING,
            "{} bytes written",
            written.len()
        );
        assert!(log.pending.len() < MAX_PENDING);
    }

    #[test]
    fn a_renamed_log_gets_no_line_after_its_exclusive_flock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feed1.log");
        let mut log = ProcessLog::new("feed1", path.clone(), false);
        log.line("before");
        let rotated = dir.path().join("feed1.log.2026-11-22");
        std::fs::rename(&path, &rotated).unwrap();
        let held = File::open(&rotated).unwrap();
        held.lock().unwrap();
        held.unlock().unwrap();
        log.line("after");
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            "feed1: before\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "feed1: after\n");
    }
}
