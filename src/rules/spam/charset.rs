//! Byte decoding the way SpamAssassin 4.0 does it before rules see text: its lenient
//! base64 and quoted-printable decoders, RFC 2047 encoded words, and its charset
//! normalization (`normalize_charset 1`, the default) to UTF-8. Character sets come
//! from mail-parser's decoders; Windows-1252 is SpamAssassin's fallback for text it
//! cannot decode otherwise.

use mail_parser::decoders::charsets::map::charset_decoder;

use crate::rules::byte_word::{hex_value, is_perl_space};

/// `Mail::SpamAssassin::Util::qp_decode`: trailing blanks before a line end go,
/// soft line breaks go, `=XX` becomes a byte; anything else stays as written.
pub fn qp_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut index = 0;
    // Text up to the next `=` or line end is copied whole: only the blanks that end
    // a line need a look.
    while index < input.len() {
        let rest = &input[index..];
        let Some(stop) = memchr::memchr2(b'=', b'\n', rest) else {
            out.extend_from_slice(rest);
            break;
        };
        let text = &rest[..stop];
        if rest[stop] == b'\n' {
            let (text, cr) = match text.strip_suffix(b"\r") {
                Some(text) => (text, &b"\r"[..]),
                None => (text, &b""[..]),
            };
            let blanks = text
                .iter()
                .rev()
                .take_while(|b| **b == b' ' || **b == b'\t')
                .count();
            out.extend_from_slice(&text[..text.len() - blanks]);
            out.extend_from_slice(cr);
            out.push(b'\n');
            index += stop + 1;
            continue;
        }
        out.extend_from_slice(text);
        index += stop;
        let after = &input[index + 1..];
        if after.starts_with(b"\n") {
            index += 2;
            continue;
        }
        if after.starts_with(b"\r\n") {
            index += 3;
            continue;
        }
        if let [high, low, ..] = after
            && let (Some(high), Some(low)) = (hex_value(*high), hex_value(*low))
        {
            out.push(high << 4 | low);
            index += 3;
            continue;
        }
        out.push(b'=');
        index += 1;
    }
    out
}

fn base64_value(byte: u8) -> Option<u8> {
    Some(match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    })
}

/// `Mail::SpamAssassin::Util::base64_decode`: whitespace and other stray characters
/// are skipped, `=` inside the data does not stop decoding, a final partial group
/// gives the bytes it holds.
pub fn base64_decode(input: &[u8]) -> Vec<u8> {
    let compact: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !is_perl_space(*b))
        .collect();
    let well_formed = compact.len().is_multiple_of(4)
        && compact.len() >= 2
        && compact
            .iter()
            .all(|b| base64_value(*b).is_some() || *b == b'=');
    // Stray characters go first; then trailing `=` padding. Inside the data, `=`
    // reads as 'A' (value 0) when the input is otherwise well formed (the
    // MIME::Base64 path) and as '/' (value 63) otherwise (the uudecode path).
    let kept: Vec<u8> = compact
        .into_iter()
        .filter(|b| base64_value(*b).is_some() || *b == b'=')
        .collect();
    let trailing = kept.iter().rev().take_while(|b| **b == b'=').count();
    let inner_equals = if well_formed { 0 } else { 63 };
    let sextets: Vec<u8> = kept[..kept.len() - trailing]
        .iter()
        .map(|&b| base64_value(b).unwrap_or(inner_equals))
        .collect();
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for group in sextets.chunks(4) {
        let mut bits = 0u32;
        for (index, &sextet) in group.iter().enumerate() {
            bits |= u32::from(sextet) << (18 - 6 * index);
        }
        let bytes = match group.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => 0,
        };
        out.extend_from_slice(&bits.to_be_bytes()[1..1 + bytes]);
    }
    out
}

/// Windows-1252 to UTF-8; cannot fail.
pub fn windows_1252(bytes: &[u8]) -> Vec<u8> {
    match charset_decoder(b"cp1252") {
        Some(decode) => decode(bytes).into_bytes(),
        None => bytes
            .iter()
            .map(|&b| b as char)
            .collect::<String>()
            .into_bytes(),
    }
}

/// Charsets SpamAssassin trusts to be plain ASCII when no byte has the top bit set.
fn is_ascii_compatible(charset: &str) -> bool {
    let lower = charset.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "us-ascii"
            | "ascii"
            | "ansi_x3.4-1986"
            | "ansi_x3.4-1968"
            | "iso646-us"
            | "utf-8"
            | "utf8"
            | "big5"
            | "gbk"
    ) || lower.starts_with("iso-8859")
        || lower.starts_with("iso8859")
        || lower.starts_with("iso 8859")
        || lower.starts_with("windows-")
        || lower.starts_with("koi8-")
        || lower.starts_with("euc-")
        || lower.starts_with("gb18030")
        || lower.starts_with("gb-18030")
        || lower.starts_with("gb 18030")
}

/// Text in `charset` as UTF-8, following SpamAssassin's `_normalize`: all-ASCII text
/// in an ASCII-compatible charset stays; unless `insist` (encoded words), valid UTF-8
/// is taken as UTF-8 whatever the label; then the declared charset; then Windows-1252.
pub fn normalize(bytes: &[u8], charset: &str, insist: bool) -> Vec<u8> {
    let has_8bit = !bytes.is_ascii();
    let charset = charset.trim();
    if !has_8bit && is_ascii_compatible(charset) {
        return bytes.to_vec();
    }
    if has_8bit && !insist && std::str::from_utf8(bytes).is_ok() {
        return bytes.to_vec();
    }
    let lower = charset.to_ascii_lowercase();
    let declared_ascii = matches!(lower.as_str(), "us-ascii" | "ascii");
    if !declared_ascii || insist {
        let decoded = if matches!(
            lower.as_str(),
            "iso-8859-1" | "iso8859-1" | "windows-1252" | "cp1252"
        ) {
            Some(windows_1252(bytes))
        } else if matches!(lower.as_str(), "utf-8" | "utf8") {
            insist.then(|| String::from_utf8_lossy(bytes).into_owned().into_bytes())
        } else {
            charset_decoder(charset.as_bytes()).map(|decode| decode(bytes).into_bytes())
        };
        if let Some(decoded) = decoded {
            let replaced = |text: &[u8]| text.windows(3).any(|w| w == "\u{FFFD}".as_bytes());
            if insist || !replaced(&decoded) || replaced(bytes) {
                return decoded;
            }
        }
    }
    if !has_8bit {
        return bytes.to_vec();
    }
    windows_1252(bytes)
}

/// Header field names whose bodies SpamAssassin never decodes as RFC 2047 words.
pub fn skips_rfc2047(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("resent-").unwrap_or(&lower);
    matches!(
        lower.as_str(),
        "received" | "mime-version" | "references" | "in-reply-to"
    ) || matches!(bare, "message-id" | "date")
        || lower.starts_with("list-")
}

/// One `=?charset?B|Q?text?=` word at the start of `text`: its length, charset
/// (without an RFC 2231 `*lang` suffix), and decoded bytes.
fn encoded_word(text: &[u8]) -> Option<(usize, String, Vec<u8>)> {
    let rest = text.strip_prefix(b"=?")?;
    let charset_len = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'*' | b'_' | b'-'))
        .count();
    if charset_len == 0 || rest.get(charset_len) != Some(&b'?') {
        return None;
    }
    let encoding = rest.get(charset_len + 1)?.to_ascii_uppercase();
    if !matches!(encoding, b'B' | b'Q') || rest.get(charset_len + 2) != Some(&b'?') {
        return None;
    }
    let data_start = charset_len + 3;
    let data_len = rest[data_start..].iter().position(|b| *b == b'?')?;
    if rest.get(data_start + data_len + 1) != Some(&b'=') {
        return None;
    }
    let data = &rest[data_start..data_start + data_len];
    let decoded = if encoding == b'B' {
        base64_decode(data)
    } else {
        let spaced: Vec<u8> = data
            .iter()
            .flat_map(|&b| if b == b'_' { b"=20".to_vec() } else { vec![b] })
            .collect();
        qp_decode(&spaced)
    };
    let charset = String::from_utf8_lossy(&rest[..charset_len]).to_ascii_lowercase();
    let charset = charset.split('*').next().unwrap_or_default().to_string();
    Some((2 + data_start + data_len + 2, charset, decoded))
}

/// SpamAssassin's `_decode_header`: RFC 2047 words decoded and transcoded to UTF-8,
/// whitespace between adjacent words dropped, neighbouring words in the same charset
/// joined before transcoding (so a character split across words survives). Raw
/// non-ASCII bytes are read as UTF-8 when valid, else guessed.
pub fn decode_header(name: &str, value_in: &[u8]) -> Vec<u8> {
    let mut value: Vec<u8> = Vec::with_capacity(value_in.len());
    for (index, &byte) in value_in.iter().enumerate() {
        let ends_line = byte == b'\n' || (byte == b'\r' && value_in.get(index + 1) == Some(&b'\n'));
        if !ends_line {
            value.push(byte);
        }
    }
    if !value.is_ascii() {
        value = normalize(&value, "UTF-8", false);
    }
    if skips_rfc2047(name) || !value.windows(2).any(|w| w == b"=?") {
        return value;
    }
    // Sections of (bytes, charset); an empty charset is plain text.
    let mut sections: Vec<(Vec<u8>, String)> = Vec::new();
    let mut index = 0;
    while index < value.len() {
        let (len, charset, bytes) = match encoded_word(&value[index..]) {
            Some((len, charset, bytes)) => {
                let mut len = len;
                let blanks = value[index + len..]
                    .iter()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
                if blanks > 0 && encoded_word(&value[index + len + blanks..]).is_some() {
                    len += blanks;
                }
                (len, charset, bytes)
            }
            None => {
                let plain = if value[index] == b'=' {
                    1
                } else {
                    value[index..].iter().take_while(|b| **b != b'=').count()
                };
                (plain, String::new(), value[index..index + plain].to_vec())
            }
        };
        match sections.last_mut() {
            Some((text, last)) if *last == charset => text.extend_from_slice(&bytes),
            _ => sections.push((bytes, charset)),
        }
        index += len;
    }
    sections
        .into_iter()
        .flat_map(|(bytes, charset)| {
            if charset.is_empty() {
                bytes
            } else {
                normalize(&bytes, &charset, true)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoder a byte at a time, as it reads in SpamAssassin's source.
    fn qp_decode_bytewise(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        let mut index = 0;
        while index < input.len() {
            let byte = input[index];
            if byte == b' ' || byte == b'\t' {
                let blanks = input[index..]
                    .iter()
                    .take_while(|b| **b == b' ' || **b == b'\t')
                    .count();
                let after = &input[index + blanks..];
                if !(after.starts_with(b"\n") || after.starts_with(b"\r\n")) {
                    out.extend_from_slice(&input[index..index + blanks]);
                }
                index += blanks;
                continue;
            }
            if byte == b'=' {
                let after = &input[index + 1..];
                if after.starts_with(b"\n") {
                    index += 2;
                    continue;
                }
                if after.starts_with(b"\r\n") {
                    index += 3;
                    continue;
                }
                if let [high, low, ..] = after
                    && let (Some(high), Some(low)) = (hex_value(*high), hex_value(*low))
                {
                    out.push(high << 4 | low);
                    index += 3;
                    continue;
                }
            }
            out.push(byte);
            index += 1;
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn quoted_printable_agrees_with_the_bytewise_decoder(
            input in proptest::collection::vec(
                proptest::sample::select(b"=\r\n \taF3z".to_vec()),
                0..60,
            )
        ) {
            proptest::prop_assert_eq!(qp_decode(&input), qp_decode_bytewise(&input));
        }
    }

    #[test]
    fn quoted_printable_like_spamassassin() {
        assert_eq!(qp_decode(b"a=3Db  \nc=\nd=zz=4"), b"a=b\ncd=zz=4");
        assert_eq!(qp_decode(b"x=\r\ny"), b"xy");
    }

    #[test]
    fn base64_skips_junk_and_keeps_partial_groups() {
        assert_eq!(base64_decode(b"aGVs\nbG8="), b"hello");
        assert_eq!(base64_decode(b"aGVs!!bG8"), b"hello");
        assert_eq!(base64_decode(b"QQ"), b"A");
        assert_eq!(base64_decode(b""), b"");
    }

    #[test]
    fn normalize_keeps_utf8_and_guesses_latin1() {
        assert_eq!(normalize("é".as_bytes(), "us-ascii", false), "é".as_bytes());
        assert_eq!(normalize(b"\xe9", "iso-8859-1", false), "é".as_bytes());
        assert_eq!(normalize(b"\x80", "us-ascii", false), "€".as_bytes());
        assert_eq!(normalize(b"plain", "utf-8", false), b"plain");
    }

    #[test]
    fn encoded_words_are_decoded_and_joined() {
        assert_eq!(
            decode_header("Subject", b"=?UTF-8?B?w6k=?= =?UTF-8?Q?t=C3=A9?= x"),
            "été x".as_bytes()
        );
        assert_eq!(
            decode_header("Subject", b"=?iso-8859-1?q?caf=E9_ok?="),
            "café ok".as_bytes()
        );
        assert_eq!(
            decode_header("Message-ID", b"=?utf-8?q?x?="),
            b"=?utf-8?q?x?="
        );
        assert_eq!(decode_header("Subject", b"a = b =?x"), b"a = b =?x");
    }
}
