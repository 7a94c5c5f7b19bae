//! Reading a queue file whole when its size is known (from an fstat or a listing): one
//! `read` of that size plus one byte, where `read_to_end` needs an fstat, an lseek and a
//! second `read` that returns nothing.

use std::io::{self, Read};

/// Appends what `reader` holds to `buf`, at most `limit` bytes, expecting about
/// `expected` of them; returns how many were appended. A read that comes back short once
/// at least `expected` bytes are in is the end of a regular file, so a file that kept
/// its size costs one read. One that grew or shrank is still read to its end.
pub fn read_expected(
    mut reader: impl Read,
    expected: u64,
    limit: u64,
    buf: &mut Vec<u8>,
) -> io::Result<usize> {
    let start = buf.len();
    let mut chunk = expected.saturating_add(1).clamp(1, limit.max(1));
    loop {
        let got = (buf.len() - start) as u64;
        let room = chunk.min(limit - got) as usize;
        if room == 0 {
            break;
        }
        let old = buf.len();
        buf.resize(old + room, 0);
        let read = match reader.read(&mut buf[old..]) {
            Ok(read) => read,
            Err(e) => {
                buf.truncate(old);
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
        };
        buf.truncate(old + read);
        if read == 0 || (read < room && got + read as u64 >= expected) {
            break;
        }
        // Grown past what was expected: go on in chunks of at least 64 KiB.
        chunk = chunk.max(64 * 1024);
    }
    Ok(buf.len() - start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fs::File;
    use std::io::Write;

    /// Counts the reads made, to show a file that kept its size costs one.
    struct Counting<R> {
        inner: R,
        reads: usize,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            self.inner.read(buf)
        }
    }

    fn file_with(contents: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut temp = tempfile::NamedTempFile::new().unwrap();
        temp.write_all(contents).unwrap();
        let file = File::open(temp.path()).unwrap();
        (temp, file)
    }

    #[test]
    fn a_file_of_the_expected_size_is_read_in_one_call() {
        let (_temp, file) = file_with(b"V8\nT1\n.\n");
        let mut counting = Counting {
            inner: file,
            reads: 0,
        };
        let mut buf = b"head\n".to_vec();
        assert_eq!(
            read_expected(&mut counting, 8, u64::MAX, &mut buf).unwrap(),
            8
        );
        assert_eq!(buf, b"head\nV8\nT1\n.\n");
        assert_eq!(counting.reads, 1);
    }

    proptest! {
        #[test]
        fn reads_what_the_file_holds_whatever_was_expected(
            contents in proptest::collection::vec(any::<u8>(), 0..200_000),
            expected in 0u64..300_000,
            limit in prop_oneof![Just(u64::MAX), 0u64..250_000],
        ) {
            let (_temp, file) = file_with(&contents);
            let mut buf = Vec::new();
            let read = read_expected(&file, expected, limit, &mut buf).unwrap();
            let want = &contents[..contents.len().min(limit.min(usize::MAX as u64) as usize)];
            prop_assert_eq!(read, want.len());
            prop_assert_eq!(&buf[..], want);
        }
    }
}
