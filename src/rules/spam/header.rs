//! What a `header` rule matches, as SpamAssassin's `PerMsgStatus::get` builds it:
//! every field of that name, decoded (RFC 2047, unfolded, trimmed) and each ending in
//! a newline, joined; `:raw` gives the fields as written (folding kept), `:addr` and
//! `:name` the addresses or display names in them (one per line), `:first` and
//! `:last` one field. `ALL` is every field as `Name: value`, `ALL:raw` the header
//! section as received; `ToCc` is To then Cc; `MESSAGEID` the Message-Id fields.
//!
//! The address parser approximates SpamAssassin's: the list is split at commas
//! outside quotes, angle brackets and comments; a group name (`group: a, b;`) is
//! dropped; an address is the text in `<>` or a bare `local@domain`; the display name
//! is the phrase before `<>` (quotes and comments removed) or else the comment.

use super::charset::decode_header;
use super::message::Message;

/// SpamAssassin's pseudo-headers built from data SIE does not have (relay parsing,
/// the SMTP envelope); a rule on one of them is refused at load time.
fn is_unsupported_pseudo_header(name: &str) -> bool {
    matches!(
        name,
        "ALL-TRUSTED" | "ALL-INTERNAL" | "ALL-UNTRUSTED" | "ALL-EXTERNAL"
    ) || matches!(
        name.to_ascii_lowercase().as_str(),
        "envelopefrom"
            | "x-spam-relays-untrusted"
            | "x-spam-relays-trusted"
            | "x-spam-relays-internal"
            | "x-spam-relays-external"
    )
}

#[derive(Debug, Clone, PartialEq)]
enum Source {
    All,
    ToCc,
    MessageId,
    Named(Vec<u8>),
}

/// The header part of a `header` rule: `Subject`, `From:addr`, `ALL:raw`, ...
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderSpec {
    source: Source,
    raw: bool,
    addr: bool,
    name: bool,
    first: bool,
    last: bool,
}

impl HeaderSpec {
    /// Parses `Name` or `Name:mod[:mod]` as written in a rule.
    pub fn parse(text: &str) -> Result<HeaderSpec, String> {
        let mut pieces = text.split(':');
        let name = pieces.next().unwrap_or_default();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(format!("invalid header name '{text}'"));
        }
        if is_unsupported_pseudo_header(name) {
            return Err(format!(
                "pseudo-header {name} needs relay or envelope data SIE does not have"
            ));
        }
        let mut spec = HeaderSpec {
            source: match name {
                "ALL" => Source::All,
                "MESSAGEID" => Source::MessageId,
                _ if name.eq_ignore_ascii_case("ToCc") => Source::ToCc,
                _ => Source::Named(name.to_ascii_lowercase().into_bytes()),
            },
            raw: false,
            addr: false,
            name: false,
            first: false,
            last: false,
        };
        for modifier in pieces {
            match modifier {
                "raw" => spec.raw = true,
                "addr" => spec.addr = true,
                "name" => spec.name = true,
                "first" => spec.first = true,
                "last" => spec.last = true,
                "" => {}
                "host" | "domain" | "ip" | "revip" => {
                    return Err(format!(
                        "header modifier :{modifier} is not supported (it needs SpamAssassin's domain tables)"
                    ));
                }
                other => return Err(format!("invalid header modifier :{other}")),
            }
        }
        Ok(spec)
    }

    /// The text the rule matches, or `None` when the message has no such field.
    pub fn get(&self, message: &Message) -> Option<Vec<u8>> {
        let values = self.values(message);
        if values.is_empty() {
            return None;
        }
        let separator: &[u8] = if values[0].ends_with(b"\n") {
            b""
        } else {
            b"\n"
        };
        Some(values.join(separator))
    }

    fn field_values(&self, message: &Message, lname: &[u8]) -> Vec<Vec<u8>> {
        let raw = self.raw || self.addr || self.name;
        message
            .headers()
            .iter()
            .filter(|h| h.lname == lname)
            .map(|h| {
                if raw {
                    h.raw.clone()
                } else {
                    let mut value = h.decoded.clone();
                    value.push(b'\n');
                    value
                }
            })
            .collect()
    }

    fn values(&self, message: &Message) -> Vec<Vec<u8>> {
        let mut values = match &self.source {
            Source::All => return all_headers(message, self.raw),
            Source::ToCc => {
                let mut values = self.field_values(message, b"to");
                values.extend(self.field_values(message, b"cc"));
                values
            }
            Source::MessageId => [
                &b"x-message-id"[..],
                b"resent-message-id",
                b"x-original-message-id",
                b"message-id",
            ]
            .iter()
            .flat_map(|name| self.field_values(message, name))
            .filter(|value| !value.is_empty())
            .collect(),
            Source::Named(name) => self.field_values(message, name),
        };
        if values.is_empty() {
            return values;
        }
        if self.first {
            values.truncate(1);
        } else if self.last {
            values.drain(..values.len() - 1);
        }
        if self.addr || self.name {
            values = values
                .iter()
                .flat_map(|line| parse_addresses(line))
                .filter_map(|address| {
                    if self.addr {
                        address.address
                    } else {
                        address.phrase.map(|phrase| {
                            if self.raw {
                                phrase
                            } else {
                                clean_name(&phrase)
                            }
                        })
                    }
                })
                .collect();
        }
        values
    }
}

/// `ALL`: `Name: decoded\n` per field (at most 64 KB), or the raw header section.
fn all_headers(message: &Message, raw: bool) -> Vec<Vec<u8>> {
    if raw {
        let mut fields: Vec<Vec<u8>> = Vec::new();
        // `/^([^ \t].*?\n)(?![ \t])/smg`: a field is a line not starting with a
        // blank plus its continuation lines. The blank line ending the header
        // section is no field when it is `\n`, but is one when it is `\r\n`.
        for line in message.pristine_headers.split_inclusive(|b| *b == b'\n') {
            match (line.first(), fields.last_mut()) {
                (Some(b' ' | b'\t'), Some(field)) => field.extend_from_slice(line),
                (Some(b' ' | b'\t'), None) => {}
                _ if line == b"\n" => break,
                _ => fields.push(line.to_vec()),
            }
        }
        fields.retain(|field| field.ends_with(b"\n"));
        return fields;
    }
    let mut size = 0;
    let mut lines = Vec::new();
    for header in message.headers() {
        size += header.lname.len() + header.decoded.len() + 3;
        if size > 65536 {
            break;
        }
        let mut line = header.name.clone();
        line.extend_from_slice(b": ");
        line.extend_from_slice(&header.decoded);
        line.push(b'\n');
        lines.push(line);
    }
    lines
}

/// A display name as `:name` returns it: RFC 2047 decoded, whitespace runs as one
/// space, trimmed, single quotes around it dropped.
fn clean_name(phrase: &[u8]) -> Vec<u8> {
    let decoded = decode_header("PMS:get:name", phrase);
    if decoded.iter().all(u8::is_ascii_whitespace) {
        return decoded;
    }
    let text = String::from_utf8_lossy(&decoded);
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let unquoted = joined
        .strip_prefix('\'')
        .and_then(|inner| inner.strip_suffix('\''))
        .unwrap_or(&joined);
    unquoted.as_bytes().to_vec()
}

#[derive(Debug, Default, PartialEq)]
pub struct Address {
    pub phrase: Option<Vec<u8>>,
    pub address: Option<Vec<u8>>,
}

/// Splits at `sep` outside quotes, `<>` and parentheses.
fn split_top_level(text: &[u8], is_sep: impl Fn(u8) -> bool) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let (mut quoted, mut angle, mut paren, mut escaped) = (false, false, 0usize, false);
    let mut start = 0;
    for (index, &byte) in text.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match byte {
            b'\\' => escaped = true,
            b'"' if paren == 0 => quoted = !quoted,
            b'<' if !quoted && paren == 0 => angle = true,
            b'>' if !quoted && paren == 0 => angle = false,
            b'(' if !quoted => paren += 1,
            b')' if !quoted => paren = paren.saturating_sub(1),
            byte if is_sep(byte) && !quoted && !angle && paren == 0 => {
                pieces.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    pieces.push(&text[start..]);
    pieces
}

/// Quoted strings unquoted, comments removed, from a phrase.
fn unquote_phrase(phrase: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut index = 0;
    while index < phrase.len() {
        match phrase[index] {
            b'"' => {
                index += 1;
                while index < phrase.len() && phrase[index] != b'"' {
                    if phrase[index] == b'\\' && index + 1 < phrase.len() {
                        index += 1;
                    }
                    out.push(phrase[index]);
                    index += 1;
                }
                index += 1;
            }
            b'(' => {
                let close = phrase[index..].iter().position(|b| *b == b')');
                index = close.map_or(phrase.len(), |c| index + c + 1);
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    out
}

fn looks_like_address(text: &[u8]) -> bool {
    // `header_address_mailre`: an unquoted local part has no `@`; the domain
    // may (the address is cut at its second `@` afterwards).
    let at = if text.starts_with(b"\"") {
        text.iter().rposition(|b| *b == b'@')
    } else {
        text.iter().position(|b| *b == b'@')
    };
    let Some(at) = at else {
        return false;
    };
    let local = &text[..at];
    let domain = &text[at + 1..];
    let bad = |b: &u8| b.is_ascii_whitespace() || b"<>()[],:;".contains(b);
    !local.is_empty()
        && !domain.is_empty()
        && (local.starts_with(b"\"") || !local.iter().any(|b| bad(b) || *b == b'@'))
        && !domain.iter().any(|b| bad(b) || *b == b'"')
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end.max(start)]
}

/// The addresses in one raw header field value.
pub fn parse_addresses(value: &[u8]) -> Vec<Address> {
    let mut text: Vec<u8> = trim(value).to_vec();
    let mut index = 0;
    while index + 1 < text.len() {
        if text[index] == b'\\' && text[index + 1] == b'\\' {
            text.drain(index..index + 2);
        } else {
            index += 1;
        }
    }
    if let Some(colon) = text
        .iter()
        .position(|b| matches!(b, b':' | b'"' | b'(' | b')' | b'<' | b'>'))
        && text[colon] == b':'
        && colon > 0
    {
        text.drain(..=colon);
        if let Some(semicolon) = text.iter().rposition(|b| *b == b';') {
            text.truncate(semicolon);
        }
    }
    let mut addresses = Vec::new();
    for piece in split_top_level(&text, |b| b == b',' || b == b';') {
        let piece = trim(piece);
        if piece.is_empty() {
            continue;
        }
        let mut comment = None;
        let mut body = piece.to_vec();
        if body.ends_with(b")")
            && let Some(open) = body.iter().rposition(|b| *b == b'(')
        {
            comment = Some(body[open + 1..body.len() - 1].to_vec());
            body.truncate(open);
        }
        let body = trim(&body).to_vec();
        let mut address = Address::default();
        if let Some(open) = body.iter().position(|b| *b == b'<') {
            let close = body[open..]
                .iter()
                .position(|b| *b == b'>')
                .map_or(body.len(), |c| open + c);
            let inner = trim(&body[open + 1..close]);
            if looks_like_address(inner) {
                address.address = Some(inner.to_vec());
            }
            let phrase = unquote_phrase(&body[..open]);
            if !trim(&phrase).is_empty() {
                address.phrase = Some(phrase);
            }
        } else if looks_like_address(&body) {
            address.address = Some(body);
        } else {
            let phrase = unquote_phrase(&body);
            if looks_like_address(trim(&phrase)) {
                address.address = Some(trim(&phrase).to_vec());
            } else if !phrase.is_empty() {
                address.phrase = Some(phrase);
            }
        }
        if address.phrase.is_some() && address.phrase == address.address {
            address.phrase = None;
        }
        if address.phrase.is_none() {
            address.phrase = comment;
        }
        if let Some(found) = address.address.as_mut()
            && let Some(at) = found.iter().position(|b| *b == b'@')
            && let Some(second) = found[at + 1..].iter().position(|b| *b == b'@')
        {
            found.truncate(at + 1 + second);
        }
        if let Some(found) = &address.address
            && (found.starts_with(b"\"\"@") || found.iter().filter(|b| **b == b'"').count() == 1)
        {
            address.address = None;
        }
        addresses.push(address);
    }
    addresses
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(spec: &str, message: &str) -> Option<String> {
        let message = Message::parse(message.as_bytes());
        HeaderSpec::parse(spec)
            .unwrap()
            .get(&message)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    const MESSAGE: &str = "From: \"Foo Bar\" <foo@example.com>\n\
        To: a@example.org (Ann), Bob <b@example.org>\n\
        Cc: c@example.net\n\
        Subject: =?UTF-8?Q?caf=C3=A9?=\n  folded\n\
        Subject: second\n\n\
        body\n";

    #[test]
    fn decoded_raw_and_repeated_fields() {
        assert_eq!(get("Subject", MESSAGE).unwrap(), "café folded\nsecond\n");
        assert_eq!(
            get("subject:raw", MESSAGE).unwrap(),
            " =?UTF-8?Q?caf=C3=A9?=\n  folded\n second\n"
        );
        assert_eq!(get("Subject:first", MESSAGE).unwrap(), "café folded\n");
        assert_eq!(get("Subject:last", MESSAGE).unwrap(), "second\n");
        assert_eq!(get("X-None", MESSAGE), None);
    }

    #[test]
    fn addresses_and_names() {
        assert_eq!(get("From:addr", MESSAGE).unwrap(), "foo@example.com");
        assert_eq!(get("From:name", MESSAGE).unwrap(), "Foo Bar");
        assert_eq!(
            get("To:addr", MESSAGE).unwrap(),
            "a@example.org\nb@example.org"
        );
        assert_eq!(get("To:name", MESSAGE).unwrap(), "Ann\nBob");
        assert_eq!(
            get("ToCc:addr", MESSAGE).unwrap(),
            "a@example.org\nb@example.org\nc@example.net"
        );
    }

    #[test]
    fn message_id_pseudo_header() {
        let message = "Message-Id: <a@example.com>\nX-Message-Id: <b@example.com>\n\nx\n";
        assert_eq!(
            get("MESSAGEID", message).unwrap(),
            "<b@example.com>\n<a@example.com>\n"
        );
        assert_eq!(
            get("messageid", message),
            None,
            "MESSAGEID is case-sensitive"
        );
    }

    #[test]
    fn all_and_all_raw() {
        let all = get("ALL", MESSAGE).unwrap();
        assert!(all.starts_with("From: \"Foo Bar\" <foo@example.com>\nTo: "));
        assert!(all.contains("Subject: café folded\n"));
        let raw = get("ALL:raw", MESSAGE).unwrap();
        assert!(raw.contains("Subject: =?UTF-8?Q?caf=C3=A9?=\n  folded\n"));
        assert!(!raw.ends_with("\n\n"));
    }

    #[test]
    fn unsupported_pseudo_headers_and_modifiers() {
        assert!(HeaderSpec::parse("X-Spam-Relays-Untrusted").is_err());
        assert!(HeaderSpec::parse("ALL-TRUSTED").is_err());
        assert!(HeaderSpec::parse("From:domain").is_err());
        assert!(HeaderSpec::parse("From:bogus").is_err());
        assert!(HeaderSpec::parse("Bad Name").is_err());
    }

    #[test]
    fn group_syntax_and_comments() {
        let addresses = parse_addresses(b" undisclosed: a@x.example, b@y.example;");
        assert_eq!(addresses.len(), 2);
        assert_eq!(addresses[1].address.as_deref(), Some(&b"b@y.example"[..]));
        let addresses = parse_addresses(b"x@y.example (Real Name)");
        assert_eq!(addresses[0].phrase.as_deref(), Some(&b"Real Name"[..]));
    }
}
