//! Definitions: the signature set, spam rules and exceptions loaded from a definitions
//! directory (`vdl/`: SIE's own `*.vdl` files plus ClamAV and SpamAssassin files dropped
//! beside them), compiled once and shared read-only by every scan.

pub(crate) mod byte_word;
pub mod clamav;
pub mod exceptions;
pub mod install;
pub mod signatures;
pub mod spam;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use exceptions::{Envelope, ExceptionError, Exceptions};
use signatures::{SignatureError, SignatureSet};
use spam::{SpamError, SpamRules};

use crate::queue::Spool;
use crate::scan::{ScanOptions, VerdictKind, scan_message_with_rules};

/// A definition line that could not be used: reported with file and line, then skipped
/// (or, where the file as a whole is unusable, the load fails with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the whole file.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Everything a scan consults: signatures, spam rules and exceptions, compiled once.
#[derive(Debug)]
pub struct RuleSet {
    pub signatures: SignatureSet,
    pub spam: SpamRules,
    pub exceptions: Exceptions,
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Signatures(#[from] SignatureError),
    #[error(transparent)]
    Spam(#[from] SpamError),
    #[error(transparent)]
    Exceptions(#[from] ExceptionError),
}

/// The definitions SIE ships in `vdl/`, built into every program so that a spool with
/// nothing installed still scans with them.
pub const SHIPPED_DEFINITIONS: [(&str, &str); 3] = [
    ("virus.vdl", include_str!("../../vdl/virus.vdl")),
    ("spam.vdl", include_str!("../../vdl/spam.vdl")),
    ("exceptions.vdl", include_str!("../../vdl/exceptions.vdl")),
];

impl RuleSet {
    /// Loads every definitions file of `dir`: `*.vdl`, ClamAV's `*.hdb *.hsb *.ndb
    /// *.ldb *.fp *.sfp *.ign2` and SpamAssassin's `*.cf`. Lines that cannot be used
    /// are returned as problems and skipped.
    pub fn load_dir(dir: &Path) -> Result<(RuleSet, Vec<LoadProblem>), RulesError> {
        let (signatures, mut problems) = SignatureSet::load_dir(dir)?;
        let (spam, spam_problems) = SpamRules::load_dir(dir)?;
        problems.extend(spam_problems);
        let exceptions_file = dir.join("exceptions.vdl");
        let exceptions = if exceptions_file.exists() {
            let (exceptions, exception_problems) = Exceptions::load(&exceptions_file)?;
            problems.extend(exception_problems);
            exceptions
        } else {
            Exceptions::empty()
        };
        Ok((
            RuleSet {
                signatures,
                spam,
                exceptions,
            },
            problems,
        ))
    }

    /// The definitions built into SIE (the shipped `vdl/` files).
    pub fn shipped() -> Result<(RuleSet, Vec<LoadProblem>), RulesError> {
        let dir = std::env::temp_dir().join(format!("sie-shipped-vdl.{}", std::process::id()));
        let loaded = write_shipped(&dir)
            .map_err(|source| RulesError::Io {
                path: dir.clone(),
                source,
            })
            .and_then(|()| RuleSet::load_dir(&dir));
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    /// Scans the EICAR test file attached to a message (it must be a virus), and a
    /// plain message (it must be clean), with no envelope exceptions could match.
    /// Returns a one-line account of the set.
    pub fn self_test(&self) -> Result<String, String> {
        let eicar = crate::scan::virus::eicar_test_file();
        let infected = format!(
            "From: selftest@localhost\nSubject: self-test\nMIME-Version: 1.0\n\
             Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\
             Content-Type: text/plain\n\nself-test\n--b\n\
             Content-Type: application/octet-stream; name=\"selftest.txt\"\n\
             Content-Transfer-Encoding: base64\n\n{}\n--b--\n",
            crate::scan::encode_base64(&eicar)
        );
        let clean = "From: selftest@localhost\nTo: postmaster@localhost\nSubject: Minutes of \
                     the meeting\nDate: Sun, 22 Nov 2026 10:00:00 +0000\nMessage-Id: \
                     <selftest@localhost>\n\nThe minutes are below.\n";
        let options = ScanOptions::default();
        let nobody = Envelope {
            sender: "<selftest@localhost>",
            recipients: &[],
        };
        let verdict = scan_message_with_rules(infected.as_bytes(), &options, self, &nobody);
        if verdict.kind != VerdictKind::Virus {
            return Err(format!(
                "the EICAR test file was not detected (verdict {}: {})",
                verdict.kind.as_str(),
                verdict.reason
            ));
        }
        let verdict = scan_message_with_rules(clean.as_bytes(), &options, self, &nobody);
        if verdict.kind != VerdictKind::Clean {
            return Err(format!(
                "a plain message was judged {} ({} at {}: {})",
                verdict.kind.as_str(),
                verdict.name,
                verdict.location,
                verdict.reason
            ));
        }
        Ok(format!(
            "{} signatures, {} spam rules (threshold {:.1}), {} exceptions; self-test passed",
            self.signatures.len(),
            self.spam.len(),
            self.spam.threshold(),
            self.exceptions.len()
        ))
    }
}

/// Compiles and self-tests a staged definitions directory: the validator of
/// [`install::install`].
pub fn validate_dir(dir: &Path) -> Result<(String, Vec<LoadProblem>), String> {
    let (rules, problems) = RuleSet::load_dir(dir).map_err(|e| e.to_string())?;
    let summary = rules.self_test()?;
    Ok((summary, problems))
}

/// Writes the shipped definitions into `dir` (created if missing).
fn write_shipped(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in SHIPPED_DEFINITIONS {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

/// Installs the shipped definitions when a spool has no set installed yet, so every
/// process scans with them from the first pass.
pub fn ensure_installed(
    spool: &Spool,
    wait: crate::lockfile::LockWait<'_>,
) -> Result<Option<install::InstallReport>, install::InstallError> {
    if install::installed_set(spool).is_some() {
        return Ok(None);
    }
    let source = spool.work_dir(&format!("shipped-vdl.{}", std::process::id()));
    let result = write_shipped(&source)
        .map_err(|source_err| install::InstallError::Io {
            path: source.clone(),
            source: source_err,
        })
        .and_then(|()| install::install(spool, &source, &validate_dir, wait));
    let _ = std::fs::remove_dir_all(&source);
    match result {
        // Another process installed a set meanwhile: theirs is as good.
        Err(_) if install::installed_set(spool).is_some() => Ok(None),
        other => other.map(Some),
    }
}

/// The rule set a work process scans with: the installed set, reloaded at the start
/// of a pass when `current` points elsewhere; a set that fails to load leaves the
/// loaded one in force.
#[derive(Debug)]
pub struct ActiveRules {
    loaded_from: Option<PathBuf>,
    rules: Arc<RuleSet>,
}

/// What [`ActiveRules::refresh`] did.
#[derive(Debug)]
pub enum Refresh {
    Unchanged,
    Loaded {
        from: PathBuf,
        problems: usize,
    },
    /// The new set failed to load; the old one stays.
    Failed {
        from: PathBuf,
        error: String,
    },
}

impl ActiveRules {
    /// The built-in signatures only, until the first refresh loads a set.
    pub fn new() -> ActiveRules {
        ActiveRules {
            loaded_from: None,
            rules: Arc::new(RuleSet {
                signatures: SignatureSet::builtin(),
                spam: SpamRules::empty(),
                exceptions: Exceptions::empty(),
            }),
        }
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        Arc::clone(&self.rules)
    }

    pub fn refresh(&mut self, spool: &Spool) -> Refresh {
        let Some(set) = install::installed_set(spool) else {
            return Refresh::Unchanged;
        };
        if self.loaded_from.as_ref() == Some(&set) {
            return Refresh::Unchanged;
        }
        match RuleSet::load_dir(&set) {
            Ok((rules, problems)) => {
                self.rules = Arc::new(rules);
                self.loaded_from = Some(set.clone());
                Refresh::Loaded {
                    from: set,
                    problems: problems.len(),
                }
            }
            Err(e) => {
                // Remember the failure so it is reported once, not every pass.
                self.loaded_from = Some(set.clone());
                Refresh::Failed {
                    from: set,
                    error: e.to_string(),
                }
            }
        }
    }
}

impl Default for ActiveRules {
    fn default() -> Self {
        ActiveRules::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_definitions_load_cleanly_and_pass_the_self_test() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in SHIPPED_DEFINITIONS {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let (rules, problems) = RuleSet::load_dir(dir.path()).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let summary = rules.self_test().unwrap();
        assert!(summary.contains("self-test passed"), "{summary}");
    }

    #[test]
    fn a_set_that_flags_plain_mail_fails_the_self_test() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("spam.vdl"),
            "body EVERYTHING /minutes/\nscore EVERYTHING 10\n",
        )
        .unwrap();
        let (rules, _) = RuleSet::load_dir(dir.path()).unwrap();
        let err = rules.self_test().unwrap_err();
        assert!(err.contains("plain message was judged spam"), "{err}");
        assert_eq!(validate_dir(dir.path()).unwrap_err(), err);
    }

    macro_rules! five_seconds {
        () => {
            crate::lockfile::LockWait::uninterrupted(
                std::time::Duration::from_secs(5),
                &mut |_: &str, _: &crate::lockfile::Holder| {},
            )
        };
    }

    #[test]
    fn ensure_installed_puts_the_shipped_set_in_place_once() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path(), 2);
        spool.ensure_tree().unwrap();
        let report = ensure_installed(&spool, five_seconds!()).unwrap().unwrap();
        assert!(
            report.summary.contains("self-test passed"),
            "{}",
            report.summary
        );
        assert!(ensure_installed(&spool, five_seconds!()).unwrap().is_none());
        let mut active = ActiveRules::new();
        assert!(matches!(
            active.refresh(&spool),
            Refresh::Loaded { problems: 0, .. }
        ));
        assert!(matches!(active.refresh(&spool), Refresh::Unchanged));
        assert!(!active.rules().spam.is_empty());
    }
}
