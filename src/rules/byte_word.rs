//! Byte classes shared by the text decoders and normalisers: hex digits, Perl's ASCII
//! white space, and byte-wise tests on eight bytes at once (a `u64` read little-endian)
//! for their fast paths. Each eight-byte test works on the low seven bits of a byte
//! plus its high bit, so no result carries from one byte into the next.

const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
pub(crate) const HIGH: u64 = 0x8080_8080_8080_8080;
const ONES: u64 = 0x0101_0101_0101_0101;

/// Perl's `\s` on ASCII bytes (which SpamAssassin's rules and decoders use): space,
/// `\t`, `\n`, `\v`, `\f` and `\r`. `u8::is_ascii_whitespace` leaves out `\v`.
pub(crate) const fn is_perl_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

/// Value of each hex digit, either case; 0xff for other bytes.
pub(crate) static HEX_VALUES: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut digit = 0;
    while digit < 16 {
        table[b"0123456789abcdef"[digit] as usize] = digit as u8;
        table[b"0123456789ABCDEF"[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

/// The value of the hex digit `byte`, either case.
pub(crate) fn hex_value(byte: u8) -> Option<u8> {
    let value = HEX_VALUES[usize::from(byte)];
    (value < 16).then_some(value)
}

/// The eight bytes at `at` (`bytes.len() >= at + 8`), the first in the low byte.
pub(crate) fn load(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The high bit of each byte of `word` that is at least `n` (1 <= n <= 0x80).
pub(crate) const fn at_least(word: u64, n: u8) -> u64 {
    (((word & LOW) + (0x80 - n as u64) * ONES) | word) & HIGH
}

/// The high bit of each byte of `word` that is below `n` (1 <= n <= 0x80).
pub(crate) const fn below(word: u64, n: u8) -> u64 {
    !at_least(word, n) & HIGH
}

/// The high bit of each byte of `word` equal to `byte`.
pub(crate) const fn equal(word: u64, byte: u8) -> u64 {
    below(word ^ (byte as u64 * ONES), 1)
}

/// The index of the first byte whose high bit `found` (a result of the tests above)
/// holds, from 0 to 7.
pub(crate) fn first(found: u64) -> usize {
    found.trailing_zeros() as usize / 8
}

/// The first index from `from` whose byte is below 0x20, equals `also`, or is a space
/// followed by a byte up to 0x20 (a space starting a white-space run); `bytes.len()`
/// if there is none. A space at the end does not count.
pub(crate) fn next_blank_or_control(bytes: &[u8], from: usize, also: Option<u8>) -> usize {
    let mut at = from;
    while at + 9 <= bytes.len() {
        let word = load(bytes, at);
        let next = load(bytes, at + 1);
        let mut found = below(word, 0x20) | (equal(word, b' ') & below(next, 0x21));
        if let Some(also) = also {
            found |= equal(word, also);
        }
        if found != 0 {
            return at + first(found);
        }
        at += 8;
    }
    let blank_after = |i: usize| bytes.get(i + 1).is_some_and(|&b| b <= b' ');
    (at..bytes.len())
        .find(|&i| {
            let b = bytes[i];
            b < b' ' || Some(b) == also || b == b' ' && blank_after(i)
        })
        .unwrap_or(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn tests_agree_with_byte_comparisons(bytes in proptest::array::uniform8(proptest::prelude::any::<u8>()), n in 1u8..=0x80) {
            let word = u64::from_le_bytes(bytes);
            for (i, &b) in bytes.iter().enumerate() {
                let bit = 0x80u64 << (8 * i);
                proptest::prop_assert_eq!(at_least(word, n) & bit != 0, b >= n);
                proptest::prop_assert_eq!(below(word, n) & bit != 0, b < n);
                proptest::prop_assert_eq!(equal(word, n) & bit != 0, b == n);
            }
        }

        #[test]
        fn next_blank_or_control_finds_the_first(
            bytes in proptest::collection::vec(proptest::sample::select(b"ab  \t\n\x01\x1f!\xc3\xff".to_vec()), 0..40),
            from in 0usize..40,
            also in proptest::option::of(proptest::sample::select(vec![0xc3u8, b'!'])),
        ) {
            let from = from.min(bytes.len());
            let expected = (from..bytes.len())
                .find(|&i| {
                    bytes[i] < 0x20
                        || Some(bytes[i]) == also
                        || bytes[i] == b' ' && bytes.get(i + 1).is_some_and(|&b| b <= 0x20)
                })
                .unwrap_or(bytes.len());
            proptest::prop_assert_eq!(next_blank_or_control(&bytes, from, also), expected);
        }
    }
}
