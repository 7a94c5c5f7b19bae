//! MIME decomposition: walks a message's parts (nested multiparts, message/
//! rfc822 attachments, uuencoded files in text) and hands each one to the
//! scanners with its decoded bytes, file names, location and depth, drawing
//! on the scan's [`Budget`].
//!
//! mail-parser reads the structure and the names (RFC 2047 and 2231 decoding
//! included), but with transfer decoding switched off; `transfer` decodes
//! the bodies. There are two reasons:
//! - mail-parser gives up on base64 at the first stray character and keeps
//!   the raw text, while mail clients skip the character and decode the
//!   rest, so a scanner relying on it could be bypassed;
//! - mail-parser (0.11.9) parses a base64 or quoted-printable message/rfc822
//!   body by calling itself and copies the nested tree with a recursive
//!   `into_owned`: 3,000 messages (under 150 KB) nested inside one encoded
//!   attachment overflow a 2 MiB thread stack in a release build, 1,000 in
//!   a debug build, and a stack overflow aborts the whole work process.
//!   Without encodings it parses every nesting, multipart or message,
//!   iteratively (tested up to 100,000 levels).
//!
//! The one recursion left in mail-parser's output is the drop of nested
//! messages, which [`FlatDrop`] replaces. This walker recurses once per
//! nesting level and stops at `max_depth`, so its stack use stays bounded.
//!
//! A panic inside mail-parser is caught and reported as
//! [`WalkError::ParserPanicked`]: hostile input reaches `debug_assert!`s in
//! its recovery code (a message/rfc822 inside an empty one, found by the
//! scan proptest), and a parser bug must cost one message, not the process.

use std::any::Any;
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::panic::{self, AssertUnwindSafe};

use mail_parser::{HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType};

use super::ext::display_name;
use super::limits::{Budget, Exceeded};
use super::transfer::TransferEncoding;
use super::uuencode::uu_files;

/// One part of a message as the scanners see it.
#[derive(Debug)]
pub struct Part<'a> {
    /// Where the part is: `message`, `part 1.2 (invoice.pdf)`,
    /// `part 1 > setup.exe (uuencoded)`.
    pub location: &'a str,
    /// Every file name a mail client may save the part under.
    pub names: &'a [&'a str],
    /// The decoded bytes. Empty for multiparts and for nested messages sent
    /// unencoded: their bytes are those of their own parts.
    pub content: &'a [u8],
    /// Nesting level: 0 for the message, 1 for the parts of a top-level
    /// multipart; a uuencoded file is one level below its text part.
    pub depth: usize,
}

/// Why a walk could not reach the end of a message; the parts after
/// `location` were not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// A limit of the scan's budget (depth, parts, decoded bytes, time).
    #[error(transparent)]
    Limit(#[from] Exceeded),
    #[error("the MIME parser panicked: {message}")]
    ParserPanicked { message: String, location: String },
}

impl WalkError {
    /// The limit's setting name, or `parser_panic`; used as verdict name.
    pub fn name(&self) -> &'static str {
        match self {
            WalkError::Limit(exceeded) => exceeded.limit.name(),
            WalkError::ParserPanicked { .. } => "parser_panic",
        }
    }

    /// The part at which the walk stopped.
    pub fn location(&self) -> &str {
        match self {
            WalkError::Limit(exceeded) => &exceeded.location,
            WalkError::ParserPanicked { location, .. } => location,
        }
    }

    /// Whether a scan limit stopped the walk, rather than a failure of SIE.
    pub fn is_limit(&self) -> bool {
        matches!(self, WalkError::Limit(_))
    }
}

/// Calls `visit` on every part of `message`, parents before children, until
/// it returns `Break` or a limit of `budget` is exceeded. Every part counts
/// against `budget` before it is visited, and its decoded bytes before
/// they are.
///
/// Bytes in which mail-parser finds no header at all are read as one
/// plain-text part, as mail clients show them. Malformed input is read as
/// far as it goes: mail-parser recovers what it can, the decoders skip what
/// they cannot read, and a panic inside mail-parser becomes an error.
///
/// # Errors
///
/// The first limit of `budget` the message goes over, or a panic of the
/// parser.
pub fn walk(
    message: &[u8],
    budget: &Budget<'_>,
    visit: impl FnMut(&Part<'_>) -> ControlFlow<()>,
) -> Result<(), WalkError> {
    let mut walker = Walker {
        parser: MessageParser::new()
            .with_mime_headers()
            .ignore_header(HeaderName::ContentTransferEncoding),
        budget,
        visit,
    };
    match walker.walk_buffer(message, &PartPath::default(), 0) {
        Ok(()) | Err(Stop::Visitor) => Ok(()),
        Err(Stop::Incomplete(error)) => Err(error),
    }
}

/// Why a walk ended before the last part.
enum Stop {
    /// The visitor has seen enough (a virus: nothing can rank higher).
    Visitor,
    Incomplete(WalkError),
}

type Walk = Result<(), Stop>;

struct Walker<'b, 'l, F> {
    parser: MessageParser,
    budget: &'b Budget<'l>,
    visit: F,
}

impl From<Exceeded> for Stop {
    fn from(exceeded: Exceeded) -> Stop {
        Stop::Incomplete(WalkError::Limit(exceeded))
    }
}

impl<F: FnMut(&Part<'_>) -> ControlFlow<()>> Walker<'_, '_, F> {
    /// Parses `bytes` as a message whose parts are numbered under `path`.
    fn walk_buffer(&mut self, bytes: &[u8], path: &PartPath, depth: usize) -> Walk {
        let parser = &self.parser;
        // Parsing only reads `parser` and `bytes`, so nothing is left half
        // changed if it unwinds.
        let parsed = panic::catch_unwind(AssertUnwindSafe(|| parser.parse(bytes)));
        let parsed = parsed.map_err(|payload| {
            Stop::Incomplete(WalkError::ParserPanicked {
                message: panic_message(payload.as_ref()),
                location: path.location(None),
            })
        })?;
        match parsed {
            Some(message) => {
                let message = FlatDrop(message);
                self.walk_message(&message.0, path, depth)
            }
            None => {
                let path = path.child(1);
                self.enter(&path, depth)?;
                self.leaf(&path, &path.location(None), &[], bytes, true, depth)
            }
        }
    }

    /// Numbers parts as IMAP does: the parts of a multipart root are
    /// `1`, `2`, ... under `path`; a single-part body is `path.1`.
    fn walk_message(&mut self, message: &Message<'_>, path: &PartPath, depth: usize) -> Walk {
        let Some(root) = message.parts.first() else {
            return Ok(());
        };
        let root_path = match root.body {
            PartType::Multipart(_) => path.clone(),
            _ => path.child(1),
        };
        self.walk_part(message, 0, &root_path, depth, Parent::default())
    }

    fn walk_part(
        &mut self,
        message: &Message<'_>,
        id: usize,
        path: &PartPath,
        depth: usize,
        parent: Parent<'_>,
    ) -> Walk {
        let Some(part) = message.parts.get(id) else {
            return Ok(());
        };
        self.enter(path, depth)?;
        let names = part_names(part);
        let location = path.location(names.first().copied());
        let encoding = transfer_encoding(message, part);
        match &part.body {
            PartType::Multipart(children) => {
                self.visit(&location, &names, &[], depth)?;
                let container = Parent::of(part);
                // Child ids come from mail-parser; even a malformed tree
                // cannot loop forever, since every visit counts against
                // `max_parts`.
                for (index, &child) in children.iter().enumerate() {
                    let child_path = path.child(index + 1);
                    let child = child as usize;
                    self.walk_part(message, child, &child_path, depth + 1, container)?;
                }
                Ok(())
            }
            PartType::Message(nested) if encoding == TransferEncoding::Identity => {
                self.visit(&location, &names, &[], depth)?;
                self.walk_message(nested, path, depth + 1)
            }
            body => {
                let is_message = is_nested_message(part, parent);
                let mut raw = body_bytes(message, part);
                if is_message && let Some(boundary) = parent.boundary {
                    // A leaf ends at the boundary, but an encoded message
                    // misread by mail-parser (below) can run past it.
                    raw = until_boundary_line(raw, boundary.as_bytes());
                }
                let content = encoding.decode(raw);
                let is_text = matches!(body, PartType::Text(_) | PartType::Html(_))
                    || encoding == TransferEncoding::Uuencode;
                let is_text = is_text && !is_message;
                self.leaf(path, &location, &names, &content, is_text, depth)?;
                if let PartType::Message(misread) = body {
                    // Not told about the encoding, mail-parser read the
                    // encoded text as a message; that message can run over
                    // the parts after it, which must still be scanned.
                    self.walk_message(misread, path, depth + 1)?;
                }
                if is_message {
                    self.walk_buffer(&content, path, depth + 1)?;
                }
                Ok(())
            }
        }
    }

    /// Scans one part's decoded bytes, then the uuencoded files in it if it
    /// is text.
    fn leaf(
        &mut self,
        path: &PartPath,
        location: &str,
        names: &[&str],
        content: &[u8],
        is_text: bool,
        depth: usize,
    ) -> Walk {
        self.budget
            .add_decoded(content.len(), || location.to_string())?;
        self.visit(location, names, content, depth)?;
        if !is_text {
            return Ok(());
        }
        let text_location = path.location(None);
        for file in uu_files(content) {
            let location = format!("{text_location} > {} (uuencoded)", file.name);
            self.budget.check_depth(depth + 1, || location.clone())?;
            self.budget.count_part(|| location.clone())?;
            self.budget
                .add_decoded(file.data.len(), || location.clone())?;
            self.visit(&location, &[file.name.as_str()], &file.data, depth + 1)?;
        }
        Ok(())
    }

    fn enter(&mut self, path: &PartPath, depth: usize) -> Walk {
        self.budget.check_depth(depth, || path.location(None))?;
        self.budget.count_part(|| path.location(None))?;
        Ok(())
    }

    fn visit(&mut self, location: &str, names: &[&str], content: &[u8], depth: usize) -> Walk {
        match (self.visit)(&Part {
            location,
            names,
            content,
            depth,
        }) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Stop::Visitor),
        }
    }
}

/// The message a panic was raised with, if it has one.
pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message.to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "no message".to_string()
    }
}

/// A part number such as `1.2.3`; empty for the top-level message.
#[derive(Debug, Clone, Default)]
struct PartPath(Vec<usize>);

impl PartPath {
    fn child(&self, number: usize) -> PartPath {
        let mut numbers = self.0.clone();
        numbers.push(number);
        PartPath(numbers)
    }

    /// `message`, `part 1.2` or `part 1.2 (name)`.
    fn location(&self, name: Option<&str>) -> String {
        let mut location = String::new();
        for (index, number) in self.0.iter().enumerate() {
            let separator = if index == 0 { "part " } else { "." };
            let _ = write!(location, "{separator}{number}");
        }
        if location.is_empty() {
            location.push_str("message");
        }
        if let Some(name) = name {
            let _ = write!(location, " ({})", display_name(name));
        }
        location
    }
}

/// What a part needs to know about the multipart holding it.
#[derive(Debug, Clone, Copy, Default)]
struct Parent<'m> {
    boundary: Option<&'m str>,
    /// In multipart/digest a part without Content-Type is a message.
    is_digest: bool,
}

impl<'m> Parent<'m> {
    fn of(multipart: &'m MessagePart<'_>) -> Parent<'m> {
        let content_type = multipart.content_type();
        Parent {
            boundary: content_type.and_then(|ct| ct.attribute("boundary")),
            is_digest: content_type
                .and_then(|ct| ct.subtype())
                .is_some_and(|subtype| subtype.eq_ignore_ascii_case("digest")),
        }
    }
}

/// A parsed message that is taken apart without recursion when dropped.
///
/// A nested message is a `Message` inside a part of its parent, so the
/// derived drop recurses once per level and about 20,000 nested messages
/// (under 1 MB of input) overflow a 2 MiB stack.
struct FlatDrop<'x>(Message<'x>);

impl Drop for FlatDrop<'_> {
    fn drop(&mut self) {
        let mut pending = vec![std::mem::take(&mut self.0)];
        while let Some(mut message) = pending.pop() {
            for part in &mut message.parts {
                if let PartType::Message(nested) = std::mem::take(&mut part.body) {
                    pending.push(nested);
                }
            }
        }
    }
}

/// Every name a client may save the part under: Content-Disposition's
/// `filename`, which clients prefer, and Content-Type's `name` when it
/// differs, because some clients use that one instead.
fn part_names<'p>(part: &'p MessagePart<'_>) -> Vec<&'p str> {
    let filename = part
        .content_disposition()
        .and_then(|disposition| disposition.attribute("filename"));
    let name = part
        .content_type()
        .and_then(|content_type| content_type.attribute("name"));
    let mut names: Vec<&str> = filename.into_iter().collect();
    if let Some(name) = name
        && Some(name) != filename
    {
        names.push(name);
    }
    names
}

/// The part's transfer encoding, read from the raw header since the parser
/// was told to ignore it. Like mail-parser for other headers, the last of
/// repeated headers wins.
fn transfer_encoding(message: &Message<'_>, part: &MessagePart<'_>) -> TransferEncoding {
    part.headers
        .iter()
        .rev()
        .find(|header| header.name == HeaderName::ContentTransferEncoding)
        .and_then(|header| {
            let value = header.offset_start as usize..header.offset_end as usize;
            message.raw_message.get(value)
        })
        .map_or(
            TransferEncoding::Identity,
            TransferEncoding::from_header_value,
        )
}

fn is_nested_message(part: &MessagePart<'_>, parent: Parent<'_>) -> bool {
    match part.content_type() {
        Some(content_type) => {
            content_type.ctype().eq_ignore_ascii_case("message")
                && content_type.subtype().is_some_and(|subtype| {
                    subtype.eq_ignore_ascii_case("rfc822") || subtype.eq_ignore_ascii_case("global")
                })
        }
        None => parent.is_digest,
    }
}

/// The part's body as sent. Offsets are into the raw bytes of the message
/// holding the part, which for a nested message sent unencoded are those of
/// the outermost one.
fn body_bytes<'m>(message: &'m Message<'_>, part: &MessagePart<'_>) -> &'m [u8] {
    let body = part.offset_body as usize..part.offset_end as usize;
    message.raw_message.get(body).unwrap_or_default()
}

fn until_boundary_line<'b>(body: &'b [u8], boundary: &[u8]) -> &'b [u8] {
    let mut line_start = 0;
    while let Some(line) = body.get(line_start..) {
        let is_boundary = line
            .strip_prefix(b"--")
            .is_some_and(|rest| rest.starts_with(boundary));
        if is_boundary {
            return &body[..line_start];
        }
        match line.iter().position(|&byte| byte == b'\n') {
            Some(newline) => line_start += newline + 1,
            None => break,
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Limits;
    use crate::scan::testutil::{base64, nested_messages, nested_multiparts};

    /// A visited part, copied out of the walk.
    #[derive(Debug)]
    struct Seen {
        location: String,
        names: Vec<String>,
        content: Vec<u8>,
    }

    /// Every part the walk visits, in order, and how the walk ended.
    fn parts_of(message: &[u8], limits: &Limits) -> (Vec<Seen>, Result<(), WalkError>) {
        let mut parts = Vec::new();
        let budget = Budget::start(limits);
        let outcome = walk(message, &budget, |part| {
            parts.push(Seen {
                location: part.location.to_string(),
                names: part.names.iter().map(|name| name.to_string()).collect(),
                content: part.content.to_vec(),
            });
            ControlFlow::Continue(())
        });
        (parts, outcome)
    }

    fn locations(message: &[u8]) -> Vec<String> {
        let (parts, outcome) = parts_of(message, &Limits::default());
        assert_eq!(outcome, Ok(()));
        parts.into_iter().map(|part| part.location).collect()
    }

    fn content_at(message: &[u8], location: &str) -> Vec<u8> {
        let (parts, _) = parts_of(message, &Limits::default());
        parts
            .into_iter()
            .find(|part| part.location == location)
            .map(|part| part.content)
            .unwrap_or_else(|| panic!("no part at {location}"))
    }

    const MIXED: &[u8] = b"Subject: mixed\n\
        Content-Type: multipart/mixed; boundary=outer\n\
        \n\
        --outer\n\
        Content-Type: multipart/alternative; boundary=inner\n\
        \n\
        --inner\n\
        Content-Type: text/plain\n\
        \n\
        plain\n\
        --inner\n\
        Content-Type: text/html\n\
        \n\
        <p>html</p>\n\
        --inner--\n\
        --outer\n\
        Content-Type: application/pdf; name=\"report.pdf\"\n\
        Content-Disposition: attachment; filename=\"report.pdf\"\n\
        Content-Transfer-Encoding: base64\n\
        \n\
        JVBERi0x\n\
        --outer--\n";

    #[test]
    fn parts_are_numbered_like_imap() {
        assert_eq!(
            locations(MIXED),
            [
                "message",
                "part 1",
                "part 1.1",
                "part 1.2",
                "part 2 (report.pdf)"
            ]
        );
    }

    #[test]
    fn parts_carry_their_depth() {
        let limits = Limits::default();
        let mut depths = Vec::new();
        walk(MIXED, &Budget::start(&limits), |part| {
            depths.push(part.depth);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(depths, [0, 1, 2, 2, 1]);
        let uu = b"Subject: uu\n\nbegin 644 cat.txt\n#0V%T\n`\nend\n";
        let mut depths = Vec::new();
        walk(uu, &Budget::start(&limits), |part| {
            depths.push((part.location.to_string(), part.depth));
            ControlFlow::Continue(())
        })
        .unwrap();
        // The body of a single-part message is the message itself, at 0.
        assert_eq!(depths[1], ("part 1 > cat.txt (uuencoded)".to_string(), 1));
    }

    #[test]
    fn leaves_carry_decoded_bytes_and_names() {
        let (parts, _) = parts_of(MIXED, &Limits::default());
        assert_eq!(parts[4].names, ["report.pdf"]);
        assert_eq!(parts[4].content, b"%PDF-1");
        assert_eq!(content_at(MIXED, "part 1.1"), b"plain");
        assert_eq!(content_at(MIXED, "message"), b"");
    }

    #[test]
    fn single_part_message_is_part_1() {
        let message = b"Subject: hi\n\nhello\n";
        assert_eq!(locations(message), ["part 1"]);
        assert_eq!(content_at(message, "part 1"), b"hello\n");
    }

    #[test]
    fn headerless_bytes_are_one_text_part() {
        let text = b"just text\nbegin 644 a.txt\n#0V%T\nend\n";
        assert_eq!(content_at(text, "part 1"), text);
        assert_eq!(content_at(text, "part 1 > a.txt (uuencoded)"), b"Cat");
        assert_eq!(locations(b""), ["part 1"]);
    }

    #[test]
    fn both_disposition_and_type_names_are_reported() {
        let message = b"Content-Type: application/octet-stream; name=\"a.exe\"\n\
            Content-Disposition: attachment; filename=\"a.txt\"\n\nx";
        let (parts, _) = parts_of(message, &Limits::default());
        assert_eq!(parts[0].names, ["a.txt", "a.exe"]);
    }

    #[test]
    fn rfc2047_and_rfc2231_names_are_decoded() {
        let message = b"Content-Type: multipart/mixed; boundary=b\n\n\
            --b\n\
            Content-Type: application/octet-stream; name=\"=?UTF-8?Q?r=C3=A9sum=C3=A9.exe?=\"\n\n\
            x\n\
            --b\n\
            Content-Type: application/octet-stream\n\
            Content-Disposition: attachment;\n filename*0*=UTF-8''invoice%2E;\n filename*1=pdf.exe\n\n\
            y\n\
            --b--\n";
        let (parts, _) = parts_of(message, &Limits::default());
        assert_eq!(parts[1].names, ["résumé.exe"]);
        assert_eq!(parts[2].names, ["invoice.pdf.exe"]);
    }

    #[test]
    fn unencoded_message_attachment_is_walked() {
        let message = b"Content-Type: multipart/mixed; boundary=b\n\n\
            --b\n\
            Content-Type: text/plain\n\nsee attached\n\
            --b\n\
            Content-Type: message/rfc822\n\n\
            Subject: inner\n\
            Content-Type: multipart/mixed; boundary=c\n\n\
            --c\n\
            Content-Type: text/plain\n\ninner text\n\
            --c\n\
            Content-Type: application/zip; name=inner.zip\n\nPK\n\
            --c--\n\
            --b--\n";
        // The attached message and its multipart body share number 2, as
        // in IMAP.
        assert_eq!(
            locations(message),
            [
                "message",
                "part 1",
                "part 2",
                "part 2",
                "part 2.1",
                "part 2.2 (inner.zip)"
            ]
        );
        assert_eq!(content_at(message, "part 2.1"), b"inner text");
    }

    #[test]
    fn base64_message_attachment_is_decoded_and_walked() {
        let inner = b"Subject: inner\n\
            Content-Type: application/octet-stream; name=deep.bin\n\
            Content-Transfer-Encoding: base64\n\n\
            ZGVlcA==\n";
        let message = format!(
            "Content-Type: multipart/mixed; boundary=b\n\n\
             --b\n\
             Content-Type: message/rfc822\n\
             Content-Transfer-Encoding: base64\n\n\
             {}\n\
             --b\n\
             Content-Type: application/octet-stream; name=after.bin\n\
             Content-Transfer-Encoding: base64\n\n\
             YWZ0ZXI=\n\
             --b--\n",
            base64(inner)
        );
        let (parts, outcome) = parts_of(message.as_bytes(), &Limits::default());
        assert_eq!(outcome, Ok(()));
        let find = |name: &str| {
            parts
                .iter()
                .find(|part| part.names.iter().any(|n| n == name))
                .map(|part| part.content.clone())
        };
        assert_eq!(find("deep.bin").as_deref(), Some(&b"deep"[..]));
        assert_eq!(find("after.bin").as_deref(), Some(&b"after"[..]));
    }

    #[test]
    fn malformed_base64_is_decoded_around_the_damage() {
        let message = b"Content-Type: application/octet-stream\n\
            Content-Transfer-Encoding: base64\n\n\
            aGVs!!bG8g\x00\xff\nd29y*bGQ\n--\n";
        assert_eq!(content_at(message, "part 1"), b"hello world");
    }

    #[test]
    fn uuencoded_files_in_text_are_parts() {
        let message = b"Subject: uu\n\nHere it is:\n\nbegin 644 cat.txt\n#0V%T\n`\nend\n";
        let (parts, _) = parts_of(message, &Limits::default());
        assert_eq!(parts[1].location, "part 1 > cat.txt (uuencoded)");
        assert_eq!(parts[1].names, ["cat.txt"]);
        assert_eq!(parts[1].content, b"Cat");
    }

    #[test]
    fn x_uuencode_transfer_encoding_is_decoded() {
        let message = b"Content-Type: application/octet-stream; name=cat.txt\n\
            Content-Transfer-Encoding: x-uuencode\n\n\
            begin 644 cat.txt\n#0V%T\n`\nend\n";
        let (parts, _) = parts_of(message, &Limits::default());
        assert_eq!(parts[1].location, "part 1 > cat.txt (uuencoded)");
        assert_eq!(parts[1].content, b"Cat");
    }

    #[test]
    fn deep_multipart_nesting_stops_at_max_depth() {
        let (_, outcome) = parts_of(&nested_multiparts(1_000), &Limits::default());
        let exceeded = outcome.unwrap_err();
        assert_eq!(exceeded.name(), "max_depth");
        assert_eq!(exceeded.location(), format!("part {}", ["1"; 21].join(".")));
    }

    #[test]
    fn deep_message_nesting_neither_overflows_nor_passes() {
        // Runs on a 2 MiB stack, the default for spawned threads, with more
        // levels than the derived drop of mail-parser's tree survives.
        let scan = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let (_, outcome) = parts_of(&nested_messages(100_000), &Limits::default());
                outcome
            })
            .unwrap();
        assert_eq!(scan.join().unwrap().unwrap_err().name(), "max_depth");
    }

    #[test]
    fn deep_nesting_inside_an_encoded_message_is_safe() {
        let message = format!(
            "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n{}\n",
            base64(&nested_messages(5_000))
        );
        let scan = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parts_of(message.as_bytes(), &Limits::default()).1)
            .unwrap();
        assert_eq!(scan.join().unwrap().unwrap_err().name(), "max_depth");
    }

    #[test]
    fn part_count_is_limited() {
        let limits = Limits {
            max_parts: 3,
            ..Limits::default()
        };
        let (parts, outcome) = parts_of(MIXED, &limits);
        assert_eq!(parts.len(), 3);
        let exceeded = outcome.unwrap_err();
        assert_eq!(exceeded.name(), "max_parts");
        assert_eq!(exceeded.location(), "part 1.2");
    }

    #[test]
    fn uuencoded_files_count_as_parts() {
        let message = b"Subject: uu\n\nbegin 644 a\nend\nbegin 644 b\nend\nbegin 644 c\nend\n";
        let limits = Limits {
            max_parts: 3,
            ..Limits::default()
        };
        let exceeded = parts_of(message, &limits).1.unwrap_err();
        assert_eq!(exceeded.name(), "max_parts");
        assert_eq!(exceeded.location(), "part 1 > c (uuencoded)");
    }

    #[test]
    fn decoded_bytes_are_limited() {
        let limits = Limits {
            max_decoded_bytes: 8,
            ..Limits::default()
        };
        let exceeded = parts_of(MIXED, &limits).1.unwrap_err();
        assert_eq!(exceeded.name(), "max_decoded_bytes");
        assert_eq!(exceeded.location(), "part 1.2");
    }

    #[test]
    fn visitor_can_stop_the_walk() {
        let mut seen = 0;
        let limits = Limits::default();
        let outcome = walk(MIXED, &Budget::start(&limits), |_| {
            seen += 1;
            ControlFlow::Break(())
        });
        assert_eq!((seen, outcome), (1, Ok(())));
    }

    #[test]
    fn boundary_cut_finds_the_first_boundary_line() {
        assert_eq!(until_boundary_line(b"ab\ncd\n--b\nef", b"b"), b"ab\ncd\n");
        assert_eq!(until_boundary_line(b"--b\n", b"b"), b"");
        assert_eq!(until_boundary_line(b"a --b\n", b"b"), b"a --b\n");
        assert_eq!(until_boundary_line(b"", b"b"), b"");
    }
}
