//! Content-Type and Content-Disposition parameters as SpamAssassin reads them
//! (`Util::parse_content_type`, `_parse_normal`): lenient about quoting and
//! whitespace, the last Content-Type field wins, a missing or `text/*` type other
//! than html, calendar and vcard counts as text/plain, and RFC 2231 `name*N=`
//! continuations are joined (their `*N*=` encoded form is not decoded).

/// The filename or name parameter of Content-Disposition, as `_parse_normal` reads
/// it: `name=\s*"?([^";]+)"?`.
pub fn disposition_name(value: &[u8]) -> Option<Vec<u8>> {
    let lower = value.to_ascii_lowercase();
    let at = lower.windows(5).position(|w| w == b"name=")?;
    let rest = &value[at + 5..];
    let blanks = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let rest = &rest[blanks..];
    let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
    let len = rest
        .iter()
        .take_while(|b| **b != b'"' && **b != b';')
        .count();
    (len > 0).then(|| rest[..len].to_vec())
}

#[derive(Debug, Default)]
pub struct ContentType {
    pub ctype: String,
    pub boundary: Option<Vec<u8>>,
    pub charset: Option<String>,
    pub name: Option<Vec<u8>>,
    pub missing: bool,
}

/// `Mail::SpamAssassin::Util::parse_content_type`.
pub fn parse_content_type(value: Option<&[u8]>) -> ContentType {
    let mut missing = false;
    let header: &[u8] = match value {
        Some(value) if !value.is_empty() => value,
        _ => {
            missing = true;
            b"text/plain; charset=us-ascii"
        }
    };
    let boundary = find_parameter(header, b"boundary").and_then(|(at, _)| {
        let rest = &header[at..];
        if let Some(quoted) = rest.strip_prefix(b"\"") {
            let len = quoted.iter().take_while(|b| **b != b'"').count();
            (len > 0).then(|| quoted[..len].to_vec())
        } else {
            let len = rest
                .iter()
                .take_while(|b| !b.is_ascii_whitespace() && **b != b'"' && **b != b';')
                .count();
            (len > 0 && rest.get(len) != Some(&b'"'))
                .then(|| rest[..len].iter().copied().filter(|b| *b != b'"').collect())
        }
    });
    let charset = find_parameter(header, b"charset")
        .map(|(at, _)| String::from_utf8_lossy(&parameter_value(&header[at..])).into_owned());
    let mut name = find_parameter(header, b"name").map(|(at, _)| parameter_value(&header[at..]));
    if name.as_ref().is_none_or(|n| n.is_empty()) {
        let mut pieces: Vec<(usize, Vec<u8>)> = Vec::new();
        let lower = header.to_ascii_lowercase();
        let mut from = 0;
        while let Some(found) = lower[from..].windows(5).position(|w| w == b"name*") {
            let start = from + found + 5;
            from = start;
            let digits = lower[start..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let after = &header[start + digits..];
            let blanks = after.iter().take_while(|b| b.is_ascii_whitespace()).count();
            if digits == 0 || after.get(blanks) != Some(&b'=') {
                continue;
            }
            let index: usize = String::from_utf8_lossy(&lower[start..start + digits])
                .parse()
                .unwrap_or(usize::MAX);
            let rest = &after[blanks + 1..];
            let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            pieces.push((index, parameter_value(&rest[skip..])));
        }
        if pieces.iter().any(|(index, _)| *index == 0) {
            pieces.sort_by_key(|(index, _)| *index);
            name = Some(pieces.into_iter().flat_map(|(_, piece)| piece).collect());
        }
    }
    let start = header
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(header.len());
    let mut ctype = &header[start..];
    if let Some(semicolon) = ctype.iter().position(|b| *b == b';') {
        ctype = &ctype[..semicolon];
    }
    if let Some(slash) = ctype.iter().position(|b| *b == b'/') {
        let subtype = ctype[slash + 1..]
            .iter()
            .take_while(|b| **b != b'/' && !b.is_ascii_whitespace())
            .count();
        ctype = &ctype[..slash + 1 + subtype];
    }
    let mut ctype = String::from_utf8_lossy(ctype).to_lowercase();
    if ctype.is_empty() {
        missing = true;
    }
    let is_text = ctype.strip_prefix("text").is_some_and(|rest| {
        rest.is_empty() || !rest.as_bytes()[0].is_ascii_alphanumeric() && rest.as_bytes()[0] != b'_'
    });
    if ctype.is_empty()
        || (is_text
            && !matches!(
                ctype.as_str(),
                "text/x-vcard" | "text/calendar" | "text/html"
            ))
    {
        ctype = "text/plain".to_string();
    }
    ctype.retain(|c| {
        let byte = c as u32;
        !(byte <= 0x20
            || byte >= 0x7F
            || matches!(c, '"' | '(' | ')' | ',' | ':'..='@' | '['..=']'))
    });
    ContentType {
        ctype,
        boundary,
        charset,
        name: name.filter(|n| !n.is_empty()),
        missing,
    }
}

/// Where the value of parameter `key` starts (after `key\s*=\s*`), for the first
/// occurrence of `key` at a word boundary (`name` also matches `filename`).
fn find_parameter(header: &[u8], key: &[u8]) -> Option<(usize, ())> {
    let lower = header.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].windows(key.len()).position(|w| w == key) {
        let at = from + found;
        from = at + 1;
        let mut start = at;
        if key == b"name" && at >= 4 && &lower[at - 4..at] == b"file" {
            start = at - 4;
        }
        let bounded =
            start == 0 || !(lower[start - 1].is_ascii_alphanumeric() || lower[start - 1] == b'_');
        if !bounded {
            continue;
        }
        let rest = &header[at + key.len()..];
        let blanks = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if rest.get(blanks) != Some(&b'=') {
            continue;
        }
        let after = blanks + 1;
        let skip = rest[after..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        return Some((at + key.len() + after + skip, ()));
    }
    None
}

/// `["']?(.*?)["']?(?:;|$)`: up to the first `;`, one quote dropped at each end.
fn parameter_value(rest: &[u8]) -> Vec<u8> {
    let rest = match rest.first() {
        Some(b'"' | b'\'') => &rest[1..],
        _ => rest,
    };
    let len = rest
        .iter()
        .take_while(|b| **b != b';' && **b != b'\n')
        .count();
    let mut value = &rest[..len];
    if matches!(value.last(), Some(b'"' | b'\'')) {
        value = &value[..value.len() - 1];
    }
    value.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_parameters() {
        let ct = parse_content_type(Some(b"Multipart/Mixed; boundary=\"a b\"; charset='x'"));
        assert_eq!(ct.ctype, "multipart/mixed");
        assert_eq!(ct.boundary.as_deref(), Some(&b"a b"[..]));
        assert_eq!(ct.charset.as_deref(), Some("x"));
        let ct = parse_content_type(Some(b"text/enriched; name*0=a; name*1=b.txt"));
        assert_eq!(ct.ctype, "text/plain");
        assert_eq!(ct.name.as_deref(), Some(&b"ab.txt"[..]));
        assert!(parse_content_type(None).missing);
    }
}
