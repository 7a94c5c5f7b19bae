//! The process logs in `sie/logs/<process>.log`: human lines prefixed with the process
//! name, some dated (`feed1: Thu May 23 10:18:10 EDT 2002: Started pass ...`). Each line
//! is one append-mode write, so lines never interleave. `rotate` may rename a log away
//! at any time: each line is written under a shared flock, and only after checking that
//! the path still names the open file (else the log is reopened at its path); `rotate`
//! takes the renamed file's flock exclusively once, after which no line can reach it.

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
}

impl ProcessLog {
    pub fn new(name: &str, path: PathBuf, echo: bool) -> ProcessLog {
        ProcessLog {
            name: name.to_string(),
            path,
            file: None,
            echo,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the file so the next line reopens it (after a rotation).
    pub fn reopen(&mut self) {
        self.file = None;
    }

    /// `<name>: <text>`
    pub fn line(&mut self, text: &str) {
        let line = format!("{}: {text}\n", self.name);
        self.write(&line);
    }

    /// `<name>: <date>: <text>`
    pub fn dated(&mut self, text: &str) {
        let line = format!("{}: {}: {text}\n", self.name, log_date(Local::now()));
        self.write(&line);
    }

    fn write(&mut self, line: &str) {
        if self.echo {
            eprint!("{line}");
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
