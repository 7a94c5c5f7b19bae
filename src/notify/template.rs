//! Notification templates: `notify/<verdict>-<kind>.txt` and `notify/summary.txt`, each
//! header lines, a blank line, then the body, with `{placeholder}`s. Values put into
//! headers lose their control characters (CR/LF included), so a hostile subject or file
//! name cannot add a header.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::NotifyError;

/// The templates shipped in `notify/`, used when the directory lacks one.
const SHIPPED: [(&str, &str); 12] = [
    ("virus-admin", include_str!("../../notify/virus-admin.txt")),
    (
        "virus-sender",
        include_str!("../../notify/virus-sender.txt"),
    ),
    (
        "virus-recipients",
        include_str!("../../notify/virus-recipients.txt"),
    ),
    ("ext-admin", include_str!("../../notify/ext-admin.txt")),
    ("ext-sender", include_str!("../../notify/ext-sender.txt")),
    (
        "ext-recipients",
        include_str!("../../notify/ext-recipients.txt"),
    ),
    ("spam-admin", include_str!("../../notify/spam-admin.txt")),
    (
        "spam-recipients",
        include_str!("../../notify/spam-recipients.txt"),
    ),
    ("error-admin", include_str!("../../notify/error-admin.txt")),
    (
        "error-sender",
        include_str!("../../notify/error-sender.txt"),
    ),
    (
        "error-recipients",
        include_str!("../../notify/error-recipients.txt"),
    ),
    ("summary", include_str!("../../notify/summary.txt")),
];

/// Placeholders of the per-message templates.
pub const MESSAGE_PLACEHOLDERS: [&str; 16] = [
    "id",
    "verdict",
    "rule",
    "where",
    "reason",
    "file",
    "queue",
    "sender",
    "recipients",
    "to",
    "kind",
    "from",
    "subject",
    "date",
    "host",
    "score",
];

/// Placeholders of `summary.txt`.
pub const SUMMARY_PLACEHOLDERS: [&str; 6] = ["to", "count", "limit", "list", "date", "host"];

/// Headers SIE sets itself; a template that sets them is refused.
const RESERVED_HEADERS: [&str; 11] = [
    "from",
    "to",
    "cc",
    "bcc",
    "sender",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "return-path",
];

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{([a-z_]+)\}").expect("valid placeholder pattern"));

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// A rendered notification: headers (values free of control characters) and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Template {
    /// Loads template `name` from `dir`, or the shipped one when the file is missing.
    pub fn load(dir: &Path, name: &str, placeholders: &[&str]) -> Result<Template, NotifyError> {
        let path = dir.join(format!("{name}.txt"));
        let (text, shown) = match std::fs::read_to_string(&path) {
            Ok(text) => (text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let shipped = SHIPPED
                    .iter()
                    .find(|(shipped, _)| *shipped == name)
                    .map(|(_, text)| text.to_string())
                    .ok_or_else(|| NotifyError::io(&path, e))?;
                (shipped, PathBuf::from(format!("{name}.txt (built in)")))
            }
            Err(e) => return Err(NotifyError::io(&path, e)),
        };
        Template::parse(name, &shown, &text, placeholders)
    }

    /// Parses template text; errors name the file and line.
    pub fn parse(
        name: &str,
        path: &Path,
        text: &str,
        placeholders: &[&str],
    ) -> Result<Template, NotifyError> {
        let invalid = |line: usize, message: String| NotifyError::Invalid {
            path: path.to_path_buf(),
            line,
            message,
        };
        for (index, line) in text.lines().enumerate() {
            for found in PLACEHOLDER.captures_iter(line) {
                if !placeholders.contains(&&found[1]) {
                    return Err(invalid(
                        index + 1,
                        format!(
                            "unknown placeholder {{{}}} (known: {})",
                            &found[1],
                            placeholders.join(" ")
                        ),
                    ));
                }
            }
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut lines = text.lines().enumerate();
        for (index, line) in lines.by_ref() {
            if line.trim().is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                match headers.last_mut() {
                    Some((_, value)) => {
                        value.push(' ');
                        value.push_str(line.trim());
                        continue;
                    }
                    None => {
                        return Err(invalid(
                            index + 1,
                            "continuation line before any header".into(),
                        ));
                    }
                }
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(invalid(
                    index + 1,
                    "expected a header line \"Name: value\", then a blank line, then the body"
                        .into(),
                ));
            };
            let key = key.trim();
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(invalid(index + 1, format!("{key:?} is not a header name")));
            }
            if RESERVED_HEADERS.contains(&key.to_ascii_lowercase().as_str()) {
                return Err(invalid(
                    index + 1,
                    format!(
                        "{key}: is set by SIE (From: from init.notify.from, To: the addressee)"
                    ),
                ));
            }
            headers.push((key.to_string(), value.trim().to_string()));
        }
        if !headers
            .iter()
            .any(|(key, _)| key.eq_ignore_ascii_case("subject"))
        {
            return Err(invalid(1, "no Subject: header".into()));
        }
        let body: Vec<&str> = lines.map(|(_, line)| line).collect();
        let mut body = body.join("\n");
        body.push('\n');
        Ok(Template {
            name: name.to_string(),
            headers,
            body,
        })
    }

    /// Fills the placeholders; a placeholder without a value renders empty.
    pub fn render(&self, values: &BTreeMap<&str, String>) -> Rendered {
        let fill = |text: &str, clean: fn(&str) -> String| {
            PLACEHOLDER
                .replace_all(text, |found: &regex::Captures| {
                    values.get(&found[1]).map(|v| clean(v)).unwrap_or_default()
                })
                .into_owned()
        };
        Rendered {
            headers: self
                .headers
                .iter()
                .map(|(key, value)| (key.clone(), fill(value, header_safe)))
                .collect(),
            body: fill(&self.body, body_safe),
        }
    }
}

/// A value fit for a header: control characters (CR and LF included) become spaces,
/// so the value stays on its header's line.
pub fn header_safe(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// A value fit for the body: line breaks stay, CR and other control characters go.
fn body_safe(value: &str) -> String {
    value
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_template_parses_with_the_placeholders_of_its_kind() {
        for (name, text) in SHIPPED {
            let placeholders: &[&str] = if name == "summary" {
                &SUMMARY_PLACEHOLDERS
            } else {
                &MESSAGE_PLACEHOLDERS
            };
            Template::parse(name, Path::new(name), text, placeholders)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn placeholders_are_filled_and_headers_cannot_be_injected() {
        let text =
            "Subject: [SIE] {verdict} in {subject}\nX-SIE-Id: {id}\n\nFile: {file}\nRule: {rule}\n";
        let template =
            Template::parse("t", Path::new("t.txt"), text, &MESSAGE_PLACEHOLDERS).unwrap();
        let values = BTreeMap::from([
            ("verdict", "virus".to_string()),
            ("subject", "hi\r\nBcc: victim@else.test".to_string()),
            ("id", "6ALNNrgA000001".to_string()),
            ("file", "a\r\nb.exe".to_string()),
        ]);
        let rendered = template.render(&values);
        assert_eq!(
            rendered.headers,
            [
                (
                    "Subject".to_string(),
                    "[SIE] virus in hi  Bcc: victim@else.test".to_string()
                ),
                ("X-SIE-Id".to_string(), "6ALNNrgA000001".to_string()),
            ]
        );
        assert_eq!(rendered.body, "File: a\nb.exe\nRule: \n");
    }

    #[test]
    fn bad_templates_name_file_and_line() {
        let parse = |text: &str| {
            Template::parse("t", Path::new("t.txt"), text, &MESSAGE_PLACEHOLDERS)
                .unwrap_err()
                .to_string()
        };
        let err = parse("Subject: x\n\nHello {nmae}\n");
        assert!(
            err.starts_with("t.txt:3:") && err.contains("{nmae}"),
            "{err}"
        );
        let err = parse("Subject: x\nTo: a@b.test\n\nbody\n");
        assert!(err.starts_with("t.txt:2:") && err.contains("To:"), "{err}");
        let err = parse("X-A: 1\n\nbody\n");
        assert!(err.contains("Subject"), "{err}");
        let err = parse("Subject: x\nnot a header\n\nbody\n");
        assert!(err.starts_with("t.txt:2:"), "{err}");
    }

    #[test]
    fn a_missing_file_falls_back_to_the_shipped_template() {
        let dir = tempfile::tempdir().unwrap();
        let shipped = Template::load(dir.path(), "virus-admin", &MESSAGE_PLACEHOLDERS).unwrap();
        std::fs::write(
            dir.path().join("virus-admin.txt"),
            "Subject: local {id}\n\nmine\n",
        )
        .unwrap();
        let local = Template::load(dir.path(), "virus-admin", &MESSAGE_PLACEHOLDERS).unwrap();
        assert_ne!(shipped, local);
        assert_eq!(local.body, "mine\n");
        assert!(Template::load(dir.path(), "nosuch", &MESSAGE_PLACEHOLDERS).is_err());
    }
}
