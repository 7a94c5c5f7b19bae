//! The per-pass `Stats:` line, an interface read by `stats`, `solve` and `rotate`:
//! `Stats: vir:0 ext:0 spam:0 vir-ex:0 ext-ex:0 spam-ex:0 clean:1 msgs:1 bytes:2675
//! vf:15.32 vs:17.195 lock:0.085` (vf scan CPU s, vs pass wall s, lock wait s).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatsLine {
    pub vir: u64,
    pub ext: u64,
    pub spam: u64,
    pub vir_ex: u64,
    pub ext_ex: u64,
    pub spam_ex: u64,
    pub clean: u64,
    /// Every message of the pass, including those sent to `error`.
    pub msgs: u64,
    pub bytes: u64,
    /// Scan CPU seconds.
    pub vf: f64,
    /// Whole-pass wall seconds.
    pub vs: f64,
    /// Seconds spent waiting for the queue lock.
    pub lock: f64,
}

impl StatsLine {
    /// Finds and parses the `Stats:` part of a log line (`feed1: Stats: ...`).
    pub fn from_log_line(line: &str) -> Option<StatsLine> {
        let at = line.find("Stats: ")?;
        line[at..].parse().ok()
    }

    /// Messages that went to `error` (not counted in any other field).
    pub fn errors(&self) -> u64 {
        self.msgs.saturating_sub(
            self.vir + self.ext + self.spam + self.vir_ex + self.ext_ex + self.spam_ex + self.clean,
        )
    }
}

impl fmt::Display for StatsLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Stats: vir:{} ext:{} spam:{} vir-ex:{} ext-ex:{} spam-ex:{} clean:{} msgs:{} bytes:{} vf:{:.2} vs:{:.3} lock:{:.3}",
            self.vir,
            self.ext,
            self.spam,
            self.vir_ex,
            self.ext_ex,
            self.spam_ex,
            self.clean,
            self.msgs,
            self.bytes,
            self.vf,
            self.vs,
            self.lock
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Stats line: {0}")]
pub struct StatsLineError(String);

const FIELDS: [&str; 12] = [
    "vir", "ext", "spam", "vir-ex", "ext-ex", "spam-ex", "clean", "msgs", "bytes", "vf", "vs",
    "lock",
];

impl FromStr for StatsLine {
    type Err = StatsLineError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| StatsLineError(format!("{why} in {text:?}"));
        let rest = text
            .trim()
            .strip_prefix("Stats:")
            .ok_or_else(|| bad("no \"Stats:\" prefix"))?;
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for field in rest.split_whitespace() {
            let (key, value) = field
                .split_once(':')
                .ok_or_else(|| bad("field without ':'"))?;
            if !FIELDS.contains(&key) || fields.insert(key, value).is_some() {
                return Err(bad(&format!("unknown or repeated field {key}")));
            }
        }
        let value = |key: &str| {
            fields
                .get(key)
                .copied()
                .ok_or_else(|| bad(&format!("no {key}")))
        };
        let int = |key: &str| value(key)?.parse::<u64>().map_err(|_| bad(key));
        let float = |key: &str| {
            value(key)?
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(key))
        };
        Ok(StatsLine {
            vir: int("vir")?,
            ext: int("ext")?,
            spam: int("spam")?,
            vir_ex: int("vir-ex")?,
            ext_ex: int("ext-ex")?,
            spam_ex: int("spam-ex")?,
            clean: int("clean")?,
            msgs: int("msgs")?,
            bytes: int("bytes")?,
            vf: float("vf")?,
            vs: float("vs")?,
            lock: float("lock")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_LINE: &str = "Stats: vir:0 ext:0 spam:0 vir-ex:0 ext-ex:0 spam-ex:0 clean:1 msgs:1 bytes:2675 vf:15.32 vs:17.195 lock:0.085";

    #[test]
    fn the_spec_example_round_trips_exactly() {
        let line: StatsLine = SPEC_LINE.parse().unwrap();
        assert_eq!(line.clean, 1);
        assert_eq!(line.bytes, 2675);
        assert_eq!(line.vs, 17.195);
        assert_eq!(line.to_string(), SPEC_LINE);
        let logged = format!("feed1: {SPEC_LINE}");
        assert_eq!(StatsLine::from_log_line(&logged), Some(line));
    }

    #[test]
    fn broken_lines_are_refused() {
        assert!("Stats: vir:0".parse::<StatsLine>().is_err());
        assert!(
            SPEC_LINE
                .replace("vs:17.195", "vs:x")
                .parse::<StatsLine>()
                .is_err()
        );
        assert!(
            SPEC_LINE
                .replace("vs:17.195", "vs:NaN")
                .parse::<StatsLine>()
                .is_err()
        );
        assert!(format!("{SPEC_LINE} new:1").parse::<StatsLine>().is_err());
        assert!("feed1: Clean, moving: x".parse::<StatsLine>().is_err());
    }

    #[test]
    fn errors_are_what_the_counters_leave_over() {
        let line = StatsLine {
            vir: 1,
            clean: 3,
            msgs: 5,
            ..StatsLine::default()
        };
        assert_eq!(line.errors(), 1);
    }

    proptest::proptest! {
        #[test]
        fn display_then_parse_is_identity(
            counts in proptest::array::uniform9(0u64..1_000_000),
            vf in 0u32..10_000_000, vs in 0u32..10_000_000, lock in 0u32..10_000_000,
        ) {
            let line = StatsLine {
                vir: counts[0], ext: counts[1], spam: counts[2], vir_ex: counts[3],
                ext_ex: counts[4], spam_ex: counts[5], clean: counts[6], msgs: counts[7],
                bytes: counts[8], vf: f64::from(vf) / 100.0, vs: f64::from(vs) / 1000.0,
                lock: f64::from(lock) / 1000.0,
            };
            let text = line.to_string();
            let back: StatsLine = text.parse().unwrap();
            proptest::prop_assert_eq!(back.to_string(), text);
        }
    }
}
