//! The outcome of scanning one message: what was found, where, and why, the
//! result queue it sends the message to, and the text of its result file.

use serde::Serialize;

/// What a scan concluded about a message, worst finding first in the
/// severity order of [`VerdictKind::severity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    /// Nothing found: the message is delivered.
    Clean,
    /// A virus signature matched a decoded part or the raw message.
    Virus,
    /// An attachment name ends in a blocked extension.
    Ext,
    /// The spam rules scored the message over the threshold.
    Spam,
    /// A scan limit (depth, parts, bytes) stopped the scan before the end, so
    /// part of the message was never looked at.
    Unscannable,
    /// SIE itself failed (unreadable entry, broken rule set, ...).
    Error,
}

impl VerdictKind {
    /// The word used in logs, result files and `msgscan --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Clean => "clean",
            VerdictKind::Virus => "virus",
            VerdictKind::Ext => "ext",
            VerdictKind::Spam => "spam",
            VerdictKind::Unscannable => "unscannable",
            VerdictKind::Error => "error",
        }
    }

    /// The queue directory a message with this verdict moves to.
    ///
    /// Unscannable messages share the `error` queue: an admin has to look at
    /// them either way, and the result file says which limit was hit.
    pub fn queue(self) -> &'static str {
        match self {
            VerdictKind::Clean => "out",
            VerdictKind::Virus => "virus",
            VerdictKind::Ext => "ext",
            VerdictKind::Spam => "spam",
            VerdictKind::Unscannable | VerdictKind::Error => "error",
        }
    }

    /// Rank used to keep the worst of several findings.
    ///
    /// The spec fixes virus > ext > spam > clean. Unscannable and error sit
    /// below the two definite findings (a virus found before a limit was hit
    /// is still a virus, and its queue is the right quarantine) but above
    /// spam and clean: a message we could not read to the end must not be
    /// delivered as if it had been checked.
    fn severity(self) -> u8 {
        match self {
            VerdictKind::Clean => 0,
            VerdictKind::Spam => 1,
            VerdictKind::Unscannable | VerdictKind::Error => 2,
            VerdictKind::Ext => 3,
            VerdictKind::Virus => 4,
        }
    }
}

/// A finding an exception pardoned: it did not decide the verdict, but it is counted
/// (`vir-ex`, `ext-ex`, `spam-ex`) and written down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pardon {
    #[serde(rename = "verdict")]
    pub kind: VerdictKind,
    pub name: String,
    #[serde(rename = "where")]
    pub location: String,
    /// The exception line that pardoned it, as written.
    pub exception: String,
}

/// One verdict with its evidence, as written to the result file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    #[serde(rename = "verdict")]
    pub kind: VerdictKind,
    /// Signature, rule or limit name (`Eicar-Test-Signature`, `ext:exe`,
    /// `max_depth`); empty when clean.
    pub name: String,
    /// Where in the message: `part 2 (invoice.pdf.exe)`,
    /// `part 1 > eicar.com (uuencoded)`, `raw message`; empty when clean.
    #[serde(rename = "where")]
    pub location: String,
    /// One sentence saying why, for the admin reading the result file.
    #[serde(rename = "why")]
    pub reason: String,
    /// The spam score, when the spam rules ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Findings that exceptions pardoned, in the order found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pardoned: Vec<Pardon>,
}

impl Verdict {
    pub fn new(
        kind: VerdictKind,
        name: impl Into<String>,
        location: impl Into<String>,
        reason: impl Into<String>,
    ) -> Verdict {
        Verdict {
            kind,
            name: name.into(),
            location: location.into(),
            reason: reason.into(),
            score: None,
            pardoned: Vec::new(),
        }
    }

    pub fn clean() -> Verdict {
        Verdict::new(
            VerdictKind::Clean,
            "",
            "",
            "no virus, blocked attachment or limit was found",
        )
    }

    /// Keeps the more severe of two verdicts; on a tie the one found first
    /// (`self`) stays, so the result file names the first match. Pardons of both
    /// are kept.
    pub fn worse(mut self, mut other: Verdict) -> Verdict {
        if other.kind.severity() > self.kind.severity() {
            self.pardoned.append(&mut other.pardoned);
            other.pardoned = self.pardoned;
            other
        } else {
            self.pardoned.append(&mut other.pardoned);
            self
        }
    }

    /// The kind a clean message's pardons are counted under in the `Stats:` line
    /// (`vir-ex` before `ext-ex` before `spam-ex`), if it had any.
    pub fn pardoned_kind(&self) -> Option<VerdictKind> {
        [VerdictKind::Virus, VerdictKind::Ext, VerdictKind::Spam]
            .into_iter()
            .find(|kind| self.pardoned.iter().any(|p| p.kind == *kind))
    }

    /// The result file for message `id`: one `key: value` line each.
    ///
    /// Values come from attacker-controlled names (RFC 2047 lets a file name
    /// carry a newline), so control characters are escaped: a name can never
    /// add a line such as `verdict: clean`. Empty values are written as `-`.
    pub fn result_text(&self, id: &str) -> String {
        let mut text = String::new();
        for (key, value) in [
            ("id", id),
            ("verdict", self.kind.as_str()),
            ("name", &self.name),
            ("where", &self.location),
            ("why", &self.reason),
        ] {
            text.push_str(key);
            text.push_str(": ");
            push_single_line(&mut text, value);
            text.push('\n');
        }
        if let Some(score) = self.score {
            text.push_str(&format!("score: {score:.1}\n"));
        }
        for pardon in &self.pardoned {
            text.push_str("pardoned: ");
            let line = format!(
                "{} {} at {} by \"{}\"",
                pardon.kind.as_str(),
                pardon.name,
                pardon.location,
                pardon.exception
            );
            push_single_line(&mut text, &line);
            text.push('\n');
        }
        text
    }
}

/// A message starts clean until a finding says otherwise.
impl Default for Verdict {
    fn default() -> Verdict {
        Verdict::clean()
    }
}

fn push_single_line(text: &mut String, value: &str) {
    if value.is_empty() {
        text.push('-');
        return;
    }
    for c in value.chars() {
        if c.is_control() {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(kind: VerdictKind, name: &str) -> Verdict {
        Verdict::new(kind, name, "part 1", "test finding")
    }

    #[test]
    fn queue_names_follow_the_spool_tree() {
        assert_eq!(VerdictKind::Clean.queue(), "out");
        assert_eq!(VerdictKind::Virus.queue(), "virus");
        assert_eq!(VerdictKind::Ext.queue(), "ext");
        assert_eq!(VerdictKind::Spam.queue(), "spam");
        assert_eq!(VerdictKind::Unscannable.queue(), "error");
        assert_eq!(VerdictKind::Error.queue(), "error");
        assert_eq!(VerdictKind::Unscannable.as_str(), "unscannable");
    }

    #[test]
    fn worse_follows_virus_ext_spam_clean() {
        let clean = Verdict::clean();
        let spam = found(VerdictKind::Spam, "SPAM_RULE");
        let ext = found(VerdictKind::Ext, "ext:exe");
        let virus = found(VerdictKind::Virus, "Eicar-Test-Signature");
        assert_eq!(clean.clone().worse(spam.clone()), spam);
        assert_eq!(spam.clone().worse(ext.clone()), ext);
        assert_eq!(ext.clone().worse(virus.clone()), virus);
        assert_eq!(virus.clone().worse(ext.clone()), virus);
        assert_eq!(ext.clone().worse(clean.clone()), ext);
    }

    #[test]
    fn limits_rank_below_definite_findings_above_spam() {
        let limit = found(VerdictKind::Unscannable, "max_depth");
        let ext = found(VerdictKind::Ext, "ext:exe");
        let spam = found(VerdictKind::Spam, "SPAM_RULE");
        assert_eq!(limit.clone().worse(ext.clone()), ext);
        assert_eq!(spam.worse(limit.clone()), limit);
    }

    #[test]
    fn first_finding_wins_a_tie() {
        let first = found(VerdictKind::Ext, "ext:exe");
        let second = found(VerdictKind::Ext, "ext:scr");
        assert_eq!(first.clone().worse(second), first);
    }

    #[test]
    fn result_text_has_one_line_per_field() {
        let verdict = Verdict::new(
            VerdictKind::Virus,
            "Eicar-Test-Signature",
            "part 2 (eicar.com)",
            "part 2 (eicar.com) matches Eicar-Test-Signature",
        );
        assert_eq!(
            verdict.result_text("g4NEHl121396"),
            "id: g4NEHl121396\n\
             verdict: virus\n\
             name: Eicar-Test-Signature\n\
             where: part 2 (eicar.com)\n\
             why: part 2 (eicar.com) matches Eicar-Test-Signature\n"
        );
    }

    #[test]
    fn result_text_cannot_be_forged_by_a_file_name() {
        let verdict = Verdict::new(
            VerdictKind::Ext,
            "ext:exe",
            "part 2 (a\nverdict: clean\r.exe)",
            "blocked",
        );
        let text = verdict.result_text("id1");
        assert_eq!(text.lines().count(), 5);
        assert!(text.contains("where: part 2 (a\\nverdict: clean\\r.exe)\n"));
    }

    #[test]
    fn clean_result_text_marks_empty_fields() {
        let text = Verdict::clean().result_text("id1");
        assert!(text.contains("verdict: clean\nname: -\nwhere: -\n"));
    }

    #[test]
    fn serializes_with_the_msgscan_json_keys() {
        let verdict = found(VerdictKind::Ext, "ext:exe");
        let json = serde_json::to_string(&verdict).unwrap();
        assert_eq!(
            json,
            r#"{"verdict":"ext","name":"ext:exe","where":"part 1","why":"test finding"}"#
        );
    }
}
