//! `sie-web`, the web queue console: mail admins log in, see the queues of the domains
//! the users file gives them, read quarantined messages, and release, delete, rescan or
//! download them. Every move goes through the queue layer under sendmail's lock.
//!
//! Decisions, for admins:
//! - A message belongs to the domains of its envelope recipients and, as **outbound**
//!   mail, to the domain of its envelope sender: a user sees a message when any
//!   recipient's domain or the sender's domain is one of theirs. Domains match exactly
//!   (case-insensitive); a subdomain needs its own line.
//! - Acting (release, delete, rescan, download) needs read-write on the sender's
//!   domain, or read-write on the domain of every recipient: releasing delivers to all
//!   of them, so a user may not release mail for domains that are not theirs.
//! - Release writes a durable copy (df, then qf) into `release`, then moves the entry to
//!   `out` under its lock, and reports success only when the entry is in `out`. Release
//!   is offered from `virus`, `ext`, `spam`, `error` and `delete`; delete (a move to
//!   `delete`, never an unlink) from those quarantines and `release`.
//! - Rescan scans with the installed definitions and shows the verdict; it moves
//!   nothing and rewrites no result file. The admin then releases or deletes.
//! - Sessions live in memory: restarting `sie-web` logs everyone out.

pub mod actions;
pub mod audit;
pub mod messages;
mod pages;
pub mod passwords;
pub mod server;
pub mod session;
pub mod tls;
pub mod users;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::queue::Spool;

/// `[init.web]`: where the console listens and where its files are. Paths left unset
/// are under `<spool>/sie/web/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// `address:port` to listen on.
    pub listen: String,
    /// PEM certificate chain; with `tls_key`, connections may use TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Refuse plain HTTP connections (needs `tls_cert` and `tls_key`).
    pub require_tls: bool,
    /// Who may see which domains (`<domain> <user>[/r|/rw],...`).
    pub users_file: Option<PathBuf>,
    /// argon2 password hashes, written by `sie-web passwd`.
    pub passwords_file: Option<PathBuf>,
    /// One line per login, logout and action.
    pub audit_log: Option<PathBuf>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: "127.0.0.1:8025".to_string(),
            tls_cert: None,
            tls_key: None,
            require_tls: false,
            users_file: None,
            passwords_file: None,
            audit_log: None,
        }
    }
}

impl WebConfig {
    /// The console's own directory, `<spool>/sie/web`.
    pub fn web_dir(spool: &Spool) -> PathBuf {
        spool.state_dir().join("web")
    }

    pub fn users_path(&self, spool: &Spool) -> PathBuf {
        self.users_file
            .clone()
            .unwrap_or_else(|| WebConfig::web_dir(spool).join("users"))
    }

    pub fn passwords_path(&self, spool: &Spool) -> PathBuf {
        self.passwords_file
            .clone()
            .unwrap_or_else(|| WebConfig::web_dir(spool).join("passwords"))
    }

    pub fn audit_path(&self, spool: &Spool) -> PathBuf {
        self.audit_log
            .clone()
            .unwrap_or_else(|| WebConfig::web_dir(spool).join("audit.log"))
    }
}

/// Why the console cannot start or a command failed; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Users(#[from] users::UsersError),
    #[error(transparent)]
    Passwords(#[from] passwords::PasswordError),
    #[error("{path}: {message}")]
    Tls { path: PathBuf, message: String },
    #[error("require_tls is set but tls_cert and tls_key are not both given")]
    TlsRequiredWithoutCertificate,
    #[error("cannot listen on {address}: {error}")]
    Listen {
        address: String,
        error: std::io::Error,
    },
    #[error("user {user:?} is not in the users file {path}")]
    UnknownUser { user: String, path: PathBuf },
}

impl WebError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> WebError {
        WebError::Io {
            path: path.to_path_buf(),
            error: source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn init_web_settings_and_their_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sie.toml");
        std::fs::write(
            &path,
            "[init.web]\nlisten = \"127.0.0.1:9443\"\ntls_cert = \"/etc/sie/cert.pem\"\ntls_key = \"/etc/sie/key.pem\"\nrequire_tls = true\naudit_log = \"/var/log/sie-web.log\"\n",
        )
        .unwrap();
        let web = Config::load(Some(&path)).unwrap().init.web;
        assert_eq!(web.listen, "127.0.0.1:9443");
        assert!(web.require_tls);
        let spool = Spool::new("/var/spool/sie", 5);
        assert_eq!(web.audit_path(&spool), Path::new("/var/log/sie-web.log"));
        assert_eq!(
            web.users_path(&spool),
            Path::new("/var/spool/sie/sie/web/users")
        );
        let defaults = Config::load(None).unwrap().init.web;
        assert_eq!(defaults.listen, "127.0.0.1:8025");
        assert_eq!(
            defaults.passwords_path(&spool),
            Path::new("/var/spool/sie/sie/web/passwords")
        );
        std::fs::write(&path, "[init.web]\nlisten_on = \"x\"\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("sie.toml:2:") && err.contains("listen_on"),
            "{err}"
        );
    }
}
