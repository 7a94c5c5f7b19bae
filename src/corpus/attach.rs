//! Attachment bodies and their encodings: pdf-like and jpeg-like binaries, Windows
//! executables for the blocked-extension class, zip and tar.gz archives, and the base64 /
//! quoted-printable encoders the MIME writer needs.
//!
//! Compression is `flate2`'s and tar files are the `tar` crate's. The zip container is
//! written here (PKWARE APPNOTE 4.3: local headers, central directory, end record; no
//! zip64, members under 4 GiB): the package's `zip` dependency is built without deflate
//! support, so it cannot write compressed members. The tests read every kind of archive
//! back with the `zip` crate (deflate enabled for tests) and `tar`.
//!
//! Archives are reproducible: every member carries the same fixed timestamp, mode and
//! owner, and the gzip header has no name and mtime 0.

use std::io::Write as _;

use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder};

use super::rng::Rng;

/// Unix time stamped on every tar member: 2026-01-15 10:30:00 UTC (zip members get the
/// same wall time as a DOS date).
pub const ARCHIVE_MTIME: u64 = 1_768_473_000;

/// Base64 (RFC 2045) in lines of 76 characters, each ending in `\n`.
pub fn base64(data: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |n: u32, shift: u32| ALPHABET[(n >> shift) as usize & 63];
    let mut out = Vec::with_capacity(base64_len(data.len()));
    for line in data.chunks(57) {
        let mut triples = line.chunks_exact(3);
        for c in &mut triples {
            let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), sextet(n, 0)]);
        }
        match *triples.remainder() {
            [a] => {
                let n = u32::from(a) << 16;
                out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), b'=', b'=']);
            }
            [a, b] => {
                let n = u32::from(a) << 16 | u32::from(b) << 8;
                out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), b'=']);
            }
            _ => {}
        }
        out.push(b'\n');
    }
    out
}

/// The size `base64` gives for `n` bytes.
pub fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4 + n.div_ceil(57)
}

/// Quoted-printable (RFC 2045) of text with `\n` line ends: `=` and bytes outside
/// printable ASCII are escaped, as is white space at a line end; lines longer than 76
/// get soft breaks.
pub fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 20);
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, true),
            None => (line, false),
        };
        let bytes = body.as_bytes();
        let mut col = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let literal =
                ((b == b' ' || b == b'\t') && !last) || ((33..=126).contains(&b) && b != b'=');
            let piece = if literal {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if col + piece.len() > 75 {
                out.push_str("=\n");
                col = 0;
            }
            col += piece.len();
            out.push_str(&piece);
        }
        if newline {
            out.push('\n');
        }
    }
    out
}

/// A pdf-like file of about `size` bytes: a real `%PDF-1.4` header, catalog and page
/// objects, one content stream of random ("compressed") bytes, xref and `%%EOF`.
pub fn pdf(rng: &mut Rng, size: usize) -> Vec<u8> {
    let head: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>\nendobj\n";
    let overhead = head.len() + 320;
    let stream_len = size.saturating_sub(overhead).max(16);
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(head);
    let obj4 = out.len();
    out.extend_from_slice(
        format!("4 0 obj\n<< /Length {stream_len} /Filter /FlateDecode >>\nstream\n").as_bytes(),
    );
    let start = out.len();
    out.resize(start + stream_len, 0);
    rng.fill(&mut out[start..]);
    out.extend_from_slice(b"\nendstream\nendobj\n");
    let xref = out.len();
    out.extend_from_slice(
        format!(
            "xref\n0 5\n0000000000 65535 f \n0000000015 00000 n \n0000000078 00000 n \n0000000135 00000 n \n{obj4:010} 00000 n \ntrailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
        )
        .as_bytes(),
    );
    out
}

/// A jpeg-like file of about `size` bytes: SOI, a JFIF APP0 segment, a scan of random
/// data, EOI.
pub fn jpeg(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x01\x00\x48\x00\x48\x00\x00\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00".to_vec();
    let start = out.len();
    out.resize(size.max(start + 16), 0);
    rng.fill(&mut out[start..]);
    out.extend_from_slice(b"\xff\xd9");
    out
}

/// An executable-looking file: `MZ` DOS header with the usual stub text, a `PE\0\0`
/// signature where `e_lfanew` points, random code.
pub fn exe(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size.max(256)];
    rng.fill(&mut out);
    out[..2].copy_from_slice(b"MZ");
    out[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    let stub = b"This program cannot be run in DOS mode.\r\r\n$";
    out[0x4e..0x4e + stub.len()].copy_from_slice(stub);
    out[0x80..0x84].copy_from_slice(b"PE\0\0");
    out
}

/// A zip archive with every member deflated (text at level 6, binary at level 1: it does
/// not shrink anyway), stamped 2026-01-15 10:30:00, Unix mode 0644.
pub fn zip(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    const DOS_TIME: u16 = (10 << 11) | (30 << 5);
    const DOS_DATE: u16 = ((2026 - 1980) << 9) | (1 << 5) | 15;
    const VERSION: u16 = 20; // 2.0: deflate
    const MADE_BY_UNIX: u16 = (3 << 8) | VERSION;
    const DEFLATE: u16 = 8;
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let level = if looks_binary(data) { 1 } else { 6 };
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::new(level));
        encoder.write_all(data).expect("deflate to memory");
        let compressed = encoder.finish().expect("deflate to memory");
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let (crc, csize, usize) = (crc.sum(), compressed.len() as u32, data.len() as u32);
        let offset = out.len() as u32;
        let name = name.as_bytes();

        put32(&mut out, 0x0403_4b50);
        put16(&mut out, VERSION);
        put16(&mut out, 0); // flags
        put16(&mut out, DEFLATE);
        put16(&mut out, DOS_TIME);
        put16(&mut out, DOS_DATE);
        put32(&mut out, crc);
        put32(&mut out, csize);
        put32(&mut out, usize);
        put16(&mut out, name.len() as u16);
        put16(&mut out, 0); // extra field length
        out.extend_from_slice(name);
        out.extend_from_slice(&compressed);

        put32(&mut central, 0x0201_4b50);
        put16(&mut central, MADE_BY_UNIX);
        put16(&mut central, VERSION);
        put16(&mut central, 0);
        put16(&mut central, DEFLATE);
        put16(&mut central, DOS_TIME);
        put16(&mut central, DOS_DATE);
        put32(&mut central, crc);
        put32(&mut central, csize);
        put32(&mut central, usize);
        put16(&mut central, name.len() as u16);
        put16(&mut central, 0); // extra
        put16(&mut central, 0); // comment
        put16(&mut central, 0); // disk
        put16(&mut central, 0); // internal attributes
        put32(&mut central, 0o100_644 << 16); // external: regular file, rw-r--r--
        put32(&mut central, offset);
        central.extend_from_slice(name);
    }
    let central_offset = out.len() as u32;
    out.extend_from_slice(&central);
    put32(&mut out, 0x0605_4b50);
    put16(&mut out, 0);
    put16(&mut out, 0);
    put16(&mut out, members.len() as u16);
    put16(&mut out, members.len() as u16);
    put32(&mut out, central.len() as u32);
    put32(&mut out, central_offset);
    put16(&mut out, 0); // comment length
    out
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A gzip-compressed GNU tar archive.
pub fn tar_gz(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let gz = GzEncoder::new(Vec::new(), Compression::new(6));
    let mut builder = tar::Builder::new(gz);
    builder.mode(tar::HeaderMode::Deterministic);
    for (name, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(ARCHIVE_MTIME);
        header.set_uid(1000);
        header.set_gid(1000);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, data.as_slice())
            .expect("tar to memory");
    }
    builder
        .into_inner()
        .expect("tar to memory")
        .finish()
        .expect("gzip to memory")
}

fn looks_binary(data: &[u8]) -> bool {
    data.iter().take(512).any(|&b| b == 0 || b >= 0x80)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read as _};

    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_vectors_and_wraps_at_76() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg==\n"),
            ("fo", "Zm8=\n"),
            ("foo", "Zm9v\n"),
            ("foob", "Zm9vYg==\n"),
            ("fooba", "Zm9vYmE=\n"),
            ("foobar", "Zm9vYmFy\n"),
        ] {
            assert_eq!(
                String::from_utf8(base64(plain.as_bytes())).unwrap(),
                encoded
            );
            assert_eq!(base64_len(plain.len()), encoded.len());
        }
        let long = base64(&[7u8; 1000]);
        assert!(long.split(|&b| b == b'\n').all(|line| line.len() <= 76));
        assert_eq!(long.len(), base64_len(1000));
    }

    #[test]
    fn quoted_printable_escapes_and_breaks_long_lines() {
        assert_eq!(quoted_printable("a=b <p>\n"), "a=3Db <p>\n");
        assert_eq!(quoted_printable("end \n"), "end=20\n");
        let long = quoted_printable(&"x".repeat(200));
        assert!(long.lines().all(|l| l.len() <= 76));
        assert_eq!(long.replace("=\n", ""), "x".repeat(200));
    }

    #[test]
    fn binaries_have_their_magic_and_size() {
        let mut rng = Rng::new(3);
        let p = pdf(&mut rng, 10_000);
        assert!(p.starts_with(b"%PDF-1.4\n") && p.ends_with(b"%%EOF\n"));
        assert!((9_500..10_500).contains(&p.len()), "{}", p.len());
        assert!(jpeg(&mut rng, 5000).starts_with(b"\xff\xd8\xff\xe0"));
        assert!(exe(&mut rng, 4096).starts_with(b"MZ"));
    }

    #[test]
    fn archives_are_reproducible_and_readable() {
        let members = vec![
            ("a.txt".to_string(), b"hello hello hello".to_vec()),
            ("dir/b.bin".to_string(), vec![0, 1, 2, 255]),
        ];
        let z = zip(&members);
        assert_eq!(z, zip(&members));
        let mut archive = zip::ZipArchive::new(Cursor::new(&z)).unwrap();
        for (name, data) in &members {
            let mut member = archive.by_name(name).unwrap();
            assert_eq!(member.compression(), zip::CompressionMethod::Deflated);
            assert_eq!(member.unix_mode(), Some(0o100_644));
            let mut back = Vec::new();
            member.read_to_end(&mut back).unwrap();
            assert_eq!(&back, data);
        }

        let t = tar_gz(&members);
        assert_eq!(t, tar_gz(&members));
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(t.as_slice()));
        for entry in archive.entries().unwrap() {
            names.push(entry.unwrap().path().unwrap().display().to_string());
        }
        assert_eq!(names, ["a.txt", "dir/b.bin"]);
    }
}
