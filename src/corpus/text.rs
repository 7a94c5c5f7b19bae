//! Words for generated mail: names, domains, business prose rendered as plain text and
//! HTML, and the spam variety (shouting subjects, money phrases, links to bare IP hosts).
//! Domains are under the reserved `.example` and `.test` names (RFC 2606), so nothing
//! generated points at a real organisation.

use super::rng::Rng;

pub const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Carla", "David", "Elena", "Frank", "Grace", "Hugo", "Irene", "James", "Karin",
    "Lukas", "Maria", "Nils", "Olivia", "Peter", "Quentin", "Rosa", "Stefan", "Tanja", "Ulrich",
    "Vera", "Walter", "Xenia", "Yusuf", "Zoe", "Ahmed", "Bettina", "Chen", "Dmitri", "Eva",
    "Fatima", "Georg", "Hannah", "Ivan", "Julia", "Kenji", "Laura", "Mehmet", "Nora", "Oscar",
    "Paula", "Rahul", "Sofia", "Thomas", "Ursula", "Victor",
];

pub const LAST_NAMES: &[&str] = &[
    "Schmidt",
    "Miller",
    "Garcia",
    "Novak",
    "Rossi",
    "Dubois",
    "Jensen",
    "Kowalski",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Larsen",
    "Silva",
    "Becker",
    "Fischer",
    "Meyer",
    "Wagner",
    "Hoffmann",
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Wilson",
    "Martin",
    "Lefebvre",
    "Moreau",
    "Bianchi",
    "Romano",
    "Kim",
    "Lee",
    "Patel",
    "Singh",
    "Haddad",
    "Costa",
    "Nielsen",
    "Andersson",
    "Virtanen",
    "Horvat",
    "Popescu",
    "Yilmaz",
];

const COMPANIES: &[&str] = &[
    "northwind",
    "contoso",
    "fabrikam",
    "tailspin",
    "adventure-works",
    "litware",
    "proseware",
    "wingtip",
    "woodgrove",
    "lucerne",
    "alpine-ski",
    "coho-vineyard",
    "fourth-coffee",
    "margie-travel",
    "blue-yonder",
    "humongous",
    "trey-research",
    "wide-world",
    "consolidated",
    "graphic-design",
    "city-power",
    "relecloud",
    "southridge",
];

const TLDS: &[&str] = &["example", "example", "example", "test"];

/// Words of office prose, repeated toward the common ones.
const WORDS: &[&str] = &[
    "the",
    "the",
    "the",
    "the",
    "a",
    "a",
    "an",
    "and",
    "and",
    "and",
    "or",
    "of",
    "of",
    "of",
    "to",
    "to",
    "to",
    "in",
    "in",
    "for",
    "for",
    "on",
    "with",
    "with",
    "at",
    "by",
    "from",
    "as",
    "is",
    "is",
    "are",
    "was",
    "be",
    "will",
    "will",
    "can",
    "should",
    "would",
    "could",
    "we",
    "we",
    "you",
    "you",
    "our",
    "your",
    "they",
    "it",
    "this",
    "that",
    "these",
    "all",
    "meeting",
    "report",
    "project",
    "budget",
    "schedule",
    "team",
    "customer",
    "order",
    "invoice",
    "contract",
    "draft",
    "review",
    "update",
    "release",
    "version",
    "server",
    "office",
    "quarter",
    "results",
    "figures",
    "proposal",
    "deadline",
    "agenda",
    "minutes",
    "presentation",
    "document",
    "attachment",
    "spreadsheet",
    "account",
    "delivery",
    "shipment",
    "supplier",
    "warehouse",
    "department",
    "manager",
    "colleagues",
    "training",
    "workshop",
    "travel",
    "hotel",
    "conference",
    "call",
    "week",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "morning",
    "afternoon",
    "tomorrow",
    "today",
    "please",
    "thanks",
    "again",
    "also",
    "still",
    "already",
    "soon",
    "later",
    "next",
    "last",
    "first",
    "new",
    "final",
    "updated",
    "revised",
    "current",
    "previous",
    "open",
    "pending",
    "approved",
    "signed",
    "confirmed",
    "planned",
    "discussed",
    "agreed",
    "check",
    "send",
    "forward",
    "attach",
    "confirm",
    "prepare",
    "finish",
    "start",
    "move",
    "discuss",
    "approve",
    "share",
    "book",
    "reschedule",
    "include",
    "add",
    "remove",
    "fix",
    "test",
    "deploy",
    "migrate",
    "install",
    "configure",
    "backup",
    "network",
    "printer",
    "laptop",
    "license",
    "ticket",
    "issue",
    "request",
    "change",
    "policy",
    "process",
    "numbers",
    "details",
    "questions",
    "comments",
    "notes",
    "changes",
    "items",
    "points",
    "section",
    "page",
    "table",
    "chart",
    "summary",
    "overview",
    "plan",
    "status",
    "progress",
    "risk",
    "cost",
    "price",
    "payment",
    "terms",
    "tax",
    "audit",
    "forecast",
    "sales",
    "marketing",
    "finance",
    "legal",
    "support",
    "operations",
    "engineering",
    "product",
    "feature",
    "bug",
    "room",
    "floor",
    "building",
    "lunch",
    "coffee",
    "about",
    "before",
    "after",
    "during",
    "until",
    "since",
    "because",
    "if",
    "when",
    "there",
    "here",
    "some",
    "any",
    "more",
    "less",
    "few",
    "many",
    "each",
    "both",
];

const GREETINGS: &[&str] = &[
    "Hi",
    "Hello",
    "Dear",
    "Good morning",
    "Hi all,",
    "Hello team,",
];

const SIGNOFFS: &[&str] = &[
    "Best regards",
    "Kind regards",
    "Thanks",
    "Cheers",
    "Regards",
    "Many thanks",
    "Best",
    "Thank you",
];

const SUBJECT_TOPICS: &[&str] = &[
    "quarterly report",
    "project update",
    "meeting notes",
    "budget review",
    "invoice",
    "contract draft",
    "travel plans",
    "training schedule",
    "server maintenance",
    "release notes",
    "customer feedback",
    "order confirmation",
    "agenda for Monday",
    "new office layout",
    "license renewal",
    "audit findings",
    "sales figures",
    "workshop slides",
    "support ticket",
    "holiday schedule",
    "backup status",
];

const SUBJECT_PREFIXES: &[&str] = &["", "", "", "Re: ", "RE: ", "Fwd: ", "FW: ", "AW: "];

const SPAM_SUBJECTS: &[&str] = &[
    "You have WON a free gift card",
    "Lowest prices on meds guaranteed",
    "Make money fast from home",
    "URGENT: your account will be suspended",
    "Claim your prize now",
    "Hot singles in your area",
    "Lose 20 pounds in 10 days",
    "Cheap replica watches",
    "Your payment is pending - act now",
    "Exclusive investment opportunity",
    "100% FREE trial - no credit card",
    "Congratulations, you are selected",
    "Refinance today at 2.9%",
    "Earn $5000 per week guaranteed",
    "Limited time offer expires tonight",
    "Final notice: unclaimed funds",
    "Increase your income now",
];

const SPAM_PHRASES: &[&str] = &[
    "Dear friend,",
    "This is not spam.",
    "Act now!",
    "Limited time offer!",
    "100% satisfaction guaranteed.",
    "No credit card required.",
    "Risk free!",
    "Click here to claim your prize.",
    "You have been selected as a winner.",
    "Earn extra cash from home.",
    "Get paid to work from home.",
    "Buy direct and save!",
    "Lowest price guaranteed.",
    "Order now while supplies last!",
    "Dear beneficiary, we have a transfer of $12,500,000.00 (TWELVE MILLION USD) for you.",
    "Your account has been suspended, verify your password immediately.",
    "Cheap meds without prescription.",
    "Double your income in 30 days!",
    "Once in a lifetime opportunity.",
    "Special promotion for valued customers.",
    "You will not believe these prices!!!",
    "FREE FREE FREE",
    "Call now, operators standing by.",
    "To be removed from our mailing list, click unsubscribe.",
    "MILLIONS of satisfied customers!",
    "This offer expires at midnight.",
    "Meet local singles tonight.",
];

const BULK_MAILERS: &[&str] = &[
    "Mass Mailer Pro 4.2",
    "Group Mail Express",
    "Bulk Sender 2.0",
    "Atomic Mail Sender",
];

const MAILERS: &[&str] = &[
    "Microsoft Outlook 16.0",
    "Mozilla Thunderbird",
    "Apple Mail (2.3774)",
    "Roundcube Webmail/1.6.9",
    "Evolution 3.46.4",
    "K-9 Mail for Android",
];

pub fn person(rng: &mut Rng) -> (String, String) {
    (
        rng.pick(FIRST_NAMES).to_string(),
        rng.pick(LAST_NAMES).to_string(),
    )
}

pub fn company_domain(rng: &mut Rng) -> String {
    format!("{}.{}", rng.pick(COMPANIES), rng.pick(TLDS))
}

/// A random public-looking IPv4 address (first octet 1-223, not 10 or 127).
pub fn ip(rng: &mut Rng) -> String {
    let mut first = rng.range(1, 223);
    if first == 10 || first == 127 {
        first += 1;
    }
    format!(
        "{first}.{}.{}.{}",
        rng.range(0, 255),
        rng.range(0, 255),
        rng.range(1, 254)
    )
}

pub fn mailer(rng: &mut Rng) -> &'static str {
    let mailer: &&'static str = rng.pick(MAILERS);
    mailer
}

pub fn bulk_mailer(rng: &mut Rng) -> &'static str {
    let mailer: &&'static str = rng.pick(BULK_MAILERS);
    mailer
}

pub fn subject(rng: &mut Rng) -> String {
    let topic = rng.pick(SUBJECT_TOPICS);
    let mut s = format!("{}{}", rng.pick(SUBJECT_PREFIXES), capitalize(topic));
    if rng.chance(0.3) {
        let tag = rng.pick(&["draft", "v2", "final", "Q3", "week 12"]);
        s.push_str(&format!(" ({tag})"));
    }
    s
}

pub fn spam_subject(rng: &mut Rng, shout: bool) -> String {
    let mut s = rng.pick(SPAM_SUBJECTS).to_string();
    if rng.chance(0.4) {
        s.push_str(&"!".repeat(rng.range_usize(1, 4)));
    }
    if shout { s.to_uppercase() } else { s }
}

/// A link to a bare IP host, the way spam hides its landing pages.
pub fn ip_url(rng: &mut Rng) -> String {
    let path = rng.pick(&["claim", "offer", "login", "verify", "win", "track", "promo"]);
    let ip = ip(rng);
    format!(
        "http://{ip}/{path}.php?id={}",
        rng.range(10_000, 99_999_999)
    )
}

pub fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One sentence of office prose, 6 to 22 words.
pub fn sentence(rng: &mut Rng) -> String {
    let n = rng.range_usize(6, 22);
    let mut s = String::with_capacity(n * 7);
    for i in 0..n {
        let word = rng.pick(WORDS);
        if i == 0 {
            s.push_str(&capitalize(word));
        } else {
            s.push(' ');
            s.push_str(word);
            if i + 1 < n && rng.chance(0.06) {
                s.push(',');
            }
        }
    }
    s.push(*rng.pick(&['.', '.', '.', '.', '.', '?', '!']));
    s
}

/// A letter: greeting, paragraphs, sign-off; rendered as text and as HTML from the same
/// words so the two halves of a multipart/alternative agree.
#[derive(Debug, Clone)]
pub struct Letter {
    pub greeting: String,
    /// Paragraphs; each is a list of pieces (sentences or links).
    pub paragraphs: Vec<Vec<Piece>>,
    pub signoff: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Piece {
    Text(String),
    Link { url: String, label: String },
}

impl Piece {
    fn text_len(&self) -> usize {
        match self {
            Piece::Text(t) => t.len(),
            Piece::Link { url, label } => url.len() + label.len() + 2,
        }
    }
}

impl Letter {
    /// Office prose of about `target` bytes as plain text: sentences are added while
    /// they fit, so the text is at most `target` (and at least one sentence).
    pub fn business(
        rng: &mut Rng,
        target: usize,
        to_first: &str,
        from: &(String, String),
    ) -> Letter {
        let greeting = match *rng.pick(GREETINGS) {
            g if g.ends_with(',') => g.to_string(),
            g => format!("{g} {to_first},"),
        };
        let signoff = vec![
            format!("{},", rng.pick(SIGNOFFS)),
            format!("{} {}", from.0, from.1),
        ];
        let mut letter = Letter {
            greeting,
            paragraphs: Vec::new(),
            signoff,
        };
        let mut size =
            letter.greeting.len() + 2 + letter.signoff.iter().map(|s| s.len() + 1).sum::<usize>();
        let mut paragraph = Vec::new();
        let mut left_in_paragraph = rng.range_usize(2, 7);
        loop {
            let piece = if rng.chance(0.03) {
                let domain = company_domain(rng);
                let section = rng.pick(&["docs", "portal", "wiki", "share", "files"]);
                let url = format!("https://www.{domain}/{section}/{}", rng.range(1000, 99999));
                Piece::Link {
                    label: url.clone(),
                    url,
                }
            } else {
                Piece::Text(sentence(rng))
            };
            let len = piece.text_len() + 1;
            let first = letter.paragraphs.is_empty() && paragraph.is_empty();
            if size + len > target && !first {
                break;
            }
            size += len;
            paragraph.push(piece);
            left_in_paragraph -= 1;
            if left_in_paragraph == 0 {
                letter.paragraphs.push(std::mem::take(&mut paragraph));
                size += 1;
                left_in_paragraph = rng.range_usize(2, 7);
            }
        }
        if !paragraph.is_empty() {
            letter.paragraphs.push(paragraph);
        }
        letter
    }

    /// A spam text of about `target` bytes: shouting phrases and links to IP hosts.
    pub fn spam(rng: &mut Rng, target: usize) -> Letter {
        let greeting = rng.pick(&["Dear friend,", "Hello,", "Dear Customer,", "ATTENTION:"]);
        let mut letter = Letter {
            greeting: greeting.to_string(),
            paragraphs: Vec::new(),
            signoff: vec!["To unsubscribe from this list click here.".to_string()],
        };
        let mut size = 60;
        loop {
            let mut paragraph = Vec::new();
            for _ in 0..rng.range_usize(1, 4) {
                let phrase = rng.pick(SPAM_PHRASES);
                paragraph.push(Piece::Text(if rng.chance(0.2) {
                    phrase.to_uppercase()
                } else {
                    phrase.to_string()
                }));
            }
            if rng.chance(0.3) {
                paragraph.push(Piece::Text(sentence(rng)));
            }
            let label = rng.pick(&["CLICK HERE", "Claim now", "Order here", "Verify account"]);
            paragraph.push(Piece::Link {
                url: ip_url(rng),
                label: label.to_string(),
            });
            let len: usize = paragraph.iter().map(|p| p.text_len() + 1).sum::<usize>() + 1;
            if size + len > target && !letter.paragraphs.is_empty() {
                break;
            }
            size += len;
            letter.paragraphs.push(paragraph);
        }
        letter
    }

    /// Plain text, lines wrapped at 72 columns, a blank line between paragraphs.
    pub fn plain(&self) -> String {
        let mut out = String::new();
        out.push_str(&self.greeting);
        out.push_str("\n\n");
        for paragraph in &self.paragraphs {
            let text: Vec<String> = paragraph
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.clone(),
                    Piece::Link { url, label } if url == label => url.clone(),
                    Piece::Link { url, label } => format!("{label}: {url}"),
                })
                .collect();
            out.push_str(&wrap(&text.join(" "), 72));
            out.push('\n');
        }
        for line in &self.signoff {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// An HTML document with the same content, lines wrapped at 76 columns; `shouty`
    /// renders links as big red bold text, as spam does.
    pub fn html(&self, shouty: bool) -> String {
        let mut out = String::from(
            "<!DOCTYPE html>\n<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\n</head>\n<body>\n",
        );
        out.push_str(&format!("<p>{}</p>\n", escape(&self.greeting)));
        for paragraph in &self.paragraphs {
            let text: Vec<String> = paragraph
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => escape(t),
                    Piece::Link { url, label } if shouty => format!(
                        "<a href=\"{url}\"><font color=\"red\" size=\"5\"><b>{}</b></font></a>",
                        escape(label)
                    ),
                    Piece::Link { url, label } => {
                        format!("<a href=\"{url}\">{}</a>", escape(label))
                    }
                })
                .collect();
            out.push_str(&wrap(&format!("<p>{}</p>", text.join(" ")), 76));
        }
        let signoff: Vec<String> = self.signoff.iter().map(|s| escape(s)).collect();
        out.push_str(&format!(
            "<p>{}</p>\n</body>\n</html>\n",
            signoff.join("<br>\n")
        ));
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Greedy word wrap; a word longer than `width` stays whole on its own line. Every line,
/// the last included, ends in `\n`.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width + 1);
    let mut line_len = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if line_len > 0 && line_len + 1 + word.len() > width {
            out.push('\n');
            line_len = 0;
        }
        if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out.push('\n');
    out
}

/// A text file (notes, minutes) of exactly `size` bytes.
pub fn text_file(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = String::with_capacity(size + 600);
    while out.len() < size {
        let mut paragraph = String::new();
        for _ in 0..rng.range_usize(2, 6) {
            if !paragraph.is_empty() {
                paragraph.push(' ');
            }
            paragraph.push_str(&sentence(rng));
        }
        out.push_str(&wrap(&paragraph, 78));
        out.push('\n');
    }
    out.truncate(size);
    out.into_bytes()
}

/// A CSV table of about `size` bytes.
pub fn csv_file(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = String::from("date,account,region,units,amount\n");
    while out.len() < size {
        out.push_str(&format!(
            "2026-{:02}-{:02},{},{},{},{}.{:02}\n",
            rng.range(1, 12),
            rng.range(1, 28),
            rng.range(100_000, 999_999),
            rng.pick(&["north", "south", "east", "west", "central"]),
            rng.range(1, 500),
            rng.range(1, 99_999),
            rng.range(0, 99)
        ));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_letters_fit_their_target() {
        let mut rng = Rng::new(5);
        for target in [500, 2_000, 9_000, 19_000] {
            let from = person(&mut rng);
            let text = Letter::business(&mut rng, target, "Anna", &from).plain();
            assert!(text.len() <= target + 200, "{} > {target}", text.len());
            assert!(text.len() + 400 >= target, "{} << {target}", text.len());
        }
    }

    #[test]
    fn spam_links_to_ip_hosts() {
        let mut rng = Rng::new(6);
        let html = Letter::spam(&mut rng, 1_500).html(true);
        assert!(html.contains("<a href=\"http://"));
        let url = ip_url(&mut rng);
        let host = url.trim_start_matches("http://").split('/').next().unwrap();
        assert!(host.parse::<std::net::Ipv4Addr>().is_ok(), "{host}");
    }

    #[test]
    fn wrap_keeps_lines_short() {
        let text = "word ".repeat(100);
        assert!(wrap(&text, 72).lines().all(|l| l.len() <= 72));
    }
}
