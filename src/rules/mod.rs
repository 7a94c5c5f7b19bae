//! Definitions: the signature set, spam rules and exceptions loaded from a definitions
//! directory (`vdl/`: SIE's own `*.vdl` files plus ClamAV and SpamAssassin files dropped
//! beside them), compiled once and shared read-only by every scan.

pub mod clamav;
pub mod exceptions;
pub mod install;
pub mod signatures;
pub mod spam;

use std::fmt;
use std::path::PathBuf;

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
