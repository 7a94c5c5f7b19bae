//! Differential test against ClamAV 1.4.6: one signature directory is loaded by
//! `SignatureSet::load_dir` and by `clamscan -d`, one generated corpus is scanned by
//! both, and every file must get the same answer: the same signature name where
//! `clamscan` reports `FOUND`, and no match where it does not.
//!
//! The signature directory holds the CLAMAV.md §1.2 database (ndb, hdb, hsb, ldb; not the
//! PE-only `.mdb`), hand-written wildcard signatures (`??`, nibbles, `*`, ranges,
//! alternations, `EOF-n`, absolute and floating offsets, boundaries, target 7), logical
//! signatures, hashes of generated files, an allow list and an ignore list.
//!
//! The test FAILS, never skips, when `clamscan` is missing: `tools/test` installs the
//! `clamav` package before running the tests.
//!
//! The corpus comes from `corpus()`, which yields plain files only for now. When the
//! MIME/archive walk lands, `.eml` messages and archives go there too, and the mail-level
//! comparison is added: each message's verdict from the scan step compared with
//! `clamscan`'s verdict on the whole `.eml`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use sie::rules::signatures::{ObjectInfo, SignatureSet, Target};

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
    let cases: &[(&str, &[u8], &[u8])] = &[
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

/// The signature directory; hash signatures are taken from `corpus`.
fn signatures(dir: &Path, corpus: &[CorpusFile]) {
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
}

/// `clamscan`'s verdicts: file name -> signature name, for the files it flags.
fn clamscan(sigdir: &Path, corpus_dir: &Path) -> BTreeMap<String, String> {
    let output = Command::new("clamscan")
        .args(["--no-summary", "--allmatch=no", "-d"])
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
    signatures(&sigdir, &corpus);

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
