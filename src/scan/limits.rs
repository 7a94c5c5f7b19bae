//! Scan limits: the [`Limits`] an admin sets, and the [`Budget`] that one
//! message's scan draws on, shared by the MIME walk and archive expansion.
//! Going over a limit is an [`Exceeded`], which the scan reports as the
//! verdict `unscannable` naming the limit and where it was hit.
//!
//! # Memory
//!
//! Everything a scan looks at is held in memory; nothing is written to disk.
//! With `M` the message size, what one scan holds at a time is:
//! - the message itself (`M`, read by the caller);
//! - mail-parser's tree over it, which borrows the bytes, except that text
//!   in a charset other than UTF-8 is converted: at most about `M` more;
//! - decoded MIME parts and every byte extracted from archives: all counted
//!   against `max_decoded_bytes` (archive members as they are read, 64 KiB
//!   at a time), and base64 or quoted-printable never grows a body, so at
//!   most `max_decoded_bytes` plus the one part whose decoding went over it
//!   (at most `M`). Members are held only while they and their own members
//!   are scanned, each cut off at `max_member_bytes`;
//! - the zip reader's directory: one entry per member, and a zip listing
//!   more members than `max_parts` has left is refused before it is read.
//!
//! So a scan never holds much more than `3 × M + max_decoded_bytes`,
//! whatever the input: with the defaults and a 100 MiB message, about
//! 500 MiB at worst. `tests/hostile_input.rs` measures a 100 MiB message
//! and a zip bomb against `2 × M + max_decoded_bytes + 32 MiB` above the
//! message; both use far less (about 76 MiB and 19 MiB).

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

/// Bounds on the work one message may cost; going over one makes the
/// message `unscannable` instead of tying up or crashing the scanner.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Nesting of multiparts, attached messages and archives, counted
    /// together: a zip attached to a top-level multipart is at depth 1, its
    /// members at depth 2, the members of a `.tar.gz` among them at depth 4
    /// (the gzip's content, the tar, at 3). The scan recurses once per
    /// level, so this also bounds its stack use: the default is tested on
    /// the 2 MiB stack of a scanning thread, hundreds of levels are not.
    pub max_depth: usize,
    /// Objects scanned: MIME parts, uuencoded files and archive members
    /// (directories included), over the whole message.
    pub max_parts: usize,
    /// Bytes of decoded content over all parts and archive members; members
    /// count as they are extracted, so a content nested in archives counts
    /// once per level.
    pub max_decoded_bytes: u64,
    /// Bytes extracted from any one archive member (zip member, gzip or
    /// bzip2 content, tar member). Decompression stops as soon as a member
    /// passes it, whatever size the archive claims.
    pub max_member_bytes: u64,
    /// Wall-clock seconds for one message, checked before each part and
    /// member and between read chunks while decompressing; 0 (or less)
    /// sets no limit.
    pub max_scan_seconds: f64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 20,
            max_parts: 10_000,
            max_decoded_bytes: 200 * 1024 * 1024,
            max_member_bytes: 100 * 1024 * 1024,
            max_scan_seconds: 60.0,
        }
    }
}

/// Which limit was exceeded; [`Limit::name`] is its setting name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Depth,
    Parts,
    DecodedBytes,
    MemberBytes,
    ScanSeconds,
}

impl Limit {
    /// The setting's name, also the verdict name.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Depth => "max_depth",
            Limit::Parts => "max_parts",
            Limit::DecodedBytes => "max_decoded_bytes",
            Limit::MemberBytes => "max_member_bytes",
            Limit::ScanSeconds => "max_scan_seconds",
        }
    }

    /// Whether the rest of the message can still be scanned after this
    /// limit was hit at one object: depth and member size concern that
    /// object alone, the others the whole message.
    pub fn is_local(self) -> bool {
        matches!(self, Limit::Depth | Limit::MemberBytes)
    }
}

/// A limit exceeded at `location`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Exceeded {
    pub limit: Limit,
    /// The limit's configured value, as written in messages.
    pub value: String,
    /// The part or member at which the scan hit it.
    pub location: String,
}

impl Exceeded {
    pub fn new(limit: Limit, value: impl fmt::Display, location: impl Into<String>) -> Exceeded {
        Exceeded {
            limit,
            value: value.to_string(),
            location: location.into(),
        }
    }

    fn describe(&self) -> String {
        let value = &self.value;
        match self.limit {
            Limit::Depth => format!("parts and archives are nested more than {value} levels deep"),
            Limit::Parts => format!("the message has more than {value} parts and archive members"),
            Limit::DecodedBytes => {
                format!("the decoded parts and archive members add up to more than {value} bytes")
            }
            Limit::MemberBytes => format!("an archive member expands to more than {value} bytes"),
            Limit::ScanSeconds => format!("scanning took more than {value} seconds"),
        }
    }
}

/// What one message's scan has used of its [`Limits`] so far.
///
/// Counters are `Cell`s so the MIME walker and the scanner it calls can both
/// draw on one budget through shared references.
pub struct Budget<'l> {
    limits: &'l Limits,
    parts: Cell<usize>,
    decoded_bytes: Cell<u64>,
    deadline: Option<Instant>,
}

impl fmt::Debug for Budget<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("parts", &self.parts.get())
            .field("decoded_bytes", &self.decoded_bytes.get())
            .finish_non_exhaustive()
    }
}

impl<'l> Budget<'l> {
    /// A fresh budget whose clock starts now. A `max_scan_seconds` that is
    /// not a finite positive number sets no time limit.
    pub fn start(limits: &'l Limits) -> Budget<'l> {
        let seconds = limits.max_scan_seconds;
        let deadline = (seconds.is_finite() && seconds > 0.0)
            .then(|| Duration::try_from_secs_f64(seconds).ok())
            .flatten()
            .and_then(|allowed| Instant::now().checked_add(allowed));
        Budget {
            limits,
            parts: Cell::new(0),
            decoded_bytes: Cell::new(0),
            deadline,
        }
    }

    pub fn limits(&self) -> &'l Limits {
        self.limits
    }

    /// Fails if an object at `depth` is nested too deep.
    pub fn check_depth(
        &self,
        depth: usize,
        location: impl FnOnce() -> String,
    ) -> Result<(), Exceeded> {
        if depth > self.limits.max_depth {
            return Err(Exceeded::new(
                Limit::Depth,
                self.limits.max_depth,
                location(),
            ));
        }
        Ok(())
    }

    /// Counts one more part or member, and checks the clock. `location` is
    /// only built when a limit is hit: most objects never need it.
    pub fn count_part(&self, location: impl FnOnce() -> String) -> Result<(), Exceeded> {
        let parts = self.parts.get() + 1;
        self.parts.set(parts);
        if parts > self.limits.max_parts {
            return Err(Exceeded::new(
                Limit::Parts,
                self.limits.max_parts,
                location(),
            ));
        }
        self.check_time(location)
    }

    /// How many more parts and members may be counted.
    pub fn parts_left(&self) -> usize {
        self.limits.max_parts.saturating_sub(self.parts.get())
    }

    /// Counts `bytes` more decoded or extracted bytes.
    pub fn add_decoded(
        &self,
        bytes: usize,
        location: impl FnOnce() -> String,
    ) -> Result<(), Exceeded> {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        let total = self.decoded_bytes.get().saturating_add(bytes);
        self.decoded_bytes.set(total);
        if total > self.limits.max_decoded_bytes {
            return Err(Exceeded::new(
                Limit::DecodedBytes,
                self.limits.max_decoded_bytes,
                location(),
            ));
        }
        Ok(())
    }

    /// Fails once the message's wall-clock time is up.
    pub fn check_time(&self, location: impl FnOnce() -> String) -> Result<(), Exceeded> {
        match self.deadline {
            Some(deadline) if Instant::now() > deadline => Err(Exceeded::new(
                Limit::ScanSeconds,
                self.limits.max_scan_seconds,
                location(),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> String {
        "part 1".to_string()
    }

    #[test]
    fn part_count_is_shared_and_limited() {
        let limits = Limits {
            max_parts: 2,
            ..Limits::default()
        };
        let budget = Budget::start(&limits);
        assert!(budget.count_part(here).is_ok());
        assert_eq!(budget.parts_left(), 1);
        assert!(budget.count_part(here).is_ok());
        let exceeded = budget.count_part(here).unwrap_err();
        assert_eq!(
            (exceeded.limit.name(), exceeded.location.as_str()),
            ("max_parts", "part 1")
        );
        assert_eq!(budget.parts_left(), 0);
    }

    #[test]
    fn decoded_bytes_add_up() {
        let limits = Limits {
            max_decoded_bytes: 10,
            ..Limits::default()
        };
        let budget = Budget::start(&limits);
        assert!(budget.add_decoded(6, here).is_ok());
        let exceeded = budget.add_decoded(5, here).unwrap_err();
        assert_eq!(exceeded.limit, Limit::DecodedBytes);
        assert_eq!(
            exceeded.to_string(),
            "the decoded parts and archive members add up to more than 10 bytes"
        );
    }

    #[test]
    fn depth_beyond_the_limit_fails() {
        let budget_limits = Limits::default();
        let budget = Budget::start(&budget_limits);
        assert!(budget.check_depth(20, here).is_ok());
        assert_eq!(
            budget.check_depth(21, here).unwrap_err().limit,
            Limit::Depth
        );
    }

    #[test]
    fn time_runs_out() {
        let limits = Limits {
            max_scan_seconds: 1e-9,
            ..Limits::default()
        };
        let budget = Budget::start(&limits);
        std::thread::sleep(Duration::from_millis(2));
        let exceeded = budget.check_time(here).unwrap_err();
        assert_eq!(exceeded.limit.name(), "max_scan_seconds");
        for unlimited in [0.0, -1.0, f64::INFINITY, f64::NAN, 1e300] {
            let limits = Limits {
                max_scan_seconds: unlimited,
                ..Limits::default()
            };
            assert!(
                Budget::start(&limits).check_time(here).is_ok(),
                "{unlimited}"
            );
        }
    }

    #[test]
    fn only_depth_and_member_size_are_local() {
        assert!(Limit::Depth.is_local() && Limit::MemberBytes.is_local());
        assert!(!Limit::Parts.is_local() && !Limit::ScanSeconds.is_local());
    }
}
