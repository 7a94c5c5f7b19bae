//! Body patterns: the hex format shared by ClamAV `.ndb` bodies, `.ldb` subsignatures and
//! `sig` lines of `virus.vdl`. Parsing, ClamAV 1.4.6's load-time checks, the anchor that
//! goes into the anchor index, and bounded verification of a candidate the index found.

use std::fmt;

use crate::rules::byte_word::{HEX_VALUES, hex_value};

/// Upper bound of one pattern's verification work on one object, in element steps.
/// Bounded ranges (`{n-m}`, `[x-y]`) and variable-length alternations branch; when the
/// budget is spent the candidate counts as no match (see `vdl/README.md`).
pub(crate) const VERIFY_BUDGET: u32 = 1 << 20;

/// Length of the anchor put into the anchor index: a window of the longest static run
/// (the rest is checked by verification). Short anchors keep the index a fixed-size
/// bit table (3 bytes: 2 MiB of bits, any number of signatures); ClamAV's own
/// Boyer-Moore matcher also works on 3-byte prefixes.
pub(crate) const MAX_ANCHOR: usize = 3;

/// `max` of an unbounded gap (`*`, `{n-}`).
pub(super) const UNBOUNDED: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Left,
    Right,
}

/// Zero-width checks at the very start or end of a pattern: `(B)`, `(L)`, `(W)`
/// (and the `::f` modifier, which is `(W)` on both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AssertKind {
    Boundary,
    Line,
    NonAlnum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elem {
    /// A static run, `lits[off..off + len]`.
    Lit { off: u32, len: u32 },
    /// `??` (mask 0), `a?` (mask f0), `?a` (mask 0f).
    Masked { value: u8, mask: u8 },
    /// One byte out of a set: `(aa|bb)` and `!(aa|bb)`; index into `classes`.
    Class(u32),
    /// Multi-byte or generic alternation; index into `alts`.
    Alt(u32),
    /// Any `min..=max` bytes: `{n}`, `{n-m}`, `{-n}`, `[x-y]`; `max == UNBOUNDED` for
    /// `*` and `{n-}`, which split the pattern into segments.
    Gap { min: u32, max: u32 },
    Assert {
        kind: AssertKind,
        side: Side,
        negated: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Alternation {
    pub(super) negated: bool,
    /// Each alternative holds only `Lit`, `Masked` and fixed `Gap`s.
    pub(super) choices: Vec<Vec<Elem>>,
}

/// A parsed body pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    pub(super) lits: Box<[u8]>,
    pub(super) elems: Box<[Elem]>,
    /// Few patterns have classes, alternations or `[x-y]` gaps; boxed apart, they cost
    /// the rest one pointer (a million-signature set holds each pattern several times
    /// while it loads).
    rare: Option<Box<RareParts>>,
    /// `::i`: static bytes compare ASCII case-insensitively.
    pub(crate) nocase: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RareParts {
    classes: Vec<[u8; 32]>,
    alts: Vec<Alternation>,
    /// Element indexes of `[x-y]` gaps, which never split a pattern into parts.
    brackets: Vec<u16>,
}

/// Where a signature may start: ClamAV's offset field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offset {
    Any,
    Abs { start: u64, shift: u64 },
    Eof { back: u64, shift: u64 },
}

impl Offset {
    /// Parses `*`, `n`, `EOF-n`, each optionally `,maxshift`. `Err(true)` marks the
    /// executable-relative forms (`EP+n`, `Sx+n`, `SEx`, `SL+n`, `VI`) and macro groups
    /// (`$n`), which ClamAV knows but SIE cannot honour; `Err(false)` is invalid text.
    pub(crate) fn parse(text: &str) -> Result<Offset, bool> {
        if text == "*" {
            return Ok(Offset::Any);
        }
        let (base, shift) = match text.split_once(',') {
            Some((base, shift)) => (base, parse_u64(shift).ok_or(false)?),
            None => (text, 0),
        };
        if let Some(back) = base.strip_prefix("EOF-") {
            return Ok(Offset::Eof {
                back: parse_u64(back).ok_or(false)?,
                shift,
            });
        }
        if base.starts_with("EP")
            || base.starts_with("SL")
            || base.starts_with("SE")
            || base.starts_with('S')
            || base.starts_with("VI")
            || base.starts_with('$')
        {
            return Err(true);
        }
        Ok(Offset::Abs {
            start: parse_u64(base).ok_or(false)?,
            shift,
        })
    }

    pub(crate) fn is_relative(self) -> bool {
        matches!(self, Offset::Eof { .. })
    }

    /// Allowed start positions in data of length `len`, or `None` when none can fit.
    pub(super) fn window(self, len: usize) -> Option<(usize, usize)> {
        let len = len as u64;
        let (lo, shift) = match self {
            Offset::Any => return Some((0, len as usize)),
            Offset::Abs { start, shift } => (start, shift),
            Offset::Eof { back, shift } => (len.checked_sub(back)?, shift),
        };
        if lo > len {
            return None;
        }
        Some((lo as usize, lo.saturating_add(shift).min(len) as usize))
    }
}

fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_u32(text: &str) -> Option<u32> {
    parse_u64(text).and_then(|n| u32::try_from(n).ok())
}

/// Why a body could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// ClamAV refuses the database over this (we follow it).
    Rejected(String),
    /// ClamAV accepts it but SIE does not implement it.
    Unsupported(String),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Rejected(m) | BodyError::Unsupported(m) => f.write_str(m),
        }
    }
}

fn rejected<T>(message: impl Into<String>) -> Result<T, BodyError> {
    Err(BodyError::Rejected(message.into()))
}

/// Decodes `text`, two hex digits a byte, into `out`, which must be half as long.
/// Returns false for a length mismatch or a byte that is not a hex digit.
pub(crate) fn decode_hex(text: &[u8], out: &mut [u8]) -> bool {
    if text.len() != 2 * out.len() {
        return false;
    }
    // OR-ing the looked-up values keeps the loop branch-free: any non-digit sets the
    // high bits (0xff) and fails the whole text at the end.
    let mut bad = 0;
    for (pair, byte) in text.chunks_exact(2).zip(out.iter_mut()) {
        let (hi, lo) = (
            HEX_VALUES[usize::from(pair[0])],
            HEX_VALUES[usize::from(pair[1])],
        );
        bad |= hi | lo;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    bad < 16
}

/// How common a byte is in files, for choosing anchors: NUL and 0xff most, then
/// space and letters.
static COMMONNESS: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = match b {
            0 | 0xff => 3,
            b' ' | b'a'..=b'z' | b'A'..=b'Z' => 1,
            _ => 0,
        };
        byte += 1;
    }
    table
};

/// Builds a pattern element by element, merging adjacent static bytes.
#[derive(Default)]
struct Builder {
    lits: Vec<u8>,
    elems: Vec<Elem>,
    classes: Vec<[u8; 32]>,
    alts: Vec<Alternation>,
    brackets: Vec<u16>,
}

fn push_byte(lits: &mut Vec<u8>, elems: &mut Vec<Elem>, byte: u8) {
    if let Some(Elem::Lit { off, len }) = elems.last_mut()
        && (*off + *len) as usize == lits.len()
    {
        *len += 1;
        lits.push(byte);
        return;
    }
    elems.push(Elem::Lit {
        off: lits.len() as u32,
        len: 1,
    });
    lits.push(byte);
}

/// Parses a run of plain tokens (hex pairs, nibbles, `??`, `{n}`) as used inside
/// a generic alternation.
fn parse_simple(text: &[u8], lits: &mut Vec<u8>, out: &mut Vec<Elem>) -> Result<(), BodyError> {
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'{' {
            let close = text[i..].iter().position(|&c| c == b'}').map(|p| p + i);
            let Some(close) = close else {
                return rejected("missing '}'");
            };
            let inner = std::str::from_utf8(&text[i + 1..close]).unwrap_or("");
            let Some(n) = parse_u32(inner).filter(|&n| n < 128) else {
                return Err(BodyError::Unsupported(
                    "only fixed {n} with n < 128 is allowed inside an alternation".into(),
                ));
            };
            out.push(Elem::Gap { min: n, max: n });
            i = close + 1;
            continue;
        }
        if i + 1 >= text.len() {
            return rejected("odd number of hex digits");
        }
        match (text[i], text[i + 1]) {
            (b'?', b'?') => out.push(Elem::Masked { value: 0, mask: 0 }),
            (b'?', lo) => match hex_value(lo) {
                Some(v) => out.push(Elem::Masked {
                    value: v,
                    mask: 0x0f,
                }),
                None => return rejected("bad hex digit"),
            },
            (hi, b'?') => match hex_value(hi) {
                Some(v) => out.push(Elem::Masked {
                    value: v << 4,
                    mask: 0xf0,
                }),
                None => return rejected("bad hex digit"),
            },
            (hi, lo) => match (hex_value(hi), hex_value(lo)) {
                (Some(h), Some(l)) => push_byte(lits, out, (h << 4) | l),
                _ => return rejected("bad hex digit"),
            },
        }
        i += 2;
    }
    Ok(())
}

impl Builder {
    fn byte(&mut self, byte: u8) {
        push_byte(&mut self.lits, &mut self.elems, byte);
    }

    /// `(...)` at `text[open]`, optionally negated. Returns the index after `)`.
    fn group(&mut self, text: &[u8], open: usize, negated: bool) -> Result<usize, BodyError> {
        let Some(close) = text[open..]
            .iter()
            .position(|&c| c == b')')
            .map(|p| p + open)
        else {
            return rejected("missing closing parenthesis");
        };
        let inner = &text[open + 1..close];
        let assertion = match inner {
            b"B" => Some(AssertKind::Boundary),
            b"L" => Some(AssertKind::Line),
            b"W" => Some(AssertKind::NonAlnum),
            _ => None,
        };
        if let Some(kind) = assertion {
            let side = if self.elems.is_empty() {
                Side::Left
            } else {
                Side::Right
            };
            if side == Side::Right && close + 1 != text.len() {
                return Err(BodyError::Unsupported(format!(
                    "({}) is only supported at the start or end of a pattern",
                    inner[0] as char
                )));
            }
            self.elems.push(Elem::Assert {
                kind,
                side,
                negated,
            });
            return Ok(close + 1);
        }
        let choices: Vec<&[u8]> = inner.split(|&c| c == b'|').collect();
        if choices.len() < 2 {
            return rejected("alternation needs at least two choices");
        }
        if choices
            .iter()
            .all(|c| c.len() == 2 && c.iter().all(u8::is_ascii_hexdigit))
        {
            let mut set = [0u8; 32];
            for c in &choices {
                let byte = (hex_value(c[0]).unwrap_or(0) << 4) | hex_value(c[1]).unwrap_or(0);
                set[byte as usize / 8] |= 1 << (byte % 8);
            }
            if negated {
                set.iter_mut().for_each(|b| *b = !*b);
            }
            self.classes.push(set);
            self.elems.push(Elem::Class(self.classes.len() as u32 - 1));
            return Ok(close + 1);
        }
        let mut parsed = Vec::with_capacity(choices.len());
        for choice in &choices {
            if choice.is_empty() {
                return rejected("empty alternative");
            }
            if choice
                .iter()
                .any(|&c| c == b'*' || c == b'(' || c == b'[' || c == b'!')
            {
                return rejected("alternatives may hold only hex, nibbles and {n}");
            }
            let mut elems = Vec::new();
            parse_simple(choice, &mut self.lits, &mut elems)?;
            parsed.push(elems);
        }
        if negated {
            let lens: Vec<Option<u32>> = parsed.iter().map(|c| fixed_len(c)).collect();
            if lens.iter().any(|l| l.is_none() || *l != lens[0]) {
                return rejected("a negated alternation needs choices of one length");
            }
        }
        self.alts.push(Alternation {
            negated,
            choices: parsed,
        });
        self.elems.push(Elem::Alt(self.alts.len() as u32 - 1));
        Ok(close + 1)
    }

    fn finish(self, nocase: bool) -> Pattern {
        let plain = self.classes.is_empty() && self.alts.is_empty() && self.brackets.is_empty();
        Pattern {
            lits: self.lits.into_boxed_slice(),
            elems: self.elems.into_boxed_slice(),
            rare: (!plain).then(|| {
                Box::new(RareParts {
                    classes: self.classes,
                    alts: self.alts,
                    brackets: self.brackets,
                })
            }),
            nocase,
        }
    }
}

pub(super) fn fixed_len(elems: &[Elem]) -> Option<u32> {
    elems.iter().try_fold(0u32, |acc, e| match *e {
        Elem::Lit { len, .. } => Some(acc + len),
        Elem::Masked { .. } | Elem::Class(_) => Some(acc + 1),
        Elem::Gap { min, max } if min == max => Some(acc + min),
        Elem::Assert { .. } => Some(acc),
        _ => None,
    })
}

/// How the pattern will be matched, for ClamAV's minimum-length rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// ClamAV's Boyer-Moore matcher (static `.ndb` bodies on the generic target):
    /// at least 3 bytes.
    BoyerMoore,
    /// ClamAV's Aho-Corasick matcher: every part needs two adjacent static bytes.
    AhoCorasick,
}

impl Pattern {
    /// Parses a body in ClamAV's hex format.
    pub(crate) fn parse(text: &str) -> Result<Pattern, BodyError> {
        let text = text.as_bytes();
        if text.is_empty() {
            return rejected("empty pattern");
        }
        // Sized for the common all-static pattern, which then never reallocates.
        let mut b = Builder {
            lits: Vec::with_capacity(text.len() / 2),
            elems: Vec::with_capacity(1),
            ..Builder::default()
        };
        // The leading hex pairs (the whole of most patterns) in one tight loop; what
        // follows extends the same static run.
        let leading = text.iter().take_while(|c| c.is_ascii_hexdigit()).count() & !1;
        b.lits.resize(leading / 2, 0);
        decode_hex(&text[..leading], &mut b.lits);
        if leading > 0 {
            b.elems.push(Elem::Lit {
                off: 0,
                len: (leading / 2) as u32,
            });
        }
        let mut i = leading;
        while i < text.len() {
            match text[i] {
                b'*' => {
                    b.elems.push(Elem::Gap {
                        min: 0,
                        max: UNBOUNDED,
                    });
                    i += 1;
                }
                b'{' => {
                    let Some(close) = text[i..].iter().position(|&c| c == b'}').map(|p| p + i)
                    else {
                        return rejected("missing '}'");
                    };
                    let inner = std::str::from_utf8(&text[i + 1..close]).unwrap_or("");
                    let (min, max) = match inner.split_once('-') {
                        None => {
                            let n =
                                parse_u32(inner).ok_or(BodyError::Rejected("bad {n}".into()))?;
                            (n, n)
                        }
                        Some(("", hi)) => (
                            0,
                            parse_u32(hi).ok_or(BodyError::Rejected("bad {-n}".into()))?,
                        ),
                        Some((lo, "")) => (
                            parse_u32(lo).ok_or(BodyError::Rejected("bad {n-}".into()))?,
                            UNBOUNDED,
                        ),
                        Some((lo, hi)) => match (parse_u32(lo), parse_u32(hi)) {
                            (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
                            (Some(_), Some(_)) => {
                                return Err(BodyError::Unsupported(
                                    "range {n-m} with n > m".into(),
                                ));
                            }
                            _ => return rejected("bad {n-m}"),
                        },
                    };
                    b.elems.push(Elem::Gap { min, max });
                    i = close + 1;
                }
                b'[' => {
                    let Some(close) = text[i..].iter().position(|&c| c == b']').map(|p| p + i)
                    else {
                        return rejected("missing ']'");
                    };
                    let inner = std::str::from_utf8(&text[i + 1..close]).unwrap_or("");
                    let Some((lo, hi)) = inner.split_once('-') else {
                        return rejected("bad [x-y]");
                    };
                    match (parse_u32(lo), parse_u32(hi)) {
                        (Some(lo), Some(hi)) if lo <= hi && hi <= 32 => {
                            b.brackets.push(b.elems.len() as u16);
                            b.elems.push(Elem::Gap { min: lo, max: hi });
                        }
                        _ => return rejected("bad [x-y] (needs x <= y <= 32)"),
                    }
                    i = close + 1;
                }
                b'!' => {
                    if text.get(i + 1) != Some(&b'(') {
                        return rejected("'!' must precede '('");
                    }
                    i = b.group(text, i + 1, true)?;
                }
                b'(' => i = b.group(text, i, false)?,
                _ => {
                    if i + 1 >= text.len() {
                        return rejected("odd number of hex digits");
                    }
                    let (hi, lo) = (text[i], text[i + 1]);
                    if hi == b'?' || lo == b'?' {
                        let mut elems = std::mem::take(&mut b.elems);
                        parse_simple(&text[i..i + 2], &mut b.lits, &mut elems)?;
                        b.elems = elems;
                    } else {
                        match (hex_value(hi), hex_value(lo)) {
                            (Some(h), Some(l)) => b.byte((h << 4) | l),
                            _ => return rejected("malformed hex string"),
                        }
                    }
                    i += 2;
                }
            }
        }
        Ok(b.finish(false))
    }

    /// The byte sets that `Elem::Class` indexes.
    pub(super) fn classes(&self) -> &[[u8; 32]] {
        self.rare.as_ref().map_or(&[], |r| &r.classes)
    }

    /// The alternations that `Elem::Alt` indexes.
    pub(super) fn alts(&self) -> &[Alternation] {
        self.rare.as_ref().map_or(&[], |r| &r.alts)
    }

    fn brackets(&self) -> &[u16] {
        self.rare.as_ref().map_or(&[], |r| &r.brackets)
    }

    /// A pattern of the literal bytes.
    pub(crate) fn literal(bytes: &[u8]) -> Pattern {
        let mut b = Builder::default();
        bytes.iter().for_each(|&byte| b.byte(byte));
        b.finish(false)
    }

    /// True when the pattern is one static run (ClamAV's Boyer-Moore candidates).
    pub(crate) fn is_static(&self) -> bool {
        matches!(*self.elems, [Elem::Lit { .. }])
    }

    /// ClamAV 1.4.6's load-time length checks (measured, CLAMAV.md §1.3).
    pub(crate) fn check_clamav(&self, engine: Engine) -> Result<(), BodyError> {
        if self.is_static() && engine == Engine::BoyerMoore {
            if self.lits.len() < 3 {
                return rejected("signature is too short (static patterns need 3 bytes)");
            }
            return Ok(());
        }
        // Parts are split by `*` and every range except `{n}` with n < 128.
        let mut parts: Vec<&[Elem]> = Vec::new();
        let mut start = 0;
        for (i, e) in self.elems.iter().enumerate() {
            if let Elem::Gap { min, max } = *e
                && !(min == max && min < 128)
                && !self.brackets().contains(&(i as u16))
            {
                parts.push(&self.elems[start..i]);
                start = i + 1;
            }
        }
        parts.push(&self.elems[start..]);
        for part in parts {
            let width: u32 = part
                .iter()
                .map(|e| match *e {
                    Elem::Lit { len, .. } => len,
                    Elem::Gap { min, .. } => min,
                    Elem::Assert { .. } => 0,
                    _ => 1,
                })
                .sum();
            if width < 2 {
                return rejected("signature is too short (each part needs 2 bytes)");
            }
            if !part
                .iter()
                .any(|e| matches!(e, Elem::Lit { len, .. } if *len >= 2))
            {
                return rejected("can't find a static subpattern of length 2");
            }
        }
        Ok(())
    }

    /// Applies `::w` (wide: a NUL after every byte) and, with `ascii`, keeps the plain
    /// form too (`::wa`): returns the forms to match.
    pub(crate) fn widen(&self) -> Pattern {
        let mut b = Builder {
            classes: self.classes().to_vec(),
            brackets: self.brackets().to_vec(),
            ..Builder::default()
        };
        let widen_elems = |elems: &[Elem], b_lits: &mut Vec<u8>, out: &mut Vec<Elem>| {
            for e in elems {
                match *e {
                    Elem::Lit { off, len } => {
                        for &byte in &self.lits[off as usize..(off + len) as usize] {
                            push_byte(b_lits, out, byte);
                            push_byte(b_lits, out, 0);
                        }
                    }
                    Elem::Gap { min, max } => out.push(Elem::Gap {
                        min: min.saturating_mul(2),
                        max: if max == UNBOUNDED {
                            UNBOUNDED
                        } else {
                            max.saturating_mul(2)
                        },
                    }),
                    Elem::Assert { .. } => out.push(*e),
                    other => {
                        out.push(other);
                        push_byte(b_lits, out, 0);
                    }
                }
            }
        };
        let mut alts = Vec::new();
        for alt in self.alts() {
            let mut choices = Vec::new();
            for choice in &alt.choices {
                let mut out = Vec::new();
                widen_elems(choice, &mut b.lits, &mut out);
                choices.push(out);
            }
            alts.push(Alternation {
                negated: alt.negated,
                choices,
            });
        }
        let mut elems = Vec::new();
        widen_elems(&self.elems, &mut b.lits, &mut elems);
        b.elems = elems;
        b.alts = alts;
        b.finish(self.nocase)
    }

    /// Adds `(W)` on both sides (`::f`).
    pub(crate) fn fullword(&mut self) {
        let mut elems = self.elems.to_vec();
        if !matches!(
            elems.first(),
            Some(Elem::Assert {
                side: Side::Left,
                ..
            })
        ) {
            elems.insert(
                0,
                Elem::Assert {
                    kind: AssertKind::NonAlnum,
                    side: Side::Left,
                    negated: false,
                },
            );
        }
        if !matches!(
            elems.last(),
            Some(Elem::Assert {
                side: Side::Right,
                ..
            })
        ) {
            elems.push(Elem::Assert {
                kind: AssertKind::NonAlnum,
                side: Side::Right,
                negated: false,
            });
        }
        self.elems = elems.into_boxed_slice();
    }

    /// The anchor: the `MAX_ANCHOR`-byte window of the longest static run with the
    /// fewest common bytes (NUL, 0xff, space, letters). Returns the bytes, the element
    /// index and the window's offset in the run. `None` when the pattern has no static
    /// byte (only possible for SIE's own lines; ClamAV refuses those).
    pub(crate) fn anchor(&self) -> Option<(&[u8], usize, usize)> {
        // The longest run, the first of equally long ones.
        let mut longest: Option<(usize, usize, usize)> = None;
        for (index, elem) in self.elems.iter().enumerate() {
            if let Elem::Lit { off, len } = *elem
                && longest.is_none_or(|(_, _, best)| len as usize > best)
            {
                longest = Some((index, off as usize, len as usize));
            }
        }
        let (index, off, len) = longest?;
        let run = &self.lits[off..off + len];
        let take = len.min(MAX_ANCHOR);
        let common = |b: u8| u32::from(COMMONNESS[usize::from(b)]);
        // The window with the fewest common bytes, the first of equal ones; a
        // sliding sum, as runs can be long.
        let mut sum: u32 = run[..take].iter().map(|&b| common(b)).sum();
        let (mut fewest, mut skip) = (sum, 0);
        for start in 1..=len - take {
            sum = sum + common(run[start + take - 1]) - common(run[start - 1]);
            if sum < fewest {
                (fewest, skip) = (sum, start);
            }
        }
        Some((&run[skip..skip + take], index, skip))
    }

    /// True when every static byte could appear in normalised text (lower-case
    /// printable ASCII): other patterns need not run on the normalised buffer.
    pub(crate) fn fits_normalised(&self) -> bool {
        self.lits
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && !b.is_ascii_uppercase())
            || (self.nocase && self.lits.iter().all(|&b| (0x20..0x7f).contains(&b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamav_length_rules_as_measured() {
        let check = |body: &str, engine| Pattern::parse(body).unwrap().check_clamav(engine);
        assert!(check("4549", Engine::BoyerMoore).is_err());
        assert!(check("454943", Engine::BoyerMoore).is_ok());
        assert!(check("45*4e", Engine::AhoCorasick).is_err());
        assert!(check("4546*4e4f", Engine::AhoCorasick).is_ok());
        assert!(check("4549??4152", Engine::AhoCorasick).is_ok());
        assert!(check("45??41", Engine::AhoCorasick).is_err());
        assert!(check("2d", Engine::AhoCorasick).is_err());
        assert!(check("4142", Engine::AhoCorasick).is_ok());
        assert!(check("4142{127}43", Engine::AhoCorasick).is_ok());
        assert!(check("4142{128}43", Engine::AhoCorasick).is_err());
        assert!(check("????????", Engine::AhoCorasick).is_err());
    }

    #[test]
    fn anchor_is_the_rarest_window_of_the_first_longest_run() {
        let anchor = |body: &str| {
            let pattern = Pattern::parse(body).unwrap();
            let (bytes, elem, skip) = pattern.anchor().unwrap();
            (bytes.to_vec(), elem, skip)
        };
        // "AAAA" then "\x01\x02BB" (equally long): the first run; all windows are as
        // common, so the first window.
        assert_eq!(anchor("41414141??01024242"), (b"AAA".to_vec(), 0, 0));
        // The longer second run; its window without letters or NULs.
        assert_eq!(
            anchor("4142??00004142010203"),
            (b"\x01\x02\x03".to_vec(), 2, 4)
        );
        assert_eq!(anchor("4142"), (b"AB".to_vec(), 0, 0));
    }

    #[test]
    fn hex_decodes_into_a_buffer_of_half_the_length() {
        let mut out = [0u8; 3];
        assert!(decode_hex(b"00aFff", &mut out));
        assert_eq!(out, [0x00, 0xaf, 0xff]);
        assert!(!decode_hex(b"00aFf", &mut out), "odd length");
        assert!(!decode_hex(b"00aF", &mut out), "too short");
        assert!(!decode_hex(b"00aFfg", &mut out), "bad digit");
        assert!(!decode_hex(b"+1aFff", &mut out), "sign");
        assert!(decode_hex(b"", &mut []));
    }

    proptest::proptest! {
        #[test]
        fn hex_decoding_agrees_with_from_str_radix(text in "[0-9a-fA-Fg+ ]{0,12}") {
            let mut out = vec![0u8; text.len() / 2];
            let expected: Option<Vec<u8>> = (text.len() % 2 == 0
                && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| {
                (0..text.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
                    .collect()
            });
            let ok = decode_hex(text.as_bytes(), &mut out);
            proptest::prop_assert_eq!(ok.then_some(out), expected);
        }
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for body in [
            "41424g",
            "4142434",
            "4142(4|43)44",
            "4142(43|4445",
            "41!42",
            "{",
            "[1-",
            "4142[1-40]434445",
        ] {
            assert!(Pattern::parse(body).is_err(), "{body}");
        }
        assert!(matches!(
            Pattern::parse("4142{20-10}4344"),
            Err(BodyError::Unsupported(_))
        ));
        assert!(matches!(
            Pattern::parse("41(B)42"),
            Err(BodyError::Unsupported(_))
        ));
    }
}
