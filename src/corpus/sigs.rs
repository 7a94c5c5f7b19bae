//! A ClamAV-compatible signature set of realistic size (`gen-sigs`): body signatures in
//! `gen.ndb`, whole-file hashes in `gen.hdb` (MD5) and `gen.hsb` (SHA-256), plus EICAR in
//! all three, and optionally hashes of a few attachments of a generated corpus.
//!
//! Every line obeys the loader rules of ClamAV 1.4 (CLAMAV.md 1.3, 2.3), checked with
//! `clamscan -d`:
//! - names are `Gen.Sig.<Kind>-<n>`, only `[A-Za-z0-9.-]`;
//! - no blank lines, no comments;
//! - static patterns are 8-32 bytes (ClamAV wants at least 3);
//! - wildcard patterns (`??`, nibbles `a?`/`?a`, `*`, `{n}`, `{n-m}`, `(aa|bb)`,
//!   `(aabb|ccdd)`) keep a block of at least 6 static bytes on both sides of every
//!   wildcard (ClamAV wants 2 per `*`/`{}`-split part), and start and end with one.
//!
//! Patterns are random bytes, so they do not match normal text; with blocks of 6 bytes or
//! more, the chance that any of a million signatures matches 200 MB of random attachment
//! data by accident is below one in a million.
//!
//! Hash signatures are 128- and 256-bit values drawn from the generator with a size from
//! 1 KiB to 10 MiB: exactly what hashing that many random files would give, without
//! spending minutes hashing data no one keeps.
//!
//! Split of `--count`: 60% ndb (of those, 80% static and 20% with wildcards), 25% hdb,
//! 15% hsb; the three EICAR lines and the corpus hashes come on top.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Write as _};
use std::path::Path;

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::rng::{Rng, hex};
use super::{Kind, read_manifest, read_message};

const STREAM_NDB: u64 = 101;
const STREAM_HDB: u64 = 102;
const STREAM_HSB: u64 = 103;

pub const NDB_FILE: &str = "gen.ndb";
pub const HDB_FILE: &str = "gen.hdb";
pub const HSB_FILE: &str = "gen.hsb";
pub const CORPUS_MATCHES: &str = "CORPUS-MATCHES.tsv";

/// What to generate.
#[derive(Debug, Clone)]
pub struct SigSpec {
    pub seed: u64,
    /// Random signatures (EICAR and corpus hashes come on top).
    pub count: usize,
    /// A corpus written by `gen-corpus`, some of whose attachments get hash signatures.
    pub match_corpus: Option<std::path::PathBuf>,
    /// How many corpus attachments to hash (alternately MD5 and SHA-256).
    pub corpus_hashes: usize,
}

/// What a signature run wrote.
#[derive(Debug, Clone, Default)]
pub struct SigSummary {
    /// Lines per kind (`ndb`, `ndb-wild`, `hdb`, `hsb`, `eicar`, `corpus`).
    pub kinds: BTreeMap<&'static str, usize>,
    pub bytes: u64,
    /// Corpus message id and the signature that matches one of its attachments.
    pub corpus_matches: Vec<(String, String)>,
}

impl SigSummary {
    pub fn total(&self) -> usize {
        self.kinds.values().sum()
    }
}

/// How `--count` divides: (ndb, hdb, hsb).
pub fn split(count: usize) -> (usize, usize, usize) {
    let hdb = count / 4;
    let hsb = count * 15 / 100;
    (count - hdb - hsb, hdb, hsb)
}

/// Signature `n` (0-based) of `gen.ndb`: its hex body and whether it has wildcards.
pub fn ndb_pattern(seed: u64, n: usize) -> (String, bool) {
    let mut rng = Rng::stream(seed, STREAM_NDB, n as u64);
    if rng.below(100) < 80 {
        let len = rng.range_usize(8, 32);
        return (hex(&rng.bytes(len)), false);
    }
    let block = |rng: &mut Rng| {
        let len = rng.range_usize(6, 12);
        hex(&rng.bytes(len))
    };
    let a = block(&mut rng);
    let b = block(&mut rng);
    let middle = match rng.below(7) {
        0 => "??".repeat(rng.range_usize(1, 4)),
        1 => {
            let nibble = hex(&[rng.below(16) as u8]);
            let nibble = &nibble[1..];
            if rng.chance(0.5) {
                format!("{nibble}?")
            } else {
                format!("?{nibble}")
            }
        }
        2 => "*".to_string(),
        3 => {
            let lo = rng.range(0, 32);
            format!("{{{lo}-{}}}", lo + rng.range(1, 64))
        }
        4 => format!("{{{}}}", rng.range(1, 100)),
        5 => {
            let n = rng.range_usize(2, 4);
            let alts: Vec<String> = (0..n).map(|_| hex(&rng.bytes(1))).collect();
            format!("({})", alts.join("|"))
        }
        _ => {
            let len = rng.range_usize(2, 4);
            let alts: Vec<String> = (0..2).map(|_| hex(&rng.bytes(len))).collect();
            format!("({})", alts.join("|"))
        }
    };
    // Sometimes a second wildcard and a third static block.
    let tail = if rng.chance(0.25) {
        format!("*{}", block(&mut rng))
    } else {
        String::new()
    };
    (format!("{a}{middle}{b}{tail}"), true)
}

/// A hash signature line's parts for signature `n` of `gen.hdb` (`sha256` false) or
/// `gen.hsb`: the digest in hex and the file size.
pub fn hash_entry(seed: u64, n: usize, sha256: bool) -> (String, u64) {
    let stream = if sha256 { STREAM_HSB } else { STREAM_HDB };
    let mut rng = Rng::stream(seed, stream, n as u64);
    let digest = rng.bytes(if sha256 { 32 } else { 16 });
    (hex(&digest), rng.log_uniform(1024, 10 << 20))
}

/// Writes the signature set into `out` (created if missing; the three database files
/// and the matches file are replaced).
///
/// # Errors
///
/// A file-system error, or an unreadable `--match-corpus`.
pub fn write_sigs(spec: &SigSpec, out: &Path) -> io::Result<SigSummary> {
    fs::create_dir_all(out)?;
    let mut summary = SigSummary::default();
    let (ndb_count, hdb_count, hsb_count) = split(spec.count);
    let eicar = crate::scan::virus::eicar_test_file();

    let corpus = match &spec.match_corpus {
        Some(dir) => corpus_hashes(dir, spec.corpus_hashes)?,
        None => Vec::new(),
    };

    // gen.ndb
    let mut ndb = Output::create(&out.join(NDB_FILE))?;
    ndb.line(format_args!("Gen.Sig.Eicar-1:0:*:{}", hex(&eicar)))?;
    *summary.kinds.entry("eicar").or_default() += 1;
    let (mut plain, mut wild) = (0, 0);
    for n in 0..ndb_count {
        let (pattern, wildcard) = ndb_pattern(spec.seed, n);
        if wildcard {
            wild += 1;
            ndb.line(format_args!("Gen.Sig.NdbWild-{wild}:0:*:{pattern}"))?;
        } else {
            plain += 1;
            ndb.line(format_args!("Gen.Sig.Ndb-{plain}:0:*:{pattern}"))?;
        }
    }
    summary.kinds.insert("ndb", plain);
    summary.kinds.insert("ndb-wild", wild);
    summary.bytes += ndb.finish()?;

    // gen.hdb
    let mut hdb = Output::create(&out.join(HDB_FILE))?;
    hdb.line(format_args!(
        "{}:{}:Gen.Sig.Eicar-2",
        hex(&Md5::digest(&eicar)),
        eicar.len()
    ))?;
    *summary.kinds.entry("eicar").or_default() += 1;
    for n in 0..hdb_count {
        let (digest, size) = hash_entry(spec.seed, n, false);
        hdb.line(format_args!("{digest}:{size}:Gen.Sig.Md5-{}", n + 1))?;
    }
    summary.kinds.insert("hdb", hdb_count);

    // gen.hsb
    let mut hsb = Output::create(&out.join(HSB_FILE))?;
    hsb.line(format_args!(
        "{}:{}:Gen.Sig.Eicar-3",
        hex(&Sha256::digest(&eicar)),
        eicar.len()
    ))?;
    *summary.kinds.entry("eicar").or_default() += 1;
    for n in 0..hsb_count {
        let (digest, size) = hash_entry(spec.seed, n, true);
        hsb.line(format_args!("{digest}:{size}:Gen.Sig.Sha256-{}", n + 1))?;
    }
    summary.kinds.insert("hsb", hsb_count);

    // Corpus attachments, alternately in hdb and hsb.
    let matches_path = out.join(CORPUS_MATCHES);
    if corpus.is_empty() {
        if matches_path.exists() {
            fs::remove_file(&matches_path)?;
        }
    } else {
        let mut table = String::from("id\tsignature\tattachment\tbytes\n");
        for (n, (id, name, data)) in corpus.iter().enumerate() {
            let signature = if n % 2 == 0 {
                let signature = format!("Gen.Sig.CorpusMd5-{}", n / 2 + 1);
                hdb.line(format_args!(
                    "{}:{}:{signature}",
                    hex(&Md5::digest(data)),
                    data.len()
                ))?;
                signature
            } else {
                let signature = format!("Gen.Sig.CorpusSha256-{}", n / 2 + 1);
                hsb.line(format_args!(
                    "{}:{}:{signature}",
                    hex(&Sha256::digest(data)),
                    data.len()
                ))?;
                signature
            };
            table.push_str(&format!("{id}\t{signature}\t{name}\t{}\n", data.len()));
            summary.corpus_matches.push((id.clone(), signature));
        }
        summary.kinds.insert("corpus", corpus.len());
        fs::write(&matches_path, &table)?;
        summary.bytes += table.len() as u64;
    }
    summary.bytes += hdb.finish()? + hsb.finish()?;
    Ok(summary)
}

/// The first attachment of each of the first `n` clean corpus messages that have one,
/// decoded: (message id, attachment name, bytes).
fn corpus_hashes(corpus: &Path, n: usize) -> io::Result<Vec<(String, String, Vec<u8>)>> {
    let parser = mail_parser::MessageParser::default();
    let mut found = Vec::new();
    for row in read_manifest(corpus)? {
        if found.len() >= n {
            break;
        }
        if row.kind != Kind::Clean {
            continue;
        }
        let raw = read_message(corpus, &row.id)?;
        let Some(message) = parser.parse(&raw) else {
            continue;
        };
        if let Some(part) = message.attachments().next() {
            use mail_parser::MimeHeaders as _;
            let name = part.attachment_name().unwrap_or("attachment").to_string();
            found.push((row.id.clone(), name, part.contents().to_vec()));
        }
    }
    Ok(found)
}

/// A database file written through a temporary name, renamed into place when complete
/// (so a loader never sees half a file).
struct Output {
    writer: BufWriter<fs::File>,
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    bytes: u64,
}

impl Output {
    fn create(path: &Path) -> io::Result<Output> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        Ok(Output {
            writer: BufWriter::with_capacity(1 << 20, fs::File::create(&tmp)?),
            tmp,
            path: path.to_path_buf(),
            bytes: 0,
        })
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) -> io::Result<()> {
        let text = args.to_string();
        self.writer.write_all(text.as_bytes())?;
        self.writer.write_all(b"\n")?;
        self.bytes += text.len() as u64 + 1;
        Ok(())
    }

    fn finish(self) -> io::Result<u64> {
        let file = self.writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.tmp, &self.path)?;
        Ok(self.bytes)
    }
}

/// Bytes that match the ndb body `pattern` (the subset of the hex syntax `ndb_pattern`
/// writes), with random filler around it and in the gaps: for tests that check a
/// scanner finds what the signature describes.
///
/// # Panics
///
/// On syntax outside that subset.
pub fn sample_match(pattern: &str, rng: &mut Rng) -> Vec<u8> {
    let lead = rng.range_usize(0, 64);
    let mut out = rng.bytes(lead);
    let p = pattern.as_bytes();
    let mut i = 0;
    let nibble = |c: u8| (c as char).to_digit(16).expect("a hex digit") as u8;
    while i < p.len() {
        match p[i] {
            b'*' => {
                let n = rng.range_usize(0, 40);
                out.extend(rng.bytes(n));
                i += 1;
            }
            b'{' => {
                let end = i + pattern[i..].find('}').expect("a closing brace");
                let inner = &pattern[i + 1..end];
                let (lo, hi) = match inner.split_once('-') {
                    Some((lo, hi)) => (lo.parse().unwrap(), hi.parse().unwrap()),
                    None => (inner.parse().unwrap(), inner.parse().unwrap()),
                };
                let n = rng.range_usize(lo, hi);
                out.extend(rng.bytes(n));
                i = end + 1;
            }
            b'(' => {
                let end = i + pattern[i..].find(')').expect("a closing parenthesis");
                let alts: Vec<&str> = pattern[i + 1..end].split('|').collect();
                let alt = rng.pick(&alts);
                out.extend(
                    alt.as_bytes()
                        .chunks(2)
                        .map(|c| nibble(c[0]) << 4 | nibble(c[1])),
                );
                i = end + 1;
            }
            _ => {
                let (hi, lo) = (p[i], p[i + 1]);
                let random = rng.below(256) as u8;
                let byte = match (hi, lo) {
                    (b'?', b'?') => random,
                    (b'?', lo) => random & 0xf0 | nibble(lo),
                    (hi, b'?') => nibble(hi) << 4 | random & 0x0f,
                    (hi, lo) => nibble(hi) << 4 | nibble(lo),
                };
                out.push(byte);
                i += 2;
            }
        }
    }
    let tail = rng.range_usize(0, 64);
    out.extend(rng.bytes(tail));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The static blocks of a pattern: runs of plain hex pairs between wildcards.
    fn static_blocks(pattern: &str) -> Vec<usize> {
        let mut blocks = Vec::new();
        let mut run = 0;
        let p = pattern.as_bytes();
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                b'*' => {
                    blocks.push(run);
                    run = 0;
                    i += 1;
                }
                b'{' | b'(' => {
                    blocks.push(run);
                    run = 0;
                    i += pattern[i..].find(['}', ')']).unwrap() + 1;
                }
                _ if p[i] == b'?' || p[i + 1] == b'?' => {
                    blocks.push(run);
                    run = 0;
                    i += 2;
                }
                _ => {
                    run += 1;
                    i += 2;
                }
            }
        }
        blocks.push(run);
        blocks.into_iter().filter(|&b| b > 0).collect()
    }

    #[test]
    fn patterns_obey_clamav_loader_rules() {
        let mut wild = 0;
        for n in 0..20_000 {
            let (pattern, wildcard) = ndb_pattern(1, n);
            assert!(
                pattern
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b"?*{}()|-".contains(&b))
            );
            let blocks = static_blocks(&pattern);
            if wildcard {
                wild += 1;
                assert!(blocks.len() >= 2, "{pattern}");
                assert!(blocks.iter().all(|&b| b >= 6), "{pattern} {blocks:?}");
                assert!(pattern.as_bytes()[..12].iter().all(u8::is_ascii_hexdigit));
            } else {
                assert!((16..=64).contains(&pattern.len()), "{pattern}");
            }
        }
        assert!((3_500..4_500).contains(&wild), "{wild}");
    }

    #[test]
    fn samples_contain_their_static_blocks() {
        let mut rng = Rng::new(4);
        for n in 0..2_000 {
            let (pattern, _) = ndb_pattern(2, n);
            let data = sample_match(&pattern, &mut rng);
            let first: String = pattern
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .collect();
            let first: Vec<u8> = (0..first.len() / 2)
                .map(|i| u8::from_str_radix(&first[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            assert!(
                data.windows(first.len()).any(|w| w == first.as_slice()),
                "{pattern}"
            );
        }
    }

    #[test]
    fn hash_entries_have_the_right_length() {
        let (md5, size) = hash_entry(1, 0, false);
        assert_eq!(md5.len(), 32);
        assert!((1024..=10 << 20).contains(&size));
        assert_eq!(hash_entry(1, 0, true).0.len(), 64);
        assert_eq!(split(1000), (600, 250, 150));
    }
}
