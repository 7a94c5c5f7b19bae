//! The hourly limit of notifications per address, kept in `sie/notify/rate.json` so it
//! survives restarts: what goes over the limit is held and listed in one summary to
//! that address once the last hour has room again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::NotifyError;
use crate::queue::durable::write_atomic;

const HOUR: f64 = 3600.0;
/// Held notifications listed by name in one summary; the rest are only counted, so a
/// flood cannot grow the state file without bound.
const MAX_LISTED: usize = 500;

/// One notification held back by the limit, as its summary lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub judged: f64,
    pub id: String,
    pub verdict: String,
    pub rule: String,
    pub sender: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct AddressState {
    /// Epoch seconds of the sends within the last hour.
    sent: Vec<f64>,
    held: Vec<Held>,
    /// Held notifications beyond `MAX_LISTED`.
    held_unlisted: u64,
    summary_attempts: u32,
    next_summary: f64,
}

/// A summary due to one address.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub to: String,
    pub held: Vec<Held>,
    pub unlisted: u64,
    pub attempts: u32,
}

impl Summary {
    pub fn count(&self) -> u64 {
        self.held.len() as u64 + self.unlisted
    }
}

/// The limit and its state.
#[derive(Debug)]
pub struct RateLimit {
    path: PathBuf,
    per_hour: u32,
    addresses: BTreeMap<String, AddressState>,
    changed: bool,
}

impl RateLimit {
    /// Loads the state from `path` (none yet: empty). `per_hour` 0 means no limit.
    pub fn load(path: &Path, per_hour: u32) -> Result<RateLimit, NotifyError> {
        let addresses = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| NotifyError::BadJob {
                path: path.to_path_buf(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(NotifyError::io(path, e)),
        };
        Ok(RateLimit {
            path: path.to_path_buf(),
            per_hour,
            addresses,
            changed: false,
        })
    }

    /// An empty state at `path`, for when the old one cannot be read.
    pub fn empty(path: &Path, per_hour: u32) -> RateLimit {
        RateLimit {
            path: path.to_path_buf(),
            per_hour,
            addresses: BTreeMap::new(),
            changed: true,
        }
    }

    pub fn per_hour(&self) -> u32 {
        self.per_hour
    }

    /// True when one more notification to `to` stays within the limit.
    pub fn allows(&mut self, to: &str, now: f64) -> bool {
        if self.per_hour == 0 {
            return true;
        }
        let key = to.to_ascii_lowercase();
        let Some(state) = self.addresses.get_mut(&key) else {
            return true;
        };
        let before = state.sent.len();
        state.sent.retain(|&at| now - at < HOUR);
        self.changed |= state.sent.len() != before;
        state.sent.len() < self.per_hour as usize
    }

    pub fn record_sent(&mut self, to: &str, now: f64) {
        if self.per_hour == 0 {
            return;
        }
        self.state(to).sent.push(now);
    }

    pub fn hold(&mut self, to: &str, held: Held) {
        let state = self.state(to);
        if state.held.len() < MAX_LISTED {
            state.held.push(held);
        } else {
            state.held_unlisted += 1;
        }
    }

    /// Summaries that may go out now: addresses with held notifications whose last
    /// hour has room and whose previous summary attempt is not too recent.
    pub fn summaries_due(&mut self, now: f64) -> Vec<Summary> {
        let waiting: Vec<String> = self
            .addresses
            .iter()
            .filter(|(_, s)| !s.held.is_empty() && s.next_summary <= now)
            .map(|(to, _)| to.clone())
            .collect();
        let mut due = Vec::new();
        for to in waiting {
            if self.allows(&to, now) {
                let state = &self.addresses[&to];
                due.push(Summary {
                    held: state.held.clone(),
                    unlisted: state.held_unlisted,
                    attempts: state.summary_attempts,
                    to,
                });
            }
        }
        due
    }

    pub fn summary_sent(&mut self, to: &str, now: f64) {
        let per_hour = self.per_hour;
        let state = self.state(to);
        state.held.clear();
        state.held_unlisted = 0;
        state.summary_attempts = 0;
        state.next_summary = 0.0;
        if per_hour > 0 {
            state.sent.push(now);
        }
    }

    pub fn summary_failed(&mut self, to: &str, next_attempt: f64) {
        let state = self.state(to);
        state.summary_attempts += 1;
        state.next_summary = next_attempt;
    }

    /// Writes the state durably if it changed, dropping addresses with nothing left.
    pub fn save(&mut self, now: f64) -> Result<(), NotifyError> {
        if !self.changed {
            return Ok(());
        }
        for state in self.addresses.values_mut() {
            state.sent.retain(|&at| now - at < HOUR);
        }
        self.addresses
            .retain(|_, s| !s.sent.is_empty() || !s.held.is_empty());
        let mut bytes = serde_json::to_vec(&self.addresses).expect("rate state serializes");
        bytes.push(b'\n');
        write_atomic(&self.path, &bytes, 0o600).map_err(|e| NotifyError::io(&self.path, e))?;
        self.changed = false;
        Ok(())
    }

    fn state(&mut self, to: &str) -> &mut AddressState {
        self.changed = true;
        self.addresses.entry(to.to_ascii_lowercase()).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(id: &str) -> Held {
        Held {
            judged: 1.0,
            id: id.into(),
            verdict: "virus".into(),
            rule: "Eicar".into(),
            sender: "s@x.test".into(),
        }
    }

    #[test]
    fn the_limit_counts_the_last_hour_per_address_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rate.json");
        let mut rate = RateLimit::load(&path, 2).unwrap();
        assert!(rate.allows("A@x.test", 0.0));
        rate.record_sent("A@x.test", 0.0);
        rate.record_sent("a@x.test", 10.0);
        assert!(
            !rate.allows("a@x.test", 20.0),
            "addresses compare without case"
        );
        assert!(rate.allows("b@x.test", 20.0));
        rate.save(20.0).unwrap();
        let mut again = RateLimit::load(&path, 2).unwrap();
        assert!(!again.allows("a@x.test", 3599.0));
        assert!(
            again.allows("a@x.test", 3600.5),
            "the first send left the window"
        );
        let mut unlimited = RateLimit::load(&path, 0).unwrap();
        assert!(unlimited.allows("a@x.test", 30.0));
    }

    #[test]
    fn held_notifications_make_one_summary_when_there_is_room() {
        let dir = tempfile::tempdir().unwrap();
        let mut rate = RateLimit::load(&dir.path().join("rate.json"), 1).unwrap();
        rate.record_sent("a@x.test", 0.0);
        rate.hold("a@x.test", held("ID1"));
        rate.hold("a@x.test", held("ID2"));
        assert!(rate.summaries_due(100.0).is_empty(), "no room yet");
        let due = rate.summaries_due(3601.0);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count(), 2);
        rate.summary_failed("a@x.test", 4000.0);
        assert!(rate.summaries_due(3700.0).is_empty(), "backing off");
        assert_eq!(rate.summaries_due(4000.0)[0].attempts, 1);
        rate.summary_sent("a@x.test", 4000.0);
        assert!(rate.summaries_due(9000.0).is_empty());
        assert!(
            !rate.allows("a@x.test", 4001.0),
            "the summary counts as a send"
        );
    }
}
