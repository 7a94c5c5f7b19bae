//! The compiled set: passes over every anchor, the body, logical and hash signatures
//! and the allow lists; loading a directory into it and matching one object.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::ControlFlow;

use md5::Md5;
use rayon::slice::ParallelSliceMut;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::anchors::AnchorIndex;
use super::body::{MAX_ANCHOR, Offset, Pattern};
use super::compile::Compiler;
use super::logical::Expr;
use super::verify::Memo;
use super::{HashDef, HashKind, ObjectInfo, PcreDef, SignatureMatch, Target, text};

/// ClamAV 1.4.6 does not scan objects of this size or less.
const TOO_SMALL: usize = 5;

/// `size` key of hash signatures written with `*`.
pub(super) const ANY_SIZE: u64 = u64::MAX;

#[derive(Debug)]
pub(super) struct BodySig {
    pub(super) name: Box<str>,
    pub(super) target: u8,
    pub(super) offset: Offset,
    pub(super) boyer_moore: bool,
    pub(super) pattern: Pattern,
    pub(super) anchor: Anchor,
}

#[derive(Debug)]
pub(super) struct SubPattern {
    pub(super) logical: u32,
    pub(super) id: u8,
    pub(super) offset: Offset,
    pub(super) pattern: Pattern,
    pub(super) anchor: Anchor,
}

/// Where a pattern's anchor sits: element index and offset inside that static run.
#[derive(Debug, Clone, Copy)]
pub(super) struct Anchor {
    pub(super) elem: u16,
    pub(super) skip: u32,
}

#[derive(Debug)]
pub(super) struct LogicalSig {
    pub(super) name: Box<str>,
    pub(super) target: u8,
    pub(super) file_size: Option<(u64, u64)>,
    pub(super) container: Option<Box<str>>,
    pub(super) expr: Expr,
    pub(super) subs: u8,
    pub(super) pcres: Vec<(u8, PcreDef)>,
}

/// A pattern an anchor leads to: a body signature, or (high bit) a subsignature form.
#[derive(Debug, Clone, Copy)]
pub(super) struct PatRef(pub(super) u32);

pub(super) const SUB_BIT: u32 = 1 << 31;

/// The anchors of one pass and, per anchor id, the patterns to verify
/// (`refs[starts[id]..starts[id + 1]]`).
#[derive(Default)]
pub(super) struct AnchorPass {
    pub(super) index: Option<AnchorIndex>,
    pub(super) starts: Vec<u32>,
    pub(super) refs: Vec<PatRef>,
}

/// Whole-object hashes: per kind, entries sorted by digest and size for binary
/// search (no per-entry allocation: 48 bytes each, so a million fit in 48 MB).
#[derive(Default)]
pub(super) struct HashTable {
    /// By [`kind_slot`].
    entries: [Vec<HashEntry>; 3],
    /// Distinct sizes per kind, sorted (`ANY_SIZE`, the largest, last): a digest is
    /// computed only when some entry could match the object's size.
    sizes: [Vec<u64>; 3],
}

struct HashEntry {
    /// Zero-padded past the kind's digest length.
    digest: [u8; 32],
    size: u64,
    value: u32,
}

const HASH_KINDS: [HashKind; 3] = [HashKind::Md5, HashKind::Sha1, HashKind::Sha256];

fn kind_slot(kind: HashKind) -> usize {
    match kind {
        HashKind::Md5 => 0,
        HashKind::Sha1 => 1,
        HashKind::Sha256 => 2,
    }
}

impl HashTable {
    /// The table of `(definition, value)` pairs; of entries with the same kind, digest
    /// and size the first one counts.
    pub(super) fn new<'a>(defs: impl IntoIterator<Item = (&'a HashDef, u32)>) -> HashTable {
        let mut table = HashTable::default();
        for (def, value) in defs {
            table.entries[kind_slot(def.kind)].push(HashEntry {
                digest: def.digest,
                size: def.size.unwrap_or(ANY_SIZE),
                value,
            });
        }
        for (entries, sizes) in table.entries.iter_mut().zip(&mut table.sizes) {
            // Among equal keys the first definition stays first: values are definition
            // indexes (or all equal), so they order ties as a stable sort would.
            entries.par_sort_unstable_by(|a, b| {
                a.digest
                    .cmp(&b.digest)
                    .then(a.size.cmp(&b.size))
                    .then(a.value.cmp(&b.value))
            });
            entries.dedup_by(|later, earlier| {
                (later.digest, later.size) == (earlier.digest, earlier.size)
            });
            entries.shrink_to_fit();
            *sizes = entries.iter().map(|entry| entry.size).collect();
            sizes.sort_unstable();
            sizes.dedup();
        }
        table
    }

    /// The first entry matching `data`: MD5, then SHA-1, then SHA-256. Each digest is
    /// computed only if some entry of that kind has this size (or any size).
    fn lookup(&self, data: &[u8]) -> Option<u32> {
        let len = data.len() as u64;
        for kind in HASH_KINDS {
            let slot = kind_slot(kind);
            let sizes = &self.sizes[slot];
            if sizes.binary_search(&len).is_err() && sizes.last() != Some(&ANY_SIZE) {
                continue;
            }
            let mut digest = [0u8; 32];
            match kind {
                HashKind::Md5 => digest[..16].copy_from_slice(&Md5::digest(data)),
                HashKind::Sha1 => digest[..20].copy_from_slice(&Sha1::digest(data)),
                HashKind::Sha256 => digest.copy_from_slice(&Sha256::digest(data)),
            }
            let entries = &self.entries[slot];
            for size in [len, ANY_SIZE] {
                if let Ok(at) = entries
                    .binary_search_by(|entry| (entry.digest, entry.size).cmp(&(digest, size)))
                {
                    return Some(entries[at].value);
                }
            }
        }
        None
    }

    fn len(&self) -> usize {
        self.entries.iter().map(Vec::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A compiled, immutable signature set, shared read-only by every scanning thread.
pub struct SignatureSet {
    pub(super) bodies: Vec<BodySig>,
    pub(super) subs: Vec<SubPattern>,
    pub(super) logicals: Vec<LogicalSig>,
    pub(super) raw: AnchorPass,
    pub(super) norm: AnchorPass,
    pub(super) nocase: AnchorPass,
    pub(super) hashes: HashTable,
    pub(super) hash_names: Vec<Box<str>>,
    pub(super) allow: HashTable,
    /// Logical signatures that may hold without any subsignature hit (`0=0`, `0<3`,
    /// PCRE triggers that hold on zero counts): evaluated for every object.
    pub(super) always: Vec<u32>,
    /// Some target-7 pattern has an EOF-relative offset. Measured quirk: only then does
    /// ClamAV resolve EOF-relative target-0 offsets in the normalised pass.
    pub(super) norm_relative: bool,
    /// Largest anchor offset inside a Boyer-Moore-class pattern (bounds the early stop).
    pub(super) max_bm_skip: usize,
}

impl fmt::Debug for SignatureSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureSet")
            .field("bodies", &self.bodies.len())
            .field("logicals", &self.logicals.len())
            .field("hashes", &self.hash_names.len())
            .field("allow", &self.allow.len())
            .finish()
    }
}

/// Match counts of the subsignatures of the logical signatures hit in one pass.
type Counts = HashMap<u32, Vec<u32>>;

impl SignatureSet {
    /// The built-in set: the EICAR test file only, named `Eicar-Test-Signature`.
    pub fn builtin() -> SignatureSet {
        let mut compiler = Compiler::default();
        compiler.eicar();
        compiler.compile()
    }

    /// Number of signatures (body, logical and hash; allow-list entries not counted).
    pub fn len(&self) -> usize {
        self.bodies.len() + self.logicals.len() + self.hash_names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first signature matching `data` in ClamAV's order (see the module text), or
    /// `None`; also `None` when an allow list (`.fp`/`.sfp`) names the object.
    pub fn scan(&self, data: &[u8], object: &ObjectInfo) -> Option<SignatureMatch> {
        if data.len() <= TOO_SMALL {
            return None;
        }
        let found = match object.target {
            Target::Mail => self.pass(data, data.len(), false, &[4, 0], object),
            Target::File => self
                .pass(data, data.len(), false, &[0], object)
                .or_else(|| {
                    if self.norm.index.is_none()
                        && self.nocase.index.is_none()
                        && self.always.is_empty()
                    {
                        return None;
                    }
                    if !text::is_text(data) {
                        return None;
                    }
                    let normalised = text::normalise(data);
                    self.pass(&normalised, data.len(), true, &[7, 0], object)
                }),
        }?;
        if !self.allow.is_empty() && self.allow.lookup(data).is_some() {
            return None;
        }
        Some(SignatureMatch {
            name: found.to_string(),
        })
    }

    /// One pass over `buf` with the signatures of the `roots` target types (the first
    /// root ranks first).
    fn pass(
        &self,
        buf: &[u8],
        size: usize,
        normalised: bool,
        roots: &[u8],
        object: &ObjectInfo,
    ) -> Option<&str> {
        let rank = |target: u8| roots.iter().position(|&r| r == target);
        let skip_relative = |target: u8, offset: Offset| {
            normalised && target == 0 && offset.is_relative() && !self.norm_relative
        };
        // Best body match so far: (root rank, Boyer-Moore first, position, index).
        let mut best: Option<(usize, u8, usize, u32)> = None;
        let mut matched: HashSet<u32> = HashSet::new();
        let mut memos: HashMap<u32, Memo> = HashMap::new();
        let mut counts: Counts = HashMap::new();
        let passes = [
            if normalised { &self.norm } else { &self.raw },
            &self.nocase,
        ];
        for anchors in passes {
            let Some(index) = &anchors.index else {
                continue;
            };
            index.for_each_match(buf, |start, id| {
                if let Some((0, 0, pos, _)) = best
                    && start > pos + self.max_bm_skip + MAX_ANCHOR
                {
                    return ControlFlow::Break(());
                }
                let refs = &anchors.refs[anchors.starts[id as usize] as usize
                    ..anchors.starts[id as usize + 1] as usize];
                for &PatRef(r) in refs {
                    if r & SUB_BIT == 0 {
                        let sig = &self.bodies[r as usize];
                        let Some(root) = rank(sig.target) else {
                            continue;
                        };
                        if skip_relative(sig.target, sig.offset) || matched.contains(&r) {
                            continue;
                        }
                        let Some(at) = start.checked_sub(sig.anchor.skip as usize) else {
                            continue;
                        };
                        let memo = memos.entry(r).or_default();
                        if let Some(end) =
                            sig.pattern
                                .verify(buf, sig.offset, sig.anchor.elem as usize, at, memo)
                        {
                            matched.insert(r);
                            let key = if sig.boyer_moore {
                                (root, 0, at, r)
                            } else {
                                (root, 1, end, r)
                            };
                            best = Some(best.map_or(key, |b| b.min(key)));
                        }
                    } else if best.is_none() {
                        let sub = &self.subs[(r & !SUB_BIT) as usize];
                        let logical = &self.logicals[sub.logical as usize];
                        if rank(logical.target).is_none()
                            || skip_relative(logical.target, sub.offset)
                        {
                            continue;
                        }
                        let Some(at) = start.checked_sub(sub.anchor.skip as usize) else {
                            continue;
                        };
                        let memo = memos.entry(r).or_default();
                        if sub
                            .pattern
                            .verify(buf, sub.offset, sub.anchor.elem as usize, at, memo)
                            .is_some()
                        {
                            let c = counts
                                .entry(sub.logical)
                                .or_insert_with(|| vec![0; logical.subs as usize]);
                            c[sub.id as usize] = c[sub.id as usize].saturating_add(1);
                        }
                    }
                }
                ControlFlow::Continue(())
            });
        }
        if let Some((_, _, _, r)) = best {
            return Some(&self.bodies[r as usize].name);
        }
        if !normalised && let Some(h) = self.hashes.lookup(buf) {
            return Some(&self.hash_names[h as usize]);
        }
        self.logical(buf, size, &counts, &rank, object)
    }

    /// Evaluates the logical signatures that had hits (and those that need none),
    /// target-specific first, then in file order.
    fn logical(
        &self,
        buf: &[u8],
        size: usize,
        counts: &Counts,
        rank: &dyn Fn(u8) -> Option<usize>,
        object: &ObjectInfo,
    ) -> Option<&str> {
        let mut candidates: Vec<(usize, u32)> = counts
            .keys()
            .chain(&self.always)
            .filter_map(|&l| Some((rank(self.logicals[l as usize].target)?, l)))
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let container = object.container.unwrap_or("CL_TYPE_ANY");
        for (_, l) in candidates {
            let sig = &self.logicals[l as usize];
            if sig
                .file_size
                .is_some_and(|(lo, hi)| (size as u64) < lo || (size as u64) > hi)
            {
                continue;
            }
            if sig.container.as_deref().is_some_and(|c| c != container) {
                continue;
            }
            let mut c = counts
                .get(&l)
                .cloned()
                .unwrap_or_else(|| vec![0; sig.subs as usize]);
            for (id, pcre) in &sig.pcres {
                if pcre.trigger.holds(&c) {
                    c[*id as usize] = pcre_count(pcre, buf);
                }
            }
            if sig.expr.holds(&c) {
                return Some(&sig.name);
            }
        }
        None
    }
}

/// Matches of a PCRE subsignature: searched from its offset (`A`: only there), all of
/// them with `g`, else at most one.
fn pcre_count(pcre: &PcreDef, buf: &[u8]) -> u32 {
    let (lo, hi) = match pcre.offset {
        Offset::Any => (0, buf.len()),
        Offset::Abs { start, shift } => (start as usize, start.saturating_add(shift) as usize),
        Offset::Eof { back, shift } => match buf.len().checked_sub(back as usize) {
            Some(lo) => (lo, lo.saturating_add(shift as usize)),
            None => return 0,
        },
    };
    if lo > buf.len() {
        return 0;
    }
    let mut count = 0u32;
    let mut from = lo;
    while let Some(m) = pcre.regex.find_at(buf, from) {
        if pcre.anchored && (m.start() < lo || m.start() > hi) {
            break;
        }
        count += 1;
        if !pcre.global {
            break;
        }
        from = if m.end() > m.start() {
            m.end()
        } else {
            m.end() + 1
        };
        if from > buf.len() {
            break;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::signatures::testutil::{FILE, MAIL, name, set};
    use crate::scan::virus::{EICAR_NAME, eicar_test_file};

    fn md5_hex(data: &[u8]) -> String {
        Md5::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn the_set_is_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<SignatureSet>();
    }

    #[test]
    fn builtin_finds_eicar_and_nothing_else() {
        let set = SignatureSet::builtin();
        assert_eq!(set.len(), 1);
        let mut data = b"before ".to_vec();
        data.extend(eicar_test_file());
        assert_eq!(name(&set, &data, &FILE).as_deref(), Some(EICAR_NAME));
        assert_eq!(name(&set, &data, &MAIL).as_deref(), Some(EICAR_NAME));
        assert_eq!(name(&set, b"just some harmless text", &FILE), None);
    }

    #[test]
    fn clamav_names_win_over_the_builtin_and_get_the_suffix() {
        let set = set(&[(
            "a.ndb",
            "Custom.EICAR.NDB-1:0:*:58354f2150254041505b345c505a58353428505e29\n",
        )]);
        assert_eq!(
            name(&set, &eicar_test_file(), &FILE).as_deref(),
            Some("Custom.EICAR.NDB-1.UNOFFICIAL")
        );
    }

    #[test]
    fn tiny_objects_are_not_scanned() {
        let set = set(&[("a.ndb", "Abc:0:*:414243\n")]);
        assert_eq!(name(&set, b"ABC\0\0", &FILE), None);
        assert_eq!(
            name(&set, b"ABC\0\0\0", &FILE).as_deref(),
            Some("Abc.UNOFFICIAL")
        );
    }

    #[test]
    fn static_before_wildcard_then_earliest() {
        let set = set(&[(
            "a.ndb",
            "Wild:0:*:4143??4143\nStatic:0:*:424d424d424d\nFirst:0:*:4649525354\nSecond:0:*:5345434f4e44\n",
        )]);
        let data = [b"\0\0\0\0AC-AC".as_slice(), &[0; 100], b"BMBMBM"].concat();
        assert_eq!(
            name(&set, &data, &FILE).as_deref(),
            Some("Static.UNOFFICIAL")
        );
        assert_eq!(
            name(&set, b"\0\0\0\0SECOND..FIRST", &FILE).as_deref(),
            Some("Second.UNOFFICIAL")
        );
    }

    #[test]
    fn hashes_with_sizes_and_any_size() {
        let one = b"\0\0\0\0first file".to_vec();
        let two = b"\0\0\0\0second file".to_vec();
        let hdb = format!(
            "{}:{}:One\n{}:{}:Two.Wrong.Size\n",
            md5_hex(&one),
            one.len(),
            md5_hex(&two),
            two.len() + 1
        );
        let sha = Sha1::digest(&two)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let set = set(&[("a.hdb", &hdb), ("a.hsb", &format!("{sha}:*:Two.Any:73\n"))]);
        assert_eq!(name(&set, &one, &FILE).as_deref(), Some("One.UNOFFICIAL"));
        assert_eq!(
            name(&set, &two, &FILE).as_deref(),
            Some("Two.Any.UNOFFICIAL")
        );
        assert_eq!(
            name(&set, &two, &MAIL).as_deref(),
            Some("Two.Any.UNOFFICIAL")
        );
        assert_eq!(name(&set, b"\0\0\0\0third file", &FILE), None);
    }

    #[test]
    fn logical_expressions_counts_and_size() {
        let set = set(&[(
            "a.ldb",
            "L.And;Engine:51-255,Target:0;0&1;41414131;42424232\n\
             L.Count;Engine:51-255,Target:0;0>2;43434333\n\
             L.Size;Engine:51-255,Target:0,FileSize:1-20;0;44444434\n\
             L.Pcre;Engine:81-255,Target:0;0&1;45454535;0/eee5-[0-9]+/i\n",
        )]);
        assert_eq!(
            name(&set, b"\0\0\0\0AAA1 BBB2", &FILE).as_deref(),
            Some("L.And.UNOFFICIAL")
        );
        assert_eq!(name(&set, b"\0\0\0\0AAA1 BBBB", &FILE), None);
        assert_eq!(
            name(&set, b"\0\0\0\0CCC3CCC3CCC3", &FILE).as_deref(),
            Some("L.Count.UNOFFICIAL")
        );
        assert_eq!(name(&set, b"\0\0\0\0CCC3CCC3", &FILE), None);
        assert_eq!(
            name(&set, b"\0\0\0\0DDD4", &FILE).as_deref(),
            Some("L.Size.UNOFFICIAL")
        );
        assert_eq!(
            name(
                &set,
                &[b"\0\0\0\0DDD4".as_slice(), &[0; 30]].concat(),
                &FILE
            ),
            None
        );
        assert_eq!(
            name(&set, b"\0\0\0\0EEE5-123", &FILE).as_deref(),
            Some("L.Pcre.UNOFFICIAL")
        );
        assert_eq!(name(&set, b"\0\0\0\0EEE5-abc", &FILE), None);
    }

    #[test]
    fn container_restriction() {
        let set = set(&[(
            "a.ldb",
            "In.Zip;Engine:51-255,Target:0,Container:CL_TYPE_ZIP;0;5a49505045440a\n\
             At.Root;Engine:51-255,Target:0,Container:CL_TYPE_ANY;0;524f4f540a\n",
        )]);
        let zip = ObjectInfo {
            target: Target::File,
            container: Some("CL_TYPE_ZIP"),
        };
        let mail = ObjectInfo {
            target: Target::File,
            container: Some("CL_TYPE_MAIL"),
        };
        assert_eq!(
            name(&set, b"\0\0\0\0ZIPPED\n", &zip).as_deref(),
            Some("In.Zip.UNOFFICIAL")
        );
        assert_eq!(name(&set, b"\0\0\0\0ZIPPED\n", &mail), None);
        assert_eq!(name(&set, b"\0\0\0\0ZIPPED\n", &FILE), None);
        assert_eq!(
            name(&set, b"\0\0\0\0ROOT\n", &FILE).as_deref(),
            Some("At.Root.UNOFFICIAL")
        );
        assert_eq!(name(&set, b"\0\0\0\0ROOT\n", &zip), None);
    }

    #[test]
    fn targets_mail_and_normalised_text() {
        let set = set(&[(
            "a.ndb",
            "Mail.Subject:4:*:5375626a6563743a2054455354\nText.Norm:7:*:68656c6c6f20776f726c64\n",
        )]);
        let mail = b"From: a@b.c\nSubject: TEST\n\nbody\n";
        assert_eq!(
            name(&set, mail, &MAIL).as_deref(),
            Some("Mail.Subject.UNOFFICIAL")
        );
        assert_eq!(name(&set, mail, &FILE), None);
        assert_eq!(
            name(&set, b"HELLO   World\n", &FILE).as_deref(),
            Some("Text.Norm.UNOFFICIAL")
        );
        assert_eq!(
            name(&set, b"\0\0\0\0HELLO   World\n", &FILE),
            None,
            "binary: no normalised pass"
        );
        assert_eq!(
            name(&set, b"HELLO   World\n", &MAIL),
            None,
            "no normalised pass on the raw mail"
        );
    }

    #[test]
    fn allow_and_ignore_lists() {
        let clean = b"\0\0\0\0ABCDEF allowed".to_vec();
        let fp = format!("{}:{}:Allowed\n", md5_hex(&clean), clean.len());
        let set = set(&[
            ("a.ndb", "Abc:0:*:414243444546\nDef:0:*:444546474849\n"),
            ("a.fp", &fp),
            ("a.ign2", "Def\n"),
        ]);
        assert_eq!(name(&set, &clean, &FILE), None);
        assert_eq!(
            name(&set, b"\0\0\0\0ABCDEF other", &FILE).as_deref(),
            Some("Abc.UNOFFICIAL")
        );
        assert_eq!(name(&set, b"\0\0\0\0DEFGHI", &FILE), None);
        let eicar = format!("{}:68:Allow.Eicar\n", md5_hex(&eicar_test_file()));
        let set2 = set_with(&[("a.fp", &eicar)]);
        assert_eq!(name(&set2, &eicar_test_file(), &FILE), None);
    }

    fn set_with(files: &[(&str, &str)]) -> SignatureSet {
        set(files)
    }

    #[test]
    fn ignore_by_line_md5() {
        let line = "Abc:0:*:414243444546";
        let right = format!("Abc:{}\n", md5_hex(line.as_bytes()));
        let set = set(&[("a.ndb", &format!("{line}\n")), ("a.ign2", &right)]);
        assert_eq!(name(&set, b"\0\0\0\0ABCDEF", &FILE), None);
        let set = set_with(&[
            ("a.ndb", &format!("{line}\n")),
            ("a.ign2", &format!("Abc:{}\n", "0".repeat(32))),
        ]);
        assert!(name(&set, b"\0\0\0\0ABCDEF", &FILE).is_some());
    }
}
