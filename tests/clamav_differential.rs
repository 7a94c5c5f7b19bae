//! Differential tests against ClamAV 1.4.6: one signature directory is loaded by SIE and
//! by `clamscan -d`, one generated corpus is scanned by both, and every file must get
//! the same answer: the same signature name where `clamscan` reports `FOUND`, and no
//! match where it does not. `clamscan` runs as `clamscan --no-summary -d SIGDIR -r DIR`:
//! one name per file (no `--allmatch`), mail and archive scanning on (1.4.6 defaults).
//!
//! The signature directory (`signatures`) holds the CLAMAV.md §1.2 database (ndb, hdb,
//! hsb, ldb; not the PE-only `.mdb`), hand-written wildcard signatures (`??`, nibbles,
//! `*`, ranges, alternations, `EOF-n`, absolute and floating offsets, boundaries,
//! target 7, target 4), logical signatures, hashes of generated files and of generated
//! attachment payloads, an allow list and an ignore list.
//!
//! The tests FAIL, never skip, when `clamscan` is missing: `tools/test` installs the
//! `clamav` package before running the tests.
//!
//! # File level
//!
//! `corpus()`: plain files, each matched with `SignatureSet::scan` as a top-level file.
//!
//! # Mail level
//!
//! `mail_corpus()`: `.eml` messages and bare archives, each read with
//! `sie::inputs::read` and scanned with `sie::inputs::scan_input` (no spam rules), as
//! `msgscan` does. A file's name says what it is, by `clamscan`'s verdict (checked):
//! `hit-` carries one signature, `miss-` a near miss (or a signature that must not
//! count there), `clean-` nothing. Every flagged file carries one signature only, so
//! that which of two names is reported first never decides the comparison.
//! - EICAR in every carrier: a base64 or quoted-printable attachment, uuencoded in the
//!   body, the whole message as one base64 part, a base64-attached message/rfc822, and
//!   as a member of a zip, a zip in a zip, a tar.gz, a gzip and a bzip2 file; as a 7bit
//!   text part; in a header field.
//! - Every other body and logical signature in one carrier each (rotating), text ones
//!   also as 7bit parts; the hash payloads (`mail.hdb`, `mail.hsb`) as decoded parts and
//!   archive members, and a zip whose own MD5 is listed.
//! - Near misses of each, and signatures that must not count: ignored, allow-listed,
//!   `Container:CL_TYPE_ANY` in a part, target 4 in a decoded part or a base64 attached
//!   message, EICAR split over two parts or base64 that no header declares.
//! - The raw message: target 4 in a header field or an attached message sent as it
//!   is, target 0 in the epilogue, `Container:CL_TYPE_ANY` in 7bit and quoted-printable
//!   text, whole-message `EOF-n` and absolute offsets.
//! - MIME variants: CRLF line ends (every fifth base64 carrier), nested multiparts,
//!   multipart/alternative with HTML, a missing closing delimiter, junk in base64, a
//!   60 KB base64 line, unquoted and folded boundaries, `BASE64 `, `x-uuencode`, no
//!   `MIME-Version`.
//! - Clean messages (text, HTML, binary, archives).
//! - Bare `.zip` and `.tar.gz` files (hits, near misses, clean), including a zip whose
//!   stored member shows `ROOT-ONLY` in the archive's own bytes: `clamscan` scans a
//!   bare file as the root object, so `Hand.Ldb.Root-1` (`Container:CL_TYPE_ANY`)
//!   matches it.
//!
//! ## Left out of the mail corpus
//!
//! ClamAV-specific behaviours outside the issue's scope; `excluded_corpus()` keeps one
//! case of each, and `the_excluded_cases_differ_as_documented` checks they still
//! differ exactly so (when one stops differing, it belongs in the corpus):
//! 1. **7bit and quoted-printable parts end with an added line end in ClamAV.** Its
//!    mail parser decodes them line by line and writes `\n` after every line, the last
//!    one included, and drops CRs (seen with `clamscan --leave-temps`); SIE keeps the
//!    part's bytes as RFC 2046 defines them (the line end before a delimiter belongs to
//!    the delimiter). So `EOF-n` and hash signatures of such parts differ: ClamAV misses
//!    `Hand.Eof-1` and `Mail.TextMd5-4` there, SIE finds them. Base64 parts decode
//!    exactly in both. Payloads whose match depends on their end (`exact_end`) never
//!    travel as 7bit or quoted-printable parts in the corpus.
//! 2. **HTML is not text to ClamAV** (CLAMAV.md §2.1: HTML has its own normalisation).
//!    ClamAV types an HTML part as HTML, so target-7 signatures do not run on it (SIE
//!    finds `Hand.Text7-1`), and it matches target 0 on a tag-free normalised copy
//!    (ClamAV finds `Hand.Lower0-1` in `LOWER<b>Case</b>ONLY`, SIE does not). HTML
//!    without signature bytes, and text that needs no tag stripping, stay in the corpus.
//! 3. **`begin-base64` blocks** (`uuencode -m`) in a text part: SIE decodes them (as it
//!    does classic uuencode, which ClamAV decodes too), ClamAV does not.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use sie::inputs::{Source, read, scan_input};
use sie::rules::RuleSet;
use sie::rules::signatures::{ObjectInfo, SignatureSet, Target};
use sie::scan::{ScanOptions, VerdictKind};

/// Hand-written body signatures: the bytes each must match, and a near miss.
const BODY_CASES: &[(&str, &[u8], &[u8])] = &[
    ("qmark", b"ZQ-MR+XS", b"ZQ-MR+XT"),
    (
        "star",
        b"KIND..lots of bytes..OF...STARR",
        b"KIND..STARR...OF",
    ),
    ("range", b"long0123456789abcdgap", b"long0123456gap"),
    ("alt", b"alt2-test!", b"alt4-test!"),
    ("negalt", b"notC-match", b"notA-match"),
    ("multialt", b"multiBB-alt", b"multiAB-alt"),
    ("genericalt", b"genABC-alt", b"genAB-alt"),
    ("nibble", b"NIrBLE-x", b"NIqBLE-x"),
    ("brace", b"fixed{12345}..", b"fixed{1234}.."),
    ("bracket", b"BRAK---!", b"BRAK-----!"),
    ("boundary", b" wordbound ", b"xwordbound "),
    ("ignored", b"IGNORE-ME-PLEASE", b"IGNORE-ME-PLEAS"),
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 32) as u8).collect()
    }

    /// Plain English-like text: mixed case, runs of spaces, tabs and line ends.
    fn text(&mut self, words: usize) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Queue", "Message",
            "DELIVERY", "report", "invoice", "Meeting", "tomorrow", "please", "find", "attached",
            "numbers", "2026", "server", "Backup", "kind", "regards", "Thanks", "again", "total",
            "AMOUNT", "due",
        ];
        let mut out = Vec::new();
        for i in 0..words {
            out.extend_from_slice(WORDS[self.below(WORDS.len())].as_bytes());
            out.extend_from_slice(match (i % 11, self.below(6)) {
                (10, _) => b".\n",
                (_, 0) => b"  ",
                (_, 1) => b"\t",
                _ => b" ",
            });
        }
        out
    }
}

/// A corpus file and how it is to be scanned.
struct CorpusFile {
    name: String,
    bytes: Vec<u8>,
}

fn eicar() -> Vec<u8> {
    sie::scan::virus::eicar_test_file()
}

/// Binary filler: starts with NUL bytes so that ClamAV types it as binary data.
fn binary(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; 4];
    b.extend(rng.bytes(len));
    b
}

fn at(mut base: Vec<u8>, offset: usize, insert: &[u8]) -> Vec<u8> {
    let offset = offset.min(base.len());
    base.splice(offset..offset, insert.iter().copied());
    base
}

/// The generated corpus, the same on every run.
fn corpus() -> Vec<CorpusFile> {
    let mut rng = Rng(0x5eed_c1a7_a5e5_0001);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>| files.push((name.to_string(), bytes));

    // Harmless files: binary, random without a type prefix (ClamAV types about half of
    // these as UTF-16 text and normalises them), and text.
    for i in 0..25 {
        let len = 6 + rng.below(4000);
        add(&format!("clean-bin-{i:02}"), binary(&mut rng, len));
    }
    for i in 0..15 {
        let len = 6 + rng.below(3000);
        add(&format!("clean-rand-{i:02}"), rng.bytes(len));
    }
    for i in 0..15 {
        let words = 5 + rng.below(400);
        add(&format!("clean-text-{i:02}.txt"), rng.text(words));
    }
    add("tiny-5-bytes", b"X5O!P".to_vec());

    // EICAR: plain, inside text, damaged.
    add("eicar.com", eicar());
    let text = rng.text(40);
    add("eicar-in-text.txt", at(text, 57, &eicar()));
    let mut damaged = eicar();
    damaged[30] ^= 0x20;
    add("eicar-damaged", damaged);
    let bin = binary(&mut rng, 300);
    add("clamtest-kernel32", at(bin, 120, b"KERNEL32.DLL\0\0Ex"));

    // Hand-written body signatures: a hit and a near miss each, at varied offsets.
    let cases = BODY_CASES;
    for (name, hit, miss) in cases {
        let len = 200 + rng.below(2000);
        let base = binary(&mut rng, len);
        let offset = 4 + rng.below(len);
        add(&format!("hit-{name}"), at(base.clone(), offset, hit));
        add(&format!("miss-{name}"), at(base, offset, miss));
    }
    // Offsets: absolute, floating, from the end.
    let base = binary(&mut rng, 100);
    add("hit-abs", at(base.clone(), 16, b"OFFSET-16"));
    add("miss-abs", at(base.clone(), 17, b"OFFSET-16"));
    add("hit-float-lo", at(base.clone(), 32, b"FLOAT-32"));
    add("hit-float-hi", at(base.clone(), 40, b"FLOAT-32"));
    add("miss-float", at(base.clone(), 41, b"FLOAT-32"));
    let mut eof = base.clone();
    eof.extend_from_slice(b"EOF-MARKER12");
    add("hit-eof", eof.clone());
    eof.push(b'!');
    add("miss-eof", eof);
    // Text-only signatures: matched on ClamAV's normalised text, not in binary files.
    let text = rng.text(30);
    add(
        "hit-target7.txt",
        at(text.clone(), 20, b" NORMALISED \t  Text! "),
    );
    add(
        "hit-lower0.txt",
        at(text.clone(), 33, b" LOWER Case   ONLY "),
    );
    let bin = binary(&mut rng, 200);
    add("miss-target7", at(bin.clone(), 50, b" NORMALISED   Text! "));
    add("miss-lower0", at(bin.clone(), 50, b" LOWER Case   ONLY "));
    add("hit-lower0-raw", at(bin, 60, b"lower case only"));
    // Logical signatures.
    let bin = binary(&mut rng, 500);
    add(
        "hit-ldb-count",
        at(
            at(at(bin.clone(), 10, b"COUNT-ME"), 100, b"COUNT-ME"),
            300,
            b"COUNT-ME",
        ),
    );
    add(
        "miss-ldb-count",
        at(at(bin.clone(), 10, b"COUNT-ME"), 100, b"COUNT-ME"),
    );
    add("hit-ldb-or", at(at(bin.clone(), 10, b"OR2"), 200, b"AND"));
    add("miss-ldb-or", at(at(bin.clone(), 10, b"OR3"), 200, b"AND"));
    add("hit-ldb-root", at(bin.clone(), 77, b"ROOT-ONLY"));
    add("hit-ldb-pcre", at(bin.clone(), 77, b"PCRE-123-OK"));
    add("miss-ldb-pcre", at(bin.clone(), 77, b"PCRE-12-OK"));
    add("hit-ldb-nocase", at(bin.clone(), 33, b"NoCaSe-Sig"));
    add(
        "hit-ldb-eicar-parts",
        at(bin, 40, b"EICAR-STANDARD ANTIVIRUS-TEST-FILE"),
    );
    // Several signatures in one file: ClamAV reports static (Boyer-Moore) signatures
    // before wildcard ones, each kind earliest first.
    let bin = binary(&mut rng, 400);
    add(
        "order-static-late",
        at(at(bin.clone(), 20, b"ZQ-MR+XS"), 300, b"lower case only"),
    );
    add(
        "order-two-wild",
        at(at(bin.clone(), 20, b"notC-match"), 200, b"alt1-test!"),
    );
    add(
        "order-two-static",
        at(
            at(bin.clone(), 20, b"lower case only"),
            200,
            b"KERNEL32.DLL\0\0Ex",
        ),
    );
    add(
        "order-ldb-vs-body",
        at(at(bin, 20, b"COUNT-MECOUNT-MECOUNT-ME"), 200, b"genD-alt"),
    );
    // Allow-listed: would match `Hand.Alt-1`.
    add(
        "allowed-alt",
        b"\0\0\0\0 this alt3-test! is allowed".to_vec(),
    );

    // Files whose hashes are in gen.hdb / gen.hsb, and same-size near misses.
    for i in 0..3 {
        let len = 50 + rng.below(500);
        let bytes = binary(&mut rng, len);
        let mut near = bytes.clone();
        near[len / 2] ^= 1;
        add(&format!("hash-{i}"), bytes);
        add(&format!("hash-{i}-near"), near);
    }
    files
        .into_iter()
        .map(|(name, bytes)| CorpusFile { name, bytes })
        .collect()
}

/// The signature directory; hash signatures are taken from `corpus` (the file-level
/// corpus) and from `mail` (payloads of the mail-level corpus).
fn signatures(dir: &Path, corpus: &[CorpusFile], mail: &MailHashes) {
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    // CLAMAV.md §1.2, verbatim.
    write(
        "custom.ndb",
        "Custom.EICAR.NDB-1:0:*:58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a\n\
         Custom.ClamTest.NDB-1:0:*:4b45524e454c33322e444c4c00004578\n\
         Custom.ClamTest.EP-1:1:EP+0:bb71104000\n"
            .into(),
    );
    write(
        "custom.hdb",
        "44d88612fea8a8f36de82e1278abb02f:68:Custom.EICAR.HDB-1\naa15bcf478d165efd2065190eb473bcb:544:Custom.ClamTest.HDB-1\n".into(),
    );
    write(
        "custom.hsb",
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f:68:Custom.EICAR.HSB-1\n"
            .into(),
    );
    write(
        "custom.ldb",
        "Custom.EICAR.LDB-1;Engine:51-255,Target:0;0&1;45494341522d5354414e44415244;414e544956495255532d544553542d46494c45\n".into(),
    );
    let h = |s: &[u8]| hex(s);
    let hand = [
        "Hand.Qmark-1:0:*:5a51??4d52??5853".to_string(),
        format!(
            "Hand.Star-1:0:*:{}*{}*{}",
            h(b"KIND"),
            h(b"OF"),
            h(b"STARR")
        ),
        format!("Hand.Range-1:0:*:{}{{10-20}}{}", h(b"long"), h(b"gap")),
        format!("Hand.Alt-1:0:*:{}(31|32|33){}", h(b"alt"), h(b"-test!")),
        format!("Hand.NegAlt-1:0:*:{}!(41|42){}", h(b"not"), h(b"-match")),
        format!(
            "Hand.MultiAlt-1:0:*:{}(4141|4242){}",
            h(b"multi"),
            h(b"-alt")
        ),
        format!(
            "Hand.GenericAlt-1:0:*:{}(414243|44){}",
            h(b"gen"),
            h(b"-alt")
        ),
        "Hand.Nibble-1:0:*:4e49?242?c452d".to_string(),
        format!("Hand.Brace-1:0:*:{}{{5}}{}", h(b"fixed{"), h(b"}..")),
        format!("Hand.Bracket-1:0:*:{}[2-4]21", h(b"BRAK")),
        format!("Hand.Boundary-1:0:*:(B){}(B)", h(b"wordbound")),
        format!("Hand.Ign-1:0:*:{}", h(b"IGNORE-ME-PLEASE")),
        format!("Hand.Abs-1:0:16:{}", h(b"OFFSET-16")),
        format!("Hand.Float-1:0:32,8:{}", h(b"FLOAT-32")),
        format!("Hand.Eof-1:0:EOF-12:{}", h(b"EOF-MARKER")),
        format!("Hand.Text7-1:7:*:{}", h(b"normalised text!")),
        format!("Hand.Lower0-1:0:*:{}", h(b"lower case only")),
        format!("Hand.Mail4-1:4:*:{}", h(MAIL4_MARKER)),
    ];
    write("hand.ndb", hand.join("\n") + "\n");
    write(
        "hand.ldb",
        [
            format!(
                "Hand.Ldb.Count-1;Engine:51-255,Target:0;0>2;{}",
                h(b"COUNT-ME")
            ),
            format!(
                "Hand.Ldb.Or-1;Engine:51-255,Target:0;(0|1)&2;{};{};{}",
                h(b"OR1"),
                h(b"OR2"),
                h(b"AND")
            ),
            format!(
                "Hand.Ldb.Root-1;Engine:51-255,Target:0,Container:CL_TYPE_ANY;0;{}",
                h(b"ROOT-ONLY")
            ),
            format!(
                "Hand.Ldb.Pcre-1;Engine:81-255,Target:0;0&1;{};0/PCRE-[0-9]{{3}}-OK/",
                h(b"PCRE")
            ),
            format!(
                "Hand.Ldb.Nocase-1;Engine:81-255,Target:0;0;{}::i",
                h(b"nocase-sig")
            ),
        ]
        .join("\n")
            + "\n",
    );
    let find = |name: &str| &corpus.iter().find(|f| f.name == name).unwrap().bytes;
    let (h0, h1, h2) = (find("hash-0"), find("hash-1"), find("hash-2"));
    write(
        "gen.hdb",
        format!("{}:{}:Gen.Md5-0\n", hex(&Md5::digest(h0)), h0.len()),
    );
    write(
        "gen.hsb",
        format!(
            "{}:{}:Gen.Sha256-1\n{}:*:Gen.Sha1-2:73\n",
            hex(&Sha256::digest(h1)),
            h1.len(),
            hex(&Sha1::digest(h2))
        ),
    );
    let allowed = find("allowed-alt");
    write(
        "allow.fp",
        format!(
            "{}:{}:Allowed.Alt\n",
            hex(&Md5::digest(allowed)),
            allowed.len()
        ),
    );
    write("ignore.ign2", "Hand.Ign-1\n".into());
    write(
        "mail.hdb",
        format!(
            "{}:{}:Mail.Md5-0\n{}:{}:Mail.ZipMd5-3\n{}:{}:Mail.TextMd5-4\n",
            hex(&Md5::digest(&mail.md5)),
            mail.md5.len(),
            hex(&Md5::digest(&mail.zip)),
            mail.zip.len(),
            hex(&Md5::digest(&mail.text)),
            mail.text.len()
        ),
    );
    write(
        "mail.hsb",
        format!(
            "{}:{}:Mail.Sha256-1\n{}:*:Mail.Sha1-2:73\n",
            hex(&Sha256::digest(&mail.sha256)),
            mail.sha256.len(),
            hex(&Sha1::digest(&mail.sha1))
        ),
    );
}

/// `clamscan`'s verdicts: file name -> signature name, for the files it flags.
/// `clamscan --no-summary -d SIGDIR -r DIR`, with 1.4.6's defaults: one name per file
/// (no `--allmatch`), mail and archive scanning on (`--scan-mail`, `--scan-archive`).
fn clamscan(sigdir: &Path, corpus_dir: &Path) -> BTreeMap<String, String> {
    let output = Command::new("clamscan")
        .args(["--no-summary", "-d"])
        .arg(sigdir)
        .arg("-r")
        .arg(corpus_dir)
        .output()
        .expect("clamscan must be installed (apt-get install clamav; tools/test does it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "clamscan failed: {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|line| {
            let (path, rest) = line.rsplit_once(": ")?;
            let name = rest.strip_suffix(" FOUND")?;
            let file = Path::new(path).file_name()?.to_string_lossy().into_owned();
            Some((file, name.to_string()))
        })
        .collect()
}

#[test]
fn sie_and_clamscan_agree_on_every_corpus_file() {
    let work = tempfile::tempdir().unwrap();
    let (sigdir, corpus_dir) = (work.path().join("sigs"), work.path().join("corpus"));
    std::fs::create_dir(&sigdir).unwrap();
    std::fs::create_dir(&corpus_dir).unwrap();
    let corpus = corpus();
    for file in &corpus {
        std::fs::write(corpus_dir.join(&file.name), &file.bytes).unwrap();
    }
    signatures(&sigdir, &corpus, &MailHashes::new());

    let expected = clamscan(&sigdir, &corpus_dir);
    let (set, problems) = SignatureSet::load_dir(&sigdir).unwrap();
    assert_eq!(
        problems.len(),
        1,
        "only the PE entry-point signature is unsupported: {problems:?}"
    );
    assert!(
        problems[0].file.ends_with("custom.ndb") && problems[0].line == 3,
        "{problems:?}"
    );

    let object = ObjectInfo {
        target: Target::File,
        container: None,
    };
    let mut mismatches = Vec::new();
    for file in &corpus {
        let ours = set.scan(&file.bytes, &object).map(|m| m.name);
        let theirs = expected.get(&file.name).cloned();
        if ours != theirs {
            mismatches.push(format!("{}: clamscan {theirs:?}, SIE {ours:?}", file.name));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} files differ:\n{}",
        mismatches.len(),
        corpus.len(),
        mismatches.join("\n")
    );
    assert!(
        expected.len() >= 30,
        "the corpus should exercise the signatures: {expected:?}"
    );
    eprintln!(
        "{} files, {} flagged by both, identically",
        corpus.len(),
        expected.len()
    );
}

// ----------------------------------------------------------------------------------------
// Mail level: whole `.eml` messages and bare archives, read and scanned through
// `sie::inputs` as `msgscan` does.

/// Matched by `Hand.Mail4-1` (target 4, mail): only in a message's raw text.
const MAIL4_MARKER: &[u8] = b"X-Corpus-Mark: target-four";

/// Attachment payloads of the mail corpus whose hashes are in `mail.hdb` / `mail.hsb`.
struct MailHashes {
    /// `Mail.Md5-0`.
    md5: Vec<u8>,
    /// `Mail.Sha256-1`.
    sha256: Vec<u8>,
    /// `Mail.Sha1-2`, listed with size `*`.
    sha1: Vec<u8>,
    /// `Mail.ZipMd5-3`: a whole zip archive of clean members.
    zip: Vec<u8>,
    /// `Mail.TextMd5-4`: a text file.
    text: Vec<u8>,
}

impl MailHashes {
    fn new() -> MailHashes {
        let mut rng = Rng(0x5eed_c1a7_a5e5_0002);
        let md5 = binary(&mut rng, 700);
        let sha256 = binary(&mut rng, 1500);
        let sha1 = binary(&mut rng, 333);
        let notes = rng.text(60);
        let data = binary(&mut rng, 400);
        let zip = zip(&[("notes.txt", &notes), ("data.bin", &data)]);
        let text = rng.text(70);
        MailHashes {
            md5,
            sha256,
            sha1,
            zip,
            text,
        }
    }
}

/// A zip with deflated members (SIE's corpus generator writes it).
fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let members: Vec<(String, Vec<u8>)> = members
        .iter()
        .map(|(name, data)| (name.to_string(), data.to_vec()))
        .collect();
    sie::corpus::attach::zip(&members)
}

/// A zip with stored (uncompressed) members: their bytes show in the archive's own.
fn zip_stored(members: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write as _;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (name, data) in members {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let members: Vec<(String, Vec<u8>)> = members
        .iter()
        .map(|(name, data)| (name.to_string(), data.to_vec()))
        .collect();
    sie::corpus::attach::tar_gz(&members)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(6));
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Base64 in lines of 76, each ending in `\n`.
fn base64(data: &[u8]) -> Vec<u8> {
    sie::corpus::attach::base64(data)
}

/// Quoted-printable of any bytes: in `text`, `\n` stays a line break; every other byte
/// that is not printable ASCII (and `=`, and a space before a line end) is escaped;
/// lines get soft breaks before 76 characters.
fn quoted_printable(data: &[u8], text: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut col = 0;
    for (i, &b) in data.iter().enumerate() {
        if text && b == b'\n' {
            out.push(b'\n');
            col = 0;
            continue;
        }
        let at_line_end = data.get(i + 1).is_none_or(|&next| text && next == b'\n');
        let literal = ((33..=126).contains(&b) && b != b'=') || (b == b' ' && !at_line_end);
        let piece = if literal {
            vec![b]
        } else {
            format!("={b:02X}").into_bytes()
        };
        if col + piece.len() > 75 {
            out.extend_from_slice(b"=\n");
            col = 0;
        }
        col += piece.len();
        out.extend(piece);
    }
    out
}

/// A classic `begin 644 <name>` ... `end` block.
fn uuencode(name: &str, data: &[u8]) -> Vec<u8> {
    let char_of = |sextet: u32| {
        if sextet == 0 {
            b'`'
        } else {
            sextet as u8 + b' '
        }
    };
    let mut out = format!("begin 644 {name}\n").into_bytes();
    for line in data.chunks(45) {
        out.push(char_of(line.len() as u32));
        for chunk in line.chunks(3) {
            let group = u32::from_be_bytes([
                0,
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ]);
            for position in 0..4 {
                out.push(char_of((group >> (18 - 6 * position)) & 0x3f));
            }
        }
        out.push(b'\n');
    }
    out.extend_from_slice(b"`\nend\n");
    out
}

fn crlf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 30);
    for &b in text {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// A MIME entity: its header fields (each ending in `\n`) and its encoded body.
struct Entity {
    headers: String,
    body: Vec<u8>,
}

impl Entity {
    fn new(headers: &str, body: Vec<u8>) -> Entity {
        Entity {
            headers: headers.into(),
            body,
        }
    }
}

fn text_part(rng: &mut Rng) -> Entity {
    let words = 20 + rng.below(120);
    Entity::new(
        "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n",
        rng.text(words),
    )
}

/// An HTML page around `inner`.
fn html(rng: &mut Rng, inner: &[u8]) -> Vec<u8> {
    let words = 10 + rng.below(60);
    let mut body = b"<html><body><p>".to_vec();
    body.extend(rng.text(words));
    body.extend_from_slice(inner);
    body.extend_from_slice(b"</p></body></html>\n");
    body
}

fn html_part(rng: &mut Rng) -> Entity {
    let body = html(rng, b"");
    Entity::new(
        "Content-Type: text/html; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n",
        body,
    )
}

/// An attachment in `encoding`: `base64`, `quoted-printable` or `7bit` (as it is).
fn attachment(name: &str, data: &[u8], encoding: &str, text: bool) -> Entity {
    let ctype = if text {
        "text/plain; charset=us-ascii"
    } else {
        "application/octet-stream"
    };
    let body = match encoding {
        "base64" => base64(data),
        "quoted-printable" => quoted_printable(data, text),
        _ => data.to_vec(),
    };
    Entity {
        headers: format!(
            "Content-Type: {ctype}; name=\"{name}\"\n\
             Content-Disposition: attachment; filename=\"{name}\"\n\
             Content-Transfer-Encoding: {encoding}\n"
        ),
        body,
    }
}

fn multipart(subtype: &str, boundary: &str, parts: Vec<Entity>) -> Entity {
    let mut body = b"This is a multi-part message in MIME format.\n\n".to_vec();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\n{}\n", part.headers).as_bytes());
        body.extend(part.body);
        // The line end before a delimiter belongs to the delimiter, not to the part.
        body.push(b'\n');
    }
    body.extend_from_slice(format!("--{boundary}--\n").as_bytes());
    Entity {
        headers: format!("Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\n"),
        body,
    }
}

/// A text part and `attachment` in a multipart/mixed.
fn with_attachment(rng: &mut Rng, attachment: Entity) -> Entity {
    let boundary = format!("=_mixed_{:x}", rng.next() >> 40);
    let first = text_part(rng);
    multipart("mixed", &boundary, vec![first, attachment])
}

/// A whole message: trace and address fields, `extra` fields, then `top`.
fn eml(n: usize, subject: &str, extra: &str, top: Entity) -> Vec<u8> {
    let trace = match n % 3 {
        0 => format!("Return-Path: <sender{n}@example.org>\n"),
        1 => format!(
            "Received: from mx{n}.example.org (mx{n}.example.org [192.0.2.{}])\n\
             \tby relay.example.net with ESMTP id 4a{n:04}; Mon, 19 Jan 2026 10:{:02}:00 +0000\n",
            n % 250 + 1,
            n % 60
        ),
        _ => String::new(),
    };
    let mut out = format!(
        "{trace}From: Sender {n} <sender{n}@example.org>\n\
         To: Someone <rcpt@example.net>\n\
         Subject: {subject}\n\
         Date: Mon, 19 Jan 2026 10:{:02}:00 +0000\n\
         Message-ID: <corpus-{n}@example.org>\n\
         MIME-Version: 1.0\n\
         {extra}{}\n",
        n % 60,
        top.headers
    )
    .into_bytes();
    out.extend(top.body);
    out
}

/// How a payload travels in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrap {
    /// A base64 attachment beside a text part.
    Base64,
    /// A quoted-printable attachment.
    Qp,
    /// A 7bit text attachment, the payload as it is (text payloads only).
    Plain,
    /// Uuencoded in the text body.
    Uu,
    /// The message itself is the base64 attachment (no multipart).
    Single,
    /// A base64 attachment of a message/rfc822 part.
    Rfc822,
    /// The member of a zip attached in base64.
    Zip,
    /// The member of a zip inside a zip.
    ZipInZip,
    /// The member of a tar.gz.
    TarGz,
    /// A gzip file.
    Gz,
    /// A bzip2 file.
    Bz2,
}

impl Wrap {
    const ROTATION: [Wrap; 10] = [
        Wrap::Base64,
        Wrap::Zip,
        Wrap::TarGz,
        Wrap::Qp,
        Wrap::Gz,
        Wrap::ZipInZip,
        Wrap::Bz2,
        Wrap::Single,
        Wrap::Rfc822,
        Wrap::Uu,
    ];

    fn tag(self) -> &'static str {
        match self {
            Wrap::Base64 => "b64",
            Wrap::Qp => "qp",
            Wrap::Plain => "plain",
            Wrap::Uu => "uu",
            Wrap::Single => "single",
            Wrap::Rfc822 => "rfc822",
            Wrap::Zip => "zip",
            Wrap::ZipInZip => "zipzip",
            Wrap::TarGz => "targz",
            Wrap::Gz => "gz",
            Wrap::Bz2 => "bz2",
        }
    }
}

/// What a message carries.
struct Payload {
    label: String,
    /// The file name it travels under.
    file: String,
    bytes: Vec<u8>,
    /// Printable text (can go as a 7bit part).
    text: bool,
    /// Its signature depends on the exact end of the file (`EOF-n`, a hash): it never
    /// travels as a 7bit or quoted-printable part, which ClamAV decodes with a line end
    /// added (exclusion 1 in the module text).
    exact_end: bool,
}

fn payload(label: &str, file: &str, bytes: Vec<u8>) -> Payload {
    let text = bytes
        .iter()
        .all(|&b| b == b'\n' || b == b'\t' || (32..127).contains(&b));
    Payload {
        label: label.into(),
        file: file.into(),
        bytes,
        text,
        exact_end: label.starts_with("eof") || label.starts_with("hash-"),
    }
}

/// The attachment `wrap` makes of `payload`: its name and bytes.
fn wrapped(rng: &mut Rng, payload: &Payload, wrap: Wrap) -> (String, Vec<u8>) {
    let (file, data) = (payload.file.as_str(), payload.bytes.as_slice());
    match wrap {
        Wrap::Zip => (format!("{file}.zip"), zip(&[(file, data)])),
        Wrap::ZipInZip => {
            let readme = rng.text(30);
            let inner = zip(&[(file, data)]);
            (
                "bundle.zip".into(),
                zip(&[("readme.txt", &readme), ("inner.zip", &inner)]),
            )
        }
        Wrap::TarGz => {
            let readme = rng.text(25);
            let path = format!("docs/{file}");
            (
                "backup.tar.gz".into(),
                tar_gz(&[("docs/readme.txt", &readme), (&path, data)]),
            )
        }
        Wrap::Gz => (format!("{file}.gz"), gzip(data)),
        Wrap::Bz2 => (format!("{file}.bz2"), bzip2(data)),
        _ => (file.into(), data.to_vec()),
    }
}

/// Message `n`: `payload` carried by `wrap`.
fn carrier(n: usize, rng: &mut Rng, payload: &Payload, wrap: Wrap) -> Vec<u8> {
    assert!(
        !(payload.exact_end && matches!(wrap, Wrap::Qp | Wrap::Plain)),
        "{}: see exclusion 1",
        payload.label
    );
    let (name, data) = wrapped(rng, payload, wrap);
    let boundary = format!("=_part_{n}_{:x}", rng.next() >> 40);
    let first = if n % 4 == 1 {
        let (text, html) = (text_part(rng), html_part(rng));
        multipart("alternative", &format!("{boundary}_alt"), vec![text, html])
    } else {
        text_part(rng)
    };
    let subject = format!("{} ({})", payload.label, wrap.tag());
    let top = match wrap {
        Wrap::Qp => multipart(
            "mixed",
            &boundary,
            vec![
                first,
                attachment(&name, &data, "quoted-printable", payload.text),
            ],
        ),
        Wrap::Plain => {
            assert!(payload.text, "{}: not text", payload.label);
            multipart(
                "mixed",
                &boundary,
                vec![first, attachment(&name, &data, "7bit", true)],
            )
        }
        Wrap::Uu => {
            let mut body = rng.text(30);
            body.extend_from_slice(b"\n\n");
            body.extend(uuencode(&name, &data));
            body.extend(rng.text(10));
            Entity::new("Content-Type: text/plain; charset=us-ascii\n", body)
        }
        Wrap::Single => attachment(&name, &data, "base64", false),
        Wrap::Rfc822 => {
            let inner = multipart(
                "mixed",
                &format!("{boundary}_inner"),
                vec![text_part(rng), attachment(&name, &data, "base64", false)],
            );
            let forwarded = Entity::new(
                "Content-Type: message/rfc822\nContent-Disposition: inline\n",
                eml(n + 1000, "forwarded", "", inner),
            );
            multipart("mixed", &boundary, vec![first, forwarded])
        }
        _ => multipart(
            "mixed",
            &boundary,
            vec![first, attachment(&name, &data, "base64", false)],
        ),
    };
    let message = eml(n, &subject, "", top);
    // Every fifth message has CRLF line ends, where that leaves the payload's bytes
    // alone (in base64).
    let crlf_safe = !matches!(wrap, Wrap::Qp | Wrap::Plain | Wrap::Uu | Wrap::Rfc822);
    if crlf_safe && n % 5 == 4 {
        crlf(&message)
    } else {
        message
    }
}

/// The payloads that carry one signature each (hits) and their near misses.
fn mail_payloads(rng: &mut Rng, hashes: &MailHashes) -> (Vec<Payload>, Vec<Payload>) {
    let mut hits = Vec::new();
    let mut misses = Vec::new();
    hits.push(payload("eicar", "eicar.txt", eicar()));
    let text = rng.text(60);
    hits.push(payload(
        "eicar-in-text",
        "notes.txt",
        at(text, 101, &eicar()),
    ));
    let bin = binary(rng, 900);
    hits.push(payload(
        "kernel32",
        "tool.dll",
        at(bin, 300, b"KERNEL32.DLL\0\0Ex"),
    ));
    let mut damaged = eicar();
    damaged[30] ^= 0x20;
    misses.push(payload("eicar-damaged", "eicar.txt", damaged));

    // `ignored` is the signature of the .ign2 list: only the file-level test needs it.
    let cases: Vec<_> = BODY_CASES
        .iter()
        .filter(|(name, _, _)| *name != "ignored")
        .collect();
    for (name, hit, miss) in cases {
        let len = 300 + rng.below(2500);
        let offset = 4 + rng.below(len);
        let base = binary(rng, len);
        hits.push(payload(name, "data.bin", at(base.clone(), offset, hit)));
        misses.push(payload(name, "data.bin", at(base, offset, miss)));
    }
    let base = binary(rng, 600);
    hits.push(payload(
        "abs",
        "header.bin",
        at(base.clone(), 16, b"OFFSET-16"),
    ));
    misses.push(payload(
        "abs",
        "header.bin",
        at(base.clone(), 17, b"OFFSET-16"),
    ));
    hits.push(payload(
        "float",
        "header.bin",
        at(base.clone(), 38, b"FLOAT-32"),
    ));
    misses.push(payload(
        "float",
        "header.bin",
        at(base.clone(), 41, b"FLOAT-32"),
    ));
    let mut eof = base;
    eof.extend_from_slice(b"EOF-MARKER12");
    hits.push(payload("eof", "trailer.bin", eof.clone()));
    eof.push(b'!');
    misses.push(payload("eof", "trailer.bin", eof));
    let mut eof_text = rng.text(20);
    eof_text.extend_from_slice(b"EOF-MARKER12");
    hits.push(payload("eof-text", "trailer.txt", eof_text));
    let text = rng.text(50);
    hits.push(payload(
        "abs-text",
        "header.txt",
        at(text.clone(), 16, b"OFFSET-16"),
    ));
    hits.push(payload(
        "target7",
        "minutes.txt",
        at(text.clone(), 40, b" NORMALISED \t  Text! "),
    ));
    hits.push(payload(
        "lower0",
        "letter.txt",
        at(text.clone(), 70, b" LOWER Case   ONLY "),
    ));
    // Text signatures: not in binary files.
    let bin = binary(rng, 300);
    misses.push(payload(
        "target7-binary",
        "data.bin",
        at(bin, 50, b" NORMALISED   Text! "),
    ));
    // Container:CL_TYPE_ANY, the root only: the raw message when the part's text shows
    // in it.
    hits.push(payload("ldb-root", "root.txt", at(text, 25, b"ROOT-ONLY")));

    let bin = binary(rng, 800);
    let count = at(at(bin.clone(), 10, b"COUNT-ME"), 100, b"COUNT-ME");
    hits.push(payload(
        "ldb-count",
        "count.bin",
        at(count.clone(), 500, b"COUNT-ME"),
    ));
    misses.push(payload("ldb-count", "count.bin", count));
    hits.push(payload(
        "ldb-or",
        "or.bin",
        at(at(bin.clone(), 10, b"OR2"), 200, b"AND"),
    ));
    misses.push(payload(
        "ldb-or",
        "or.bin",
        at(at(bin.clone(), 10, b"OR3"), 200, b"AND"),
    ));
    hits.push(payload(
        "ldb-pcre",
        "pcre.bin",
        at(bin.clone(), 77, b"PCRE-123-OK"),
    ));
    misses.push(payload(
        "ldb-pcre",
        "pcre.bin",
        at(bin.clone(), 77, b"PCRE-12-OK"),
    ));
    hits.push(payload(
        "ldb-nocase",
        "case.bin",
        at(bin.clone(), 33, b"NoCaSe-Sig"),
    ));
    hits.push(payload(
        "ldb-eicar-parts",
        "parts.bin",
        at(bin.clone(), 40, b"EICAR-STANDARD ANTIVIRUS-TEST-FILE"),
    ));
    // A part or a member is never the root.
    misses.push(payload(
        "ldb-root",
        "root.bin",
        at(bin.clone(), 90, b"ROOT-ONLY"),
    ));
    // Dropped by ignore.ign2.
    misses.push(payload(
        "ignored",
        "ign.bin",
        at(bin, 120, b"IGNORE-ME-PLEASE"),
    ));
    // In allow.fp: would match `Hand.Alt-1`.
    misses.push(payload(
        "allowed",
        "allowed.bin",
        b"\0\0\0\0 this alt3-test! is allowed".to_vec(),
    ));

    for (label, file, bytes) in [
        ("hash-md5", "blob.bin", &hashes.md5),
        ("hash-sha256", "image.dat", &hashes.sha256),
        ("hash-sha1", "record.dat", &hashes.sha1),
        ("hash-text", "letter.txt", &hashes.text),
    ] {
        hits.push(payload(label, file, bytes.clone()));
        let mut near = bytes.clone();
        near[bytes.len() / 3] ^= 0x01;
        misses.push(payload(label, file, near));
    }
    (hits, misses)
}

fn add(files: &mut Vec<CorpusFile>, name: String, bytes: Vec<u8>) {
    assert!(
        files.iter().all(|f| f.name != name),
        "{name} is in the corpus twice"
    );
    files.push(CorpusFile { name, bytes });
}

/// The mail-level corpus: `.eml` messages and bare archives, the same on every run.
/// Names start with `hit-` (one signature, matched), `miss-` (a near miss) or `clean-`.
fn mail_corpus(hashes: &MailHashes) -> Vec<CorpusFile> {
    let mut rng = Rng(0x5eed_c1a7_a5e5_0003);
    let mut files: Vec<CorpusFile> = Vec::new();
    let (hits, misses) = mail_payloads(&mut rng, hashes);
    let find = |list: &'static str, label: &str| {
        let list = if list == "hit" { &hits } else { &misses };
        list.iter().find(|p| p.label == label).unwrap()
    };
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };

    // EICAR in every way a message can carry it.
    for wrap in Wrap::ROTATION.into_iter().chain([Wrap::Plain]) {
        let message = carrier(next(), &mut rng, &hits[0], wrap);
        add(&mut files, format!("hit-eicar-{}.eml", wrap.tag()), message);
    }
    // Every other signature in one way, rotating (base64 where the end of the file
    // matters and the rotation says quoted-printable); text ones also as a 7bit part,
    // hashes in two more ways.
    for (i, hit) in hits.iter().enumerate().skip(1) {
        let mut wrap = Wrap::ROTATION[(i * 3) % Wrap::ROTATION.len()];
        if hit.exact_end && wrap == Wrap::Qp {
            wrap = Wrap::Base64;
        }
        let mut wraps = vec![wrap];
        if hit.text && !hit.exact_end {
            wraps.push(Wrap::Plain);
        }
        wraps.extend(match hit.label.as_str() {
            "hash-md5" => &[Wrap::Base64, Wrap::Bz2][..],
            "hash-sha256" => &[Wrap::Zip, Wrap::Single],
            "hash-sha1" => &[Wrap::TarGz, Wrap::ZipInZip],
            "hash-text" => &[Wrap::Base64, Wrap::Gz],
            "ldb-root" => &[Wrap::Qp],
            _ => &[],
        });
        wraps.dedup();
        for wrap in wraps {
            let name = format!("hit-{}-{}.eml", hit.label, wrap.tag());
            if files.iter().all(|f| f.name != name) {
                let message = carrier(next(), &mut rng, hit, wrap);
                add(&mut files, name, message);
            }
        }
    }
    // Near misses, rotating the other way.
    for (i, miss) in misses.iter().enumerate() {
        let mut wrap = Wrap::ROTATION[(i * 7 + 1) % Wrap::ROTATION.len()];
        if miss.exact_end && wrap == Wrap::Qp {
            wrap = Wrap::Base64;
        }
        let message = carrier(next(), &mut rng, miss, wrap);
        add(
            &mut files,
            format!("miss-{}-{}.eml", miss.label, wrap.tag()),
            message,
        );
    }
    for (label, wrap) in [("allowed", Wrap::Zip), ("ldb-root", Wrap::Base64)] {
        let message = carrier(next(), &mut rng, find("miss", label), wrap);
        add(
            &mut files,
            format!("miss-{label}-{}.eml", wrap.tag()),
            message,
        );
    }

    // The raw message.
    // A target-4 (mail) signature: in a header field; in an attached message sent as
    // it is (its text is the raw message's); not in a decoded text part, and not in a
    // base64 attached message.
    let extra = format!("{}\n", String::from_utf8_lossy(MAIL4_MARKER));
    let top = multipart(
        "mixed",
        "=_mark",
        vec![text_part(&mut rng), text_part(&mut rng)],
    );
    add(
        &mut files,
        "hit-mail4-header.eml".into(),
        eml(next(), "marked", &extra, top),
    );
    let mut inner = MAIL4_MARKER.to_vec();
    inner.extend_from_slice(b"\nSubject: inner\n\nhello there\n");
    let forwarded = Entity::new("Content-Type: message/rfc822\n", inner.clone());
    let top = with_attachment(&mut rng, forwarded);
    add(
        &mut files,
        "hit-mail4-rfc822.eml".into(),
        eml(next(), "forwarded", "", top),
    );
    let forwarded = Entity::new(
        "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n",
        base64(&inner),
    );
    let top = with_attachment(&mut rng, forwarded);
    add(
        &mut files,
        "miss-mail4-rfc822-b64.eml".into(),
        eml(next(), "forwarded", "", top),
    );
    let mut marked = rng.text(30);
    marked.extend_from_slice(b"\n");
    marked.extend_from_slice(MAIL4_MARKER);
    marked.extend(rng.text(30));
    let top = with_attachment(&mut rng, attachment("mark.txt", &marked, "base64", true));
    add(
        &mut files,
        "miss-mail4-in-part.eml".into(),
        eml(next(), "marked part", "", top),
    );
    // Target 0 in the raw text: a header field, the epilogue.
    let top = text_part(&mut rng);
    let extra = format!("X-Junk: {}\n", String::from_utf8_lossy(&eicar()));
    add(
        &mut files,
        "hit-eicar-header.eml".into(),
        eml(next(), "junk", &extra, top),
    );
    let mut top = multipart("mixed", "=_epilogue", vec![text_part(&mut rng)]);
    top.body.extend_from_slice(b"epilogue ZQ-MR+XS epilogue\n");
    add(
        &mut files,
        "hit-qmark-epilogue.eml".into(),
        eml(next(), "epilogue", "", top),
    );
    // Whole-message offsets: a text body with no multipart.
    let text = at(rng.text(20), 16, b"OFFSET-16");
    let top = Entity::new("Content-Type: text/plain\n", text);
    add(
        &mut files,
        "hit-abs-text-body.eml".into(),
        eml(next(), "offset", "", top),
    );
    let mut text = rng.text(20);
    text.extend_from_slice(b"EOF-MARKER12");
    let top = Entity::new("Content-Type: text/plain\n", text);
    add(
        &mut files,
        "hit-eof-text-body.eml".into(),
        eml(next(), "end", "", top),
    );
    // Normalised text: across CRLF line ends; HTML without tags in the way.
    let mut lower = rng.text(20);
    lower.extend_from_slice(b"\nLOWER\nCase\n\nONLY\n");
    let top = Entity::new("Content-Type: text/plain\n", crlf(&lower));
    add(
        &mut files,
        "hit-lower0-crlf-body.eml".into(),
        eml(next(), "lines", "", top),
    );
    let page = html(&mut rng, b" LOWER Case   ONLY ");
    let part = Entity::new(
        "Content-Type: text/html\nContent-Transfer-Encoding: base64\n",
        base64(&page),
    );
    let top = with_attachment(&mut rng, part);
    add(
        &mut files,
        "hit-lower0-html.eml".into(),
        eml(next(), "page", "", top),
    );

    // MIME structure.
    let e = eicar();
    let top = multipart(
        "mixed",
        "=_split",
        vec![
            attachment("part1.txt", &e[..34], "base64", true),
            attachment("part2.txt", &e[34..], "base64", true),
        ],
    );
    add(
        &mut files,
        "miss-eicar-split.eml".into(),
        eml(next(), "split", "", top),
    );
    let top = Entity::new(
        "Content-Type: text/plain; charset=us-ascii\n",
        [b"The file, encoded:\n\n".to_vec(), base64(&e)].concat(),
    );
    add(
        &mut files,
        "miss-eicar-undeclared-b64.eml".into(),
        eml(next(), "undeclared", "", top),
    );
    let mut junk = base64(&e);
    junk.insert(10, b'!');
    junk.insert(30, b'*');
    let part = Entity::new(
        "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n",
        junk,
    );
    let top = with_attachment(&mut rng, part);
    add(
        &mut files,
        "hit-eicar-b64-junk.eml".into(),
        eml(next(), "junk", "", top),
    );
    let mut big = binary(&mut rng, 60_000);
    big.extend(&e);
    let mut line: Vec<u8> = base64(&big).into_iter().filter(|&c| c != b'\n').collect();
    line.push(b'\n');
    let part = Entity::new(
        "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n",
        line,
    );
    let top = with_attachment(&mut rng, part);
    add(
        &mut files,
        "hit-eicar-b64-one-line.eml".into(),
        eml(next(), "one line", "", top),
    );
    let body = [
        &b"--=_open\nContent-Type: application/octet-stream\n\
           Content-Transfer-Encoding: base64\n\n"[..],
        &base64(&e),
    ]
    .concat();
    let top = Entity::new("Content-Type: multipart/mixed; boundary=\"=_open\"\n", body);
    add(
        &mut files,
        "hit-eicar-unterminated.eml".into(),
        eml(next(), "open", "", top),
    );
    let attached = attachment("e.bin", &e, "base64", false);
    let alternative = multipart(
        "alternative",
        "=_n3",
        vec![text_part(&mut rng), html_part(&mut rng)],
    );
    let inner = multipart("mixed", "=_n2", vec![alternative, attached]);
    let top = multipart("mixed", "=_n1", vec![text_part(&mut rng), inner]);
    add(
        &mut files,
        "hit-eicar-nested3.eml".into(),
        eml(next(), "nested", "", top),
    );
    let qmark = |rng: &mut Rng| base64(&at(binary(rng, 200), 50, b"ZQ-MR+XS"));
    let body = [
        &b"--simple\nContent-Type: application/octet-stream\n\
           Content-Transfer-Encoding: BASE64 \n\n"[..],
        &qmark(&mut rng),
        b"\n--simple--\n",
    ]
    .concat();
    let top = Entity::new("Content-Type: multipart/mixed; boundary=simple\n", body);
    add(
        &mut files,
        "hit-qmark-unquoted-upper.eml".into(),
        eml(next(), "simple", "", top),
    );
    let body = [
        &b"--folded\nContent-Type: application/octet-stream\n\
           Content-Transfer-Encoding: base64\n\n"[..],
        &qmark(&mut rng),
        b"\n--folded--\n",
    ]
    .concat();
    let top = Entity::new(
        "Content-Type: multipart/mixed;\n\tboundary=\"folded\"\n",
        body,
    );
    add(
        &mut files,
        "hit-qmark-folded.eml".into(),
        eml(next(), "folded", "", top),
    );
    let data = at(binary(&mut rng, 200), 50, b"ZQ-MR+XS");
    let body = [
        &b"--x\nContent-Type: application/octet-stream; name=a.bin\n\
           Content-Transfer-Encoding: x-uuencode\n\n"[..],
        &uuencode("a.bin", &data),
        b"\n--x--\n",
    ]
    .concat();
    let top = Entity::new("Content-Type: multipart/mixed; boundary=x\n", body);
    add(
        &mut files,
        "hit-qmark-x-uuencode.eml".into(),
        eml(next(), "uu", "", top),
    );
    let top = Entity::new(
        "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n",
        base64(&at(rng.text(20), 30, b"ZQ-MR+XS")),
    );
    add(
        &mut files,
        "hit-qmark-body-b64.eml".into(),
        eml(next(), "body", "", top),
    );
    let body = [
        &b"--nomime\nContent-Type: application/octet-stream\n\
           Content-Transfer-Encoding: base64\n\n"[..],
        &qmark(&mut rng),
        b"\n--nomime--\n",
    ]
    .concat();
    let top = Entity::new("Content-Type: multipart/mixed; boundary=nomime\n", body);
    let mut message = eml(next(), "no version", "", top);
    let version = b"MIME-Version: 1.0\n";
    let pos = message
        .windows(version.len())
        .position(|w| w == version)
        .unwrap();
    message.drain(pos..pos + version.len());
    add(&mut files, "hit-qmark-no-mime-version.eml".into(), message);

    // Clean messages.
    for (i, label) in ["text", "alternative", "b64", "zip", "targz", "gz", "bz2"]
        .into_iter()
        .enumerate()
    {
        let len = 500 + rng.below(3000);
        let data = binary(&mut rng, len);
        let text = rng.text(80);
        let attached = match label {
            "b64" => Some(("report.bin", data)),
            "zip" => Some(("docs.zip", zip(&[("a.txt", &text), ("b.bin", &data)]))),
            "targz" => Some(("site.tar.gz", tar_gz(&[("a.txt", &text), ("b.bin", &data)]))),
            "gz" => Some(("log.txt.gz", gzip(&text))),
            "bz2" => Some(("dump.bin.bz2", bzip2(&data))),
            _ => None,
        };
        let top = match (label, attached) {
            ("alternative", _) => multipart(
                "alternative",
                "=_alt",
                vec![text_part(&mut rng), html_part(&mut rng)],
            ),
            (_, Some((name, bytes))) => multipart(
                "mixed",
                &format!("=_clean{i}"),
                vec![
                    text_part(&mut rng),
                    attachment(name, &bytes, "base64", false),
                ],
            ),
            _ => text_part(&mut rng),
        };
        add(
            &mut files,
            format!("clean-{label}.eml"),
            eml(next(), "hello", "", top),
        );
    }
    // A zip whose own hash is listed (its members are clean).
    let top = with_attachment(
        &mut rng,
        attachment("archive.zip", &hashes.zip, "base64", false),
    );
    add(
        &mut files,
        "hit-zip-md5.eml".into(),
        eml(next(), "archive", "", top),
    );

    // Bare archives, scanned as files.
    for label in [
        "eicar",
        "kernel32",
        "qmark",
        "star",
        "lower0",
        "ldb-pcre",
        "hash-sha256",
        "boundary",
        "target7",
        "abs",
    ] {
        let p = find("hit", label);
        add(
            &mut files,
            format!("hit-bare-{label}.zip"),
            zip(&[(p.file.as_str(), &p.bytes)]),
        );
    }
    for label in ["eicar", "range", "nibble", "hash-sha1", "eof", "float"] {
        let p = find("hit", label);
        let readme = rng.text(20);
        let path = format!("x/{}", p.file);
        add(
            &mut files,
            format!("hit-bare-{label}.tar.gz"),
            tar_gz(&[("readme.txt", &readme), (&path, &p.bytes)]),
        );
    }
    let p = find("hit", "eicar");
    let readme = rng.text(20);
    let inner = zip(&[(p.file.as_str(), &p.bytes)]);
    add(
        &mut files,
        "hit-bare-eicar-zipzip.zip".into(),
        zip(&[("readme.txt", &readme), ("inner.zip", &inner)]),
    );
    add(
        &mut files,
        "hit-bare-zip-md5.zip".into(),
        hashes.zip.clone(),
    );
    // A bare file is the root: a stored member's bytes show in it, deflated ones do not.
    // (`scan_input` must scan a bare file as the root object, not as the attachment of
    // a message, for `Container:CL_TYPE_ANY` to match it as `clamscan` does.)
    let p = find("miss", "ldb-root");
    add(
        &mut files,
        "hit-bare-ldb-root-stored.zip".into(),
        zip_stored(&[(p.file.as_str(), &p.bytes)]),
    );
    let p = find("hit", "ldb-root");
    add(
        &mut files,
        "miss-bare-ldb-root-deflated.zip".into(),
        zip(&[(p.file.as_str(), &p.bytes)]),
    );
    for label in ["alt", "allowed"] {
        let p = find("miss", label);
        add(
            &mut files,
            format!("miss-bare-{label}.zip"),
            zip(&[(p.file.as_str(), &p.bytes)]),
        );
    }
    let p = find("miss", "eicar-damaged");
    add(
        &mut files,
        "miss-bare-eicar-damaged.tar.gz".into(),
        tar_gz(&[(p.file.as_str(), &p.bytes)]),
    );
    let text = rng.text(200);
    let data = binary(&mut rng, 2000);
    add(
        &mut files,
        "clean-bare.zip".into(),
        zip(&[("a.txt", &text), ("b.bin", &data)]),
    );
    add(
        &mut files,
        "clean-bare.tar.gz".into(),
        tar_gz(&[("a.txt", &text), ("b.bin", &data)]),
    );
    files
}

/// The cases left out of the mail corpus (see the module text), each with what
/// `clamscan` and SIE say about it: (file, clamscan, SIE).
fn excluded_corpus(
    hashes: &MailHashes,
) -> Vec<(CorpusFile, Option<&'static str>, Option<&'static str>)> {
    let mut rng = Rng(0x5eed_c1a7_a5e5_0004);
    let mut files = Vec::new();
    let mut n = 5000;
    let mut case = |files: &mut Vec<_>, name: &str, top: Entity, clamscan, sie| {
        n += 1;
        let file = CorpusFile {
            name: format!("{name}.eml"),
            bytes: eml(n, name, "", top),
        };
        files.push((file, clamscan, sie));
    };
    // 1. A 7bit or quoted-printable part: ClamAV decodes it line by line and ends it
    //    with a line end the part does not have.
    let mut end = rng.text(20);
    end.extend_from_slice(b"EOF-MARKER12");
    for encoding in ["7bit", "quoted-printable"] {
        let part = attachment("trailer.txt", &end, encoding, true);
        let top = with_attachment(&mut rng, part);
        case(
            &mut files,
            &format!("eof-text-{encoding}"),
            top,
            None,
            Some("Hand.Eof-1.UNOFFICIAL"),
        );
        let part = attachment("letter.txt", &hashes.text, encoding, true);
        let top = with_attachment(&mut rng, part);
        case(
            &mut files,
            &format!("hash-text-{encoding}"),
            top,
            None,
            Some("Mail.TextMd5-4.UNOFFICIAL"),
        );
    }
    // 2. HTML: ClamAV types it as HTML, not text (no target-7 pass), and matches its
    //    own normalised forms (one of them without tags).
    let page = html(&mut rng, b" NORMALISED \t  Text! ");
    let part = Entity::new(
        "Content-Type: text/html\nContent-Transfer-Encoding: base64\n",
        base64(&page),
    );
    let top = with_attachment(&mut rng, part);
    case(
        &mut files,
        "target7-html",
        top,
        None,
        Some("Hand.Text7-1.UNOFFICIAL"),
    );
    let page = html(&mut rng, b" LOWER<b>Case</b>ONLY ");
    let part = Entity::new(
        "Content-Type: text/html\nContent-Transfer-Encoding: base64\n",
        base64(&page),
    );
    let top = with_attachment(&mut rng, part);
    case(
        &mut files,
        "lower0-html-tags",
        top,
        Some("Hand.Lower0-1.UNOFFICIAL"),
        None,
    );
    // 3. `begin-base64` (uuencode -m) in a text: SIE decodes it, ClamAV does not.
    let mut text = b"text before\nbegin-base64 644 a.bin\n".to_vec();
    text.extend(base64(&at(binary(&mut rng, 200), 50, b"ZQ-MR+XS")));
    text.extend_from_slice(b"====\ntext after\n");
    let top = Entity::new("Content-Type: text/plain\n", text);
    case(
        &mut files,
        "qmark-begin-base64",
        top,
        None,
        Some("Hand.Qmark-1.UNOFFICIAL"),
    );
    files
}

/// SIE's verdict on one corpus file, read and scanned as `msgscan` does: the signature
/// name of a virus verdict, `None` for a clean one; anything else is an error.
fn sie_verdict(
    path: &Path,
    options: &ScanOptions,
    rules: &RuleSet,
) -> Result<Option<String>, String> {
    let inputs = read(&Source::File(path.to_path_buf())).map_err(|e| e.to_string())?;
    if inputs.len() != 1 {
        return Err(format!("read as {} inputs", inputs.len()));
    }
    let verdict = scan_input(&inputs[0], options, rules);
    match verdict.kind {
        VerdictKind::Virus => Ok(Some(verdict.name)),
        VerdictKind::Clean => Ok(None),
        _ => Err(format!("verdict {verdict:?}")),
    }
}

/// Writes the signature directory and `files` under `work`, runs `clamscan` and SIE on
/// them: (clamscan's verdicts, SIE's verdicts, SIE's errors).
fn scan_both(
    work: &Path,
    files: &[&CorpusFile],
    hashes: &MailHashes,
) -> (
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    Vec<String>,
) {
    let (sigdir, corpus_dir) = (work.join("sigs"), work.join("corpus"));
    std::fs::create_dir(&sigdir).unwrap();
    std::fs::create_dir(&corpus_dir).unwrap();
    signatures(&sigdir, &corpus(), hashes);
    for file in files {
        std::fs::write(corpus_dir.join(&file.name), &file.bytes).unwrap();
    }
    let theirs = clamscan(&sigdir, &corpus_dir);
    let (rules, problems) = RuleSet::load_dir(&sigdir).unwrap();
    assert_eq!(
        problems.len(),
        1,
        "only the PE entry-point signature is unsupported: {problems:?}"
    );
    let options = ScanOptions {
        spam: false,
        ..Default::default()
    };
    let mut ours = BTreeMap::new();
    let mut errors = Vec::new();
    for file in files {
        match sie_verdict(&corpus_dir.join(&file.name), &options, &rules) {
            Ok(Some(name)) => {
                ours.insert(file.name.clone(), name);
            }
            Ok(None) => {}
            Err(problem) => errors.push(format!("{}: SIE {problem}", file.name)),
        }
    }
    (theirs, ours, errors)
}

#[test]
fn sie_and_clamscan_agree_on_every_message_and_archive() {
    let work = tempfile::tempdir().unwrap();
    let hashes = MailHashes::new();
    let corpus = mail_corpus(&hashes);
    let files: Vec<&CorpusFile> = corpus.iter().collect();
    let (theirs, ours, mut mismatches) = scan_both(work.path(), &files, &hashes);
    for file in &corpus {
        let (clamscan, sie) = (theirs.get(&file.name), ours.get(&file.name));
        if clamscan != sie {
            mismatches.push(format!("{}: clamscan {clamscan:?}, SIE {sie:?}", file.name));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} files differ:\n{}",
        mismatches.len(),
        corpus.len(),
        mismatches.join("\n")
    );
    // The corpus is what its names say, by clamscan's own verdicts.
    let misnamed: Vec<_> = corpus
        .iter()
        .filter(|f| f.name.starts_with("hit-") != theirs.contains_key(&f.name))
        .map(|f| &f.name)
        .collect();
    assert!(
        misnamed.is_empty(),
        "hit- files clamscan does not flag, or others it flags: {misnamed:?}"
    );
    let messages = corpus.iter().filter(|f| f.name.ends_with(".eml")).count();
    eprintln!(
        "{messages} messages and {} archives, {} flagged by both, identically",
        corpus.len() - messages,
        theirs.len()
    );
}

/// The exclusions of the module text still differ, exactly as recorded: when one stops
/// differing (SIE or ClamAV changed), it belongs in the corpus above.
#[test]
fn the_excluded_cases_differ_as_documented() {
    let work = tempfile::tempdir().unwrap();
    let hashes = MailHashes::new();
    let cases = excluded_corpus(&hashes);
    let files: Vec<&CorpusFile> = cases.iter().map(|(file, _, _)| file).collect();
    let (theirs, ours, mut problems) = scan_both(work.path(), &files, &hashes);
    for (file, clamscan, sie) in &cases {
        let got = (
            theirs.get(&file.name).map(String::as_str),
            ours.get(&file.name).map(String::as_str),
        );
        if got != (*clamscan, *sie) {
            problems.push(format!(
                "{}: expected clamscan {clamscan:?} and SIE {sie:?}, got {got:?}",
                file.name
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
