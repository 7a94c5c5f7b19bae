//! The process logs in `sie/logs/<process>.log`: human lines prefixed with the process
//! name, some dated (`feed1: Thu May 23 10:18:10 EDT 2002: Started pass ...`). Each line
//! is one append-mode write, so lines never interleave, and the file is reopened every
//! pass so `rotate` can move it away at any time.

pub mod stats_line;
pub mod tail;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use chrono::Local;

pub use stats_line::StatsLine;

use crate::timefmt::log_date;

/// One process's log file.
#[derive(Debug)]
pub struct ProcessLog {
    name: String,
    path: PathBuf,
    file: Option<File>,
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
        if self.file.is_none() {
            self.file = Some(
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o644)
                    .open(&self.path)?,
            );
        }
        match self.file.as_mut() {
            Some(file) => file.write_all(bytes),
            None => Ok(()),
        }
    }
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
}
