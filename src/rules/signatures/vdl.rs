//! `virus.vdl`: SIE's own line-oriented virus definitions (documented with examples in
//! `vdl/README.md`): `sig`, `text`, `md5`, `sha1`, `sha256` lines and `#` comments.
//! A bad line is reported with its line number and skipped.

use super::body::{Engine, Offset, Pattern};
use super::{BodyDef, Def, HashDef, HashKind};
use crate::rules::clamav::parse_digest;

/// True for names SIE accepts in its own files: ClamAV's convention `[A-Za-z0-9._-]`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Reads a `"..."` literal with `\\`, `\"`, `\n`, `\r`, `\t`, `\0` and `\xNN` escapes;
/// returns the bytes and what follows the closing quote.
fn parse_literal(text: &str) -> Result<(Vec<u8>, &str), String> {
    let inner = text
        .strip_prefix('"')
        .ok_or("the text must be in double quotes")?;
    let bytes = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Ok((out, &inner[i + 1..])),
            b'\\' => {
                let esc = *bytes.get(i + 1).ok_or("unfinished escape")?;
                match esc {
                    b'\\' | b'"' => out.push(esc),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'0' => out.push(0),
                    b'x' => {
                        let hex = inner.get(i + 2..i + 4).ok_or("\\x needs two hex digits")?;
                        out.push(
                            u8::from_str_radix(hex, 16).map_err(|_| "\\x needs two hex digits")?,
                        );
                        i += 2;
                    }
                    _ => return Err(format!("unknown escape \\{}", esc as char)),
                }
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Err("missing closing quote".into())
}

/// Reads one line of `virus.vdl`. `Ok(None)` for blank and comment lines.
pub(crate) fn parse_line(line: &str) -> Result<Option<Def>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim_start();
    let (name, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let rest = rest.trim();
    if !valid_name(name) {
        return Err(format!(
            "bad or missing signature name {name:?} (use letters, digits, '.', '_', '-')"
        ));
    }
    let name = name.to_string().into_boxed_str();
    match keyword {
        "sig" | "text" => {
            let (pattern, offset_text) = if keyword == "sig" {
                let (body, offset) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                (
                    Pattern::parse(body).map_err(|e| e.to_string())?,
                    offset.trim(),
                )
            } else {
                let (bytes, after) = parse_literal(rest)?;
                (Pattern::literal(&bytes), after.trim())
            };
            let offset = match offset_text {
                "" => Offset::Any,
                text => {
                    let text = text.strip_prefix("at ").map(str::trim).unwrap_or(text);
                    Offset::parse(text)
                        .map_err(|_| format!("bad offset {text:?} (use *, n, EOF-n, n,shift)"))?
                }
            };
            pattern
                .check_clamav(Engine::AhoCorasick)
                .map_err(|e| e.to_string())?;
            Ok(Some(Def::Body(BodyDef {
                name,
                target: 0,
                offset,
                boyer_moore: pattern.is_static(),
                pattern,
            })))
        }
        "md5" | "sha1" | "sha256" => {
            let mut fields = rest.split_whitespace();
            let (Some(hash), Some(size), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(format!("use: {keyword} NAME HASH SIZE (SIZE may be *)"));
            };
            let (kind, digest) =
                parse_digest(hash).ok_or("the hash is not hex of the right length")?;
            let expected = match keyword {
                "md5" => HashKind::Md5,
                "sha1" => HashKind::Sha1,
                _ => HashKind::Sha256,
            };
            if kind != expected {
                return Err(format!("that is not a {keyword} hash"));
            }
            let size = match size {
                "*" => None,
                s => Some(
                    s.parse::<u64>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or("the size must be a positive number or *")?,
                ),
            };
            Ok(Some(Def::Hash(HashDef {
                name,
                kind,
                digest,
                size,
            })))
        }
        other => Err(format!(
            "unknown keyword {other:?} (sig, text, md5, sha1, sha256)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_kind_of_line() {
        assert!(matches!(parse_line("  # comment"), Ok(None)));
        assert!(matches!(parse_line(""), Ok(None)));
        match parse_line("sig Test.Hex 4142??44*4546 EOF-10").unwrap() {
            Some(Def::Body(b)) => {
                assert_eq!(&*b.name, "Test.Hex");
                assert_eq!(b.offset, Offset::Eof { back: 10, shift: 0 });
            }
            other => panic!("{other:?}"),
        }
        match parse_line(r#"text Test.Text "a\x00b\"c\\" at 0"#).unwrap() {
            Some(Def::Body(b)) => {
                assert_eq!(b.pattern, Pattern::literal(b"a\0b\"c\\"));
                assert_eq!(b.offset, Offset::Abs { start: 0, shift: 0 });
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_line("md5 Test.Md5 44d88612fea8a8f36de82e1278abb02f 68"),
            Ok(Some(Def::Hash(HashDef { size: Some(68), .. })))
        ));
        assert!(matches!(
            parse_line(
                "sha256 Test.Sha 275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f *"
            ),
            Ok(Some(Def::Hash(HashDef { size: None, .. })))
        ));
    }

    #[test]
    fn readme_examples_parse() {
        for line in [
            "sig    Example.Dropper-1 4d5a9000{20-60}(5045|4e45)0000",
            r##"text   Example.Magic-1 "#!/bin/sh\ncurl " at 0"##,
            r#"text   Example.Trailer-1 "eval(atob(" at EOF-100,100"#,
            r#"text   SIE.Exploit.CVE-2022-30190-Follina "ms-msdt:/id pcwdiagnostic""#,
            "md5    Eicar-Test-Signature 44d88612fea8a8f36de82e1278abb02f 68",
        ] {
            assert!(matches!(parse_line(line), Ok(Some(_))), "{line}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for bad in [
            "sig",
            "sig Bad Name 414243",
            "sig Name 41",
            "sig Name 41424g",
            "text Name unquoted",
            "text Name \"open",
            "text Name \"\\q\"",
            "md5 Name 1234 68",
            "md5 Name 44d88612fea8a8f36de82e1278abb02f 0",
            "sha256 Name 44d88612fea8a8f36de82e1278abb02f 68",
            "virus Name 414243",
            "sig Name 414243 EP+1",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_line_is_ok_or_an_error(line in "\\PC{0,120}") {
            let _ = parse_line(&line);
        }

        #[test]
        fn keyword_lines_never_panic(kw in "(sig|text|md5|sha1|sha256)", rest in "[ -~]{0,80}") {
            let _ = parse_line(&format!("{kw} Name {rest}"));
        }
    }
}
