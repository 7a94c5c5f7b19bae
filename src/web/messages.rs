//! What the console shows of queued messages: listing rows (envelope, subject, verdict
//! and rule from the result file) filtered by the user's domains, with search, sort
//! and paging, and the message view (headers, text parts, the attachment tree with
//! archive members, the scan result). Read-only: nothing here takes a lock.

use std::cmp::Ordering;
use std::fs;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::UNIX_EPOCH;

use mail_parser::{MessageParser, PartType};
use serde::Serialize;

use super::users::{Rights, address_domain};
use crate::queue::qf::{ControlFile, MAX_QF_BYTES};
use crate::queue::{self, Entry, QueueId, Spool, list_dir};
use crate::report::listing::queue_time;
use crate::scan::Limits;
use crate::scan::archive::{self, ArchiveKind, Content, Member};
use crate::scan::limits::Budget;
use crate::scan::mime::walk;

/// Rows per listing page.
pub const PAGE_SIZE: usize = 50;

/// Characters of one text part shown in the message view.
const TEXT_SHOWN: usize = 200_000;

/// Queues whose result files may explain an entry, after the entry's own queue: a
/// message released or deleted keeps the result file of the quarantine it came from.
const RESULT_QUEUES: [&str; 4] = ["virus", "ext", "spam", "error"];

/// The envelope and headers of one entry, read without a lock.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    /// Epoch seconds: the qf's `T` record, else its modification time.
    pub queued: i64,
}

impl Envelope {
    pub fn read(qf_path: &Path, mtime: i64) -> Result<(Envelope, ControlFile), String> {
        let bytes = fs::read(qf_path).map_err(|e| format!("{}: {e}", qf_path.display()))?;
        if bytes.len() as u64 > MAX_QF_BYTES {
            return Err(format!("{}: control file too large", qf_path.display()));
        }
        let control = ControlFile::parse(&bytes).map_err(|e| e.to_string())?;
        Ok((Envelope::of(&control, mtime), control))
    }

    pub fn of(control: &ControlFile, mtime: i64) -> Envelope {
        let headers = control.header_section();
        let subject = MessageParser::new()
            .parse_headers(&headers)
            .and_then(|m| m.subject().map(str::to_string))
            .unwrap_or_default();
        Envelope {
            sender: control.sender().unwrap_or_default(),
            recipients: control.recipients(),
            subject,
            queued: control.created().filter(|t| *t > 0).unwrap_or(mtime),
        }
    }

    /// Whether the sender's or a recipient's domain is `domain`.
    pub fn touches_domain(&self, domain: &str) -> bool {
        std::iter::once(&self.sender)
            .chain(&self.recipients)
            .any(|a| address_domain(a).as_deref() == Some(domain))
    }
}

/// One listing row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: String,
    pub queued: i64,
    pub date: String,
    pub bytes: u64,
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub verdict: String,
    pub rule: String,
    pub may_act: bool,
}

/// A result file's `key: value` lines.
pub fn read_result(spool: &Spool, queue: &str, id: &QueueId) -> Vec<(String, String)> {
    let mut queues = vec![queue];
    queues.extend(RESULT_QUEUES.iter().filter(|q| **q != queue));
    for q in queues {
        if let Ok(text) = fs::read_to_string(spool.results_dir(q).join(id.as_str())) {
            return text
                .lines()
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
    }
    Vec::new()
}

fn result_value(result: &[(String, String)], key: &str) -> String {
    result
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn mtime_epoch(entry: &Entry) -> i64 {
    entry
        .queued
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The rows of `queue` the user may see, restricted to `domain` when one is chosen.
/// Entries whose control file cannot be read have no envelope to judge them by: only
/// users with rights on every domain see them.
pub fn visible_rows(
    spool: &Spool,
    queue: &str,
    rights: &Rights,
    domain: Option<&str>,
) -> queue::Result<Vec<Row>> {
    let listing = list_dir(&spool.queue_dir(queue)?)?;
    let mut rows = Vec::new();
    for entry in &listing.entries {
        let mtime = mtime_epoch(entry);
        let row = match Envelope::read(&entry.qf_path(), mtime) {
            Ok((envelope, _)) => {
                let visible = rights.may_view(&envelope.sender, &envelope.recipients)
                    && domain.is_none_or(|d| envelope.touches_domain(d));
                if !visible {
                    continue;
                }
                let result = read_result(spool, queue, &entry.id);
                Row {
                    id: entry.id.to_string(),
                    queued: envelope.queued,
                    date: queue_time(envelope.queued),
                    bytes: entry.bytes(),
                    may_act: rights.may_act(&envelope.sender, &envelope.recipients),
                    sender: envelope.sender,
                    recipients: envelope.recipients,
                    subject: envelope.subject,
                    verdict: result_value(&result, "verdict"),
                    rule: result_value(&result, "name"),
                }
            }
            Err(problem) if rights.has_all() && domain.is_none() => Row {
                id: entry.id.to_string(),
                queued: mtime,
                date: queue_time(mtime),
                bytes: entry.bytes(),
                sender: String::new(),
                recipients: Vec::new(),
                subject: format!("(unreadable: {problem})"),
                verdict: String::new(),
                rule: String::new(),
                may_act: false,
            },
            Err(_) => continue,
        };
        rows.push(row);
    }
    Ok(rows)
}

/// How a listing is searched, sorted and paged (`?q=&sort=&order=&page=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListQuery {
    pub search: String,
    /// `date`, `size`, `sender`, `subject`, `verdict` or `id`.
    pub sort: String,
    pub descending: bool,
    /// From 1.
    pub page: usize,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            search: String::new(),
            sort: "date".into(),
            descending: true,
            page: 1,
        }
    }
}

impl ListQuery {
    pub fn from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> ListQuery {
        let mut query = ListQuery::default();
        for (key, value) in pairs {
            match key {
                "q" => query.search = value.trim().to_string(),
                "sort"
                    if ["date", "size", "sender", "subject", "verdict", "id"].contains(&value) =>
                {
                    query.sort = value.to_string()
                }
                "order" => query.descending = value != "asc",
                "page" => query.page = value.parse().unwrap_or(1).max(1),
                _ => {}
            }
        }
        query
    }

    /// Filters and sorts `rows`; returns the page asked for and the number of pages.
    pub fn apply(&self, mut rows: Vec<Row>) -> (Vec<Row>, usize, usize) {
        let needle = self.search.to_lowercase();
        if !needle.is_empty() {
            rows.retain(|r| {
                [&r.id, &r.sender, &r.subject, &r.verdict, &r.rule]
                    .into_iter()
                    .chain(&r.recipients)
                    .any(|field| field.to_lowercase().contains(&needle))
            });
        }
        let key = |a: &Row, b: &Row| -> Ordering {
            match self.sort.as_str() {
                "size" => a.bytes.cmp(&b.bytes),
                "sender" => a.sender.to_lowercase().cmp(&b.sender.to_lowercase()),
                "subject" => a.subject.to_lowercase().cmp(&b.subject.to_lowercase()),
                "verdict" => (&a.verdict, &a.rule).cmp(&(&b.verdict, &b.rule)),
                "id" => a.id.cmp(&b.id),
                _ => a.queued.cmp(&b.queued),
            }
            .then_with(|| a.id.cmp(&b.id))
        };
        rows.sort_by(|a, b| {
            if self.descending {
                key(b, a)
            } else {
                key(a, b)
            }
        });
        let matched = rows.len();
        let pages = matched.div_ceil(PAGE_SIZE).max(1);
        let page = self.page.min(pages);
        let shown = rows
            .into_iter()
            .skip((page - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .collect();
        (shown, pages, matched)
    }
}

/// One node of the attachment tree: a MIME part or an archive member.
#[derive(Debug, Clone, Serialize)]
pub struct TreeNode {
    pub depth: usize,
    pub location: String,
    pub names: String,
    pub bytes: usize,
    /// `zip archive`, `encrypted`, `damaged: ...`; empty otherwise.
    pub note: String,
}

/// A text part as shown: text, never markup.
#[derive(Debug, Clone, Serialize)]
pub struct TextPart {
    /// `text/plain`, or `text/html (shown as source)`.
    pub kind: String,
    pub text: String,
    pub truncated: bool,
}

/// Everything the message page shows.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub headers: String,
    pub texts: Vec<TextPart>,
    pub tree: Vec<TreeNode>,
    /// Set when a decoding limit stopped the tree before the end.
    pub tree_stopped: String,
}

/// Builds the message view on a thread with a large stack: hostile nesting must cost
/// a slow page, never the console.
pub fn view_message(message: Vec<u8>) -> MessageView {
    let job = std::thread::Builder::new()
        .name("message-view".into())
        .stack_size(256 << 20)
        .spawn(move || {
            std::panic::catch_unwind(|| build_view(&message)).unwrap_or_else(|_| MessageView {
                headers: String::new(),
                texts: Vec::new(),
                tree: Vec::new(),
                tree_stopped: "the MIME parser failed on this message".into(),
            })
        });
    match job.map(|handle| handle.join()) {
        Ok(Ok(view)) => view,
        _ => MessageView {
            headers: String::new(),
            texts: Vec::new(),
            tree: Vec::new(),
            tree_stopped: "the message could not be decoded".into(),
        },
    }
}

fn build_view(message: &[u8]) -> MessageView {
    let header_end = memchr::memmem::find(message, b"\n\n")
        .or_else(|| memchr::memmem::find(message, b"\r\n\r\n"))
        .unwrap_or(message.len());
    let headers = printable(&String::from_utf8_lossy(&message[..header_end]));
    let mut texts = Vec::new();
    if let Some(parsed) = MessageParser::default().parse(message) {
        let mut ids: Vec<u32> = parsed
            .text_body
            .iter()
            .chain(&parsed.html_body)
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let (kind, text) = match parsed.parts.get(id as usize).map(|p| &p.body) {
                Some(PartType::Text(text)) => ("text/plain", text),
                Some(PartType::Html(html)) => ("text/html (shown as source)", html),
                _ => continue,
            };
            let truncated = text.chars().count() > TEXT_SHOWN;
            let shown: String = text.chars().take(TEXT_SHOWN).collect();
            texts.push(TextPart {
                kind: kind.to_string(),
                text: printable(&shown),
                truncated,
            });
        }
    }
    let limits = Limits::default();
    let budget = Budget::start(&limits);
    let mut tree = Vec::new();
    let walked = walk(message, &budget, |part| {
        let names = printable(&part.names.join(" | "));
        let detected = archive::detect(part.content);
        tree.push(TreeNode {
            depth: part.depth,
            location: printable(part.location),
            names,
            bytes: part.content.len(),
            note: detected
                .map(|d| d.kind.label().to_string())
                .unwrap_or_default(),
        });
        if let Some(found) = detected {
            let name = part.names.first().copied();
            let context = (part.location, part.depth + 1);
            expand_members(found.kind, part.content, name, context, &budget, &mut tree);
        }
        ControlFlow::Continue(())
    });
    MessageView {
        headers,
        texts,
        tree,
        tree_stopped: walked.err().map(|e| e.to_string()).unwrap_or_default(),
    }
}

/// Adds the members of an archive (and of archives inside it) to the tree.
fn expand_members(
    kind: ArchiveKind,
    data: &[u8],
    name: Option<&str>,
    (location, depth): (&str, usize),
    budget: &Budget<'_>,
    tree: &mut Vec<TreeNode>,
) {
    let mut visit = |member: &Member<'_>| {
        let (bytes, note, inner) = match &member.content {
            Content::Data(data) => (data.len(), String::new(), Some(*data)),
            Content::Damaged { data, reason } => (data.len(), format!("damaged: {reason}"), None),
            Content::Encrypted => (0, "encrypted".to_string(), None),
            Content::UnsupportedMethod(method) => (0, format!("compressed with {method}"), None),
            Content::DuplicateName => (0, "name listed twice".to_string(), None),
            Content::TooBig(exceeded) => (0, exceeded.to_string(), None),
        };
        let nested = inner.and_then(archive::detect);
        tree.push(TreeNode {
            depth,
            location: printable(member.location),
            names: printable(&member.names.join(" | ")),
            bytes,
            note: match nested {
                Some(found) => found.kind.label().to_string(),
                None => note,
            },
        });
        if let (Some(found), Some(data)) = (nested, inner)
            && depth < budget.limits().max_depth
        {
            let context = (member.location, depth + 1);
            let name = member.names.first().copied();
            expand_members(found.kind, data, name, context, budget, tree);
        }
        ControlFlow::Continue(())
    };
    let _ = archive::expand(kind, data, name, location, budget, &mut visit);
}

/// Text safe to show as text: control characters (bar newline and tab) become
/// visible escapes, so odd bytes in names and headers can neither hide nor reorder
/// what the admin reads. HTML escaping is the template's job.
pub fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '\n' | '\t' => vec![c],
            '\r' => vec![],
            c if c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c) => {
                c.escape_unicode().collect()
            }
            c => vec![c],
        })
        .collect()
}

/// The message as the relay mailer would send it, and its envelope, read without a
/// lock (for viewing and downloading).
pub fn read_message(dir: &Path, id: &QueueId) -> Result<(Vec<u8>, ControlFile), String> {
    let qf_path = dir.join(id.qf_name());
    let bytes = fs::read(&qf_path).map_err(|e| format!("{}: {e}", qf_path.display()))?;
    let control = ControlFile::parse(&bytes).map_err(|e| format!("{}: {e}", qf_path.display()))?;
    let df = dir.join(id.df_name());
    let (message, _) = crate::inputs::assemble_message(&control, &df)
        .map_err(|e| format!("{}: {e}", df.display()))?;
    Ok((message, control))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, queued: i64, subject: &str) -> Row {
        Row {
            id: id.into(),
            queued,
            date: String::new(),
            bytes: queued as u64,
            sender: "<a@b.test>".into(),
            recipients: vec!["<c@d.test>".into()],
            subject: subject.into(),
            verdict: String::new(),
            rule: String::new(),
            may_act: true,
        }
    }

    #[test]
    fn listings_search_sort_and_page() {
        let rows: Vec<Row> = (0..120)
            .map(|n| {
                row(
                    &format!("ID{n:04}"),
                    n,
                    if n % 2 == 0 { "even" } else { "odd" },
                )
            })
            .collect();
        let query = ListQuery::from_pairs(
            [
                ("q", "EVEN"),
                ("sort", "size"),
                ("order", "asc"),
                ("page", "2"),
            ]
            .into_iter(),
        );
        let (page, pages, matched) = query.apply(rows.clone());
        assert_eq!((pages, matched), (2, 60));
        assert_eq!(page.len(), 10);
        assert_eq!(page[0].id, "ID0100");
        let (page, _, _) = ListQuery::default().apply(rows);
        assert_eq!(page[0].id, "ID0119", "newest first by default");
        assert_eq!(page.len(), PAGE_SIZE);
    }

    #[test]
    fn odd_bytes_become_visible_escapes() {
        assert_eq!(printable("a\u{1b}[31mb\u{0}\r\n"), "a\\u{1b}[31mb\\u{0}\n");
        assert_eq!(printable("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
    }

    #[test]
    fn the_tree_shows_parts_and_archive_members() {
        let mut zip = Vec::new();
        {
            let mut writer = zip::ZipWriter::new(std::io::Cursor::new(&mut zip));
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            writer.start_file("inner/readme.txt", options).unwrap();
            std::io::Write::write_all(&mut writer, b"hello").unwrap();
            writer.finish().unwrap();
        }
        let message = format!(
            "Subject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n\nhi <b>there</b>\n--XX\nContent-Type: application/zip; name=\"a.zip\"\nContent-Transfer-Encoding: base64\n\n{}\n--XX--\n",
            crate::scan::encode_base64(&zip)
        );
        let view = view_message(message.into_bytes());
        assert!(view.headers.starts_with("Subject: t"));
        assert_eq!(view.texts[0].kind, "text/plain");
        assert!(view.texts[0].text.contains("hi <b>there</b>"));
        let member = view
            .tree
            .iter()
            .find(|n| n.names.contains("inner/readme.txt"))
            .expect("member listed");
        assert_eq!(member.bytes, 5);
        assert!(
            view.tree
                .iter()
                .any(|n| n.note == "zip archive" && n.names.contains("a.zip"))
        );
        assert!(view.tree_stopped.is_empty());
    }
}
