//! Choosing entries by id or shell-style pattern (`*`, `?`), for the admin tools.

use regex::Regex;

use super::{Entry, Error, Result};

/// A set of id patterns; an entry matches when any pattern matches its whole id.
#[derive(Debug)]
pub struct IdPatterns {
    patterns: Vec<Regex>,
}

impl IdPatterns {
    /// Each pattern is a queue id or a glob of letters, digits, `*` and `?`.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<IdPatterns> {
        let mut compiled = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let pattern = pattern
                .strip_prefix("qf")
                .or_else(|| pattern.strip_prefix("df"))
                .filter(|rest| !rest.is_empty())
                .unwrap_or(pattern);
            let mut regex = String::from("^");
            for c in pattern.chars() {
                match c {
                    '*' => regex.push_str("[0-9A-Za-z]*"),
                    '?' => regex.push_str("[0-9A-Za-z]"),
                    c if c.is_ascii_alphanumeric() => regex.push(c),
                    _ => return Err(Error::BadId(pattern.to_string())),
                }
            }
            regex.push('$');
            compiled.push(Regex::new(&regex).map_err(|_| Error::BadId(pattern.to_string()))?);
        }
        Ok(IdPatterns { patterns: compiled })
    }

    pub fn matches(&self, id: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match(id))
    }

    /// The entries of a listing whose ids match, in listing order.
    pub fn select<'a>(&self, entries: &'a [Entry]) -> Vec<&'a Entry> {
        entries
            .iter()
            .filter(|e| self.matches(e.id.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_ids() {
        let patterns = IdPatterns::new(&["6ALN*", "qfZZhand0000000?"]).unwrap();
        assert!(patterns.matches("6ALNNrgA023896"));
        assert!(patterns.matches("ZZhand00000001"));
        assert!(!patterns.matches("X6ALNNrgA023896"));
        assert!(!patterns.matches("ZZhand000000012"));
    }

    #[test]
    fn path_characters_are_refused() {
        assert!(IdPatterns::new(&["../qfX"]).is_err());
        assert!(IdPatterns::new(&["a/b"]).is_err());
    }
}
