//! Text detection and normalisation as ClamAV 1.4.6 does them before its second,
//! normalised pass over a file: what counts as text (its ASCII / UTF-8 / UTF-16
//! heuristics over the first 1024 bytes) and the normalised form (lower case,
//! white space runs collapsed to one space, control and non-ASCII bytes dropped).

use crate::rules::byte_word::{HIGH, at_least, below, equal, load};

/// ClamAV reads this many bytes to decide a file's type.
const TYPE_WINDOW: usize = 1024;

/// ClamAV's default `MaxScriptNormalize`: larger files get no normalised pass.
pub(crate) const MAX_NORMALISE: usize = 5 * 1024 * 1024;

/// Byte classes of ClamAV's text detector (from file(1)): 0 never in text,
/// 1 plain ASCII text, 2 ISO-8859, 3 other extended ASCII.
const fn class_of(b: u8) -> u8 {
    match b {
        7..=10 | 12 | 13 | 27 => 1,
        0x20..=0x7e => 1,
        0x85 => 1,
        0x80..=0x9f => 3,
        0xa0..=0xff => 2,
        _ => 0,
    }
}

/// [`class_of`] for every byte: the detector reads up to 1024 bytes of every
/// part, and a table load costs less than the match.
const TEXT_CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = class_of(b as u8);
        b += 1;
    }
    table
};

fn text_class(b: u8) -> u8 {
    TEXT_CLASSES[usize::from(b)]
}

fn is_ascii_text(buf: &[u8]) -> bool {
    buf.iter().all(|&b| text_class(b) != 0)
}

fn is_utf8_text(buf: &[u8]) -> bool {
    let mut got_one = false;
    let mut i = 0;
    while i < buf.len() {
        let b = buf[i];
        if b & 0x80 == 0 {
            if text_class(b) != 1 {
                return false;
            }
        } else if b & 0x40 == 0 {
            return false;
        } else {
            let following = match b {
                _ if b & 0x20 == 0 => 1,
                _ if b & 0x10 == 0 => 2,
                _ if b & 0x08 == 0 => 3,
                _ if b & 0x04 == 0 => 4,
                _ if b & 0x02 == 0 => 5,
                _ => return false,
            };
            for _ in 0..following {
                i += 1;
                if i >= buf.len() {
                    return got_one;
                }
                if buf[i] & 0x80 == 0 || buf[i] & 0x40 != 0 {
                    return false;
                }
            }
            got_one = true;
        }
        i += 1;
    }
    got_one
}

fn is_utf16_text(buf: &[u8]) -> bool {
    if buf.len() < 2 {
        return false;
    }
    let (big_endian, bom) = match (buf[0], buf[1]) {
        (0xff, 0xfe) => (false, true),
        (0xfe, 0xff) => (true, true),
        _ => (true, false),
    };
    let mut bad = 0;
    let mut i = 2;
    while i + 1 < buf.len() {
        let c = if big_endian {
            u16::from(buf[i]) << 8 | u16::from(buf[i + 1])
        } else {
            u16::from(buf[i + 1]) << 8 | u16::from(buf[i])
        };
        if c == 0xfffe {
            return false;
        }
        if c < 128 && text_class(c as u8) != 1 {
            if !bom {
                return false;
            }
            bad += 1;
        }
        i += 2;
    }
    !(bom && bad >= buf.len() / 2)
}

/// Leading bytes of binary formats ClamAV recognises before trying text (a small
/// subset of its 255 built-in file types: the ones a mail attachment is likely to be).
const BINARY_MAGIC: &[&[u8]] = &[
    b"MZ",
    b"\x7fELF",
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"%PDF-",
    b"\x1f\x8b",
    b"BZh",
    b"Rar!",
    b"7z\xbc\xaf\x27\x1c",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
    b"GIF87a",
    b"GIF89a",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"\xca\xfe\xba\xbe",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"{\\rtf",
    b"CWS",
    b"FWS",
    b"ZWS",
];

/// True when ClamAV would type `data` as text (ASCII, UTF-8 or UTF-16) and so give it
/// a normalised pass.
pub(crate) fn is_text(data: &[u8]) -> bool {
    if data.len() > MAX_NORMALISE || BINARY_MAGIC.iter().any(|m| data.starts_with(m)) {
        return false;
    }
    if data.len() > 262 && &data[257..262] == b"ustar" {
        return false;
    }
    let head = &data[..data.len().min(TYPE_WINDOW)];
    is_ascii_text(head) || is_utf8_text(head) || is_utf16_text(head)
}

/// [`normalise`] as a two-state machine (state 1: inside a white-space run) over
/// every byte: each step holds the byte to write (low 8 bits), whether to keep it
/// (bit 8) and the next state (bit 9).
const NORMALISE_STEPS: [[u16; 256]; 2] = {
    let mut steps = [[0u16; 256]; 2];
    let mut state = 0;
    while state < 2 {
        let mut b = 0;
        while b < 256 {
            let byte = b as u8;
            steps[state][b] = match byte {
                9..=13 | b' ' if state == 0 => b' ' as u16 | 1 << 8 | 1 << 9,
                9..=13 | b' ' => b' ' as u16 | 1 << 9,
                0x21..=0x7e => byte.to_ascii_lowercase() as u16 | 1 << 8,
                // Dropped: the state stays.
                _ => (state as u16) << 9,
            };
            b += 1;
        }
        state += 1;
    }
    steps
};

/// The normalised text: upper case to lower case, runs of `\t \n \v \f \r` and space
/// to one space, other control bytes and bytes above 0x7e dropped (they do not end a
/// white-space run).
pub(crate) fn normalise(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; data.len()];
    let mut len = 0;
    let mut state = 0;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let word = load(chunk, 0);
        if let Some(lower) = plain_lower_case(word, state == 1) {
            out[len..len + 8].copy_from_slice(&lower.to_le_bytes());
            len += 8;
            state = usize::from(chunk[7] == b' ');
        } else {
            step_bytes(chunk, &mut out, &mut len, &mut state);
        }
    }
    step_bytes(chunks.remainder(), &mut out, &mut len, &mut state);
    out.truncate(len);
    out
}

/// Runs the two-state machine over `bytes`, writing at `out[*len..]`.
fn step_bytes(bytes: &[u8], out: &mut [u8], len: &mut usize, state: &mut usize) {
    for &b in bytes {
        let step = NORMALISE_STEPS[*state][usize::from(b)];
        // Every byte is written and kept by moving `len` past it: one table load
        // and no branch that depends on the text.
        out[*len] = step as u8;
        *len += usize::from(step >> 8) & 1;
        *state = usize::from(step >> 9) & 1;
    }
}

/// Eight bytes (little-endian) in lower case when each is kept as it is but for its
/// case: printable ASCII, or a space that follows no white space (`after_space` for
/// the byte before the first). `None` when the two-state machine must step through
/// them.
fn plain_lower_case(word: u64, after_space: bool) -> Option<u64> {
    let printable = at_least(word, 0x20) & below(word, 0x7f);
    let before = (word << 8) | if after_space { 0x20 } else { 0x41 };
    if printable != HIGH || equal(word, b' ') & equal(before, b' ') != 0 {
        return None;
    }
    let upper = at_least(word, 0x41) & below(word, 0x5b);
    Some(word | upper >> 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_clamav() {
        assert_eq!(normalise(b"Hello   WORLD\n"), b"hello world ");
        assert_eq!(normalise(b"A\x00B \x01 \xe9C"), b"ab c");
        assert_eq!(normalise(b"\t\r\nX\x0bY"), b" x y");
    }

    /// The byte rules of [`normalise`], one byte at a time.
    fn normalised_by_the_rules(data: &[u8]) -> Vec<u8> {
        let mut expected = Vec::new();
        let mut in_space = false;
        for &b in data {
            match b {
                9..=13 | b' ' => {
                    if !in_space {
                        expected.push(b' ');
                    }
                    in_space = true;
                }
                0x21..=0x7e => {
                    in_space = false;
                    expected.push(b.to_ascii_lowercase());
                }
                _ => {}
            }
        }
        expected
    }

    proptest::proptest! {
        #[test]
        fn normalises_as_the_byte_rules_say(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            proptest::prop_assert_eq!(normalise(&data), normalised_by_the_rules(&data));
        }

        // Mostly words and single spaces, so that most eight-byte runs are plain.
        #[test]
        fn normalises_text_as_the_byte_rules_say(data in proptest::collection::vec(
            proptest::sample::select(b"aaaaaAZz@[`{~!      \t\n\x01\x7f\xe9".to_vec()),
            0..200,
        )) {
            proptest::prop_assert_eq!(normalise(&data), normalised_by_the_rules(&data));
        }
    }

    #[test]
    fn text_types_as_measured() {
        assert!(is_text(b"Hello   WORLD\n"));
        assert!(is_text("caf\u{e9} HELLO".as_bytes()));
        assert!(is_text(b"caf\xe9 latin-1"));
        assert!(is_text(&[vec![0xffu8; 2000], b"HELLO".to_vec()].concat()));
        // UTF-16 without a byte-order mark: no pair reads as a control character.
        assert!(is_text(b"\x00\x01\x02HELLO  WORLD\n"));
        assert!(!is_text(b"\x00\x00\x00\x00HELLO"));
        assert!(!is_text(b"MZ\x90\x00 this is a program"));
        assert!(!is_text(b"\x00\x00\x00\x00 hello world\n\n"));
    }
}
