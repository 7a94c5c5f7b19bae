//! Attachment and archive-member file names: whether one, as a mail client
//! or Windows would see it, ends in an extension on the `exts` list, and how
//! one is shown in a verdict's location.

/// The `exts` setting when the config does not give one: extensions Windows
/// runs, installs or interprets on a double click.
pub const DEFAULT_EXTS: &[&str] = &[
    "exe", "com", "scr", "pif", "bat", "cmd", "vbs", "vbe", "js", "jse", "wsf", "wsh", "msi",
    "cpl", "hta", "jar", "lnk", "reg", "ps1",
];

/// The blocked extension `name` ends in, lowercased, if any.
///
/// Only the last extension counts (`invoice.pdf.exe` is blocked, `exe.pdf`
/// is not), taken from the final path component, since a client saving the
/// attachment drops any directories the sender put in the name. The name is
/// checked the way Windows resolves it: trailing dots and white space are
/// ignored (`INVOICE.EXE.` runs as an .exe), and so is everything from a NUL
/// on (`a.exe%00.pdf` in an RFC 2231 name reaches C code as `a.exe`).
/// Entries of `blocked` may be written with or without the leading dot, in
/// any case.
pub fn blocked_extension(name: &str, blocked: &[String]) -> Option<String> {
    let file_name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let before_nul = file_name.split('\0').next().unwrap_or(file_name);
    [file_name, before_nul]
        .into_iter()
        .filter_map(last_extension)
        .find(|extension| {
            blocked
                .iter()
                .any(|entry| extension.eq_ignore_ascii_case(entry.trim_start_matches('.')))
        })
}

/// Characters of a name shown at most; longer names are cut, with `…`.
const MAX_SHOWN_CHARS: usize = 200;

/// `name` made safe to show: control characters, and the invisible and
/// direction-changing format characters that make `exe.pdf` look like
/// `fdp.exe` (U+202E) or hide parts of a name, are written as `\u{..}`
/// escapes, an empty name is shown as `(no name)`, and a very long name is
/// cut. The name is otherwise kept as given (`../../etc/passwd` stays so):
/// it is only ever shown, never used as a path.
pub fn display_name(name: &str) -> String {
    if name.is_empty() {
        return "(no name)".to_string();
    }
    let mut shown = String::with_capacity(name.len().min(4 * MAX_SHOWN_CHARS));
    for (count, c) in name.chars().enumerate() {
        if count == MAX_SHOWN_CHARS {
            shown.push('…');
            break;
        }
        if c.is_control() || is_invisible_format(c) {
            shown.extend(c.escape_unicode());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// Unicode format characters that change how the text around them reads:
/// bidirectional marks, embeddings, overrides and isolates, zero-width
/// characters and the byte-order mark.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
    )
}

fn last_extension(file_name: &str) -> Option<String> {
    let trimmed = file_name.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let (_, extension) = trimmed.rsplit_once('.')?;
    (!extension.is_empty()).then(|| extension.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<String> {
        DEFAULT_EXTS.iter().map(|ext| ext.to_string()).collect()
    }

    fn check(name: &str) -> Option<String> {
        blocked_extension(name, &defaults())
    }

    #[test]
    fn double_extension_is_blocked_by_its_last_part() {
        assert_eq!(check("invoice.pdf.exe").as_deref(), Some("exe"));
        assert_eq!(check("exe.pdf"), None);
        assert_eq!(check("invoice.pdf"), None);
    }

    #[test]
    fn case_trailing_dots_and_spaces_do_not_hide_it() {
        assert_eq!(check("INVOICE.EXE.").as_deref(), Some("exe"));
        assert_eq!(check("a.exe ").as_deref(), Some("exe"));
        assert_eq!(check("a.Scr . .\t").as_deref(), Some("scr"));
        assert_eq!(check("photo.JPG. "), None);
    }

    #[test]
    fn only_the_final_path_component_counts() {
        assert_eq!(check("C:\\temp\\run.bat").as_deref(), Some("bat"));
        assert_eq!(check("../../x/setup.msi").as_deref(), Some("msi"));
        assert_eq!(check("dir.exe/readme.txt"), None);
        assert_eq!(check("dir.exe\\readme"), None);
    }

    #[test]
    fn a_nul_cuts_the_name_as_c_code_would() {
        assert_eq!(check("a.exe\0.pdf").as_deref(), Some("exe"));
    }

    #[test]
    fn names_without_an_extension_pass() {
        assert_eq!(check(""), None);
        assert_eq!(check("exe"), None);
        assert_eq!(check("README."), None);
        assert_eq!(check("..."), None);
    }

    #[test]
    fn display_name_escapes_what_could_mislead() {
        assert_eq!(display_name("invoice.pdf"), "invoice.pdf");
        assert_eq!(display_name("../../etc/passwd"), "../../etc/passwd");
        assert_eq!(display_name("a\nb\0"), "a\\u{a}b\\u{0}");
        assert_eq!(
            display_name("photo\u{202e}gpj.exe"),
            "photo\\u{202e}gpj.exe"
        );
        assert_eq!(display_name(""), "(no name)");
        let long = display_name(&"x".repeat(1000));
        assert_eq!(long.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn configured_entries_may_have_a_dot_and_any_case() {
        let blocked = vec![".ZIP".to_string()];
        assert_eq!(blocked_extension("a.zip", &blocked).as_deref(), Some("zip"));
        assert_eq!(blocked_extension("a.exe", &blocked), None);
    }
}
