//! sendmail 8.x control files (`qf`, version 8): records kept byte for byte so an entry is
//! never rewritten differently from how sendmail wrote it; the envelope and headers are
//! read out for scanning and listing. Format: SENDMAIL.md section 6, sendmail's `readqf()`.

use std::fmt::Write as _;

/// Control files larger than this are not read into memory; such an entry goes to `error`.
pub const MAX_QF_BYTES: u64 = 4 << 20;

/// Why a control file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QfError {
    #[error("control file is empty")]
    Empty,
    #[error("control file does not end with the \".\" terminator line (truncated)")]
    NoTerminator,
    #[error("control file has data after the \".\" terminator line")]
    DataAfterTerminator,
    #[error("control file has no S (sender) record")]
    NoSender,
    #[error("control file has no R (recipient) record")]
    NoRecipient,
    #[error("control file version {0} is newer than 8")]
    VersionTooNew(u32),
    #[error("control file is {0} bytes, more than the {MAX_QF_BYTES}-byte limit")]
    TooLarge(u64),
    #[error("control file line {0} is a continuation with nothing to continue")]
    StrayContinuation(usize),
}

/// One record: its first line plus any continuation lines, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    raw: Vec<u8>,
}

impl Record {
    fn kind(&self) -> u8 {
        self.raw[0]
    }

    /// The record after its type letter, without the final newline.
    fn body(&self) -> &[u8] {
        let end = self.raw.len() - usize::from(self.raw.ends_with(b"\n"));
        &self.raw[1..end]
    }
}

/// A parsed control file. `to_bytes()` gives back the input exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFile {
    records: Vec<Record>,
}

impl ControlFile {
    pub fn parse(bytes: &[u8]) -> Result<ControlFile, QfError> {
        if bytes.is_empty() {
            return Err(QfError::Empty);
        }
        if !bytes.ends_with(b"\n") {
            return Err(QfError::NoTerminator);
        }
        let mut records: Vec<Record> = Vec::new();
        let mut terminated = false;
        for (index, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
            if terminated {
                return Err(QfError::DataAfterTerminator);
            }
            if line[0] == b' ' || line[0] == b'\t' {
                match records.last_mut() {
                    Some(record) => record.raw.extend_from_slice(line),
                    None => return Err(QfError::StrayContinuation(index + 1)),
                }
                continue;
            }
            if line == b".\n" {
                terminated = true;
            }
            records.push(Record { raw: line.to_vec() });
        }
        if !terminated {
            return Err(QfError::NoTerminator);
        }
        let control = ControlFile { records };
        if control.version() > 8 {
            return Err(QfError::VersionTooNew(control.version()));
        }
        if control.sender().is_none() {
            return Err(QfError::NoSender);
        }
        if control.recipients().is_empty() {
            return Err(QfError::NoRecipient);
        }
        Ok(control)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.records
            .iter()
            .flat_map(|r| r.raw.iter().copied())
            .collect()
    }

    fn first(&self, kind: u8) -> Option<&Record> {
        self.records.iter().find(|r| r.kind() == kind)
    }

    /// The `V` record; 0 when absent, as sendmail reads it.
    pub fn version(&self) -> u32 {
        self.first(b'V')
            .and_then(|r| std::str::from_utf8(r.body()).ok()?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The `T` record: when the message was queued, in epoch seconds.
    pub fn created(&self) -> Option<i64> {
        self.first(b'T')
            .and_then(|r| std::str::from_utf8(r.body()).ok()?.trim().parse().ok())
    }

    /// The envelope sender as written (`<a@b>`, or `<>` for the null sender).
    pub fn sender(&self) -> Option<String> {
        self.first(b'S')
            .map(|r| String::from_utf8_lossy(r.body()).into_owned())
    }

    /// The envelope recipients: the address part of each `R<flags>:<addr>` record.
    pub fn recipients(&self) -> Vec<String> {
        self.records
            .iter()
            .filter(|r| r.kind() == b'R')
            .map(|r| {
                let body = r.body();
                let addr = match body.iter().position(|&b| b == b':') {
                    Some(colon) => &body[colon + 1..],
                    None => body,
                };
                String::from_utf8_lossy(addr).into_owned()
            })
            .collect()
    }

    /// The header section as the relay mailer sends it: every `H` record without its
    /// `?flags?` condition, except headers conditional on the `P` flag (Return-Path),
    /// which SMTP relaying drops.
    pub fn header_section(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for record in self.records.iter().filter(|r| r.kind() == b'H') {
            let raw = &record.raw[1..];
            let text = match raw.strip_prefix(b"?") {
                Some(rest) => match rest.iter().position(|&b| b == b'?') {
                    Some(end) if rest[..end].contains(&b'P') => continue,
                    Some(end) => &rest[end + 1..],
                    None => raw,
                },
                None => raw,
            };
            out.extend_from_slice(text);
        }
        out
    }

    /// The value of the first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let section = self.header_section();
        let text = String::from_utf8_lossy(&section);
        let mut found: Option<String> = None;
        for line in text.split_inclusive('\n') {
            if let Some(value) = found.as_mut() {
                if line.starts_with([' ', '\t']) {
                    value.push(' ');
                    value.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((key, value)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                found = Some(value.trim().to_string());
            }
        }
        found
    }
}

/// Writes a control file the way sendmail 8.17 does for a message received over SMTP
/// (record order of `queueup()`), for tools and tests that queue messages themselves.
#[derive(Debug, Clone)]
pub struct ControlFileBuilder {
    pub created: i64,
    pub sender: String,
    pub recipients: Vec<String>,
    pub helo: String,
    /// Header lines `Name: value`, in order; a value may hold `\n\t` folds.
    pub headers: Vec<(String, String)>,
    /// Body size, used for the priority as sendmail computes it.
    pub body_bytes: u64,
}

impl ControlFileBuilder {
    pub fn build(&self) -> Vec<u8> {
        let priority = self.body_bytes + 30000 * self.recipients.len() as u64;
        let mut text = String::new();
        let _ = write!(
            text,
            "V8\nT{}\nK0\nN0\nP{priority}\nFbs\n$_localhost [127.0.0.1]\n$rESMTP\n$s{}\n${{daemon_flags}}\nS<{}>\n",
            self.created, self.helo, self.sender
        );
        for rcpt in &self.recipients {
            let _ = write!(text, "rRFC822; {rcpt}\nRPFD:<{rcpt}>\n");
        }
        let mut out = text.into_bytes();
        out.extend_from_slice(b"H?P?Return-Path: <\x81g>\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("H??{name}: {value}\n").as_bytes());
        }
        out.extend_from_slice(b".\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control file written by sendmail 8.17.1.9 (Debian) for an SMTP receipt.
    const REAL_QF: &[u8] = b"V8\nT1795303433\nK0\nN0\nP30216\nFbs\n$_localhost [127.0.0.1]\n$rESMTP\n$sclient.test\n${daemon_flags}\nS<sender@client.test>\nrRFC822; rcpt1@dest.test\nRPFD:<rcpt1@dest.test>\nH?P?Return-Path: <\x81g>\nH??Received: from client.test (localhost [127.0.0.1])\n\tby mta.pipeline.test (8.17.1.9/8.17.1.9) with ESMTP id 6ALNNrgA023896\n\tfor <rcpt1@dest.test>; Sat, 21 Nov 2026 23:23:53 GMT\nH??Date: Sat, 21 Nov 2026 23:23:53 +0000\nH??To: rcpt1@dest.test\nH??From: sender@client.test\nH??Subject: test 1\nH??Message-Id: <20261121232353.023895@vm>\nH??X-Mailer: swaks v20201014.0 jetmore.org/john/code/swaks/\n.\n";

    #[test]
    fn real_control_file_round_trips_and_reads_envelope() {
        let qf = ControlFile::parse(REAL_QF).unwrap();
        assert_eq!(qf.to_bytes(), REAL_QF);
        assert_eq!(qf.version(), 8);
        assert_eq!(qf.created(), Some(1795303433));
        assert_eq!(qf.sender().as_deref(), Some("<sender@client.test>"));
        assert_eq!(qf.recipients(), ["<rcpt1@dest.test>"]);
        assert_eq!(qf.header("subject").as_deref(), Some("test 1"));
        let section = String::from_utf8(qf.header_section()).unwrap();
        assert!(section.starts_with("Received: from client.test"));
        assert!(section.contains("\n\tby mta.pipeline.test"));
        assert!(!section.contains("Return-Path"));
        assert!(
            qf.header("received")
                .unwrap()
                .contains("by mta.pipeline.test")
        );
    }

    #[test]
    fn unknown_records_are_kept_byte_for_byte() {
        let mut bytes = REAL_QF[..REAL_QF.len() - 2].to_vec();
        bytes.extend_from_slice(b"Xunknown \xff record\n\tcontinued\n.\n");
        let qf = ControlFile::parse(&bytes).unwrap();
        assert_eq!(qf.to_bytes(), bytes);
    }

    #[test]
    fn broken_control_files_are_named() {
        assert_eq!(ControlFile::parse(b""), Err(QfError::Empty));
        assert_eq!(
            ControlFile::parse(&REAL_QF[..100]),
            Err(QfError::NoTerminator)
        );
        assert_eq!(
            ControlFile::parse(b"V8\nS<a@b>\nRPFD:<c@d>\n.\nX\n"),
            Err(QfError::DataAfterTerminator)
        );
        assert_eq!(
            ControlFile::parse(b"V8\nRPFD:<c@d>\n.\n"),
            Err(QfError::NoSender)
        );
        assert_eq!(
            ControlFile::parse(b"V8\nS<a@b>\n.\n"),
            Err(QfError::NoRecipient)
        );
        assert_eq!(
            ControlFile::parse(b"V9\nS<a@b>\nRPFD:<c@d>\n.\n"),
            Err(QfError::VersionTooNew(9))
        );
        assert_eq!(
            ControlFile::parse(b"\tV8\n.\n"),
            Err(QfError::StrayContinuation(1))
        );
    }

    #[test]
    fn builder_writes_what_the_parser_reads() {
        let builder = ControlFileBuilder {
            created: 1795303433,
            sender: "a@client.test".into(),
            recipients: vec!["b@dest.test".into(), "c@dest.test".into()],
            helo: "client.test".into(),
            headers: vec![
                ("Subject".into(), "hello".into()),
                ("X-Long".into(), "one\n\ttwo".into()),
            ],
            body_bytes: 216,
        };
        let bytes = builder.build();
        let qf = ControlFile::parse(&bytes).unwrap();
        assert_eq!(qf.recipients(), ["<b@dest.test>", "<c@dest.test>"]);
        assert_eq!(qf.header("X-Long").as_deref(), Some("one two"));
        assert!(bytes.starts_with(b"V8\nT1795303433\nK0\nN0\nP60216\nFbs\n"));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            if let Ok(qf) = ControlFile::parse(&bytes) {
                proptest::prop_assert_eq!(qf.to_bytes(), bytes);
            }
        }
    }
}
