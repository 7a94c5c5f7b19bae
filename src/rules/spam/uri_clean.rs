//! URI cleaning, as SpamAssassin's `uri_list_canonicalize`: every URI found is also
//! matched in variants: `%`-escapes of printable characters decoded, `http://` added
//! or its slashes fixed, `/` inserted before a query, `&#NN;` entities decoded, the
//! default port dropped, control bytes, `user@` and trailing junk dropped from the
//! host, numeric hosts written as dotted quads (with SpamAssassin's quirks), a bare
//! `http://name` as `http://www.name.com`, and the target of one redirector
//! (`redirector_pattern`, else a plain `http...` inside the query) cleaned in turn.
//! Mail addresses get variants without `?...`, `&...` and `%20` padding.

use super::uri::{UriSettings, is_domain_valid, is_word, starts_with_ci};

/// SpamAssassin's `url_encode`: `%XX` of printable ASCII (not space) decoded; other
/// escapes kept; control, space, 8-bit, `"`, `%`, `<`, `>` bytes escaped.
pub fn url_decode(uri: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(uri.len());
    let mut index = 0;
    while index < uri.len() {
        let byte = uri[index];
        if byte == b'%'
            && let (Some(high), Some(low)) = (
                uri.get(index + 1).and_then(|b| (*b as char).to_digit(16)),
                uri.get(index + 2).and_then(|b| (*b as char).to_digit(16)),
            )
        {
            let value = (high * 16 + low) as u8;
            if (2..=7).contains(&high) && value != 0x20 && value != 0x7F {
                out.push(value);
            } else {
                out.extend_from_slice(&uri[index..index + 3]);
            }
            index += 3;
            continue;
        }
        if byte <= 0x20 || byte >= 0x7F || matches!(byte, b'"' | b'%' | b'<' | b'>') {
            out.extend_from_slice(format!("%{byte:02x}").as_bytes());
        } else {
            out.push(byte);
        }
        index += 1;
    }
    out
}

pub(super) fn has_percent_hex(uri: &[u8]) -> bool {
    uri.windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// `uri_list_canonicalize` for one URI: the URI itself (trimmed) and its variants.
pub fn canonicalize(uri: &[u8], tlds: &UriSettings) -> Vec<Vec<u8>> {
    let mut pending = vec![uri.to_vec()];
    let mut done: Vec<Vec<u8>> = Vec::new();
    let mut variants: Vec<Vec<u8>> = Vec::new();
    while let Some(uri) = pending.pop() {
        if done.len() > 16 {
            break;
        }
        let uri: Vec<u8> = uri
            .into_iter()
            .filter(|b| *b != b'\n' && *b != b'\r')
            .collect();
        let uri = trim(&uri).to_vec();
        done.push(uri.clone());
        if uri.len() <= 1
            || matches!(uri[0], b'#' | b'?' | b'&')
            || (uri[0] == b'/' && uri.get(1) != Some(&b'/'))
        {
            continue;
        }
        let lower = uri.to_ascii_lowercase();
        let colon = uri.iter().position(|b| *b == b':');
        let at = uri.iter().position(|b| *b == b'@');
        if lower.starts_with(b"mailto:") || at.is_some_and(|at| colon.is_none_or(|c| c > at)) {
            mail_variants(&uri, &mut variants);
            continue;
        }
        let mut nuri: Vec<u8> = uri
            .iter()
            .map(|&b| if b == b'\\' { b'/' } else { b })
            .collect();
        for scheme in [&b"https:"[..], b"http:"] {
            if starts_with_ci(&nuri, scheme) {
                let slashes = nuri[scheme.len()..]
                    .iter()
                    .take(2)
                    .take_while(|b| **b == b'/')
                    .count();
                let mut fixed = nuri[..scheme.len()].to_vec();
                fixed.extend_from_slice(b"//");
                fixed.extend_from_slice(&nuri[scheme.len() + slashes..]);
                nuri = fixed;
                break;
            }
        }
        if has_percent_hex(&nuri) {
            nuri = url_decode(&nuri);
        }
        let scheme_len = nuri
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            .count();
        if !(scheme_len > 0 && nuri.get(scheme_len) == Some(&b':')) {
            let prefix: &[u8] = if nuri.starts_with(b"ftp.") {
                b"ftp://"
            } else {
                b"http://"
            };
            nuri = [prefix, &nuri].concat();
        }
        if let Some(host_end) = http_host_end(&nuri)
            && matches!(nuri.get(host_end), Some(b'?' | b'#'))
        {
            nuri.insert(host_end, b'/');
        }
        let nuri = decode_numeric_entities(&nuri);
        if nuri != uri {
            variants.push(nuri.clone());
        }
        http_variants(&nuri, tlds, &mut variants, &mut pending);
    }
    let mut all: Vec<Vec<u8>> = done;
    all.extend(variants);
    all.sort();
    all.dedup();
    all
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

/// Where the host of an `http(s)://` URI ends.
fn http_host_end(uri: &[u8]) -> Option<usize> {
    let start = if starts_with_ci(uri, b"http://") {
        7
    } else if starts_with_ci(uri, b"https://") {
        8
    } else {
        return None;
    };
    Some(
        start
            + uri[start..]
                .iter()
                .take_while(|b| !matches!(b, b'/' | b'?' | b'#'))
                .count(),
    )
}

fn decode_numeric_entities(uri: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(uri.len());
    let mut index = 0;
    while index < uri.len() {
        if uri[index..].starts_with(b"&#") {
            let rest = &uri[index + 2..];
            let (hex, digits_from) = if matches!(rest.first(), Some(b'x' | b'X')) {
                (true, 1)
            } else {
                (false, 0)
            };
            let digits = rest[digits_from..]
                .iter()
                .take_while(|b| {
                    if hex {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
                .count();
            if digits > 0 && rest.get(digits_from + digits) == Some(&b';') {
                let text = String::from_utf8_lossy(&rest[digits_from..digits_from + digits]);
                let value = u32::from_str_radix(&text, if hex { 16 } else { 10 }).unwrap_or(0);
                let dot = matches!(value, 0x2E | 0x3002 | 0xFF0E | 0xFF61);
                if (0x21..=0x7E).contains(&value) || dot {
                    out.push(if dot { b'.' } else { value as u8 });
                    index += 2 + digits_from + digits + 1;
                    continue;
                }
            }
        }
        out.push(uri[index]);
        index += 1;
    }
    out
}

/// The variants `uri_list_canonicalize` adds for mail addresses: without `?...`,
/// without `&...`, without `%20` padding, and the address in `<...>`.
fn mail_variants(uri: &[u8], variants: &mut Vec<Vec<u8>>) {
    let at = match uri.iter().position(|b| *b == b'@') {
        Some(at) if at > 0 => Some(at),
        _ => None,
    };
    if let Some(at) = at {
        let after = &uri[at + 1..];
        let to_question = after.iter().take_while(|b| **b != b'?').count();
        if to_question > 0 && after.get(to_question) == Some(&b'?') {
            variants.push(uri[..at + 1 + to_question].to_vec());
        }
        let to_stop = after
            .iter()
            .take_while(|b| !matches!(b, b'?' | b'&'))
            .count();
        if to_stop > 0 && after.get(to_stop) == Some(&b'&') {
            variants.push(uri[..at + 1 + to_stop].to_vec());
        }
    }
    if uri.windows(3).any(|w| w == b"%20") {
        let mut rest = uri;
        if starts_with_ci(rest, b"mailto:") {
            rest = &rest[7..];
        }
        while rest.starts_with(b"%20") {
            rest = &rest[3..];
        }
        if let Some(at) = rest.iter().position(|b| *b == b'@')
            && at > 0
        {
            let host = rest[at + 1..]
                .iter()
                .take_while(|b| !matches!(b, b'?' | b'&' | b'%'))
                .count();
            if host > 0 {
                variants.push([b"mailto:".as_slice(), &rest[..at + 1 + host]].concat());
            }
        }
    }
    let open_limit = uri
        .iter()
        .position(|b| matches!(b, b'?' | b'&'))
        .unwrap_or(uri.len());
    if let Some(open) = uri[..open_limit].iter().position(|b| *b == b'<')
        && let Some(close) = uri[open..].iter().position(|b| *b == b'>')
    {
        let inner = &uri[open + 1..open + close];
        if let Some(at) = inner.iter().position(|b| *b == b'@')
            && at > 0
            && at + 1 < inner.len()
        {
            variants.push([b"mailto:".as_slice(), inner].concat());
        }
    }
}

/// Variants of an `http(s)://` URI, in SpamAssassin's order: default port dropped,
/// control bytes dropped from the host, one redirector target queued, `user@` and
/// trailing junk dropped from the host, numeric hosts as dotted quads, and a bare
/// `http://name` as `http://www.name.com` (as Firefox does).
fn http_variants(
    nuri: &[u8],
    tlds: &UriSettings,
    variants: &mut Vec<Vec<u8>>,
    pending: &mut Vec<Vec<u8>>,
) {
    let start = if starts_with_ci(nuri, b"http://") {
        7
    } else if starts_with_ci(nuri, b"https://") {
        8
    } else {
        return;
    };
    let proto = &nuri[..start];
    let is_http = start == 7;
    let rest_all = &nuri[start..];
    let auth_len = rest_all
        .iter()
        .position(|b| matches!(b, b'@' | b'/' | b'?' | b'#'))
        .filter(|&p| rest_all[p] == b'@')
        .map_or(0, |p| p + 1);
    let after_auth = &rest_all[auth_len..];
    let host_len = after_auth
        .iter()
        .take_while(|b| !matches!(b, b'/' | b'?' | b'#' | b':'))
        .count();
    if host_len == 0 {
        return;
    }
    let mut host = after_auth[..host_len].to_vec();
    let rest = &after_auth[host_len..];
    // An empty port (`host:/`) counts as the default one, as in SpamAssassin.
    let port: Option<&[u8]> = rest
        .strip_prefix(b":")
        .map(|after| &after[..after.iter().take_while(|b| b.is_ascii_digit()).count()])
        .filter(|port| !port.is_empty());
    let join = |host: &[u8], rest: &[u8]| [proto, host, rest].concat();
    let mut rest_noport: Option<Vec<u8>> = None;
    if let Some(port) = port {
        let default: &[u8] = if is_http { b"80" } else { b"443" };
        let mut noport = rest.to_vec();
        if port == default && !rest.get(1 + port.len()).is_some_and(|b| is_word(*b)) {
            noport.drain(..1 + port.len());
            variants.push(join(&host, &noport));
        }
        rest_noport = Some(noport);
    }
    let _ = rest_noport;
    if host.iter().any(|b| *b <= 0x20) {
        host.retain(|b| *b > 0x20);
        variants.push(join(&host, rest));
    }
    let whole = join(&host, rest);
    let redirected = tlds.redirectors.iter().find_map(|pattern| {
        pattern
            .captures(&whole)
            .and_then(|groups| groups.get(1))
            .map(|target| target.as_bytes().to_vec())
            .filter(|target| target.contains(&b'.'))
    });
    let mut from = 0;
    if let Some(target) = redirected {
        pending.push(target);
        from = rest.len();
    }
    while let Some(found) = find_ci(&rest[from..], b"http") {
        let candidate = &rest[from + found..];
        from += found + 1;
        let scheme = if starts_with_ci(candidate, b"https:") {
            6
        } else if starts_with_ci(candidate, b"http:") {
            5
        } else {
            continue;
        };
        let slashes = candidate[scheme..]
            .iter()
            .take(2)
            .take_while(|b| **b == b'/')
            .count();
        let tail = candidate[scheme + slashes..]
            .iter()
            .take_while(|b| !matches!(b, b'&' | b'#'))
            .count();
        if tail > 0 {
            let target = &candidate[..scheme + slashes + tail];
            if target.contains(&b'.') {
                pending.push(target.to_vec());
            }
            break;
        }
    }
    if let Some(at) = host.iter().rposition(|b| *b == b'@') {
        host.drain(..=at);
        variants.push(join(&host, rest));
    }
    let trimmed_len = host
        .iter()
        .rposition(|b| b.is_ascii_alphanumeric())
        .map_or(0, |p| p + 1);
    if trimmed_len < host.len() {
        host.truncate(trimmed_len);
        variants.push(join(&host, rest));
    }
    if let Some(ip) = numeric_host(&host) {
        variants.push(join(ip.as_bytes(), rest));
    } else if is_http && auth_len == 0 && port.is_none_or(|p| p == b"80") {
        let lower = host.to_ascii_lowercase();
        let bare = lower.strip_prefix(b"www.").unwrap_or(&lower);
        if lower != b"localhost"
            && !bare.is_empty()
            && !bare.contains(&b'.')
            && !is_domain_valid(&lower, tlds)
        {
            variants.push(join(&[b"www.".as_slice(), bare, b".com"].concat(), rest));
        }
    }
}

fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Numeric hosts rewritten as `uri_list_canonicalize` does: four hex or decimal
/// parts with leading zeros read as octal, or one hex or decimal number.
fn numeric_host(host: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(host).into_owned();
    let is_number = |part: &str| match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        Some(hex) => !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()),
    };
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() == 4 && parts.iter().all(|p| is_number(p)) {
        let converted: Vec<String> = parts.iter().map(|part| octet(part)).collect();
        return Some(converted.join("."));
    }
    let lower = text.to_ascii_lowercase();
    let value = if let Some(hex) = lower.strip_prefix("0x") {
        if !is_number(&lower) {
            return None;
        }
        let tail = &hex[hex.len().saturating_sub(8)..];
        u64::from_str_radix(tail, 16).ok()?
    } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let value: u128 = text.parse().ok()?;
        let hex = format!("{value:08x}");
        u64::from_str_radix(&hex[..8], 16).ok()?
    } else {
        return None;
    };
    let bytes = (value as u32).to_be_bytes();
    Some(format!(
        "{}.{}.{}.{}",
        bytes[0], bytes[1], bytes[2], bytes[3]
    ))
}

/// One part of a dotted numeric host: `0x` hex to decimal, leading zeros plus up to
/// three octal digits read as octal, then leading zeros dropped (so `0` becomes
/// empty, as in SpamAssassin).
fn octet(part: &str) -> String {
    // Without a leading zero there is no `0x` and nothing to strip: the usual case.
    if !part.starts_with('0') {
        return part.to_string();
    }
    let lower = part.to_ascii_lowercase();
    let mut value = match lower.strip_prefix("0x") {
        Some(hex) => u128::from_str_radix(hex, 16).map_or(part.to_string(), |v| v.to_string()),
        None => part.to_string(),
    };
    let zeros = value.bytes().take_while(|b| *b == b'0').count();
    if zeros > 0 {
        let digits = &value[zeros..];
        let octal_len = match digits.bytes().next() {
            Some(b'1'..=b'3') => {
                1 + digits[1..]
                    .bytes()
                    .take(2)
                    .take_while(|b| (b'0'..=b'7').contains(b))
                    .count()
            }
            Some(b'4'..=b'7') => {
                1 + digits[1..]
                    .bytes()
                    .take(1)
                    .take_while(|b| (b'0'..=b'7').contains(b))
                    .count()
            }
            _ => 0,
        };
        if octal_len > 0 && octal_len == digits.len() {
            value = u32::from_str_radix(digits, 8).map_or(value, |v| v.to_string());
        }
    }
    value.trim_start_matches('0').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_of_encoded_and_odd_uris() {
        let variants = |uri: &str| -> Vec<String> {
            canonicalize(uri.as_bytes(), &UriSettings::default())
                .into_iter()
                .map(|u| String::from_utf8_lossy(&u).into_owned())
                .collect()
        };
        assert!(
            variants("http://%77ww.example.com/").contains(&"http://www.example.com/".to_string())
        );
        assert!(
            variants("http://a@b@host.example.com/")
                .contains(&"http://host.example.com/".to_string())
        );
        assert!(variants("http://example.com:80/x").contains(&"http://example.com/x".to_string()));
        assert!(variants("http://0x7f000001/").contains(&"http://127.0.0.1/".to_string()));
        assert!(variants("http://0177.1.2.3/").contains(&"http://127.1.2.3/".to_string()));
        assert!(variants("http://10.0X10.8.1/").contains(&"http://10.16.8.1/".to_string()));
        assert!(variants("http:example.com").contains(&"http://example.com".to_string()));
        assert!(
            variants("http://r.example.com/?u=http://t.example.net/")
                .contains(&"http://t.example.net/".to_string())
        );
        assert_eq!(variants("#top"), ["#top"]);
    }
}
