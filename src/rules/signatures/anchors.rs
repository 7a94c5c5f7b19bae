//! The anchor index: every signature's anchor (1 to `MAX_ANCHOR` bytes) as a bit in a
//! table addressed by the bytes themselves, with ranks that number the anchors, so
//! finding every anchor in a buffer is one table probe per position.
//!
//! An Aho-Corasick automaton gives the same answers, but for anchors this short its
//! states buy nothing: the table needs no build beyond setting bits (1,000,000
//! anchors load in milliseconds), has a fixed size (3 MiB for 3-byte anchors, however
//! many), and its scan loop is a few instructions per byte.

use std::ops::{ControlFlow, Range};

use aho_corasick::Span;
use aho_corasick::packed;

use super::body::MAX_ANCHOR;

/// Bits addressed by a key of up to 24 bits, with the number of set bits before
/// each word: a set bit's rank numbers its key among the keys of that length.
struct RankedBits {
    words: Vec<u64>,
    ranks: Vec<u32>,
}

impl RankedBits {
    fn new(keys: &[u32], bits: usize) -> RankedBits {
        let mut words = vec![0u64; bits.div_ceil(64)];
        for &key in keys {
            words[key as usize >> 6] |= 1 << (key & 63);
        }
        let mut ranks = Vec::with_capacity(words.len());
        let mut before = 0u32;
        for word in &words {
            ranks.push(before);
            before += word.count_ones();
        }
        RankedBits { words, ranks }
    }

    /// The rank of `key` among the set keys, if it is set.
    #[inline(always)]
    fn rank(&self, key: u32) -> Option<u32> {
        let word = self.words[key as usize >> 6];
        let bit = 1u64 << (key & 63);
        (word & bit != 0).then(|| self.ranks[key as usize >> 6] + (word & (bit - 1)).count_ones())
    }
}

/// One bit per pair of bytes, indexed `first | second << 8` (as a little-endian load
/// reads them): 8 KiB, so it stays in the L1 cache.
type PairBits = [u64; 1 << 10];

/// One table per anchor length; anchor ids count the 1-byte anchors first, then the
/// 2-byte and the 3-byte ones, each length in byte order.
pub(super) struct AnchorIndex {
    /// By length - 1; `None` when no anchor has that length.
    tables: [Option<RankedBits>; MAX_ANCHOR],
    /// Id of the first anchor of each length.
    bases: [u32; MAX_ANCHOR],
    /// The first two bytes of every 3-byte anchor: an 8 KiB filter that keeps most
    /// positions away from the 2 MiB table.
    long_prefixes: Option<Box<PairBits>>,
    /// Anchors were lower-cased and the scanned bytes are lower-cased too.
    nocase: bool,
    /// How runs of base64 text are searched: `Some(None)` when no anchor can occur
    /// in one (they are skipped), `Some(Some(searcher))` for the few anchors that
    /// can, `None` when too many can (runs are scanned like anything else).
    in_base64: Option<Option<packed::Searcher>>,
    /// For a set of few anchors (every case form counted), a SIMD searcher for them
    /// all: the positions it stops at are probed, the bytes between them are passed
    /// over at a fraction of a probe per byte. `None` for larger sets.
    few: Option<packed::Searcher>,
}

/// More anchors than this (each case form of an `::i` anchor counting as one), or
/// one shorter than two bytes, and the whole buffer is probed byte by byte: the SIMD
/// searcher holds 64 patterns and stops too often on single bytes.
const MAX_FEW_ANCHORS: usize = 64;

/// The searcher for every anchor of a small set (see `few`); `keys` as for
/// [`AnchorIndex::new`], lower-cased when `nocase`.
fn few_searcher(keys: &[u32], nocase: bool) -> Option<packed::Searcher> {
    if keys.len() > MAX_FEW_ANCHORS {
        return None;
    }
    let mut anchors: Vec<Vec<u8>> = Vec::new();
    for &key in keys {
        let len = (key >> 24) as usize;
        if len < 2 {
            return None;
        }
        let anchor = (key & 0xff_ffff).to_be_bytes()[4 - len..].to_vec();
        let mut forms = vec![anchor];
        if nocase {
            for at in 0..len {
                let upper: Vec<Vec<u8>> = forms
                    .iter()
                    .filter(|form| form[at].is_ascii_lowercase())
                    .map(|form| {
                        let mut form = form.clone();
                        form[at] = form[at].to_ascii_uppercase();
                        form
                    })
                    .collect();
                forms.extend(upper);
            }
        }
        anchors.extend(forms);
        if anchors.len() > MAX_FEW_ANCHORS {
            return None;
        }
    }
    packed::Config::new().builder().extend(&anchors).build()
}

/// More anchors made of base64 text than this, and runs of it are not worth
/// searching apart (the SIMD searcher's limit is 64 patterns).
const MAX_BASE64_ANCHORS: usize = 64;

/// The searcher for the anchors made of base64 text bytes (see `in_base64`).
fn base64_searcher(keys: &[u32]) -> Option<Option<packed::Searcher>> {
    let anchors: Vec<Vec<u8>> = keys
        .iter()
        .map(|&key| {
            let len = (key >> 24) as usize;
            (key & 0xff_ffff).to_be_bytes()[4 - len..].to_vec()
        })
        .filter(|anchor| anchor.iter().all(|&b| is_base64_text(b)))
        .take(MAX_BASE64_ANCHORS + 1)
        .collect();
    match anchors.len() {
        0 => Some(None),
        n if n <= MAX_BASE64_ANCHORS => packed::Config::new()
            .builder()
            .extend(&anchors)
            .build()
            .map(Some),
        _ => None,
    }
}

/// An anchor as a key: its length in the top byte, its bytes big-endian below, so
/// keys sort by length, then by bytes (the order of anchor ids).
pub(super) fn anchor_key(anchor: &[u8]) -> u32 {
    debug_assert!((1..=MAX_ANCHOR).contains(&anchor.len()));
    let bytes = anchor
        .iter()
        .fold(0, |value, &b| (value << 8) | u32::from(b));
    ((anchor.len() as u32) << 24) | bytes
}

impl AnchorIndex {
    /// The index of `keys` (from [`anchor_key`]), which must be sorted and distinct;
    /// anchor ids are then their positions in `keys`.
    pub(super) fn new(keys: &[u32], nocase: bool) -> AnchorIndex {
        let mut tables: [Option<RankedBits>; MAX_ANCHOR] = Default::default();
        let mut bases = [0u32; MAX_ANCHOR];
        let mut start = 0;
        for length in 1..=MAX_ANCHOR {
            bases[length - 1] = start as u32;
            let end = start + keys[start..].partition_point(|&key| key >> 24 == length as u32);
            if end > start {
                let values: Vec<u32> = keys[start..end].iter().map(|&k| k & 0xff_ffff).collect();
                tables[length - 1] = Some(RankedBits::new(&values, 1 << (8 * length)));
            }
            start = end;
        }
        debug_assert_eq!(start, keys.len(), "keys sorted, lengths 1..=MAX_ANCHOR");
        let long_prefixes = tables[MAX_ANCHOR - 1].as_ref().map(|_| {
            let mut bits = Box::new([0u64; 1 << 10]);
            for &key in keys.iter().filter(|&&key| key >> 24 == MAX_ANCHOR as u32) {
                let pair = (key >> 16) & 0xff | (key & 0xff00);
                bits[pair as usize >> 6] |= 1 << (pair & 63);
            }
            bits
        });
        AnchorIndex {
            tables,
            bases,
            long_prefixes,
            nocase,
            in_base64: if nocase { None } else { base64_searcher(keys) },
            few: few_searcher(keys, nocase),
        }
    }

    /// Calls `found(start, anchor id)` for every occurrence of every anchor in `buf`,
    /// overlapping ones included, by increasing start; stops when it says `Break`.
    pub(super) fn for_each_match(
        &self,
        buf: &[u8],
        mut found: impl FnMut(usize, u32) -> ControlFlow<()>,
    ) {
        let lower = |b: u8| b.to_ascii_lowercase();
        if let Some(searcher) = &self.few {
            let _ = if self.nocase {
                self.scan_where_found(buf, searcher, lower, &mut found)
            } else {
                self.scan_where_found(buf, searcher, |b| b, &mut found)
            };
            return;
        }
        if self.nocase {
            let _ = self.scan(buf, 0..buf.len(), lower, &mut found);
        } else {
            let _ = self.scan_skipping_base64(buf, &mut found);
        }
    }

    /// Probes only the positions where `searcher` finds an anchor, in order: the
    /// searcher reports the leftmost start, so searching again one byte further
    /// misses none, overlapping ones included.
    fn scan_where_found(
        &self,
        buf: &[u8],
        searcher: &packed::Searcher,
        fold: impl Fn(u8) -> u8,
        found: &mut impl FnMut(usize, u32) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let mut from = 0;
        while let Some(m) = searcher.find_in(buf, Span::from(from..buf.len())) {
            self.scan(buf, m.start()..m.start() + 1, &fold, found)?;
            from = m.start() + 1;
        }
        ControlFlow::Continue(())
    }

    /// Inside a run of base64 text (encoded attachments in a raw message) only the
    /// anchors made of base64 text bytes can start; with no such anchor the run is
    /// skipped, with a few it is searched for them alone (SIMD), and every position
    /// where one starts is probed as anywhere else.
    fn scan_skipping_base64(
        &self,
        buf: &[u8],
        found: &mut impl FnMut(usize, u32) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let identity = |b: u8| b;
        let Some(in_base64) = &self.in_base64 else {
            return self.scan(buf, 0..buf.len(), identity, found);
        };
        let mut next = 0;
        for run in base64_runs(buf) {
            self.scan(buf, next..run.start, identity, found)?;
            // Starts from here on read bytes past the run: probed in full.
            let inner_end = run.end - (MAX_ANCHOR - 1);
            if let Some(searcher) = in_base64 {
                let mut from = run.start;
                while let Some(m) = searcher.find_in(buf, Span::from(from..run.end)) {
                    if m.start() >= inner_end {
                        break;
                    }
                    self.scan(buf, m.start()..m.start() + 1, identity, found)?;
                    from = m.start() + 1;
                }
            }
            next = inner_end;
        }
        self.scan(buf, next..buf.len(), identity, found)
    }

    /// Reports the anchors starting in `starts` (reading up to `MAX_ANCHOR - 1` bytes
    /// past it), by increasing start.
    #[inline(always)]
    fn scan(
        &self,
        buf: &[u8],
        starts: Range<usize>,
        fold: impl Fn(u8) -> u8,
        found: &mut impl FnMut(usize, u32) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let [one, two, three] = &self.tables;
        let [base_one, base_two, base_three] = self.bases;
        let long = three.as_ref().zip(self.long_prefixes.as_ref());
        if one.is_none() && two.is_none() {
            let Some((three, prefixes)) = long else {
                return ControlFlow::Continue(());
            };
            // The common case, every anchor 3 bytes long: one filter probe per byte.
            let end = starts.end.min(buf.len().saturating_sub(MAX_ANCHOR - 1));
            if starts.start >= end {
                return ControlFlow::Continue(());
            }
            let window = &buf[starts.start..end + MAX_ANCHOR - 1];
            let mut report = |at: usize, key: u32| match three.rank(key) {
                Some(rank) => found(starts.start + at, base_three + rank),
                None => ControlFlow::Continue(()),
            };
            let mut at = 0;
            // Exact tables only: the unrolled loop reads the bytes unfolded.
            if !self.nocase {
                // Eight positions per step, without a branch until one passes the
                // filter: the filter bits of the 8 pairs are gathered into a mask.
                while at + 10 <= window.len() {
                    let bytes: [u8; 8] = window[at..at + 8].try_into().expect("8 bytes");
                    let word = u64::from_le_bytes(bytes);
                    let last_pair = (word >> 56) | u64::from(window[at + 8]) << 8;
                    let mut hits = 0u32;
                    for k in 0..8 {
                        let pair = if k < 7 {
                            (word >> (8 * k)) & 0xffff
                        } else {
                            last_pair
                        };
                        let bit = (prefixes[(pair >> 6) as usize & 1023] >> (pair & 63)) & 1;
                        hits |= (bit as u32) << k;
                    }
                    while hits != 0 {
                        let p = at + hits.trailing_zeros() as usize;
                        hits &= hits - 1;
                        let key = u32::from(window[p]) << 16
                            | u32::from(window[p + 1]) << 8
                            | u32::from(window[p + 2]);
                        report(p, key)?;
                    }
                    at += 8;
                }
            }
            let rest = &window[at..];
            let triples = rest.iter().zip(&rest[1..]).zip(&rest[2..]);
            for (p, ((&first, &second), &third)) in (at..).zip(triples) {
                let (first, second) = (u32::from(fold(first)), u32::from(fold(second)));
                let pair = first | second << 8;
                if prefixes[pair as usize >> 6] & (1 << (pair & 63)) != 0 {
                    report(p, first << 16 | second << 8 | u32::from(fold(third)))?;
                }
            }
            return ControlFlow::Continue(());
        }
        for at in starts {
            let byte = |offset: usize| buf.get(at + offset).map(|&b| u32::from(fold(b)));
            let Some(first) = byte(0) else {
                break;
            };
            if let Some(one) = one
                && let Some(rank) = one.rank(first)
            {
                found(at, base_one + rank)?;
            }
            let Some(second) = byte(1) else {
                continue;
            };
            let pair = first << 8 | second;
            if let Some(two) = two
                && let Some(rank) = two.rank(pair)
            {
                found(at, base_two + rank)?;
            }
            let filter_pair = first | second << 8;
            if let Some((three, prefixes)) = long
                && prefixes[filter_pair as usize >> 6] & (1 << (filter_pair & 63)) != 0
                && let Some(third) = byte(2)
                && let Some(rank) = three.rank(pair << 8 | third)
            {
                found(at, base_three + rank)?;
            }
        }
        ControlFlow::Continue(())
    }
}

/// Bytes of base64 text: the alphabet, padding and line breaks.
fn is_base64_text(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\r' | b'\n')
}

/// Blocks in which base64 runs are looked for; a run is two blocks or more.
const BASE64_BLOCK: usize = 64;

/// The runs of whole blocks holding base64 text only. The check of a block is
/// branch-free, so the compiler vectorises it.
fn base64_runs(buf: &[u8]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for (index, block) in buf.chunks_exact(BASE64_BLOCK).enumerate() {
        if !block.iter().fold(true, |all, &b| all & is_base64_text(b)) {
            continue;
        }
        let start = index * BASE64_BLOCK;
        match runs.last_mut() {
            Some(run) if run.end == start => run.end += BASE64_BLOCK,
            _ => runs.push(start..start + BASE64_BLOCK),
        }
    }
    runs.retain(|run| run.len() >= 2 * BASE64_BLOCK);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (start, anchor) pair, found the slow way.
    fn naive(anchors: &[&[u8]], buf: &[u8], nocase: bool) -> Vec<(usize, Vec<u8>)> {
        let fold = |b: &[u8]| {
            if nocase {
                b.to_ascii_lowercase()
            } else {
                b.to_vec()
            }
        };
        let mut hits = Vec::new();
        for at in 0..buf.len() {
            for anchor in anchors {
                if buf.len() - at >= anchor.len() && fold(&buf[at..at + anchor.len()]) == *anchor {
                    hits.push((at, anchor.to_vec()));
                }
            }
        }
        hits.sort();
        hits
    }

    fn indexed(anchors: &[&[u8]], buf: &[u8], nocase: bool) -> Vec<(usize, Vec<u8>)> {
        let mut sorted: Vec<(u32, &[u8])> = anchors.iter().map(|a| (anchor_key(a), *a)).collect();
        sorted.sort();
        sorted.dedup();
        let keys: Vec<u32> = sorted.iter().map(|&(key, _)| key).collect();
        let mut index = AnchorIndex::new(&keys, nocase);
        let scan = |index: &AnchorIndex| {
            let mut hits = Vec::new();
            index.for_each_match(buf, |at, id| {
                hits.push((at, sorted[id as usize].1.to_vec()));
                ControlFlow::Continue(())
            });
            hits
        };
        let mut hits = scan(&index);
        // The byte-by-byte probe, which sets of many anchors get, finds the same.
        let searched = index.few.take().is_some();
        if searched {
            assert_eq!(scan(&index), hits, "searched and probed alike");
        }
        let starts: Vec<usize> = hits.iter().map(|&(at, _)| at).collect();
        assert!(starts.is_sorted(), "by increasing start");
        hits.sort();
        hits
    }

    #[test]
    fn keys_sort_by_length_then_bytes() {
        assert_eq!(anchor_key(b"A"), 0x0100_0041);
        assert_eq!(anchor_key(b"AB"), 0x0200_4142);
        assert_eq!(anchor_key(b"ABC"), 0x0341_4243);
        assert!(anchor_key(b"\xff") < anchor_key(b"\0\0"));
    }

    #[test]
    fn finds_every_occurrence_of_every_length() {
        let buf = b"abcabcab\0\xffxyzzyABC ab";
        for anchors in [
            vec![&b"abc"[..], b"bca", b"yzz", b"\xffxy"],
            vec![&b"a"[..], b"ab", b"abc", b"b", b"zy", b"\0"],
            vec![&b"ab"[..]],
            vec![&b"b"[..]],
        ] {
            for nocase in [false, true] {
                assert_eq!(
                    indexed(&anchors, buf, nocase),
                    naive(&anchors, buf, nocase),
                    "{anchors:?} nocase {nocase}"
                );
            }
        }
    }

    #[test]
    fn short_buffers_and_the_end_of_the_buffer() {
        let anchors = [&b"x"[..], b"xy", b"xyz"];
        for buf in [&b""[..], b"x", b"xy", b"xyz", b"axyz", b"zxy"] {
            assert_eq!(indexed(&anchors, buf, false), naive(&anchors, buf, false));
        }
        assert_eq!(indexed(&[b"xyz"], b"xy", false), vec![]);
    }

    #[test]
    fn break_stops_the_scan() {
        let index = AnchorIndex::new(&[anchor_key(b"aaa")], false);
        let mut seen = 0;
        index.for_each_match(b"aaaaaaaa", |_, _| {
            seen += 1;
            if seen == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(seen, 2);
    }

    #[test]
    fn base64_runs_are_skipped_or_searched_without_losing_a_match() {
        let line = b"QUJD+/09azAx\r\n".repeat(40);
        let mut buf = b"head \x01\x02\x03 ".to_vec();
        buf.extend_from_slice(&line);
        buf.extend_from_slice(b"\x01\x02\x03 tail Q");
        assert!(!base64_runs(&buf).is_empty());
        // No anchor of base64 text: the runs are skipped.
        let binary: [&[u8]; 2] = [b"\x01\x02\x03", b"\n\x01\x02"];
        assert_eq!(indexed(&binary, &buf, false), naive(&binary, &buf, false));
        // A few: searched apart, including across the end of a run.
        let text: [&[u8]; 4] = [b"QUJ", b"\r\nQ", b"09a", b"\n\x01\x02"];
        assert_eq!(indexed(&text, &buf, false), naive(&text, &buf, false));
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_naive_search_on_base64_text(
            anchors in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(b"AB=\n\x01".to_vec()), 1..=3),
                1..8,
            ),
            buf in proptest::collection::vec(
                proptest::prop_oneof![
                    60 => proptest::sample::select(b"AB=\r\n".to_vec()),
                    1 => proptest::sample::select(b"\x01 ".to_vec()),
                ],
                0..800,
            ),
        ) {
            let mut anchors: Vec<&[u8]> = anchors.iter().map(Vec::as_slice).collect();
            anchors.sort();
            anchors.dedup();
            proptest::prop_assert_eq!(indexed(&anchors, &buf, false), naive(&anchors, &buf, false));
        }

        #[test]
        fn agrees_with_the_naive_search_in_any_case(
            anchors in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(b"abc1".to_vec()), 2..=3),
                1..8,
            ),
            buf in proptest::collection::vec(proptest::sample::select(b"abcABC1 ".to_vec()), 0..100),
            nocase in proptest::prelude::any::<bool>(),
        ) {
            let mut anchors: Vec<&[u8]> = anchors.iter().map(Vec::as_slice).collect();
            anchors.sort();
            anchors.dedup();
            proptest::prop_assert_eq!(indexed(&anchors, &buf, nocase), naive(&anchors, &buf, nocase));
        }

        #[test]
        fn agrees_with_the_naive_search(
            anchors in proptest::collection::vec(proptest::collection::vec(0u8..4, 1..=3), 1..8),
            buf in proptest::collection::vec(0u8..4, 0..64),
        ) {
            let mut anchors: Vec<&[u8]> = anchors.iter().map(Vec::as_slice).collect();
            anchors.sort();
            anchors.dedup();
            proptest::prop_assert_eq!(indexed(&anchors, &buf, false), naive(&anchors, &buf, false));
        }
    }
}
