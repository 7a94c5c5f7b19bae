//! What `msgscan` reads: a queue id (looked up in every queue of the spool), an `.eml`
//! file, an mbox (split into its messages), any other file, or a directory (every file
//! below it). Each becomes one or more inputs, read only when they are scanned.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::queue::qf::ControlFile;
use crate::queue::read::read_expected;
use crate::queue::{QueueId, Spool};
use crate::rules::RuleSet;
use crate::rules::exceptions::Envelope;
use crate::scan::{ScanOptions, Verdict, scan_file_with_rules, scan_message_with_rules};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}: no such file, and no queue of the spool holds an entry with this id")]
    NotFound(String),
    #[error("{path}: control file: {problem}")]
    BadQueueEntry { path: PathBuf, problem: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InputError + '_ {
    move |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One thing to scan, not read yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A queue entry: its control file and body.
    Entry {
        queue: String,
        dir: PathBuf,
        id: QueueId,
    },
    /// A file: a message, an mbox, or any other file.
    File(PathBuf),
}

/// Content ready to scan.
#[derive(Debug)]
pub struct Input {
    /// What to call it in reports: a path, `path#3` for the third message of an mbox,
    /// or `queue/ID`.
    pub label: String,
    pub content: Content,
    /// Envelope sender and recipients, known for queue entries.
    pub envelope: Option<(String, Vec<String>)>,
}

#[derive(Debug)]
pub enum Content {
    /// An RFC 822 message (headers, blank line, body).
    Message(Vec<u8>),
    /// Any other file, scanned as an attachment called `name`.
    File { name: String, bytes: Vec<u8> },
}

/// Turns msgscan's arguments into sources: paths that exist are files or directories
/// (walked recursively, in name order); anything else is looked up as a queue id.
pub fn sources(args: &[String], spool: &Spool) -> Result<Vec<Source>, InputError> {
    let mut found = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        if path.is_dir() {
            for item in walkdir::WalkDir::new(path).sort_by_file_name() {
                let item = item.map_err(|e| {
                    let path = e.path().unwrap_or(path).to_path_buf();
                    InputError::Io {
                        path,
                        source: e.into(),
                    }
                })?;
                if item.file_type().is_file() {
                    found.push(Source::File(item.into_path()));
                }
            }
        } else if path.exists() {
            found.push(Source::File(path.to_path_buf()));
        } else {
            found.push(find_entry(arg, spool)?);
        }
    }
    Ok(found)
}

fn find_entry(arg: &str, spool: &Spool) -> Result<Source, InputError> {
    let id = QueueId::parse(arg.strip_prefix("qf").unwrap_or(arg))
        .ok_or_else(|| InputError::NotFound(arg.to_string()))?;
    for queue in spool.queue_names() {
        let Ok(dir) = spool.queue_dir(&queue) else {
            continue;
        };
        if dir.join(id.qf_name()).is_file() {
            return Ok(Source::Entry { queue, dir, id });
        }
    }
    Err(InputError::NotFound(arg.to_string()))
}

/// Reads a source: one input, or one per message for an mbox.
pub fn read(source: &Source) -> Result<Vec<Input>, InputError> {
    match source {
        Source::Entry { queue, dir, id } => {
            let qf_path = dir.join(id.qf_name());
            let qf = fs::read(&qf_path).map_err(io_err(&qf_path))?;
            let control = ControlFile::parse(&qf).map_err(|e| InputError::BadQueueEntry {
                path: qf_path.clone(),
                problem: e.to_string(),
            })?;
            let df = dir.join(id.df_name());
            let (message, _) = assemble_message(&control, &df).map_err(io_err(&df))?;
            Ok(vec![Input {
                label: format!("{queue}/{id}"),
                content: Content::Message(message),
                envelope: Some((control.sender().unwrap_or_default(), control.recipients())),
            }])
        }
        Source::File(path) => read_file(path),
    }
}

fn read_file(path: &Path) -> Result<Vec<Input>, InputError> {
    let label = path.display().to_string();
    let mut head = Vec::new();
    File::open(path)
        .and_then(|file| file.take(8192).read_to_end(&mut head))
        .map_err(io_err(path))?;
    if head.starts_with(b"From ") {
        let file = File::open(path).map_err(io_err(path))?;
        let mut inputs = Vec::new();
        for (n, message) in
            mail_parser::mailbox::mbox::MessageIterator::new(BufReader::new(file)).enumerate()
        {
            let message = message.map_err(io_err(path))?;
            inputs.push(Input {
                label: format!("{label}#{}", n + 1),
                content: Content::Message(message.unwrap_contents()),
                envelope: None,
            });
        }
        return Ok(inputs);
    }
    let bytes = fs::read(path).map_err(io_err(path))?;
    let content = if looks_like_message(&head) {
        Content::Message(bytes)
    } else {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Content::File { name, bytes }
    };
    Ok(vec![Input {
        label,
        content,
        envelope: None,
    }])
}

/// Scans one input. A message is scanned as a queued one would be (spam rules as
/// `options` say); any other file is scanned as the root object, as `clamscan FILE`
/// does: its name, its members if it is an archive, its bytes, and no spam rules.
pub fn scan_input(input: &Input, options: &ScanOptions, rules: &RuleSet) -> Verdict {
    let no_recipients = Vec::new();
    let (sender, recipients) = match &input.envelope {
        Some((sender, recipients)) => (sender.as_str(), recipients),
        None => ("", &no_recipients),
    };
    let envelope = Envelope { sender, recipients };
    match &input.content {
        Content::Message(message) => scan_message_with_rules(message, options, rules, &envelope),
        Content::File { name, bytes } => {
            scan_file_with_rules(name, bytes, options, rules, &envelope)
        }
    }
}

/// A message starts with header fields (`Name: value`, folded lines allowed) and has a
/// blank line or the end of the file after them.
pub fn looks_like_message(head: &[u8]) -> bool {
    let mut fields = 0;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return fields > 0;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if fields == 0 {
                return false;
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return false;
        };
        let name_ok = colon > 0 && line[..colon].iter().all(|&b| b.is_ascii_graphic());
        if !name_ok {
            return false;
        }
        fields += 1;
    }
    fields > 0
}

/// The message as the relay mailer sends it: the control file's header section, a
/// blank line, then the df. Also returns the size of the df.
pub fn assemble_message(control: &ControlFile, df: &Path) -> io::Result<(Vec<u8>, u64)> {
    let mut message = control.header_section();
    message.push(b'\n');
    let file = File::open(df)?;
    let size = file.metadata()?.len();
    let body = read_expected(&file, size, u64::MAX, &mut message)?;
    Ok((message, body as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::qf::ControlFileBuilder;

    #[test]
    fn messages_files_and_mboxes_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let eml = dir.path().join("a.eml");
        fs::write(&eml, "From: a@b\nSubject: x\n\tfolded\n\nbody\n").unwrap();
        let mbox = dir.path().join("box");
        fs::write(&mbox, "From a@b Sat Nov 21 23:23:53 2026\nSubject: one\n\n1\n>From here\n\nFrom c@d Sat Nov 21 23:23:54 2026\nSubject: two\n\n2\n").unwrap();
        let zip = dir.path().join("x.zip");
        fs::write(&zip, b"PK\x03\x04binary").unwrap();
        let spool = Spool::new(dir.path().join("queues"), 1);
        let found = sources(&[dir.path().to_string_lossy().into_owned()], &spool).unwrap();
        assert_eq!(
            found,
            [
                Source::File(eml.clone()),
                Source::File(mbox.clone()),
                Source::File(zip.clone())
            ]
        );
        let inputs = read(&Source::File(eml)).unwrap();
        assert!(matches!(inputs[0].content, Content::Message(_)));
        let inputs = read(&Source::File(mbox)).unwrap();
        assert_eq!(inputs.len(), 2);
        assert!(inputs[1].label.ends_with("box#2"));
        let Content::Message(first) = &inputs[0].content else {
            panic!()
        };
        assert!(
            String::from_utf8_lossy(first).contains("\nFrom here"),
            "mboxrd unquoting"
        );
        let inputs = read(&Source::File(zip)).unwrap();
        assert!(matches!(&inputs[0].content, Content::File { name, .. } if name == "x.zip"));
    }

    #[test]
    fn a_queue_id_is_found_in_any_queue() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path(), 2);
        spool.ensure_tree().unwrap();
        let virus = spool.queue_dir("virus").unwrap();
        let qf = ControlFileBuilder {
            created: 1,
            sender: "a@b.test".into(),
            recipients: vec!["c@d.test".into()],
            helo: "b.test".into(),
            headers: vec![("Subject".into(), "held".into())],
            body_bytes: 5,
        }
        .build();
        fs::write(virus.join("qf6ALNNrgA023896"), qf).unwrap();
        fs::write(virus.join("df6ALNNrgA023896"), "body\n").unwrap();
        let found = sources(&["6ALNNrgA023896".to_string()], &spool).unwrap();
        let inputs = read(&found[0]).unwrap();
        assert_eq!(inputs[0].label, "virus/6ALNNrgA023896");
        let Content::Message(message) = &inputs[0].content else {
            panic!()
        };
        assert!(message.ends_with(b"Subject: held\n\nbody\n"));
        assert_eq!(inputs[0].envelope.as_ref().unwrap().1, ["<c@d.test>"]);
        assert!(matches!(
            sources(&["NOSUCHID000000".to_string()], &spool),
            Err(InputError::NotFound(_))
        ));
    }

    #[test]
    fn a_plain_file_is_scanned_as_an_attachment_of_its_name() {
        let (rules, _) = RuleSet::shipped().unwrap();
        let options = ScanOptions::default();
        let file = |name: &str, bytes: Vec<u8>| Input {
            label: name.into(),
            content: Content::File {
                name: name.into(),
                bytes,
            },
            envelope: None,
        };
        let verdict = scan_input(
            &file("eicar.bin", crate::scan::virus::eicar_test_file()),
            &options,
            &rules,
        );
        assert_eq!(verdict.kind, crate::scan::VerdictKind::Virus);
        assert!(verdict.location.contains("eicar.bin"), "{verdict:?}");
        let verdict = scan_input(&file("setup.exe", b"MZ".to_vec()), &options, &rules);
        assert_eq!(verdict.kind, crate::scan::VerdictKind::Ext);
        let verdict = scan_input(&file("a\"b.txt", b"plain".to_vec()), &options, &rules);
        assert_eq!(verdict.kind, crate::scan::VerdictKind::Clean, "{verdict:?}");
    }

    #[test]
    fn message_detection() {
        assert!(looks_like_message(b"Received: x\nFrom: y\n\nbody"));
        assert!(looks_like_message(b"Subject: only headers"));
        assert!(!looks_like_message(b"\x7fELF\x02"));
        assert!(!looks_like_message(b"hello world\n"));
        assert!(!looks_like_message(b" Folded: first\n"));
    }
}
