//! ClamAV database lines (`.ndb`, `.hdb`, `.hsb`, `.ldb`, `.fp`, `.sfp`, `.ign2`, `.ign`)
//! read with ClamAV 1.4.6's strictness as measured (CLAMAV.md §1.3): each line becomes a
//! definition, a silent skip (FLEVEL, unknown target or attribute), a report of what SIE
//! does not implement, or a rejection that makes ClamAV refuse the database.

use crate::rules::signatures::body::{BodyError, Engine, Offset, Pattern, decode_hex};
use crate::rules::signatures::logical::{Expr, MAX_SUBSIGS, Tdb, TdbResult};
use crate::rules::signatures::{BodyDef, Def, HashDef, HashKind, LogicalDef, PcreDef, SubDef};

/// The functionality level ClamAV 1.4.6 runs at; signatures outside their
/// `min[:max]` FLEVEL are skipped without a word.
pub const RUNNING_FLEVEL: u32 = 216;

/// ClamAV appends this to names from files outside a signed container.
pub const UNOFFICIAL: &str = ".UNOFFICIAL";

/// Highest target type ClamAV 1.4.6 knows; higher ones are skipped silently.
const MAX_TARGET: u32 = 14;

/// The kinds of ClamAV database file SIE reads, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Ndb,
    Hdb,
    Hsb,
    Ldb,
    Fp,
    Sfp,
    Ign2,
}

impl DbKind {
    pub fn from_extension(ext: &str) -> Option<DbKind> {
        Some(match ext {
            "ndb" => DbKind::Ndb,
            "hdb" => DbKind::Hdb,
            "hsb" => DbKind::Hsb,
            "ldb" => DbKind::Ldb,
            "fp" => DbKind::Fp,
            "sfp" => DbKind::Sfp,
            "ign2" | "ign" => DbKind::Ign2,
            _ => return None,
        })
    }
}

/// What one line of a database gives.
#[derive(Debug)]
pub(crate) enum Line {
    Def(Def),
    /// Blank-free comment line, or a signature ClamAV skips silently.
    Skip,
    /// ClamAV loads it; SIE cannot honour it and says so.
    Unsupported(String),
    /// ClamAV refuses the whole database over this line.
    Rejected(String),
}

impl From<BodyError> for Line {
    fn from(e: BodyError) -> Line {
        match e {
            BodyError::Rejected(m) => Line::Rejected(m),
            BodyError::Unsupported(m) => Line::Unsupported(m),
        }
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Line::from(e),
        }
    };
}

/// Reads one line (without its line ending) of a database of `kind`.
pub(crate) fn parse_line(kind: DbKind, line: &str) -> Line {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Line::Rejected("malformed database: empty line".into());
    }
    if line.starts_with('#') {
        return Line::Skip;
    }
    match kind {
        DbKind::Ndb => parse_ndb(line),
        DbKind::Hdb | DbKind::Hsb => parse_hash(line, false),
        DbKind::Fp | DbKind::Sfp => parse_hash(line, true),
        DbKind::Ldb => parse_ldb(line),
        DbKind::Ign2 => parse_ign(line),
    }
}

fn flevel_field(text: Option<&str>) -> Result<Option<u32>, BodyError> {
    match text {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| BodyError::Rejected(format!("invalid FLEVEL {t:?}"))),
    }
}

fn outside_flevel(min: Option<u32>, max: Option<u32>) -> bool {
    min.is_some_and(|m| m > RUNNING_FLEVEL) || max.is_some_and(|m| m < RUNNING_FLEVEL)
}

fn unofficial(name: &str) -> Box<str> {
    // Sized exactly: `format!` would grow the string and shrink it again (a realloc
    // per signature, a fifth of the instructions of a million-line load).
    let mut full = String::with_capacity(name.len() + UNOFFICIAL.len());
    full.push_str(name);
    full.push_str(UNOFFICIAL);
    full.into_boxed_str()
}

/// Splits `line` at the ASCII `sep` into its fields, `None` when there are more than
/// `N`; the count of fields comes with them. No allocation, and memchr's search instead
/// of `str::split`'s (a seventh of a million-line load): this runs once per line.
fn split_fields<const N: usize>(line: &str, sep: u8) -> Option<([&str; N], usize)> {
    let mut fields = [""; N];
    let mut count = 0;
    let mut start = 0;
    // `sep` is ASCII, so every cut is at a character boundary.
    for end in memchr::memchr_iter(sep, line.as_bytes()).chain([line.len()]) {
        *fields.get_mut(count)? = &line[start..end];
        count += 1;
        start = end + 1;
    }
    Some((fields, count))
}

/// The field at `at` if there are more than `at` (`Some("")` for an empty one).
fn field<'a>(fields: &[&'a str], count: usize, at: usize) -> Option<&'a str> {
    (at < count).then(|| fields[at])
}

/// Offset checks shared by `.ndb` and `.ldb` subsignatures.
fn offset_for(text: &str, target: u32) -> Result<Offset, BodyError> {
    match Offset::parse(text) {
        Ok(offset) => Ok(offset),
        Err(false) => Err(BodyError::Rejected(format!("invalid offset {text:?}"))),
        Err(true) if text.starts_with('$') => Err(BodyError::Unsupported(format!(
            "macro group offset {text:?} is not supported"
        ))),
        Err(true) if matches!(target, 1 | 6 | 9) => Err(BodyError::Unsupported(format!(
            "executable-relative offset {text:?} is not supported"
        ))),
        Err(true) => Err(BodyError::Rejected(format!(
            "invalid offset type {text:?} for target {target}"
        ))),
    }
}

fn target_support(target: u32) -> Result<u8, BodyError> {
    match target {
        0 | 4 | 7 => Ok(target as u8),
        _ => Err(BodyError::Unsupported(format!(
            "target type {target} needs a file-type parser SIE does not have (0, 4 and 7 are supported)"
        ))),
    }
}

/// `Name:TargetType:Offset:HexSig[:MinFL[:MaxFL]]`
fn parse_ndb(line: &str) -> Line {
    let Some((fields, count @ 4..)) = split_fields::<6>(line, b':') else {
        return Line::Rejected(
            "malformed ndb line: needs Name:Target:Offset:HexSig[:MinFL[:MaxFL]]".into(),
        );
    };
    let name = fields[0];
    if name.is_empty() {
        return Line::Rejected("empty signature name".into());
    }
    let min = tri!(flevel_field(field(&fields, count, 4)));
    let max = tri!(flevel_field(field(&fields, count, 5)));
    if outside_flevel(min, max) {
        return Line::Skip;
    }
    let Ok(target) = fields[1].parse::<u32>() else {
        return Line::Rejected(format!("invalid target type {:?}", fields[1]));
    };
    if target > MAX_TARGET {
        return Line::Skip;
    }
    let offset = tri!(offset_for(fields[2], target));
    let pattern = tri!(Pattern::parse(fields[3]));
    let engine = if pattern.is_static() && matches!(target, 0 | 1) {
        Engine::BoyerMoore
    } else {
        Engine::AhoCorasick
    };
    tri!(pattern.check_clamav(engine));
    let target = tri!(target_support(target));
    Line::Def(Def::Body(BodyDef {
        name: unofficial(name),
        target,
        offset,
        boyer_moore: engine == Engine::BoyerMoore,
        pattern,
    }))
}

/// A hash by its length: MD5, SHA-1 or SHA-256, zero-padded to 32 bytes.
pub(crate) fn parse_digest(text: &str) -> Option<(HashKind, [u8; 32])> {
    let kind = match text.len() {
        32 => HashKind::Md5,
        40 => HashKind::Sha1,
        64 => HashKind::Sha256,
        _ => return None,
    };
    let mut digest = [0; 32];
    decode_hex(text.as_bytes(), &mut digest[..text.len() / 2]).then_some((kind, digest))
}

/// `Hash:FileSize:Name[:MinFL[:MaxFL]]` for `.hdb`, `.hsb`, `.fp` and `.sfp`; the hash
/// kind comes from its length in all four (measured).
fn parse_hash(line: &str, allow: bool) -> Line {
    let Some((fields, count @ 3..)) = split_fields::<5>(line, b':') else {
        return Line::Rejected(
            "malformed hash line: needs Hash:FileSize:Name[:MinFL[:MaxFL]]".into(),
        );
    };
    let Some((kind, digest)) = parse_digest(fields[0]) else {
        return Line::Rejected("malformed hash string".into());
    };
    let size = match fields[1] {
        "*" => None,
        s => match s.parse::<u64>() {
            Ok(n) if n > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Line::Rejected("invalid value for the size field".into()),
        },
    };
    let name = fields[2];
    if name.is_empty() {
        return Line::Rejected("empty signature name".into());
    }
    let min = tri!(flevel_field(field(&fields, count, 3)));
    let max = tri!(flevel_field(field(&fields, count, 4)));
    if size.is_none() && min.is_none_or(|m| m < 73) {
        return Line::Rejected(
            "minimum FLEVEL field must be at least 73 for wildcard size hash signatures".into(),
        );
    }
    if outside_flevel(min, max) {
        return Line::Skip;
    }
    let def = HashDef {
        name: unofficial(name),
        kind,
        digest,
        size,
    };
    Line::Def(if allow {
        Def::Allow(def)
    } else {
        Def::Hash(def)
    })
}

/// `Name`, `Name:md5-of-the-signature-line` (`.ign2`) or `db:line:Name` (`.ign`).
fn parse_ign(line: &str) -> Line {
    let fields: Vec<&str> = line.split(':').collect();
    let (name, md5) = match fields.as_slice() {
        [name] => (*name, None),
        [name, md5] => {
            let mut digest = vec![0; 16];
            if !decode_hex(md5.as_bytes(), &mut digest) {
                return Line::Rejected("malformed MD5 string".into());
            }
            (*name, Some(digest))
        }
        [_, _, name] => (*name, None),
        _ => return Line::Rejected("malformed ignore line".into()),
    };
    if name.is_empty() {
        return Line::Rejected("no signature name provided".into());
    }
    Line::Def(Def::Ignore {
        name: name.into(),
        line_md5: md5,
    })
}

/// `Name;TargetDescriptionBlock;LogicalExpression;Subsig0;Subsig1;...`
fn parse_ldb(line: &str) -> Line {
    let fields: Vec<&str> = line.split(';').collect();
    if fields.len() < 4 {
        return Line::Rejected("invalid or unsupported ldb signature format".into());
    }
    let name = fields[0];
    if name.is_empty() {
        return Line::Rejected("empty signature name".into());
    }
    let subs = &fields[3..];
    let expr = tri!(Expr::parse(fields[2]));
    if subs.len() > MAX_SUBSIGS {
        return Line::Rejected("broken logical expression or too many subsignatures".into());
    }
    if expr.max_id() as usize + 1 != subs.len() {
        return Line::Rejected(format!(
            "the number of subsignatures (== {}) doesn't match the IDs in the logical expression (== {})",
            subs.len(),
            expr.max_id() as usize + 1
        ));
    }
    let tdb = match tri!(Tdb::parse(fields[1])) {
        TdbResult::Skip => return Line::Skip,
        TdbResult::Ok(tdb) => tdb,
    };
    if tdb
        .engine
        .is_some_and(|(lo, hi)| lo > RUNNING_FLEVEL || hi < RUNNING_FLEVEL)
        || tdb.target > MAX_TARGET
    {
        return Line::Skip;
    }
    let mut parsed = Vec::with_capacity(subs.len());
    let mut unsupported = None;
    for (id, sub) in subs.iter().enumerate() {
        match parse_subsig(sub, id, subs.len(), tdb.target) {
            Ok(def) => parsed.push(def),
            Err(BodyError::Rejected(m)) => {
                return Line::Rejected(format!("subsignature {id}: {m}"));
            }
            Err(BodyError::Unsupported(m)) => {
                unsupported.get_or_insert(format!("subsignature {id}: {m}"));
            }
        }
    }
    if let Some(m) = unsupported {
        return Line::Unsupported(m);
    }
    if let Some(attr) = tdb.unsupported.first() {
        return Line::Unsupported(format!("TDB attribute {attr} is not supported"));
    }
    let target = tri!(target_support(tdb.target));
    Line::Def(Def::Logical(LogicalDef {
        name: unofficial(name),
        target,
        file_size: tdb.file_size,
        container: tdb.container.map(String::into_boxed_str),
        expr,
        subs: parsed,
    }))
}

fn parse_subsig(sub: &str, id: usize, count: usize, target: u32) -> Result<SubDef, BodyError> {
    if sub.starts_with("${") || sub.starts_with('$') {
        return Err(BodyError::Unsupported(
            "macro subsignatures are not supported".into(),
        ));
    }
    if sub.starts_with("fuzzy_img#") {
        return Err(BodyError::Unsupported(
            "image fuzzy hashes are not supported".into(),
        ));
    }
    if sub.contains('/') {
        return parse_pcre(sub, id, count, target).map(SubDef::Pcre);
    }
    if sub.contains('#') || sub.contains("(>>") || sub.contains("(<<") {
        return Err(BodyError::Unsupported(
            "byte-compare subsignatures are not supported".into(),
        ));
    }
    let (body, modifiers) = match sub.split_once("::") {
        Some((body, m)) => (body, m),
        None => (sub, ""),
    };
    let (offset, body) = match body.rsplit_once(':') {
        Some((offset, body)) => (offset_for(offset, target)?, body),
        None => (Offset::Any, body),
    };
    let mut pattern = Pattern::parse(body)?;
    pattern.check_clamav(Engine::AhoCorasick)?;
    let (mut wide, mut ascii) = (false, false);
    for m in modifiers.chars() {
        match m {
            'i' => pattern.nocase = true,
            'w' => wide = true,
            'a' => ascii = true,
            'f' => pattern.fullword(),
            _ => {
                return Err(BodyError::Rejected(format!(
                    "unknown subsignature modifier {m:?}"
                )));
            }
        }
    }
    let forms = match (wide, ascii) {
        (true, true) => vec![pattern.widen(), pattern],
        (true, false) => vec![pattern.widen()],
        _ => vec![pattern],
    };
    Ok(SubDef::Body { offset, forms })
}

/// `[Offset:]Trigger/regex/[flags]`
fn parse_pcre(sub: &str, id: usize, count: usize, target: u32) -> Result<PcreDef, BodyError> {
    let (Some(first), Some(last)) = (sub.find('/'), sub.rfind('/')) else {
        return Err(BodyError::Rejected("malformed PCRE subsignature".into()));
    };
    if first == last {
        return Err(BodyError::Rejected(
            "PCRE subsignature without closing '/'".into(),
        ));
    }
    let head = &sub[..first];
    let regex = &sub[first + 1..last];
    let flags = &sub[last + 1..];
    let (offset, trigger) = match head.rsplit_once(':') {
        Some((offset, trigger)) => (offset_for(offset, target)?, trigger),
        None => (Offset::Any, head),
    };
    if trigger.is_empty() {
        return Err(BodyError::Rejected(
            "PCRE subsig must contain logical trigger".into(),
        ));
    }
    let trigger = Expr::parse(trigger)?;
    if trigger.max_id() as usize >= count {
        return Err(BodyError::Rejected(
            "PCRE trigger refers to a missing subsignature".into(),
        ));
    }
    if mentions(&trigger, id as u8) {
        return Err(BodyError::Rejected(format!(
            "regex subsig {id} logical trigger is self-referential"
        )));
    }
    let mut builder = regex::bytes::RegexBuilder::new(regex);
    builder.unicode(false);
    let (mut global, mut anchored) = (false, false);
    for f in flags.chars() {
        match f {
            'i' => drop(builder.case_insensitive(true)),
            's' => drop(builder.dot_matches_new_line(true)),
            'm' => drop(builder.multi_line(true)),
            'x' => drop(builder.ignore_whitespace(true)),
            'U' => drop(builder.swap_greed(true)),
            'g' => global = true,
            'A' => anchored = true,
            'E' => {}
            'r' | 'e' => {
                return Err(BodyError::Unsupported(format!(
                    "PCRE flag {f:?} is not supported"
                )));
            }
            _ => return Err(BodyError::Rejected(format!("unknown PCRE flag {f:?}"))),
        }
    }
    let regex = builder
        .build()
        .map_err(|e| BodyError::Unsupported(format!("regex not supported by SIE's engine: {e}")))?;
    Ok(PcreDef {
        trigger,
        regex,
        offset,
        global,
        anchored,
    })
}

fn mentions(expr: &Expr, id: u8) -> bool {
    match expr {
        Expr::Leaf { id: leaf, .. } => *leaf == id,
        Expr::Op { left, right, .. } => mentions(left, id) || mentions(right, id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rejected(kind: DbKind, line: &str) -> bool {
        matches!(parse_line(kind, line), Line::Rejected(_))
    }

    #[test]
    fn the_benchmark_database_loads() {
        for line in [
            "Custom.EICAR.NDB-1:0:*:58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a",
            "Custom.ClamTest.NDB-1:0:*:4b45524e454c33322e444c4c00004578",
        ] {
            assert!(
                matches!(parse_line(DbKind::Ndb, line), Line::Def(Def::Body(_))),
                "{line}"
            );
        }
        assert!(matches!(
            parse_line(DbKind::Ndb, "Custom.ClamTest.EP-1:1:EP+0:bb71104000"),
            Line::Unsupported(_)
        ));
        assert!(matches!(
            parse_line(
                DbKind::Hdb,
                "44d88612fea8a8f36de82e1278abb02f:68:Custom.EICAR.HDB-1"
            ),
            Line::Def(Def::Hash(HashDef {
                kind: HashKind::Md5,
                size: Some(68),
                ..
            }))
        ));
        assert!(matches!(
            parse_line(
                DbKind::Hsb,
                "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f:68:Custom.EICAR.HSB-1"
            ),
            Line::Def(Def::Hash(HashDef {
                kind: HashKind::Sha256,
                ..
            }))
        ));
        let ldb = "Custom.EICAR.LDB-1;Engine:51-255,Target:0;0&1;45494341522d5354414e44415244;414e544956495255532d544553542d46494c45";
        match parse_line(DbKind::Ldb, ldb) {
            Line::Def(Def::Logical(l)) => {
                assert_eq!(&*l.name, "Custom.EICAR.LDB-1.UNOFFICIAL");
                assert_eq!(l.subs.len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn loader_rejections_as_measured() {
        assert!(rejected(DbKind::Ndb, ""));
        assert!(rejected(DbKind::Hdb, ""));
        assert!(rejected(DbKind::Ldb, ""));
        assert!(rejected(DbKind::Ign2, ""));
        assert!(rejected(DbKind::Ndb, "S2:0:*:4549"));
        assert!(!rejected(DbKind::Ndb, "S3:0:*:454943"));
        assert!(rejected(DbKind::Ndb, "St:0:*:45*4e"));
        assert!(!rejected(DbKind::Ndb, "St:0:*:4546*4e4f"));
        assert!(!rejected(DbKind::Ndb, "Q:0:*:4549??4152"));
        assert!(rejected(DbKind::Ndb, "Q:0:*:45??41"));
        assert!(rejected(DbKind::Ldb, "L1;Target:0;0;2d"));
        assert!(!rejected(DbKind::Ldb, "L1;Target:0;0;4142"));
        assert!(rejected(DbKind::Ldb, "L1;Target:0;0;414243;"));
        assert!(rejected(
            DbKind::Hdb,
            "44d88612fea8a8f36de82e1278abb02f:*:H1"
        ));
        assert!(matches!(
            parse_line(DbKind::Hdb, "44d88612fea8a8f36de82e1278abb02f:*:H1:73"),
            Line::Def(_)
        ));
        assert!(rejected(
            DbKind::Hdb,
            "44d88612fea8a8f36de82e1278abb02f:0:H1"
        ));
        assert!(rejected(
            DbKind::Hdb,
            "44d88612fea8a8f36de82e1278abb02:68:H1"
        ));
        assert!(rejected(DbKind::Ndb, "B:0:*:41424g"));
        assert!(rejected(DbKind::Ndb, "B:0:*:4142434"));
        assert!(rejected(DbKind::Ndb, "B:0:*"));
        assert!(rejected(DbKind::Ndb, "B:0:foo:414243"));
        assert!(rejected(DbKind::Ndb, "B:0:EP+0:414243"));
        assert!(rejected(DbKind::Ndb, ":0:*:41424344"));
        assert!(rejected(DbKind::Ndb, "T:0:*:41424344 "));
        assert!(rejected(DbKind::Ign2, "Hsh:deadbeef"));
        assert!(rejected(
            DbKind::Ldb,
            "L;Engine:81-255,Target:0;0&1;414243;/abc/"
        ));
        assert!(rejected(DbKind::Ldb, "L;Engine:81-255,Target:0;0;0/abc/"));
    }

    #[test]
    fn silent_skips_as_measured() {
        for (kind, line) in [
            (DbKind::Ndb, "F:0:*:414243444546:999"),
            (DbKind::Ndb, "F:0:*:414243444546:1:10"),
            (DbKind::Ndb, "B:99:*:414243"),
            (DbKind::Ndb, "# a comment"),
            (DbKind::Ldb, "L1;Target:0,Foo:1;0;414243"),
            (DbKind::Ldb, "L1;Engine:250-255,Target:0;0;414243"),
        ] {
            assert!(matches!(parse_line(kind, line), Line::Skip), "{line}");
        }
        // Accepted as ClamAV does: CRLF, a space in a name, an empty FLEVEL.
        assert!(matches!(
            parse_line(DbKind::Ndb, "G:0:*:414243\r"),
            Line::Def(_)
        ));
        assert!(matches!(
            parse_line(DbKind::Ndb, "A B:0:*:414243444546"),
            Line::Def(_)
        ));
        assert!(matches!(
            parse_line(DbKind::Ndb, "T:0:*:41424344:"),
            Line::Def(_)
        ));
    }

    #[test]
    fn unsupported_features_are_reported() {
        for (kind, line) in [
            (DbKind::Ndb, "P:1:*:414243"),
            (DbKind::Ndb, "M:0:$1:414243"),
            (DbKind::Ldb, "L;Engine:51-255,Target:0;0&1;414243;${1-2}12$"),
            (
                DbKind::Ldb,
                "L;Engine:101-255,Target:0;0&1;414243;0(>>2#hb2#=0)",
            ),
            (
                DbKind::Ldb,
                "L;Engine:81-255,Target:0;0&1;414243;0/(?<=a)bc/",
            ),
            (DbKind::Ldb, "L;Engine:51-255,Target:1;0;414243"),
            (
                DbKind::Ldb,
                "L;Engine:51-255,Target:0,EntryPoint:1-100;0;414243",
            ),
        ] {
            assert!(
                matches!(parse_line(kind, line), Line::Unsupported(_)),
                "{line}"
            );
        }
    }

    #[test]
    fn ignore_lines() {
        assert!(matches!(
            parse_line(DbKind::Ign2, "Abc"),
            Line::Def(Def::Ignore { line_md5: None, .. })
        ));
        assert!(matches!(
            parse_line(DbKind::Ign2, "Abc:0123456789abcdef0123456789abcdef"),
            Line::Def(Def::Ignore {
                line_md5: Some(_),
                ..
            })
        ));
        match parse_line(DbKind::Ign2, "a.ndb:1:Abc") {
            Line::Def(Def::Ignore { name, .. }) => assert_eq!(&*name, "Abc"),
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn any_line_parses_or_is_reported(line in ".{0,200}", kind in 0usize..7) {
            let kind = [DbKind::Ndb, DbKind::Hdb, DbKind::Hsb, DbKind::Ldb, DbKind::Fp, DbKind::Sfp, DbKind::Ign2][kind];
            let _ = parse_line(kind, &line);
        }

        #[test]
        fn signature_shaped_lines_never_panic(
            body in "[0-9a-f?*{}()|!\\[\\]BLW,-]{0,60}",
            offset in "(\\*|[0-9]{1,3}|EOF-[0-9]{1,3}|[0-9],[0-9]|EP\\+1|\\$1)",
            expr in "[0-3&|()=<>,]{1,12}",
        ) {
            let _ = parse_line(DbKind::Ndb, &format!("N:0:{offset}:{body}"));
            let _ = parse_line(DbKind::Ldb, &format!("L;Engine:51-255,Target:0;{expr};{body};4142{body}"));
        }

        #[test]
        fn fields_split_as_str_split_does(line in "[a:é]{0,12}") {
            let expected: Vec<&str> = line.split(':').collect();
            match split_fields::<5>(&line, b':') {
                Some((fields, count)) => prop_assert_eq!(&fields[..count], &expected[..]),
                None => prop_assert!(expected.len() > 5),
            }
        }
    }
}
