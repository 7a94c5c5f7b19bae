//! Uuencoded files inside text: finds `begin <mode> <name>` ... `end`
//! blocks (and the `begin-base64` variant of GNU sharutils) and decodes
//! them one at a time, so an attachment pasted into a body is scanned too.

use super::transfer::decode_base64;

/// One uuencoded file found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UuFile {
    /// The name from the `begin` line, lossily read as UTF-8.
    pub name: String,
    pub data: Vec<u8>,
}

/// Iterator over the uuencoded files of a text, in order.
pub struct UuFiles<'a> {
    lines: Lines<'a>,
}

/// The uuencoded files in `text`.
///
/// Decoding is forgiving, like `uudecode` in most mail clients: a missing
/// `end` line ends the file at the first line that cannot be uuencoded data
/// (or at the end of the text), and a line shorter than its length byte
/// says is padded with zero bits. A truncated file is still returned, since
/// its first bytes can carry a signature.
pub fn uu_files(text: &[u8]) -> UuFiles<'_> {
    UuFiles {
        lines: Lines { text, at: Some(0) },
    }
}

/// The lines of a text split at `\n`, as `split` gives them (a last, empty
/// line after a final newline included), found with `memchr`.
struct Lines<'a> {
    text: &'a [u8],
    /// Start of the next line; `None` once the last line was given.
    at: Option<usize>,
}

impl<'a> Lines<'a> {
    /// Moves to the next line that starts with `prefix`, skipping the lines
    /// before it without reading them one by one: most texts hold no
    /// uuencoded file, and a search for the keyword passes over them at once.
    fn skip_to_prefix(&mut self, prefix: &[u8]) -> Option<()> {
        let start = self.at?;
        let rest = &self.text[start..];
        let found = memchr::memmem::find_iter(rest, prefix)
            .find(|&offset| offset == 0 || rest[offset - 1] == b'\n');
        self.at = found.map(|offset| start + offset);
        found.map(|_| ())
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.at?;
        let rest = &self.text[start..];
        match memchr::memchr(b'\n', rest) {
            Some(end) => {
                self.at = Some(start + end + 1);
                Some(&rest[..end])
            }
            None => {
                self.at = None;
                Some(rest)
            }
        }
    }
}

impl Iterator for UuFiles<'_> {
    type Item = UuFile;

    fn next(&mut self) -> Option<UuFile> {
        loop {
            // Both keywords start with `begin`.
            self.lines.skip_to_prefix(b"begin")?;
            let line = strip_cr(self.lines.next()?);
            if let Some(name) = begin_line(line, b"begin ") {
                return Some(UuFile {
                    name,
                    data: self.classic_body(),
                });
            }
            if let Some(name) = begin_line(line, b"begin-base64 ") {
                return Some(UuFile {
                    name,
                    data: self.base64_body(),
                });
            }
        }
    }
}

impl UuFiles<'_> {
    fn classic_body(&mut self) -> Vec<u8> {
        let mut data = Vec::new();
        for line in self.lines.by_ref() {
            let line = strip_cr(line);
            if line == b"end" || !decode_classic_line(line, &mut data) {
                break;
            }
        }
        data
    }

    fn base64_body(&mut self) -> Vec<u8> {
        let mut encoded = Vec::new();
        for line in self.lines.by_ref() {
            let line = strip_cr(line);
            if line == b"====" {
                break;
            }
            encoded.extend_from_slice(line);
        }
        decode_base64(&encoded)
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The file name of a `<keyword><octal mode> <name>` line. Requiring the
/// octal mode keeps prose such as "begin the meeting" from opening a block.
fn begin_line(line: &[u8], keyword: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(keyword)?;
    let (mode, name) = rest.split_at(rest.iter().position(|&b| b == b' ')?);
    let octal =
        !mode.is_empty() && mode.len() <= 4 && mode.iter().all(|b| (b'0'..=b'7').contains(b));
    let name = &name[1..];
    (octal && !name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned())
}

/// Appends the bytes of one uuencoded line. Returns `false` when the line
/// cannot be uuencoded data (a byte outside space..=backquote), which ends
/// the file.
fn decode_classic_line(line: &[u8], data: &mut Vec<u8>) -> bool {
    let Some((&length_char, encoded)) = line.split_first() else {
        // Some encoders strip the trailing space of the last line: treat
        // an empty line as the zero-length line before `end`.
        return true;
    };
    if !line.iter().all(|b| (b' '..=b'`').contains(b)) {
        return false;
    }
    let mut remaining = usize::from(sextet(length_char));
    let mut chunks = encoded.chunks(4);
    while remaining > 0 {
        let chunk = chunks.next().unwrap_or_default();
        let group = (0..4).fold(0u32, |group, index| {
            let char = chunk.get(index).copied().unwrap_or(b' ');
            (group << 6) | u32::from(sextet(char))
        });
        let take = remaining.min(3);
        data.extend_from_slice(&group.to_be_bytes()[1..1 + take]);
        remaining -= take;
    }
    true
}

/// The 6-bit value of a uuencoded character; backquote stands for zero.
fn sextet(char: u8) -> u8 {
    char.wrapping_sub(b' ') & 0x3f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf 'Cat' | uuencode cat.txt` and `uuencode -m`.
    const CLASSIC: &[u8] = b"begin 644 cat.txt\n#0V%T\n`\nend\n";
    const BASE64: &[u8] = b"begin-base64 644 cat.txt\nQ2F0\n====\n";

    fn files(text: &[u8]) -> Vec<UuFile> {
        uu_files(text).collect()
    }

    #[test]
    fn decodes_a_classic_block() {
        assert_eq!(
            files(CLASSIC),
            [UuFile {
                name: "cat.txt".into(),
                data: b"Cat".to_vec()
            }]
        );
    }

    #[test]
    fn decodes_a_base64_block() {
        let found = files(BASE64);
        assert_eq!(found[0].name, "cat.txt");
        assert_eq!(found[0].data, b"Cat");
    }

    #[test]
    fn finds_blocks_between_prose_with_crlf_lines() {
        let mut text = b"Hello,\r\nbegin the meeting at 10.\r\n".to_vec();
        text.extend(CLASSIC.iter().flat_map(|&b| {
            if b == b'\n' {
                b"\r\n".to_vec()
            } else {
                vec![b]
            }
        }));
        text.extend(b"Regards\r\n");
        text.extend(BASE64);
        let found = files(&text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].data, b"Cat");
        assert_eq!(found[1].data, b"Cat");
    }

    #[test]
    fn decodes_a_longer_file_across_lines() {
        // 100 times `x`, as Python's `binascii.b2a_uu` encodes it: 45 bytes
        // per full line (length char `M`), 10 on the last (`*`).
        let text = b"begin 644 x\n\
            M>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX\n\
            M>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX>'AX\n\
            *>'AX>'AX>'AX>```\n`\nend\n";
        let found = files(text);
        assert_eq!(found[0].data, vec![b'x'; 100]);
    }

    #[test]
    fn missing_end_keeps_what_was_decoded() {
        let found = files(b"begin 644 cut.bin\n#0V%T\nthis is prose again\n");
        assert_eq!(found[0].data, b"Cat");
        let found = files(b"begin 644 cut.bin\n#0V%T");
        assert_eq!(found[0].data, b"Cat");
    }

    #[test]
    fn short_line_is_padded_with_zero_bits() {
        // Three bytes announced, two characters given: `0V` carries the
        // first byte and 4 bits of the second, the rest is zero.
        let found = files(b"begin 644 a\n#0V\nend\n");
        assert_eq!(found[0].data, [b'C', 0x60, 0]);
    }

    #[test]
    fn begin_opens_a_block_only_at_the_start_of_a_line() {
        assert!(files(b"xbegin 644 a\n#0V%T\nend\n").is_empty());
        assert!(files(b"say begin 644 a\n#0V%T\nend\n").is_empty());
        let found = files(b"begin\nbegin 9 no\nbegins\r\nbegin 644 a\n#0V%T\nend\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "a");
        assert_eq!(files(b"\nbegin 644 b\n#0V%T")[0].data, b"Cat");
    }

    #[test]
    fn begin_needs_an_octal_mode_and_a_name() {
        assert!(files(b"begin 648 a\n#0V%T\nend\n").is_empty());
        assert!(files(b"begin 644\n#0V%T\nend\n").is_empty());
        assert!(files(b"begin 644 \n#0V%T\nend\n").is_empty());
        assert!(files(b"begin now please\n").is_empty());
        assert_eq!(files(b"begin 0755 run me.exe\nend\n")[0].name, "run me.exe");
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            &b""[..],
            b"begin 644 a",
            b"begin 644 a\n\xff\xfe",
            b"begin 644 a\nM",
            b"begin-base64 644 a\n!!!!",
            b"begin 644 \xff\xfe\n`\n",
        ] {
            let _ = files(text);
        }
    }
}
