//! Test-data generators for benchmarks and tests: a corpus of realistic messages
//! (`gen-corpus`) and a ClamAV-compatible signature set (`gen-sigs`).
//!
//! # Determinism
//!
//! Output depends only on the arguments: the same seed and arguments give byte-identical
//! files (every message draws from its own SplitMix64 stream keyed by seed and index, so
//! the parallel writer's thread timing does not matter; archives carry fixed timestamps).
//! The one outside influence is the compressor: zip and tar.gz members are deflated by
//! the `flate2` backend the build links, so "byte-identical" holds for the same build of
//! the generator. File modification times are not part of the output.
//!
//! # Corpus layout (`gen-corpus --out DIR`)
//!
//! ```text
//! DIR/queue/qf<ID> df<ID>   sendmail 8 entries (--format queue|both), mode 0600, the df
//!                           written first and the qf through tf<ID> renamed over it
//! DIR/eml/<ID>.eml          the same messages as RFC 822 files (--format eml|both)
//! DIR/MANIFEST.tsv          id, bytes, kind, where, class: one line per message
//! ```
//!
//! `bytes` is the RFC 822 size (the `.eml` file; the header section of the qf plus the df).
//! `kind` is `clean`, `eicar`, `ext` or `spam`; `where` tells where the finding is
//! (`zip-in-zip:bundle.zip/inner.zip/eicar.com`, `attachment:invoice.pdf.exe`,
//! `spam:ip-url,caps-subject`, `-` for clean); `class` is `small`, `medium` or `big`.
//! Line ends are LF, as sendmail stores a df.
//!
//! # Signature layout (`gen-sigs --out DIR`)
//!
//! ```text
//! DIR/gen.ndb   Name:0:*:HexSig     body signatures, static and with wildcards
//! DIR/gen.hdb   MD5:Size:Name       whole-file MD5 hashes
//! DIR/gen.hsb   SHA256:Size:Name    whole-file SHA-256 hashes
//! DIR/CORPUS-MATCHES.tsv            with --match-corpus: which message each corpus
//!                                   hash signature matches
//! ```
//!
//! Both SIE and `clamscan -d DIR` load the directory; see [`sigs`] for the rules the
//! patterns obey.

pub mod attach;
pub mod message;
pub mod rng;
pub mod sigs;
pub mod text;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use message::{CorpusSpec, Hiding, Kind, Message, Mix, Plan, SizeClass, queue_id};

/// Which files `gen-corpus` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// sendmail queue entries in `DIR/queue/`.
    Queue,
    /// RFC 822 files in `DIR/eml/`.
    Eml,
    /// Both.
    Both,
}

impl Format {
    fn queue(self) -> bool {
        matches!(self, Format::Queue | Format::Both)
    }

    fn eml(self) -> bool {
        matches!(self, Format::Eml | Format::Both)
    }
}

pub const MANIFEST: &str = "MANIFEST.tsv";
pub const MANIFEST_HEADER: &str = "id\tbytes\tkind\twhere\tclass";

/// One line of `MANIFEST.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    pub id: String,
    /// RFC 822 size of the message.
    pub bytes: u64,
    pub kind: Kind,
    pub hidden: String,
    pub class: SizeClass,
}

impl ManifestRow {
    fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\n",
            self.id,
            self.bytes,
            self.kind.as_str(),
            self.hidden,
            self.class.as_str()
        )
    }

    /// The EICAR hiding place, from the `where` column.
    pub fn hiding(&self) -> Option<Hiding> {
        let place = self.hidden.split(':').next()?;
        Hiding::ALL.into_iter().find(|h| h.as_str() == place)
    }
}

/// What a corpus run wrote.
#[derive(Debug, Clone, Default)]
pub struct CorpusSummary {
    pub messages: usize,
    /// RFC 822 bytes of all messages.
    pub bytes: u64,
    /// Bytes written to disk (qf + df + eml + manifest).
    pub written: u64,
    pub files: usize,
    pub kinds: BTreeMap<&'static str, usize>,
    pub classes: BTreeMap<&'static str, (usize, u64)>,
}

/// Generates the corpus of `plan` into `out` (see the module doc for the layout).
///
/// `out` may exist; if it already holds a corpus (`MANIFEST.tsv`, or files in `queue/` or
/// `eml/`) it is refused unless `force`, which removes those three (and nothing else).
///
/// # Errors
///
/// Any file-system error, or an existing corpus without `force`.
pub fn write_corpus(
    plan: &Plan,
    out: &Path,
    format: Format,
    force: bool,
) -> io::Result<CorpusSummary> {
    let queue_dir = out.join("queue");
    let eml_dir = out.join("eml");
    let manifest = out.join(MANIFEST);
    let occupied = |dir: &Path| {
        fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    };
    if manifest.exists() || occupied(&queue_dir) || occupied(&eml_dir) {
        if !force {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} already holds a corpus (use --force to replace it)",
                    out.display()
                ),
            ));
        }
        for dir in [&queue_dir, &eml_dir] {
            if dir.exists() {
                fs::remove_dir_all(dir)?;
            }
        }
        if manifest.exists() {
            fs::remove_file(&manifest)?;
        }
    }
    fs::create_dir_all(out)?;
    if format.queue() {
        fs::create_dir_all(&queue_dir)?;
    }
    if format.eml() {
        fs::create_dir_all(&eml_dir)?;
    }

    let rows: Vec<(ManifestRow, u64, usize)> = (0..plan.kinds.len())
        .into_par_iter()
        .map(|index| {
            let message = plan.message(index);
            let mut written = 0;
            let mut files = 0;
            if format.queue() {
                written += write_entry(&queue_dir, &message)?;
                files += 2;
            }
            let eml = message.eml();
            if format.eml() {
                write_new(&eml_dir.join(format!("{}.eml", message.id)), &eml)?;
                written += eml.len() as u64;
                files += 1;
            }
            let row = ManifestRow {
                id: message.id,
                bytes: eml.len() as u64,
                kind: message.kind,
                hidden: message.hidden,
                class: message.class,
            };
            Ok((row, written, files))
        })
        .collect::<io::Result<_>>()?;

    let mut summary = CorpusSummary::default();
    let mut text = String::with_capacity(rows.len() * 64 + 64);
    text.push_str(MANIFEST_HEADER);
    text.push('\n');
    for (row, written, files) in &rows {
        text.push_str(&row.line());
        summary.messages += 1;
        summary.bytes += row.bytes;
        summary.written += written;
        summary.files += files;
        *summary.kinds.entry(row.kind.as_str()).or_default() += 1;
        let class = summary.classes.entry(row.class.as_str()).or_default();
        class.0 += 1;
        class.1 += row.bytes;
    }
    let tmp = out.join(format!("{MANIFEST}.tmp"));
    fs::write(&tmp, &text)?;
    fs::rename(&tmp, &manifest)?;
    summary.written += text.len() as u64;
    summary.files += 1;
    Ok(summary)
}

/// Writes one queue entry the way sendmail does: `df` first, then the control file as
/// `tf<ID>` renamed to `qf<ID>`. Returns the bytes written.
fn write_entry(dir: &Path, message: &Message) -> io::Result<u64> {
    write_new(&dir.join(format!("df{}", message.id)), &message.body)?;
    let qf = message.control_file();
    let tf = dir.join(format!("tf{}", message.id));
    write_new(&tf, &qf)?;
    fs::rename(&tf, dir.join(format!("qf{}", message.id)))?;
    Ok((message.body.len() + qf.len()) as u64)
}

/// Creates `path` (it must not exist) with mode 0600, as sendmail's QueueFileMode.
fn write_new(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    file.write_all(data)
}

/// Reads `DIR/MANIFEST.tsv`.
///
/// # Errors
///
/// The file cannot be read, or a line does not have the five columns.
pub fn read_manifest(corpus: &Path) -> io::Result<Vec<ManifestRow>> {
    let path = corpus.join(MANIFEST);
    let text = fs::read_to_string(&path)?;
    let bad = |n: usize| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}:{n}: not a manifest line", path.display()),
        )
    };
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [id, bytes, kind, hidden, class] = cols[..] else {
            return Err(bad(n + 1));
        };
        rows.push(ManifestRow {
            id: id.to_string(),
            bytes: bytes.parse().map_err(|_| bad(n + 1))?,
            kind: Kind::parse(kind).ok_or_else(|| bad(n + 1))?,
            hidden: hidden.to_string(),
            class: SizeClass::parse(class).ok_or_else(|| bad(n + 1))?,
        });
    }
    Ok(rows)
}

/// The RFC 822 bytes of corpus message `id`: the `.eml` if there is one, else the queue
/// entry's header section and df.
///
/// # Errors
///
/// Neither form can be read, or the qf does not parse.
pub fn read_message(corpus: &Path, id: &str) -> io::Result<Vec<u8>> {
    let eml = corpus.join("eml").join(format!("{id}.eml"));
    if eml.exists() {
        return fs::read(eml);
    }
    let queue = corpus.join("queue");
    let qf = fs::read(queue.join(format!("qf{id}")))?;
    let control = crate::queue::qf::ControlFile::parse(&qf)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("qf{id}: {e}")))?;
    let mut message = control.header_section();
    message.push(b'\n');
    message.extend_from_slice(&fs::read(queue.join(format!("df{id}")))?);
    Ok(message)
}

/// The paths a corpus run writes for one message.
pub fn message_paths(corpus: &Path, id: &str) -> [PathBuf; 3] {
    [
        corpus.join("queue").join(format!("qf{id}")),
        corpus.join("queue").join(format!("df{id}")),
        corpus.join("eml").join(format!("{id}.eml")),
    ]
}
