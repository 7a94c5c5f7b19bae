//! `notify.toml`: who is told of each verdict (`admin`, `sender`, `recipients`) and the
//! admin of each recipient domain; planning turns a notice into one delivery per
//! address, and refuses the sender of spam and senders that look null or forged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::NotifyError;
use super::job::{Delivery, Kind, Notice};

/// The policy used when `notify.toml` does not exist: the shipped example.
pub const DEFAULT_POLICY: &str = include_str!("../../notify/notify.toml.example");

/// Local parts of addresses that belong to programs, not people: telling them only
/// feeds loops or lands in nobody's mailbox.
const AUTOMATIC_LOCAL_PARTS: [&str; 6] = [
    "mailer-daemon",
    "postmaster",
    "noreply",
    "no-reply",
    "donotreply",
    "nobody",
];

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PolicyFile {
    virus: Vec<Kind>,
    ext: Vec<Kind>,
    spam: Vec<Kind>,
    error: Vec<Kind>,
    admins: BTreeMap<String, String>,
}

/// A loaded `notify.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The file it came from; `None` for the built-in default.
    pub path: Option<PathBuf>,
    file: PolicyFile,
}

/// What planning decided for one notice.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub deliveries: Vec<Delivery>,
    /// Who was not told and why, for the log.
    pub skipped: Vec<String>,
}

impl Policy {
    /// Loads `path`, or the built-in default when it does not exist. Returns the
    /// warnings to log (settings that are accepted but not obeyed).
    pub fn load(path: &Path) -> Result<(Policy, Vec<String>), NotifyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Policy::parse(Some(path), &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Policy::parse(None, DEFAULT_POLICY)
            }
            Err(e) => Err(NotifyError::io(path, e)),
        }
    }

    pub fn parse(path: Option<&Path>, text: &str) -> Result<(Policy, Vec<String>), NotifyError> {
        let shown = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("notify.toml (built in)"));
        let file: PolicyFile = toml::from_str(text).map_err(|e| NotifyError::Invalid {
            line: e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0),
            path: shown.clone(),
            message: e.message().to_string(),
        })?;
        for (domain, admin) in &file.admins {
            let valid_domain = domain == "*"
                || (!domain.is_empty()
                    && domain
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
            let message = if !valid_domain {
                format!("admins: {domain:?} is not a domain name (or \"*\")")
            } else if admin.parse::<lettre::Address>().is_err() {
                format!("admins.{domain}: {admin:?} is not a mail address")
            } else {
                continue;
            };
            return Err(NotifyError::Invalid {
                line: line_of(text, domain),
                path: shown,
                message,
            });
        }
        let mut warnings = Vec::new();
        if file.spam.contains(&Kind::Sender) {
            warnings.push(format!(
                "{}: spam lists \"sender\", which is ignored: the sender of spam is never told (backscatter)",
                shown.display()
            ));
        }
        Ok((
            Policy {
                path: path.map(Path::to_path_buf),
                file,
            },
            warnings,
        ))
    }

    /// Whether addressees of `kind` are told of `verdict` (never the sender of spam).
    pub fn tells(&self, verdict: &str, kind: Kind) -> bool {
        !(verdict == "spam" && kind == Kind::Sender) && self.kinds(verdict).contains(&kind)
    }

    /// Who is told of `verdict`. Unscannable messages follow the `error` list.
    fn kinds(&self, verdict: &str) -> &[Kind] {
        match verdict {
            "virus" => &self.file.virus,
            "ext" => &self.file.ext,
            "spam" => &self.file.spam,
            _ => &self.file.error,
        }
    }

    /// The admin of `domain`: its own entry, else its nearest parent domain's, else
    /// `"*"`, else `postmaster@<domain>` (every mail domain must have one).
    pub fn admin_of(&self, domain: &str) -> String {
        let domain = domain.to_ascii_lowercase();
        let mut candidate = domain.as_str();
        loop {
            if let Some(admin) = self.file.admins.get(candidate) {
                return admin.clone();
            }
            match candidate.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => candidate = parent,
                _ => break,
            }
        }
        self.file
            .admins
            .get("*")
            .cloned()
            .unwrap_or_else(|| format!("postmaster@{domain}"))
    }

    /// One delivery per address to tell of `notice`, all due at `now`.
    pub fn plan(&self, notice: &Notice, now: f64) -> Plan {
        let mut wanted: BTreeSet<(Kind, String)> = BTreeSet::new();
        let mut skipped = Vec::new();
        for &kind in self.kinds(&notice.verdict) {
            match kind {
                Kind::Admin if notice.recipients.is_empty() => {
                    // A control file that did not parse names no recipient: the
                    // catch-all admin is still told.
                    match self.file.admins.get("*") {
                        Some(admin) => {
                            wanted.insert((kind, admin.clone()));
                        }
                        None => skipped
                            .push("admin not told (no recipient known and no \"*\" admin)".into()),
                    }
                }
                Kind::Admin => {
                    for recipient in &notice.recipients {
                        match domain_of(recipient) {
                            Some(domain) => {
                                wanted.insert((kind, self.admin_of(domain)));
                            }
                            None => {
                                skipped.push(format!("admin of {recipient} not told (no domain)"))
                            }
                        }
                    }
                }
                Kind::Sender => match sender_not_told(notice) {
                    Some(why) => skipped.push(format!("sender not told ({why})")),
                    None => {
                        wanted.insert((kind, notice.sender.clone()));
                    }
                },
                Kind::Recipients => {
                    for recipient in &notice.recipients {
                        wanted.insert((kind, recipient.clone()));
                    }
                }
            }
        }
        let deliveries = wanted
            .into_iter()
            .map(|(kind, to)| Delivery {
                kind,
                to,
                attempts: 0,
                next_attempt: now,
                last_error: String::new(),
            })
            .collect();
        Plan {
            deliveries,
            skipped,
        }
    }
}

/// Why the sender of `notice` must not be told, if so:
/// - the verdict is spam (telling the sender of spam is backscatter: the sender
///   address of spam is someone else's);
/// - the null sender `<>` (bounces and other delivery reports), or an address with no
///   domain;
/// - an address that belongs to a program (`MAILER-DAEMON`, `postmaster`, `noreply`,
///   `no-reply`, `donotreply`, `nobody`);
/// - a message that says it is automatic (`Auto-Submitted` other than `no`,
///   `Precedence: bulk|junk|list`, or a `List-Id`), per RFC 3834;
/// - an envelope sender whose domain is neither the `From:` header's domain nor a
///   parent or subdomain of it: the usual mark of a forged sender.
pub fn sender_not_told(notice: &Notice) -> Option<&'static str> {
    if notice.verdict == "spam" {
        return Some("spam: never the sender");
    }
    if notice.sender.is_empty() {
        return Some("null sender");
    }
    let Some((local, domain)) = notice.sender.rsplit_once('@') else {
        return Some("sender has no domain");
    };
    if domain.is_empty() {
        return Some("sender has no domain");
    }
    if AUTOMATIC_LOCAL_PARTS
        .iter()
        .any(|auto| local.eq_ignore_ascii_case(auto))
    {
        return Some("automatic sender address");
    }
    let auto_submitted = notice.auto_submitted.trim();
    if !auto_submitted.is_empty() && !auto_submitted.eq_ignore_ascii_case("no") {
        return Some("auto-submitted message");
    }
    let precedence = notice.precedence.trim().to_ascii_lowercase();
    if ["bulk", "junk", "list"].contains(&precedence.as_str()) || !notice.list_id.is_empty() {
        return Some("list or bulk mail");
    }
    if let Some(from_domain) = domain_of(&notice.from_header)
        && !related_domains(domain, from_domain)
    {
        return Some("envelope sender domain differs from the From: header, likely forged");
    }
    None
}

fn domain_of(address: &str) -> Option<&str> {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain.trim_end_matches('>'))
        .filter(|domain| !domain.is_empty())
}

/// Equal, or one a subdomain of the other (`bounce.example.com` and `example.com`).
fn related_domains(a: &str, b: &str) -> bool {
    let a = a.to_ascii_lowercase();
    let b = b.to_ascii_lowercase();
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

/// The line of `text` where `key` is set, for error messages.
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            line.starts_with(&format!("\"{key}\"")) || line.starts_with(&format!("{key} "))
        })
        .map(|index| index + 1)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(verdict: &str, sender: &str, from: &str) -> Notice {
        Notice {
            id: "6ALNNrgA000001".into(),
            verdict: verdict.into(),
            rule: "Eicar-Test-Signature".into(),
            location: "part 2 (eicar.com)".into(),
            reason: "found".into(),
            score: None,
            queue: verdict.into(),
            sender: sender.into(),
            recipients: vec![
                "a@dest.test".into(),
                "b@sub.dest.test".into(),
                "c@else.test".into(),
            ],
            from_header: from.into(),
            subject: "hello".into(),
            auto_submitted: String::new(),
            precedence: String::new(),
            list_id: String::new(),
            judged: 0.0,
        }
    }

    const ALL: &str = "virus = [\"admin\", \"sender\", \"recipients\"]\n\
        ext = [\"sender\"]\n\
        spam = [\"admin\", \"sender\", \"recipients\"]\n\
        error = [\"admin\"]\n\
        [admins]\n\"dest.test\" = \"hostmaster@dest.test\"\n";

    fn addresses(plan: &Plan) -> Vec<(Kind, &str)> {
        plan.deliveries
            .iter()
            .map(|d| (d.kind, d.to.as_str()))
            .collect()
    }

    #[test]
    fn the_shipped_example_is_the_default_and_parses() {
        let (policy, warnings) = Policy::parse(None, DEFAULT_POLICY).unwrap();
        assert!(warnings.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let (missing, _) = Policy::load(&dir.path().join("notify.toml")).unwrap();
        assert_eq!(missing, policy);
        assert!(!policy.kinds("spam").contains(&Kind::Sender));
    }

    #[test]
    fn each_kind_gets_its_addresses_and_admins_come_from_the_table() {
        let (policy, _) = Policy::parse(None, ALL).unwrap();
        let plan = policy.plan(&notice("virus", "s@client.test", "s@client.test"), 5.0);
        assert_eq!(
            addresses(&plan),
            [
                (Kind::Admin, "hostmaster@dest.test"),
                (Kind::Admin, "postmaster@else.test"),
                (Kind::Sender, "s@client.test"),
                (Kind::Recipients, "a@dest.test"),
                (Kind::Recipients, "b@sub.dest.test"),
                (Kind::Recipients, "c@else.test"),
            ],
            "sub.dest.test uses its parent's admin, and each admin is told once"
        );
        assert!(plan.deliveries.iter().all(|d| d.next_attempt == 5.0));
        let plan = policy.plan(&notice("unscannable", "s@client.test", ""), 0.0);
        assert_eq!(
            plan.deliveries.len(),
            2,
            "unscannable follows the error list"
        );
        let mut unknown = notice("error", "", "");
        unknown.recipients.clear();
        assert!(policy.plan(&unknown, 0.0).deliveries.is_empty());
        let (catch_all, _) = Policy::parse(
            None,
            "error = [\"admin\"]\n[admins]\n\"*\" = \"pm@relay.test\"\n",
        )
        .unwrap();
        let plan = catch_all.plan(&unknown, 0.0);
        assert_eq!(
            addresses(&plan),
            [(Kind::Admin, "pm@relay.test")],
            "the catch-all admin hears of a broken entry"
        );
    }

    #[test]
    fn the_sender_of_spam_is_never_told_whatever_the_file_says() {
        let (policy, warnings) = Policy::parse(None, ALL).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let plan = policy.plan(&notice("spam", "s@client.test", "s@client.test"), 0.0);
        assert!(plan.deliveries.iter().all(|d| d.kind != Kind::Sender));
        assert!(
            plan.skipped.iter().any(|s| s.contains("spam")),
            "{:?}",
            plan.skipped
        );
    }

    #[test]
    fn null_automatic_and_forged_senders_are_not_told() {
        let told = |n: &Notice| sender_not_told(n).is_none();
        assert!(told(&notice("ext", "s@client.test", "s@client.test")));
        assert!(told(&notice(
            "ext",
            "bounce@mail.client.test",
            "s@client.test"
        )));
        assert!(told(&notice("ext", "s@client.test", "")));
        assert!(!told(&notice("ext", "", "s@client.test")));
        assert!(!told(&notice("ext", "MAILER-DAEMON@client.test", "")));
        assert!(!told(&notice("ext", "postmaster@client.test", "")));
        assert!(!told(&notice("ext", "s@client.test", "ceo@bank.test")));
        let mut auto = notice("ext", "s@client.test", "s@client.test");
        auto.auto_submitted = "auto-replied".into();
        assert!(!told(&auto));
        auto.auto_submitted = "no".into();
        assert!(told(&auto));
        auto.precedence = "Bulk".into();
        assert!(!told(&auto));
        let (policy, _) = Policy::parse(None, ALL).unwrap();
        let plan = policy.plan(&notice("ext", "", "x@y.test"), 0.0);
        assert!(plan.deliveries.is_empty());
        assert_eq!(plan.skipped, ["sender not told (null sender)"]);
    }

    #[test]
    fn bad_files_name_the_line() {
        let err = Policy::parse(
            Some(Path::new("n.toml")),
            "virus = [\"admin\"]\nspam = [\"boss\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("n.toml:2:"), "{err}");
        let err = Policy::parse(
            Some(Path::new("n.toml")),
            "[admins]\n\"dest.test\" = \"nobody\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("n.toml:2:") && err.contains("dest.test"),
            "{err}"
        );
    }
}
