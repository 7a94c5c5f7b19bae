//! The content scan step: takes one message as RFC 822 bytes and returns
//! its [`Verdict`]. `mime` splits it into decoded parts, `archive` opens the
//! archives among them, and every [`Object`] (the raw message, each part,
//! each member) goes through one function in `object`, where `virus` and
//! `ext` check it; `verdict` keeps the worst finding and writes it down.
//! `limits` bounds the work, and the memory, one message may cost.

pub mod archive;
pub mod ext;
pub mod limits;
pub mod mime;
pub mod virus;

mod object;
mod transfer;
mod uuencode;
mod verdict;

#[cfg(test)]
mod testutil;

pub use limits::Limits;
pub use object::{CONTAINER_MAIL, Object};
pub use transfer::encode_base64;
pub use verdict::{Pardon, Verdict, VerdictKind};

use crate::rules::RuleSet;
use crate::rules::exceptions::{Envelope, Finding};
use crate::rules::signatures::{ObjectInfo, Target};
use limits::Budget;
use object::Scanner;
use virus::Signatures;

/// What to look for in a message, from the run-time config.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Blocked attachment extensions, any case, leading dot optional.
    pub exts: Vec<String>,
    pub limits: Limits,
    /// Whether the spam rules run (off for the big-message queue by default).
    pub spam: bool,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            exts: ext::DEFAULT_EXTS
                .iter()
                .map(|ext| ext.to_string())
                .collect(),
            limits: Limits::default(),
            spam: true,
        }
    }
}

/// Scans one message: every decoded part and archive member for virus
/// signatures and blocked file names, then the raw bytes for signatures no
/// part showed, with the built-in signatures.
pub fn scan_message(message: &[u8], options: &ScanOptions) -> Verdict {
    let signatures = Signatures::builtin();
    scan_with(message, options, |data, _object| {
        signatures.find(data).map(str::to_string)
    })
}

/// Scans one message with a definitions set: signatures and blocked names in every
/// object, then, if nothing worse was found and `options.spam` is on, the spam rules.
/// Exceptions pardon findings for this `envelope`; a pardoned finding is recorded in
/// the verdict's `pardoned` list instead of deciding it.
pub fn scan_message_with_rules(
    message: &[u8],
    options: &ScanOptions,
    rules: &RuleSet,
    envelope: &Envelope<'_>,
) -> Verdict {
    let hooks = RuleHooks { rules, envelope };
    let mut verdict = scan_objects(
        message,
        options,
        |data: &[u8], object: &Object<'_>| hooks.find_signature(data, object),
        |finding: &Verdict, file_name: Option<&str>| hooks.pardon(finding, file_name),
    );
    if options.spam && verdict.kind == VerdictKind::Clean {
        let spam = spam_verdict(message, rules, envelope);
        let score = spam.score;
        verdict = verdict.worse(spam);
        verdict.score = score;
    }
    verdict
}

/// Scans a file that is no message as the root object, as `clamscan FILE` does: its
/// name, its members if it is an archive, its bytes (container `None`: `CL_TYPE_ANY`).
pub fn scan_file_with_rules(
    name: &str,
    data: &[u8],
    options: &ScanOptions,
    rules: &RuleSet,
    envelope: &Envelope<'_>,
) -> Verdict {
    let hooks = RuleHooks { rules, envelope };
    let budget = Budget::start(&options.limits);
    let mut scanner = Scanner::new(
        &options.exts,
        &budget,
        |data: &[u8], object: &Object<'_>| hooks.find_signature(data, object),
        |finding: &Verdict, file_name: Option<&str>| hooks.pardon(finding, file_name),
    );
    let names = [name];
    let _ = scanner.scan_object(&Object {
        data,
        names: &names,
        location: name,
        container: None,
        depth: 0,
        raw_message: false,
    });
    scanner.finish()
}

/// The two places a scan consults a definitions set: the signature an object matches,
/// and the exception that pardons a finding for this envelope.
struct RuleHooks<'a> {
    rules: &'a RuleSet,
    envelope: &'a Envelope<'a>,
}

impl RuleHooks<'_> {
    fn find_signature(&self, data: &[u8], object: &Object<'_>) -> Option<String> {
        let target = if object.is_mail() {
            Target::Mail
        } else {
            Target::File
        };
        let info = ObjectInfo {
            target,
            container: object.container,
        };
        self.rules
            .signatures
            .scan(data, &info)
            .map(|found| found.name)
    }

    fn pardon(&self, finding: &Verdict, file_name: Option<&str>) -> Option<String> {
        let finding = Finding {
            kind: finding.kind,
            rule: &finding.name,
            file_name,
        };
        self.rules.exceptions.pardon(&finding, self.envelope)
    }
}

/// The spam rules' verdict: spam when the score of the hits no exception pardons
/// reaches the threshold; pardoned hits are recorded.
fn spam_verdict(message: &[u8], rules: &RuleSet, envelope: &Envelope<'_>) -> Verdict {
    let result = rules.spam.check(message);
    let mut pardoned = Vec::new();
    let mut score = 0.0;
    let mut counted = Vec::new();
    for hit in &result.hits {
        let finding = Finding {
            kind: VerdictKind::Spam,
            rule: &hit.name,
            file_name: None,
        };
        match rules.exceptions.pardon(&finding, envelope) {
            Some(exception) => pardoned.push(verdict::Pardon {
                kind: VerdictKind::Spam,
                name: hit.name.clone(),
                location: "message".into(),
                exception,
            }),
            None => {
                score += hit.score;
                counted.push(format!("{} ({:.1})", hit.name, hit.score));
            }
        }
    }
    let is_spam = !result.hits.is_empty() && score >= result.threshold;
    // A message no exception touched keeps SpamAssassin's own total.
    if pardoned.is_empty() {
        score = result.score;
    }
    let mut verdict = if is_spam {
        let names: Vec<&str> = result.hits.iter().map(|hit| hit.name.as_str()).collect();
        Verdict::new(
            VerdictKind::Spam,
            names.join(","),
            "message",
            format!(
                "spam score {score:.1} reaches the threshold {:.1}: {}",
                result.threshold,
                counted.join(", ")
            ),
        )
    } else {
        Verdict::clean()
    };
    // Pardons only count as spam-ex when they kept the message from being spam.
    if !is_spam && result.score >= result.threshold {
        verdict.pardoned = pardoned;
    }
    verdict.score = Some(score);
    verdict
}

/// Scans one message as [`scan_message`] does, asking `find_signature` for
/// the name of the signature an object matches: the one place a signature
/// set is consulted.
pub fn scan_with(
    message: &[u8],
    options: &ScanOptions,
    find_signature: impl Fn(&[u8], &Object<'_>) -> Option<String>,
) -> Verdict {
    scan_objects(message, options, find_signature, |_, _| None)
}

/// The walk behind every scan.
///
/// Never panics, whatever the input: a panic of the MIME parser gives an
/// `error` verdict named `parser_panic`, one of an archive reader
/// `archive_panic`. The scan stops at the first virus, since nothing ranks
/// higher. A limit that stops the walk early still lets the raw bytes be
/// searched: a virus visible there is a definite verdict. Archives that
/// cannot be read are scanned as plain bytes, and the verdict's reason
/// notes them.
fn scan_objects(
    message: &[u8],
    options: &ScanOptions,
    find_signature: impl Fn(&[u8], &Object<'_>) -> Option<String>,
    pardon: impl Fn(&Verdict, Option<&str>) -> Option<String>,
) -> Verdict {
    let budget = Budget::start(&options.limits);
    let mut scanner = Scanner::new(&options.exts, &budget, find_signature, pardon);
    let walked = mime::walk(message, &budget, |part| {
        scanner.scan_object(&Object {
            data: part.content,
            names: part.names,
            location: part.location,
            container: Some(CONTAINER_MAIL),
            depth: part.depth,
            raw_message: false,
        })
    });
    if let Err(error) = walked {
        let kind = if error.is_limit() {
            VerdictKind::Unscannable
        } else {
            VerdictKind::Error
        };
        scanner.found(Verdict::new(
            kind,
            error.name(),
            error.location(),
            format!("{error}, so the rest of the message was not scanned"),
        ));
    }
    if scanner.verdict().kind != VerdictKind::Virus {
        let _ = scanner.scan_object(&Object {
            data: message,
            names: &[],
            location: "raw message",
            container: None,
            depth: 0,
            raw_message: true,
        });
    }
    scanner.finish()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::testutil::{assert_verdict, base64, nested_multiparts, quoted_printable, uuencode};
    use super::virus::{EICAR_NAME, eicar_test_file};
    use super::*;

    fn scan(message: &[u8]) -> Verdict {
        scan_message(message, &ScanOptions::default())
    }

    fn eicar() -> String {
        String::from_utf8(eicar_test_file()).unwrap()
    }

    /// A multipart/mixed message with a short text part and `attachment`
    /// (headers and body) as part 2.
    fn with_attachment(attachment: &str) -> Vec<u8> {
        format!(
            "From: a@example.org\n\
             Subject: test\n\
             MIME-Version: 1.0\n\
             Content-Type: multipart/mixed; boundary=\"sep\"\n\
             \n\
             --sep\n\
             Content-Type: text/plain; charset=us-ascii\n\
             \n\
             Please see the attachment.\n\
             --sep\n\
             {attachment}\n\
             --sep--\n"
        )
        .into_bytes()
    }

    #[test]
    fn eicar_plain_in_the_body() {
        let message = format!("Subject: test\n\n{}\n", eicar());
        assert_verdict(
            &scan(message.as_bytes()),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 1",
        );
    }

    #[test]
    fn eicar_in_a_base64_attachment() {
        let encoded =
            base64(format!("{}{}", "padding so the match spans lines ", eicar()).as_bytes());
        let message = with_attachment(&format!(
            "Content-Type: application/octet-stream; name=\"test.bin\"\n\
             Content-Disposition: attachment; filename=\"test.bin\"\n\
             Content-Transfer-Encoding: base64\n\n{encoded}"
        ));
        assert!(!String::from_utf8_lossy(&message).contains("EICAR"));
        assert_verdict(
            &scan(&message),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2 (test.bin)",
        );
    }

    #[test]
    fn eicar_in_a_quoted_printable_part() {
        let message = with_attachment(&format!(
            "Content-Type: text/plain; charset=utf-8\n\
             Content-Transfer-Encoding: quoted-printable\n\n{}",
            quoted_printable(eicar().as_bytes())
        ));
        assert!(!String::from_utf8_lossy(&message).contains("EICAR-STANDARD"));
        assert_verdict(&scan(&message), VerdictKind::Virus, EICAR_NAME, "part 2");
    }

    #[test]
    fn eicar_in_an_attached_message() {
        let inner = format!(
            "Subject: forwarded\n\
             Content-Type: multipart/mixed; boundary=inner\n\n\
             --inner\n\
             Content-Type: text/plain\n\nsee below\n\
             --inner\n\
             Content-Type: application/octet-stream; name=e.bin\n\
             Content-Transfer-Encoding: base64\n\n{}\n\
             --inner--",
            base64(&eicar_test_file())
        );
        let message = with_attachment(&format!("Content-Type: message/rfc822\n\n{inner}"));
        assert_verdict(
            &scan(&message),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2.2 (e.bin)",
        );
    }

    #[test]
    fn eicar_in_a_base64_attached_message() {
        // Encoded twice: the attached message, then its own attachment.
        let inner = format!(
            "Subject: forwarded\n\
             Content-Type: application/octet-stream; name=e.bin\n\
             Content-Transfer-Encoding: base64\n\n{}\n",
            base64(&eicar_test_file())
        );
        let message = with_attachment(&format!(
            "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n{}",
            base64(inner.as_bytes())
        ));
        assert_verdict(
            &scan(&message),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2.1 (e.bin)",
        );
    }

    #[test]
    fn eicar_uuencoded_in_the_body() {
        let message = format!(
            "Subject: old school\n\nHere is the file:\n\n{}\nBye\n",
            uuencode("eicar.com", &eicar_test_file())
        );
        assert!(!message.contains("EICAR"));
        assert_verdict(
            &scan(message.as_bytes()),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 1 > eicar.com (uuencoded)",
        );
    }

    #[test]
    fn eicar_in_a_header_is_found_in_the_raw_message() {
        let message = format!("Subject: {}\n\nhello\n", eicar());
        assert_verdict(
            &scan(message.as_bytes()),
            VerdictKind::Virus,
            EICAR_NAME,
            "raw message",
        );
    }

    #[test]
    fn double_extension_attachment_is_blocked() {
        let message = with_attachment(
            "Content-Type: application/pdf; name=\"invoice.pdf.exe\"\n\
             Content-Disposition: attachment; filename=\"invoice.pdf.exe\"\n\
             Content-Transfer-Encoding: base64\n\nTVqQAAMAAAAEAAAA",
        );
        let verdict = scan(&message);
        assert_verdict(
            &verdict,
            VerdictKind::Ext,
            "ext:exe",
            "part 2 (invoice.pdf.exe)",
        );
        assert!(verdict.reason.contains("\"invoice.pdf.exe\""));
    }

    #[test]
    fn rfc2231_encoded_name_is_blocked() {
        let message = with_attachment(
            "Content-Type: application/octet-stream\n\
             Content-Disposition: attachment; filename*=UTF-8''invoice%2Epdf%2Eexe\n\n\
             MZ",
        );
        assert_verdict(
            &scan(&message),
            VerdictKind::Ext,
            "ext:exe",
            "part 2 (invoice.pdf.exe)",
        );
    }

    #[test]
    fn content_type_name_is_checked_when_filename_differs() {
        let message = with_attachment(
            "Content-Type: application/octet-stream; name=\"photo.scr\"\n\
             Content-Disposition: attachment; filename=\"photo.jpg\"\n\n\
             MZ",
        );
        assert_verdict(
            &scan(&message),
            VerdictKind::Ext,
            "ext:scr",
            "part 2 (photo.jpg)",
        );
    }

    #[test]
    fn uuencoded_file_name_is_checked() {
        let message = format!("Subject: uu\n\n{}", uuencode("setup.exe", b"MZ"));
        assert_verdict(
            &scan(message.as_bytes()),
            VerdictKind::Ext,
            "ext:exe",
            "part 1 > setup.exe (uuencoded)",
        );
    }

    #[test]
    fn configured_exts_replace_the_defaults() {
        let message = with_attachment("Content-Type: application/zip; name=\"a.zip\"\n\nPK");
        let options = ScanOptions {
            exts: vec!["zip".to_string()],
            ..ScanOptions::default()
        };
        assert_eq!(scan_message(&message, &options).kind, VerdictKind::Ext);
        assert_eq!(scan(&message).kind, VerdictKind::Clean);
    }

    #[test]
    fn clean_multipart_is_clean() {
        let message = with_attachment(
            "Content-Type: application/pdf; name=\"report.pdf\"\n\
             Content-Disposition: attachment; filename=\"report.pdf\"\n\
             Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK",
        );
        assert_eq!(scan(&message), Verdict::clean());
    }

    #[test]
    fn virus_outranks_an_earlier_blocked_extension() {
        let message = format!(
            "Content-Type: multipart/mixed; boundary=b\n\n\
             --b\n\
             Content-Type: application/octet-stream; name=run.exe\n\nMZ\n\
             --b\n\
             Content-Type: application/octet-stream; name=test.txt\n\
             Content-Transfer-Encoding: base64\n\n{}\n\
             --b--\n",
            base64(&eicar_test_file())
        );
        assert_verdict(
            &scan(message.as_bytes()),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2 (test.txt)",
        );
    }

    #[test]
    fn virus_in_a_blocked_attachment_is_a_virus() {
        let message = with_attachment(&format!(
            "Content-Type: application/octet-stream; name=eicar.com\n\
             Content-Transfer-Encoding: base64\n\n{}",
            base64(&eicar_test_file())
        ));
        assert_verdict(
            &scan(&message),
            VerdictKind::Virus,
            EICAR_NAME,
            "part 2 (eicar.com)",
        );
    }

    #[test]
    fn thousand_level_multipart_is_unscannable() {
        let verdict = scan(&nested_multiparts(1_000));
        assert_eq!(verdict.kind, VerdictKind::Unscannable);
        assert_eq!(verdict.name, "max_depth");
        assert!(
            verdict.reason.contains("more than 20 levels"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn virus_beyond_a_limit_is_still_found_in_the_raw_message() {
        let mut message = nested_multiparts(1_000);
        message.extend(eicar_test_file());
        assert_verdict(
            &scan(&message),
            VerdictKind::Virus,
            EICAR_NAME,
            "raw message",
        );
    }

    #[test]
    fn malformed_base64_does_not_panic_or_hide_eicar() {
        let mut encoded = base64(&eicar_test_file());
        encoded.insert_str(10, "!*\u{7f}");
        encoded.insert(40, '\n');
        let message = with_attachment(&format!(
            "Content-Type: application/octet-stream\n\
             Content-Transfer-Encoding: base64\n\n{encoded}\n==!!garbage=="
        ));
        assert_eq!(scan(&message).kind, VerdictKind::Virus);
        let broken = with_attachment("Content-Transfer-Encoding: base64\n\n====\n%%%\n=");
        assert_eq!(scan(&broken).kind, VerdictKind::Clean);
    }

    #[test]
    fn broken_structure_does_not_panic() {
        for message in [
            &b""[..],
            b"\n",
            b"\x00\xff\xfe garbage",
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\nno end",
            b"Content-Type: multipart/mixed; boundary=\n\n----\n",
            b"Content-Type: multipart/mixed\n\n--b\n",
            b"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n",
            b"Content-Type: message/rfc822\n\n",
            b"Content-Type: multipart/digest; boundary=d\n\n--d\n\n--d\nContent-Transfer-Encoding: base64\n\n!!\n--d--",
        ] {
            let verdict = scan(message);
            assert_eq!(verdict.kind, VerdictKind::Clean, "{message:?}");
        }
    }

    /// Pieces of MIME syntax, so random messages reach deep into the parser.
    fn mime_fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("Content-Type: multipart/mixed; boundary=b\n".to_string()),
            Just("Content-Type: message/rfc822\n".to_string()),
            Just("Content-Type: multipart/digest; boundary=d\n".to_string()),
            Just("Content-Transfer-Encoding: base64\n".to_string()),
            Just("Content-Transfer-Encoding: quoted-printable\n".to_string()),
            Just("Content-Disposition: attachment; filename*=UTF-8''a%2Eexe\n".to_string()),
            Just("\n".to_string()),
            Just("--b\n".to_string()),
            Just("--b--\n".to_string()),
            Just("--d\n".to_string()),
            Just("begin 644 x.exe\n".to_string()),
            Just("end\n".to_string()),
            "[A-Za-z0-9+/=]{0,40}\n",
            "[ -~]{0,40}\n",
        ]
    }

    #[test]
    fn message_inside_an_empty_message_does_not_panic() {
        // Found by `arbitrary_mime_never_panics`: it trips a debug_assert!
        // in mail-parser's recovery code, so debug builds see a panic there
        // and release builds recover.
        let message = b"Content-Type: multipart/mixed; boundary=b\n\n\
            --b\nContent-Type: message/rfc822\n\n\
            Content-Type: message/rfc822\n\n\n\
            --b--\n";
        let verdict = scan(message);
        match verdict.kind {
            VerdictKind::Clean => {}
            VerdictKind::Error => {
                assert_eq!(verdict.name, "parser_panic");
                assert_eq!(verdict.location, "message");
                assert_eq!(verdict.kind.queue(), "error");
            }
            other => panic!("unexpected verdict {other:?}"),
        }
    }

    proptest! {
        // No regression file: it would land outside src/scan. Cases found
        // are kept as plain tests above instead.
        #![proptest_config(ProptestConfig {
            cases: 64,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let _ = scan(&bytes);
        }

        #[test]
        fn arbitrary_mime_never_panics(fragments in prop::collection::vec(mime_fragment(), 0..200)) {
            let _ = scan(fragments.concat().as_bytes());
        }
    }
}
