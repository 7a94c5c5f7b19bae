//! Exceptions (`vdl/exceptions.vdl`): lines that pardon a finding, so a match that
//! would quarantine a message is counted as `vir-ex`, `ext-ex` or `spam-ex` and the
//! message is delivered. Each line names the kind of finding and conditions that
//! must all hold:
//!
//! ```text
//! except <virus|ext|spam|any> <condition> [<condition> ...]
//!   rule <glob>        the signature, extension (`ext:exe`) or spam rule name
//!   sender <glob>      the envelope sender (`<>` is the null sender)
//!   recipient <glob>   every envelope recipient
//!   domain <domain>    the sender's domain, or every recipient's domain;
//!                      subdomains included
//!   file <glob>        the attachment or archive member name
//! ```
//!
//! Globs use `*` (any run, `/` included) and `?` (one character); all matching
//! ignores ASCII case. A recipient condition holds only when *every* recipient
//! matches, so allowing one recipient cannot let a virus reach the others; the
//! same holds for `domain` when it is met through the recipients. A `sender` or
//! `domain` condition met by the sender trusts an address anyone can forge: prefer
//! recipient conditions. `any` covers virus, ext and spam findings; an
//! `unscannable` or `error` verdict is never pardoned. The first matching line
//! wins, and its text is what the log and result file show.

use std::path::{Path, PathBuf};

use crate::rules::LoadProblem;
use crate::scan::VerdictKind;

/// The exceptions file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ExceptionError {
    #[error("cannot read exceptions {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One finding that could be pardoned.
#[derive(Debug, Clone, Copy)]
pub struct Finding<'a> {
    pub kind: VerdictKind,
    /// Signature, `ext:<extension>` or spam rule name.
    pub rule: &'a str,
    /// The attachment or archive member the finding is about, if any.
    pub file_name: Option<&'a str>,
}

/// The SMTP envelope of the message.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// As on the qf `S` line: `<a@b.example>`, or `<>` for the null sender.
    pub sender: &'a str,
    pub recipients: &'a [String],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Virus,
    Ext,
    Spam,
    Any,
}

impl Kind {
    fn covers(self, kind: VerdictKind) -> bool {
        match self {
            Kind::Virus => kind == VerdictKind::Virus,
            Kind::Ext => kind == VerdictKind::Ext,
            Kind::Spam => kind == VerdictKind::Spam,
            Kind::Any => matches!(
                kind,
                VerdictKind::Virus | VerdictKind::Ext | VerdictKind::Spam
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Rule(String),
    Sender(String),
    Recipient(String),
    Domain(String),
    File(String),
}

#[derive(Debug, Clone)]
struct Exception {
    kind: Kind,
    conditions: Vec<Condition>,
    /// The line as written, trimmed.
    text: String,
}

/// Loaded exceptions; immutable and shared by every scan.
#[derive(Debug, Clone, Default)]
pub struct Exceptions {
    exceptions: Vec<Exception>,
}

impl Exceptions {
    /// No exceptions: nothing is pardoned.
    pub fn empty() -> Exceptions {
        Exceptions::default()
    }

    /// Reads an exceptions file; lines that cannot be used are returned as problems
    /// and skipped.
    ///
    /// # Errors
    ///
    /// The file cannot be read.
    pub fn load(path: &Path) -> Result<(Exceptions, Vec<LoadProblem>), ExceptionError> {
        let content = std::fs::read(path).map_err(|source| ExceptionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Exceptions::parse(path, &String::from_utf8_lossy(&content)))
    }

    /// Parses exception lines as if read from `file`.
    pub fn parse(file: &Path, text: &str) -> (Exceptions, Vec<LoadProblem>) {
        let mut exceptions = Vec::new();
        let mut problems = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let content = line.split('#').next().unwrap_or_default().trim();
            if content.is_empty() {
                continue;
            }
            match parse_line(content) {
                Ok(exception) => exceptions.push(exception),
                Err(message) => problems.push(LoadProblem {
                    file: file.to_path_buf(),
                    line: index + 1,
                    message: format!("{message}; line skipped"),
                }),
            }
        }
        (Exceptions { exceptions }, problems)
    }

    pub fn len(&self) -> usize {
        self.exceptions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exceptions.is_empty()
    }

    /// The first exception that pardons `finding` for a message with `envelope`, as
    /// written in the file.
    pub fn pardon(&self, finding: &Finding<'_>, envelope: &Envelope<'_>) -> Option<String> {
        self.exceptions
            .iter()
            .find(|exception| {
                exception.kind.covers(finding.kind)
                    && exception
                        .conditions
                        .iter()
                        .all(|condition| holds(condition, finding, envelope))
            })
            .map(|exception| exception.text.clone())
    }
}

fn parse_line(line: &str) -> Result<Exception, String> {
    let mut words = line.split_whitespace();
    if words.next() != Some("except") {
        return Err("an exception starts with 'except'".to_string());
    }
    let kind = match words.next() {
        Some("virus") => Kind::Virus,
        Some("ext") => Kind::Ext,
        Some("spam") => Kind::Spam,
        Some("any") => Kind::Any,
        Some(other) => {
            return Err(format!(
                "unknown finding kind '{other}' (virus, ext, spam, any)"
            ));
        }
        None => return Err("missing finding kind after 'except'".to_string()),
    };
    let mut conditions = Vec::new();
    while let Some(keyword) = words.next() {
        let value = words
            .next()
            .ok_or_else(|| format!("missing value after '{keyword}'"))?
            .to_ascii_lowercase();
        let address = |value: &str| {
            if value == "<>" {
                value.to_string()
            } else {
                value
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            }
        };
        let condition = match keyword {
            "rule" => Condition::Rule(value),
            "sender" => Condition::Sender(address(&value)),
            "recipient" => {
                if value == "<>" {
                    return Err("a recipient is never the null address '<>'".to_string());
                }
                Condition::Recipient(address(&value))
            }
            "domain" => {
                let domain = value.trim_matches('.').to_string();
                let valid = !domain.is_empty()
                    && domain
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
                if !valid {
                    return Err(format!("invalid domain '{value}'"));
                }
                Condition::Domain(domain)
            }
            "file" => Condition::File(value),
            other => {
                return Err(format!(
                    "unknown condition '{other}' (rule, sender, recipient, domain, file)"
                ));
            }
        };
        conditions.push(condition);
    }
    if conditions.is_empty() {
        return Err(
            "an exception needs at least one condition (it would pardon every finding)".to_string(),
        );
    }
    Ok(Exception {
        kind,
        conditions,
        text: line.split_whitespace().collect::<Vec<_>>().join(" "),
    })
}

/// An address without angle brackets or surrounding blanks, lower case; the null
/// sender is the empty string.
fn bare_address(address: &str) -> String {
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_ascii_lowercase()
}

fn domain_of(address: &str) -> Option<&str> {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain.trim_end_matches('.'))
}

fn in_domain(address: &str, domain: &str) -> bool {
    domain_of(address).is_some_and(|own| {
        own == domain
            || own
                .strip_suffix(domain)
                .is_some_and(|prefix| prefix.ends_with('.'))
    })
}

fn holds(condition: &Condition, finding: &Finding<'_>, envelope: &Envelope<'_>) -> bool {
    let sender = bare_address(envelope.sender);
    let recipients: Vec<String> = envelope
        .recipients
        .iter()
        .map(|r| bare_address(r))
        .collect();
    let every_recipient =
        |test: &dyn Fn(&str) -> bool| !recipients.is_empty() && recipients.iter().all(|r| test(r));
    match condition {
        Condition::Rule(glob) => glob_matches(glob, &finding.rule.to_ascii_lowercase()),
        Condition::Sender(glob) if glob == "<>" => sender.is_empty(),
        Condition::Sender(glob) => glob_matches(glob, &sender),
        Condition::Recipient(glob) => every_recipient(&|r| glob_matches(glob, r)),
        Condition::Domain(domain) => {
            in_domain(&sender, domain) || every_recipient(&|r| in_domain(r, domain))
        }
        Condition::File(glob) => finding
            .file_name
            .is_some_and(|name| glob_matches(glob, &name.to_ascii_lowercase())),
    }
}

/// `*` matches any run of characters, `?` exactly one; both sides lower case.
fn glob_matches(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point for the last `*`.
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && glob[g] == '*' {
            star = Some((g, t));
            g += 1;
        } else if g < glob.len() && (glob[g] == '?' || glob[g] == text[t]) {
            g += 1;
            t += 1;
        } else if let Some((star_g, star_t)) = star {
            g = star_g + 1;
            t = star_t + 1;
            star = Some((star_g, star_t + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn exceptions(text: &str) -> Exceptions {
        let (exceptions, problems) = Exceptions::parse(Path::new("exceptions.vdl"), text);
        assert!(problems.is_empty(), "{problems:?}");
        exceptions
    }

    fn virus(rule: &str) -> Finding<'_> {
        Finding {
            kind: VerdictKind::Virus,
            rule,
            file_name: None,
        }
    }

    fn envelope<'a>(sender: &'a str, recipients: &'a [String]) -> Envelope<'a> {
        Envelope { sender, recipients }
    }

    #[test]
    fn globs() {
        assert!(glob_matches("eicar-*", "eicar-test-signature"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "ac"));
        assert!(glob_matches("*.exe", "dir/setup.exe"));
        assert!(glob_matches("*a*b*", "xxaybzb"));
        assert!(!glob_matches("*.exe", "setup.exe.txt"));
        // Found by `glob_star_matches_everything`: a `*` in the text is a literal.
        assert!(glob_matches("*", "* "));
        assert!(!glob_matches("a*", "b*"));
    }

    #[test]
    fn conditions_and_together_and_the_line_is_returned() {
        let list = exceptions(
            "# test files for the postmaster\n\
             except   virus rule Eicar-*   recipient postmaster@example.org  # trailing note\n",
        );
        let postmaster = ["<postmaster@example.org>".to_string()];
        let other = ["<user@example.org>".to_string()];
        assert_eq!(
            list.pardon(
                &virus("Eicar-Test-Signature"),
                &envelope("<a@b.example>", &postmaster)
            )
            .as_deref(),
            Some("except virus rule Eicar-* recipient postmaster@example.org")
        );
        assert_eq!(
            list.pardon(
                &virus("Eicar-Test-Signature"),
                &envelope("<a@b.example>", &other)
            ),
            None
        );
        assert_eq!(
            list.pardon(
                &virus("Win.Trojan.X"),
                &envelope("<a@b.example>", &postmaster)
            ),
            None
        );
    }

    #[test]
    fn kinds_select_findings() {
        let list = exceptions("except any rule X\nexcept spam rule Y\n");
        let find = |kind, rule| Finding {
            kind,
            rule,
            file_name: None,
        };
        let recipients = ["<r@example.org>".to_string()];
        let env = envelope("<>", &recipients);
        assert!(list.pardon(&find(VerdictKind::Ext, "X"), &env).is_some());
        assert!(list.pardon(&find(VerdictKind::Spam, "Y"), &env).is_some());
        assert!(list.pardon(&find(VerdictKind::Virus, "Y"), &env).is_none());
        assert!(list.pardon(&find(VerdictKind::Error, "X"), &env).is_none());
        assert!(
            list.pardon(&find(VerdictKind::Unscannable, "X"), &env)
                .is_none()
        );
    }

    #[test]
    fn null_sender_and_domains() {
        let list = exceptions("except spam sender <>\nexcept ext domain example.org\n");
        let recipients = ["<r@elsewhere.example>".to_string()];
        let spam = Finding {
            kind: VerdictKind::Spam,
            rule: "R",
            file_name: None,
        };
        assert!(list.pardon(&spam, &envelope("<>", &recipients)).is_some());
        assert!(
            list.pardon(&spam, &envelope("<a@b.example>", &recipients))
                .is_none()
        );
        let ext = Finding {
            kind: VerdictKind::Ext,
            rule: "ext:exe",
            file_name: Some("a.exe"),
        };
        assert!(
            list.pardon(&ext, &envelope("<x@mail.Example.ORG>", &recipients))
                .is_some()
        );
        assert!(
            list.pardon(&ext, &envelope("<x@evil-example.org>", &recipients))
                .is_none()
        );
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        let (list, problems) = Exceptions::parse(
            Path::new("exceptions.vdl"),
            "except virus\nexcept worm rule X\nallow virus rule X\nexcept virus rule\n\
             except virus colour red\nexcept virus domain bad@domain\nexcept virus recipient <>\n\
             except virus rule OK\n",
        );
        assert_eq!(list.len(), 1);
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5, 6, 7]);
        assert!(problems[0].message.contains("at least one condition"));
    }

    #[test]
    fn exceptions_are_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Exceptions>();
    }

    #[test]
    fn load_reads_a_file_and_reports_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exceptions.vdl");
        std::fs::write(&path, "except virus rule A\n").unwrap();
        let (list, problems) = Exceptions::load(&path).unwrap();
        assert_eq!((list.len(), problems.len()), (1, 0));
        assert!(Exceptions::load(&dir.path().join("missing.vdl")).is_err());
        assert!(Exceptions::empty().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_lines_never_panic(text in "[ -~\\n]{0,200}", rule in "[ -~]{0,20}", sender in "[ -~]{0,20}") {
            let (list, _) = Exceptions::parse(Path::new("x"), &text);
            let recipients = [sender.clone()];
            let finding = Finding { kind: VerdictKind::Virus, rule: &rule, file_name: Some(&rule) };
            let _ = list.pardon(&finding, &Envelope { sender: &sender, recipients: &recipients });
        }

        #[test]
        fn glob_star_matches_everything(text in "[ -~]{0,30}") {
            prop_assert!(glob_matches("*", &text));
            prop_assert!(glob_matches(&text.replace(['*', '?'], ""), &text.replace(['*', '?'], "")));
        }
    }
}
