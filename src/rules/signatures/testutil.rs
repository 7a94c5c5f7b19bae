//! Helpers shared by the signature tests: a set loaded from files written on the spot,
//! and the two kinds of object a scan passes.

use super::{ObjectInfo, SignatureError, SignatureSet, Target};
use crate::rules::LoadProblem;

pub const FILE: ObjectInfo<'static> = ObjectInfo {
    target: Target::File,
    container: None,
};

pub const MAIL: ObjectInfo<'static> = ObjectInfo {
    target: Target::Mail,
    container: None,
};

/// Loads a set from `(file name, content)` pairs.
pub fn load(files: &[(&str, &str)]) -> Result<(SignatureSet, Vec<LoadProblem>), SignatureError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    SignatureSet::load_dir(dir.path())
}

/// Loads a set that must load without problems.
pub fn set(files: &[(&str, &str)]) -> SignatureSet {
    let (set, problems) = load(files).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    set
}

/// The name of the signature `data` matches, if any.
pub fn name(set: &SignatureSet, data: &[u8], object: &ObjectInfo) -> Option<String> {
    set.scan(data, object).map(|m| m.name)
}
