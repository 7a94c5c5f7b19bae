//! The users file: which console user may see (`/r`) or also act on (`/rw`, the
//! default) the mail of which domains. One line per domain, `all` for every domain:
//!
//! ```text
//! # domain userid/access,... - default is rw
//! all rick,mark,frodo/r
//! example.org purple/r,bcdv
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a user may do with a domain's mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    ReadWrite,
}

/// The domains one grant covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    All,
    /// A domain, lower case.
    Domain(String),
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("{path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Every user's grants, as read from the users file.
#[derive(Debug, Clone, Default)]
pub struct Users {
    grants: BTreeMap<String, Vec<(Scope, Access)>>,
}

impl Users {
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
            path: path.to_path_buf(),
            error: source,
        })?;
        Users::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Users, UsersError> {
        let mut users = Users::default();
        for (index, line) in text.lines().enumerate() {
            let invalid = |message: String| UsersError::Invalid {
                path: path.to_path_buf(),
                line: index + 1,
                message,
            };
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some((domain, list)) = line.split_once(char::is_whitespace) else {
                return Err(invalid(format!("{line:?}: expected a domain, then users")));
            };
            let scope = if domain.eq_ignore_ascii_case("all") {
                Scope::All
            } else if is_domain(domain) {
                Scope::Domain(domain.to_ascii_lowercase())
            } else {
                return Err(invalid(format!("{domain:?} is not a domain name or `all`")));
            };
            for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (user, access) = match item.split_once('/') {
                    None => (item, Access::ReadWrite),
                    Some((user, "r")) => (user, Access::Read),
                    Some((user, "rw")) => (user, Access::ReadWrite),
                    Some((_, other)) => {
                        return Err(invalid(format!(
                            "{item:?}: access must be /r or /rw, not /{other}"
                        )));
                    }
                };
                if !is_user_name(user) {
                    return Err(invalid(format!(
                        "{user:?} is not a user name (letters, digits, . _ -)"
                    )));
                }
                users
                    .grants
                    .entry(user.to_string())
                    .or_default()
                    .push((scope.clone(), access));
            }
        }
        Ok(users)
    }

    pub fn contains(&self, user: &str) -> bool {
        self.grants.contains_key(user)
    }

    /// The user's rights, or `None` for a user the file does not name.
    pub fn rights(&self, user: &str) -> Option<Rights> {
        self.grants.get(user).map(|grants| Rights {
            grants: grants.clone(),
        })
    }
}

/// One user's grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rights {
    grants: Vec<(Scope, Access)>,
}

impl Rights {
    /// The best access any grant gives on `domain` (lower case).
    pub fn access(&self, domain: &str) -> Option<Access> {
        self.grants
            .iter()
            .filter(|(scope, _)| match scope {
                Scope::All => true,
                Scope::Domain(d) => d == domain,
            })
            .map(|(_, access)| *access)
            .max()
    }

    /// Whether a grant covers every domain.
    pub fn has_all(&self) -> bool {
        self.grants.iter().any(|(scope, _)| *scope == Scope::All)
    }

    /// Whether the user may act on something anywhere (shows the action controls).
    pub fn may_write_somewhere(&self) -> bool {
        self.grants.iter().any(|(_, a)| *a == Access::ReadWrite)
    }

    /// The domains named for this user, sorted, with the best access on each.
    pub fn named_domains(&self) -> Vec<(String, Access)> {
        let mut domains: BTreeMap<String, Access> = BTreeMap::new();
        for (scope, _) in &self.grants {
            if let Scope::Domain(d) = scope
                && let Some(access) = self.access(d)
            {
                domains.insert(d.clone(), access);
            }
        }
        domains.into_iter().collect()
    }

    /// May the user see a message with this envelope?
    pub fn may_view(&self, sender: &str, recipients: &[String]) -> bool {
        address_domain(sender).is_some_and(|d| self.access(&d).is_some())
            || recipients
                .iter()
                .filter_map(|r| address_domain(r))
                .any(|d| self.access(&d).is_some())
    }

    /// May the user release, delete, rescan or download it? Read-write on the
    /// sender's domain (outbound mail), or on the domain of every recipient.
    pub fn may_act(&self, sender: &str, recipients: &[String]) -> bool {
        let rw = |domain: Option<String>| {
            domain.is_some_and(|d| self.access(&d) == Some(Access::ReadWrite))
        };
        rw(address_domain(sender))
            || (!recipients.is_empty() && recipients.iter().all(|r| rw(address_domain(r))))
    }
}

/// The domain of an envelope address (`<user@Example.ORG>` gives `example.org`);
/// `None` for the null sender and local names.
pub fn address_domain(address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty()).then_some(domain)
}

fn is_domain(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Names a user may have: also what the passwords file and the session hold.
pub fn is_user_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "# domain userid/access,... - default is rw\nall rick,mark,frodo/r\nexample.org purple/r,bcdv\n";

    fn users() -> Users {
        Users::parse(Path::new("users"), EXAMPLE).unwrap()
    }

    #[test]
    fn the_documented_example_reads_as_it_says() {
        let users = users();
        let rick = users.rights("rick").unwrap();
        assert_eq!(rick.access("any.test"), Some(Access::ReadWrite));
        let frodo = users.rights("frodo").unwrap();
        assert_eq!(frodo.access("example.org"), Some(Access::Read));
        assert!(frodo.has_all() && !frodo.may_write_somewhere());
        let purple = users.rights("purple").unwrap();
        assert_eq!(purple.access("example.org"), Some(Access::Read));
        assert_eq!(purple.access("other.test"), None);
        let bcdv = users.rights("bcdv").unwrap();
        assert_eq!(bcdv.access("example.org"), Some(Access::ReadWrite));
        assert_eq!(
            bcdv.named_domains(),
            [("example.org".into(), Access::ReadWrite)]
        );
        assert!(users.rights("nobody").is_none());
    }

    #[test]
    fn messages_belong_to_recipient_domains_and_outbound_to_the_sender_domain() {
        let bcdv = users().rights("bcdv").unwrap();
        let inbound = vec!["<a@Example.ORG>".to_string()];
        assert!(bcdv.may_view("<x@else.test>", &inbound));
        assert!(bcdv.may_act("<x@else.test>", &inbound));
        let mixed = vec!["<a@example.org>".to_string(), "<b@else.test>".to_string()];
        assert!(bcdv.may_view("<x@else.test>", &mixed));
        assert!(
            !bcdv.may_act("<x@else.test>", &mixed),
            "would deliver to else.test"
        );
        let outbound = vec!["<b@else.test>".to_string()];
        assert!(bcdv.may_act("<me@example.org>", &outbound));
        assert!(!bcdv.may_view("<>", &outbound));
        assert!(!bcdv.may_view("<x@sub.example.org>", &outbound));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let err = Users::parse(Path::new("users"), "all rick\nexample.org joe/x\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("users:2:") && err.contains("/x"), "{err}");
        let err = Users::parse(Path::new("users"), "example.org\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("users:1:"), "{err}");
        let err = Users::parse(Path::new("users"), "ex/ample joe\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a domain"), "{err}");
    }
}
