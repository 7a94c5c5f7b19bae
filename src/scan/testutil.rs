//! Builders for the scan tests: encoders (base64 comes from the crate) and
//! hostile nestings.

use std::fmt::Write as _;

use super::{Verdict, VerdictKind};

/// Base64 in 76-character lines, as mail clients send it.
pub fn base64(data: &[u8]) -> String {
    super::encode_base64(data)
}

/// Quoted-printable that escapes every byte but letters and digits, with a
/// soft line break every 60 characters, so nothing survives undecoded.
pub fn quoted_printable(data: &[u8]) -> String {
    let mut encoded = String::new();
    let mut line_length = 0;
    for &byte in data {
        if byte.is_ascii_alphanumeric() {
            encoded.push(char::from(byte));
            line_length += 1;
        } else {
            let _ = write!(encoded, "={byte:02X}");
            line_length += 3;
        }
        if line_length >= 60 {
            encoded.push_str("=\n");
            line_length = 0;
        }
    }
    encoded
}

/// A classic `begin 644 <name>` ... `end` block.
pub fn uuencode(name: &str, data: &[u8]) -> String {
    let char_of = |sextet: u32| {
        char::from(if sextet == 0 {
            b'`'
        } else {
            sextet as u8 + b' '
        })
    };
    let mut encoded = format!("begin 644 {name}\n");
    for line in data.chunks(45) {
        encoded.push(char_of(line.len() as u32));
        for chunk in line.chunks(3) {
            let group = u32::from_be_bytes([
                0,
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ]);
            for position in 0..4 {
                encoded.push(char_of((group >> (18 - 6 * position)) & 0x3f));
            }
        }
        encoded.push('\n');
    }
    encoded.push_str("`\nend\n");
    encoded
}

/// A message whose body is `levels` multiparts, each holding the next.
pub fn nested_multiparts(levels: usize) -> Vec<u8> {
    let mut message = String::from("Subject: deep multiparts\n");
    for level in 0..levels {
        let _ = write!(
            message,
            "Content-Type: multipart/mixed; boundary=\"level{level}\"\n\n--level{level}\n"
        );
    }
    message.push_str("Content-Type: text/plain\n\nbottom\n");
    for level in (0..levels).rev() {
        let _ = writeln!(message, "--level{level}--");
    }
    message.into_bytes()
}

/// A message holding a message/rfc822 holding one ... `levels` deep.
pub fn nested_messages(levels: usize) -> Vec<u8> {
    let mut message = String::from("Subject: deep messages\n");
    for _ in 0..levels {
        message.push_str("Content-Type: message/rfc822\n\nSubject: inner\n");
    }
    message.push_str("\nbottom\n");
    message.into_bytes()
}

#[test]
fn encoders_round_trip_through_the_decoders() {
    use super::transfer::{TransferEncoding, decode_base64};
    use super::uuencode::uu_files;

    let data: Vec<u8> = (0..=255).chain(0..100).collect();
    assert_eq!(decode_base64(base64(&data).as_bytes()), data);
    let qp = quoted_printable(&data);
    assert_eq!(
        &*TransferEncoding::QuotedPrintable.decode(qp.as_bytes()),
        data
    );
    let uu = uuencode("x.bin", &data);
    assert_eq!(uu_files(uu.as_bytes()).next().unwrap().data, data);
}

/// A zip of `members`, each deflated.
pub fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with(members, zip::CompressionMethod::DEFLATE, None)
}

/// A zip of `members` stored or compressed with `method`, each encrypted
/// with ZipCrypto when a `password` is given.
pub fn zip_with(
    members: &[(&str, &[u8])],
    method: zip::CompressionMethod,
    password: Option<&[u8]>,
) -> Vec<u8> {
    use std::io::Write as _;
    use zip::unstable::write::FileOptionsExt as _;
    use zip::write::SimpleFileOptions;

    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in members {
        let mut options = SimpleFileOptions::default().compression_method(method);
        if let Some(password) = password {
            options = options.with_deprecated_encryption(password).unwrap();
        }
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// A gzip file of `data`, with `name` stored in its header if given.
pub fn gzip(data: &[u8], name: Option<&str>) -> Vec<u8> {
    use std::io::Write as _;
    let mut builder = flate2::GzBuilder::new();
    if let Some(name) = name {
        builder = builder.filename(name);
    }
    let mut encoder = builder.write(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A bzip2 file of `data`.
pub fn bzip2(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A POSIX tar archive of regular files.
pub fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Asserts a verdict's kind, name and location, showing the whole verdict if not.
pub fn assert_verdict(verdict: &Verdict, kind: VerdictKind, name: &str, location: &str) {
    assert_eq!(
        (
            verdict.kind,
            verdict.name.as_str(),
            verdict.location.as_str()
        ),
        (kind, name, location),
        "{verdict:?}"
    );
}
