//! Self-tuning (`solve`): the passes recorded in the work logs' `Stats:` lines, the least
//! squares fit of each queue's `t00 + t0*msgs + ts*bytes`, the settings file update, and a
//! simulator of the feed and work loops to compare feed policies before changing them.
//!
//! - [`samples`]: passes read from live and rotated (gzip) logs.
//! - [`solver`]: the fit (SVD of the column-scaled design), its quality and refusals.
//! - [`report`]: the table, JSON lines and lines to paste into the settings.
//! - [`settings`]: `solve --write`, an atomic in-place edit that keeps comments.
//! - [`trace`], [`simulate`], [`chart`]: arrivals, the event simulation, the SVG chart.

pub mod chart;
pub mod report;
pub mod samples;
pub mod settings;
pub mod simulate;
pub mod solver;
pub mod trace;

use std::path::PathBuf;

/// Errors of the tuning tools; each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// (The I/O error is part of the message, not a separate cause, so it is printed once.)
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Settings { path: PathBuf, message: String },
}

impl TuneError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> TuneError {
        TuneError::Io {
            path: path.into(),
            error,
        }
    }
}

/// Sort key of a queue name: see [`queue_order`].
pub type QueueKey = (bool, String, u64, String);

/// Sort key for queue names: the name without its trailing number, then the number
/// (`feed2` before `feed10`); `all` (the pooled fit) last.
pub fn queue_order(name: &str) -> QueueKey {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = name.split_at(name.len() - digits);
    (
        name == "all",
        stem.to_string(),
        number.parse().unwrap_or(0),
        name.to_string(),
    )
}
