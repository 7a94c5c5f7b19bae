//! The audit log: one line per login, logout and action, saying who, when, from which
//! address, what, on which entry, and how it ended. Appended and fsynced line by line,
//! so an admin can always tell who released a message.
//!
//! Line format: `<local date> user=<name> addr=<ip:port> action=<what> queue=<q>
//! id=<id> result=<ok|failed|refused> detail="<text>"`; values come from this program
//! or are checked names, and the detail has quotes and control characters escaped.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::Local;

/// One audited event.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub user: &'a str,
    pub addr: SocketAddr,
    pub action: &'a str,
    pub queue: &'a str,
    pub id: &'a str,
    pub result: &'a str,
    pub detail: &'a str,
}

/// The audit log file, written by one console process.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    lock: Mutex<()>,
}

impl AuditLog {
    pub fn new(path: &Path) -> AuditLog {
        AuditLog {
            path: path.to_path_buf(),
            lock: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and fsyncs it.
    pub fn record(&self, event: &Event<'_>) -> std::io::Result<()> {
        let line = format!(
            "{} user={} addr={} action={} queue={} id={} result={} detail=\"{}\"\n",
            Local::now().format("%Y-%m-%d %H:%M:%S %z"),
            word(event.user),
            event.addr,
            word(event.action),
            word(event.queue),
            word(event.id),
            word(event.result),
            escape(event.detail),
        );
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        file.write_all(line.as_bytes())?;
        file.sync_data()
    }
}

/// A value that must stay one word: anything else is replaced by `?`.
fn word(text: &str) -> String {
    if text.is_empty() {
        return "-".to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c if c.is_control() => c.escape_default().collect(),
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_who_what_where_and_stay_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(&dir.path().join("web/audit.log"));
        let event = Event {
            user: "rick",
            addr: "127.0.0.1:4242".parse().unwrap(),
            action: "release",
            queue: "virus",
            id: "6ALNNrgA023896",
            result: "failed",
            detail: "in use\n\"x\" user=evil",
        };
        log.record(&event).unwrap();
        log.record(&Event {
            user: "a b",
            ..event
        })
        .unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].ends_with(
                "user=rick addr=127.0.0.1:4242 action=release queue=virus id=6ALNNrgA023896 result=failed detail=\"in use\\n\\\"x\\\" user=evil\""
            ),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("user=a?b "));
    }
}
