//! The URI list `uri` rules run on, built as SpamAssassin's `get_uri_list` builds it:
//! URIs written in the rendered body text (Thunderbird-style linkification: `http://`,
//! `https://`, `ftp://`, `www.`/`ftp.` prefixes, `mailto:`, bare `user@host` and bare
//! `host.tld/path` with a known top-level domain), plus the HTML links of `html`;
//! each is then "cleaned" into variants (`%`-decoding, `http:` added or fixed,
//! `user@` and default ports dropped, numeric hosts as dotted quads, one redirector
//! level, by `redirector_pattern` or a plain `http...` in the query), and every
//! variant is matched.
//!
//! Top-level domains come from `util_rb_tld` lines (SpamAssassin's `20_aux_tlds.cf`
//! can be dropped beside the rules); without any, a built-in list of the common
//! generic ones plus every two-letter country code is used.

use std::collections::{BTreeSet, HashSet};

use regex::bytes::Regex;

use super::uri_clean::{self, has_percent_hex, url_decode};
use crate::rules::byte_word::is_perl_space;

/// What URI extraction is configured with: the top-level domains schemeless URIs
/// and mail domains must end in (`util_rb_tld`), and `redirector_pattern`s whose
/// first group is the target of a redirecting URI.
#[derive(Debug, Clone, Default)]
pub struct UriSettings {
    configured: HashSet<String>,
    pub(super) redirectors: Vec<Regex>,
}

const GENERIC_TLDS: &[&str] = &[
    "aero", "app", "arpa", "asia", "biz", "blog", "cat", "click", "cloud", "club", "com", "coop",
    "dev", "edu", "email", "gov", "info", "int", "io", "jobs", "link", "live", "loan", "mil",
    "mobi", "museum", "name", "net", "news", "online", "org", "pro", "shop", "site", "store",
    "tech", "tel", "top", "travel", "vip", "win", "work", "xyz",
];

impl UriSettings {
    pub fn add(&mut self, tld: &str) {
        self.configured.insert(tld.to_ascii_lowercase());
    }

    pub fn clear(&mut self) {
        self.configured.clear();
    }

    pub fn add_redirector(&mut self, pattern: Regex) {
        self.redirectors.push(pattern);
    }

    pub fn contains(&self, tld: &str) -> bool {
        let tld = tld.to_ascii_lowercase();
        if !self.configured.is_empty() {
            return self.configured.contains(&tld);
        }
        GENERIC_TLDS.contains(&tld.as_str())
            || (tld.len() == 2 && tld.bytes().all(|b| b.is_ascii_lowercase()))
    }
}

/// A byte-indexed membership table: the delimiter tests run at every byte of every
/// body line, and a slice's `contains` there costs a function call per byte.
const fn byte_set(members: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut index = 0;
    while index < members.len() {
        set[members[index] as usize] = true;
        index += 1;
    }
    set
}

/// The set of `with` plus the whitespace bytes, ESC and NBSP (0xA0).
const fn delims(with: &[u8]) -> [bool; 256] {
    let mut set = byte_set(with);
    let mut byte = 0;
    while byte < 256 {
        set[byte] |= is_perl_space(byte as u8) || byte == 0x1B || byte == 0xA0;
        byte += 1;
    }
    set
}

static START_DELIMS: [bool; 256] = delims(b"><\"'`,{[(|");
static END_DELIMS: [bool; 256] = delims(b"><\"`}]{[|");
static END_DELIMS_EMAIL: [bool; 256] = {
    let mut set = delims(b"><\"`}]{[|,('");
    let mut byte = 0x80;
    while byte < 256 {
        set[byte] = true;
        byte += 1;
    }
    set
};
/// One of these is in every URI form `find_in_text` accepts.
static SCHEMELESS_START_DELIMS: [bool; 256] = delims(b"!\"#$&'()*+,/:;<=>?@[\\]^`{|}~");

/// Bytes of a host name as `schemeless` reads one: letters, digits, `.`, `_`, `-`.
static HOST_BYTES: [bool; 256] = {
    let mut set = byte_set(b"._-");
    let mut byte = 0;
    while byte < 256 {
        set[byte] |= (byte as u8).is_ascii_alphanumeric();
        byte += 1;
    }
    set
};

fn is_start_delim(byte: u8) -> bool {
    START_DELIMS[usize::from(byte)]
}

fn is_end_delim(byte: u8) -> bool {
    END_DELIMS[usize::from(byte)]
}

fn is_end_delim_email(byte: u8) -> bool {
    END_DELIMS_EMAIL[usize::from(byte)]
}

fn is_schemeless_start_delim(byte: u8) -> bool {
    SCHEMELESS_START_DELIMS[usize::from(byte)]
}

pub(super) fn is_word(byte: u8) -> bool {
    WORD_BYTES[usize::from(byte)]
}

/// Perl's `\w` on bytes: letters, digits and `_`.
static WORD_BYTES: [bool; 256] = {
    let mut set = byte_set(b"_");
    let mut byte = 0;
    while byte < 256 {
        set[byte] |= (byte as u8).is_ascii_alphanumeric();
        byte += 1;
    }
    set
};

pub(super) fn starts_with_ci(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The end of a run of bytes that are not `stop`, if its length is within `1..=max`
/// and it is followed by a byte that `follows` accepts or by the end.
fn run_until(
    text: &[u8],
    from: usize,
    max: usize,
    stop: fn(u8) -> bool,
    follows: fn(u8) -> bool,
) -> Option<usize> {
    let len = text[from..]
        .iter()
        .take(max + 1)
        .take_while(|b| !stop(**b))
        .count();
    if len == 0 || len > max {
        return None;
    }
    let end = from + len;
    (end == text.len() || follows(text[end])).then_some(end)
}

/// `https?://`, `ftp://`, `www\d{0,2}.`, `ftp.` and what follows.
fn known_scheme(text: &[u8], at: usize) -> Option<usize> {
    let rest = &text[at..];
    let prefix = if starts_with_ci(rest, b"http://") || starts_with_ci(rest, b"ftp://") {
        rest.iter().position(|b| *b == b':').map(|colon| colon + 3)
    } else if starts_with_ci(rest, b"https://") {
        Some(8)
    } else if starts_with_ci(rest, b"ftp.") {
        Some(4)
    } else if starts_with_ci(rest, b"www") {
        let digits = rest[3..]
            .iter()
            .take(3)
            .take_while(|b| b.is_ascii_digit())
            .count();
        (digits <= 2 && rest.get(3 + digits) == Some(&b'.')).then_some(3 + digits + 1)
    } else {
        None
    }?;
    run_until(text, at + prefix, 2048, is_end_delim, is_end_delim)
}

/// `mailto:...` or `local@domain`.
fn mail_scheme(text: &[u8], at: usize, last_at_sign: Option<usize>) -> Option<usize> {
    let rest = &text[at..];
    if starts_with_ci(rest, b"mailto:") {
        return run_until(text, at + 7, 2048, is_end_delim_email, is_end_delim_email);
    }
    // A local part needs an `@` after it: most lines have none at all.
    if last_at_sign.is_none_or(|last| last < at) {
        return None;
    }
    let is_local_stop = |b: u8| is_end_delim_email(b) || b == b'@';
    let local = rest
        .iter()
        .take(252)
        .take_while(|b| !is_local_stop(**b))
        .count();
    if local == 0 || local > 251 || rest.get(local) != Some(&b'@') {
        return None;
    }
    run_until(
        text,
        at + local + 1,
        251,
        is_end_delim_email,
        is_end_delim_email,
    )
}

/// `host.tld` with a known top-level domain, optional `.`, `:port` and `/path`.
fn schemeless(text: &[u8], at: usize, tlds: &UriSettings) -> Option<usize> {
    let is_host = |b: &u8| HOST_BYTES[usize::from(*b)];
    if !text[at].is_ascii_alphanumeric() {
        return None;
    }
    // A host is at most 252 characters, so looking further cannot change the match.
    let run = text[at..]
        .iter()
        .take(253)
        .take_while(|b| is_host(b))
        .count();
    for host_len in (1..=run.min(252)).rev() {
        if text.get(at + host_len) != Some(&b'.') {
            continue;
        }
        let tld_start = at + host_len + 1;
        let tld_len = text[tld_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
            .count();
        let tld_end = tld_start + tld_len;
        if tld_len == 0 || !tlds.contains(&String::from_utf8_lossy(&text[tld_start..tld_end])) {
            continue;
        }
        if text.get(tld_end) == Some(&b'.')
            && text.get(tld_end + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            continue;
        }
        let dots: &[bool] = if text.get(tld_end) == Some(&b'.') {
            &[true, false]
        } else {
            &[false]
        };
        for &dot in dots {
            let after_dot = tld_end + usize::from(dot);
            let port_digits = if text.get(after_dot) == Some(&b':') {
                text[after_dot + 1..]
                    .iter()
                    .take(6)
                    .take_while(|b| b.is_ascii_digit())
                    .count()
            } else {
                0
            };
            let ports: &[bool] = if (1..=5).contains(&port_digits) {
                &[true, false]
            } else {
                &[false]
            };
            for &port in ports {
                let after_port = if port {
                    after_dot + 1 + port_digits
                } else {
                    after_dot
                };
                if text.get(after_port) == Some(&b'/')
                    && let Some(end) =
                        run_until(text, after_port + 1, 2048, is_end_delim, is_end_delim)
                {
                    return Some(end);
                }
                if after_port == text.len() || is_end_delim(text[after_port]) {
                    return Some(after_port);
                }
            }
        }
    }
    None
}

/// Raw URIs as `_process_text_uri_list` finds them in one body line.
fn find_in_text(text: &[u8], tlds: &UriSettings, found: &mut Vec<(Vec<u8>, bool)>) {
    let last_at_sign = memchr::memrchr(b'@', text);
    let mut at = 0;
    while at < text.len() {
        // Every form `uri_at` finds holds a `.`, `:` or `@` before the next
        // whitespace (which ends each of them): from a word's start, the words before
        // the next one holding a mark are skipped whole. Most words hold none.
        if at == 0 || is_perl_space(text[at - 1]) {
            let Some(mark) = memchr::memchr3(b'.', b':', b'@', &text[at..]) else {
                break;
            };
            at += text[at..at + mark]
                .iter()
                .rposition(|&b| is_perl_space(b))
                .map_or(0, |space| space + 1);
        }
        match uri_at(text, at, last_at_sign, tlds) {
            Some((end, is_mail)) => {
                found.push((text[at..end].to_vec(), is_mail));
                at = end.max(at + 1);
            }
            None => at += 1,
        }
    }
}

/// The end of the text URI starting at `at`, and whether it is a mail address;
/// `None` when none starts there.
fn uri_at(
    text: &[u8],
    at: usize,
    last_at_sign: Option<usize>,
    tlds: &UriSettings,
) -> Option<(usize, bool)> {
    let previous = at.checked_sub(1).map(|p| text[p]);
    let boundary = is_word(text[at]) != previous.is_some_and(is_word);
    let shifted = at >= 3 && text[at - 3] == 0x1B && text[at - 2] == b'(';
    if !(boundary || shifted || previous.is_some_and(is_start_delim)) {
        return None;
    }
    let schemeless_start = previous.is_none_or(is_schemeless_start_delim);
    known_scheme(text, at)
        .map(|end| (end, false))
        .or_else(|| mail_scheme(text, at, last_at_sign).map(|end| (end, true)))
        .or_else(|| {
            schemeless_start
                .then(|| schemeless(text, at, tlds))
                .flatten()
                .map(|end| (end, false))
        })
}

/// Every URI variant `uri` rules are matched against, from the rendered body lines
/// and the HTML links.
pub fn uri_list(body_lines: &[Vec<u8>], html_uris: &[String], tlds: &UriSettings) -> Vec<Vec<u8>> {
    let mut cleaned: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut seen = HashSet::new();
    let mut raw = Vec::new();
    for line in body_lines {
        find_in_text(line, tlds, &mut raw);
    }
    for (rawuri, is_mail) in raw {
        let mut rawuri = rawuri;
        if let Some(close) = rawuri.iter().position(|b| *b == b')')
            && !rawuri[..close].contains(&b'(')
        {
            rawuri.truncate(close);
        }
        while rawuri
            .last()
            .is_some_and(|b| b"-~!@#^&*()_+=:;'?,.".contains(b))
        {
            rawuri.pop();
        }
        if !seen.insert(rawuri.clone()) || (is_mail && !rawuri.contains(&b'@')) {
            continue;
        }
        let Some(uri) = text_uri(rawuri, tlds) else {
            continue;
        };
        let variants = uri_clean::canonicalize(&uri, tlds);
        if variants
            .iter()
            .any(|variant| uri_to_domain(variant, tlds).is_some())
        {
            cleaned.extend(variants);
        }
    }
    for uri in html_uris {
        cleaned.extend(uri_clean::canonicalize(uri.as_bytes(), tlds));
    }
    cleaned.into_iter().collect()
}

/// A raw text URI with its scheme added, or `None` when SpamAssassin drops it.
fn text_uri(rawuri: Vec<u8>, tlds: &UriSettings) -> Option<Vec<u8>> {
    let lower = rawuri.to_ascii_lowercase();
    if lower.starts_with(b"cid:") || lower.starts_with(b"mid:") {
        return None;
    }
    let scheme_len = lower.iter().take_while(|b| is_word(**b)).count();
    if scheme_len > 0
        && lower.get(scheme_len) == Some(&b':')
        && lower[scheme_len + 1..].iter().all(|b| *b == b'/')
        && lower.len() - scheme_len - 1 <= 2
    {
        return None;
    }
    let has_scheme = ["http:", "https:", "ftp:", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme.as_bytes()));
    let mut uri = rawuri.clone();
    if !has_scheme {
        let at_sign = rawuri.iter().position(|b| *b == b'@');
        let slash_before_at = rawuri.iter().position(|b| *b == b'/').is_some_and(|slash| {
            rawuri
                .iter()
                .rposition(|b| *b == b'@')
                .is_some_and(|at| at > slash + 1)
        });
        let is_www = lower.starts_with(b"www") && {
            let digits = lower[3..].iter().take_while(|b| b.is_ascii_digit()).count();
            digits <= 2 && lower.get(3 + digits) == Some(&b'.')
        };
        if lower.starts_with(b"ftp.") {
            uri = [b"ftp://".as_slice(), &rawuri].concat();
        } else if is_www || slash_before_at {
            uri = [b"http://".as_slice(), &rawuri].concat();
        } else if let Some(at) = at_sign {
            let dot_after = rawuri[at + 1..].iter().skip(1).any(|b| *b == b'.');
            if !dot_after || rawuri.windows(6).any(|w| w == b"&nbsp;") {
                return None;
            }
            let mut address = rawuri.as_slice();
            let lower = address.to_ascii_lowercase();
            for prefix in ["skype", "e-mail", "email", "-mail", "mail", ""] {
                if lower.starts_with(prefix.as_bytes()) && lower.get(prefix.len()) == Some(&b':') {
                    let colons = address[prefix.len()..]
                        .iter()
                        .take_while(|b| **b == b':')
                        .count();
                    address = &address[prefix.len() + colons..];
                    break;
                }
            }
            uri = [b"mailto:".as_slice(), address].concat();
        } else {
            if !rawuri.contains(&b'.') {
                return None;
            }
            uri = [b"http://".as_slice(), &rawuri].concat();
        }
    }
    if uri.to_ascii_lowercase().starts_with(b"mailto:") {
        let decoded = if has_percent_hex(&uri) {
            url_decode(&uri)
        } else {
            uri.clone()
        };
        let at = decoded.iter().position(|b| *b == b'@')?;
        let host_len = decoded[at + 1..]
            .iter()
            .take_while(|b| !matches!(b, b'?' | b'&' | b'>'))
            .count();
        let mut host = &decoded[at + 1..at + 1 + host_len];
        while host.ends_with(b"%20") {
            host = &host[..host.len() - 3];
        }
        if !is_domain_valid(host, tlds) {
            return None;
        }
        uri = decoded;
    }
    Some(uri)
}

pub fn is_ipv4(host: &[u8]) -> bool {
    let parts: Vec<&[u8]> = host.split(|b| *b == b'.').collect();
    parts.len() == 4
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.len() <= 3
                && part.iter().all(u8::is_ascii_digit)
                && String::from_utf8_lossy(part)
                    .parse::<u16>()
                    .is_ok_and(|v| v <= 255)
        })
}

fn is_ip(host: &[u8]) -> bool {
    is_ipv4(host)
        || (host.contains(&b':')
            && host
                .iter()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.')))
}

/// `is_fqdn_valid`: at least two labels of 1-63 letters, digits, `-` (not at the
/// ends) and `_` (not in the last two labels).
fn is_fqdn_valid(host: &[u8]) -> bool {
    let mut host = host;
    while host.ends_with(b".") {
        host = &host[..host.len() - 1];
    }
    if host.len() > 253 {
        return false;
    }
    let labels: Vec<&[u8]> = host.split(|b| *b == b'.').collect();
    labels.len() > 1
        && labels.iter().enumerate().all(|(index, label)| {
            let edge_ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_';
            let top = index + 2 >= labels.len();
            (1..=63).contains(&label.len())
                && label.first().is_some_and(edge_ok)
                && label.last().is_some_and(edge_ok)
                && label.iter().all(|b| edge_ok(b) || *b == b'-')
                && !(top && label.contains(&b'_'))
        })
}

/// `is_domain_valid`: no whitespace and a known top-level domain after a dot.
pub(super) fn is_domain_valid(domain: &[u8], tlds: &UriSettings) -> bool {
    let domain = domain.to_ascii_lowercase();
    if domain.iter().any(u8::is_ascii_whitespace) {
        return false;
    }
    match domain.iter().rposition(|b| *b == b'.') {
        Some(dot) => tlds.contains(&String::from_utf8_lossy(&domain[dot + 1..])),
        None => false,
    }
}

/// `uri_to_domain`: the host a URI points to when it is an IP address or a valid
/// name in a known top-level domain.
pub fn uri_to_domain(uri: &[u8], tlds: &UriSettings) -> Option<Vec<u8>> {
    let lower = uri.to_ascii_lowercase();
    if [&b"javascript:"[..], b"cid:", b"file:"]
        .iter()
        .any(|s| lower.starts_with(s))
    {
        return None;
    }
    let host: Vec<u8> = if let Some(address) = lower.strip_prefix(b"mailto:") {
        let address = &address[..address
            .iter()
            .position(|b| *b == b'?')
            .unwrap_or(address.len())];
        if address.iter().filter(|b| **b == b'@').count() > 1 {
            return None;
        }
        let at = address.iter().rposition(|b| *b == b'@')?;
        address[at + 1..].to_vec()
    } else {
        let mut rest = lower.as_slice();
        let scheme = rest.iter().take_while(|b| b.is_ascii_lowercase()).count();
        if scheme > 0 && rest.get(scheme) == Some(&b':') {
            let slashes = rest[scheme + 1..]
                .iter()
                .take(2)
                .take_while(|b| **b == b'/')
                .count();
            rest = &rest[scheme + 1 + slashes..];
        }
        let end = rest
            .iter()
            .position(|b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(rest.len());
        let mut host = &rest[..end];
        if let Some(at) = host.iter().rposition(|b| *b == b'@') {
            host = &host[at + 1..];
        }
        if let Some(colon) = host.iter().rposition(|b| *b == b':')
            && host[colon + 1..].iter().all(u8::is_ascii_digit)
        {
            host = &host[..colon];
        }
        host.to_vec()
    };
    let encoded = host.windows(3).any(|w| {
        w[0] == b'%' && {
            let value = (w[1] as char)
                .to_digit(16)
                .zip((w[2] as char).to_digit(16))
                .map(|(h, l)| h * 16 + l);
            value.is_some_and(|v| (0x21..=0x7E).contains(&v))
        }
    });
    if encoded {
        return None;
    }
    if is_ip(&host) || (is_fqdn_valid(&host) && is_domain_valid(&host, tlds)) {
        Some(host)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> Vec<String> {
        uri_list(&[text.as_bytes().to_vec()], &[], &UriSettings::default())
            .into_iter()
            .map(|u| String::from_utf8_lossy(&u).into_owned())
            .collect()
    }

    proptest::proptest! {
        // The word skipping in `find_in_text` loses nothing: trying every position
        // finds the same URIs.
        #[test]
        fn skipping_words_without_marks_finds_every_uri(
            text in "(http://|https:|www\\.|mailto:|ftp\\.|[a-z]{1,6}|[0-9]{1,3}|\\.com|[.:@/()<> \t\n-]){0,20}"
        ) {
            let tlds = UriSettings::default();
            let text = text.as_bytes();
            let mut skipping = Vec::new();
            find_in_text(text, &tlds, &mut skipping);
            let last_at_sign = memchr::memrchr(b'@', text);
            let mut every = Vec::new();
            let mut at = 0;
            while at < text.len() {
                match uri_at(text, at, last_at_sign, &tlds) {
                    Some((end, is_mail)) => {
                        every.push((text[at..end].to_vec(), is_mail));
                        at = end.max(at + 1);
                    }
                    None => at += 1,
                }
            }
            proptest::prop_assert_eq!(skipping, every);
        }
    }

    #[test]
    fn text_uris_with_and_without_scheme() {
        assert_eq!(
            list("see http://example.com/a, ok"),
            ["http://example.com/a"]
        );
        assert_eq!(list("visit www.example.com."), ["http://www.example.com"]);
        assert_eq!(list("mail bob@example.com now"), ["mailto:bob@example.com"]);
        assert_eq!(list("go to example.org/x today"), ["http://example.org/x"]);
        assert!(list("file.txt and a@b").is_empty());
        assert_eq!(list("http://1.2.3.4/p"), ["http://1.2.3.4/p"]);
    }

    #[test]
    fn uris_inside_words_and_after_words_without_any() {
        assert_eq!(
            list("many plain words\tthen(www.example.com)\nand more"),
            ["http://www.example.com"]
        );
        assert_eq!(
            list("no marks here at all\nbut<http://example.net/x>here"),
            ["http://example.net/x"]
        );
        assert_eq!(
            list("x\x1b(bob@example.com and words"),
            ["mailto:bob@example.com"]
        );
        assert!(list("words only, then a full stop.").is_empty());
    }

    #[test]
    fn domains_of_uris() {
        let tlds = UriSettings::default();
        assert_eq!(
            uri_to_domain(b"http://www.Example.com:8080/x", &tlds),
            Some(b"www.example.com".to_vec())
        );
        assert_eq!(
            uri_to_domain(b"mailto:a@b.example.org?subject=x", &tlds),
            Some(b"b.example.org".to_vec())
        );
        assert_eq!(
            uri_to_domain(b"http://10.0.0.1/", &tlds),
            Some(b"10.0.0.1".to_vec())
        );
        assert_eq!(uri_to_domain(b"http://localhost/", &tlds), None);
        assert_eq!(uri_to_domain(b"http://host.invalidtld/", &tlds), None);
    }
}
