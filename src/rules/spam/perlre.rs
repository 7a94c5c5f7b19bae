//! Perl regular expressions as SpamAssassin compiles them (`qr/$re/aa`, after its
//! `compile_regexp` strips the delimiters), translated into the `regex` crate's byte
//! syntax. What has no equivalent (lookaround, backreferences, possessive and atomic
//! groups, code blocks, ...) is refused with a reason, never approximated.
//!
//! Semantics kept from Perl on byte strings with `/aa`:
//! - `\d \w \s \b` and the POSIX classes are ASCII; `.` is any byte but `\n`;
//! - `/i` folds ASCII letters and, as Perl does, the Latin-1 letters `\xC0-\xDE` with
//!   `\xE0-\xFE` (byte for byte: a UTF-8 `é` is two bytes and folds like Perl's);
//! - `$` without `/m` also matches before a final newline (`\n?\z` here: it consumes
//!   that newline, which no rule can observe);
//! - `\h \v \R \N` and octal, `\e`, `\cX` escapes are spelled out;
//! - `/x` is applied here (whitespace and `#` comments outside classes), not by `regex`.
//!
//! Perl warnings are errors in SpamAssassin (its `compile_regexp` dies on them), so
//! unknown escapes such as `\y` or `\Q` and false ranges such as `[\w-z]` are refused
//! too. Two approximations remain: under `/m`, `^` also matches after a newline that
//! ends the text (Perl does not), and a `{` that does not start a quantifier is taken
//! literally where Perl would warn.

use std::fmt::Write as _;

use regex::bytes::{Regex, RegexBuilder};
use regex_syntax::hir::{Capture, Hir, HirKind, Look, Repetition};

/// Compiled program size allowed per rule; SpamAssassin rules with long counted
/// repetitions (`[^>]{1,2048}`) need more than the crate's default.
pub const SIZE_LIMIT: usize = 64 << 20;

/// Compiles a delimited Perl regex (`/re/mods`, `m{re}mods`, `m!re!`, `qr(re)`).
pub fn compile_delimited(text: &[u8]) -> Result<Regex, String> {
    let (body, mods) = strip_delimiters(text)?;
    compile(body, mods)
}

/// Compiles an undelimited Perl regex body with the given modifier letters.
pub fn compile(body: &[u8], mods: &[u8]) -> Result<Regex, String> {
    let pattern = translate(body, mods)?;
    RegexBuilder::new(&pattern)
        .unicode(false)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|error| format!("the translated regex does not compile: {error}"))
}

/// A regex that matches wherever `regex` does, with the multi-line anchors (`^` and
/// `$` under `/m`) left out; `None` when `regex` has none or is too short to
/// filter on. The `regex` crate finds no literal to search for first in a pattern
/// that starts at a line start, so `/^To:.../m` over a whole message runs its
/// automaton over every byte, about ten times slower than this one, which looks for
/// `To:` first. A text it does not match cannot match `regex`.
pub fn without_line_anchors(regex: &Regex) -> Option<Regex> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(regex.as_str())
        .ok()?;
    let mut dropped = false;
    let loose = drop_line_anchors(hir, &mut dropped);
    if !dropped || loose.properties().minimum_len().unwrap_or(0) < 3 {
        return None;
    }
    RegexBuilder::new(&loose.to_string())
        .unicode(false)
        .size_limit(SIZE_LIMIT)
        .build()
        .ok()
}

fn drop_line_anchors(hir: Hir, dropped: &mut bool) -> Hir {
    match hir.into_kind() {
        HirKind::Look(Look::StartLF | Look::EndLF | Look::StartCRLF | Look::EndCRLF) => {
            *dropped = true;
            Hir::empty()
        }
        HirKind::Repetition(repetition) => Hir::repetition(Repetition {
            sub: Box::new(drop_line_anchors(*repetition.sub, dropped)),
            ..repetition
        }),
        HirKind::Capture(capture) => Hir::capture(Capture {
            sub: Box::new(drop_line_anchors(*capture.sub, dropped)),
            ..capture
        }),
        HirKind::Concat(subs) => Hir::concat(
            subs.into_iter()
                .map(|sub| drop_line_anchors(sub, dropped))
                .collect(),
        ),
        HirKind::Alternation(subs) => Hir::alternation(
            subs.into_iter()
                .map(|sub| drop_line_anchors(sub, dropped))
                .collect(),
        ),
        HirKind::Look(look) => Hir::look(look),
        HirKind::Literal(literal) => Hir::literal(literal.0),
        HirKind::Class(class) => Hir::class(class),
        HirKind::Empty => Hir::empty(),
    }
}

/// SpamAssassin's `compile_regexp($re, 1)`: the delimiters are required; the end
/// delimiter is the one followed only by modifier letters.
pub fn strip_delimiters(text: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (rest, end) = if let Some(rest) = text.strip_prefix(b"/") {
        (rest, b'/')
    } else {
        let rest = text
            .strip_prefix(b"qr")
            .or_else(|| text.strip_prefix(b"m"))
            .ok_or("missing regexp delimiters")?;
        let (&open, rest) = rest.split_first().ok_or("missing regexp delimiters")?;
        let end = match open {
            b'{' => b'}',
            b'(' => b')',
            b'<' => b'>',
            b'[' => b']',
            b'\\' => return Err("backslash delimiter not allowed".to_string()),
            byte if byte.is_ascii_alphanumeric() || byte == b'_' => {
                return Err("missing regexp delimiters".to_string());
            }
            byte => byte,
        };
        (rest, end)
    };
    let mods_len = rest
        .iter()
        .rev()
        .take_while(|&&byte| byte.is_ascii_lowercase() && byte != b'e')
        .count();
    let end_at = rest
        .len()
        .checked_sub(mods_len + 1)
        .filter(|&at| rest[at] == end)
        .ok_or("invalid end delimiter/mods")?;
    let (body, mods) = (&rest[..end_at], &rest[end_at + 1..]);
    if !matches!(end, b'}' | b')' | b']') && has_unescaped(body, end) {
        return Err(format!("unquoted delimiter '{}' found", end as char));
    }
    Ok((body, mods))
}

/// Whether `delim` occurs in `body` other than right after a backslash, once escaped
/// backslashes are removed (as `compile_regexp` checks).
fn has_unescaped(body: &[u8], delim: u8) -> bool {
    let mut previous = 0u8;
    let mut index = 0;
    while index < body.len() {
        if body[index] == b'\\' && body.get(index + 1) == Some(&b'\\') {
            index += 2;
            continue;
        }
        if body[index] == delim && previous != b'\\' {
            return true;
        }
        previous = body[index];
        index += 1;
    }
    false
}

/// Translates a Perl regex body with its modifiers into a `regex` pattern.
pub fn translate(body: &[u8], mods: &[u8]) -> Result<String, String> {
    if body.windows(3).any(|w| w == b"(?{") || body.windows(4).any(|w| w == b"(??{") {
        return Err("code block (?{...}) is not allowed".to_string());
    }
    let mut flags = Flags::default();
    let (set, clear) = parse_flag_letters(mods, false)?;
    flags.apply(&set, &clear);
    let mut translator = Translator {
        src: body,
        pos: 0,
        out: String::with_capacity(body.len() * 2),
        flags,
        groups: Vec::new(),
        captures: 0,
    };
    translator.out.push_str(&rust_flags(&set, &clear, false));
    translator.run()?;
    Ok(translator.out)
}

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    i: bool,
    m: bool,
    s: bool,
    x: bool,
}

impl Flags {
    fn apply(&mut self, set: &[u8], clear: &[u8]) {
        for (&letter, value) in set
            .iter()
            .map(|l| (l, true))
            .chain(clear.iter().map(|l| (l, false)))
        {
            match letter {
                b'i' => self.i = value,
                b'm' => self.m = value,
                b's' => self.s = value,
                b'x' => self.x = value,
                _ => {}
            }
        }
    }
}

/// Splits Perl modifier letters into those set and those cleared (`i-sm`). Letters
/// that only change capture or charset rules (`n p a d l u`) are accepted and
/// ignored; anything else is a Perl warning, hence an error in SpamAssassin.
fn parse_flag_letters(letters: &[u8], allow_minus: bool) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut set = Vec::new();
    let mut clear = Vec::new();
    let mut negative = false;
    for &letter in letters {
        match letter {
            b'-' if allow_minus && !negative => negative = true,
            b'i' | b'm' | b's' | b'x' | b'n' => {
                if negative {
                    clear.push(letter)
                } else {
                    set.push(letter)
                }
            }
            b'p' | b'a' | b'd' | b'l' | b'u' if !negative => {}
            other => {
                return Err(format!(
                    "regex modifier '{}' is not supported",
                    char::from(other).escape_default()
                ));
            }
        }
    }
    Ok((set, clear))
}

/// The `regex` spelling of a flag change: only `i m s` are handed over (`x` is
/// applied by the translator). `group` asks for `(?flags:`; otherwise `(?flags)` or
/// nothing.
fn rust_flags(set: &[u8], clear: &[u8], group: bool) -> String {
    let keep = |letters: &[u8]| -> String {
        letters
            .iter()
            .filter(|l| matches!(l, b'i' | b'm' | b's'))
            .map(|&l| l as char)
            .collect()
    };
    let (set, clear) = (keep(set), keep(clear));
    let mut flags = set;
    if !clear.is_empty() {
        flags.push('-');
        flags.push_str(&clear);
    }
    match (group, flags.is_empty()) {
        (true, _) => format!("(?{flags}:"),
        (false, true) => String::new(),
        (false, false) => format!("(?{flags})"),
    }
}

/// The other case of a Latin-1 letter, as Perl folds bytes under `/aai`.
fn latin1_fold(byte: u8) -> Option<u8> {
    match byte {
        0xD7 | 0xF7 => None,
        0xC0..=0xDE => Some(byte + 0x20),
        0xE0..=0xFE => Some(byte - 0x20),
        _ => None,
    }
}

fn push_hex(out: &mut String, byte: u8) {
    let _ = write!(out, "\\x{byte:02X}");
}

/// One member of a bracketed class.
#[derive(Debug, Clone)]
enum ClassItem {
    Range(u8, u8),
    /// Already in `regex` class syntax: `\d`, `[:alpha:]`, `[^\t\x20]`.
    Set(String),
}

struct Translator<'a> {
    src: &'a [u8],
    pos: usize,
    out: String,
    flags: Flags,
    /// Flags to restore when each open group closes.
    groups: Vec<Flags>,
    /// Capture groups opened so far, which decides whether `\10` is a
    /// backreference or an octal escape.
    captures: usize,
}

impl Translator<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.src.get(self.pos + offset).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn rest(&self) -> &[u8] {
        &self.src[self.pos.min(self.src.len())..]
    }

    fn run(&mut self) -> Result<(), String> {
        while let Some(byte) = self.bump() {
            match byte {
                b'\\' => self.escape()?,
                b'[' => self.class()?,
                b'(' => self.open_group()?,
                b')' => {
                    self.flags = self.groups.pop().ok_or("unmatched ) in regex")?;
                    self.out.push(')');
                }
                b'*' | b'+' | b'?' => {
                    self.out.push(byte as char);
                    self.quantifier_suffix()?;
                }
                b'{' => self.brace()?,
                b'^' | b'|' | b'.' => self.out.push(byte as char),
                b'$' => {
                    if self.flags.m {
                        self.out.push('$');
                    } else {
                        self.out.push_str("(?:\\n?\\z)");
                    }
                }
                b'#' if self.flags.x => {
                    while let Some(byte) = self.bump() {
                        if byte == b'\n' {
                            break;
                        }
                    }
                }
                b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C if self.flags.x => {}
                other => self.literal(other),
            }
        }
        if !self.groups.is_empty() {
            return Err("unmatched ( in regex".to_string());
        }
        Ok(())
    }

    fn literal(&mut self, byte: u8) {
        if self.flags.i
            && let Some(other) = latin1_fold(byte)
        {
            self.out.push('[');
            push_hex(&mut self.out, byte);
            push_hex(&mut self.out, other);
            self.out.push(']');
        } else if byte.is_ascii_alphanumeric() || byte == b'_' {
            self.out.push(byte as char);
        } else {
            push_hex(&mut self.out, byte);
        }
    }

    /// After `*`, `+`, `?` or `{n,m}`: a lazy `?` is kept, a possessive `+` refused.
    fn quantifier_suffix(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(b'?') => {
                self.pos += 1;
                self.out.push('?');
                Ok(())
            }
            Some(b'+') => Err("possessive quantifier (*+, ++, ?+, {n}+) is not supported".into()),
            _ => Ok(()),
        }
    }

    /// `{n}`, `{n,}`, `{n,m}` (blanks allowed inside, as in Perl 5.36) are quantifiers;
    /// any other `{` is a literal brace.
    fn brace(&mut self) -> Result<(), String> {
        let rest = self.rest();
        let Some(close) = rest.iter().position(|&b| b == b'}') else {
            self.literal(b'{');
            return Ok(());
        };
        let inner: String = String::from_utf8_lossy(&rest[..close])
            .chars()
            .filter(|c| *c != ' ' && *c != '\t')
            .collect();
        let (min, max) = match inner.split_once(',') {
            None => (inner.as_str(), Some(inner.as_str())),
            Some((min, max)) => (min, (!max.is_empty()).then_some(max)),
        };
        let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !is_number(min) || max.is_some_and(|max| !is_number(max)) {
            self.literal(b'{');
            return Ok(());
        }
        let parse = |s: &str| s.parse::<u32>().unwrap_or(u32::MAX);
        let (min, max) = (parse(min), max.map(parse));
        if min > 65534 || max.is_some_and(|max| max > 65534) {
            return Err("quantifier bigger than 65534".to_string());
        }
        if max.is_some_and(|max| max < min) {
            return Err("quantifier {n,m} with n > m".to_string());
        }
        self.pos += close + 1;
        match max {
            Some(max) if max == min => {
                let _ = write!(self.out, "{{{min}}}");
            }
            Some(max) => {
                let _ = write!(self.out, "{{{min},{max}}}");
            }
            None => {
                let _ = write!(self.out, "{{{min},}}");
            }
        }
        self.quantifier_suffix()
    }

    fn open_group(&mut self) -> Result<(), String> {
        if self.peek() == Some(b'*') {
            return Err("backtracking verbs and (*...) assertions are not supported".into());
        }
        if self.peek() != Some(b'?') {
            self.captures += 1;
            self.groups.push(self.flags);
            self.out.push('(');
            return Ok(());
        }
        self.pos += 1;
        let Some(kind) = self.bump() else {
            return Err("sequence (? incomplete".to_string());
        };
        match kind {
            b'#' => {
                while let Some(byte) = self.bump() {
                    if byte == b')' {
                        return Ok(());
                    }
                }
                Err("unterminated (?#...) comment".to_string())
            }
            b':' | b'|' => self.push_group("(?:"),
            b'=' | b'!' => Err("lookahead (?=...) / (?!...) is not supported".into()),
            b'>' => Err("atomic group (?>...) is not supported".into()),
            b'<' if matches!(self.peek(), Some(b'=' | b'!')) => {
                Err("lookbehind (?<=...) / (?<!...) is not supported".into())
            }
            b'<' => self.named_group(b'>'),
            b'\'' => self.named_group(b'\''),
            b'P' => match self.bump() {
                Some(b'<') => self.named_group(b'>'),
                Some(b'=') => Err("named backreference (?P=name) is not supported".into()),
                _ => Err("recursion (?P>name) is not supported".into()),
            },
            b'&' | b'R' | b'0'..=b'9' | b'+' => {
                Err("recursion (?R) / (?&name) / (?1) is not supported".into())
            }
            b'(' => Err("conditional (?(cond)...) is not supported".into()),
            b'^' => self.flag_group(true),
            b'a'..=b'z' | b'-' => {
                self.pos -= 1;
                self.flag_group(false)
            }
            other => Err(format!(
                "unknown group syntax (?{}",
                char::from(other).escape_default()
            )),
        }
    }

    fn push_group(&mut self, open: &str) -> Result<(), String> {
        self.groups.push(self.flags);
        self.out.push_str(open);
        Ok(())
    }

    /// Named captures become unnamed ones (numbering kept): names are never used,
    /// and Perl allows duplicates that `regex` refuses.
    fn named_group(&mut self, end: u8) -> Result<(), String> {
        let rest = self.rest();
        let close = rest
            .iter()
            .position(|&b| b == end)
            .ok_or("unterminated group name")?;
        if close == 0
            || !rest[..close]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            return Err("invalid group name".to_string());
        }
        self.pos += close + 1;
        self.captures += 1;
        self.push_group("(")
    }

    /// `(?flags)`, `(?flags:...)`, `(?^flags:...)`.
    fn flag_group(&mut self, caret: bool) -> Result<(), String> {
        let rest = self.rest();
        let end = rest
            .iter()
            .position(|&b| b == b')' || b == b':')
            .ok_or("sequence (?... not terminated")?;
        let letters = &rest[..end];
        let is_group = rest[end] == b':';
        let (set, mut clear) = parse_flag_letters(letters, !caret)?;
        if caret {
            clear = [b'i', b'm', b's', b'x']
                .into_iter()
                .filter(|l| !set.contains(l))
                .collect();
        }
        self.pos += end + 1;
        if is_group {
            self.groups.push(self.flags);
        }
        self.flags.apply(&set, &clear);
        self.out.push_str(&rust_flags(&set, &clear, is_group));
        Ok(())
    }

    fn escape(&mut self) -> Result<(), String> {
        let Some(byte) = self.bump() else {
            return Err("trailing \\ in regex".to_string());
        };
        let spelled: &str = match byte {
            b'd' | b'D' | b'w' | b'W' | b's' | b'S' => {
                self.out.push('\\');
                self.out.push(byte as char);
                return Ok(());
            }
            b'b' | b'B' => {
                if self.peek() == Some(b'{') {
                    return Err("\\b{...} boundaries are not supported".to_string());
                }
                self.out.push('\\');
                self.out.push(byte as char);
                return Ok(());
            }
            b'A' => "\\A",
            b'z' => "\\z",
            b'Z' => "(?:\\n?\\z)",
            b'h' => "[\\t\\x20\\xA0]",
            b'H' => "[^\\t\\x20\\xA0]",
            b'v' => "[\\n\\x0B\\x0C\\r\\x85]",
            b'V' => "[^\\n\\x0B\\x0C\\r\\x85]",
            b'R' => "(?:\\r\\n|[\\n\\x0B\\x0C\\r\\x85])",
            b'N' if self.peek() != Some(b'{') => "[^\\n]",
            b'1'..=b'9' => {
                // Perl: \1-\9 always, \10 and up when that many groups came
                // before; otherwise an octal escape.
                let digits_start = self.pos - 1;
                let digits = self.src[digits_start..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let number: usize =
                    String::from_utf8_lossy(&self.src[digits_start..digits_start + digits])
                        .parse()
                        .unwrap_or(usize::MAX);
                if number < 10 || number <= self.captures || byte > b'7' {
                    return Err("backreferences are not supported".to_string());
                }
                let value = self.octal_digits(2, u32::from(byte - b'0'))?;
                self.literal(value);
                return Ok(());
            }
            b'g' | b'k' => {
                return Err("backreferences are not supported".to_string());
            }
            b'G' | b'K' | b'X' | b'C' | b'p' | b'P' | b'N' => {
                return Err(format!(
                    "\\{} is not supported",
                    char::from(byte).escape_default()
                ));
            }
            _ => {
                let literal = self.byte_escape(byte)?;
                self.literal(literal);
                return Ok(());
            }
        };
        self.out.push_str(spelled);
        Ok(())
    }

    /// Escapes that stand for one byte, shared by classes and the pattern: `\t`,
    /// `\x41`, `\x{41}`, `\0`, `\o{101}`, `\cA`, `\.`, ... Unknown letters are
    /// refused, as Perl warns about them.
    fn byte_escape(&mut self, byte: u8) -> Result<u8, String> {
        Ok(match byte {
            b't' => b'\t',
            b'n' => b'\n',
            b'r' => b'\r',
            b'f' => 0x0C,
            b'e' => 0x1B,
            b'a' => 0x07,
            b'0' => self.octal_digits(2, 0)?,
            b'o' => {
                let digits = self.braced()?;
                parse_code(&digits, 8)?
            }
            b'x' => {
                if self.peek() == Some(b'{') {
                    let digits = self.braced()?;
                    parse_code(&digits, 16)?
                } else {
                    let mut value = 0u32;
                    for _ in 0..2 {
                        match self.peek().and_then(|b| (b as char).to_digit(16)) {
                            Some(digit) => {
                                value = value * 16 + digit;
                                self.pos += 1;
                            }
                            None => break,
                        }
                    }
                    value as u8
                }
            }
            b'c' => {
                let control = self.bump().ok_or("missing control character after \\c")?;
                control.to_ascii_uppercase() ^ 0x40
            }
            other if other.is_ascii_alphanumeric() => {
                return Err(format!(
                    "unrecognized escape \\{} (a Perl warning, so SpamAssassin refuses it)",
                    other as char
                ));
            }
            other => other,
        })
    }

    /// Up to `more` further octal digits after a first digit of value `first`.
    fn octal_digits(&mut self, more: usize, first: u32) -> Result<u8, String> {
        let mut value = first;
        for _ in 0..more {
            match self.peek() {
                Some(digit @ b'0'..=b'7') => {
                    value = value * 8 + u32::from(digit - b'0');
                    self.pos += 1;
                }
                _ => break,
            }
        }
        u8::try_from(value).map_err(|_| "octal escape above \\377".to_string())
    }

    fn braced(&mut self) -> Result<String, String> {
        if self.bump() != Some(b'{') {
            return Err("missing braces on \\o{} or \\x{}".to_string());
        }
        let rest = self.rest();
        let close = rest
            .iter()
            .position(|&b| b == b'}')
            .ok_or("missing right brace on \\x{} or \\o{}")?;
        let digits = String::from_utf8_lossy(&rest[..close]).trim().to_string();
        self.pos += close + 1;
        Ok(digits)
    }

    fn class(&mut self) -> Result<(), String> {
        let negated = self.peek() == Some(b'^');
        if negated {
            self.pos += 1;
        }
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let byte = self.bump().ok_or("unmatched [ in regex")?;
            if byte == b']' && !first {
                break;
            }
            first = false;
            let item = self.class_atom(byte)?;
            let is_range =
                self.peek() == Some(b'-') && self.peek_at(1).is_some_and(|next| next != b']');
            if !is_range {
                items.push(item);
                continue;
            }
            self.pos += 1;
            let high_byte = self.bump().ok_or("unmatched [ in regex")?;
            let high = self.class_atom(high_byte)?;
            match (item, high) {
                (ClassItem::Range(low, _), ClassItem::Range(high, _)) if low <= high => {
                    items.push(ClassItem::Range(low, high));
                }
                (ClassItem::Range(..), ClassItem::Range(..)) => {
                    return Err("invalid [] range".to_string());
                }
                _ => return Err("false [] range (a Perl warning)".to_string()),
            }
        }
        if self.flags.i {
            let mut folded = Vec::new();
            for item in &items {
                if let ClassItem::Range(low, high) = *item {
                    for (start, end, shift) in [(0xC0u8, 0xDEu8, 0x20i16), (0xE0, 0xFE, -0x20)] {
                        let (from, to) = (low.max(start), high.min(end));
                        if from <= to {
                            let moved = |b: u8| (i16::from(b) + shift) as u8;
                            folded.push(ClassItem::Range(moved(from), moved(to)));
                        }
                    }
                }
            }
            items.extend(folded);
        }
        self.out.push('[');
        if negated {
            self.out.push('^');
        }
        for item in items {
            match item {
                ClassItem::Range(low, high) => {
                    push_hex(&mut self.out, low);
                    if high != low {
                        self.out.push('-');
                        push_hex(&mut self.out, high);
                    }
                }
                ClassItem::Set(set) => self.out.push_str(&set),
            }
        }
        self.out.push(']');
        Ok(())
    }

    /// One class member starting with `byte` (already consumed).
    fn class_atom(&mut self, byte: u8) -> Result<ClassItem, String> {
        let single = |b: u8| Ok(ClassItem::Range(b, b));
        match byte {
            b'[' if matches!(self.peek(), Some(b':' | b'.' | b'=')) => self.posix_class(),
            b'\\' => {
                let escaped = self.bump().ok_or("unmatched [ in regex")?;
                let set = |s: &str| Ok(ClassItem::Set(s.to_string()));
                match escaped {
                    b'd' | b'D' | b'w' | b'W' | b's' | b'S' => {
                        Ok(ClassItem::Set(format!("\\{}", escaped as char)))
                    }
                    b'h' => set("\\t\\x20\\xA0"),
                    b'H' => set("[^\\t\\x20\\xA0]"),
                    b'v' => set("\\n\\x0B\\x0C\\r\\x85"),
                    b'V' => set("[^\\n\\x0B\\x0C\\r\\x85]"),
                    b'b' => single(0x08),
                    b'1'..=b'7' => {
                        let value = self.octal_digits(2, u32::from(escaped - b'0'))?;
                        single(value)
                    }
                    b'8' | b'9' => Err("backreference inside a class".to_string()),
                    b'p' | b'P' | b'N' | b'R' | b'X' | b'K' | b'G' => Err(format!(
                        "\\{} inside a class is not supported",
                        escaped as char
                    )),
                    other => single(self.byte_escape(other)?),
                }
            }
            other => single(other),
        }
    }

    /// `[:alpha:]` and `[:^alpha:]`; Perl reserves `[. .]` and `[= =]`.
    fn posix_class(&mut self) -> Result<ClassItem, String> {
        let marker = self.bump().unwrap_or(b':');
        if marker != b':' {
            return Err("POSIX syntax [. .] and [= =] is reserved".to_string());
        }
        let rest = self.rest();
        let end = rest
            .windows(2)
            .position(|w| w == b":]")
            .ok_or("unterminated POSIX class")?;
        let name = String::from_utf8_lossy(&rest[..end]).to_string();
        let bare = name.strip_prefix('^').unwrap_or(&name);
        const NAMES: [&str; 14] = [
            "alpha", "digit", "alnum", "ascii", "blank", "cntrl", "graph", "lower", "print",
            "punct", "space", "upper", "word", "xdigit",
        ];
        if !NAMES.contains(&bare) {
            return Err(format!("POSIX class [:{name}:] unknown"));
        }
        self.pos += end + 2;
        Ok(ClassItem::Set(format!("[:{name}:]")))
    }
}

fn parse_code(digits: &str, radix: u32) -> Result<u8, String> {
    let value = if digits.is_empty() {
        0
    } else {
        u32::from_str_radix(digits, radix).map_err(|_| format!("invalid escape digits {digits}"))?
    };
    u8::try_from(value).map_err(|_| {
        "code point above 0xFF: SpamAssassin matches bytes, so it could never match".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(text: &str) -> Regex {
        compile_delimited(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn matches(text: &str, haystack: &[u8]) -> bool {
        re(text).is_match(haystack)
    }

    fn refused(text: &str) -> String {
        compile_delimited(text.as_bytes()).expect_err(text)
    }

    #[test]
    fn delimiters_and_modifiers_are_stripped() {
        assert!(matches("/buy now/i", b"BUY NOW"));
        assert!(matches("m{a/b}", b"a/b"));
        assert!(matches("m!foo!", b"foo"));
        assert!(matches("qr(x+)", b"xx"));
        assert!(matches("m<a>i", b"A"));
        assert!(matches(r"/a\/b/", b"a/b"));
        assert_eq!(refused("foo"), "missing regexp delimiters");
        assert_eq!(refused("/foo"), "invalid end delimiter/mods");
        assert!(refused("/a/b/").contains("unquoted delimiter"));
        assert!(refused("/foo/g").contains("modifier 'g'"));
        assert!(refused("m\\foo\\").contains("backslash"));
    }

    #[test]
    fn flags_i_m_s_x() {
        assert!(matches("/^b/m", b"a\nb"));
        assert!(!matches("/^b/", b"a\nb"));
        assert!(matches("/a.b/s", b"a\nb"));
        assert!(!matches("/a.b/", b"a\nb"));
        assert!(matches("/ a b # comment/x", b"ab"));
        assert!(
            matches("/[ ]b/x", b" b"),
            "no whitespace skipping inside classes"
        );
        assert!(matches("/a(?i)b/", b"aB"));
        assert!(!matches("/a(?i:b)c/", b"aBC"));
        assert!(matches("/(?^i:a)/", b"A"));
        assert!(matches("/(?x: a b )c/", b"abc"));
        assert!(matches("/(?x: a b ) c/", b"ab c"), "x ends with its group");
        assert!(!matches("/(?x: a b ) c/", b"abc"));
    }

    #[test]
    fn dollar_matches_before_a_final_newline_only() {
        assert!(matches("/foo$/", b"foo\n"));
        assert!(matches("/foo$/", b"foo"));
        assert!(!matches("/foo$/", b"foo\nbar"));
        assert!(matches("/foo$/m", b"foo\nbar"));
        assert!(matches(r"/foo\Z/", b"foo\n"));
        assert!(!matches(r"/foo\z/", b"foo\n"));
    }

    #[test]
    fn ascii_classes_and_word_boundaries() {
        assert!(matches(r"/\bcash\b/", b"free cash!"));
        assert!(!matches(r"/\bcash\b/", b"freecash"));
        assert!(!matches(r"/\w/", "é".as_bytes()));
        assert!(!matches(r"/\d/", "٣".as_bytes()));
        assert!(matches(r"/[[:upper:]]{3}/", b"ABC"));
        assert!(matches(r"/[^[:alpha:]]/", b"1"));
        assert!(matches(r"/\s/", b"\x0b"));
        assert!(matches(r"/\h/", b"\xa0"));
        assert!(matches(r"/\v/", b"\r"));
        assert!(matches(r"/a\Rb/", b"a\r\nb"));
        assert!(matches(r"/a\Nb/", b"axb"));
        assert!(!matches(r"/a\Nb/", b"a\nb"));
    }

    #[test]
    fn non_greedy_and_counted_quantifiers() {
        let lazy = re("/<.+?>/");
        assert_eq!(lazy.find(b"<a><b>").unwrap().as_bytes(), b"<a>");
        assert!(matches("/^a{2,3}$/", b"aaa"));
        assert!(!matches("/^a{2,3}$/", b"aaaa"));
        assert!(matches("/^a{1, 3}$/", b"aa"));
        assert!(matches("/^a{2,}$/", b"aaaaa"));
        assert!(matches("/a{foo}/", b"a{foo}"));
        assert!(
            matches("/a{,3}/", b"a{,3}"),
            "Perl 5.36 reads {{,n}} literally"
        );
        assert!(refused("/a{3,2}/").contains("n > m"));
    }

    #[test]
    fn escapes_are_spelled_out() {
        assert!(matches(r"/\x41\x{42}\103\o{104}\e\cA/", b"ABCD\x1b\x01"));
        assert!(matches(r"/\0/", b"\0"));
        assert!(matches(r"/[\b]/", b"\x08"));
        assert!(matches(r"/\@\%\#\</", b"@%#<"));
        assert!(matches(r"/[\-\]]/", b"]"));
        assert!(matches(r"/[]a]/", b"]"));
        assert!(matches(r"/[a-c-]/", b"-"));
        assert!(matches(r"/[\w-]/", b"-"));
        assert!(matches(r"/[&&~~]/", b"~"));
        assert!(matches(r"/[a[]/", b"["));
        assert!(matches("/\u{e9}t\u{e9}/", "été".as_bytes()));
    }

    #[test]
    fn latin1_letters_fold_under_i_like_perl() {
        assert!(matches("/\\xC9/i", b"\xe9"));
        assert!(matches("/[\\xC0-\\xC9]/i", b"\xe9"));
        assert!(!matches("/[^\\xC9]/i", b"\xe9"));
        assert!(!matches("/\\xD7/i", b"\xf7"));
        assert!(!matches("/\\xC9/", b"\xe9"));
    }

    #[test]
    fn unsupported_constructs_are_refused_with_a_reason() {
        for (pattern, reason) in [
            ("/a(?=b)/", "lookahead"),
            ("/a(?!b)/", "lookahead"),
            ("/(?<=a)b/", "lookbehind"),
            ("/(?<!a)b/", "lookbehind"),
            (r"/(a)\1/", "backreference"),
            (r"/(?<n>a)\k<n>/", "backreference"),
            ("/a++/", "possessive"),
            ("/a{2}+/", "possessive"),
            ("/(?>a)/", "atomic"),
            ("/(?{ 1 })/", "code block"),
            ("/(??{ 1 })/", "code block"),
            ("/(?(1)a|b)/", "conditional"),
            ("/(?R)/", "recursion"),
            (r"/\p{L}/", "not supported"),
            (r"/\Qa.b\E/", "unrecognized escape"),
            (r"/a\yb/", "unrecognized escape"),
            (r"/[\w-z]/", "false [] range"),
            (r"/[z-a]/", "invalid [] range"),
            (r"/\x{263A}/", "above 0xFF"),
            (r"/\Ga/", "not supported"),
            (r"/a\Kb/", "not supported"),
            ("/(*FAIL)/", "verbs"),
            ("/(a/", "unmatched ("),
            ("/a)/", "unmatched )"),
            ("/[a/", "unmatched ["),
            ("/[[:foo:]]/", "unknown"),
        ] {
            let error = refused(pattern);
            assert!(error.contains(reason), "{pattern}: {error}");
        }
    }

    #[test]
    fn named_and_branch_reset_groups_become_plain_groups() {
        assert!(matches("/(?<a>x)(?<a>y)/", b"xy"));
        assert!(matches("/(?P<b>x)(?'c'y)/", b"xy"));
        assert!(matches("/(?|a|b)c/", b"bc"));
        assert!(matches("/a(?#comment)b/", b"ab"));
    }

    #[test]
    fn line_anchors_are_dropped_only_where_present() {
        assert!(without_line_anchors(&re("/to: undisclosed/i")).is_none());
        assert!(
            without_line_anchors(&re("/^ab$/")).is_none(),
            "no /m: text anchors"
        );
        assert!(
            without_line_anchors(&re("/^a$/m")).is_none(),
            "too short to filter"
        );
        let quick = without_line_anchors(&re("/^To:\\s*undisclosed$/mi")).unwrap();
        assert!(quick.is_match(b"x To: undisclosed y"));
        assert!(!quick.is_match(b"To: someone\n"));
    }

    proptest::proptest! {
        #[test]
        fn a_text_the_loose_regex_misses_cannot_match(
            pattern in proptest::sample::select(vec![
                "/^To:\\s*a+$/mi",
                "/^(?:ab|cd)\\b.*x$/m",
                "/(?:^|\\s)abc[^\\n]*$/m",
                "/\\Aabc|^cdx$/m",
            ]),
            text in "[abcdxTo: \n]{0,40}",
        ) {
            let exact = re(pattern);
            let quick = without_line_anchors(&exact).unwrap();
            if exact.is_match(text.as_bytes()) {
                proptest::prop_assert!(quick.is_match(text.as_bytes()));
            }
        }
    }
}
