//! The virus signature set: SIE's `virus*.vdl` files and ClamAV databases (`.ndb`
//! `.hdb` `.hsb` `.ldb` `.fp` `.sfp` `.ign2`) compiled into one immutable set that
//! matches an object the way ClamAV 1.4.6 does (CLAMAV.md), in one pass of an anchor index.
//!
//! Matching, in ClamAV's order (measured with `clamscan`):
//! 1. raw pass: body signatures (target-specific before generic, static before
//!    wildcard, earliest first), then whole-object hashes (MD5, SHA-1, SHA-256),
//!    then logical signatures in file order;
//! 2. for a `Target::File` object ClamAV types as text: the same over the normalised
//!    text (`text.rs`) with target-7 and target-0 signatures.
//!
//! A `Target::Mail` object is the raw message: target-4 and target-0 signatures and
//! hashes, no normalised pass (measured: ClamAV does not normalise the raw message).
//! Objects of 5 bytes or less are never matched: ClamAV 1.4.6 skips them
//! ("File too small").

mod anchors;
pub(crate) mod body;
mod compile;
pub(crate) mod logical;
mod set;
#[cfg(test)]
mod testutil;
pub(crate) mod text;
pub(crate) mod vdl;
mod verify;

use std::path::{Path, PathBuf};

use body::{Offset, Pattern};
use logical::Expr;

use crate::rules::LoadProblem;

pub use set::SignatureSet;

/// Which kind of object is scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A decoded MIME part or an archive member.
    File,
    /// The raw message as queued.
    Mail,
}

/// What is being scanned: its kind and the ClamAV type name of its immediate parent
/// (`"CL_TYPE_ZIP"`, `"CL_TYPE_MAIL"`, ...), `None` for a top-level object.
#[derive(Debug, Clone, Copy)]
pub struct ObjectInfo<'a> {
    pub target: Target,
    pub container: Option<&'a str>,
}

/// The signature that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureMatch {
    pub name: String,
}

/// Why a definitions directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line ClamAV itself refuses, which makes it refuse the whole database.
    #[error("{0} (ClamAV refuses this database)")]
    Rejected(LoadProblem),
}

/// Whole-object hash kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum HashKind {
    Md5,
    Sha1,
    Sha256,
}

/// One parsed definition, before compilation.
#[derive(Debug)]
pub(crate) enum Def {
    Body(BodyDef),
    Logical(LogicalDef),
    Hash(HashDef),
    /// `.fp` / `.sfp`: objects with this hash are clean.
    Allow(HashDef),
    /// `.ign2`: drop the signature of this name (as written, without `.UNOFFICIAL`),
    /// optionally only the one whose line has this MD5.
    Ignore {
        name: Box<str>,
        line_md5: Option<Vec<u8>>,
    },
}

#[derive(Debug)]
pub(crate) struct BodyDef {
    pub(crate) name: Box<str>,
    /// ClamAV target type: 0 any, 4 mail, 7 normalised text.
    pub(crate) target: u8,
    pub(crate) offset: Offset,
    /// ClamAV would put it in its Boyer-Moore matcher (reported before wildcard ones).
    pub(crate) boyer_moore: bool,
    pub(crate) pattern: Pattern,
}

#[derive(Debug)]
pub(crate) struct HashDef {
    pub(crate) name: Box<str>,
    pub(crate) kind: HashKind,
    /// Zero-padded past the kind's digest length.
    pub(crate) digest: [u8; 32],
    /// `None` for `*` (any size).
    pub(crate) size: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct LogicalDef {
    pub(crate) name: Box<str>,
    pub(crate) target: u8,
    pub(crate) file_size: Option<(u64, u64)>,
    pub(crate) container: Option<Box<str>>,
    pub(crate) expr: Expr,
    pub(crate) subs: Vec<SubDef>,
}

#[derive(Debug)]
pub(crate) enum SubDef {
    /// One or two forms (`::wa` matches wide and plain; their counts add up).
    Body {
        offset: Offset,
        forms: Vec<Pattern>,
    },
    Pcre(PcreDef),
}

#[derive(Debug)]
pub(crate) struct PcreDef {
    pub(crate) trigger: Expr,
    pub(crate) regex: regex::bytes::Regex,
    pub(crate) offset: Offset,
    /// `g`: count every match, not just the first.
    pub(crate) global: bool,
    /// `A`: the match must start at the offset.
    pub(crate) anchored: bool,
}

/// True for a file `load_dir` reads as SIE virus definitions.
fn is_virus_vdl(name: &str) -> bool {
    name.starts_with("virus") && name.ends_with(".vdl")
}

impl SignatureSet {
    /// Loads every virus definition file in `dir` (not recursive): `virus*.vdl`, and
    /// ClamAV's `*.hdb *.hsb *.ndb *.ldb *.fp *.sfp *.ign2 *.ign`, in name order with the
    /// ignore lists first. The built-in EICAR signature is always included.
    ///
    /// Lines SIE cannot honour, and bad lines of `.vdl` files, come back as problems
    /// (file and line) and are skipped.
    ///
    /// # Errors
    ///
    /// I/O errors, and a ClamAV file with a line ClamAV refuses (for example a blank
    /// line in a `.ndb`): ClamAV then loads nothing, and neither does SIE.
    pub fn load_dir(dir: &Path) -> Result<(SignatureSet, Vec<LoadProblem>), SignatureError> {
        compile::load_dir(dir)
    }
}
