//! Verification of a candidate the automaton found: the anchor's segment is matched
//! around the anchor, the segments before and after it leftmost-first, all within a
//! step budget per object (`VERIFY_BUDGET`), so `*`-heavy patterns stay bounded.

use super::body::{AssertKind, Elem, Offset, Pattern, Side, UNBOUNDED, VERIFY_BUDGET, fixed_len};

/// Per-object memo of segment chains for one pattern (see `verify`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Memo {
    /// Earliest end of segments `0..j` for the anchor's segment `j`, once computed.
    prefix_end: Option<Option<usize>>,
    /// Suffix chain: succeeded from every start `<= ok_from`, failed from `>= fail_from`.
    suffix_ok: Option<usize>,
    suffix_fail: Option<usize>,
    budget: u32,
    used: bool,
}

struct Ctx<'a> {
    p: &'a Pattern,
    data: &'a [u8],
    budget: &'a mut u32,
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// ClamAV's boundary table for `(B)`: 1 may precede a word, 2 may follow it, 3 both.
fn boundary_class(b: u8) -> u8 {
    match b {
        b' ' | b'-' | b'/' | b'_' => 3,
        b'.' | b'<' | b'@' => 1,
        b'\n' | b'\r' | b'"' | b'\'' | b'=' | b'>' => 2,
        _ => 0,
    }
}

fn assertion_holds(kind: AssertKind, side: Side, data: &[u8], pos: usize) -> bool {
    match side {
        Side::Left => {
            if pos == 0 {
                return true;
            }
            let prev = data[pos - 1];
            match kind {
                AssertKind::Boundary => matches!(boundary_class(prev), 1 | 3),
                AssertKind::Line => prev == b'\n',
                AssertKind::NonAlnum => !is_alnum(prev),
            }
        }
        Side::Right => {
            let Some(&next) = data.get(pos) else {
                return true;
            };
            match kind {
                AssertKind::Boundary => boundary_class(next) >= 2,
                AssertKind::Line => {
                    next == b'\n' || (next == b'\r' && data.get(pos + 1) == Some(&b'\n'))
                }
                AssertKind::NonAlnum => !is_alnum(next),
            }
        }
    }
}

impl<'a> Ctx<'a> {
    fn spend(&mut self, n: u32) -> bool {
        if *self.budget < n {
            *self.budget = 0;
            return false;
        }
        *self.budget -= n;
        true
    }

    fn lit_eq(&self, off: u32, len: u32, at: usize) -> bool {
        let pat = &self.p.lits[off as usize..(off + len) as usize];
        let Some(data) = self.data.get(at..at + len as usize) else {
            return false;
        };
        if self.p.nocase {
            pat.eq_ignore_ascii_case(data)
        } else {
            pat == data
        }
    }

    /// Length of a fixed alternative matching at `at`, if it does.
    fn simple_at(&mut self, elems: &[Elem], at: usize) -> Option<usize> {
        let mut pos = at;
        for e in elems {
            match *e {
                Elem::Lit { off, len } => {
                    if !self.lit_eq(off, len, pos) {
                        return None;
                    }
                    pos += len as usize;
                }
                Elem::Masked { value, mask } => {
                    if self.data.get(pos)? & mask != value {
                        return None;
                    }
                    pos += 1;
                }
                Elem::Gap { min, .. } => {
                    pos += min as usize;
                    if pos > self.data.len() {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        Some(pos - at)
    }

    /// Walks `elems` forward from `pos`, calling `done(end)` at each way to match
    /// them all; stops when `done` returns true. Returns whether it stopped.
    fn forward(&mut self, elems: &[Elem], pos: usize, done: &mut dyn FnMut(usize) -> bool) -> bool {
        if !self.spend(1) {
            return false;
        }
        let Some((first, rest)) = elems.split_first() else {
            return done(pos);
        };
        match *first {
            Elem::Lit { off, len } => {
                self.lit_eq(off, len, pos) && self.forward(rest, pos + len as usize, done)
            }
            Elem::Masked { value, mask } => {
                matches!(self.data.get(pos), Some(&b) if b & mask == value)
                    && self.forward(rest, pos + 1, done)
            }
            Elem::Class(c) => {
                let set = &self.p.classes()[c as usize];
                matches!(self.data.get(pos), Some(&b) if set[b as usize / 8] & (1 << (b % 8)) != 0)
                    && self.forward(rest, pos + 1, done)
            }
            Elem::Alt(a) => {
                let p: &'a Pattern = self.p;
                let alt = &p.alts()[a as usize];
                if alt.negated {
                    let len = fixed_len(&alt.choices[0]).unwrap_or(1) as usize;
                    if pos + len > self.data.len() {
                        return false;
                    }
                    if alt.choices.iter().any(|c| self.simple_at(c, pos).is_some()) {
                        return false;
                    }
                    return self.forward(rest, pos + len, done);
                }
                for choice in &alt.choices {
                    if let Some(len) = self.simple_at(choice, pos)
                        && self.forward(rest, pos + len, done)
                    {
                        return true;
                    }
                }
                false
            }
            Elem::Gap { min, max } => {
                let lo = pos.saturating_add(min as usize);
                let hi = if max == UNBOUNDED {
                    self.data.len()
                } else {
                    pos.saturating_add(max as usize).min(self.data.len())
                };
                // Stop trying positions once the budget is spent: a huge range must
                // not keep looping after verification has given up.
                (lo..=hi).any(|next| {
                    *self.budget > 0 && next <= self.data.len() && self.forward(rest, next, done)
                })
            }
            Elem::Assert {
                kind,
                side,
                negated,
            } => {
                assertion_holds(kind, side, self.data, pos) != negated
                    && self.forward(rest, pos, done)
            }
        }
    }

    /// Walks `elems` backwards so that they end at `pos`; `done(start)` as above.
    fn backward(
        &mut self,
        elems: &[Elem],
        pos: usize,
        done: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        if !self.spend(1) {
            return false;
        }
        let Some((last, rest)) = elems.split_last() else {
            return done(pos);
        };
        match *last {
            Elem::Lit { off, len } => {
                pos >= len as usize
                    && self.lit_eq(off, len, pos - len as usize)
                    && self.backward(rest, pos - len as usize, done)
            }
            Elem::Masked { value, mask } => {
                pos >= 1 && self.data[pos - 1] & mask == value && self.backward(rest, pos - 1, done)
            }
            Elem::Class(c) => {
                let set = &self.p.classes()[c as usize];
                pos >= 1
                    && {
                        let b = self.data[pos - 1];
                        set[b as usize / 8] & (1 << (b % 8)) != 0
                    }
                    && self.backward(rest, pos - 1, done)
            }
            Elem::Alt(a) => {
                let p: &'a Pattern = self.p;
                let alt = &p.alts()[a as usize];
                if alt.negated {
                    let len = fixed_len(&alt.choices[0]).unwrap_or(1) as usize;
                    if pos < len
                        || alt
                            .choices
                            .iter()
                            .any(|c| self.simple_at(c, pos - len).is_some())
                    {
                        return false;
                    }
                    return self.backward(rest, pos - len, done);
                }
                for choice in &alt.choices {
                    let Some(len) = fixed_len(choice) else {
                        continue;
                    };
                    let len = len as usize;
                    if pos >= len
                        && self.simple_at(choice, pos - len) == Some(len)
                        && self.backward(rest, pos - len, done)
                    {
                        return true;
                    }
                }
                false
            }
            Elem::Gap { min, max } => {
                let Some(hi) = pos.checked_sub(min as usize) else {
                    return false;
                };
                let lo = if max == UNBOUNDED {
                    0
                } else {
                    pos.saturating_sub(max as usize)
                };
                (lo..=hi)
                    .rev()
                    .any(|next| *self.budget > 0 && self.backward(rest, next, done))
            }
            Elem::Assert {
                kind,
                side,
                negated,
            } => {
                assertion_holds(kind, side, self.data, pos) != negated
                    && self.backward(rest, pos, done)
            }
        }
    }

    /// Earliest start `>= from` (and `<= until`) where `seg` matches; with its
    /// earliest end.
    fn find_segment(&mut self, seg: &[Elem], from: usize, until: usize) -> Option<(usize, usize)> {
        let until = until.min(self.data.len());
        let mut start = from;
        while start <= until {
            // Jump to the next place the leading static run occurs.
            if let Some(Elem::Lit { off, len }) = seg.first() {
                let needle = &self.p.lits[*off as usize..(*off + *len) as usize];
                let hay = &self.data[start.min(self.data.len())..];
                let found = if self.p.nocase {
                    hay.windows(needle.len())
                        .position(|w| w.eq_ignore_ascii_case(needle))
                } else {
                    memchr::memmem::find(hay, needle)
                };
                match found {
                    Some(p) if start + p <= until => start += p,
                    _ => return None,
                }
            }
            let mut best: Option<usize> = None;
            self.forward(seg, start, &mut |end| {
                best = Some(best.map_or(end, |b: usize| b.min(end)));
                false
            });
            if let Some(end) = best {
                return Some((start, end));
            }
            if *self.budget == 0 {
                return None;
            }
            start += 1;
        }
        None
    }
}

/// Segment boundaries: element ranges between unbounded gaps, and the minimum of each
/// unbounded gap before segment `k` (`gaps[k]`, 0 for the first).
fn segments(elems: &[Elem]) -> (Vec<(usize, usize)>, Vec<usize>) {
    let mut segs = Vec::new();
    let mut gaps = vec![0];
    let mut start = 0;
    for (i, e) in elems.iter().enumerate() {
        if let Elem::Gap {
            min,
            max: UNBOUNDED,
        } = *e
        {
            segs.push((start, i));
            gaps.push(min as usize);
            start = i + 1;
        }
    }
    segs.push((start, elems.len()));
    (segs, gaps)
}

impl Pattern {
    /// Checks whether the pattern matches `data` with its anchor (element `anchor_elem`)
    /// starting at `at`, its start allowed by `offset`. Returns the match end.
    ///
    /// The segment holding the anchor is matched around it; the segments before it must
    /// match, leftmost first, before it (their earliest end is memoised per object), and
    /// the segments after it must match after it (memoised as monotone bounds). Every
    /// step counts against `VERIFY_BUDGET` per object and pattern.
    pub(crate) fn verify(
        &self,
        data: &[u8],
        offset: Offset,
        anchor_elem: usize,
        at: usize,
        memo: &mut Memo,
    ) -> Option<usize> {
        if !memo.used {
            memo.used = true;
            memo.budget = VERIFY_BUDGET;
        }
        if memo.budget == 0 {
            return None;
        }
        let (lo, hi) = offset.window(data.len())?;
        let (segs, gaps) = segments(&self.elems);
        let j = segs
            .iter()
            .position(|&(s, e)| (s..e).contains(&anchor_elem))?;
        let (seg_start, seg_end) = segs[j];
        let mut budget = memo.budget;
        let mut ctx = Ctx {
            p: self,
            data,
            budget: &mut budget,
        };

        // The anchor's segment: its possible starts (backwards) and ends (forwards).
        let mut starts: Vec<usize> = Vec::new();
        ctx.backward(&self.elems[seg_start..anchor_elem], at, &mut |s| {
            starts.push(s);
            false
        });
        let mut min_end: Option<usize> = None;
        let need_end_any = j + 1 == segs.len();
        ctx.forward(&self.elems[anchor_elem..seg_end], at, &mut |e| {
            min_end = Some(min_end.map_or(e, |m: usize| m.min(e)));
            need_end_any
        });
        let result = (|| {
            let end = min_end?;
            // Before: the first segment's start must be in the offset window.
            if j == 0 {
                starts.iter().find(|&&s| s >= lo && s <= hi)?;
            } else {
                let prefix_end = match memo.prefix_end {
                    Some(v) => v,
                    None => {
                        let mut from = lo;
                        let mut until = hi;
                        let mut end = None;
                        for (k, &(s, e)) in segs[..j].iter().enumerate() {
                            match ctx.find_segment(&self.elems[s..e], from, until) {
                                Some((_, seg_end)) => {
                                    end = Some(seg_end);
                                    from = seg_end + gaps[k + 1];
                                    until = data.len();
                                }
                                None => {
                                    end = None;
                                    break;
                                }
                            }
                        }
                        memo.prefix_end = Some(end);
                        end
                    }
                };
                let need = prefix_end? + gaps[j];
                starts.iter().find(|&&s| s >= need)?;
            }
            // After: the remaining segments, leftmost first.
            if j + 1 == segs.len() {
                return Some(end);
            }
            let from = end + gaps[j + 1];
            if memo.suffix_ok.is_some_and(|ok| from <= ok) {
                return Some(end);
            }
            if memo.suffix_fail.is_some_and(|fail| from >= fail) {
                return None;
            }
            let mut pos = from;
            let mut last_end = end;
            for (k, &(s, e)) in segs.iter().enumerate().skip(j + 1) {
                match ctx.find_segment(&self.elems[s..e], pos, data.len()) {
                    Some((_, seg_end)) => {
                        last_end = seg_end;
                        pos = seg_end + gaps.get(k + 1).copied().unwrap_or(0);
                    }
                    None => {
                        if *ctx.budget > 0 {
                            memo.suffix_fail = Some(memo.suffix_fail.map_or(from, |f| f.min(from)));
                        }
                        return None;
                    }
                }
            }
            memo.suffix_ok = Some(memo.suffix_ok.map_or(from, |o| o.max(from)));
            Some(last_end)
        })();
        memo.budget = budget;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(body: &str, offset: &str, data: &[u8]) -> bool {
        let p = Pattern::parse(body).unwrap();
        let offset = Offset::parse(offset).unwrap();
        let (bytes, elem, skip) = p.anchor().unwrap();
        let bytes = bytes.to_vec();
        let mut memo = Memo::default();
        let mut from = 0;
        while let Some(found) = memchr::memmem::find(&data[from..], &bytes) {
            if let Some(at) = (from + found).checked_sub(skip)
                && p.verify(data, offset, elem, at, &mut memo).is_some()
            {
                return true;
            }
            from += found + 1;
        }
        false
    }

    #[test]
    fn static_bytes_any_case_hex() {
        assert!(matches("414243", "*", b"xxABCxx"));
        assert!(matches("6162CD", "*", b"ab\xcd"));
        assert!(!matches("414243", "*", b"xxABxCxx"));
    }

    #[test]
    fn nibbles_and_any_byte() {
        assert!(matches("4142??44", "*", b"ABzD"));
        assert!(matches("41424?", "*", b"ABO"));
        assert!(!matches("41424?", "*", b"AB0"));
        assert!(matches("4142?3", "*", b"ABs"));
        assert!(!matches("4142?3", "*", b"ABt"));
    }

    #[test]
    fn star_parts_do_not_overlap() {
        assert!(!matches("414142424343*43434444", "*", b"AABBCCDD"));
        assert!(matches("414142424343*43434444", "*", b"AABBCC--CCDD"));
        assert!(matches("4142*4344*4546", "*", b"AB..CD..EF"));
        assert!(!matches("4142*4344*4546", "*", b"AB..EF..CD"));
    }

    #[test]
    fn ranges_as_measured() {
        let with = |n: usize| [b"XYZ".to_vec(), vec![b'-'; n], b"QRS".to_vec()].concat();
        for (n, expect) in [(9, false), (10, true), (20, true), (21, false)] {
            assert_eq!(
                matches("58595a{10-20}515253", "*", &with(n)),
                expect,
                "{{10-20}} n={n}"
            );
        }
        assert!(matches("58595a{-9}515253", "*", &with(0)));
        assert!(matches("58595a{-9}515253", "*", &with(9)));
        assert!(!matches("58595a{-9}515253", "*", &with(10)));
        assert!(matches("58595a{20-}515253", "*", &with(21)));
        assert!(!matches("58595a{20-}515253", "*", &with(19)));
        assert!(matches("58595a{9}515253", "*", &with(9)));
        assert!(!matches("58595a{9}515253", "*", &with(8)));
        assert!(matches(
            "4142434445464748[8-12]5a",
            "*",
            b"ABCDEFGH0123456789Z"
        ));
        assert!(!matches("4142434445464748[8-12]5a", "*", b"ABCDEFGH0123Z"));
    }

    #[test]
    fn alternations() {
        assert!(matches("4748(62|63)494a", "*", b"GHbIJ"));
        assert!(!matches("4748(62|63)494a", "*", b"GHdIJ"));
        assert!(matches("4748!(63|64)494a", "*", b"GHbIJ"));
        assert!(!matches("4748!(63|64)494a", "*", b"GHdIJ"));
        assert!(matches("4d4e(61616161|62626262)4f50", "*", b"MNbbbbOP"));
        assert!(!matches("4d4e(61616161|62626262)4f50", "*", b"MNbbbaOP"));
        assert!(matches("4d4e!(61616161|62626262)4f50", "*", b"MNbbbaOP"));
        assert!(matches("5556(78797a|71)5758", "*", b"UVxyzWX"));
        assert!(matches("5556(78797a|71)5758", "*", b"UVqWX"));
        assert!(matches("5556(78??7a|71)5758", "*", b"UVx-zWX"));
        assert!(!matches("5556(78797a|71)5758", "*", b"UVxyWX"));
    }

    #[test]
    fn offsets_absolute_floating_and_eof() {
        assert!(matches("4b4c4d", "4", b"0123KLM"));
        assert!(!matches("4b4c4d", "4", b"01234KLM"));
        assert!(matches("4b4c4d", "4,3", b"0123456KLM"));
        assert!(!matches("4b4c4d", "4,3", b"01234567KLM"));
        assert!(matches("545556", "EOF-5", b"..TUV12"));
        assert!(!matches("545556", "EOF-5", b"..TUV123"));
        assert!(matches("53544152*46495348", "0", b"STAR....FISH"));
        assert!(!matches("53544152*46495348", "0", b".STAR....FISH"));
        // The anchor is in the second part; the first must still start at 0.
        assert!(matches("5354*4649534845525321", "0", b"ST....FISHERS!"));
        assert!(!matches("5354*4649534845525321", "0", b".ST....FISHERS!"));
    }

    #[test]
    fn boundaries_at_the_edges() {
        assert!(matches("(B)776f72643939(B)", "*", b" word99 "));
        assert!(!matches("(B)776f72643939(B)", "*", b"aword99 "));
        assert!(matches("(B)776f72643939(B)", "*", b"word99"));
        assert!(matches("(L)6c696e6537(L)", "*", b"\nline7\r\n"));
        assert!(!matches("(L)6c696e6537(L)", "*", b"xline7\r\n"));
        assert!(matches("5778(W)", "*", b"Wx!"));
        assert!(!matches("5778(W)", "*", b"Wxa"));
        assert!(matches("5778(W)", "*", b"Wx"));
        assert!(!matches("!(W)5778", "*", b" Wx"));
    }

    #[test]
    fn nocase_wide_and_fullword() {
        let mut p = Pattern::parse("68656c6c6f").unwrap();
        p.nocase = true;
        let mut memo = Memo::default();
        assert!(p.verify(b"xHeLLo", Offset::Any, 0, 1, &mut memo).is_some());
        let wide = Pattern::parse("414243").unwrap().widen();
        assert_eq!(wide.anchor().unwrap().0, b"A\0B");
        let mut full = Pattern::parse("776f7264").unwrap();
        full.fullword();
        let mut memo = Memo::default();
        assert!(
            full.verify(b" word ", Offset::Any, 1, 1, &mut memo)
                .is_some()
        );
        let mut memo = Memo::default();
        assert!(
            full.verify(b"swords", Offset::Any, 1, 1, &mut memo)
                .is_none()
        );
    }

    #[test]
    fn huge_ranges_stay_bounded() {
        let p = Pattern::parse("4141{0-4000000000}4242{0-4000000000}4343").unwrap();
        let data = [b"AA".to_vec(), vec![b'B'; 3_000_000]].concat();
        let mut memo = Memo::default();
        let started = std::time::Instant::now();
        assert!(p.verify(&data, Offset::Any, 0, 0, &mut memo).is_none());
        assert!(started.elapsed().as_secs() < 5);
    }

    #[test]
    fn star_heavy_patterns_stay_bounded() {
        let body = (0..40).map(|_| "4141").collect::<Vec<_>>().join("*") + "*4242";
        let p = Pattern::parse(&body).unwrap();
        let data = vec![b'A'; 200_000];
        let (_, elem, _) = p.anchor().unwrap();
        let mut memo = Memo::default();
        let started = std::time::Instant::now();
        for at in (0..data.len() - 2).step_by(997) {
            assert!(p.verify(&data, Offset::Any, elem, at, &mut memo).is_none());
        }
        assert!(started.elapsed().as_secs() < 5);
    }
}
