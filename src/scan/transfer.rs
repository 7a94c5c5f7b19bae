//! Content-Transfer-Encoding: reads the header token and decodes a part's
//! body at least as leniently as the mail clients SIE protects, so nothing
//! a client would decode stays hidden from the scanners.

use std::borrow::Cow;

use crate::rules::byte_word::hex_value;

/// How a part's body is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEncoding {
    /// `7bit`, `8bit`, `binary`, a missing header or an unknown token: the
    /// bytes are the content, as RFC 2045 says for unknown encodings.
    Identity,
    Base64,
    QuotedPrintable,
    /// `x-uuencode` (Outlook Express and older clients): the body holds
    /// `begin ... end` blocks, decoded like uuencoded text.
    Uuencode,
}

impl TransferEncoding {
    /// Parses a raw header value such as ` Base64 (comment)\r\n`.
    pub fn from_header_value(value: &[u8]) -> TransferEncoding {
        let token = value
            .trim_ascii_start()
            .split(|&b| b.is_ascii_whitespace() || b == b';' || b == b'(')
            .next()
            .unwrap_or_default();
        let is = |name: &str| token.eq_ignore_ascii_case(name.as_bytes());
        if is("base64") {
            TransferEncoding::Base64
        } else if is("quoted-printable") {
            TransferEncoding::QuotedPrintable
        } else if is("x-uuencode") || is("uuencode") || is("x-uue") {
            TransferEncoding::Uuencode
        } else {
            TransferEncoding::Identity
        }
    }

    /// The decoded body. Uuencoded bodies are returned as they are: their
    /// blocks are found and decoded by the caller, which also needs their
    /// file names.
    pub fn decode(self, body: &[u8]) -> Cow<'_, [u8]> {
        match self {
            TransferEncoding::Identity | TransferEncoding::Uuencode => Cow::Borrowed(body),
            TransferEncoding::Base64 => Cow::Owned(decode_base64(body)),
            TransferEncoding::QuotedPrintable => Cow::Owned(decode_quoted_printable(body)),
        }
    }
}

/// Where [`decode_quoted_printable`] is: after a plain byte, after `=`, or after `=`
/// and one hex digit (its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QpState {
    Plain,
    Equals,
    FirstHex(u8),
}

/// Quoted-printable decoded as mail-parser's MIME decoder decodes a part with no
/// boundary to look for, which is how mail clients read it: a malformed `=XY` stays
/// as literal text, a bare `\r` is dropped (and the first one makes every line end
/// `\r\n`), white space before a line end is trimmed, white space after `=` is
/// skipped, and `==` anywhere gives an empty part. Plain text between `=`, `\n` and
/// `\r` is copied a run at a time; mail-parser's own decoder, a byte at a time, is
/// the tests' oracle.
fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut state = QpState::Plain;
    let mut line_end: &[u8] = b"\n";
    // Plain white space at the end of `out`, trimmed if a line end follows.
    let mut trailing_space = 0;
    let mut last = 0u8;
    let mut at = 0;
    while at < body.len() {
        if state == QpState::Plain {
            let end =
                memchr::memchr3(b'=', b'\n', b'\r', &body[at..]).map_or(body.len(), |i| at + i);
            let run = &body[at..end];
            if let Some(&run_last) = run.last() {
                out.extend_from_slice(run);
                let space = run.iter().rev().take_while(|b| is_qp_space(**b)).count();
                trailing_space = if space == run.len() {
                    trailing_space + space
                } else {
                    space
                };
                last = run_last;
                at = end;
                if at == body.len() {
                    break;
                }
            }
        }
        let byte = body[at];
        match (byte, state) {
            (b'=', QpState::Plain) => state = QpState::Equals,
            (b'=', _) => return Vec::new(),
            (b'\n', QpState::Equals) => {
                state = QpState::Plain;
                trailing_space = 0;
            }
            (b'\n', _) => {
                out.truncate(out.len() - trailing_space);
                out.extend_from_slice(line_end);
                trailing_space = 0;
            }
            (b'\r', _) => line_end = b"\r\n",
            (_, QpState::Plain) => {
                out.push(byte);
                trailing_space = if is_qp_space(byte) {
                    trailing_space + 1
                } else {
                    0
                };
            }
            (_, QpState::Equals) => match hex_value(byte) {
                Some(high) => state = QpState::FirstHex(high),
                None if is_qp_space(byte) => {}
                None => {
                    out.extend_from_slice(&[b'=', byte]);
                    state = QpState::Plain;
                    trailing_space = 0;
                }
            },
            (_, QpState::FirstHex(high)) => {
                match hex_value(byte) {
                    Some(low) => out.push(high << 4 | low),
                    // `last` rather than the first digit: a line end between the
                    // two leaves the state as it was, and mail-parser then writes
                    // the byte before this one.
                    None => out.extend_from_slice(&[b'=', last, byte]),
                }
                state = QpState::Plain;
                trailing_space = 0;
            }
        }
        last = byte;
        at += 1;
    }
    out
}

/// White space as mail-parser's decoder counts it, `\n` and `\r` aside.
fn is_qp_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\x0c')
}

/// Base64 in lines of 76 characters, as RFC 2045 asks of mail.
pub fn encode_base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::new();
    for (index, chunk) in data.chunks(3).enumerate() {
        if index > 0 && index % 19 == 0 {
            encoded.push('\n');
        }
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let group = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        for position in 0..4 {
            if position <= chunk.len() {
                let sextet = (group >> (18 - 6 * position)) & 0x3f;
                encoded.push(char::from(ALPHABET[sextet as usize]));
            } else {
                encoded.push('=');
            }
        }
    }
    encoded
}

/// Sextet of each byte; [`NOT_BASE64`] for bytes outside the alphabet and
/// [`BASE64_PAD`] for `=`.
const BASE64_SEXTETS: [u8; 256] = {
    let mut table = [NOT_BASE64; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut index = 0;
    while index < 64 {
        table[alphabet[index] as usize] = index as u8;
        index += 1;
    }
    table[b'=' as usize] = BASE64_PAD;
    table
};
const NOT_BASE64: u8 = 0xff;
const BASE64_PAD: u8 = 0xfe;

/// Base64 as RFC 2045 section 6.8 asks: characters outside the alphabet
/// are ignored, and `=` ends a group early.
///
/// mail-parser gives up on the first stray character and hands back the raw
/// text, but mail clients skip it and decode the rest, so a scanner must too.
/// A `=` in the middle (two encoded blocks pasted together) flushes the
/// partial group and decoding goes on.
///
/// Runs of 8 alphabet characters starting on a group boundary (nearly all of
/// a well-formed body) are decoded 6 bytes at a time; a line break or any
/// other byte takes the byte-at-a-time path, which realigns on the next
/// group boundary.
pub fn decode_base64(encoded: &[u8]) -> Vec<u8> {
    // Every character yields at most 3/4 of a byte, whatever the mix of
    // groups, padding and stray bytes, so this never grows.
    let mut decoded = vec![0u8; encoded.len() / 4 * 3 + 3];
    let mut len = 0;
    let mut group: u32 = 0;
    let mut group_len = 0;
    let mut at = 0;
    while at < encoded.len() {
        if group_len == 0 {
            while let Some(chunk) = encoded.get(at..at + 8) {
                let Some(bytes) = decode_whole_chunk(chunk.try_into().expect("8 bytes")) else {
                    break;
                };
                decoded[len..len + 6].copy_from_slice(&bytes);
                len += 6;
                at += 8;
            }
            // The last whole group of a 76-character line.
            if let Some(&[c0, c1, c2, c3]) = encoded.get(at..at + 4) {
                let high = BASE64_PAIRS[usize::from(u16::from_le_bytes([c0, c1]))];
                let low = BASE64_PAIRS[usize::from(u16::from_le_bytes([c2, c3]))];
                if (high | low) < 1 << 12 {
                    let bits = (u32::from(high) << 12) | u32::from(low);
                    decoded[len..len + 3].copy_from_slice(&bits.to_be_bytes()[1..]);
                    len += 3;
                    at += 4;
                }
            }
            if at >= encoded.len() {
                break;
            }
        }
        match BASE64_SEXTETS[usize::from(encoded[at])] {
            NOT_BASE64 => {}
            BASE64_PAD => {
                len += flush_partial_group(&mut decoded[len..], group, group_len);
                group = 0;
                group_len = 0;
            }
            sextet => {
                group = (group << 6) | u32::from(sextet);
                group_len += 1;
                if group_len == 4 {
                    decoded[len..len + 3].copy_from_slice(&group.to_be_bytes()[1..]);
                    len += 3;
                    group = 0;
                    group_len = 0;
                }
            }
        }
        at += 1;
    }
    len += flush_partial_group(&mut decoded[len..], group, group_len);
    decoded.truncate(len);
    decoded
}

/// The 12 bits of each pair of characters, indexed `first | second << 8` (a
/// little-endian load); [`NOT_A_PAIR`] when either is no alphabet character.
/// 128 KiB, of which well-formed text touches the 64 rows of alphabet seconds.
static BASE64_PAIRS: [u16; 1 << 16] = {
    let mut table = [NOT_A_PAIR; 1 << 16];
    let mut index = 0;
    while index < 1 << 16 {
        let first = BASE64_SEXTETS[index & 0xff];
        let second = BASE64_SEXTETS[index >> 8];
        if first < 64 && second < 64 {
            table[index] = ((first as u16) << 6) | second as u16;
        }
        index += 1;
    }
    table
};
const NOT_A_PAIR: u16 = 0xffff;

/// The 6 bytes of 8 alphabet characters; `None` if any is not one.
#[inline(always)]
fn decode_whole_chunk(chunk: &[u8; 8]) -> Option<[u8; 6]> {
    let pair = |index: usize| {
        u64::from(BASE64_PAIRS[usize::from(u16::from_le_bytes([chunk[index], chunk[index + 1]]))])
    };
    let (p0, p1, p2, p3) = (pair(0), pair(2), pair(4), pair(6));
    // Pairs hold 12 bits; the marker has the top bits set.
    if (p0 | p1 | p2 | p3) >= 1 << 12 {
        return None;
    }
    let bits = (p0 << 36) | (p1 << 24) | (p2 << 12) | p3;
    let be = bits.to_be_bytes();
    Some([be[2], be[3], be[4], be[5], be[6], be[7]])
}

/// Writes the whole bytes held by an unfinished group of 2 or 3 sextets to
/// the start of `out` and returns how many; a single sextet carries less
/// than one byte and is dropped.
fn flush_partial_group(out: &mut [u8], group: u32, group_len: u32) -> usize {
    match group_len {
        2 => {
            out[0] = (group >> 4) as u8;
            1
        }
        3 => {
            out[..2].copy_from_slice(&((group >> 2) as u16).to_be_bytes());
            2
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::parsers::MessageStream;

    #[test]
    fn header_tokens_are_case_insensitive_and_trimmed() {
        let parse = TransferEncoding::from_header_value;
        assert_eq!(parse(b" Base64\r\n"), TransferEncoding::Base64);
        assert_eq!(parse(b"BASE64 (sent by x)"), TransferEncoding::Base64);
        assert_eq!(
            parse(b"\tquoted-printable\n"),
            TransferEncoding::QuotedPrintable
        );
        assert_eq!(parse(b" x-uuencode"), TransferEncoding::Uuencode);
        assert_eq!(parse(b" 7bit"), TransferEncoding::Identity);
        assert_eq!(parse(b" base64x"), TransferEncoding::Identity);
        assert_eq!(parse(b""), TransferEncoding::Identity);
    }

    #[test]
    fn base64_decodes_lines_and_padding() {
        assert_eq!(decode_base64(b"aGVs\nbG8g\r\nd29y\nbGQ=\n"), b"hello world");
        assert_eq!(decode_base64(b"aGk="), b"hi");
        assert_eq!(decode_base64(b"aA=="), b"h");
        assert_eq!(decode_base64(b""), b"");
    }

    #[test]
    fn base64_skips_characters_outside_the_alphabet() {
        assert_eq!(decode_base64(b"aGVs!bG8*\n@@"), b"hello");
        assert_eq!(decode_base64(b"\x00\xff-aGk"), b"hi");
    }

    #[test]
    fn base64_goes_on_after_padding_in_the_middle() {
        assert_eq!(decode_base64(b"aGk=aGk="), b"hihi");
    }

    #[test]
    fn base64_unfinished_group_keeps_its_whole_bytes() {
        assert_eq!(decode_base64(b"aGVsbA"), b"hell");
        assert_eq!(decode_base64(b"aGVsbG8"), b"hello");
        assert_eq!(decode_base64(b"aGVsb"), b"hel");
    }

    /// The byte-at-a-time decoder the fast one replaced: the definition of
    /// the lenient semantics the fast path must keep.
    fn decode_base64_bytewise(encoded: &[u8]) -> Vec<u8> {
        let mut decoded = Vec::new();
        let (mut group, mut group_len) = (0u32, 0);
        let flush = |decoded: &mut Vec<u8>, group: u32, group_len: u32| {
            let mut out = [0u8; 2];
            let n = flush_partial_group(&mut out, group, group_len);
            decoded.extend_from_slice(&out[..n]);
        };
        for &byte in encoded {
            let sextet = match byte {
                b'A'..=b'Z' => byte - b'A',
                b'a'..=b'z' => byte - b'a' + 26,
                b'0'..=b'9' => byte - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => {
                    flush(&mut decoded, group, group_len);
                    (group, group_len) = (0, 0);
                    continue;
                }
                _ => continue,
            };
            group = (group << 6) | u32::from(sextet);
            group_len += 1;
            if group_len == 4 {
                decoded.extend_from_slice(&group.to_be_bytes()[1..]);
                (group, group_len) = (0, 0);
            }
        }
        flush(&mut decoded, group, group_len);
        decoded
    }

    #[test]
    fn base64_fast_path_handles_odd_line_lengths() {
        let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let encoded = encode_base64(&data).replace('\n', "");
        for width in [1, 3, 5, 7, 8, 9, 75, 76, 77] {
            let wrapped: Vec<u8> = encoded
                .as_bytes()
                .chunks(width)
                .flat_map(|line| line.iter().copied().chain(*b"\r\n"))
                .collect();
            assert_eq!(decode_base64(&wrapped), data, "lines of {width}");
        }
    }

    proptest::proptest! {
        #[test]
        fn base64_fast_path_agrees_with_the_bytewise_decoder(
            encoded in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => proptest::sample::select(
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".to_vec()
                    ),
                    1 => proptest::sample::select(b"=\r\n -!".to_vec()),
                    1 => proptest::num::u8::ANY,
                ],
                0..200,
            )
        ) {
            proptest::prop_assert_eq!(decode_base64(&encoded), decode_base64_bytewise(&encoded));
        }
    }

    proptest::proptest! {
        #[test]
        fn quoted_printable_decodes_as_mail_parser_does(
            body in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::sample::select(b"=\n\r \t\x0caF09gz.".to_vec()),
                    1 => proptest::num::u8::ANY,
                ],
                0..200,
            )
        ) {
            let oracle = MessageStream::new(&body).decode_quoted_printable_mime(b"").1;
            proptest::prop_assert_eq!(decode_quoted_printable(&body), oracle.into_owned());
        }
    }

    #[test]
    fn quoted_printable_keeps_malformed_escapes() {
        let qp = TransferEncoding::QuotedPrintable;
        assert_eq!(
            &*qp.decode(b"caf=C3=A9 soft=\nbreak"),
            "café softbreak".as_bytes()
        );
        assert_eq!(&*qp.decode(b"100=ZZ"), b"100=ZZ");
    }

    #[test]
    fn identity_and_uuencode_borrow_the_body() {
        let body = b"begin 644 a\nend\n";
        assert!(matches!(
            TransferEncoding::Uuencode.decode(body),
            Cow::Borrowed(_)
        ));
        assert_eq!(&*TransferEncoding::Identity.decode(body), body);
    }
}
