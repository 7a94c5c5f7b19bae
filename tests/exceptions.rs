//! Exceptions pardon exactly what they name: each condition kind against findings
//! and envelopes that must and must not be pardoned.

use std::path::Path;

use sie::rules::exceptions::{Envelope, Exceptions, Finding};
use sie::scan::VerdictKind;

fn load(text: &str) -> Exceptions {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exceptions.vdl");
    std::fs::write(&path, text).unwrap();
    let (exceptions, problems) = Exceptions::load(&path).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    exceptions
}

fn finding<'a>(kind: VerdictKind, rule: &'a str, file_name: Option<&'a str>) -> Finding<'a> {
    Finding {
        kind,
        rule,
        file_name,
    }
}

fn recipients(list: &[&str]) -> Vec<String> {
    list.iter().map(|r| format!("<{r}>")).collect()
}

const EICAR: &str = "Eicar-Test-Signature";

#[test]
fn rule_exception_pardons_that_rule_only() {
    let list = load("except virus rule Eicar-*\n");
    let to = recipients(&["user@example.org"]);
    let envelope = Envelope {
        sender: "<a@example.com>",
        recipients: &to,
    };
    assert_eq!(
        list.pardon(&finding(VerdictKind::Virus, EICAR, None), &envelope)
            .as_deref(),
        Some("except virus rule Eicar-*")
    );
    assert!(
        list.pardon(
            &finding(VerdictKind::Virus, "Win.Trojan.Agent", None),
            &envelope
        )
        .is_none()
    );
    // The same name as another kind of finding is not pardoned by a virus line.
    assert!(
        list.pardon(
            &finding(VerdictKind::Spam, "Eicar-Test-Signature", None),
            &envelope
        )
        .is_none()
    );
}

#[test]
fn sender_exception_pardons_that_sender_only() {
    let list = load("except spam sender newsletter@example.com\nexcept spam sender <>\n");
    let to = recipients(&["user@example.org"]);
    let spam = finding(VerdictKind::Spam, "SUBJ_ALL_CAPS", None);
    let from = |sender| Envelope {
        sender,
        recipients: &to,
    };
    assert!(
        list.pardon(&spam, &from("<newsletter@example.com>"))
            .is_some()
    );
    assert!(
        list.pardon(&spam, &from("<NewsLetter@Example.COM>"))
            .is_some()
    );
    assert!(list.pardon(&spam, &from("<>")).is_some());
    assert!(list.pardon(&spam, &from("<other@example.com>")).is_none());
    assert!(
        list.pardon(&spam, &from("<newsletter@example.com.evil.example>"))
            .is_none()
    );
    assert!(
        list.pardon(
            &finding(VerdictKind::Virus, EICAR, None),
            &from("<newsletter@example.com>")
        )
        .is_none()
    );
}

#[test]
fn domain_covers_subdomains_but_not_lookalikes() {
    let list = load("except ext domain example.org\n");
    let exe = finding(VerdictKind::Ext, "ext:exe", Some("setup.exe"));
    let outside = recipients(&["someone@elsewhere.example"]);
    let from = |sender| Envelope {
        sender,
        recipients: &outside,
    };
    assert!(list.pardon(&exe, &from("<a@example.org>")).is_some());
    assert!(list.pardon(&exe, &from("<a@mail.example.org>")).is_some());
    assert!(
        list.pardon(&exe, &from("<a@deep.mail.EXAMPLE.org>"))
            .is_some()
    );
    assert!(list.pardon(&exe, &from("<a@evil-example.org>")).is_none());
    assert!(
        list.pardon(&exe, &from("<a@example.org.evil.example>"))
            .is_none()
    );
    assert!(list.pardon(&exe, &from("<a@notexample.org>")).is_none());
    // Through the recipients: every one of them must be in the domain.
    let inside = recipients(&["x@example.org", "y@sub.example.org"]);
    let mixed = recipients(&["x@example.org", "y@evil-example.org"]);
    let sender = "<stranger@elsewhere.example>";
    assert!(
        list.pardon(
            &exe,
            &Envelope {
                sender,
                recipients: &inside
            }
        )
        .is_some()
    );
    assert!(
        list.pardon(
            &exe,
            &Envelope {
                sender,
                recipients: &mixed
            }
        )
        .is_none()
    );
}

#[test]
fn file_glob_pardons_matching_names_only() {
    let list = load("except ext rule ext:exe file setup-*.exe\n");
    let to = recipients(&["release@example.org"]);
    let envelope = Envelope {
        sender: "<builds@example.com>",
        recipients: &to,
    };
    let named = |name| finding(VerdictKind::Ext, "ext:exe", Some(name));
    assert!(list.pardon(&named("setup-1.2.exe"), &envelope).is_some());
    assert!(list.pardon(&named("SETUP-X.EXE"), &envelope).is_some());
    assert!(list.pardon(&named("setup.exe"), &envelope).is_none());
    assert!(
        list.pardon(&named("setup-1.2.exe.zip"), &envelope)
            .is_none()
    );
    assert!(
        list.pardon(&finding(VerdictKind::Ext, "ext:exe", None), &envelope)
            .is_none()
    );
    // Both conditions must hold: the right file under another rule is not pardoned.
    assert!(
        list.pardon(
            &finding(VerdictKind::Ext, "ext:scr", Some("setup-1.exe")),
            &envelope
        )
        .is_none()
    );
}

#[test]
fn recipient_exception_needs_every_recipient() {
    let list = load("except virus rule Eicar-* recipient postmaster@example.org\n");
    let eicar = finding(VerdictKind::Virus, EICAR, None);
    let sender = "<tester@example.com>";
    let only = recipients(&["postmaster@example.org"]);
    let twice = recipients(&["postmaster@example.org", "Postmaster@Example.org"]);
    let smuggled = recipients(&["postmaster@example.org", "victim@example.org"]);
    let none: Vec<String> = Vec::new();
    assert!(
        list.pardon(
            &eicar,
            &Envelope {
                sender,
                recipients: &only
            }
        )
        .is_some()
    );
    assert!(
        list.pardon(
            &eicar,
            &Envelope {
                sender,
                recipients: &twice
            }
        )
        .is_some()
    );
    assert!(
        list.pardon(
            &eicar,
            &Envelope {
                sender,
                recipients: &smuggled
            }
        )
        .is_none(),
        "one allowed recipient must not let a virus reach the others"
    );
    assert!(
        list.pardon(
            &eicar,
            &Envelope {
                sender,
                recipients: &none
            }
        )
        .is_none()
    );
}

#[test]
fn any_kind_and_first_matching_line() {
    let list = load(
        "except spam recipient abuse@example.org\n\
         except any recipient abuse@example.org\n",
    );
    let to = recipients(&["abuse@example.org"]);
    let envelope = Envelope {
        sender: "<x@example.com>",
        recipients: &to,
    };
    assert_eq!(
        list.pardon(&finding(VerdictKind::Spam, "R", None), &envelope)
            .as_deref(),
        Some("except spam recipient abuse@example.org")
    );
    for kind in [VerdictKind::Virus, VerdictKind::Ext] {
        assert_eq!(
            list.pardon(&finding(kind, "X", Some("a.exe")), &envelope)
                .as_deref(),
            Some("except any recipient abuse@example.org")
        );
    }
    for kind in [
        VerdictKind::Unscannable,
        VerdictKind::Error,
        VerdictKind::Clean,
    ] {
        assert!(
            list.pardon(&finding(kind, "max_depth", None), &envelope)
                .is_none()
        );
    }
}

#[test]
fn shipped_exceptions_file_pardons_nothing() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("vdl/exceptions.vdl");
    let (list, problems) = Exceptions::load(&path).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert!(
        list.is_empty(),
        "vdl/exceptions.vdl must only hold commented examples"
    );
    // Its examples, uncommented, are valid lines.
    let text = std::fs::read_to_string(&path).unwrap();
    let examples: String = text
        .lines()
        .filter_map(|line| line.strip_prefix("#except "))
        .map(|line| format!("except {line}\n"))
        .collect();
    let (list, problems) = Exceptions::parse(&path, &examples);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(list.len() >= 4);
}

#[test]
fn unusable_lines_are_reported_with_their_line() {
    let (list, problems) = Exceptions::parse(
        Path::new("exceptions.vdl"),
        "# comment\n\nexcept virus\nexcept virus rule A\nexcept trojan rule B\n",
    );
    assert_eq!(list.len(), 1);
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("exceptions.vdl:3: "), "{lines:?}");
    assert!(lines[1].starts_with("exceptions.vdl:5: "), "{lines:?}");
}
