//! HTML rendered to text the way SpamAssassin's `Mail::SpamAssassin::HTML` does on
//! top of HTML::Parser, approximated: tags are dropped, entities decoded, `<br>` and
//! `<div>` give a line break, `<p>`, `<hr>`, `<blockquote>`, `<pre>` and `<title>` a
//! paragraph break, `<li>`, `<td>`, `<th>`, `<dt>`, `<dd>` and headings a space,
//! `<script>` and `<style>` contents are dropped, and whitespace runs in text become
//! one space. Text SpamAssassin would call invisible (font colour equal to the
//! background, tiny fonts) is kept, as in its `rendered` text that body rules see.
//!
//! The URIs of links and embedded objects are collected as SpamAssassin does:
//! `href` of `a`, `area`, `link`; `src` of `img`, `frame`, `iframe`, `embed`,
//! `script`, `bgsound`; `action` of `form`; `background` of `body`, `table`, `tr`,
//! `td`; `<base href>` (which also resolves later relative links) and
//! `<meta http-equiv=refresh content="...; url=...">`. Like SpamAssassin, the `href`
//! of every `<a>` is also kept as written, unresolved (empty when missing).

use crate::rules::byte_word::{is_perl_space, next_blank_or_control};

pub struct Page {
    pub text: String,
    pub uris: Vec<String>,
}

/// Elements whose content is raw text up to their end tag.
const RAW_TEXT: [&str; 4] = ["script", "style", "xmp", "textarea"];

pub fn render(input: &str) -> Page {
    let input = input
        .replace("&nbsp;", " ")
        .replace(['\u{201C}', '\u{201D}'], "\"");
    let mut renderer = Renderer::default();
    let bytes = input.as_bytes();
    let mut pos = 0;
    let mut text_start = 0;
    while pos < bytes.len() {
        let Some(open) = memchr::memchr(b'<', &bytes[pos..]) else {
            break;
        };
        pos += open;
        let Some((end, markup)) = markup_at(&input, pos) else {
            pos += 1;
            continue;
        };
        if text_start < pos {
            renderer.text(&decode_entities(&input[text_start..pos]));
        }
        pos = end;
        if let Markup::Start(name, attrs) = &markup
            && RAW_TEXT.contains(&name.as_str())
        {
            let close = format!("</{name}");
            let content_end = find_ascii_case_insensitive(&input[pos..], &close)
                .map_or(input.len(), |found| pos + found);
            renderer.tag(name, attrs, true);
            let content = &input[pos..content_end];
            if name != "script" && name != "style" {
                renderer.text(&decode_entities(content));
            }
            pos = input[content_end..]
                .find('>')
                .map_or(input.len(), |found| content_end + found + 1);
            renderer.tag(name, &[], false);
        } else {
            match markup {
                Markup::Start(name, attrs) => renderer.tag(&name, &attrs, true),
                Markup::End(name) => renderer.tag(&name, &[], false),
                Markup::Other => {}
            }
        }
        text_start = pos;
    }
    if text_start < input.len() {
        renderer.text(&decode_entities(&input[text_start..]));
    }
    Page {
        text: renderer.pieces.into_iter().map(|(text, _)| text).collect(),
        uris: renderer.uris,
    }
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

enum Markup {
    Start(String, Vec<(String, String)>),
    End(String),
    /// Comments, declarations, processing instructions.
    Other,
}

/// The markup starting at `<` at `pos`, and where it ends; `None` when the `<` is
/// plain text (not followed by a letter, `/letter`, `!` or `?`).
fn markup_at(input: &str, pos: usize) -> Option<(usize, Markup)> {
    let rest = &input[pos + 1..];
    let first = *rest.as_bytes().first()?;
    if let Some(comment) = rest.strip_prefix("!--") {
        let end = comment
            .find("-->")
            .map_or(input.len(), |found| pos + 1 + 3 + found + 3);
        return Some((end, Markup::Other));
    }
    if first == b'!' || first == b'?' {
        let end = rest
            .find('>')
            .map_or(input.len(), |found| pos + 1 + found + 1);
        return Some((end, Markup::Other));
    }
    let (closing, name_from) = if first == b'/' { (true, 1) } else { (false, 0) };
    if !rest.as_bytes().get(name_from)?.is_ascii_alphabetic() {
        return None;
    }
    let name_len = rest[name_from..]
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.'))
        .count();
    let name = rest[name_from..name_from + name_len].to_ascii_lowercase();
    let mut at = name_from + name_len;
    let mut attrs = Vec::new();
    let bytes = rest.as_bytes();
    loop {
        while at < bytes.len() && (bytes[at].is_ascii_whitespace() || bytes[at] == b'/') {
            at += 1;
        }
        if at >= bytes.len() {
            return Some((input.len(), tag(closing, name, attrs)));
        }
        if bytes[at] == b'>' {
            return Some((pos + 1 + at + 1, tag(closing, name, attrs)));
        }
        let key_len = rest[at..]
            .bytes()
            .take_while(|b| !b.is_ascii_whitespace() && !matches!(b, b'=' | b'>'))
            .count()
            .max(1);
        let key = rest[at..at + key_len].to_ascii_lowercase();
        at += key_len;
        let mut look = at;
        while look < bytes.len() && bytes[look].is_ascii_whitespace() {
            look += 1;
        }
        let mut value = String::new();
        if bytes.get(look) == Some(&b'=') {
            at = look + 1;
            while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            match bytes.get(at) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let len = rest[at + 1..]
                        .find(quote as char)
                        .unwrap_or(rest.len() - at - 1);
                    value = rest[at + 1..at + 1 + len].to_string();
                    at = (at + 1 + len + 1).min(bytes.len());
                }
                _ => {
                    let len = rest[at..]
                        .bytes()
                        .take_while(|b| !b.is_ascii_whitespace() && *b != b'>')
                        .count();
                    value = rest[at..at + len].to_string();
                    at += len;
                }
            }
        }
        attrs.push((key, decode_entities(&value)));
    }
}

fn tag(closing: bool, name: String, attrs: Vec<(String, String)>) -> Markup {
    if closing {
        Markup::End(name)
    } else {
        Markup::Start(name, attrs)
    }
}

#[derive(Default)]
struct Renderer {
    /// Rendered pieces and whether each is inserted whitespace.
    pieces: Vec<(String, bool)>,
    uris: Vec<String>,
    base_href: Option<String>,
    inside_script: i32,
    inside_style: i32,
}

impl Renderer {
    fn tag(&mut self, name: &str, attrs: &[(String, String)], start: bool) {
        let step = if start { 1 } else { -1 };
        match name {
            "script" => self.inside_script = (self.inside_script + step).max(0),
            "style" => self.inside_style = (self.inside_style + step).max(0),
            _ => {}
        }
        match name {
            "br" | "div" => self.whitespace("\n"),
            "li" | "th" | "td" | "dt" | "dd" | "embed" | "h1" | "h2" | "h3" | "h4" | "h5"
            | "h6" => self.whitespace(" "),
            "p" | "hr" | "blockquote" | "pre" | "listing" | "plaintext" | "xmp" | "title" => {
                self.whitespace("\n\n")
            }
            _ => {}
        }
        if start {
            self.uri_attributes(name, attrs);
            if name == "a" {
                // SpamAssassin also keys the anchor text by the href as written
                // (unresolved, possibly empty), and that key is a URI too.
                self.uris
                    .push(canon_uri(Self::attr(attrs, "href").unwrap_or("")));
            }
        }
    }

    fn whitespace(&mut self, text: &str) {
        if let Some((previous, false)) = self.pieces.last_mut()
            && previous.ends_with(' ')
        {
            previous.pop();
        }
        self.pieces.push((text.to_string(), true));
    }

    fn text(&mut self, text: &str) {
        if self.inside_script > 0 || self.inside_style > 0 {
            return;
        }
        let mut collapsed = collapse_blanks(text);
        if let Some((_, true)) = self.pieces.last()
            && collapsed.starts_with(' ')
        {
            collapsed.remove(0);
        }
        self.pieces.push((collapsed, false));
    }

    fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
        attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn uri_attributes(&mut self, name: &str, attrs: &[(String, String)]) {
        let attribute = match name {
            "body" | "table" | "tr" | "td" => "background",
            "a" | "area" | "link" => "href",
            "img" | "frame" | "iframe" | "embed" | "script" | "bgsound" => "src",
            "form" => "action",
            "base" => {
                if let Some(uri) = Self::attr(attrs, "href").filter(|u| !u.is_empty()) {
                    let uri = canon_uri(uri);
                    self.push_uri(&uri);
                    let lower = uri.to_ascii_lowercase();
                    if lower.starts_with("http:")
                        || lower.starts_with("https:")
                        || lower.starts_with("ftp:")
                    {
                        self.base_href = Some(base_directory(&uri));
                    }
                }
                return;
            }
            "meta" => {
                let refresh = Self::attr(attrs, "http-equiv")
                    .is_some_and(|v| v.to_ascii_lowercase().contains("refresh"));
                if let (true, Some(content)) = (refresh, Self::attr(attrs, "content"))
                    && let Some(at) = content.to_ascii_lowercase().find("url")
                {
                    let after = content[at + 3..].trim_start();
                    if let Some(uri) = after.strip_prefix('=') {
                        let uri = uri.trim_start();
                        let uri = uri.split(';').next().unwrap_or_default().trim_end();
                        self.push_uri(uri);
                    }
                }
                return;
            }
            _ => return,
        };
        if let Some(uri) = Self::attr(attrs, attribute) {
            let uri = uri.replace('\u{FEFF}', "");
            self.push_uri(&uri);
        }
        if name == "a"
            && let Some(uri) = Self::attr(attrs, "data-saferedirecturl")
        {
            self.push_uri(uri);
        }
    }

    fn push_uri(&mut self, uri: &str) {
        let uri = canon_uri(uri);
        if uri.is_empty() {
            return;
        }
        let lower = uri.to_ascii_lowercase();
        if ["data:", "mailto:", "file:", "cid:", "tel:"]
            .iter()
            .any(|scheme| lower.starts_with(scheme))
        {
            self.uris.push(uri);
            return;
        }
        let target = target_uri(self.base_href.as_deref().unwrap_or(""), &uri);
        if !target.is_empty() {
            self.uris.push(target);
        }
    }
}

fn canon_uri(uri: &str) -> String {
    let trimmed = uri.trim_matches(|c: char| c.is_whitespace() || c == '\u{A0}');
    trimmed.chars().take(8192).collect()
}

/// A base URI without its file name, ending in `/`.
fn base_directory(uri: &str) -> String {
    let mut base = uri.to_string();
    if let Some(scheme_end) = base.find(':') {
        let after = scheme_end
            + 1
            + base[scheme_end + 1..]
                .bytes()
                .take(2)
                .take_while(|b| *b == b'/')
                .count();
        if let Some(slash) = base[after..].find('/').map(|found| after + found)
            && let Some(last_slash) = base.rfind('/')
            && last_slash >= slash
        {
            let file = &base[last_slash + 1..];
            let is_file = file.rfind('.').is_some_and(|dot| {
                let (stem, ext) = (&file[..dot], &file[dot + 1..]);
                !stem.is_empty()
                    && !stem.contains('.')
                    && (2..=4).contains(&ext.len())
                    && !ext.contains('.')
            });
            if is_file {
                base.truncate(last_slash + 1);
            }
        }
    }
    if !base.ends_with('/') {
        base.push('/');
    }
    base
}

struct UriParts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

/// RFC 3986 appendix B split, as SpamAssassin's `_parse_uri`.
fn parse_uri(uri: &str) -> UriParts<'_> {
    let mut rest = uri;
    let mut scheme = None;
    if let Some(colon) = rest.find(':') {
        let candidate = &rest[..colon];
        if !candidate.is_empty() && !candidate.contains(['/', '?', '#']) {
            scheme = Some(candidate);
            rest = &rest[colon + 1..];
        }
    }
    let mut authority = None;
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        authority = Some(&after[..end]);
        rest = &after[end..];
    }
    let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
    let path = &rest[..path_end];
    rest = &rest[path_end..];
    let mut query = None;
    if let Some(after) = rest.strip_prefix('?') {
        let end = after.find('#').unwrap_or(after.len());
        query = Some(&after[..end]);
        rest = &after[end..];
    }
    let fragment = rest.strip_prefix('#');
    UriParts {
        scheme,
        authority,
        path,
        query,
        fragment,
    }
}

fn remove_dot_segments(input: &str) -> String {
    let mut input = if let Some(rest) = input.strip_prefix("./") {
        format!("/{rest}")
    } else if let Some(rest) = input.strip_prefix("../") {
        format!("/{rest}")
    } else {
        input.to_string()
    };
    let mut output = String::new();
    while !input.is_empty() {
        if input == "/." || input.starts_with("/./") {
            input.replace_range(..2, "");
            if input.is_empty() {
                input.push('/');
            }
        } else if input == "/.." || input.starts_with("/../") {
            input.replace_range(..3, "");
            if input.is_empty() {
                input.push('/');
            }
            let cut = output.rfind('/').unwrap_or(0);
            output.truncate(cut);
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..]
                .find('/')
                .map_or(input.len(), |found| start + found);
            output.push_str(&input[..end]);
            input.replace_range(..end, "");
        }
    }
    output
}

/// `Mail::SpamAssassin::HTML::target_uri`: `uri` resolved against `base`.
fn target_uri(base: &str, uri: &str) -> String {
    let r = parse_uri(uri);
    let b = parse_uri(base);
    let mut r_scheme = r.scheme;
    if let (Some(rs), Some(bs)) = (r.scheme, b.scheme)
        && rs == bs
    {
        r_scheme = None;
    }
    let (scheme, authority, path, query);
    if let Some(rs) = r_scheme {
        scheme = Some(rs);
        authority = r.authority;
        path = remove_dot_segments(r.path);
        query = r.query;
    } else {
        if r.authority.is_some() {
            authority = r.authority;
            path = remove_dot_segments(r.path);
            query = r.query;
        } else {
            if r.path.is_empty() {
                path = b.path.to_string();
                query = r.query.or(b.query);
            } else {
                path = if r.path.starts_with('/') {
                    remove_dot_segments(r.path)
                } else if b.authority.is_some() && b.path.is_empty() {
                    remove_dot_segments(&format!("/{}", r.path))
                } else {
                    let dir = b.path.rfind('/').map_or("", |slash| &b.path[..=slash]);
                    remove_dot_segments(&format!("{dir}{}", r.path))
                };
                query = r.query;
            }
            authority = b.authority;
        }
        scheme = b.scheme;
    }
    let mut result = String::new();
    match (scheme, authority) {
        (Some(scheme), _) if !scheme.is_empty() => {
            result.push_str(scheme);
            result.push(':');
        }
        (_, Some(authority)) => {
            let lower = authority.to_ascii_lowercase();
            let prefixed = |p: &str| {
                lower.strip_prefix(p).is_some_and(|rest| {
                    rest.trim_start_matches(|c: char| c.is_ascii_digit())
                        .starts_with('.')
                })
            };
            if prefixed("www") {
                result.push_str("http:");
            } else if prefixed("ftp") {
                result.push_str("ftp:");
            }
        }
        _ => {}
    }
    if let Some(authority) = authority {
        result.push_str("//");
        result.push_str(authority);
    }
    result.push_str(&path);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    if let Some(fragment) = r.fragment {
        result.push('#');
        result.push_str(fragment);
    }
    result
}

/// Named entities HTML::Parser decodes that mail commonly uses, and the Latin-1 set.
const LATIN1_ENTITIES: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

const OTHER_ENTITIES: [(&str, char); 17] = [
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("euro", '€'),
    ("trade", '™'),
    ("hellip", '…'),
    ("mdash", '—'),
    ("ndash", '–'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("bull", '•'),
    ("zwnj", '\u{200C}'),
    ("zwj", '\u{200D}'),
];

fn entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    if let Some(index) = LATIN1_ENTITIES.iter().position(|e| *e == name) {
        return char::from_u32(0xA0 + index as u32);
    }
    OTHER_ENTITIES
        .iter()
        .find(|(entity, _)| *entity == name)
        .map(|(_, c)| *c)
}

/// `&name;`, `&#NN;` and `&#xNN;` decoded; unknown entities stay as written.
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let name_len = rest[1..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'#')
            .count();
        let name = &rest[1..1 + name_len];
        match entity(name) {
            Some(c) if name_len > 0 => {
                out.push(c);
                let consumed = 1 + name_len + usize::from(rest[1 + name_len..].starts_with(';'));
                rest = &rest[consumed..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `s/[ \t\n\r\f\x0b]+|\xc2\xa0/ /gs`: a blank run, or the characters U+00C2 U+00A0
/// (a UTF-8 NBSP read as Latin-1), each become one space. Text up to the next control
/// byte, blank run or U+00C2 (whose UTF-8 starts with 0xC3, never inside another
/// character) is copied whole.
fn collapse_blanks(text: &str) -> String {
    const NBSP_AS_LATIN1: &str = "\u{C2}\u{A0}";
    let mut collapsed = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let special = next_blank_or_control(text.as_bytes(), at, Some(0xC3));
        collapsed.push_str(&text[at..special]);
        at = special;
        let Some(rest) = text.get(at..).filter(|rest| !rest.is_empty()) else {
            break;
        };
        if rest.starts_with(NBSP_AS_LATIN1) {
            collapsed.push(' ');
            at += NBSP_AS_LATIN1.len();
            continue;
        }
        match rest.bytes().take_while(|b| is_perl_space(*b)).count() {
            0 => {
                let c = rest.chars().next().unwrap_or_default();
                collapsed.push(c);
                at += c.len_utf8();
            }
            run => {
                collapsed.push(' ');
                at += run;
            }
        }
    }
    collapsed
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn blanks_collapse_as_the_perl_substitution_does(
            text in "[ab \t\n\r\x0b\x0c\x01\u{c2}\u{a0}\u{c3}\u{e9}]{0,60}"
        ) {
            let substitution = regex::Regex::new("[ \t\n\r\x0c\x0b]+|\u{C2}\u{A0}").unwrap();
            proptest::prop_assert_eq!(collapse_blanks(&text), substitution.replace_all(&text, " "));
        }
    }

    #[test]
    fn tags_whitespace_and_entities() {
        let page = render(
            "<html><head><title>T</title><style>p{}</style></head>\
            <body><p>Hello&nbsp;<b>world</b> &amp; you</p><div>line</div>a<br/>b\
            <script>var x;</script><!-- hidden --></body></html>",
        );
        assert_eq!(page.text, "\n\nT\n\n\n\nHello world & you\n\n\nline\na\nb");
    }

    #[test]
    fn links_and_sources_are_collected() {
        let page = render(
            "<a href=\" http://example.com/x \">x</a><img src='/img.png'>\
             <base href=\"http://base.example.com/dir/page.html\"><a href=\"rel/y\">y</a>\
             <a href=\"mailto:a@b.com\">m</a><form action=\"https://f.example.net/\">\
             <meta http-equiv=\"Refresh\" content=\"0; URL=http://r.example.org/\">",
        );
        assert_eq!(
            page.uris,
            [
                "http://example.com/x",
                "http://example.com/x",
                "/img.png",
                "http://base.example.com/dir/page.html",
                "http://base.example.com/dir/rel/y",
                "rel/y",
                "mailto:a@b.com",
                "mailto:a@b.com",
                "https://f.example.net/",
                "http://r.example.org/",
            ]
        );
    }

    #[test]
    fn target_uri_resolves_relative_references() {
        assert_eq!(target_uri("http://a.com/b/c", "../d"), "http://a.com/d");
        assert_eq!(target_uri("", "//www.x.com/p"), "http://www.x.com/p");
        assert_eq!(target_uri("http://a.com/", "http:x"), "http://a.com/x");
        assert_eq!(target_uri("", "foo.html"), "foo.html");
    }

    #[test]
    fn entities() {
        assert_eq!(
            decode_entities("&lt;&#65;&#x42;&eacute;&bogus;&amp"),
            "<ABé&bogus;&"
        );
    }
}
