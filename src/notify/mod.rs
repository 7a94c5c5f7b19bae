//! Notifications of quarantined messages: the work loop records one job per non-clean
//! message in `sie/notify/` after its move is durable, and the `notify` loop decides who
//! is told (`notify.toml`), renders the templates of `notify/` and sends them over SMTP.
//!
//! Decisions (also in the README's "Notifications" section):
//! - A message's move never waits on a notification: the work loop only writes a small
//!   job file once the moves are durable, and a failure to write it is logged, never a
//!   failed move (a crash in between loses the notification, never the message).
//! - The sender of spam is never told (backscatter), whatever `notify.toml` says; nor is
//!   a sender that looks null, automatic or forged (see [`policy::sender_not_told`]).
//! - A failed send stays in its job with a next-attempt time (exponential backoff up to
//!   `retry_max`); after `max_age` or a permanent refusal it is moved to
//!   `sie/notify/failed/` with a log line, never dropped.
//! - Over the hourly limit of one address, notifications are held and that address gets
//!   one summary listing them as soon as the limit allows, instead of a flood.

pub mod job;
pub mod outbox;
pub mod policy;
pub mod rate;
pub mod template;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use job::{Notice, record_notices};
pub use outbox::Outbox;

/// Errors of the notification module; each names the file (or job) involved.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: not a notification job: {source}")]
    BadJob {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Settings(String),
}

impl NotifyError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> NotifyError {
        NotifyError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How the SMTP connection is secured (`init.notify.tls`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain SMTP: for a relay on this host or a trusted network.
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS; refuses to send if the server cannot.
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// `[init.notify]`: where and how notifications are sent. Without this table SIE sends
/// no notifications and the work loops record no jobs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyInit {
    /// SMTP server (a relay that delivers the notifications).
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: TlsMode,
    /// PEM file of extra CA certificates trusted for `starttls`/`tls` (a local CA).
    pub ca_file: Option<PathBuf>,
    /// The `From:` of every notification; empty means `postmaster@<hello_name>`.
    pub from: String,
    /// Envelope sender; empty means the null sender `<>`, so a notification that
    /// bounces never bounces back to SIE.
    pub envelope_from: String,
    /// Name given in EHLO; empty means this host's name.
    pub hello_name: String,
    /// Who is told of what: `notify.toml`; the templates are read from its directory.
    /// Relative paths are taken from the current directory, like `spool_root`.
    pub config: PathBuf,
    /// Seconds one SMTP session may take before it counts as failed.
    pub timeout: f64,
    /// Seconds before the first retry of a failed send; doubled at each failure.
    pub retry_min: f64,
    /// Longest wait between two attempts, in seconds.
    pub retry_max: f64,
    /// Seconds after which a notification that still could not be sent is moved to
    /// `sie/notify/failed/`.
    pub max_age: f64,
    /// Notifications per address per hour; the rest wait for one summary. 0: no limit.
    pub rate_limit: u32,
    /// Seconds the notify loop sleeps between passes.
    pub loop_delay: f64,
}

impl Default for NotifyInit {
    fn default() -> Self {
        NotifyInit {
            smtp_host: "127.0.0.1".to_string(),
            smtp_port: 25,
            tls: TlsMode::None,
            ca_file: None,
            from: String::new(),
            envelope_from: String::new(),
            hello_name: String::new(),
            config: PathBuf::from("notify/notify.toml"),
            timeout: 30.0,
            retry_min: 60.0,
            retry_max: 3600.0,
            max_age: 5.0 * 86400.0,
            rate_limit: 30,
            loop_delay: 5.0,
        }
    }
}

impl NotifyInit {
    /// The EHLO name: the configured one, else this host's name.
    pub fn hello(&self) -> String {
        if !self.hello_name.is_empty() {
            return self.hello_name.clone();
        }
        nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".to_string())
    }

    /// The `From:` address of notifications.
    pub fn from_address(&self) -> String {
        if self.from.is_empty() {
            format!("postmaster@{}", self.hello())
        } else {
            self.from.clone()
        }
    }

    /// The directory of the templates: the one holding `notify.toml`.
    pub fn template_dir(&self) -> PathBuf {
        self.config
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}
