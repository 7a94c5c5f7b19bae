//! Archives inside parts: recognizes zip, gzip, bzip2 and tar by their bytes
//! (never by name) and hands each member, extracted in memory within the
//! scan's [`Budget`], back to the scan as a [`Member`].
//!
//! Nothing is written to disk, so member names are never used as paths: they
//! are only reported and checked against the blocked extensions. Readers are
//! always read in bounded chunks, with the member size, the message's
//! decoded bytes and its clock checked between chunks, so a bomb costs at
//! most the limits whatever sizes it claims.
//!
//! The zip crate reads only the directory and finds each member's raw bytes;
//! members are decompressed here, with flate2 and bzip2, so the member's
//! claimed size and checksum do not decide how much of it is seen.

use std::borrow::Cow;
use std::io::{self, Cursor, Read};
use std::ops::ControlFlow;

use zip::CompressionMethod;
use zip::ZipArchive;

use super::ext::display_name;
use super::limits::{Budget, Exceeded, Limit};

/// The archive formats the scan opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Zip,
    Gzip,
    Bzip2,
    Tar,
}

impl ArchiveKind {
    /// The ClamAV container type of the archive's members, as signature
    /// sets restrict matches by it.
    pub fn container(self) -> &'static str {
        match self {
            ArchiveKind::Zip => "CL_TYPE_ZIP",
            ArchiveKind::Gzip => "CL_TYPE_GZ",
            ArchiveKind::Bzip2 => "CL_TYPE_BZ",
            ArchiveKind::Tar => "CL_TYPE_TAR",
        }
    }

    /// The format as named in notes: `zip archive`, `gzip file` ...
    pub fn label(self) -> &'static str {
        match self {
            ArchiveKind::Zip => "zip archive",
            ArchiveKind::Gzip => "gzip file",
            ArchiveKind::Bzip2 => "bzip2 file",
            ArchiveKind::Tar => "tar archive",
        }
    }
}

/// An archive format recognized in some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    pub kind: ArchiveKind,
    /// The bytes start like the format. When false (a zip directory found
    /// at the end of other data, as in self-extracting and junk-prefixed
    /// zips), a failure to open is no sign of damage.
    pub certain: bool,
}

/// The format of `data` if it is an archive, judged by its first bytes, or
/// for a zip also by a directory record near its end.
pub fn detect(data: &[u8]) -> Option<Detected> {
    let certain = |kind| {
        Some(Detected {
            kind,
            certain: true,
        })
    };
    const ZIP_STARTS: [&[u8]; 4] = [
        b"PK\x03\x04", // a local file header
        b"PK\x05\x06", // the end record of an empty archive
        b"PK\x07\x08", // the marker of a spanned archive
        b"PK00PK\x03\x04",
    ];
    if ZIP_STARTS.iter().any(|start| data.starts_with(start)) {
        return certain(ArchiveKind::Zip);
    }
    if data.starts_with(b"\x1f\x8b\x08") {
        return certain(ArchiveKind::Gzip);
    }
    if is_bzip2(data) {
        return certain(ArchiveKind::Bzip2);
    }
    if is_tar(data) {
        return certain(ArchiveKind::Tar);
    }
    has_zip_end_record(data).then_some(Detected {
        kind: ArchiveKind::Zip,
        certain: false,
    })
}

/// `BZh`, a block size digit, then the magic of a block or of the end of
/// the stream.
fn is_bzip2(data: &[u8]) -> bool {
    const BLOCK: &[u8] = b"\x31\x41\x59\x26\x53\x59";
    const END: &[u8] = b"\x17\x72\x45\x38\x50\x90";
    data.len() >= 10
        && data.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&data[3])
        && (&data[4..10] == BLOCK || &data[4..10] == END)
}

/// A POSIX tar header (`ustar` at offset 257), or an old-style one whose
/// checksum is right.
fn is_tar(data: &[u8]) -> bool {
    let Some(header) = data.get(..512) else {
        return false;
    };
    if &header[257..262] == b"ustar" {
        return true;
    }
    let stored = header[148..156]
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| (b'0'..=b'7').contains(&b))
        .try_fold(0u32, |sum, &b| {
            sum.checked_mul(8)?.checked_add(u32::from(b - b'0'))
        });
    let digits = header[148..156]
        .iter()
        .filter(|b| (b'0'..=b'7').contains(b))
        .count();
    let unsigned: u32 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| u32::from(if (148..156).contains(&i) { b' ' } else { b }))
        .sum();
    header[0] != 0 && digits > 0 && stored == Some(unsigned)
}

/// An end-of-central-directory record where one can be: in the last 22
/// bytes plus the longest comment.
fn has_zip_end_record(data: &[u8]) -> bool {
    let tail = &data[data.len().saturating_sub(22 + 65_535)..];
    // Only whether there is one matters: the forward search is the vectorised one.
    memchr::memmem::find(tail, b"PK\x05\x06").is_some()
}

/// One member of an archive, as handed to the scan.
#[derive(Debug)]
pub struct Member<'m> {
    /// The names the member goes by, as given: its path in a zip or tar; for
    /// a gzip file the name stored in it and the one the archive's own name
    /// implies (`a.tar` for `a.tar.gz`).
    pub names: &'m [&'m str],
    /// `<archive location> > <name shown>`.
    pub location: &'m str,
    pub content: Content<'m>,
}

/// What could be read of a member.
#[derive(Debug)]
pub enum Content<'m> {
    /// The whole member.
    Data(&'m [u8]),
    /// As much as could be read before the damage `reason` describes.
    Damaged { data: &'m [u8], reason: String },
    /// Encrypted: the name can be checked, the content not.
    Encrypted,
    /// Compressed with a method SIE does not decompress (named).
    UnsupportedMethod(String),
    /// A zip lists this name more than once and the zip reader keeps only
    /// the last entry: the others, which a client may extract, stay unseen.
    DuplicateName,
    /// Bigger than `max_member_bytes`; nothing of it is scanned.
    TooBig(Exceeded),
}

/// How an expansion went, when it went through to the end or a damage.
#[derive(Debug, PartialEq, Eq)]
pub enum Expansion {
    Done,
    /// The archive could not be opened, or not read to the end; `reason`
    /// says why. Members before the damage were handed over.
    Damaged(String),
}

/// Why an expansion stopped early, ending the whole scan.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The scan has seen enough (it said `Break`).
    Scan,
    /// A limit for the whole message (parts, decoded bytes, time).
    Limit(Exceeded),
}

impl From<Exceeded> for Stopped {
    fn from(exceeded: Exceeded) -> Stopped {
        Stopped::Limit(exceeded)
    }
}

/// Hands every member of the `kind` archive `data` to `visit`, in archive
/// order. `name` is the archive's own name, if it has one, and `location`
/// where it is. Each member counts as a part of the message before it is
/// read, and its bytes as decoded bytes while they are.
///
/// # Errors
///
/// `visit` returned `Break`, or a limit for the whole message was hit.
pub fn expand(
    kind: ArchiveKind,
    data: &[u8],
    name: Option<&str>,
    location: &str,
    budget: &Budget<'_>,
    visit: &mut dyn FnMut(&Member<'_>) -> ControlFlow<()>,
) -> Result<Expansion, Stopped> {
    let mut expander = Expander {
        location,
        budget,
        visit,
    };
    match kind {
        ArchiveKind::Zip => expander.zip(data),
        ArchiveKind::Gzip => {
            let stored = gzip_file_name(data);
            let implied = name.and_then(|name| decompressed_name(name, &[".gz", ".z", ".gzip"]));
            let decoder = flate2::read::MultiGzDecoder::new(data);
            expander.single(kind, decoder, [stored, implied], "(gzip content)")
        }
        ArchiveKind::Bzip2 => {
            let implied = name.and_then(|name| decompressed_name(name, &[".bz2", ".bz"]));
            let decoder = bzip2::read::MultiBzDecoder::new(data);
            expander.single(kind, decoder, [implied, None], "(bzip2 content)")
        }
        ArchiveKind::Tar => expander.tar(data),
    }
}

struct Expander<'a, 'b, 'l> {
    location: &'a str,
    budget: &'a Budget<'l>,
    visit: &'b mut dyn FnMut(&Member<'_>) -> ControlFlow<()>,
}

impl Expander<'_, '_, '_> {
    fn member_location(&self, shown: &str) -> String {
        format!("{} > {}", self.location, display_name(shown))
    }

    fn visit(
        &mut self,
        names: &[&str],
        location: &str,
        content: Content<'_>,
    ) -> Result<(), Stopped> {
        let member = Member {
            names,
            location,
            content,
        };
        match (self.visit)(&member) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Stopped::Scan),
        }
    }

    /// Reads `reader` to its end or the member limit and hands the result
    /// over as one member.
    fn read_and_visit(
        &mut self,
        names: &[&str],
        location: &str,
        reader: &mut dyn Read,
    ) -> Result<(), Stopped> {
        match read_member(reader, self.budget, location)? {
            Extracted::Whole(data) => self.visit(names, location, Content::Data(&data)),
            Extracted::Damaged(data, error) => {
                let reason = format!("the member is damaged ({error})");
                self.visit(
                    names,
                    location,
                    Content::Damaged {
                        data: &data,
                        reason,
                    },
                )
            }
            Extracted::TooBig(exceeded) => self.visit(names, location, Content::TooBig(exceeded)),
        }
    }

    /// A gzip or bzip2 file: one member, named by the first of `names` it
    /// has, else `unnamed`.
    fn single(
        &mut self,
        kind: ArchiveKind,
        mut decoder: impl Read,
        names: [Option<String>; 2],
        unnamed: &str,
    ) -> Result<Expansion, Stopped> {
        let mut names: Vec<&str> = names.iter().flatten().map(String::as_str).collect();
        names.dedup();
        let location = self.member_location(names.first().copied().unwrap_or(unnamed));
        self.budget.count_part(|| location.clone())?;
        match read_member(&mut decoder, self.budget, &location)? {
            Extracted::Whole(data) => self.visit(&names, &location, Content::Data(&data))?,
            Extracted::Damaged(data, error) if data.is_empty() => {
                return Ok(Expansion::Damaged(format!(
                    "the {} cannot be read ({error})",
                    kind.label()
                )));
            }
            Extracted::Damaged(data, error) => {
                let reason = format!(
                    "the {} is damaged after {} bytes ({error})",
                    kind.label(),
                    data.len()
                );
                self.visit(
                    &names,
                    &location,
                    Content::Damaged {
                        data: &data,
                        reason,
                    },
                )?;
            }
            Extracted::TooBig(exceeded) => {
                self.visit(&names, &location, Content::TooBig(exceeded))?
            }
        }
        Ok(Expansion::Done)
    }

    fn zip(&mut self, data: &[u8]) -> Result<Expansion, Stopped> {
        // The zip reader keeps its whole directory in memory: refuse one
        // listing more members than the message may still have before it
        // is read. Every directory entry starts with this signature.
        let left = self.budget.parts_left();
        let listed = memchr::memmem::find_iter(data, b"PK\x01\x02")
            .take(left.saturating_add(1))
            .count();
        if listed > left {
            let limits = self.budget.limits();
            return Err(Exceeded::new(Limit::Parts, limits.max_parts, self.location).into());
        }
        let mut archive = match ZipArchive::new(Cursor::new(data)) {
            Ok(archive) => archive,
            Err(error) => {
                return Ok(Expansion::Damaged(format!(
                    "the zip archive cannot be read ({error})"
                )));
            }
        };
        if archive.has_duplicate_names() {
            // The reader does not say which name repeats: the archive itself
            // is reported.
            let location = self.location;
            self.visit(&[], location, Content::DuplicateName)?;
        }
        for index in 0..archive.len() {
            let (name, method, encrypted) = match archive.by_index_data(index) {
                Ok(entry) => (
                    entry
                        .name()
                        .map(Cow::into_owned)
                        .unwrap_or_else(|_| String::from_utf8_lossy(entry.name_raw()).into_owned()),
                    entry.compression(),
                    entry.encrypted(),
                ),
                Err(error) => {
                    return Ok(Expansion::Damaged(format!(
                        "zip directory entry {index} cannot be read ({error})"
                    )));
                }
            };
            let location = self.member_location(&name);
            self.budget.count_part(|| location.clone())?;
            // Directories and symbolic links are read too: their data is
            // normally empty or a path, but an unpacker that ignores Unix
            // modes (any on Windows) saves a "link" as a file.
            let names = [name.as_str()];
            if encrypted {
                self.visit(&names, &location, Content::Encrypted)?;
                continue;
            }
            let mut raw = match archive.by_index_raw(index) {
                Ok(raw) => raw,
                Err(error) => {
                    let reason = format!("the member cannot be found ({error})");
                    self.visit(&names, &location, Content::Damaged { data: &[], reason })?;
                    continue;
                }
            };
            // Matched by value: the zip crate's variants depend on its
            // features, and it decompresses nothing for us.
            if method == CompressionMethod::Stored {
                self.read_and_visit(&names, &location, &mut raw)?;
            } else if method == CompressionMethod::DEFLATE {
                let mut decoder = flate2::read::DeflateDecoder::new(&mut raw);
                self.read_and_visit(&names, &location, &mut decoder)?;
            } else if method == CompressionMethod::BZIP2 {
                let mut decoder = bzip2::read::MultiBzDecoder::new(&mut raw);
                self.read_and_visit(&names, &location, &mut decoder)?;
            } else {
                let method = format!("{method:?}");
                self.visit(&names, &location, Content::UnsupportedMethod(method))?;
            }
        }
        Ok(Expansion::Done)
    }

    /// Tar members are slices of `data`: nothing is copied.
    fn tar(&mut self, data: &[u8]) -> Result<Expansion, Stopped> {
        let mut archive = tar::Archive::new(data);
        let entries = match archive.entries() {
            Ok(entries) => entries,
            Err(error) => {
                return Ok(Expansion::Damaged(format!(
                    "the tar archive cannot be read ({error})"
                )));
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    return Ok(Expansion::Damaged(format!(
                        "the tar archive cannot be read to the end ({error})"
                    )));
                }
            };
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let location = self.member_location(&name);
            self.budget.count_part(|| location.clone())?;
            // Entries that carry no data of their own. Any other type, even
            // an unknown one, is read: GNU tar extracts unknown types as
            // regular files.
            let kind = entry.header().entry_type();
            if kind.is_dir()
                || kind.is_symlink()
                || kind.is_hard_link()
                || kind.is_character_special()
                || kind.is_block_special()
                || kind.is_fifo()
            {
                continue;
            }
            let names = [name.as_str()];
            let start = usize::try_from(entry.raw_file_position()).unwrap_or(usize::MAX);
            let size = usize::try_from(entry.size()).unwrap_or(usize::MAX);
            let end = start.saturating_add(size);
            let member = data
                .get(start.min(data.len())..end.min(data.len()))
                .unwrap_or_default();
            let limits = self.budget.limits();
            if u64::try_from(member.len()).unwrap_or(u64::MAX) > limits.max_member_bytes {
                let exceeded =
                    Exceeded::new(Limit::MemberBytes, limits.max_member_bytes, &location);
                self.visit(&names, &location, Content::TooBig(exceeded))?;
                continue;
            }
            self.budget.add_decoded(member.len(), || location.clone())?;
            if end > data.len() {
                let reason = format!(
                    "the member is cut short: {size} bytes said, {} there",
                    member.len()
                );
                self.visit(
                    &names,
                    &location,
                    Content::Damaged {
                        data: member,
                        reason,
                    },
                )?;
            } else {
                self.visit(&names, &location, Content::Data(member))?;
            }
        }
        Ok(Expansion::Done)
    }
}

/// How reading one member ended.
enum Extracted {
    Whole(Vec<u8>),
    /// The bytes read before the error.
    Damaged(Vec<u8>, io::Error),
    TooBig(Exceeded),
}

/// Bytes read at a time: the clock is checked between reads.
const CHUNK: usize = 64 * 1024;

/// Reads `reader` to its end in `CHUNK`s, counting what it yields against
/// the budget; stops as soon as the member passes `max_member_bytes`
/// (never holding more than that plus one chunk) or the message's limits.
fn read_member(
    reader: &mut dyn Read,
    budget: &Budget<'_>,
    location: &str,
) -> Result<Extracted, Exceeded> {
    let limit = budget.limits().max_member_bytes;
    let ceiling = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    // `data[..filled]` is the member so far; the zeroed bytes past it are reused by
    // the next read, so each byte is zeroed once, however little a read returns.
    let mut data: Vec<u8> = Vec::new();
    let mut filled = 0;
    loop {
        budget.check_time(|| location.to_string())?;
        let room = CHUNK.min(ceiling - filled);
        if data.len() < filled + room {
            if data.capacity() < filled + room {
                // Doubling, but never past the ceiling: a member stopped at the
                // limit holds no more than it.
                let wanted = data
                    .capacity()
                    .saturating_mul(2)
                    .max(filled + room)
                    .min(ceiling);
                data.reserve_exact(wanted - data.len());
            }
            data.resize(filled + room, 0);
        }
        let read = reader.read(&mut data[filled..filled + room]);
        match read {
            Ok(0) => {
                data.truncate(filled);
                return Ok(Extracted::Whole(data));
            }
            Ok(count) => {
                filled += count;
                budget.add_decoded(count, || location.to_string())?;
                if filled == ceiling {
                    data.truncate(filled);
                    return Ok(Extracted::TooBig(Exceeded::new(
                        Limit::MemberBytes,
                        limit,
                        location,
                    )));
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                data.truncate(filled);
                return Ok(Extracted::Damaged(data, error));
            }
        }
    }
}

/// The file name stored in a gzip header (FNAME, ISO 8859-1), if any.
fn gzip_file_name(data: &[u8]) -> Option<String> {
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    let flags = *data.get(3)?;
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let length = u16::from_le_bytes([*data.get(at)?, *data.get(at + 1)?]);
        at += 2 + usize::from(length);
    }
    if flags & FNAME == 0 {
        return None;
    }
    let rest = data.get(at..)?;
    let end = memchr::memchr(0, rest)?;
    Some(
        rest[..end.min(4096)]
            .iter()
            .map(|&byte| char::from(byte))
            .collect(),
    )
}

/// The name a compressed file decompresses to: `a.tar` for `a.tar.gz` or
/// `a.tgz`, `a` for `a.bz2`. None when `name` has none of `suffixes`.
fn decompressed_name(name: &str, suffixes: &[&str]) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    for tar_suffix in [".tgz", ".taz", ".tbz2", ".tbz"] {
        if lower.ends_with(tar_suffix) && name.is_char_boundary(name.len() - tar_suffix.len()) {
            let stem = &name[..name.len() - tar_suffix.len()];
            return Some(format!("{stem}.tar"));
        }
    }
    suffixes.iter().find_map(|suffix| {
        let cut = name.len().checked_sub(suffix.len())?;
        let stem = name.get(..cut)?;
        (lower.ends_with(suffix) && !stem.is_empty()).then(|| stem.to_string())
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::scan::Limits;
    use crate::scan::testutil::{bzip2, gzip, tar, zip, zip_with};

    /// A member copied out of an expansion.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Data(String, Vec<u8>),
        Damaged(String, Vec<u8>),
        Encrypted(String),
        Unsupported(String, String),
        Duplicate(String),
        TooBig(String, &'static str),
    }

    fn expand_with(
        limits: &Limits,
        data: &[u8],
        name: Option<&str>,
    ) -> (Vec<Seen>, Result<Expansion, Stopped>) {
        let kind = detect(data).expect("an archive").kind;
        let budget = Budget::start(limits);
        let mut seen = Vec::new();
        let outcome = expand(kind, data, name, "part 2", &budget, &mut |member| {
            let location = member.location.to_string();
            seen.push(match &member.content {
                Content::Data(data) => Seen::Data(location, data.to_vec()),
                Content::Damaged { data, .. } => Seen::Damaged(location, data.to_vec()),
                Content::Encrypted => Seen::Encrypted(location),
                Content::UnsupportedMethod(method) => Seen::Unsupported(location, method.clone()),
                Content::DuplicateName => Seen::Duplicate(location),
                Content::TooBig(exceeded) => Seen::TooBig(location, exceeded.limit.name()),
            });
            ControlFlow::Continue(())
        });
        (seen, outcome)
    }

    fn members(data: &[u8], name: Option<&str>) -> Vec<Seen> {
        let (seen, outcome) = expand_with(&Limits::default(), data, name);
        assert_eq!(outcome, Ok(Expansion::Done));
        seen
    }

    fn data(location: &str, bytes: &[u8]) -> Seen {
        Seen::Data(location.to_string(), bytes.to_vec())
    }

    /// Rewrites every local (offset 8) and central (offset 10) header's
    /// compression method of a zip made by `zip_with`.
    fn set_method(mut zip: Vec<u8>, method: u16) -> Vec<u8> {
        for (signature, offset) in [(&b"PK\x03\x04"[..], 8), (b"PK\x01\x02", 10)] {
            let starts: Vec<usize> = memchr::memmem::find_iter(&zip, signature).collect();
            for start in starts {
                zip[start + offset..start + offset + 2].copy_from_slice(&method.to_le_bytes());
            }
        }
        zip
    }

    #[test]
    fn formats_are_recognized_by_their_bytes() {
        let kind = |data: &[u8]| detect(data).map(|d| (d.kind, d.certain));
        let zipped = zip(&[("a.txt", b"a")]);
        assert_eq!(kind(&zipped), Some((ArchiveKind::Zip, true)));
        assert_eq!(kind(&zip(&[])), Some((ArchiveKind::Zip, true)));
        assert_eq!(kind(&gzip(b"a", None)), Some((ArchiveKind::Gzip, true)));
        assert_eq!(kind(&bzip2(b"a")), Some((ArchiveKind::Bzip2, true)));
        assert_eq!(kind(&bzip2(b"")), Some((ArchiveKind::Bzip2, true)));
        assert_eq!(
            kind(&tar(&[("a.txt", b"a")])),
            Some((ArchiveKind::Tar, true))
        );
        let mut prefixed = b"MZ self-extractor stub".to_vec();
        prefixed.extend(&zipped);
        assert_eq!(kind(&prefixed), Some((ArchiveKind::Zip, false)));
        for plain in [
            &b""[..],
            b"PK",
            b"hello world",
            b"BZh9 not really",
            b"\x1f\x8b",
        ] {
            assert_eq!(kind(plain), None, "{plain:?}");
        }
        assert_eq!(kind(&[0; 1024]), None);
    }

    #[test]
    fn old_style_tar_is_recognized_by_its_checksum() {
        let mut archive = tar(&[("a.txt", b"a")]);
        archive[257..265].fill(0); // no `ustar` magic
        let sum: u32 = archive[..512]
            .iter()
            .enumerate()
            .map(|(i, &b)| u32::from(if (148..156).contains(&i) { b' ' } else { b }))
            .sum();
        archive[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert_eq!(detect(&archive).map(|d| d.kind), Some(ArchiveKind::Tar));
        archive[0] ^= 1;
        assert_eq!(detect(&archive), None);
    }

    #[test]
    fn zip_members_are_read_in_order() {
        let archive = zip(&[("a.txt", b"first"), ("dir/b.bin", b"second")]);
        assert_eq!(
            members(&archive, Some("x.zip")),
            [
                data("part 2 > a.txt", b"first"),
                data("part 2 > dir/b.bin", b"second")
            ]
        );
        let stored = zip_with(&[("s", b"stored")], zip::CompressionMethod::Stored, None);
        assert_eq!(members(&stored, None), [data("part 2 > s", b"stored")]);
    }

    #[test]
    fn gzip_member_takes_the_stored_then_the_implied_name() {
        let with_name = gzip(b"content", Some("inner.tar"));
        assert_eq!(
            members(&with_name, Some("a.tgz")),
            [data("part 2 > inner.tar", b"content")]
        );
        assert_eq!(
            members(&gzip(b"content", None), Some("a.tgz")),
            [data("part 2 > a.tar", b"content")]
        );
        assert_eq!(
            members(&gzip(b"content", None), None),
            [data("part 2 > (gzip content)", b"content")]
        );
        let mut twice = gzip(b"one ", None);
        twice.extend(gzip(b"two", None));
        assert_eq!(
            members(&twice, Some("x.gz")),
            [data("part 2 > x", b"one two")]
        );
    }

    #[test]
    fn bzip2_and_tar_members_are_read() {
        assert_eq!(
            members(&bzip2(b"bz content"), Some("notes.txt.bz2")),
            [data("part 2 > notes.txt", b"bz content")]
        );
        let archive = tar(&[("a/one.txt", b"1"), ("two.txt", b"22")]);
        assert_eq!(
            members(&archive, None),
            [
                data("part 2 > a/one.txt", b"1"),
                data("part 2 > two.txt", b"22")
            ]
        );
    }

    #[test]
    fn encrypted_and_unsupported_members_are_reported_not_read() {
        let encrypted = zip_with(
            &[("secret.txt", b"hidden")],
            zip::CompressionMethod::Stored,
            Some(b"password"),
        );
        assert_eq!(
            members(&encrypted, None),
            [Seen::Encrypted("part 2 > secret.txt".into())]
        );
        let lzma = set_method(
            zip_with(&[("x.bin", b"data")], zip::CompressionMethod::Stored, None),
            14,
        );
        let seen = members(&lzma, None);
        assert!(
            matches!(&seen[..], [Seen::Unsupported(location, _)] if location == "part 2 > x.bin"),
            "{seen:?}"
        );
    }

    #[test]
    fn repeated_zip_names_are_reported() {
        let archive = zip_with(
            &[("a.txt", b"virus"), ("b.txt", b"clean")],
            zip::CompressionMethod::Stored,
            None,
        );
        let renamed: Vec<u8> = {
            let text = archive.clone();
            let mut out = text.clone();
            for at in memchr::memmem::find_iter(&text, b"b.txt") {
                out[at] = b'a';
            }
            out
        };
        let seen = members(&renamed, None);
        assert_eq!(seen[0], Seen::Duplicate("part 2".into()));
    }

    #[test]
    fn member_size_is_cut_at_the_limit() {
        let limits = Limits {
            max_member_bytes: 1000,
            ..Limits::default()
        };
        let archive = zip(&[("big", &[0; 5000]), ("small", b"ok")]);
        let (seen, outcome) = expand_with(&limits, &archive, None);
        assert_eq!(outcome, Ok(Expansion::Done));
        assert_eq!(
            seen,
            [
                Seen::TooBig("part 2 > big".into(), "max_member_bytes"),
                data("part 2 > small", b"ok")
            ]
        );
        let (seen, _) = expand_with(&limits, &tar(&[("t", &[1; 1001])]), None);
        assert_eq!(
            seen,
            [Seen::TooBig("part 2 > t".into(), "max_member_bytes")]
        );
        let (seen, _) = expand_with(&limits, &gzip(&[1; 1000], None), None);
        assert_eq!(seen, [data("part 2 > (gzip content)", &[1; 1000])]);
    }

    #[test]
    fn decoded_bytes_and_parts_stop_the_expansion() {
        let limits = Limits {
            max_decoded_bytes: 3000,
            ..Limits::default()
        };
        let archive = zip(&[("a", &[0; 2000]), ("b", &[0; 2000]), ("c", b"c")]);
        let (seen, outcome) = expand_with(&limits, &archive, None);
        assert_eq!(seen, [data("part 2 > a", &[0; 2000])]);
        let Err(Stopped::Limit(exceeded)) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(
            (exceeded.limit, exceeded.location.as_str()),
            (Limit::DecodedBytes, "part 2 > b")
        );
        let limits = Limits {
            max_parts: 2,
            ..Limits::default()
        };
        let (seen, outcome) = expand_with(&limits, &archive, None);
        assert!(seen.is_empty(), "refused before reading: {seen:?}");
        let Err(Stopped::Limit(exceeded)) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(
            (exceeded.limit, exceeded.location.as_str()),
            (Limit::Parts, "part 2")
        );
    }

    #[test]
    fn the_scan_can_stop_an_expansion() {
        let archive = zip(&[("a", b"a"), ("b", b"b")]);
        let limits = Limits::default();
        let budget = Budget::start(&limits);
        let mut count = 0;
        let outcome = expand(
            ArchiveKind::Zip,
            &archive,
            None,
            "part 1",
            &budget,
            &mut |_| {
                count += 1;
                ControlFlow::Break(())
            },
        );
        assert_eq!((outcome, count), (Err(Stopped::Scan), 1));
    }

    #[test]
    fn damaged_archives_keep_what_could_be_read() {
        let (seen, outcome) = expand_with(&Limits::default(), b"PK\x03\x04 not a zip at all", None);
        assert!(seen.is_empty());
        assert!(matches!(outcome, Ok(Expansion::Damaged(_))), "{outcome:?}");

        let whole = gzip(&(0..=255).cycle().take(100_000).collect::<Vec<u8>>(), None);
        let cut = &whole[..whole.len() / 2];
        let (seen, outcome) = expand_with(&Limits::default(), cut, None);
        assert_eq!(outcome, Ok(Expansion::Done));
        assert!(
            matches!(&seen[..], [Seen::Damaged(_, data)] if !data.is_empty()),
            "{seen:?}"
        );

        let (seen, outcome) = expand_with(&Limits::default(), &whole[..20], None);
        assert!(seen.is_empty());
        assert!(matches!(outcome, Ok(Expansion::Damaged(_))), "{outcome:?}");

        let mut archive = tar(&[("a", &[7; 600]), ("b", b"b")]);
        archive.truncate(512 + 100);
        let (seen, _) = expand_with(&Limits::default(), &archive, None);
        assert_eq!(seen, [Seen::Damaged("part 2 > a".into(), vec![7; 100])]);
    }

    #[test]
    fn names_are_shown_safely_and_never_used_as_paths() {
        let archive = zip(&[("../../etc/passwd", b"x"), ("/abs\u{202e}txt.exe", b"y")]);
        assert_eq!(
            members(&archive, None),
            [
                data("part 2 > ../../etc/passwd", b"x"),
                data("part 2 > /abs\\u{202e}txt.exe", b"y")
            ]
        );
    }

    #[test]
    fn gzip_header_names() {
        assert_eq!(
            gzip_file_name(&gzip(b"x", Some("a.txt"))).as_deref(),
            Some("a.txt")
        );
        assert_eq!(gzip_file_name(&gzip(b"x", None)), None);
        // FEXTRA before the name, and a name with no end.
        let header = b"\x1f\x8b\x08\x0c\0\0\0\0\0\xff\x02\0ABn\xe9.txt\0";
        assert_eq!(gzip_file_name(header).as_deref(), Some("n\u{e9}.txt"));
        assert_eq!(gzip_file_name(&header[..16]), None);
        assert_eq!(gzip_file_name(b"\x1f\x8b"), None);
    }

    #[test]
    fn implied_names_drop_the_compression_suffix() {
        let gz = [".gz", ".z", ".gzip"];
        assert_eq!(decompressed_name("a.tar.gz", &gz).as_deref(), Some("a.tar"));
        assert_eq!(decompressed_name("A.TGZ", &gz).as_deref(), Some("A.tar"));
        assert_eq!(
            decompressed_name("run.exe.GZ", &gz).as_deref(),
            Some("run.exe")
        );
        assert_eq!(
            decompressed_name("x.tbz2", &[".bz2"]).as_deref(),
            Some("x.tar")
        );
        assert_eq!(decompressed_name(".gz", &gz), None);
        assert_eq!(decompressed_name("a.zip", &gz), None);
        assert_eq!(decompressed_name("é.gz", &gz).as_deref(), Some("é"));
    }

    /// One archive of each kind, nested where a format allows it.
    fn samples() -> Vec<Vec<u8>> {
        let inner = tar(&[("a.txt", b"alpha"), ("b/c.bin", &[0; 700])]);
        vec![
            zip(&[("one.txt", b"one"), ("inner.tar", &inner), ("empty", b"")]),
            gzip(&inner, Some("inner.tar")),
            bzip2(&inner),
            inner,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Damaged archives never panic the readers (the scan would catch
        /// it, but as an error) nor go over the limits.
        #[test]
        fn damaged_archives_never_panic(
            sample in 0..4usize,
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut data = samples().swap_remove(sample);
            for (at, byte) in flips {
                let at = at.index(data.len());
                data[at] = byte;
            }
            if truncate {
                data.truncate(cut.index(data.len() + 1));
            }
            let limits = Limits {
                max_member_bytes: 4096,
                max_decoded_bytes: 16_384,
                ..Limits::default()
            };
            if let Some(detected) = detect(&data) {
                let budget = Budget::start(&limits);
                let (mut total, mut largest) = (0, 0);
                let _ = expand(detected.kind, &data, Some("x.tar.gz"), "part 1", &budget, &mut |member| {
                    if let Content::Data(data) | Content::Damaged { data, .. } = member.content {
                        total += data.len();
                        largest = largest.max(data.len());
                    }
                    ControlFlow::Continue(())
                });
                prop_assert!(largest <= 4096);
                prop_assert!(total <= 16_384 + CHUNK);
            }
        }
    }
}
