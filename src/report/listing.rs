//! What the queues hold, for admins: `mailq` (one queue entry by entry, in sendmail's
//! succinct `mailq` layout), `qls` (message and byte counts of several queues) and
//! `msgcat` (one entry as the message MTA-out would send). Read-only: nothing here takes
//! sendmail's qf lock, so a listing never makes an MTA or a work process skip an entry.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{Local, TimeZone};
use serde::Serialize;

use crate::queue::qf::{ControlFile, MAX_QF_BYTES, QfError};
use crate::queue::select::IdPatterns;
use crate::queue::{self, Entry, QueueId, Spool, list_dir};

/// The queues `qls` shows when none are named: every message queue but `archive`
/// (which holds dated sub-directories, not entries).
pub fn default_queues(spool: &Spool) -> Vec<String> {
    spool
        .queue_names()
        .into_iter()
        .filter(|q| q != "archive")
        .collect()
}

/// One `qls` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueSummary {
    pub queue: String,
    /// Entries (a qf, with or without its df).
    pub msgs: usize,
    /// qf + df bytes of those entries.
    pub bytes: u64,
    /// df files with no qf beside them (a move in progress, or a crash leftover).
    pub orphan_dfs: usize,
}

/// Counts the entries and bytes of one queue.
pub fn summarize(spool: &Spool, queue: &str) -> queue::Result<QueueSummary> {
    let listing = list_dir(&spool.queue_dir(queue)?)?;
    Ok(QueueSummary {
        queue: queue.to_string(),
        msgs: listing.entries.len(),
        bytes: listing.total_bytes(),
        orphan_dfs: listing.orphan_dfs.len(),
    })
}

/// `<queue> <msgs> <bytes>` per row in aligned columns, then a `total` row.
pub fn write_qls(out: &mut impl Write, rows: &[QueueSummary]) -> io::Result<()> {
    let msgs: usize = rows.iter().map(|r| r.msgs).sum();
    let bytes: u64 = rows.iter().map(|r| r.bytes).sum();
    let name_width = rows.iter().map(|r| r.queue.len()).max().unwrap_or(0).max(5);
    let msgs_width = msgs.to_string().len().max(4);
    let bytes_width = bytes.to_string().len().max(5);
    let totals = [("total", msgs, bytes, 0)];
    let all = rows
        .iter()
        .map(|r| (r.queue.as_str(), r.msgs, r.bytes, r.orphan_dfs))
        .chain(totals);
    for (queue, msgs, bytes, orphans) in all {
        write!(
            out,
            "{queue:<name_width$} {msgs:>msgs_width$} {bytes:>bytes_width$}"
        )?;
        if orphans > 0 {
            write!(out, "  ({orphans} df without qf)")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// One JSON object per row and line: `queue`, `msgs`, `bytes`, `orphan_dfs`.
pub fn write_qls_json(out: &mut impl Write, rows: &[QueueSummary]) -> io::Result<()> {
    for row in rows {
        serde_json::to_writer(&mut *out, row)?;
        writeln!(out)?;
    }
    Ok(())
}

/// The envelope of an entry as `mailq` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub sender: String,
    pub recipients: Vec<String>,
    /// The `M` record: the status sendmail noted at its last attempt (`Deferred: ...`).
    pub status: Option<String>,
    /// The `T` record: when the message was queued, in epoch seconds.
    pub created: Option<i64>,
}

/// One `mailq` line group.
#[derive(Debug, Clone)]
pub struct MailqEntry {
    pub id: QueueId,
    /// qf + df bytes.
    pub bytes: u64,
    pub df_missing: bool,
    /// Another process (an MTA or an SIE pass) holds the qf's lock right now.
    pub locked: bool,
    /// The qf's modification time (shown when the qf has no usable `T` record).
    pub queued: SystemTime,
    /// The envelope, or why the qf could not be read.
    pub envelope: Result<Envelope, String>,
}

impl MailqEntry {
    /// Reads the entry's qf without locking it.
    pub fn read(entry: &Entry) -> MailqEntry {
        MailqEntry {
            id: entry.id.clone(),
            bytes: entry.bytes(),
            df_missing: entry.df_bytes.is_none(),
            locked: qf_is_locked(&entry.qf_path()),
            queued: entry.queued,
            envelope: read_envelope(&entry.qf_path(), entry.qf_bytes),
        }
    }

    /// Queue time in epoch seconds: the `T` record, else the qf's modification time.
    pub fn queued_epoch(&self) -> i64 {
        let mtime = self
            .queued
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        match &self.envelope {
            Ok(Envelope {
                created: Some(t), ..
            }) if *t > 0 => *t,
            _ => mtime,
        }
    }
}

/// Probes the qf's flock with a shared, non-blocking lock, as sendmail's own `mailq`
/// does; the probe is released at once.
fn qf_is_locked(path: &Path) -> bool {
    fs::File::open(path)
        .is_ok_and(|file| matches!(file.try_lock_shared(), Err(fs::TryLockError::WouldBlock)))
}

fn read_envelope(path: &Path, len: u64) -> Result<Envelope, String> {
    if len > MAX_QF_BYTES {
        return Err(QfError::TooLarge(len).to_string());
    }
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let control = ControlFile::parse(&bytes).map_err(|e| e.to_string())?;
    let status = bytes
        .split(|&b| b == b'\n')
        .find(|line| line.first() == Some(&b'M') && line.len() > 1)
        .map(|line| String::from_utf8_lossy(&line[1..]).into_owned());
    Ok(Envelope {
        sender: control.sender().unwrap_or_default(),
        recipients: control.recipients(),
        status,
        created: control.created(),
    })
}

/// The entries of one queue, oldest first, with their envelopes.
pub fn read_queue(spool: &Spool, queue: &str) -> queue::Result<Vec<MailqEntry>> {
    let listing = list_dir(&spool.queue_dir(queue)?)?;
    Ok(listing.entries.iter().map(MailqEntry::read).collect())
}

/// Column where recipients start: id (14) + size (8) + time (16) + three spaces.
const RCPT_INDENT: usize = 41;

/// sendmail's succinct `mailq` layout (its `printqueue()`), with the queue name where
/// sendmail prints the queue directory; a `*` after the id marks an entry locked by an
/// MTA or a pass, as sendmail marks it. Differences, on purpose: the size is qf + df
/// (the bytes the feed balances), and an unreadable qf says why.
pub fn write_mailq(out: &mut impl Write, queue: &str, entries: &[MailqEntry]) -> io::Result<()> {
    let n = entries.len();
    if n == 0 {
        writeln!(out, "\t\t{queue} is empty")?;
    } else {
        let plural = if n == 1 { "" } else { "s" };
        writeln!(out, "\t\t{queue} ({n} request{plural})")?;
        writeln!(
            out,
            "-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------"
        )?;
        for entry in entries {
            write_mailq_entry(out, entry)?;
        }
    }
    writeln!(out, "\t\tTotal requests: {n}")
}

fn write_mailq_entry(out: &mut impl Write, entry: &MailqEntry) -> io::Result<()> {
    let when = queue_time(entry.queued_epoch());
    let mark = if entry.locked { '*' } else { ' ' };
    write!(out, "{:<14}{mark}{:>8} {when:<16} ", entry.id, entry.bytes)?;
    match &entry.envelope {
        Ok(envelope) => {
            writeln!(out, "{}", envelope.sender)?;
            if let Some(status) = &envelope.status {
                writeln!(out, "{:17}({status})", "")?;
            }
            for rcpt in &envelope.recipients {
                writeln!(out, "{:RCPT_INDENT$}{rcpt}", "")?;
            }
        }
        Err(reason) => writeln!(out, "(unreadable: {reason})")?,
    }
    if entry.df_missing {
        writeln!(
            out,
            "{:17}(df missing: the body is lost if this qf is delivered)",
            ""
        )?;
    }
    Ok(())
}

/// `Sat Nov 21 23:23`: ctime(3)'s first 16 characters, in local time, as sendmail shows it.
pub fn queue_time(epoch: i64) -> String {
    match Local.timestamp_opt(epoch, 0).single() {
        Some(when) => when.format("%a %b %e %H:%M").to_string(),
        None => "?".repeat(16),
    }
}

/// Where `msgcat` takes an entry from.
#[derive(Debug, Clone)]
pub struct EntryFiles {
    pub id: QueueId,
    pub qf: PathBuf,
    pub df: PathBuf,
}

impl EntryFiles {
    /// The entry named by a path to its `qf` (or its `df`).
    pub fn from_path(path: &Path) -> Option<EntryFiles> {
        let name = path.file_name()?.to_str()?;
        let (kind, id) = QueueId::from_file_name(name)?;
        if kind != "qf" && kind != "df" {
            return None;
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        Some(EntryFiles {
            qf: dir.join(id.qf_name()),
            df: dir.join(id.df_name()),
            id,
        })
    }

    pub fn in_dir(dir: &Path, id: &QueueId) -> EntryFiles {
        EntryFiles {
            id: id.clone(),
            qf: dir.join(id.qf_name()),
            df: dir.join(id.df_name()),
        }
    }
}

/// The entries `msgcat` is asked for: `<queue> <id-or-glob>...`, or paths of `qf` (or
/// `df`) files. Returns them with a message for each argument that named nothing.
pub fn entries_named(
    spool: &Spool,
    args: &[String],
) -> queue::Result<(Vec<EntryFiles>, Vec<String>)> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    match args.split_first() {
        Some((queue, ids)) if !ids.is_empty() && spool.queue_dir(queue).is_ok() => {
            let dir = spool.queue_dir(queue)?;
            let listing = list_dir(&dir)?;
            for id in ids {
                let chosen = IdPatterns::new(&[id])?.select(&listing.entries);
                if chosen.is_empty() {
                    missing.push(format!("{queue}: no entry matches {id}"));
                }
                found.extend(chosen.iter().map(|e| EntryFiles::in_dir(&dir, &e.id)));
            }
        }
        _ => {
            for arg in args {
                match EntryFiles::from_path(Path::new(arg)) {
                    Some(files) => found.push(files),
                    None => missing.push(format!(
                        "{arg}: not a qf or df file (or name a queue, then ids)"
                    )),
                }
            }
        }
    }
    Ok((found, missing))
}

/// Why `msgcat` could not print an entry in full (it prints what it can).
#[derive(Debug, thiserror::Error)]
pub enum CatError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    BadQf { path: PathBuf, source: QfError },
    #[error("{path}: df missing: the entry has no body")]
    NoDf { path: PathBuf },
}

/// Prints an entry as the message MTA-out would send: the qf's header section, a blank
/// line, the df. With `raw`, the control file as stored, a `--- df ---` line, the df.
/// A missing df is reported after the headers are printed.
pub fn write_entry(out: &mut impl Write, files: &EntryFiles, raw: bool) -> Result<(), CatError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CatError::Io { path, source }
    };
    let qf = fs::read(&files.qf).map_err(io_err(&files.qf))?;
    let stdout_err = |source| CatError::Io {
        path: PathBuf::from("-"),
        source,
    };
    if raw {
        out.write_all(&qf).map_err(stdout_err)?;
        out.write_all(b"--- df ---\n").map_err(stdout_err)?;
    } else {
        let control = ControlFile::parse(&qf).map_err(|source| CatError::BadQf {
            path: files.qf.clone(),
            source,
        })?;
        out.write_all(&control.header_section())
            .map_err(stdout_err)?;
        out.write_all(b"\n").map_err(stdout_err)?;
    }
    let mut df = match fs::File::open(&files.df) {
        Ok(df) => df,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CatError::NoDf {
                path: files.df.clone(),
            });
        }
        Err(e) => return Err(io_err(&files.df)(e)),
    };
    io::copy(&mut df, out).map_err(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            stdout_err(e)
        } else {
            io_err(&files.df)(e)
        }
    })?;
    Ok(())
}

impl CatError {
    /// True when the output itself failed (a closed pipe ends the program quietly).
    pub fn is_output_error(&self) -> bool {
        matches!(self, CatError::Io { path, .. } if path.as_os_str() == "-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The control file sendmail 8.17.1.9 wrote in SENDMAIL.md section 6.3 (as in qf.rs).
    const REAL_QF: &[u8] = b"V8\nT1795303433\nK0\nN0\nP30216\nFbs\n$_localhost [127.0.0.1]\n$rESMTP\n$sclient.test\n${daemon_flags}\nS<sender@client.test>\nrRFC822; rcpt1@dest.test\nRPFD:<rcpt1@dest.test>\nH?P?Return-Path: <\x81g>\nH??Received: from client.test (localhost [127.0.0.1])\n\tby mta.pipeline.test (8.17.1.9/8.17.1.9) with ESMTP id 6ALNNrgA023896\n\tfor <rcpt1@dest.test>; Sat, 21 Nov 2026 23:23:53 GMT\nH??Date: Sat, 21 Nov 2026 23:23:53 +0000\nH??To: rcpt1@dest.test\nH??From: sender@client.test\nH??Subject: test 1\nH??Message-Id: <20261121232353.023895@vm>\nH??X-Mailer: swaks v20201014.0 jetmore.org/john/code/swaks/\n.\n";
    const BODY: &[u8] = b"This is a test mailing\r\n";

    fn spool_with_real_entry() -> (tempfile::TempDir, Spool) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path(), 2);
        spool.ensure_tree().unwrap();
        let inq = spool.queue_dir("in").unwrap();
        fs::write(inq.join("qf6ALNNrgA023896"), REAL_QF).unwrap();
        fs::write(inq.join("df6ALNNrgA023896"), BODY).unwrap();
        (dir, spool)
    }

    #[test]
    fn mailq_shows_a_real_sendmail_entry_like_sendmail() {
        let (_dir, spool) = spool_with_real_entry();
        let entries = read_queue(&spool, "in").unwrap();
        let mut out = Vec::new();
        write_mailq(&mut out, "in", &entries).unwrap();
        let bytes = REAL_QF.len() + BODY.len();
        let when = queue_time(1795303433);
        assert_eq!(when.len(), 16);
        let expected = format!(
            "\t\tin (1 request)\n\
             -----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\n\
             6ALNNrgA023896 {bytes:>8} {when} <sender@client.test>\n\
             {:41}<rcpt1@dest.test>\n\
             \t\tTotal requests: 1\n",
            ""
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn mailq_names_broken_entries_and_empty_queues() {
        let (_dir, spool) = spool_with_real_entry();
        let inq = spool.queue_dir("in").unwrap();
        fs::write(inq.join("qfBROKEN00000001"), b"V8\nS<a@b>\n").unwrap();
        fs::write(
            inq.join("qfNODF0000000001"),
            b"V8\nT1\nS<a@b>\nMDeferred: Connection refused\nRPFD:<c@d>\n.\n",
        )
        .unwrap();
        let entries = read_queue(&spool, "in").unwrap();
        let mut out = Vec::new();
        write_mailq(&mut out, "in", &entries).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("\t\tin (3 requests)\n"), "{text}");
        assert!(
            text.contains("(unreadable: control file does not end with the \".\" terminator"),
            "{text}"
        );
        assert!(text.contains("(Deferred: Connection refused)\n"), "{text}");
        assert!(text.contains("(df missing"), "{text}");
        assert!(text.ends_with("\t\tTotal requests: 3\n"));

        let held =
            crate::queue::lock_entry(&inq, &QueueId::parse("6ALNNrgA023896").unwrap()).unwrap();
        let mut out = Vec::new();
        write_mailq(&mut out, "in", &read_queue(&spool, "in").unwrap()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\n6ALNNrgA023896*"),
            "a locked entry is marked: {text}"
        );
        drop(held);
        let mut out = Vec::new();
        write_mailq(&mut out, "in", &read_queue(&spool, "in").unwrap()).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("\n6ALNNrgA023896 ")
        );

        let mut out = Vec::new();
        write_mailq(&mut out, "out", &read_queue(&spool, "out").unwrap()).unwrap();
        assert_eq!(out, b"\t\tout is empty\n\t\tTotal requests: 0\n");
    }

    #[test]
    fn qls_rows_align_and_total() {
        let (_dir, spool) = spool_with_real_entry();
        let queues = default_queues(&spool);
        assert_eq!(queues[..4], ["in", "feed1", "feed2", "out"]);
        assert!(!queues.iter().any(|q| q == "archive"));
        let rows: Vec<_> = ["in", "feed1", "virus"]
            .iter()
            .map(|q| summarize(&spool, q).unwrap())
            .collect();
        let mut out = Vec::new();
        write_qls(&mut out, &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let bytes = (REAL_QF.len() + BODY.len()).to_string();
        assert_eq!(lines[0], ["in", "1", bytes.as_str()]);
        assert_eq!(lines[1], ["feed1", "0", "0"]);
        assert_eq!(lines[3], ["total", "1", bytes.as_str()]);
        let widths: Vec<usize> = text.lines().map(str::len).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{text}");

        let mut out = Vec::new();
        write_qls_json(&mut out, &rows[..1]).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["queue"], "in");
        assert_eq!(value["msgs"], 1);
    }

    #[test]
    fn msgcat_prints_headers_blank_line_and_body() {
        let (_dir, spool) = spool_with_real_entry();
        let inq = spool.queue_dir("in").unwrap();
        let files = EntryFiles::from_path(&inq.join("qf6ALNNrgA023896")).unwrap();
        let mut out = Vec::new();
        write_entry(&mut out, &files, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("Received: from client.test (localhost [127.0.0.1])\n\tby"));
        assert!(text.ends_with(
            "X-Mailer: swaks v20201014.0 jetmore.org/john/code/swaks/\n\nThis is a test mailing\r\n"
        ));
        assert!(!text.contains("Return-Path"));

        let mut out = Vec::new();
        write_entry(&mut out, &files, true).unwrap();
        let mut expected = REAL_QF.to_vec();
        expected.extend_from_slice(b"--- df ---\n");
        expected.extend_from_slice(BODY);
        assert_eq!(out, expected);

        fs::remove_file(&files.df).unwrap();
        let err = write_entry(&mut Vec::new(), &files, false).unwrap_err();
        assert!(matches!(err, CatError::NoDf { .. }), "{err}");
    }
}
