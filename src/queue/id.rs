//! Queue ids: the part of `qf<ID>`/`df<ID>` after the type prefix. sendmail makes them 14
//! characters (15 where pids pass 999999) of `0-9A-Za-z`; any length up to 18 is accepted
//! because sendmail ignores longer names and admins hand-write short ones.

use std::fmt;

/// The longest id sendmail's queue runner still looks at (`MAXQFNAME` 21 less `qf` and NUL).
pub const MAX_ID_LEN: usize = 18;

/// A validated queue id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(String);

impl QueueId {
    /// Accepts 1 to 18 ASCII letters and digits.
    pub fn parse(text: &str) -> Option<QueueId> {
        let valid = !text.is_empty()
            && text.len() <= MAX_ID_LEN
            && text.bytes().all(|b| b.is_ascii_alphanumeric());
        valid.then(|| QueueId(text.to_string()))
    }

    /// Splits a queue file name such as `qfXYZ` into its type (`qf`, `df`, ...) and id.
    pub fn from_file_name(name: &str) -> Option<(&str, QueueId)> {
        let kind = name.get(..2)?;
        if !kind.ends_with('f') {
            return None;
        }
        Some((kind, QueueId::parse(&name[2..])?))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn qf_name(&self) -> String {
        format!("qf{}", self.0)
    }

    pub fn df_name(&self) -> String {
        format!("df{}", self.0)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sendmail_ids_of_14_and_15_characters() {
        assert!(QueueId::parse("6ALNNrgA023896").is_some());
        assert!(QueueId::parse("6ALNNrgA1023896").is_some());
        assert!(QueueId::parse("ZZhand00000001").is_some());
    }

    #[test]
    fn rejects_paths_and_overlong_names() {
        assert!(QueueId::parse("../etc").is_none());
        assert!(QueueId::parse("").is_none());
        assert!(QueueId::parse(&"a".repeat(19)).is_none());
        assert!(QueueId::parse("a b").is_none());
    }

    #[test]
    fn splits_file_names() {
        let (kind, id) = QueueId::from_file_name("df6ALNNrgA023896").unwrap();
        assert_eq!(kind, "df");
        assert_eq!(id.as_str(), "6ALNNrgA023896");
        assert!(QueueId::from_file_name(".gitkeep").is_none());
        assert!(QueueId::from_file_name("qf").is_none());
    }
}
