//! The message as SpamAssassin 4.0 reads it (`Mail::SpamAssassin::Message`), so that
//! rules see the same text: its header parser, its own MIME splitter (boundaries,
//! missing separators, message/rfc822 parts parsed as messages), its decoders, and
//! the three texts rules run on:
//! - `body`: the Subject, then every text/plain and text/html leaf (HTML rendered),
//!   charset-normalized to UTF-8, blank-line runs as paragraph breaks and other
//!   whitespace runs as one space, one array element per paragraph (≤ 2048 bytes);
//! - `rawbody`: every text/* and message/* leaf, transfer-decoded only, in chunks of
//!   2-4 KB;
//! - `full`: the message as received, headers included (an mbox `From ` line dropped).
//!
//! mail-parser is not used here: the walker in `crate::scan::mime` gives decoded parts
//! but not their types and charsets, and SpamAssassin's splitter differs from
//! mail-parser's on malformed input. This one is iterative (a queue, no recursion),
//! nests at most 20 levels as SpamAssassin's does, and stops at 1,000 parts per
//! multipart and 10,000 parts per message.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::VecDeque;

use super::charset::{base64_decode, decode_header, normalize, qp_decode};
use super::content_type::{disposition_name, parse_content_type};
use super::html;
use crate::rules::byte_word::{is_perl_space, next_blank_or_control};

const SUBPARSE: usize = 20;
const MAX_PARTS_PER_MULTIPART: usize = 1000;
const MAX_NODES: usize = 10_000;
pub const MAX_BODY_LINE_LENGTH: usize = 2048;
const MAX_HEADER_KEY_LENGTH: usize = 256;
const MAX_HEADER_VALUE_LENGTH: usize = 8192;
const BODY_PART_SCAN_SIZE: usize = 50_000;
const RAWBODY_PART_SCAN_SIZE: usize = 500_000;

/// One header field: its name as written, the raw value (after the colon, folding
/// kept) and the decoded value (unfolded, trimmed, RFC 2047 decoded, UTF-8).
#[derive(Debug, Clone)]
pub struct Header {
    pub name: Vec<u8>,
    pub lname: Vec<u8>,
    pub raw: Vec<u8>,
    pub decoded: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Node {
    pub ctype: String,
    pub charset: Option<String>,
    pub name: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// `None` for a leaf.
    pub children: Option<Vec<usize>>,
    raw: Vec<u8>,
    /// [`Node::decoded`], kept once computed; `None` inside when the raw bytes
    /// are the decoded ones.
    decoded: OnceCell<Option<Vec<u8>>>,
}

impl Node {
    /// Decoded values of a header, in order.
    pub fn header_values<'a>(&'a self, lname: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
        self.headers
            .iter()
            .filter(move |h| h.lname == lname)
            .map(|h| h.decoded.as_slice())
    }

    fn last_header<'a>(&'a self, lname: &'a [u8]) -> Option<&'a [u8]> {
        self.header_values(lname).last()
    }

    /// The body with its Content-Transfer-Encoding decoded, computed on first use:
    /// `body` and `rawbody` rules both read the textual leaves.
    pub fn decoded(&self) -> &[u8] {
        let decoded = self.decoded.get_or_init(|| match self.decode() {
            Cow::Owned(decoded) => Some(decoded),
            Cow::Borrowed(_) => None,
        });
        decoded.as_deref().unwrap_or(&self.raw)
    }

    /// Content-Transfer-Encoding decoding, as `Message::Node::decode`; the raw bytes
    /// themselves for other encodings.
    fn decode(&self) -> Cow<'_, [u8]> {
        let encoding = self
            .last_header(b"content-transfer-encoding")
            .map(|v| v.to_ascii_lowercase())
            .unwrap_or_default();
        match encoding.as_slice() {
            b"quoted-printable" => Cow::Owned(crlf_to_lf(&qp_decode(&self.raw))),
            b"base64" => {
                let decoded = base64_decode(&self.raw);
                if self.ctype.starts_with("text/") || self.ctype.starts_with("message/") {
                    Cow::Owned(crlf_to_lf(&decoded))
                } else {
                    Cow::Owned(decoded)
                }
            }
            _ => Cow::Borrowed(&self.raw),
        }
    }

    /// Whether some rule text is made from this part's bytes: `body` and `rawbody`
    /// read textual leaves, and message/* parts are parsed as messages.
    fn keeps_raw(&self) -> bool {
        is_textual(self.effective_type()) || is_textual(&self.ctype)
    }

    /// text/html when the part's name ends in .htm(l), its type otherwise.
    pub fn effective_type(&self) -> &str {
        let is_html_name = self.name.as_ref().is_some_and(|name| {
            let lower = name.to_ascii_lowercase();
            [&b".html"[..], b".htm", b".shtml", b".shtm"]
                .iter()
                .any(|ext| lower.ends_with(ext))
        });
        if is_html_name {
            "text/html"
        } else {
            &self.ctype
        }
    }
}

/// A rendered text part, and for HTML the URIs its tags point to.
///
/// `wide` follows Perl's string model, which decides the bytes rules see: a part
/// decoded from 8-bit text, or holding a character above U+00FF (from an HTML
/// entity), is a character string; once any part is, the whole body text is UTF-8
/// encoded. Otherwise characters U+0080-U+00FF (from entities such as `&eacute;`)
/// stay single Latin-1 bytes, and only ASCII whitespace counts as whitespace.
struct Rendered {
    text: String,
    wide: bool,
    html_uris: Option<Vec<String>>,
}

#[derive(Debug)]
pub struct Message {
    /// Node 0 is the message itself; its headers are the message's headers.
    pub nodes: Vec<Node>,
    pub pristine_headers: Vec<u8>,
    pub pristine: Vec<u8>,
}

/// One body line as the splitter reads it: borrowed from the message, owned only
/// where SpamAssassin's reader changes it (line endings, long lines cut), so a
/// message of thousands of lines costs no allocation per line.
type Line<'r> = Cow<'r, [u8]>;

/// What `Message->new` reads before MIME parsing.
struct Head<'r> {
    headers: Vec<Header>,
    /// The message as received: its header block, then its body.
    pristine: Vec<u8>,
    headers_len: usize,
    body: Vec<Line<'r>>,
}

struct Job<'r> {
    node: usize,
    boundary: Option<Vec<u8>>,
    body: Vec<Line<'r>>,
    subparse: usize,
}

impl Message {
    pub fn parse(raw: &[u8]) -> Message {
        let mut head = read_head(raw);
        let pristine = std::mem::take(&mut head.pristine);
        let mut message = Message {
            nodes: Vec::new(),
            pristine_headers: pristine[..head.headers_len].to_vec(),
            pristine,
        };
        let job = message.add_message_node(head, SUBPARSE);
        message.parse_body(job);
        message
    }

    pub fn headers(&self) -> &[Header] {
        &self.nodes[0].headers
    }

    /// Adds a node for a message read by `read_head`, with SpamAssassin's fixes to
    /// its body lines, and returns its parse job.
    fn add_message_node<'r>(&mut self, head: Head<'r>, subparse: usize) -> Job<'r> {
        let mut node = Node {
            headers: head.headers,
            ..Node::default()
        };
        let content_type = parse_content_type(node.last_header(b"content-type"));
        node.ctype = content_type.ctype;
        let mut body = collapse_blank_runs(head.body);
        if node.ctype.starts_with("multipart/")
            && body.len() > 1
            && body[0].iter().any(|b| !b.is_ascii_whitespace())
        {
            let opens = content_type.boundary.as_ref().is_some_and(|boundary| {
                body[0].starts_with(b"--") && body[0][2..].starts_with(boundary)
            });
            if !opens {
                body.insert(0, Cow::Borrowed(b"\n"));
            }
        }
        self.nodes.push(node);
        Job {
            node: self.nodes.len() - 1,
            boundary: content_type.boundary,
            body,
            subparse,
        }
    }

    fn parse_body(&mut self, first: Job<'_>) {
        let mut queue = VecDeque::from([first]);
        while let Some(job) = queue.pop_front() {
            let is_multipart = self.nodes[job.node].ctype.starts_with("multipart/");
            if is_multipart
                && job.boundary.is_some()
                && job.subparse > 0
                && self.nodes.len() < MAX_NODES
            {
                self.parse_multipart(job, &mut queue);
                continue;
            }
            let (node, subparse) = (job.node, job.subparse);
            self.parse_normal(job);
            let ctype = self.nodes[node].ctype.clone();
            let is_message = ctype == "message/rfc822" || ctype == "message/global";
            if is_message && subparse > 0 && self.nodes.len() < MAX_NODES {
                let head = {
                    let decoded = self.nodes[node].decode();
                    // The decoded text lives only in this loop: its lines are copied.
                    (!decoded.is_empty()).then(|| read_head(&decoded).into_owned())
                };
                if let Some(head) = head {
                    let job = self.add_message_node(head, subparse - 1);
                    self.nodes[node].children = Some(vec![job.node]);
                    self.nodes[node].raw = Vec::new();
                    queue.push_back(job);
                }
            }
        }
    }

    fn parse_normal(&mut self, job: Job<'_>) {
        let node = &mut self.nodes[job.node];
        let content_type = parse_content_type(node.last_header(b"content-type"));
        if !content_type.missing {
            node.ctype = if !content_type.ctype.starts_with("multipart/") || job.boundary.is_some()
            {
                content_type.ctype
            } else {
                "text/plain".to_string()
            };
        }
        node.charset = content_type.charset;
        node.name = node
            .last_header(b"content-disposition")
            .and_then(disposition_name)
            .or(content_type.name);
        // No rule reads the bytes of other leaves (`full` reads the message as
        // received), and attachments are most of a message's bytes.
        if node.keeps_raw() {
            node.raw = job.body.concat();
        }
    }

    /// `_parse_multipart`: the preamble up to the first boundary is dropped, each
    /// part's headers and body collected, and each part queued with its own job.
    fn parse_multipart<'r>(&mut self, job: Job<'r>, queue: &mut VecDeque<Job<'r>>) {
        let Some(boundary) = job.boundary else {
            return;
        };
        let subparse = job.subparse - 1;
        let parent_type = self.nodes[job.node].ctype.clone();
        let mut body = job.body;
        let is_boundary_line = |line: &[u8]| -> Option<bool> {
            let rest = line
                .strip_prefix(b"--")?
                .strip_prefix(boundary.as_slice())?;
            let (last, rest) = match rest.strip_prefix(b"--") {
                Some(rest) => (true, rest),
                None => (false, rest),
            };
            rest.iter().all(u8::is_ascii_whitespace).then_some(last)
        };
        if let Some(open) = body
            .iter()
            .position(|line| is_boundary_line(line) == Some(false))
        {
            body.drain(..=open);
        }
        self.nodes[job.node].children = Some(Vec::new());
        let mut part = Node::default();
        let mut part_lines: Option<Vec<Line<'r>>> = None;
        let mut header: Option<Vec<u8>> = None;
        let mut in_body = false;
        let mut nested_boundary = false;
        let mut parts = 0;
        let mut remaining = body.len();
        for line in body {
            remaining -= 1;
            let mut found = is_boundary_line(&line);
            if found.is_some() && nested_boundary {
                if found == Some(true) {
                    nested_boundary = false;
                }
                found = None;
            }
            if remaining == 0 || found.is_some() {
                let mut lines = part_lines.take();
                if found.is_none() {
                    push_split_line(lines.get_or_insert_with(Vec::new), line.clone());
                } else if let Some(lines) = lines.as_mut()
                    && let Some(last) = lines.last_mut()
                {
                    if last.ends_with(b"\n") {
                        drop_last_byte(last);
                    }
                    if last.is_empty() {
                        lines.pop();
                    }
                }
                let content_type = parse_content_type(part.last_header(b"content-type"));
                part.ctype = if content_type.missing && parent_type == "multipart/digest" {
                    "message/rfc822".to_string()
                } else {
                    content_type.ctype
                };
                let part_boundary = content_type.boundary.or_else(|| Some(boundary.clone()));
                let index = self.nodes.len();
                self.nodes.push(std::mem::take(&mut part));
                if let Some(children) = self.nodes[job.node].children.as_mut() {
                    children.push(index);
                }
                queue.push_back(Job {
                    node: index,
                    boundary: part_boundary,
                    body: lines.unwrap_or_default(),
                    subparse,
                });
                parts += 1;
                if found == Some(true)
                    || parts == MAX_PARTS_PER_MULTIPART
                    || self.nodes.len() >= MAX_NODES
                {
                    return;
                }
                in_body = false;
                header = None;
                continue;
            }
            if !in_body {
                if is_field_start(&line) {
                    if let Some(previous) = header.take() {
                        add_part_header(&mut part, &previous);
                    }
                    header = Some(line.into_owned());
                    continue;
                }
                if matches!(line.first(), Some(b' ' | b'\t'))
                    && let Some(open) = header.as_mut()
                {
                    open.extend_from_slice(&line);
                    continue;
                }
                if let Some(previous) = header.take() {
                    let key = add_part_header(&mut part, &previous);
                    if key.eq_ignore_ascii_case(b"content-type") {
                        let nested = parse_content_type(part.last_header(b"content-type"));
                        if nested.boundary.as_deref() == Some(boundary.as_slice()) {
                            nested_boundary = true;
                        }
                    }
                }
                in_body = true;
                if matches!(&*line, b"\n" | b"\r\n" | b"\r" | b"") {
                    continue;
                }
            }
            push_split_line(part_lines.get_or_insert_with(Vec::new), line);
        }
    }

    /// Leaves in tree order, as `find_parts(qr/./, 1)`.
    fn leaves(&self) -> Vec<usize> {
        let mut leaves = Vec::new();
        let mut stack = vec![0];
        while let Some(index) = stack.pop() {
            match &self.nodes[index].children {
                None => leaves.push(index),
                Some(children) => stack.extend(children.iter().rev()),
            }
        }
        leaves
    }

    fn rendered(&self, index: usize) -> Option<Rendered> {
        let node = &self.nodes[index];
        let kind = node.effective_type();
        if kind != "text/plain" && kind != "text/html" {
            return None;
        }
        let decoded = node.decoded();
        let charset = node.charset.as_deref().unwrap_or("us-ascii");
        let wide = !decoded.is_ascii();
        let text = String::from_utf8(normalize(decoded, charset, false))
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        if kind == "text/html" && !decoded.is_empty() {
            let page = html::render(&text);
            let wide = wide || page.text.chars().any(|c| c > '\u{FF}');
            Some(Rendered {
                text: page.text,
                wide,
                html_uris: Some(page.uris),
            })
        } else {
            Some(Rendered {
                text,
                wide,
                html_uris: None,
            })
        }
    }

    /// The `body` rule text and the URIs found in HTML parts.
    pub fn body_lines(&self) -> (Vec<Vec<u8>>, Vec<String>) {
        let mut subject = self.nodes[0]
            .last_header(b"subject")
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        subject.push(b'\n');
        let leaves = self.leaves();
        if leaves.is_empty() {
            // A multipart without any part: SpamAssassin has no text at all, not
            // even the Subject line.
            return (Vec::new(), Vec::new());
        }
        let mut text = String::new();
        let mut uris = Vec::new();
        let mut wide = false;
        for leaf in leaves {
            if !text.is_empty() {
                text.push('\n');
            }
            if let Some(rendered) = self.rendered(leaf) {
                text.push_str(truncate_chars(
                    &rendered.text,
                    BODY_PART_SCAN_SIZE,
                    &['\n', ' '],
                ));
                wide |= rendered.wide;
                uris.extend(rendered.html_uris.into_iter().flatten());
            }
        }
        let normalized = normalize_whitespace(&text, wide);
        let mut all = subject;
        if wide {
            all.extend_from_slice(normalized.as_bytes());
        } else {
            // Characters up to U+00FF as single (Latin-1) bytes; ASCII as it is.
            if normalized.is_ascii() {
                all.extend_from_slice(normalized.as_bytes());
            } else {
                all.extend(normalized.chars().map(|c| c as u32 as u8));
            }
        }
        (split_short_lines(&all), uris)
    }

    /// The `rawbody` rule text.
    pub fn rawbody_chunks(&self) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        for leaf in self.leaves() {
            let node = &self.nodes[leaf];
            if !is_textual(node.effective_type()) || node.ctype == "text/calendar" {
                continue;
            }
            let decoded = truncate_bytes(node.decoded(), RAWBODY_PART_SCAN_SIZE);
            chunks.extend(split_short_paragraphs(decoded));
        }
        chunks
    }
}

/// A type starting with the word `text` or `message` (`/^(?:text|message)\b/`).
fn is_textual(kind: &str) -> bool {
    ["text", "message"].iter().any(|top| {
        kind.strip_prefix(top).is_some_and(|rest| {
            rest.is_empty()
                || !rest.as_bytes()[0].is_ascii_alphanumeric() && rest.as_bytes()[0] != b'_'
        })
    })
}

/// Drops every `\r` that a `\n` follows, copying the text between them whole.
fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut start = 0;
    for cr in memchr::memchr_iter(b'\r', bytes) {
        if bytes.get(cr + 1) == Some(&b'\n') {
            out.extend_from_slice(&bytes[start..cr]);
            start = cr + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out
}

/// Splits after each `\n`, as Perl's `split(/^/m, ...)`.
fn split_lines(raw: &[u8]) -> VecDeque<Line<'_>> {
    let mut lines = VecDeque::with_capacity(raw.len() / 64 + 1);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', raw) {
        lines.push_back(Cow::Borrowed(&raw[start..=end]));
        start = end + 1;
    }
    if start < raw.len() {
        lines.push_back(Cow::Borrowed(&raw[start..]));
    }
    lines
}

/// A header field name followed by a colon: `/^[\041-\071\073-\176]+[ \t]*:/`.
fn is_field_start(line: &[u8]) -> bool {
    let name = line
        .iter()
        .take_while(|b| matches!(b, 0x21..=0x39 | 0x3B..=0x7E))
        .count();
    name > 0 && {
        let blanks = line[name..]
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        line.get(name + blanks) == Some(&b':')
    }
}

/// `Message->new` up to the body: mbox separator, line-ending guess, header fields.
fn read_head(raw: &[u8]) -> Head<'_> {
    let mut lines = split_lines(raw);
    if lines.is_empty() {
        lines.push_back(Cow::Borrowed(b"\n"));
    }
    if is_mbox_separator(&lines[0]) {
        lines.pop_front();
    }
    let has_crlf =
        |line: Option<&Line<'_>>| line.is_some_and(|l| l.windows(2).any(|w| w == b"\r\n"));
    let crlf = has_crlf(lines.front()) || has_crlf(lines.back());
    let line_ending: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut headers = Vec::new();
    let mut pristine_headers = Vec::new();
    let mut header: Option<Vec<u8>> = None;
    let mut errors = 0;
    loop {
        let eof = lines.is_empty();
        let mut current = lines.pop_front().unwrap_or(Cow::Borrowed(line_ending));
        if crlf {
            current = add_missing_cr(current);
        }
        if matches!(current.first(), Some(b' ' | b'\t')) {
            header
                .get_or_insert_with(Vec::new)
                .extend_from_slice(&current);
            pristine_headers.extend_from_slice(&current);
            continue;
        }
        if let Some(field) = header.take() {
            add_message_header(&mut headers, &field, crlf);
        }
        if *current == *line_ending {
            if !eof {
                pristine_headers.extend_from_slice(&current);
            }
            break;
        }
        if current.starts_with(b"--") {
            lines.push_front(current);
            break;
        }
        if !is_field_start(&current) {
            errors += 1;
            if errors > 3 {
                lines.push_front(current);
                break;
            }
        }
        pristine_headers.extend_from_slice(&current);
        header = Some(current.into_owned());
    }
    let headers_len = pristine_headers.len();
    let mut pristine = pristine_headers;
    pristine.reserve(lines.iter().map(|line| line.len()).sum());
    for line in &lines {
        pristine.extend_from_slice(line);
    }
    let body = lines
        .into_iter()
        .map(|line| {
            if crlf && line.ends_with(b"\r\n") {
                let mut line = line.into_owned();
                line.truncate(line.len() - 2);
                line.push(b'\n');
                Cow::Owned(line)
            } else {
                line
            }
        })
        .collect();
    Head {
        headers,
        pristine,
        headers_len,
        body,
    }
}

fn is_mbox_separator(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"From") else {
        return false;
    };
    let blanks = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
    blanks >= 2 || (blanks == 1 && rest.get(1) != Some(&b':'))
}

impl Head<'_> {
    /// The same head with every line copied, for a text that does not outlive
    /// its parse.
    fn into_owned(self) -> Head<'static> {
        Head {
            headers: self.headers,
            pristine: self.pristine,
            headers_len: self.headers_len,
            body: self
                .body
                .into_iter()
                .map(|line| Cow::Owned(line.into_owned()))
                .collect(),
        }
    }
}

fn add_missing_cr(line: Line<'_>) -> Line<'_> {
    let bare_lf = line
        .iter()
        .enumerate()
        .any(|(index, &byte)| byte == b'\n' && (index == 0 || line[index - 1] != b'\r'));
    if !bare_lf {
        return line;
    }
    let mut out = Vec::with_capacity(line.len() + 1);
    for (index, &byte) in line.iter().enumerate() {
        if byte == b'\n' && (index == 0 || line[index - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(byte);
    }
    Cow::Owned(out)
}

fn add_message_header(headers: &mut Vec<Header>, field: &[u8], crlf: bool) {
    let Some(colon) = field.iter().position(|b| *b == b':') else {
        return;
    };
    let mut key = field[..colon].to_vec();
    while matches!(key.last(), Some(b' ' | b'\t')) {
        key.pop();
    }
    key.truncate(MAX_HEADER_KEY_LENGTH);
    let mut value = field[colon + 1..].to_vec();
    if crlf {
        value = crlf_to_lf(&value);
    }
    value.truncate(MAX_HEADER_VALUE_LENGTH);
    headers.push(make_header(key, value));
}

/// `split(/:\s*/, $header, 2)` in a MIME part's header block; returns the key.
fn add_part_header(part: &mut Node, field: &[u8]) -> Vec<u8> {
    let Some(colon) = field.iter().position(|b| *b == b':') else {
        return Vec::new();
    };
    let key = field[..colon].to_vec();
    let blanks = field[colon + 1..]
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    let value = field[colon + 1 + blanks..].to_vec();
    part.headers.push(make_header(key.clone(), value));
    key
}

/// `Message::Node::header($key, $value)`: unfolds, trims and decodes the value.
fn make_header(name: Vec<u8>, raw: Vec<u8>) -> Header {
    let mut unfolded = Vec::with_capacity(raw.len());
    let mut index = 0;
    while index < raw.len() {
        if raw[index] == b'\n' && matches!(raw.get(index + 1), Some(b' ' | b'\t')) {
            unfolded.push(b' ');
            index += 1;
            while matches!(raw.get(index), Some(b' ' | b'\t')) {
                index += 1;
            }
            continue;
        }
        unfolded.push(raw[index]);
        index += 1;
    }
    let trimmed = trim_ascii_whitespace(&unfolded);
    let name_text = String::from_utf8_lossy(&name).into_owned();
    let decoded = decode_header(&name_text, trimmed);
    Header {
        lname: name.to_ascii_lowercase(),
        name,
        raw,
        decoded,
    }
}

fn trim_ascii_whitespace(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| is_perl_space(*b);
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |end| end + 1);
    &bytes[start..end.max(start)]
}

/// Runs of more than 20 blank lines are cut to 20.
fn collapse_blank_runs(lines: Vec<Line<'_>>) -> Vec<Line<'_>> {
    let mut out = Vec::with_capacity(lines.len());
    let mut blanks = 0;
    for line in lines {
        if line.iter().all(u8::is_ascii_whitespace) {
            blanks += 1;
            if blanks > 20 {
                continue;
            }
        } else {
            blanks = 0;
        }
        out.push(line);
    }
    out
}

/// Lines over `MAX_BODY_LINE_LENGTH` bytes are cut into pieces of that length, each
/// but the last given a newline.
fn push_split_line<'r>(lines: &mut Vec<Line<'r>>, line: Line<'r>) {
    if line.len() <= MAX_BODY_LINE_LENGTH {
        lines.push(line);
        return;
    }
    let mut rest: &[u8] = &line;
    while rest.len() > MAX_BODY_LINE_LENGTH {
        let mut piece = rest[..MAX_BODY_LINE_LENGTH].to_vec();
        piece.push(b'\n');
        lines.push(Cow::Owned(piece));
        rest = &rest[MAX_BODY_LINE_LENGTH..];
    }
    let last = rest.to_vec();
    lines.push(Cow::Owned(last));
}

fn drop_last_byte(line: &mut Line<'_>) {
    match line {
        Cow::Borrowed(bytes) => *bytes = &bytes[..bytes.len() - 1],
        Cow::Owned(bytes) => {
            bytes.pop();
        }
    }
}

/// Cuts text over `limit` characters at the next of `breaks` within 1 KB, or at the
/// limit, as `body_part_scan_size` does.
fn truncate_chars<'t>(text: &'t str, limit: usize, breaks: &[char]) -> &'t str {
    // No more characters than bytes: a short text needs no counting.
    if text.len() <= limit {
        return text;
    }
    let Some((cut, _)) = text.char_indices().nth(limit) else {
        return text;
    };
    for &mark in breaks {
        if let Some(found) = text[cut..].find(mark) {
            let extra = text[cut..cut + found].chars().count();
            if extra <= 1024 {
                return &text[..cut + found + mark.len_utf8()];
            }
        }
    }
    &text[..cut]
}

fn truncate_bytes(bytes: &[u8], limit: usize) -> &[u8] {
    if bytes.len() <= limit {
        return bytes;
    }
    for mark in [b'\n', b'>', b' '] {
        if let Some(found) = bytes[limit..].iter().position(|b| *b == mark)
            && found <= 1024
        {
            return &bytes[..limit + found + 1];
        }
    }
    &bytes[..limit]
}

/// Paragraph breaks (a newline run with at least two newlines, whitespace between
/// them) become one newline; every other whitespace run becomes one space.
/// `unicode`: every Unicode space is whitespace (a character string in Perl);
/// otherwise only ASCII whitespace is.
fn normalize_whitespace(text: &str, unicode: bool) -> String {
    if !unicode {
        return normalize_ascii_whitespace(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !c.is_whitespace() {
            // SpamAssassin marks paragraph breaks with NUL and then turns every
            // NUL into a newline, those of the text included.
            out.push(if c == '\0' { '\n' } else { c });
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(index, next)) = chars.peek() {
            if !next.is_whitespace() {
                break;
            }
            end = index + next.len_utf8();
            chars.next();
        }
        push_whitespace_run(&mut out, &text[start..end]);
    }
    out
}

/// `normalize_whitespace` when only ASCII whitespace counts. Most of a text needs no
/// change (words and single spaces), so it is copied in runs up to the next control
/// byte or white-space run; ASCII bytes never occur inside a multi-byte UTF-8
/// character, so the text may be cut at any of them.
fn normalize_ascii_whitespace(text: &str) -> String {
    let is_space = |b: &u8| is_perl_space(*b);
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < bytes.len() {
        let special = next_blank_or_control(bytes, at, None);
        out.push_str(&text[at..special]);
        at = special;
        let Some(&byte) = bytes.get(at) else {
            break;
        };
        if !is_space(&byte) {
            // NUL becomes a newline (SpamAssassin's paragraph mark); other control
            // bytes stay as they are.
            out.push(if byte == 0 { '\n' } else { char::from(byte) });
            at += 1;
            continue;
        }
        let run = bytes[at..]
            .iter()
            .position(|b| !is_space(b))
            .unwrap_or(bytes.len() - at);
        push_whitespace_run(&mut out, &text[at..at + run]);
        at += run;
    }
    out
}

/// One whitespace run: a paragraph break (a newline run with at least two newlines)
/// becomes one newline, with a space for what stood before the first newline and
/// after the last; any other run becomes one space.
fn push_whitespace_run(out: &mut String, run: &str) {
    let run = run.as_bytes();
    // Most runs are one space between two words.
    if run.len() == 1 {
        out.push(' ');
        return;
    }
    match (memchr::memchr(b'\n', run), memchr::memrchr(b'\n', run)) {
        (Some(first), Some(last)) if first != last => {
            if first > 0 {
                out.push(' ');
            }
            out.push('\n');
            if last + 1 < run.len() {
                out.push(' ');
            }
        }
        _ => out.push(' '),
    }
}

/// `split_into_array_of_short_lines`: one element per line, lines over 2048 bytes
/// cut after the last space that keeps them under the limit.
fn split_short_lines(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |at| start + at + 1);
        let mut line = &text[start..end];
        start = end;
        while line.len() > MAX_BODY_LINE_LENGTH {
            let window = &line[..=MAX_BODY_LINE_LENGTH];
            let cut = memchr::memrchr(b' ', window).map_or(MAX_BODY_LINE_LENGTH, |space| space + 1);
            let cut = if cut == 0 { MAX_BODY_LINE_LENGTH } else { cut };
            out.push(line[..cut].to_vec());
            line = &line[cut..];
        }
        out.push(line.to_vec());
    }
    out
}

/// `split_into_array_of_short_paragraphs`: chunks of 2-4 KB, cut after a newline,
/// a `>` or a space where possible.
fn split_short_paragraphs(text: &[u8]) -> Vec<Vec<u8>> {
    const MAX: usize = MAX_BODY_LINE_LENGTH;
    if text.len() <= MAX {
        return vec![text.to_vec()];
    }
    let mut out = Vec::new();
    let mut offset = 0;
    while text.len() - offset > 2 * MAX {
        let find = |mark: u8| {
            text[offset + MAX..]
                .iter()
                .position(|b| *b == mark)
                .map(|found| offset + MAX + found)
                .filter(|&end| end - offset < 2 * MAX)
        };
        let end = find(b'\n')
            .or_else(|| find(b'>'))
            .or_else(|| find(b' '))
            .unwrap_or(offset + MAX);
        out.push(text[offset..=end].to_vec());
        offset = end + 1;
    }
    if offset < text.len() {
        out.push(text[offset..].to_vec());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_whitespace_normalization_keeps_paragraphs_and_latin1() {
        assert_eq!(
            normalize_ascii_whitespace("a  b\t\n c \n\n d\0e\u{e9}\u{a0}f"),
            "a b c \n de\u{e9}\u{a0}f".replace("de", "d\ne")
        );
    }

    proptest::proptest! {
        #[test]
        fn ascii_whitespace_normalization_agrees_on_ascii_text(
            text in "[a-c! \t\r\n\x0b\x0c\x00\x01\x1f\u{e9}\u{ff}]{0,80}"
        ) {
            proptest::prop_assert_eq!(
                normalize_ascii_whitespace(&text),
                normalize_whitespace(&text, true)
            );
        }
    }

    fn body(message: &str) -> Vec<String> {
        let (lines, _) = Message::parse(message.as_bytes()).body_lines();
        lines
            .into_iter()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .collect()
    }

    #[test]
    fn body_starts_with_the_subject_and_joins_paragraphs() {
        let lines = body("Subject: Hi there\n\nfirst line\nsame paragraph\n\n\nnext  one\n");
        assert_eq!(
            lines,
            ["Hi there\n", "first line same paragraph\n", "next one "]
        );
    }

    #[test]
    fn no_subject_gives_an_empty_first_line() {
        assert_eq!(body("From: a@b.example\n\ntext\n"), ["\n", "text "]);
    }

    #[test]
    fn multipart_alternative_renders_both_parts() {
        let lines = body(
            "Subject: s\nContent-Type: multipart/alternative; boundary=\"b\"\n\n\
             --b\nContent-Type: text/plain\n\nplain text\n\
             --b\nContent-Type: text/html\n\n<p>html <b>bold</b></p>\n\
             --b--\n",
        );
        assert_eq!(lines, ["s\n", "plain text\n", "html bold\n"]);
    }

    #[test]
    fn encoded_parts_and_headers_are_decoded() {
        let message = "Subject: =?UTF-8?B?w6l0w6k=?=\n\
            Content-Type: text/plain; charset=iso-8859-1\n\
            Content-Transfer-Encoding: quoted-printable\n\ncaf=E9 =\nok\n";
        assert_eq!(body(message), ["été\n", "café ok "]);
    }

    #[test]
    fn rawbody_keeps_html_and_line_breaks() {
        let message = Message::parse(
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/html\n\n<p>a</p>\nb\n--b\nContent-Type: image/png\n\nPNG\n--b--\n",
        );
        assert_eq!(message.rawbody_chunks(), [b"<p>a</p>\nb".to_vec()]);
    }

    #[test]
    fn attached_messages_are_parsed() {
        let message = Message::parse(
            b"Subject: outer\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\
              Content-Type: message/rfc822\n\nSubject: inner\n\ninner text\n--b--\n",
        );
        let (lines, _) = message.body_lines();
        assert_eq!(lines[1], b"inner text");
        assert_eq!(message.headers()[0].decoded, b"outer");
    }

    #[test]
    fn crlf_messages_and_mbox_lines() {
        let message = Message::parse(b"From a@b Mon Jan 1\r\nSubject: x\r\n\r\nbody\r\n");
        assert_eq!(message.headers()[0].raw, b" x\n");
        assert_eq!(message.pristine, b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(body("Subject: x\r\n\r\nbody\r\n"), ["x\n", "body "]);
    }

    #[test]
    fn crlf_becomes_lf_and_lone_cr_stays() {
        assert_eq!(crlf_to_lf(b"a\r\nb\r\r\nc\rd\r"), b"a\nb\r\nc\rd\r");
        assert_eq!(crlf_to_lf(b""), b"");
    }

    #[test]
    fn long_lines_are_cut_at_spaces() {
        let text = format!("{} {}", "a".repeat(2000), "b".repeat(100));
        let lines = split_short_lines(text.as_bytes());
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), 2001);
    }
}
