//! One object at a time: every thing the scan looks at (the raw message, a
//! MIME part, an archive member) goes through [`Scanner::scan_object`], which
//! checks it for signatures and blocked names and opens it if it is an
//! archive, and the scanner keeps the worst finding.

use std::ops::ControlFlow;
use std::panic::{self, AssertUnwindSafe};

use super::archive::{self, Content, Expansion, Member, Stopped};
use super::ext;
use super::limits::{Budget, Exceeded};
use super::mime::panic_message;
use super::verdict::Pardon;
use super::{Verdict, VerdictKind};

/// ClamAV's container type for MIME parts and the files uuencoded in them.
pub const CONTAINER_MAIL: &str = "CL_TYPE_MAIL";

/// One thing the scan looks at: the raw message, a decoded MIME part, a
/// uuencoded file or an archive member.
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    pub data: &'a [u8],
    /// Every name a client or an unpacker may save it under.
    pub names: &'a [&'a str],
    /// `raw message`, `part 2 (docs.zip)`, `part 2 (docs.zip) > a.exe`.
    pub location: &'a str,
    /// ClamAV's type of what holds it: `None` for the raw message,
    /// [`CONTAINER_MAIL`] for parts, `CL_TYPE_ZIP`, `CL_TYPE_GZ`,
    /// `CL_TYPE_BZ` or `CL_TYPE_TAR` for archive members.
    pub container: Option<&'a str>,
    /// Nesting of parts and archives, as counted against `max_depth`.
    pub depth: usize,
    /// The whole raw message (a signature set's `mail` target), not a file.
    pub raw_message: bool,
}

impl Object<'_> {
    /// Whether this is the whole message (a signature set's `mail` target)
    /// rather than a file inside it.
    pub fn is_mail(&self) -> bool {
        self.raw_message
    }
}

/// One message's scan in progress.
pub struct Scanner<'s, 'l, F, P> {
    exts: &'s [String],
    budget: &'s Budget<'l>,
    find_signature: F,
    /// Asked about each virus and ext finding (with the file it is about): the
    /// exception that pardons it, if any.
    pardon: P,
    /// The worst finding so far.
    verdict: Verdict,
    /// Archives and members that could not be read, for the reason.
    notes: Vec<String>,
}

/// Notes quoted in the verdict's reason; more are counted.
const MAX_NOTES_SHOWN: usize = 3;

impl<'s, 'l, F, P> Scanner<'s, 'l, F, P>
where
    F: Fn(&[u8], &Object<'_>) -> Option<String>,
    P: Fn(&Verdict, Option<&str>) -> Option<String>,
{
    /// A scan checking names against `exts`, drawing on `budget`, asking
    /// `find_signature` for the signature an object matches and `pardon` for
    /// the exception that excuses a finding.
    pub fn new(exts: &'s [String], budget: &'s Budget<'l>, find_signature: F, pardon: P) -> Self {
        Scanner {
            exts,
            budget,
            find_signature,
            pardon,
            verdict: Verdict::clean(),
            notes: Vec::new(),
        }
    }

    /// The worst finding so far.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// Every object goes through here: its names against the blocked
    /// extensions, then, if its bytes are an archive, each member in turn,
    /// then its own bytes against the signatures. Members come first so
    /// that a virus is reported in the innermost object holding it (the
    /// member, not the stored zip around it). `Break` when the scan is over
    /// (a virus, or a limit for the whole message).
    pub fn scan_object(&mut self, object: &Object<'_>) -> ControlFlow<()> {
        for name in object.names {
            if let Some(extension) = ext::blocked_extension(name, self.exts) {
                self.report(blocked_name(&extension, name, object.location), Some(name));
            }
        }
        let members = match archive::detect(object.data) {
            Some(detected) if !object.is_mail() => self.expand(detected, object),
            _ => ControlFlow::Continue(()),
        };
        if self.verdict.kind == VerdictKind::Virus {
            return ControlFlow::Break(());
        }
        // Searched even when a limit stopped the members: a virus seen in
        // the bytes is a definite verdict.
        if let Some(signature) = (self.find_signature)(object.data, object)
            && self.report(
                virus_found(&signature, object.location),
                object.names.first().copied(),
            )
        {
            return ControlFlow::Break(());
        }
        members
    }

    /// Scans the members of an archive `object`, one level deeper.
    fn expand(&mut self, detected: archive::Detected, object: &Object<'_>) -> ControlFlow<()> {
        let depth = object.depth + 1;
        if let Err(exceeded) = self
            .budget
            .check_depth(depth, || object.location.to_string())
        {
            return self.limit_hit(exceeded);
        }
        let kind = detected.kind;
        let budget = self.budget;
        // The readers are not ours, and hostile input has made such crates
        // panic before: one archive must not cost the process. Nothing is
        // left half changed by an unwind: the verdict and notes are only
        // ever replaced or pushed to.
        let expanded = panic::catch_unwind(AssertUnwindSafe(|| {
            archive::expand(
                kind,
                object.data,
                object.names.first().copied(),
                object.location,
                budget,
                &mut |member| self.scan_member(member, kind.container(), depth),
            )
        }));
        match expanded {
            Ok(Ok(Expansion::Done)) => ControlFlow::Continue(()),
            Ok(Ok(Expansion::Damaged(reason))) => {
                if detected.certain {
                    self.notes.push(format!(
                        "{} looks like a {} but {reason}; it was scanned as plain bytes",
                        object.location,
                        kind.label()
                    ));
                }
                ControlFlow::Continue(())
            }
            Ok(Err(Stopped::Scan)) => ControlFlow::Break(()),
            Ok(Err(Stopped::Limit(exceeded))) => self.limit_hit(exceeded),
            Err(payload) => {
                self.found(Verdict::new(
                    VerdictKind::Error,
                    "archive_panic",
                    object.location,
                    format!(
                        "the {} reader panicked ({}), so the archive was not scanned to the end",
                        kind.label(),
                        panic_message(payload.as_ref())
                    ),
                ));
                ControlFlow::Continue(())
            }
        }
    }

    /// A member goes through [`Scanner::scan_object`] with what could be
    /// read of it (nothing for one that cannot be read, so its names are
    /// still checked), then what kept it from being read is recorded.
    fn scan_member(
        &mut self,
        member: &Member<'_>,
        container: &str,
        depth: usize,
    ) -> ControlFlow<()> {
        let data = match &member.content {
            Content::Data(data) | Content::Damaged { data, .. } => data,
            _ => &[][..],
        };
        self.scan_object(&Object {
            data,
            names: member.names,
            location: member.location,
            container: Some(container),
            depth,
            raw_message: false,
        })?;
        let location = member.location;
        match &member.content {
            Content::Data(_) => {}
            Content::Damaged { reason, .. } => {
                self.notes.push(format!(
                    "{location}: {reason}; what could be read was scanned"
                ));
            }
            Content::Encrypted => self.found(Verdict::new(
                VerdictKind::Unscannable,
                "encrypted",
                location,
                format!("{location} is encrypted, so its content cannot be scanned"),
            )),
            Content::UnsupportedMethod(method) => self.found(Verdict::new(
                VerdictKind::Unscannable,
                "unsupported_compression",
                location,
                format!("{location} is compressed with {method}, which SIE cannot decompress"),
            )),
            Content::DuplicateName => self.found(Verdict::new(
                VerdictKind::Unscannable,
                "duplicate_name",
                location,
                "the zip lists a member name twice, and only the last entry of a name \
                 can be read, so the others were not scanned",
            )),
            Content::TooBig(exceeded) => return self.limit_hit(exceeded.clone()),
        }
        ControlFlow::Continue(())
    }

    /// Records a limit as `unscannable`; the scan goes on past a limit that
    /// concerns one object only (a virus further on still ranks higher).
    fn limit_hit(&mut self, exceeded: Exceeded) -> ControlFlow<()> {
        let is_local = exceeded.limit.is_local();
        let rest = if is_local {
            "so it was not scanned"
        } else {
            "so the rest of the message was not scanned"
        };
        self.found(Verdict::new(
            VerdictKind::Unscannable,
            exceeded.limit.name(),
            exceeded.location.clone(),
            format!("{exceeded} at {}, {rest}", exceeded.location),
        ));
        if is_local {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }

    /// A virus or ext finding: pardoned by an exception, or counted. Returns whether
    /// it counted.
    fn report(&mut self, finding: Verdict, file_name: Option<&str>) -> bool {
        match (self.pardon)(&finding, file_name) {
            Some(exception) => {
                self.verdict.pardoned.push(Pardon {
                    kind: finding.kind,
                    name: finding.name,
                    location: finding.location,
                    exception,
                });
                false
            }
            None => {
                self.found(finding);
                true
            }
        }
    }

    pub fn found(&mut self, finding: Verdict) {
        self.verdict = std::mem::take(&mut self.verdict).worse(finding);
    }

    /// The verdict, its reason followed by the notes.
    pub fn finish(self) -> Verdict {
        let mut verdict = self.verdict;
        if let Some((shown, more)) = (!self.notes.is_empty())
            .then(|| self.notes.split_at(self.notes.len().min(MAX_NOTES_SHOWN)))
        {
            verdict.reason.push_str(". Note: ");
            verdict.reason.push_str(&shown.join("; "));
            if !more.is_empty() {
                verdict
                    .reason
                    .push_str(&format!("; and {} more", more.len()));
            }
        }
        verdict
    }
}

fn virus_found(signature: &str, location: &str) -> Verdict {
    Verdict::new(
        VerdictKind::Virus,
        signature,
        location,
        format!("{location} matches the virus signature {signature}"),
    )
}

fn blocked_name(extension: &str, name: &str, location: &str) -> Verdict {
    Verdict::new(
        VerdictKind::Ext,
        format!("ext:{extension}"),
        location,
        format!(
            "attachment name \"{}\" ends in the blocked extension .{extension}",
            ext::display_name(name)
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use crate::scan::testutil::{assert_verdict, base64, bzip2, gzip, tar, zip, zip_with};
    use crate::scan::virus::{EICAR_NAME, eicar_test_file};
    use crate::scan::{Limits, ScanOptions, scan_message, scan_with};

    use super::*;

    /// A message whose part 2 is `data`, base64-encoded, named `name`.
    fn attached(name: &str, data: &[u8]) -> Vec<u8> {
        format!(
            "From: a@example.org\n\
             Content-Type: multipart/mixed; boundary=\"sep\"\n\n\
             --sep\n\
             Content-Type: text/plain\n\nSee attached.\n\
             --sep\n\
             Content-Type: application/octet-stream; name=\"{name}\"\n\
             Content-Transfer-Encoding: base64\n\n{}\n\
             --sep--\n",
            base64(data)
        )
        .into_bytes()
    }

    fn scan(message: &[u8]) -> Verdict {
        scan_message(message, &ScanOptions::default())
    }

    #[test]
    fn eicar_inside_a_zip() {
        let archive = zip(&[("readme.txt", b"hello"), ("eicar.com", &eicar_test_file())]);
        assert_verdict(
            &scan(&attached("docs.zip", &archive)),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2 (docs.zip) > eicar.com",
        );
    }

    #[test]
    fn eicar_inside_a_zip_inside_a_zip() {
        let inner = zip(&[("eicar.com", &eicar_test_file())]);
        let outer = zip(&[("inner.zip", &inner)]);
        assert_verdict(
            &scan(&attached("outer.zip", &outer)),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2 (outer.zip) > inner.zip > eicar.com",
        );
    }

    #[test]
    fn eicar_inside_a_tar_gz() {
        let archive = gzip(&tar(&[("dir/eicar.txt", &eicar_test_file())]), None);
        assert_verdict(
            &scan(&attached("backup.tar.gz", &archive)),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2 (backup.tar.gz) > backup.tar > dir/eicar.txt",
        );
    }

    #[test]
    fn eicar_inside_a_bz2() {
        assert_verdict(
            &scan(&attached("e.txt.bz2", &bzip2(&eicar_test_file()))),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2 (e.txt.bz2) > e.txt",
        );
    }

    #[test]
    fn eicar_inside_a_gz_inside_a_zip() {
        let archive = zip(&[("log.gz", &gzip(&eicar_test_file(), Some("log.txt")))]);
        assert_verdict(
            &scan(&attached("logs.zip", &archive)),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2 (logs.zip) > log.gz > log.txt",
        );
    }

    #[test]
    fn archives_are_found_by_content_not_by_name() {
        let archive = zip(&[("eicar.com", &eicar_test_file())]);
        assert_verdict(
            &scan(&attached("photo.jpg", &archive)),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2 (photo.jpg) > eicar.com",
        );
        let mut prefixed = b"junk before the zip".to_vec();
        prefixed.extend(&archive);
        assert_eq!(scan(&attached("x.bin", &prefixed)).kind, VerdictKind::Virus);
    }

    #[test]
    fn blocked_name_inside_a_zip_is_ext() {
        let archive = zip(&[("invoice.pdf.exe", b"MZ")]);
        let verdict = scan(&attached("docs.zip", &archive));
        assert_verdict(
            &verdict,
            VerdictKind::Ext,
            "ext:exe",
            "part 2 (docs.zip) > invoice.pdf.exe",
        );
        assert!(
            verdict.reason.contains("\"invoice.pdf.exe\""),
            "{}",
            verdict.reason
        );
        let gzipped = gzip(b"MZ", None);
        assert_verdict(
            &scan(&attached("setup.exe.gz", &gzipped)),
            VerdictKind::Ext,
            "ext:exe",
            "part 2 (setup.exe.gz) > setup.exe",
        );
    }

    #[test]
    fn encrypted_member_is_unscannable() {
        let archive = zip_with(
            &[("notes.txt", b"secret")],
            zip::CompressionMethod::Stored,
            Some(b"infected"),
        );
        let verdict = scan(&attached("secret.zip", &archive));
        assert_verdict(
            &verdict,
            VerdictKind::Unscannable,
            "encrypted",
            "part 2 (secret.zip) > notes.txt",
        );
        assert_eq!(verdict.kind.queue(), "error");
    }

    #[test]
    fn encrypted_member_with_a_blocked_name_is_ext() {
        let archive = zip_with(
            &[("notes.txt", b"secret"), ("run.exe", b"MZ")],
            zip::CompressionMethod::Stored,
            Some(b"infected"),
        );
        assert_verdict(
            &scan(&attached("secret.zip", &archive)),
            VerdictKind::Ext,
            "ext:exe",
            "part 2 (secret.zip) > run.exe",
        );
    }

    #[test]
    fn virus_after_an_oversized_member_is_still_found() {
        let options = ScanOptions {
            limits: Limits {
                max_member_bytes: 1000,
                ..Limits::default()
            },
            ..ScanOptions::default()
        };
        let archive = zip(&[("big.bin", &[0; 5000]), ("eicar.com", &eicar_test_file())]);
        let message = attached("a.zip", &archive);
        assert_verdict(
            &scan_message(&message, &options),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2 (a.zip) > eicar.com",
        );
        let archive = zip(&[("big.bin", &[0; 5000]), ("small.txt", b"ok")]);
        let verdict = scan_message(&attached("a.zip", &archive), &options);
        assert_verdict(
            &verdict,
            VerdictKind::Unscannable,
            "max_member_bytes",
            "part 2 (a.zip) > big.bin",
        );
        assert!(
            verdict.reason.contains("more than 1000 bytes"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn archive_nesting_counts_against_max_depth() {
        let options = ScanOptions {
            limits: Limits {
                max_depth: 3,
                ..Limits::default()
            },
            ..ScanOptions::default()
        };
        // Part 2 is at depth 1, so members of a.zip at 2, of b.zip at 3.
        let two_levels = zip(&[("b.zip", &zip(&[("c.txt", b"c")]))]);
        let message = attached("a.zip", &two_levels);
        assert_eq!(scan_message(&message, &options), Verdict::clean());
        let three_levels = zip(&[("b.zip", &zip(&[("c.zip", &zip(&[("d.txt", b"d")]))]))]);
        assert_verdict(
            &scan_message(&attached("a.zip", &three_levels), &options),
            VerdictKind::Unscannable,
            "max_depth",
            "part 2 (a.zip) > b.zip > c.zip",
        );
    }

    #[test]
    fn corrupt_zip_is_scanned_as_bytes_and_noted() {
        let mut broken = b"PK\x03\x04".to_vec();
        broken.extend(b"garbage that is no zip");
        let verdict = scan(&attached("broken.zip", &broken));
        assert_eq!(verdict.kind, VerdictKind::Clean, "{verdict:?}");
        assert!(
            verdict
                .reason
                .contains("part 2 (broken.zip) looks like a zip archive but"),
            "{}",
            verdict.reason
        );
        let mut with_eicar = broken.clone();
        with_eicar.extend(eicar_test_file());
        assert_verdict(
            &scan(&attached("broken.zip", &with_eicar)),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2 (broken.zip)",
        );
        // A truncated member: what was read is scanned.
        let archive = gzip(
            &[b"x".repeat(70_000), eicar_test_file(), b"y".repeat(70_000)].concat(),
            None,
        );
        let truncated = &archive[..archive.len() * 2 / 3];
        let verdict = scan(&attached("log.gz", truncated));
        assert_eq!(verdict.kind, VerdictKind::Clean, "{verdict:?}");
        assert!(
            verdict
                .reason
                .contains("part 2 (log.gz) > log: the gzip file is damaged"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn every_object_passes_through_the_one_signature_check() {
        let archive = zip(&[("a.tgz", &gzip(&tar(&[("t.txt", b"t")]), None))]);
        let message = attached("a.zip", &archive);
        let seen = RefCell::new(Vec::new());
        let verdict = scan_with(&message, &ScanOptions::default(), |_data, object| {
            seen.borrow_mut().push((
                object.location.to_string(),
                object.container.map(str::to_string),
                object.depth,
            ));
            None
        });
        assert_eq!(verdict, Verdict::clean());
        let mail = Some(CONTAINER_MAIL.to_string());
        let container = |name: &str| Some(name.to_string());
        // Members before the archive holding them, parts before the raw
        // message.
        assert_eq!(
            seen.into_inner(),
            [
                ("message".to_string(), mail.clone(), 0),
                ("part 1".to_string(), mail.clone(), 1),
                (
                    "part 2 (a.zip) > a.tgz > a.tar > t.txt".to_string(),
                    container("CL_TYPE_TAR"),
                    4
                ),
                (
                    "part 2 (a.zip) > a.tgz > a.tar".to_string(),
                    container("CL_TYPE_GZ"),
                    3
                ),
                (
                    "part 2 (a.zip) > a.tgz".to_string(),
                    container("CL_TYPE_ZIP"),
                    2
                ),
                ("part 2 (a.zip)".to_string(), mail, 1),
                ("raw message".to_string(), None, 0),
            ]
        );
    }

    #[test]
    fn a_signature_found_by_the_set_names_the_object() {
        let archive = zip(&[("x.bin", b"MARKER")]);
        let verdict = scan_with(
            &attached("a.zip", &archive),
            &ScanOptions::default(),
            |data, object| {
                (object.container == Some("CL_TYPE_ZIP") && data == b"MARKER")
                    .then(|| "Test.Marker".to_string())
            },
        );
        assert_verdict(
            &verdict,
            VerdictKind::Virus,
            "Test.Marker",
            "part 2 (a.zip) > x.bin",
        );
    }

    #[test]
    fn a_symbolic_link_member_is_scanned_as_a_file() {
        // Unpackers on Windows ignore the Unix mode and save a file.
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let eicar = String::from_utf8(eicar_test_file()).unwrap();
        let options = zip::write::SimpleFileOptions::default();
        writer.add_symlink("link", eicar, options).unwrap();
        let archive = writer.finish().unwrap().into_inner();
        assert_verdict(
            &scan(&attached("l.zip", &archive)),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2 (l.zip) > link",
        );
    }

    #[test]
    fn time_limit_is_unscannable() {
        let options = ScanOptions {
            limits: Limits {
                max_scan_seconds: 1e-9,
                ..Limits::default()
            },
            ..ScanOptions::default()
        };
        let message = attached("a.zip", &zip(&[("a.txt", b"a")]));
        std::thread::sleep(std::time::Duration::from_millis(1));
        let verdict = scan_message(&message, &options);
        assert_eq!(
            (verdict.kind, verdict.name.as_str()),
            (VerdictKind::Unscannable, "max_scan_seconds"),
            "{verdict:?}"
        );
    }

    #[test]
    fn repeated_names_in_a_zip_are_unscannable() {
        let archive = zip_with(
            &[("a.txt", b"hidden"), ("b.txt", b"clean")],
            zip::CompressionMethod::DEFLATE,
            None,
        );
        let mut renamed = archive.clone();
        for at in memchr::memmem::find_iter(&archive, b"b.txt") {
            renamed[at] = b'a';
        }
        assert_verdict(
            &scan(&attached("dup.zip", &renamed)),
            VerdictKind::Unscannable,
            "duplicate_name",
            "part 2 (dup.zip)",
        );
    }

    #[test]
    fn notes_are_capped() {
        let broken: Vec<u8> = [&b"PK\x03\x04"[..], b"broken"].concat();
        let archive = zip(&[
            ("1.zip", &broken),
            ("2.zip", &broken),
            ("3.zip", &broken),
            ("4.zip", &broken),
            ("5.zip", &broken),
        ]);
        let verdict = scan(&attached("a.zip", &archive));
        assert_eq!(verdict.kind, VerdictKind::Clean);
        assert!(
            verdict.reason.ends_with("; and 2 more"),
            "{}",
            verdict.reason
        );
    }
}
