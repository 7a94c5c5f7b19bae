//! Choosing entries by id or shell-style pattern (`*`, `?`), and moving the chosen
//! ones between queues with sendmail's locking, for the admin tools.

use regex::Regex;

use super::{Entry, Error, LockOutcome, QueueId, Result, Spool, list_dir, lock_entry, move_entry};

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

/// What became of one entry chosen for a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveOutcome {
    Moved,
    /// Left where it was, with the reason.
    Skipped(String),
}

/// Moves every entry of queue `from` whose id matches to queue `to`, oldest first. An
/// entry in use (flocked by the MTA or SIE), incomplete, gone, or whose id `to` already
/// holds is skipped with its reason; nothing is ever waited for or overwritten.
pub fn move_matching(
    spool: &Spool,
    from: &str,
    to: &str,
    patterns: &IdPatterns,
) -> Result<Vec<(QueueId, MoveOutcome)>> {
    let (from_dir, to_dir) = (spool.queue_dir(from)?, spool.queue_dir(to)?);
    let listing = list_dir(&from_dir)?;
    let mut outcomes = Vec::new();
    for entry in patterns.select(&listing.entries) {
        let outcome = match lock_entry(&from_dir, &entry.id)? {
            LockOutcome::Locked(mut locked) => match move_entry(spool, &mut locked, &to_dir) {
                Ok(()) => MoveOutcome::Moved,
                Err(e) => MoveOutcome::Skipped(e.to_string()),
            },
            LockOutcome::Incomplete(_) => {
                MoveOutcome::Skipped("incomplete control file (being written?)".into())
            }
            LockOutcome::Busy => MoveOutcome::Skipped("in use (locked by the MTA or SIE)".into()),
            LockOutcome::Replaced => {
                MoveOutcome::Skipped("control file replaced since listed".into())
            }
            LockOutcome::Vanished => MoveOutcome::Skipped("gone since listed".into()),
        };
        outcomes.push((entry.id.clone(), outcome));
    }
    Ok(outcomes)
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
