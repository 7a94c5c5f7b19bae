//! Content-Transfer-Encoding: reads the header token and decodes a part's
//! body at least as leniently as the mail clients SIE protects, so nothing
//! a client would decode stays hidden from the scanners.

use std::borrow::Cow;

use mail_parser::parsers::MessageStream;

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
            TransferEncoding::QuotedPrintable => {
                // With no boundary to look for, mail-parser's MIME decoder
                // reads to the end and keeps malformed `=XY` escapes as
                // literal text instead of giving up on the whole part.
                MessageStream::new(body).decode_quoted_printable_mime(b"").1
            }
        }
    }
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

/// Base64 as RFC 2045 section 6.8 asks: characters outside the alphabet
/// are ignored, and `=` ends a group early.
///
/// mail-parser gives up on the first stray character and hands back the raw
/// text, but mail clients skip it and decode the rest, so a scanner must too.
/// A `=` in the middle (two encoded blocks pasted together) flushes the
/// partial group and decoding goes on.
pub fn decode_base64(encoded: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(encoded.len() / 4 * 3);
    let mut group: u32 = 0;
    let mut group_len = 0;
    for &byte in encoded {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                flush_partial_group(&mut decoded, group, group_len);
                group = 0;
                group_len = 0;
                continue;
            }
            _ => continue,
        };
        group = (group << 6) | u32::from(sextet);
        group_len += 1;
        if group_len == 4 {
            decoded.extend_from_slice(&group.to_be_bytes()[1..]);
            group = 0;
            group_len = 0;
        }
    }
    flush_partial_group(&mut decoded, group, group_len);
    decoded
}

/// Emits the whole bytes held by an unfinished group of 2 or 3 sextets; a
/// single sextet carries less than one byte and is dropped.
fn flush_partial_group(decoded: &mut Vec<u8>, group: u32, group_len: u32) {
    match group_len {
        2 => decoded.push((group >> 4) as u8),
        3 => decoded.extend_from_slice(&((group >> 2) as u16).to_be_bytes()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
