//! The archive that `rotate` writes under `<spool>/archive/<period>/`, and the reader
//! API over it (used by the web console): periods, the entries of a queue's archive,
//! one entry's files, the rotated logs. Reading streams with flate2 + tar.
//!
//! Layout of one period directory (`<period>` is the local date `YYYY-MM-DD` of the
//! run, `YYYY-MM-DD.2`, `.3` ... for later runs of the same day):
//!
//! ```text
//! logs/<name>.log.gz          one process log rotated by this run (gzip)
//! <queue>.tar.gz              a quarantine queue's entries: members qf<ID>, df<ID> and
//! <queue>.<k>.tar.gz          result/<ID> (the result file, when there was one); more
//!                             parts (k = 2, 3 ...) when a run archives more than
//!                             ENTRIES_PER_PART entries of one queue
//! .<file>.tmp                 being written; a crash leaves it, the next run deletes it
//!                             and archives the entries again (they are still queued)
//! <file>.verified             written and verified; its entries are being removed from
//!                             the queue; the next run finishes that, then renames it
//! <part>.count                `<entries> <qf+df bytes>` of a part, for quick listings
//! ```
//!
//! Only final names (`*.tar.gz`, `logs/*.log.gz`) are listed by the reader. `periods`
//! takes counts from the `.count` files (a part without one is read: decompressed, bodies
//! skipped); `entries` holds the qf and result of each entry, never a body.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::queue::durable::{sync_dir, write_atomic};
use crate::queue::qf::{ControlFile, MAX_QF_BYTES, QfError};
use crate::queue::{QueueId, Spool};

/// Queues whose entries `rotate` archives. `delete` and `release` are included: an
/// admin moves mail there to be done with it, and archiving is how it leaves the
/// spool without being destroyed.
pub const ARCHIVED_QUEUES: [&str; 6] = ["virus", "ext", "spam", "error", "delete", "release"];

/// Entries per archive part: each entry's qf stays flocked (one descriptor) until
/// its part is verified, so a part must fit well under the descriptor limit.
pub const ENTRIES_PER_PART: usize = 500;

/// A result file longer than this is cut when read back (they are a few lines).
const MAX_RESULT_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {why}")]
    Corrupt { path: PathBuf, why: String },
    #[error("{0:?} is not a period name (YYYY-MM-DD or YYYY-MM-DD.N)")]
    BadPeriod(String),
    #[error("{0:?} is not an archived queue (one of: {list})", list = ARCHIVED_QUEUES.join(" "))]
    BadQueue(String),
}

impl ArchiveError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> ArchiveError {
        ArchiveError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, ArchiveError>;

/// One period directory and what it holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Period {
    /// `2026-11-22` or `2026-11-22.2`.
    pub name: String,
    pub path: PathBuf,
    /// Archived queues, in `ARCHIVED_QUEUES` order.
    pub queues: Vec<QueueArchive>,
    /// Rotated logs: the process names (`feed1`, `sie` ...), sorted.
    pub logs: Vec<String>,
}

/// One queue's archive within a period.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueArchive {
    pub queue: String,
    /// The part files, first part first.
    pub parts: Vec<PathBuf>,
    pub entries: u64,
    /// qf plus df bytes of the archived entries.
    pub bytes: u64,
    /// Size of the compressed part files.
    pub compressed_bytes: u64,
}

/// One archived entry's files: qf, df and the result file if it had one.
pub type EntryFiles = (Vec<u8>, Vec<u8>, Option<String>);

/// A content's size and SHA-256.
pub(crate) type ContentDigest = (u64, [u8; 32]);

/// One archived entry, without its body.
#[derive(Debug, Clone)]
pub struct ArchivedEntry {
    pub id: QueueId,
    /// The control file as it was queued, byte for byte.
    pub qf: Vec<u8>,
    pub df_len: u64,
    /// The result file saying why the message was quarantined, if it had one.
    pub result: Option<String>,
    /// The qf's modification time (when sendmail queued it).
    pub queued: SystemTime,
}

impl ArchivedEntry {
    pub fn control(&self) -> std::result::Result<ControlFile, QfError> {
        ControlFile::parse(&self.qf)
    }

    pub fn bytes(&self) -> u64 {
        self.qf.len() as u64 + self.df_len
    }
}

/// Whether `name` is a period name: `YYYY-MM-DD`, optionally `.N` with N >= 2.
pub fn is_period_name(name: &str) -> bool {
    let (date, seq) = match name.split_once('.') {
        Some((date, seq)) => (date, Some(seq)),
        None => (name, None),
    };
    let date_ok = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() && date.len() == 10;
    let seq_ok = seq.is_none_or(|s| {
        !s.starts_with('0') && s.parse::<u32>().is_ok_and(|n| n >= 2) && s.len() < 6
    });
    date_ok && seq_ok
}

/// `<spool>/archive`.
pub fn archive_root(spool: &Spool) -> PathBuf {
    spool.root().join("archive")
}

/// The directory of period `name`, refusing names that are not periods.
pub fn period_dir(spool: &Spool, name: &str) -> Result<PathBuf> {
    if is_period_name(name) {
        Ok(archive_root(spool).join(name))
    } else {
        Err(ArchiveError::BadPeriod(name.to_string()))
    }
}

/// Sort key of a period name: date, then run number (`2026-11-22` is run 1).
pub(crate) fn period_order(name: &str) -> (String, u32) {
    match name.split_once('.') {
        Some((date, seq)) => (date.to_string(), seq.parse().unwrap_or(0)),
        None => (name.to_string(), 1),
    }
}

/// The file name of part `k` (1-based) of `queue`'s archive.
pub fn part_name(queue: &str, k: usize) -> String {
    match k {
        1 => format!("{queue}.tar.gz"),
        k => format!("{queue}.{k}.tar.gz"),
    }
}

/// The queue and part number of a final part file name.
pub(crate) fn parse_part_name(name: &str) -> Option<(&'static str, usize)> {
    let stem = name.strip_suffix(".tar.gz")?;
    let (queue, k) = match stem.split_once('.') {
        Some((queue, k)) if !k.starts_with('0') => (queue, k.parse::<usize>().ok()?),
        Some(_) => return None,
        None => (stem, 1),
    };
    let queue = ARCHIVED_QUEUES.iter().find(|q| **q == queue)?;
    (k >= 1).then_some((queue, k))
}

/// Every period, oldest first, with its queue archives counted.
pub fn periods(spool: &Spool) -> Result<Vec<Period>> {
    let root = archive_root(spool);
    let mut names = Vec::new();
    match fs::read_dir(&root) {
        Ok(reader) => {
            for item in reader {
                let item = item.map_err(|e| ArchiveError::io(&root, e))?;
                let name = item.file_name().to_string_lossy().into_owned();
                if is_period_name(&name) && item.path().is_dir() {
                    names.push(name);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ArchiveError::io(root, e)),
    }
    names.sort_by_key(|n| period_order(n));
    names
        .into_iter()
        .map(|name| period(&root.join(&name), &name))
        .collect()
}

/// One period directory, its queue archives counted.
pub fn period(dir: &Path, name: &str) -> Result<Period> {
    let mut queues = Vec::new();
    for queue in ARCHIVED_QUEUES {
        let parts = queue_parts(dir, queue)?;
        if parts.is_empty() {
            continue;
        }
        let mut archive = QueueArchive {
            queue: queue.to_string(),
            parts: parts.clone(),
            entries: 0,
            bytes: 0,
            compressed_bytes: 0,
        };
        for part in &parts {
            archive.compressed_bytes += fs::metadata(part)
                .map_err(|e| ArchiveError::io(part, e))?
                .len();
            let (entries, bytes) = part_count(part)?;
            archive.entries += entries;
            archive.bytes += bytes;
        }
        queues.push(archive);
    }
    Ok(Period {
        name: name.to_string(),
        path: dir.to_path_buf(),
        queues,
        logs: logs(dir)?,
    })
}

/// `<part>.count` beside a part: `<entries> <qf+df bytes>`, so that listing periods
/// need not decompress every part. Written before the part is committed; a part
/// without one (or with an unreadable one) is counted by reading it.
fn count_path(part: &Path) -> PathBuf {
    let name = part
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    part.with_file_name(format!("{name}.count"))
}

/// Entries and qf+df bytes of one part.
fn part_count(part: &Path) -> Result<(u64, u64)> {
    if let Ok(text) = fs::read_to_string(count_path(part))
        && let Some((entries, bytes)) = text.trim().split_once(' ')
        && let (Ok(entries), Ok(bytes)) = (entries.parse(), bytes.parse())
    {
        return Ok((entries, bytes));
    }
    let (mut entries, mut bytes) = (0, 0);
    for_each_member(part, |member| {
        if member.kind == MemberKind::Qf {
            entries += 1;
        }
        if member.kind != MemberKind::Result {
            bytes += member.size;
        }
        Ok(Flow::Skip)
    })?;
    Ok((entries, bytes))
}

/// The final part files of `queue` in a period directory, first part first.
pub fn queue_parts(period_dir: &Path, queue: &str) -> Result<Vec<PathBuf>> {
    if !ARCHIVED_QUEUES.contains(&queue) {
        return Err(ArchiveError::BadQueue(queue.to_string()));
    }
    let mut parts: Vec<(usize, PathBuf)> = Vec::new();
    let reader = match fs::read_dir(period_dir) {
        Ok(reader) => reader,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ArchiveError::io(period_dir, e)),
    };
    for item in reader {
        let item = item.map_err(|e| ArchiveError::io(period_dir, e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if let Some((q, k)) = parse_part_name(&name)
            && q == queue
        {
            parts.push((k, item.path()));
        }
    }
    parts.sort();
    Ok(parts.into_iter().map(|(_, path)| path).collect())
}

/// The rotated logs of a period: process names, sorted.
pub fn logs(period_dir: &Path) -> Result<Vec<String>> {
    let dir = period_dir.join("logs");
    let mut names = Vec::new();
    let reader = match fs::read_dir(&dir) {
        Ok(reader) => reader,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(ArchiveError::io(dir, e)),
    };
    for item in reader {
        let item = item.map_err(|e| ArchiveError::io(&dir, e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".log.gz")
            && !stem.starts_with('.')
        {
            names.push(stem.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// A rotated log, decompressed as it is read.
pub fn open_log(period_dir: &Path, name: &str) -> Result<impl BufRead + use<>> {
    if name.contains('/') || name.starts_with('.') {
        return Err(ArchiveError::Corrupt {
            path: period_dir.join(name),
            why: "not a log name".to_string(),
        });
    }
    let path = period_dir.join("logs").join(format!("{name}.log.gz"));
    let file = File::open(&path).map_err(|e| ArchiveError::io(&path, e))?;
    Ok(BufReader::new(GzDecoder::new(BufReader::new(file))))
}

/// The entries archived from `queue` in a period, in archive order, without bodies.
pub fn entries(period_dir: &Path, queue: &str) -> Result<Vec<ArchivedEntry>> {
    let mut entries: Vec<ArchivedEntry> = Vec::new();
    for part in queue_parts(period_dir, queue)? {
        for_each_member(&part, |member| {
            match member.kind {
                MemberKind::Qf => {
                    let qf = member.read_to_vec(MAX_QF_BYTES)?;
                    entries.push(ArchivedEntry {
                        id: member.id.clone(),
                        qf,
                        df_len: 0,
                        result: None,
                        queued: member.mtime,
                    });
                }
                MemberKind::Df => {
                    if let Some(entry) = entries.iter_mut().rev().find(|e| e.id == member.id) {
                        entry.df_len = member.size;
                    }
                }
                MemberKind::Result => {
                    let text = member.read_to_vec(MAX_RESULT_BYTES)?;
                    if let Some(entry) = entries.iter_mut().rev().find(|e| e.id == member.id) {
                        entry.result = Some(String::from_utf8_lossy(&text).into_owned());
                    }
                }
            }
            Ok(Flow::Skip)
        })?;
    }
    Ok(entries)
}

/// One archived entry's qf, df and result file, or `None` when the period's archive
/// of `queue` does not hold `id`.
pub fn read_entry(period_dir: &Path, queue: &str, id: &str) -> Result<Option<EntryFiles>> {
    let Some(id) = QueueId::parse(id) else {
        return Ok(None);
    };
    for part in queue_parts(period_dir, queue)? {
        let mut found: Option<EntryFiles> = None;
        for_each_member(&part, |member| {
            if member.id != id {
                return Ok(if found.is_some() {
                    Flow::Stop
                } else {
                    Flow::Skip
                });
            }
            let slot = found.get_or_insert_with(Default::default);
            match member.kind {
                MemberKind::Qf => slot.0 = member.read_to_vec(u64::MAX)?,
                MemberKind::Df => slot.1 = member.read_to_vec(u64::MAX)?,
                MemberKind::Result => {
                    let text = member.read_to_vec(MAX_RESULT_BYTES)?;
                    slot.2 = Some(String::from_utf8_lossy(&text).into_owned());
                }
            }
            Ok(Flow::Skip)
        })?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberKind {
    Qf,
    Df,
    Result,
}

/// What a member visitor wants next.
pub(crate) enum Flow {
    Skip,
    Stop,
}

/// One member of a part, its data readable once.
pub(crate) struct Member<'a> {
    pub kind: MemberKind,
    pub id: QueueId,
    pub size: u64,
    pub mtime: SystemTime,
    path: &'a Path,
    data: &'a mut dyn Read,
}

impl Member<'_> {
    /// Reads the member's data, refusing more than `limit` bytes.
    pub fn read_to_vec(&mut self, limit: u64) -> Result<Vec<u8>> {
        if self.size > limit {
            return Err(self.corrupt(format!("member of {} bytes, over {limit}", self.size)));
        }
        let mut data = Vec::with_capacity(self.size.min(1 << 20) as usize);
        self.data
            .read_to_end(&mut data)
            .map_err(|e| ArchiveError::io(self.path, e))?;
        Ok(data)
    }

    /// The member's size and SHA-256, read in bounded chunks.
    pub fn digest(&mut self) -> Result<ContentDigest> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = self
                .data
                .read(&mut buf)
                .map_err(|e| ArchiveError::io(self.path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            total += n as u64;
        }
        Ok((total, hasher.finalize().into()))
    }

    fn corrupt(&self, why: String) -> ArchiveError {
        ArchiveError::Corrupt {
            path: self.path.to_path_buf(),
            why: format!("{} {}: {why}", kind_prefix(self.kind), self.id),
        }
    }
}

fn kind_prefix(kind: MemberKind) -> &'static str {
    match kind {
        MemberKind::Qf => "qf",
        MemberKind::Df => "df",
        MemberKind::Result => "result",
    }
}

/// The kind and id of a member name (`qf<ID>`, `df<ID>`, `result/<ID>`).
fn classify(name: &str) -> Option<(MemberKind, QueueId)> {
    if let Some(id) = name.strip_prefix("result/") {
        return Some((MemberKind::Result, QueueId::parse(id)?));
    }
    match QueueId::from_file_name(name)? {
        ("qf", id) => Some((MemberKind::Qf, id)),
        ("df", id) => Some((MemberKind::Df, id)),
        _ => None,
    }
}

/// Calls `visit` for every member of a part, in order, streaming: memory stays
/// bounded by what `visit` reads. A member with a name that is not an entry file
/// makes the part corrupt.
pub(crate) fn for_each_member(
    part: &Path,
    mut visit: impl FnMut(&mut Member<'_>) -> Result<Flow>,
) -> Result<()> {
    let file = File::open(part).map_err(|e| ArchiveError::io(part, e))?;
    let mut archive = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let corrupt = |why: String| ArchiveError::Corrupt {
        path: part.to_path_buf(),
        why,
    };
    for item in archive.entries().map_err(|e| ArchiveError::io(part, e))? {
        let mut item = item.map_err(|e| ArchiveError::io(part, e))?;
        let name = item
            .path()
            .map_err(|e| ArchiveError::io(part, e))?
            .to_string_lossy()
            .into_owned();
        let (kind, id) =
            classify(&name).ok_or_else(|| corrupt(format!("stray member {name:?}")))?;
        let header = item.header();
        let size = header.size().map_err(|e| ArchiveError::io(part, e))?;
        let mtime = header
            .mtime()
            .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut member = Member {
            kind,
            id,
            size,
            mtime,
            path: part,
            data: &mut item,
        };
        if let Flow::Stop = visit(&mut member)? {
            break;
        }
    }
    Ok(())
}

/// A member's name, size and SHA-256, as written; verification compares them.
type MemberDigest = (String, u64, [u8; 32]);

/// The temp name a file is written under until it is verified.
pub(crate) fn temp_path(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(".{name}.tmp"))
}

/// The name a part has once verified, while its entries are being removed.
pub(crate) fn verified_path(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!("{name}.verified"))
}

fn create_temp(path: &Path) -> Result<File> {
    // A leftover of a crashed run is ours and incomplete: its entries are still queued.
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ArchiveError::io(path, e)),
    }
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ArchiveError::io(path, e))
}

/// Counts and hashes what passes through.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Writes one part of a queue archive under its temp name; `finish` verifies it and
/// gives it its `.verified` name.
pub(crate) struct PartWriter {
    final_path: PathBuf,
    temp: PathBuf,
    builder: tar::Builder<GzEncoder<File>>,
    written: Vec<MemberDigest>,
}

impl PartWriter {
    pub fn create(period_dir: &Path, queue: &str, k: usize) -> Result<PartWriter> {
        let final_path = period_dir.join(part_name(queue, k));
        let temp = temp_path(&final_path);
        let file = create_temp(&temp)?;
        Ok(PartWriter {
            final_path,
            temp,
            builder: tar::Builder::new(GzEncoder::new(file, Compression::default())),
            written: Vec::new(),
        })
    }

    /// Appends a member of `size` bytes read from `data`, dated `mtime`.
    pub fn append(
        &mut self,
        name: &str,
        size: u64,
        mtime: SystemTime,
        data: impl Read,
    ) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mtime(
            mtime
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        let mut hashing = Hashing {
            inner: data.take(size),
            hasher: Sha256::new(),
            bytes: 0,
        };
        self.builder
            .append_data(&mut header, name, &mut hashing)
            .map_err(|e| ArchiveError::io(&self.temp, e))?;
        if hashing.bytes != size {
            return Err(ArchiveError::Corrupt {
                path: self.temp.clone(),
                why: format!("{name}: read {} bytes, expected {size}", hashing.bytes),
            });
        }
        self.written
            .push((name.to_string(), size, hashing.hasher.finalize().into()));
        Ok(())
    }

    /// Finishes and fsyncs the part, reads it back and checks every member (name,
    /// size, SHA-256, order, nothing else), then renames it `<final>.verified` and
    /// fsyncs the directory. Returns the verified path.
    pub fn finish(self) -> Result<PathBuf> {
        let temp = self.temp;
        let encoder = self
            .builder
            .into_inner()
            .map_err(|e| ArchiveError::io(&temp, e))?;
        let file = encoder.finish().map_err(|e| ArchiveError::io(&temp, e))?;
        file.sync_all().map_err(|e| ArchiveError::io(&temp, e))?;
        drop(file);
        verify_part(&temp, &self.written)?;
        let entries = self
            .written
            .iter()
            .filter(|(name, _, _)| name.starts_with("qf"))
            .count();
        let bytes: u64 = self
            .written
            .iter()
            .filter(|(name, _, _)| !name.starts_with("result/"))
            .map(|(_, size, _)| size)
            .sum();
        let count = count_path(&self.final_path);
        write_atomic(&count, format!("{entries} {bytes}\n").as_bytes(), 0o600)
            .map_err(|e| ArchiveError::io(&count, e))?;
        let verified = verified_path(&self.final_path);
        rename_durably(&temp, &verified)?;
        Ok(verified)
    }
}

/// Checks that a part holds exactly `expected`, in order.
fn verify_part(part: &Path, expected: &[MemberDigest]) -> Result<()> {
    let mut at = 0;
    let mut mismatch: Option<String> = None;
    for_each_member(part, |member| {
        let name = match member.kind {
            MemberKind::Result => format!("result/{}", member.id),
            kind => format!("{}{}", kind_prefix(kind), member.id),
        };
        let (size, digest) = member.digest()?;
        match expected.get(at) {
            Some((want, want_size, want_digest))
                if *want == name && *want_size == size && *want_digest == digest => {}
            _ => {
                mismatch = Some(format!("member {at} ({name}, {size} bytes) differs"));
                return Ok(Flow::Stop);
            }
        }
        at += 1;
        Ok(Flow::Skip)
    })?;
    if mismatch.is_none() && at != expected.len() {
        mismatch = Some(format!(
            "{at} members read back, {} written",
            expected.len()
        ));
    }
    match mismatch {
        None => Ok(()),
        Some(why) => Err(ArchiveError::Corrupt {
            path: part.to_path_buf(),
            why: format!("verification failed: {why}"),
        }),
    }
}

/// Gives a verified part its final name: its entries are no longer queued.
pub(crate) fn commit_part(verified: &Path) -> Result<PathBuf> {
    let final_path = verified.with_extension("");
    rename_durably(verified, &final_path)?;
    Ok(final_path)
}

fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| ArchiveError::io(from, e))?;
    let dir = to.parent().unwrap_or(Path::new("."));
    sync_dir(dir).map_err(|e| ArchiveError::io(dir, e))
}

/// Compresses `source` into `<period>/logs/<name>.log.gz`: written under a temp name,
/// fsynced, decompressed again and compared (size and SHA-256) with the source, then
/// renamed into place and the directory fsynced. The source is left alone.
pub(crate) fn write_log_gz(source: &Path, period_dir: &Path, name: &str) -> Result<PathBuf> {
    let dir = period_dir.join("logs");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| ArchiveError::io(&dir, e))?;
    let final_path = dir.join(format!("{name}.log.gz"));
    let temp = temp_path(&final_path);
    let mut encoder = GzEncoder::new(create_temp(&temp)?, Compression::default());
    let input = File::open(source).map_err(|e| ArchiveError::io(source, e))?;
    let mut hashing = Hashing {
        inner: BufReader::new(input),
        hasher: Sha256::new(),
        bytes: 0,
    };
    io::copy(&mut hashing, &mut encoder).map_err(|e| ArchiveError::io(&temp, e))?;
    let file = encoder.finish().map_err(|e| ArchiveError::io(&temp, e))?;
    file.sync_all().map_err(|e| ArchiveError::io(&temp, e))?;
    drop(file);
    let want: ContentDigest = (hashing.bytes, hashing.hasher.finalize().into());
    if gz_digest(&temp)? != want {
        return Err(ArchiveError::Corrupt {
            path: temp,
            why: format!("does not decompress to {}", source.display()),
        });
    }
    rename_durably(&temp, &final_path)?;
    Ok(final_path)
}

/// Size and SHA-256 of a file's content.
pub(crate) fn file_digest(path: &Path) -> Result<ContentDigest> {
    let file = File::open(path).map_err(|e| ArchiveError::io(path, e))?;
    digest_of(BufReader::new(file), path)
}

/// Size and SHA-256 of a gzip file's decompressed content.
pub(crate) fn gz_digest(path: &Path) -> Result<ContentDigest> {
    let file = File::open(path).map_err(|e| ArchiveError::io(path, e))?;
    digest_of(GzDecoder::new(BufReader::new(file)), path)
}

fn digest_of(data: impl Read, path: &Path) -> Result<ContentDigest> {
    let mut hashing = Hashing {
        inner: data,
        hasher: Sha256::new(),
        bytes: 0,
    };
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| ArchiveError::io(path, e))?;
    Ok((hashing.bytes, hashing.hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_names() {
        assert!(is_period_name("2026-11-22"));
        assert!(is_period_name("2026-11-22.2"));
        assert!(is_period_name("2026-11-22.17"));
        assert!(!is_period_name("2026-11-22.1"));
        assert!(!is_period_name("2026-11-22.02"));
        assert!(!is_period_name("2026-13-22"));
        assert!(!is_period_name("../etc"));
        assert!(!is_period_name("2026-11-22/x"));
        let mut names = vec!["2026-11-22.10", "2026-11-22.2", "2026-11-21", "2026-11-22"];
        names.sort_by_key(|n| period_order(n));
        assert_eq!(
            names,
            ["2026-11-21", "2026-11-22", "2026-11-22.2", "2026-11-22.10"]
        );
    }

    #[test]
    fn part_names_round_trip() {
        assert_eq!(part_name("virus", 1), "virus.tar.gz");
        assert_eq!(part_name("virus", 3), "virus.3.tar.gz");
        assert_eq!(parse_part_name("virus.tar.gz"), Some(("virus", 1)));
        assert_eq!(parse_part_name("spam.12.tar.gz"), Some(("spam", 12)));
        assert_eq!(parse_part_name("out.tar.gz"), None);
        assert_eq!(parse_part_name(".virus.tar.gz.tmp"), None);
        assert_eq!(parse_part_name("virus.tar.gz.verified"), None);
        assert_eq!(parse_part_name("virus.0.tar.gz"), None);
    }

    fn write_part(dir: &Path, queue: &str, k: usize, ids: &[&str]) -> PathBuf {
        let mut part = PartWriter::create(dir, queue, k).unwrap();
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_303_433);
        for id in ids {
            let qf = format!("V8\nT1795303433\nS<a@b>\nRPFD:<c@d>\nHSubject: {id}\n.\n");
            let df = format!("body of {id}\n");
            part.append(&format!("qf{id}"), qf.len() as u64, when, qf.as_bytes())
                .unwrap();
            part.append(&format!("df{id}"), df.len() as u64, when, df.as_bytes())
                .unwrap();
            let result = format!("verdict: virus\nname: Eicar\n{id}\n");
            part.append(
                &format!("result/{id}"),
                result.len() as u64,
                when,
                result.as_bytes(),
            )
            .unwrap();
        }
        let verified = part.finish().unwrap();
        assert!(verified.to_string_lossy().ends_with(".tar.gz.verified"));
        commit_part(&verified).unwrap()
    }

    #[test]
    fn written_parts_read_back_entry_by_entry() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::new(root.path().join("queues"), 5);
        let dir = period_dir(&spool, "2026-11-22").unwrap();
        fs::create_dir_all(&dir).unwrap();
        write_part(&dir, "virus", 1, &["6ALNNrgA000001", "6ALNNrgA000002"]);
        write_part(&dir, "virus", 2, &["6ALNNrgA000003"]);
        write_part(&dir, "spam", 1, &["6ALNNrgA000009"]);
        fs::write(dir.join(".virus.3.tar.gz.tmp"), b"half written").unwrap();

        let listed = entries(&dir, "virus").unwrap();
        let ids: Vec<_> = listed.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["6ALNNrgA000001", "6ALNNrgA000002", "6ALNNrgA000003"]);
        assert_eq!(listed[2].df_len, "body of 6ALNNrgA000003\n".len() as u64);
        assert!(listed[1].result.as_deref().unwrap().contains("Eicar"));
        assert_eq!(
            listed[0].control().unwrap().header("Subject").as_deref(),
            Some("6ALNNrgA000001")
        );
        let (qf, df, result) = read_entry(&dir, "virus", "6ALNNrgA000003")
            .unwrap()
            .unwrap();
        assert!(qf.ends_with(b"\n.\n"));
        assert_eq!(df, b"body of 6ALNNrgA000003\n");
        assert!(result.unwrap().ends_with("6ALNNrgA000003\n"));
        assert!(
            read_entry(&dir, "virus", "6ALNNrgA000009")
                .unwrap()
                .is_none()
        );
        assert!(read_entry(&dir, "virus", "../x").unwrap().is_none());
        assert!(entries(&dir, "out").is_err());

        let all = periods(&spool).unwrap();
        assert_eq!(all.len(), 1);
        let virus = &all[0].queues[0];
        assert_eq!(
            (virus.queue.as_str(), virus.entries, virus.parts.len()),
            ("virus", 3, 2)
        );
        let one = listed.iter().map(ArchivedEntry::bytes).sum::<u64>();
        assert_eq!(virus.bytes, one);
        for part in &virus.parts {
            fs::remove_file(count_path(part)).unwrap();
        }
        let scanned = &periods(&spool).unwrap()[0].queues[0];
        assert_eq!(
            (scanned.entries, scanned.bytes),
            (3, one),
            "counted by reading"
        );
        assert_eq!(all[0].queues[1].queue, "spam");
    }

    #[test]
    fn a_log_is_compressed_and_verified() {
        let root = tempfile::tempdir().unwrap();
        let source = root.path().join("feed1.log.2026-11-22");
        fs::write(&source, "feed1: one\nfeed1: two\n").unwrap();
        let period = root.path().join("2026-11-22");
        let gz = write_log_gz(&source, &period, "feed1").unwrap();
        assert_eq!(gz_digest(&gz).unwrap(), file_digest(&source).unwrap());
        assert_eq!(logs(&period).unwrap(), ["feed1"]);
        let mut text = String::new();
        open_log(&period, "feed1")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "feed1: one\nfeed1: two\n");
    }
}
