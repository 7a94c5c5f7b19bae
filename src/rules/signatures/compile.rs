//! Loading a definitions directory and compiling its definitions into a
//! `SignatureSet`: file order, ignore lists, the anchors and their index.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use md5::Md5;
use rayon::prelude::*;
use sha2::Digest;

use super::anchors::{AnchorIndex, anchor_key};
use super::body::{Offset, Pattern};
use super::set::{
    Anchor, AnchorPass, BodySig, HashTable, LogicalSig, PatRef, SUB_BIT, SignatureSet, SubPattern,
};
use super::{BodyDef, Def, HashDef, LogicalDef, SignatureError, SubDef, is_virus_vdl, vdl};
use crate::rules::LoadProblem;
use crate::rules::clamav::{self, DbKind, Line};
use crate::scan::virus::{EICAR_NAME, eicar_test_file};

#[derive(Default)]
struct AnchorList {
    /// Anchor key and the pattern it leads to, in definition order.
    refs: Vec<(u32, PatRef)>,
}

impl AnchorList {
    fn with_capacity(refs: usize) -> AnchorList {
        AnchorList {
            refs: Vec::with_capacity(refs),
        }
    }

    fn add(&mut self, key: u32, r: PatRef) {
        self.refs.push((key, r));
    }

    fn build(mut self, nocase: bool) -> AnchorPass {
        if self.refs.is_empty() {
            return AnchorPass::default();
        }
        // The patterns of one anchor stay in definition order: refs are added in
        // increasing `PatRef` order (bodies, then subsignatures, which have the high
        // bit), so sorting by (key, ref) keeps it, without a stable sort's buffer.
        self.refs.par_sort_unstable_by_key(|&(key, r)| (key, r.0));
        let mut keys = Vec::with_capacity(self.refs.len());
        let mut starts = Vec::with_capacity(self.refs.len() + 1);
        for (at, &(key, _)) in self.refs.iter().enumerate() {
            if keys.last() != Some(&key) {
                keys.push(key);
                starts.push(at as u32);
            }
        }
        starts.push(self.refs.len() as u32);
        AnchorPass {
            index: Some(AnchorIndex::new(&keys, nocase)),
            starts,
            refs: self.refs.into_iter().map(|(_, r)| r).collect(),
        }
    }
}

/// A pattern's anchor as the index wants it.
pub(super) struct AnchorSpot {
    place: AnchorPlace,
    anchor: Anchor,
}

/// Which anchor lists a pattern goes into, under which key.
#[derive(Clone, Copy)]
struct AnchorPlace {
    /// From `anchor_key`, of the lower-cased bytes for `::i` patterns.
    key: u32,
    nocase: bool,
    fits_normalised: bool,
}

impl AnchorSpot {
    /// `None` for a pattern without a static byte.
    fn of(pattern: &Pattern) -> Option<AnchorSpot> {
        let (bytes, elem, skip) = pattern.anchor()?;
        Some(AnchorSpot {
            place: AnchorPlace {
                key: if pattern.nocase {
                    anchor_key(&bytes.to_ascii_lowercase())
                } else {
                    anchor_key(bytes)
                },
                nocase: pattern.nocase,
                fits_normalised: pattern.fits_normalised(),
            },
            anchor: Anchor {
                elem: elem as u16,
                skip: skip as u32,
            },
        })
    }

    /// The anchor of a body definition; `None` for other definitions and for patterns
    /// without a static byte, which can never match.
    pub(super) fn of_def(def: &Def) -> Option<AnchorSpot> {
        match def {
            Def::Body(body) => AnchorSpot::of(&body.pattern),
            _ => None,
        }
    }
}

/// Collects definitions, then compiles them.
#[derive(Default)]
pub(super) struct Compiler {
    /// Body signatures in definition order, each already with its anchor, and where
    /// that anchor goes; kept final so a large set is not copied again to compile it.
    bodies: Vec<BodySig>,
    body_places: Vec<AnchorPlace>,
    logicals: Vec<LogicalDef>,
    hashes: Vec<HashDef>,
    allow: Vec<HashDef>,
    ignore: HashMap<Box<str>, Vec<Option<Vec<u8>>>>,
}

impl Compiler {
    fn ignored(&self, name: &str, line: &str) -> bool {
        let base = name.strip_suffix(clamav::UNOFFICIAL).unwrap_or(name);
        self.ignore.get(base).is_some_and(|entries| {
            entries.iter().any(|md5| match md5 {
                None => true,
                Some(md5) => Md5::digest(line.as_bytes()).as_slice() == md5.as_slice(),
            })
        })
    }

    /// Adds one definition; `spot` is `AnchorSpot::of_def(&def)`, worked out apart so
    /// that callers can do it in parallel.
    fn add(&mut self, def: Def, spot: Option<AnchorSpot>, line: &str) {
        let name = match &def {
            Def::Body(b) => Some(&b.name),
            Def::Logical(l) => Some(&l.name),
            Def::Hash(h) => Some(&h.name),
            Def::Allow(_) | Def::Ignore { .. } => None,
        };
        if name.is_some_and(|n| self.ignored(n, line.strip_suffix('\r').unwrap_or(line))) {
            return;
        }
        match def {
            Def::Body(b) => self.add_body(b, spot),
            Def::Logical(l) => self.logicals.push(l),
            Def::Hash(h) => self.hashes.push(h),
            Def::Allow(h) => self.allow.push(h),
            Def::Ignore { name, line_md5 } => self.ignore.entry(name).or_default().push(line_md5),
        }
    }

    /// Makes room for `lines` more definitions of a file of `kind` at once. A
    /// million-signature set otherwise grows its vectors by doubling, and every
    /// doubling copies them whole into fresh memory the kernel must zero first.
    fn reserve(&mut self, kind: DbKind, lines: usize) {
        match kind {
            DbKind::Ndb => {
                self.bodies.reserve(lines);
                self.body_places.reserve(lines);
            }
            DbKind::Hdb | DbKind::Hsb => self.hashes.reserve(lines),
            DbKind::Fp | DbKind::Sfp => self.allow.reserve(lines),
            DbKind::Ldb => self.logicals.reserve(lines),
            DbKind::Ign2 => {}
        }
    }

    fn add_body(&mut self, def: BodyDef, spot: Option<AnchorSpot>) {
        let Some(spot) = spot else {
            return;
        };
        self.body_places.push(spot.place);
        self.bodies.push(BodySig {
            anchor: spot.anchor,
            name: def.name,
            target: def.target,
            offset: def.offset,
            boyer_moore: def.boyer_moore,
            pattern: def.pattern,
        });
    }

    pub(super) fn eicar(&mut self) {
        let pattern = Pattern::literal(&eicar_test_file());
        let spot = AnchorSpot::of(&pattern);
        let def = BodyDef {
            name: EICAR_NAME.into(),
            target: 0,
            offset: Offset::Any,
            boyer_moore: true,
            pattern,
        };
        self.add_body(def, spot);
    }

    pub(super) fn compile(self) -> SignatureSet {
        // Most patterns go into the raw list and many into the normalised one too; room
        // reserved and never used is address space only, never touched.
        let (mut raw, mut norm, mut nocase) = (
            AnchorList::with_capacity(self.bodies.len()),
            AnchorList::with_capacity(self.bodies.len()),
            AnchorList::default(),
        );
        let mut norm_relative = false;
        let mut place = |place: AnchorPlace, target: u8, offset: Offset, r: PatRef| {
            if target == 7 && offset.is_relative() {
                norm_relative = true;
            }
            if place.nocase {
                nocase.add(place.key, r);
            } else {
                if target != 7 {
                    raw.add(place.key, r);
                }
                if matches!(target, 0 | 7) && place.fits_normalised {
                    norm.add(place.key, r);
                }
            }
        };
        let bodies = self.bodies;
        for (at, (body, &spot)) in bodies.iter().zip(&self.body_places).enumerate() {
            place(spot, body.target, body.offset, PatRef(at as u32));
        }
        drop(self.body_places);
        let mut subs = Vec::new();
        let mut logicals = Vec::with_capacity(self.logicals.len());
        let mut always = Vec::new();
        for def in self.logicals {
            let index = logicals.len() as u32;
            let mut pcres = Vec::new();
            let count = def.subs.len() as u8;
            for (id, sub) in def.subs.into_iter().enumerate() {
                match sub {
                    SubDef::Body { offset, forms } => {
                        for pattern in forms {
                            let r = PatRef(SUB_BIT | subs.len() as u32);
                            let Some(spot) = AnchorSpot::of(&pattern) else {
                                continue;
                            };
                            place(spot.place, def.target, offset, r);
                            subs.push(SubPattern {
                                logical: index,
                                id: id as u8,
                                offset,
                                pattern,
                                anchor: spot.anchor,
                            });
                        }
                    }
                    SubDef::Pcre(p) => pcres.push((id as u8, p)),
                }
            }
            let zero = vec![0; count as usize];
            if def.expr.holds(&zero) || pcres.iter().any(|(_, p)| p.trigger.holds(&zero)) {
                always.push(index);
            }
            logicals.push(LogicalSig {
                name: def.name,
                target: def.target,
                file_size: def.file_size,
                container: def.container,
                expr: def.expr,
                subs: count,
                pcres,
            });
        }
        // The tables are independent of each other: built side by side.
        let all_hashes = &self.hashes;
        let all_allowed = &self.allow;
        let ((hashes, allow), (raw, (norm, nocase))) = rayon::join(
            || {
                (
                    HashTable::new(all_hashes.iter().zip(0..)),
                    HashTable::new(all_allowed.iter().map(|def| (def, 0))),
                )
            },
            || {
                rayon::join(
                    || raw.build(false),
                    || rayon::join(|| norm.build(false), || nocase.build(true)),
                )
            },
        );
        let hash_names = self.hashes.into_iter().map(|def| def.name).collect();
        let max_bm_skip = bodies
            .iter()
            .filter(|b| b.boyer_moore)
            .map(|b| b.anchor.skip as usize)
            .max()
            .unwrap_or(0);
        SignatureSet {
            bodies,
            subs,
            logicals,
            raw,
            norm,
            nocase,
            hashes,
            hash_names,
            allow,
            always,
            norm_relative,
            max_bm_skip,
        }
    }
}

/// Lines parsed in parallel at a time: enough to keep both cores busy, few enough that
/// the parsed lines stay a small fraction of a large set.
const PARSE_CHUNK: usize = 16 * 1024;

/// Splits file text into lines; a final line ending does not start another line.
fn lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::with_capacity(text.len() / 64);
    let mut start = 0;
    // memchr's vectorised search: a million-line database splits in milliseconds.
    for end in memchr::memchr_iter(b'\n', text.as_bytes()) {
        lines.push(&text[start..end]);
        start = end + 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// A line of a ClamAV database, parsed, with the anchor of its pattern.
type Parsed = (Line, Option<AnchorSpot>);

fn parse_chunk(kind: DbKind, chunk: &[&str]) -> Vec<Parsed> {
    chunk
        .par_iter()
        .map(|line| {
            let parsed = clamav::parse_line(kind, line);
            let spot = match &parsed {
                Line::Def(def) => AnchorSpot::of_def(def),
                _ => None,
            };
            (parsed, spot)
        })
        .collect()
}

/// Adds the `parsed` lines that start at `lines[first]`; lines SIE cannot honour become
/// problems, made by `problem` from a line's index in `lines`. Stops at a line ClamAV
/// refuses.
fn add_parsed(
    compiler: &mut Compiler,
    problems: &mut Vec<LoadProblem>,
    problem: impl Fn(usize, String) -> LoadProblem,
    lines: &[&str],
    (first, parsed): (usize, Vec<Parsed>),
) -> Result<(), SignatureError> {
    for (at, (parsed, spot)) in (first..).zip(parsed) {
        match parsed {
            Line::Def(def) => compiler.add(def, spot, lines[at]),
            Line::Skip => {}
            Line::Unsupported(message) => problems.push(problem(at, format!("{message}; skipped"))),
            Line::Rejected(message) => return Err(SignatureError::Rejected(problem(at, message))),
        }
    }
    Ok(())
}

/// Bytes of a definitions file read at a time. A large file is parsed a piece of whole
/// lines at a time, so it never sits in memory whole beside the set made from it (a
/// million-signature set is 68 MB of text).
const READ_PIECE: usize = 4 << 20;

/// Calls `each` with the index of its first line and the text of every piece of whole
/// lines of the file at `path`, about `piece` bytes each, in order; `each` returns how
/// many lines it read. A line longer than a piece grows the buffer. Pieces end after a newline, so bytes that are
/// not UTF-8 become U+FFFD exactly as if the file were converted whole.
fn for_each_piece(
    path: &Path,
    piece: usize,
    mut each: impl FnMut(usize, &str) -> Result<usize, SignatureError>,
) -> Result<(), SignatureError> {
    let io = |source| SignatureError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buf = vec![0; piece.max(1)];
    let (mut filled, mut first_line) = (0, 0);
    loop {
        let mut at_end = false;
        while filled < buf.len() {
            match file.read(&mut buf[filled..]) {
                Ok(0) => {
                    at_end = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        let end = match memchr::memrchr(b'\n', &buf[..filled]) {
            _ if at_end => filled,
            Some(newline) => newline + 1,
            None => {
                buf.resize(buf.len() * 2, 0);
                continue;
            }
        };
        // The strict check has a fast path for ASCII; the lossy one is only needed for
        // files that are not UTF-8.
        let text = match std::str::from_utf8(&buf[..end]) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(&buf[..end]),
        };
        first_line += each(first_line, &text)?;
        if at_end {
            return Ok(());
        }
        buf.copy_within(end..filled, 0);
        filled -= end;
    }
}

pub(super) fn load_dir(dir: &Path) -> Result<(SignatureSet, Vec<LoadProblem>), SignatureError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SignatureError::Io { path, source }
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        if !entry.file_type().map_err(io(&path))?.is_file() && !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = match name.rsplit_once('.') {
            _ if is_virus_vdl(&name) => None,
            Some((_, ext)) => match DbKind::from_extension(ext) {
                Some(kind) => Some(kind),
                None => continue,
            },
            None => continue,
        };
        files.push((kind != Some(DbKind::Ign2), name, path, kind));
    }
    files.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut compiler = Compiler::default();
    let mut problems = Vec::new();
    for (_, _, path, kind) in files {
        if let Some(kind) = kind {
            let size = std::fs::metadata(&path).map_err(io(&path))?.len();
            // Most definition lines are 40 to 200 bytes; a guess on the high side is
            // address space, not memory.
            compiler.reserve(kind, usize::try_from(size / 40).unwrap_or(usize::MAX));
        }
        for_each_piece(&path, READ_PIECE, |first_line, text| {
            let lines = lines(text);
            let problem = |at: usize, message: String| LoadProblem {
                file: path.clone(),
                line: first_line + at + 1,
                message,
            };
            match kind {
                None => {
                    for (at, line) in lines.iter().enumerate() {
                        match vdl::parse_line(line) {
                            Ok(Some(def)) => {
                                let spot = AnchorSpot::of_def(&def);
                                compiler.add(def, spot, line)
                            }
                            Ok(None) => {}
                            Err(message) => problems.push(problem(at, message)),
                        }
                    }
                }
                Some(kind) => {
                    // Parsing and choosing anchors is most of the work for large sets,
                    // and each line's is its own: done in parallel, a chunk at a time so
                    // the parsed lines never exist all at once beside the compiled ones.
                    // Adding a chunk to the compiler is serial; it runs beside the
                    // parsing of the next one.
                    let mut parsed_before: Option<(usize, Vec<Parsed>)> = None;
                    for (chunk_at, chunk) in lines.chunks(PARSE_CHUNK).enumerate() {
                        let (parsed, added) = rayon::join(
                            || parse_chunk(kind, chunk),
                            || match parsed_before.take() {
                                Some(before) => add_parsed(
                                    &mut compiler,
                                    &mut problems,
                                    problem,
                                    &lines,
                                    before,
                                ),
                                None => Ok(()),
                            },
                        );
                        added?;
                        parsed_before = Some((chunk_at * PARSE_CHUNK, parsed));
                    }
                    if let Some(before) = parsed_before {
                        add_parsed(&mut compiler, &mut problems, problem, &lines, before)?;
                    }
                }
            }
            Ok(lines.len())
        })?;
    }
    compiler.eicar();
    Ok((compiler.compile(), problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::signatures::testutil::{FILE, MAIL, load, name, set};

    #[test]
    fn pieces_hold_whole_lines_numbered_as_in_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ndb");
        let mut text = b"one\r\ntwo\n\nthree is longer than a piece\n".to_vec();
        text.extend_from_slice(b"bad \xff byte\nlast without newline");
        std::fs::write(&path, &text).unwrap();
        let whole = String::from_utf8_lossy(&text).into_owned();
        let expected: Vec<(usize, String)> = lines(&whole)
            .into_iter()
            .enumerate()
            .map(|(n, line)| (n, line.to_string()))
            .collect();
        for piece in [1, 2, 5, 7, 16, 64, 4096] {
            let mut seen = Vec::new();
            for_each_piece(&path, piece, |first, text| {
                let piece_lines = lines(text);
                for (at, line) in piece_lines.iter().enumerate() {
                    seen.push((first + at, line.to_string()));
                }
                Ok(piece_lines.len())
            })
            .unwrap();
            assert_eq!(seen, expected, "pieces of {piece} bytes");
        }
    }

    #[test]
    fn a_problem_in_a_later_piece_names_its_line_in_the_file() {
        // 100-byte lines, a piece and a fifth of them, then a blank line, which ClamAV
        // refuses.
        let good_line = format!("Good:0:*:{}\n", "41".repeat(45));
        let count = READ_PIECE / good_line.len() * 6 / 5;
        let text = format!("{}\nGood2:0:*:414243444547\n", good_line.repeat(count));
        match load(&[("a.ndb", &text)]).unwrap_err() {
            SignatureError::Rejected(p) => assert_eq!(p.line, count + 1),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn lines_split_like_a_text_file() {
        assert_eq!(lines(""), Vec::<&str>::new());
        assert_eq!(lines("a"), ["a"]);
        assert_eq!(lines("a\n"), ["a"]);
        assert_eq!(lines("a\n\nb"), ["a", "", "b"]);
        assert_eq!(lines("a\r\nb\n\n"), ["a\r", "b", ""]);
    }

    #[test]
    fn rejected_files_fail_the_load_with_file_and_line() {
        let err =
            load(&[("a.ndb", "Good:0:*:414243444546\n\nGood2:0:*:414243444547\n")]).unwrap_err();
        match err {
            SignatureError::Rejected(p) => {
                assert!(p.file.ends_with("a.ndb"));
                assert_eq!(p.line, 2);
            }
            other => panic!("{other}"),
        }
        assert!(load(&[("a.hdb", "44d88612fea8a8f36de82e1278abb02f:*:H1\n")]).is_err());
        assert!(load(&[("a.ldb", "L1;Target:0;0;414243;\n")]).is_err());
    }

    #[test]
    fn unsupported_and_vdl_problems_are_reported_and_skipped() {
        let (set, problems) = load(&[
            (
                "a.ndb",
                "Custom.ClamTest.EP-1:1:EP+0:bb71104000\nOk:0:*:414243\n",
            ),
            (
                "virus.vdl",
                "# own rules\nsig Own.Hex 4f574e??4f574e\nbogus line\n",
            ),
            ("spam.vdl", "this is not a virus file\n"),
            ("notes.txt", "ignored\n"),
        ])
        .unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!((problems[0].line, problems[1].line), (1, 3));
        assert_eq!(
            name(&set, b"\0\0\0\0OWN-OWN", &FILE).as_deref(),
            Some("Own.Hex")
        );
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn shipped_virus_vdl_loads_cleanly_and_finds_its_samples() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vdl");
        let (set, problems) = SignatureSet::load_dir(&dir).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            name(&set, &eicar_test_file(), &FILE).as_deref(),
            Some(EICAR_NAME)
        );
        assert_eq!(
            name(&set, &eicar_test_file(), &MAIL).as_deref(),
            Some(EICAR_NAME)
        );
        let samples: [(&[u8], &str); 3] = [
            (
                b"<a href=\"ms-msdt:/id PCWDiagnostic /skip force\">",
                "SIE.Exploit.CVE-2022-30190-Follina",
            ),
            (
                b"var s = new ActiveXObject(\"WScript.Shell\");\ns.Run(cmd, 0);",
                "SIE.Trojan.Script.WScriptShell-Run",
            ),
            (
                b"cmd /c PowerShell.exe -NoP -WindowStyle Hidden -enc ZQBjAGgAbwA=",
                "SIE.Downloader.PowerShell-Hidden",
            ),
        ];
        for (data, expected) in samples {
            assert_eq!(name(&set, data, &FILE).as_deref(), Some(expected));
        }
        assert_eq!(
            name(
                &set,
                b"Please run the PowerShell script we discussed.",
                &FILE
            ),
            None
        );
    }

    #[test]
    fn load_of_many_generated_signatures_is_fast() {
        // Load time for N generated signatures (N = $SIE_SIG_BENCH_N, default 100,000):
        // cargo test --release --lib load_of_many -- --nocapture
        let n = std::env::var("SIE_SIG_BENCH_N")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        let mut ndb = String::new();
        let mut hdb = String::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..n {
            let (a, b) = (next(), next());
            match i % 4 {
                0 => ndb.push_str(&format!("Gen.Static-{i}:0:*:{a:016x}{:08x}\n", b as u32)),
                1 => ndb.push_str(&format!(
                    "Gen.Wild-{i}:0:*:{a:016x}??{:08x}*{:08x}\n",
                    b as u32,
                    next() as u32
                )),
                2 => ndb.push_str(&format!(
                    "Gen.Alt-{i}:0:*:{a:016x}(41|42){:04x}\n",
                    b as u16
                )),
                _ => hdb.push_str(&format!("{a:016x}{b:016x}:{}:Gen.Hash-{i}\n", 1000 + i)),
            }
        }
        let started = std::time::Instant::now();
        let set = set(&[("gen.ndb", &ndb), ("gen.hdb", &hdb)]);
        let elapsed = started.elapsed();
        eprintln!(
            "loaded {} signatures in {:.3} s",
            set.len(),
            elapsed.as_secs_f64()
        );
        assert_eq!(set.len(), n + 1);
        let data: Vec<u8> = (0..1_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let started = std::time::Instant::now();
        assert_eq!(name(&set, &data, &FILE), None);
        eprintln!("scanned 1 MB in {:.3} s", started.elapsed().as_secs_f64());
    }
}
