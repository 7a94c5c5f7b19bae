//! Byte-pattern virus signatures: one Aho-Corasick automaton over all
//! patterns, so each decoded part is read once whatever the number of
//! signatures. The built-in set holds the EICAR test file.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, BuildError};

/// The name ClamAV gives the EICAR test file, so logs read the same.
pub const EICAR_NAME: &str = "Eicar-Test-Signature";

/// The 68-byte EICAR anti-virus test file, also the self-test a new
/// signature set must pass before it is installed.
///
/// It is built at run time so that the sie binaries do not contain it and
/// are not reported by a virus scanner on the host. The second half is
/// stored reversed: kept as is, the linker placed it right after the first
/// half and the binary spelled the whole file.
pub fn eicar_test_file() -> Vec<u8> {
    const FIRST_HALF: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$";
    const SECOND_HALF_REVERSED: &str = "*H+H$!ELIF-TSET-SURIVITNA-DRADNATS-RACIE";
    let mut eicar = FIRST_HALF.as_bytes().to_vec();
    eicar.extend(SECOND_HALF_REVERSED.bytes().rev());
    eicar
}

/// A compiled set of named byte patterns.
#[derive(Debug)]
pub struct Signatures {
    automaton: AhoCorasick,
    names: Vec<String>,
}

impl Signatures {
    /// Compiles `(name, pattern)` pairs; the automaton reports a match by
    /// pattern index, which is the index into `names`.
    ///
    /// # Errors
    ///
    /// Fails when the automaton would exceed aho-corasick's size limits.
    pub fn new<N, P>(signatures: impl IntoIterator<Item = (N, P)>) -> Result<Signatures, BuildError>
    where
        N: Into<String>,
        P: AsRef<[u8]>,
    {
        let (names, patterns): (Vec<String>, Vec<P>) = signatures
            .into_iter()
            .map(|(name, pattern)| (name.into(), pattern))
            .unzip();
        Ok(Signatures {
            automaton: AhoCorasick::new(patterns)?,
            names,
        })
    }

    /// The signatures compiled into SIE, built on first use and shared by
    /// every scanning thread.
    pub fn builtin() -> &'static Signatures {
        static BUILTIN: OnceLock<Signatures> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Signatures::new([(EICAR_NAME, eicar_test_file())])
                .expect("one 68-byte pattern is far below aho-corasick's size limits")
        })
    }

    /// The name of the first signature found in `data`, if any.
    pub fn find(&self, data: &[u8]) -> Option<&str> {
        let found = self.automaton.find(data)?;
        Some(&self.names[found.pattern().as_usize()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eicar_is_the_official_68_bytes() {
        // printf '%s%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$' \
        //     'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
        let official = [
            r"X5O!P%@AP[4\PZX54(P^)7CC)7}$",
            "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
        ]
        .concat();
        assert_eq!(eicar_test_file(), official.as_bytes());
        assert_eq!(official.len(), 68);
    }

    #[test]
    fn builtin_finds_eicar_anywhere_in_the_data() {
        let mut data = b"some text before ".to_vec();
        data.extend(eicar_test_file());
        data.extend(b" and after");
        assert_eq!(Signatures::builtin().find(&data), Some(EICAR_NAME));
    }

    #[test]
    fn builtin_ignores_a_damaged_eicar() {
        let mut eicar = eicar_test_file();
        eicar[40] = b'x';
        assert_eq!(Signatures::builtin().find(&eicar), None);
        assert_eq!(Signatures::builtin().find(b""), None);
    }

    #[test]
    fn several_signatures_report_their_own_names() {
        let signatures =
            Signatures::new([("First", b"abc".as_slice()), ("Second", b"xyz")]).unwrap();
        assert_eq!(signatures.find(b"..xyz.."), Some("Second"));
        assert_eq!(signatures.find(b"abc xyz"), Some("First"));
        assert_eq!(signatures.find(b"ab yz"), None);
    }
}
