//! The passwords file: `user:<argon2id PHC string>` per line, mode 0600, rewritten
//! atomically by `sie-web passwd`. Plain passwords are never stored or logged.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::queue::durable::write_atomic;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}:{line}: not `user:<argon2 hash>`")]
    Invalid { path: PathBuf, line: usize },
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the password is empty")]
    Empty,
    #[error("the two passwords differ; nothing changed")]
    Mismatch,
}

/// The hashes, in file order.
#[derive(Debug, Clone, Default)]
pub struct Passwords {
    entries: Vec<(String, String)>,
}

impl Passwords {
    /// Reads the file; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Passwords, PasswordError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(PasswordError::Io {
                    path: path.to_path_buf(),
                    error: source,
                });
            }
        };
        let mut entries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parsed = line
                .split_once(':')
                .filter(|(_, hash)| PasswordHash::new(hash).is_ok());
            let Some((user, hash)) = parsed else {
                return Err(PasswordError::Invalid {
                    path: path.to_path_buf(),
                    line: index + 1,
                });
            };
            entries.push((user.to_string(), hash.to_string()));
        }
        Ok(Passwords { entries })
    }

    /// Checks a password; an unknown user costs the same work as a wrong password,
    /// so timing does not tell which user names exist.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let stored = self
            .entries
            .iter()
            .find(|(name, _)| name == user)
            .map(|(_, hash)| hash.as_str());
        let hash = stored.unwrap_or(DUMMY_HASH.as_str());
        let verified = PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        verified && stored.is_some()
    }

    /// Sets (or replaces) a user's password and rewrites `path` atomically, mode 0600.
    pub fn set(&mut self, path: &Path, user: &str, password: &str) -> Result<(), PasswordError> {
        if password.is_empty() {
            return Err(PasswordError::Empty);
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| PasswordError::Hash(e.to_string()))?
            .to_string();
        match self.entries.iter_mut().find(|(name, _)| name == user) {
            Some(entry) => entry.1 = hash,
            None => self.entries.push((user.to_string(), hash)),
        }
        let text: String = self
            .entries
            .iter()
            .map(|(name, hash)| format!("{name}:{hash}\n"))
            .collect();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| PasswordError::Io {
                path: dir.to_path_buf(),
                error: source,
            })?;
        }
        write_atomic(path, text.as_bytes(), 0o600).map_err(|source| PasswordError::Io {
            path: path.to_path_buf(),
            error: source,
        })
    }
}

/// A new password from standard input: one line, or on a terminal asked twice with
/// echo off.
pub fn read_new_password() -> Result<String, PasswordError> {
    let stdin = std::io::stdin();
    let stdin_error = |source| PasswordError::Io {
        path: PathBuf::from("standard input"),
        error: source,
    };
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(stdin_error)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = ask_hidden("New password: ").map_err(stdin_error)?;
    let second = ask_hidden("Again: ").map_err(stdin_error)?;
    if first != second {
        return Err(PasswordError::Mismatch);
    }
    Ok(first)
}

fn ask_hidden(prompt: &str) -> std::io::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    let saved = tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Verified against when the user is unknown: the hash of a random salt string.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(salt.as_str().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .unwrap_or_default()
});

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn set_then_verify_and_the_file_keeps_no_plain_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web/passwords");
        let mut passwords = Passwords::load(&path).unwrap();
        passwords.set(&path, "rick", "s3cret horse").unwrap();
        passwords.set(&path, "mark", "other").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret") && text.starts_with("rick:$argon2id$"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = Passwords::load(&path).unwrap();
        assert!(loaded.verify("rick", "s3cret horse"));
        assert!(!loaded.verify("rick", "other"));
        assert!(loaded.verify("mark", "other"));
        assert!(!loaded.verify("nobody", "other"));
        std::fs::write(&path, "rick:plain\n").unwrap();
        let err = Passwords::load(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("passwords:1: not `user:<argon2 hash>`"),
            "{err}"
        );
    }
}
