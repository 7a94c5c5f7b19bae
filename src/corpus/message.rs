//! One generated message: its plan (kind and size class, fixed for the whole corpus up
//! front), its sendmail-shaped queue id, its envelope and headers, and its MIME body.
//!
//! The kinds are exclusive and counted exactly: `round(count × rate)` messages of each
//! non-clean kind, placed by a seeded shuffle. EICAR messages cycle through the hiding
//! places in order (plain, base64, zip, zip-in-zip, tar.gz), so any corpus with five or
//! more of them has every place; blocked-extension messages cycle through their names
//! the same way.

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

use super::attach;
use super::rng::{Rng, hex};
use super::text::{self, Letter};
use crate::queue::qf::ControlFileBuilder;

/// Stream numbers of [`Rng::stream`]: one independent sequence per purpose.
const STREAM_KINDS: u64 = 1;
const STREAM_CLASSES: u64 = 2;
const STREAM_IDS: u64 = 3;
const STREAM_MESSAGE: u64 = 4;

/// 2026-01-01 00:00:00 UTC: queue times start within 300 days of it.
const BASE_EPOCH: i64 = 1_767_225_600;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

/// What a message is, as the scanner should judge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Clean,
    /// Carries the EICAR test file somewhere.
    Eicar,
    /// Carries an attachment with a blocked extension.
    Ext,
    /// Spam-like: shouting subject, money phrases, links to IP hosts...
    Spam,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Clean => "clean",
            Kind::Eicar => "eicar",
            Kind::Ext => "ext",
            Kind::Spam => "spam",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Clean, Kind::Eicar, Kind::Ext, Kind::Spam]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The size band of a message (whole RFC 822 size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SizeClass {
    /// 2-20 KiB of text or HTML.
    Small,
    /// 20-100 KiB: text and one attachment.
    Medium,
    /// 100 KiB - 5 MiB: text and one to three attachments.
    Big,
}

impl SizeClass {
    pub fn as_str(self) -> &'static str {
        match self {
            SizeClass::Small => "small",
            SizeClass::Medium => "medium",
            SizeClass::Big => "big",
        }
    }

    pub fn parse(s: &str) -> Option<SizeClass> {
        [SizeClass::Small, SizeClass::Medium, SizeClass::Big]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The target size range in bytes; generated sizes land within a few percent.
    pub fn bounds(self) -> (u64, u64) {
        match self {
            SizeClass::Small => (2 * KIB, 20 * KIB),
            SizeClass::Medium => (20 * KIB, 100 * KIB),
            SizeClass::Big => (100 * KIB, 5 * MIB),
        }
    }
}

/// The size mix of a corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// 83.5% small, 11% medium, 5.5% big: about 80 KiB a message on average
    /// (2,000 messages are about 160 MB), most of the bytes in the big tail.
    Realistic,
    /// Every message small (2-20 KiB).
    Small,
    /// Every message big (100 KiB - 5 MiB).
    Big,
}

impl Mix {
    /// Shares of medium and big messages, per mille.
    fn shares(self) -> (u64, u64) {
        match self {
            Mix::Realistic => (110, 55),
            Mix::Small => (0, 0),
            Mix::Big => (0, 1000),
        }
    }
}

/// Where an EICAR message hides the test file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hiding {
    /// An unencoded text/plain attachment.
    Plain,
    /// A base64 application/octet-stream attachment.
    Base64,
    /// A member of a zip attachment.
    Zip,
    /// A member of a zip inside a zip attachment.
    ZipInZip,
    /// A member of a tar.gz attachment.
    TarGz,
}

impl Hiding {
    pub const ALL: [Hiding; 5] = [
        Hiding::Plain,
        Hiding::Base64,
        Hiding::Zip,
        Hiding::ZipInZip,
        Hiding::TarGz,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Hiding::Plain => "plain",
            Hiding::Base64 => "base64",
            Hiding::Zip => "zip",
            Hiding::ZipInZip => "zip-in-zip",
            Hiding::TarGz => "tar.gz",
        }
    }

    /// Whether finding the file needs archive extraction.
    pub fn in_archive(self) -> bool {
        matches!(self, Hiding::Zip | Hiding::ZipInZip | Hiding::TarGz)
    }
}

/// Names the blocked-extension messages use, in turn.
pub const BLOCKED_NAMES: &[&str] = &[
    "invoice.pdf.exe",
    "setup.exe",
    "scan_0042.pdf.exe",
    "photo.jpg.scr",
    "update.exe",
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct CorpusSpec {
    pub seed: u64,
    pub count: usize,
    pub mix: Mix,
    pub eicar_rate: f64,
    pub spam_rate: f64,
    pub ext_rate: f64,
}

impl CorpusSpec {
    /// Decides every message's kind and size class.
    ///
    /// # Errors
    ///
    /// A rate outside 0..=1, or rates that add up to more than 1.
    pub fn plan(&self) -> Result<Plan, String> {
        for (name, rate) in [
            ("eicar", self.eicar_rate),
            ("spam", self.spam_rate),
            ("ext", self.ext_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("--{name}-rate {rate} is not between 0 and 1"));
            }
        }
        let n = self.count as f64;
        if self.eicar_rate + self.spam_rate + self.ext_rate > 1.0 + 1e-9 {
            return Err("--eicar-rate, --ext-rate and --spam-rate add up to more than 1".into());
        }
        let eicar = (n * self.eicar_rate).round() as usize;
        let ext = (n * self.ext_rate).round() as usize;
        let spam = (n * self.spam_rate).round() as usize;
        if eicar + ext + spam > self.count {
            return Err("--eicar-rate, --ext-rate and --spam-rate add up to more than 1".into());
        }
        let mut kinds = Vec::with_capacity(self.count);
        kinds.extend(std::iter::repeat_n(Kind::Eicar, eicar));
        kinds.extend(std::iter::repeat_n(Kind::Ext, ext));
        kinds.extend(std::iter::repeat_n(Kind::Spam, spam));
        kinds.resize(self.count, Kind::Clean);
        Rng::stream(self.seed, STREAM_KINDS, 0).shuffle(&mut kinds);

        let (medium_pm, big_pm) = self.mix.shares();
        let big = (self.count as u64 * big_pm).div_ceil(1000) as usize;
        let medium = ((self.count as u64 * medium_pm + 500) / 1000) as usize;
        let mut classes = Vec::with_capacity(self.count);
        classes.extend(std::iter::repeat_n(SizeClass::Big, big.min(self.count)));
        classes.extend(std::iter::repeat_n(
            SizeClass::Medium,
            medium.min(self.count - classes.len()),
        ));
        classes.resize(self.count, SizeClass::Small);
        Rng::stream(self.seed, STREAM_CLASSES, 0).shuffle(&mut classes);

        let mut seen = [0usize; 4];
        let ordinals = kinds
            .iter()
            .map(|&k| {
                let slot = &mut seen[k as usize];
                *slot += 1;
                *slot - 1
            })
            .collect();
        Ok(Plan {
            spec: self.clone(),
            kinds,
            classes,
            ordinals,
        })
    }
}

/// Every message's kind and class, decided before any is generated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub spec: CorpusSpec,
    pub kinds: Vec<Kind>,
    pub classes: Vec<SizeClass>,
    /// The message's number among those of its kind, which picks the EICAR hiding place
    /// or the blocked name.
    pub ordinals: Vec<usize>,
}

impl Plan {
    /// Generates message `index` (0-based); the same plan and index always give the same
    /// bytes.
    pub fn message(&self, index: usize) -> Message {
        let (id, created) = queue_id(self.spec.seed, index as u64);
        let mut rng = Rng::stream(self.spec.seed, STREAM_MESSAGE, index as u64);
        Builder {
            rng: &mut rng,
            kind: self.kinds[index],
            class: self.classes[index],
            ordinal: self.ordinals[index],
            id,
            created,
        }
        .build()
    }
}

/// A generated message: envelope, headers and body, and what a scanner should find.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    /// Queue time, epoch seconds.
    pub created: i64,
    pub sender: String,
    pub recipients: Vec<String>,
    pub helo: String,
    /// The header section in order; a value may hold `\n\t` folds.
    pub headers: Vec<(String, String)>,
    /// The body (the queue entry's df), LF line ends.
    pub body: Vec<u8>,
    pub kind: Kind,
    pub class: SizeClass,
    /// Where the finding is: `-` for clean, `zip-in-zip:a.zip/b.zip/eicar.com`,
    /// `attachment:invoice.pdf.exe`, `spam:caps-subject,ip-url,...`.
    pub hidden: String,
    /// For EICAR messages, where it hides.
    pub hiding: Option<Hiding>,
    /// The size the generator aimed at (within the class bounds).
    pub target: u64,
}

impl Message {
    /// The RFC 822 message: headers, blank line, body.
    pub fn eml(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 1024);
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    /// The size of [`Message::eml`] without building it.
    pub fn eml_len(&self) -> usize {
        self.headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 3)
            .sum::<usize>()
            + 1
            + self.body.len()
    }

    /// The sendmail control file (qf) for this message.
    pub fn control_file(&self) -> Vec<u8> {
        ControlFileBuilder {
            created: self.created,
            sender: self.sender.clone(),
            recipients: self.recipients.clone(),
            helo: self.helo.clone(),
            headers: self.headers.clone(),
            body_bytes: self.body.len() as u64,
        }
        .build()
    }
}

/// The sendmail-shaped queue id of message `index` and its queue time: `YMDhmsNNpppppp`
/// (SENDMAIL.md 6.1), 14 characters of `0-9A-Za-z`, for a time that advances 0.7 s per
/// message from a seeded start, a sequence number that advances by one per message
/// (so two messages of the same second always differ) and a growing pid.
pub fn queue_id(seed: u64, index: u64) -> (String, i64) {
    let mut rng = Rng::stream(seed, STREAM_IDS, 0);
    let start = BASE_EPOCH + rng.below(300 * 86_400) as i64;
    let seq0 = rng.below(3600);
    let pid0 = rng.range(1000, 800_000);
    let created = start + (index * 7 / 10) as i64;
    let seq = (seq0 + index) % 3600;
    let pid = (pid0 + index * 3 + Rng::stream(seed, STREAM_IDS, index + 1).below(3)) % 1_000_000;
    let t = DateTime::from_timestamp(created, 0).expect("a time in range");
    let naive = t.naive_utc();
    let d = |v: u32| DIGITS[v as usize] as char;
    let id = format!(
        "{}{}{}{}{}{}{}{}{pid:06}",
        d(((naive.year() - 1900) % 60) as u32),
        d(naive.month0()),
        d(naive.day()),
        d(naive.hour()),
        d(naive.minute()),
        d(naive.second()),
        d((seq / 60) as u32),
        d((seq % 60) as u32),
    );
    (id, created)
}

/// sendmail's id digits, values 0-61.
const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The EICAR test file, built at run time (see [`crate::scan::virus::eicar_test_file`]).
fn eicar() -> Vec<u8> {
    crate::scan::virus::eicar_test_file()
}

/// One MIME node.
enum Node {
    Text {
        content_type: String,
        encoding: &'static str,
        body: String,
    },
    Attachment(Attachment),
    Multi {
        subtype: &'static str,
        boundary: String,
        parts: Vec<Node>,
    },
}

struct Attachment {
    content_type: String,
    name: String,
    data: Vec<u8>,
    /// Base64 unless the data is plain ASCII text sent as is (`7bit`).
    base64: bool,
}

impl Attachment {
    fn new(content_type: &str, name: &str, data: Vec<u8>) -> Attachment {
        Attachment {
            content_type: content_type.to_string(),
            name: name.to_string(),
            data,
            base64: true,
        }
    }
}

impl Node {
    /// The node's own MIME headers.
    fn headers(&self) -> Vec<(String, String)> {
        match self {
            Node::Text {
                content_type,
                encoding,
                ..
            } => vec![
                ("Content-Type".into(), content_type.clone()),
                ("Content-Transfer-Encoding".into(), (*encoding).into()),
            ],
            Node::Attachment(a) => vec![
                (
                    "Content-Type".into(),
                    format!("{}; name=\"{}\"", a.content_type, a.name),
                ),
                (
                    "Content-Disposition".into(),
                    format!("attachment; filename=\"{}\"", a.name),
                ),
                (
                    "Content-Transfer-Encoding".into(),
                    if a.base64 { "base64" } else { "7bit" }.into(),
                ),
            ],
            Node::Multi {
                subtype, boundary, ..
            } => vec![(
                "Content-Type".into(),
                format!("multipart/{subtype};\n\tboundary=\"{boundary}\""),
            )],
        }
    }

    fn write_body(&self, out: &mut Vec<u8>) {
        match self {
            Node::Text { body, .. } => out.extend_from_slice(body.as_bytes()),
            Node::Attachment(a) if a.base64 => out.extend_from_slice(&attach::base64(&a.data)),
            // As is: the line break before the next boundary belongs to the boundary
            // (RFC 2046 5.1.1), so the part is exactly the data.
            Node::Attachment(a) => out.extend_from_slice(&a.data),
            Node::Multi {
                boundary, parts, ..
            } => {
                out.extend_from_slice(b"This is a multi-part message in MIME format.\n");
                for part in parts {
                    out.extend_from_slice(format!("\n--{boundary}\n").as_bytes());
                    for (name, value) in part.headers() {
                        out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
                    }
                    out.push(b'\n');
                    part.write_body(out);
                }
                out.extend_from_slice(format!("\n--{boundary}--\n").as_bytes());
            }
        }
    }
}

struct Builder<'r> {
    rng: &'r mut Rng,
    kind: Kind,
    class: SizeClass,
    ordinal: usize,
    id: String,
    created: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextStyle {
    Plain,
    Html,
    Alternative,
}

/// Bytes of MIME headers and boundary lines per attachment, for the size budget.
const PART_OVERHEAD: usize = 220;

impl Builder<'_> {
    fn build(self) -> Message {
        let Builder {
            rng,
            kind,
            class,
            ordinal,
            id,
            created,
        } = self;
        let (lo, hi) = class.bounds();
        let target = rng.log_uniform(lo, hi) as usize;

        // Envelope and the people in it.
        let from = text::person(rng);
        let from_domain = text::company_domain(rng);
        let from_addr = format!(
            "{}.{}@{from_domain}",
            from.0.to_lowercase(),
            from.1.to_lowercase()
        );
        let nrcpt = *rng.pick(&[1, 1, 1, 1, 1, 1, 2, 3]);
        let to: Vec<(String, String)> = (0..nrcpt).map(|_| text::person(rng)).collect();
        let recipients: Vec<String> = to
            .iter()
            .map(|(f, l)| format!("{}.{}@dest.test", f.to_lowercase(), l.to_lowercase()))
            .collect();
        let client_ip = text::ip(rng);
        let mut helo = format!("mail.{from_domain}");
        let mut sender = from_addr.clone();
        let mut subject = text::subject(rng);
        let mut message_id = true;
        let mut date = true;
        let mut x_mailer = rng.chance(0.6).then(|| text::mailer(rng).to_string());
        let mut traits: Vec<&str> = Vec::new();
        // Clean mail is plain text or multipart/alternative; spam is often HTML only.
        let mut style = if rng.chance(0.5) {
            TextStyle::Plain
        } else {
            TextStyle::Alternative
        };

        if kind == Kind::Spam {
            traits.push("ip-url");
            let shout = rng.chance(0.5);
            if shout {
                traits.push("caps-subject");
            }
            subject = text::spam_subject(rng, shout);
            if rng.chance(0.15) {
                traits.push("encoded-subject");
                subject = format!(
                    "=?UTF-8?B?{}?=",
                    String::from_utf8(attach::base64(subject.as_bytes()))
                        .expect("base64 is ASCII")
                        .replace('\n', "")
                );
            }
            if rng.chance(0.4) {
                traits.push("no-message-id");
                message_id = false;
            }
            if rng.chance(0.1) {
                traits.push("no-date");
                date = false;
            }
            if rng.chance(0.3) {
                traits.push("bulk-mailer");
                x_mailer = Some(text::bulk_mailer(rng).to_string());
            }
            if rng.chance(0.5) {
                traits.push("envelope-mismatch");
                sender = format!(
                    "bounce-{}@{}",
                    rng.range(10_000, 999_999),
                    text::company_domain(rng)
                );
            }
            if rng.chance(0.6) {
                traits.push("html-only");
                style = TextStyle::Html;
            }
            if rng.chance(0.3) {
                traits.push("ip-helo");
                helo = format!("[{client_ip}]");
            }
        }

        // Headers first (without the MIME ones) so the body gets the rest of the budget.
        let received_for = if recipients.len() == 1 {
            format!("\n\tfor <{}>", recipients[0])
        } else {
            String::new()
        };
        let utc = DateTime::from_timestamp(created, 0).expect("a time in range");
        let mut headers: Vec<(String, String)> = vec![(
            "Received".into(),
            format!(
                "from {helo} ({} [{client_ip}])\n\tby mta.pipeline.test (8.17.1.9/8.17.1.9) with ESMTP id {id}{received_for}; {}",
                if helo.starts_with('[') {
                    "unknown".to_string()
                } else {
                    helo.clone()
                },
                utc.format("%a, %d %b %Y %H:%M:%S GMT")
            ),
        )];
        if date {
            let offset_hours = *rng.pick(&[0, 1, 1, 2, -5, -8, 9]);
            let zone = FixedOffset::east_opt(offset_hours * 3600).expect("a valid offset");
            headers.push((
                "Date".into(),
                utc.with_timezone(&zone)
                    .format("%a, %d %b %Y %H:%M:%S %z")
                    .to_string(),
            ));
        }
        headers.push((
            "From".into(),
            format!("\"{} {}\" <{from_addr}>", from.0, from.1),
        ));
        let to_value: Vec<String> = to
            .iter()
            .zip(&recipients)
            .map(|((f, l), addr)| format!("{f} {l} <{addr}>"))
            .collect();
        headers.push(("To".into(), to_value.join(",\n\t")));
        headers.push(("Subject".into(), subject));
        if message_id {
            headers.push((
                "Message-Id".into(),
                format!(
                    "<{}.{}@{from_domain}>",
                    utc.format("%Y%m%d%H%M%S"),
                    hex(&rng.bytes(6))
                ),
            ));
        }
        headers.push(("MIME-Version".into(), "1.0".into()));
        if let Some(mailer) = x_mailer {
            headers.push(("X-Mailer".into(), mailer));
        }
        let header_bytes: usize = headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 3)
            .sum::<usize>()
            + 120;
        let budget = target.saturating_sub(header_bytes);

        // Attachment budgets (raw bytes) by size class; text gets the rest.
        let text_target;
        let mut slots: Vec<usize> = Vec::new();
        match class {
            SizeClass::Small => {
                text_target = budget;
            }
            SizeClass::Medium | SizeClass::Big => {
                text_target = rng.range_usize(600, 6_000).min(budget / 4);
                let n = if class == SizeClass::Big {
                    rng.range_usize(1, 3)
                } else {
                    1
                };
                let encoded = budget.saturating_sub(text_target + n * PART_OVERHEAD + 150);
                let raw = encoded * 57 / 78;
                // Split the raw budget: the first attachment takes the larger share.
                let mut left = raw;
                for i in 0..n {
                    let share = if i + 1 == n {
                        left
                    } else {
                        left * rng.range_usize(40, 80) / 100
                    };
                    slots.push(share);
                    left -= share;
                }
            }
        }

        let mut attachments: Vec<Attachment> = Vec::new();
        let mut hidden = "-".to_string();
        let mut hiding = None;
        match kind {
            Kind::Eicar => {
                let h = Hiding::ALL[ordinal % Hiding::ALL.len()];
                hiding = Some(h);
                let room = if h.in_archive() && !slots.is_empty() {
                    slots.remove(0)
                } else {
                    0
                };
                let (a, place) = eicar_carrier(rng, h, room);
                hidden = format!("{}:{place}", h.as_str());
                attachments.push(a);
            }
            Kind::Ext => {
                let name = BLOCKED_NAMES[ordinal % BLOCKED_NAMES.len()];
                let size = if slots.is_empty() {
                    rng.range_usize(1_024, 4_096).min(budget / 3).max(512)
                } else {
                    slots.remove(0)
                };
                hidden = format!("attachment:{name}");
                let ctype = if name.contains(".pdf.") {
                    "application/pdf"
                } else {
                    "application/octet-stream"
                };
                attachments.push(Attachment::new(ctype, name, attach::exe(rng, size)));
            }
            Kind::Spam => hidden = format!("spam:{}", traits.join(",")),
            Kind::Clean => {}
        }
        if class == SizeClass::Small && kind == Kind::Clean && rng.chance(0.08) {
            // A few small messages carry a small document.
            slots.push(rng.range_usize(budget / 5, budget / 2) * 57 / 78);
        }
        for size in slots {
            attachments.push(clean_attachment(rng, size));
        }
        let attached: usize = attachments
            .iter()
            .map(|a| {
                PART_OVERHEAD
                    + if a.base64 {
                        attach::base64_len(a.data.len())
                    } else {
                        a.data.len()
                    }
            })
            .sum();
        let text_target = if class == SizeClass::Small {
            text_target.saturating_sub(attached).max(300)
        } else {
            text_target.max(300)
        };

        // The text: plain, HTML or both. The first try guesses how the letter's size
        // grows in rendering (an alternative holds it twice, HTML adds markup); a text
        // that misses its budget by more than 5% is written again, resized.
        let spam = kind == Kind::Spam;
        let html_qp = rng.chance(0.5);
        let mut letter_target = match style {
            TextStyle::Alternative => text_target * 10 / 23,
            TextStyle::Html => text_target * 10 / 13,
            TextStyle::Plain => text_target,
        };
        let mut tries = 0;
        let text_node = loop {
            let letter = if spam {
                Letter::spam(rng, letter_target)
            } else {
                Letter::business(rng, letter_target, &to[0].0, &from)
            };
            let node = text_node(rng, &letter, style, spam, html_qp, &id);
            let mut rendered = Vec::new();
            node.write_body(&mut rendered);
            tries += 1;
            let len = rendered.len().max(1);
            if len.abs_diff(text_target) <= text_target / 20 || tries == 4 {
                break node;
            }
            letter_target = (letter_target * text_target / len).max(100);
        };
        let root = if attachments.is_empty() {
            text_node
        } else {
            let mut parts = vec![text_node];
            parts.extend(attachments.into_iter().map(Node::Attachment));
            Node::Multi {
                subtype: "mixed",
                boundary: boundary(rng, &id, 'm'),
                parts,
            }
        };
        headers.extend(root.headers());
        let mut body = Vec::with_capacity(target + 1024);
        root.write_body(&mut body);

        Message {
            id,
            created,
            sender,
            recipients,
            helo,
            headers,
            body,
            kind,
            class,
            hidden,
            hiding,
            target: target as u64,
        }
    }
}

/// The text of a message as `style` wants it; `spam` renders links the spam way.
fn text_node(
    rng: &mut Rng,
    letter: &Letter,
    style: TextStyle,
    spam: bool,
    html_qp: bool,
    id: &str,
) -> Node {
    let plain = || Node::Text {
        content_type: "text/plain; charset=us-ascii".into(),
        encoding: "7bit",
        body: letter.plain(),
    };
    let html = || {
        let html = letter.html(spam);
        let (encoding, body) = if html_qp {
            ("quoted-printable", attach::quoted_printable(&html))
        } else {
            ("7bit", html)
        };
        Node::Text {
            content_type: "text/html; charset=utf-8".into(),
            encoding,
            body,
        }
    };
    match style {
        TextStyle::Alternative => Node::Multi {
            subtype: "alternative",
            boundary: boundary(rng, id, 'a'),
            parts: vec![plain(), html()],
        },
        TextStyle::Html => html(),
        TextStyle::Plain => plain(),
    }
}

fn boundary(rng: &mut Rng, id: &str, tag: char) -> String {
    format!("----=_Part_{tag}_{id}_{}", hex(&rng.bytes(4)))
}

/// An ordinary attachment of about `size` raw bytes: pdf, jpeg, zip, nested zip or tar.gz.
fn clean_attachment(rng: &mut Rng, size: usize) -> Attachment {
    let size = size.max(1_000);
    match rng.below(100) {
        0..35 => {
            let name = format!(
                "{}.pdf",
                rng.pick(&[
                    "report",
                    "invoice-2026-03",
                    "minutes",
                    "offer",
                    "scan0001",
                    "slides"
                ])
            );
            Attachment::new("application/pdf", &name, attach::pdf(rng, size))
        }
        35..55 => {
            let name = format!("IMG_{:04}.jpg", rng.range(1, 9999));
            Attachment::new("image/jpeg", &name, attach::jpeg(rng, size))
        }
        55..75 => {
            let members = archive_members(rng, size, None);
            let name = rng.pick(&[
                "documents.zip",
                "project-files.zip",
                "Q3-reports.zip",
                "photos.zip",
            ]);
            Attachment::new("application/zip", name, attach::zip(&members))
        }
        75..85 => {
            let (data, _) = nested_zip(rng, size, None);
            Attachment::new("application/zip", "archive.zip", data)
        }
        _ => {
            let members = archive_members(rng, size, None);
            let name = rng.pick(&["backup-2026-01.tar.gz", "logs.tar.gz", "site.tar.gz"]);
            Attachment::new("application/gzip", name, attach::tar_gz(&members))
        }
    }
}

/// Members for an archive of about `size` compressed bytes: a few text files (which
/// shrink about 3:1) and one binary file taking the rest; `extra` is added as is.
fn archive_members(
    rng: &mut Rng,
    size: usize,
    extra: Option<(String, Vec<u8>)>,
) -> Vec<(String, Vec<u8>)> {
    let folder = rng
        .pick(&["", "", "docs/", "files/", "project/"])
        .to_string();
    let mut members = Vec::new();
    let ntext = rng.range_usize(1, 4);
    let text_share = (size / 3).min(60_000);
    let mut compressed_estimate = 0;
    for i in 0..ntext {
        let len = (text_share * 3 / ntext).max(200);
        let (name, data) = match i % 3 {
            0 => (
                format!("{folder}notes-{}.txt", rng.range(1, 99)),
                text::text_file(rng, len),
            ),
            1 => (
                format!("{folder}data-{}.csv", rng.range(1, 99)),
                text::csv_file(rng, len),
            ),
            _ => (format!("{folder}README.md"), text::text_file(rng, len)),
        };
        // An archive listing a name twice is unscannable (only the last copy can be
        // read); realistic archives do not.
        if members.iter().any(|(taken, _)| *taken == name) {
            continue;
        }
        compressed_estimate += data.len() / 3 + 120;
        members.push((name, data));
    }
    let binary = size.saturating_sub(compressed_estimate + 200);
    if binary >= 512 {
        let data = if rng.chance(0.5) {
            (
                format!("{folder}scan-{}.pdf", rng.range(1, 999)),
                attach::pdf(rng, binary),
            )
        } else {
            (
                format!("{folder}photo-{}.jpg", rng.range(1, 999)),
                attach::jpeg(rng, binary),
            )
        };
        members.push(data);
    }
    if let Some(extra) = extra {
        let at = rng.range_usize(0, members.len());
        members.insert(at, extra);
    }
    members
}

/// A zip holding `inner.zip`-style archive plus a few files; `extra` goes into the inner
/// zip. Returns the bytes and the inner archive's name.
fn nested_zip(rng: &mut Rng, size: usize, extra: Option<(String, Vec<u8>)>) -> (Vec<u8>, String) {
    let inner_name = rng
        .pick(&["attachments.zip", "inner.zip", "old-mail.zip", "part2.zip"])
        .to_string();
    let inner = attach::zip(&archive_members(rng, size * 6 / 10, extra));
    let mut outer = archive_members(rng, size * 4 / 10, None);
    outer.push((inner_name.clone(), inner));
    (attach::zip(&outer), inner_name)
}

/// The attachment that carries EICAR for hiding place `h`, using about `room` bytes for
/// archive filler; and the path to EICAR inside it (`bundle.zip/inner.zip/eicar.com`).
fn eicar_carrier(rng: &mut Rng, h: Hiding, room: usize) -> (Attachment, String) {
    let room = room.max(rng.range_usize(600, 3_000));
    let member = rng
        .pick(&[
            "eicar.com",
            "eicar_test.com",
            "tools/eicar.com",
            "eicar.txt",
        ])
        .to_string();
    match h {
        Hiding::Plain => {
            let name = rng
                .pick(&["notes.txt", "eicar.txt", "test-file.txt"])
                .to_string();
            let a = Attachment {
                content_type: "text/plain; charset=us-ascii".into(),
                name: name.clone(),
                data: eicar(),
                base64: false,
            };
            (a, name)
        }
        Hiding::Base64 => {
            let name = rng
                .pick(&["eicar_test.bin", "sample.dat", "eicar.txt"])
                .to_string();
            (
                Attachment::new("application/octet-stream", &name, eicar()),
                name,
            )
        }
        Hiding::Zip => {
            let name = rng
                .pick(&["documents.zip", "tools.zip", "eicar_in_zip.zip"])
                .to_string();
            let members = archive_members(rng, room, Some((member.clone(), eicar())));
            (
                Attachment::new("application/zip", &name, attach::zip(&members)),
                format!("{name}/{member}"),
            )
        }
        Hiding::ZipInZip => {
            let name = rng
                .pick(&["bundle.zip", "archive.zip", "backup.zip"])
                .to_string();
            let (data, inner) = nested_zip(rng, room, Some((member.clone(), eicar())));
            (
                Attachment::new("application/zip", &name, data),
                format!("{name}/{inner}/{member}"),
            )
        }
        Hiding::TarGz => {
            let name = rng
                .pick(&["backup.tar.gz", "logs.tar.gz", "release.tar.gz"])
                .to_string();
            let members = archive_members(rng, room, Some((member.clone(), eicar())));
            (
                Attachment::new("application/gzip", &name, attach::tar_gz(&members)),
                format!("{name}/{member}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::qf::ControlFile;

    fn spec(count: usize, mix: Mix) -> CorpusSpec {
        CorpusSpec {
            seed: 42,
            count,
            mix,
            eicar_rate: 0.02,
            spam_rate: 0.2,
            ext_rate: 0.01,
        }
    }

    #[test]
    fn plan_counts_each_kind_exactly() {
        let plan = spec(1000, Mix::Realistic).plan().unwrap();
        let count = |k| plan.kinds.iter().filter(|&&x| x == k).count();
        assert_eq!(count(Kind::Eicar), 20);
        assert_eq!(count(Kind::Spam), 200);
        assert_eq!(count(Kind::Ext), 10);
        let big = plan
            .classes
            .iter()
            .filter(|&&c| c == SizeClass::Big)
            .count();
        assert_eq!(big, 55);
        assert!(spec(10, Mix::Small).plan().is_ok());
        let mut bad = spec(10, Mix::Small);
        bad.spam_rate = 0.99;
        assert!(bad.plan().is_err());
    }

    #[test]
    fn queue_ids_are_sendmail_shaped_and_unique() {
        let ids: Vec<String> = (0..10_000).map(|i| queue_id(9, i).0).collect();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), 14, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(crate::queue::QueueId::parse(id).is_some());
        }
        // Year digit of 2026 is 126 % 60 = 6.
        assert!(ids[0].starts_with('6'));
    }

    #[test]
    fn control_file_and_eml_agree() {
        let plan = spec(50, Mix::Realistic).plan().unwrap();
        for i in 0..50 {
            let m = plan.message(i);
            let qf = ControlFile::parse(&m.control_file()).unwrap();
            let mut eml = qf.header_section();
            eml.push(b'\n');
            eml.extend_from_slice(&m.body);
            assert_eq!(eml, m.eml());
            assert_eq!(m.eml_len(), eml.len());
        }
    }

    #[test]
    fn sizes_follow_the_class() {
        let plan = spec(300, Mix::Realistic).plan().unwrap();
        for i in 0..300 {
            let m = plan.message(i);
            let (lo, hi) = m.class.bounds();
            let len = m.eml_len() as u64;
            assert!(
                len >= lo * 9 / 10 && len <= hi * 11 / 10,
                "{} {:?} {:?} {len} not in {lo}..{hi}",
                m.id,
                m.kind,
                m.class
            );
        }
    }
}
