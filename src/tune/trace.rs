//! Arrival traces for the simulator: when each message was queued in `in` and its size.
//! Read from a trace file (`<epoch seconds> <bytes>` lines, or feed log lines
//! `<id> <bytes> -> q<k>` timed by their sendmail queue ids) or generated: Poisson
//! arrivals with sizes drawn from a mix of size ranges, from a seeded generator.

use std::io::BufRead;
use std::path::Path;

use chrono::{Datelike, TimeZone, Utc};

use super::TuneError;
use super::samples::open_log;

/// One message arriving in `in`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Epoch seconds (or any clock: only differences matter).
    pub at: f64,
    pub bytes: u64,
}

/// Reads a trace (gzip or plain). Each line is one of:
/// - `<seconds> <bytes>`: arrival time (epoch seconds, fractions allowed) and size;
/// - a feed log line `feed: <id> <bytes> -> q<k>`: the time is the one sendmail encodes
///   in the first six characters of its queue ids (year mod 60, month, day, hour, minute,
///   second in `0-9A-Za-x`, UTC; one-second resolution), the century taken as the latest
///   not after next year;
/// - anything else (comments, dated and error lines) is skipped.
///
/// Arrivals come back sorted by time. A trace with no usable line is an error.
pub fn read_trace(path: &Path) -> Result<Vec<Arrival>, TuneError> {
    let this_year = Utc::now().year();
    let mut arrivals = Vec::new();
    let mut undated_ids = 0usize;
    let reader = open_log(path)?;
    for line in reader.lines() {
        let line = line.map_err(|e| TuneError::io(path, e))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [at, bytes] = words[..]
            && let (Ok(at), Ok(bytes)) = (at.parse::<f64>(), bytes.parse::<u64>())
            && at.is_finite()
        {
            arrivals.push(Arrival { at, bytes });
            continue;
        }
        if let Some(arrow) = words.iter().position(|w| *w == "->")
            && arrow >= 2
            && words.get(arrow + 1).is_some_and(|q| q.starts_with('q'))
            && let Ok(bytes) = words[arrow - 1].parse::<u64>()
        {
            match sendmail_id_time(words[arrow - 2], this_year) {
                Some(at) => arrivals.push(Arrival { at, bytes }),
                None => undated_ids += 1,
            }
        }
    }
    if arrivals.is_empty() {
        let message = if undated_ids > 0 {
            format!(
                "{undated_ids} feed lines, but their queue ids carry no sendmail time; \
                 give `<epoch seconds> <bytes>` lines instead"
            )
        } else {
            "no arrivals: expected `<epoch seconds> <bytes>` or feed log lines \
             `<id> <bytes> -> q<k>`"
                .to_string()
        };
        return Err(TuneError::Parse {
            path: path.to_path_buf(),
            line: 0,
            message,
        });
    }
    arrivals.sort_by(|a, b| a.at.total_cmp(&b.at));
    Ok(arrivals)
}

/// The UTC time sendmail 8.12+ encodes at the start of a queue id (`g4NEHl121396` ->
/// 2002-05-23 14:17:47 UTC), or `None` when the id does not have that shape.
pub fn sendmail_id_time(id: &str, this_year: i32) -> Option<f64> {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx";
    let id = id.strip_suffix(':').unwrap_or(id);
    if id.len() < 8 {
        return None;
    }
    let value = |i: usize| {
        DIGITS
            .iter()
            .position(|&d| Some(&d) == id.as_bytes().get(i))
            .map(|v| v as i32)
    };
    let (year60, month, day) = (value(0)?, value(1)?, value(2)?);
    let (hour, minute, second) = (value(3)?, value(4)?, value(5)?);
    // tm_year (years since 1900) mod 60: the latest such year not after next year.
    let newest = this_year - 1900 + 1;
    let tm_year = newest - (newest - year60).rem_euclid(60);
    let when = Utc
        .with_ymd_and_hms(
            1900 + tm_year,
            u32::try_from(month + 1).ok()?,
            u32::try_from(day).ok()?,
            u32::try_from(hour).ok()?,
            u32::try_from(minute).ok()?,
            u32::try_from(second.min(59)).ok()?,
        )
        .single()?;
    Some(when.timestamp() as f64)
}

/// A small deterministic generator (SplitMix64): the same seed gives the same trace on
/// every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Exponential with the given rate.
    pub fn exponential(&mut self, rate: f64) -> f64 {
        -(1.0 - self.uniform()).ln() / rate
    }
}

/// Message sizes as weighted ranges, each drawn log-uniformly:
/// `70:2k-20k,22:20k-200k,6:200k-2m,2:2m-20m` (k = 1024, m = 1024^2, g = 1024^3).
#[derive(Debug, Clone, PartialEq)]
pub struct SizeMix {
    pub ranges: Vec<(f64, u64, u64)>,
}

impl Default for SizeMix {
    /// Mostly small mail with a tail of attachments.
    fn default() -> SizeMix {
        "70:2k-20k,22:20k-200k,6:200k-2m,2:2m-20m".parse().unwrap()
    }
}

impl std::str::FromStr for SizeMix {
    type Err = String;

    fn from_str(text: &str) -> Result<SizeMix, String> {
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let bad = || format!("{part:?}: expected WEIGHT:MIN-MAX, e.g. 70:2k-20k");
            let (weight, range) = part.trim().split_once(':').ok_or_else(bad)?;
            let (lo, hi) = range.split_once('-').ok_or_else(bad)?;
            let weight: f64 = weight.parse().map_err(|_| bad())?;
            let (lo, hi) = (
                parse_size(lo).ok_or_else(bad)?,
                parse_size(hi).ok_or_else(bad)?,
            );
            if !(weight.is_finite() && weight > 0.0) || lo == 0 || hi < lo {
                return Err(bad());
            }
            ranges.push((weight, lo, hi));
        }
        Ok(SizeMix { ranges })
    }
}

impl SizeMix {
    pub fn draw(&self, rng: &mut Rng) -> u64 {
        let total: f64 = self.ranges.iter().map(|r| r.0).sum();
        let mut pick = rng.uniform() * total;
        let mut chosen = self.ranges[self.ranges.len() - 1];
        for range in &self.ranges {
            if pick < range.0 {
                chosen = *range;
                break;
            }
            pick -= range.0;
        }
        let (lo, hi) = ((chosen.1 as f64).ln(), (chosen.2 as f64).ln());
        (lo + (hi - lo) * rng.uniform()).exp().round() as u64
    }
}

/// `2000`, `2k`, `1.5m`, `1g` (binary multiples).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last()? {
        (at, c) if c.is_ascii_alphabetic() => (&text[..at], c.to_ascii_lowercase()),
        _ => (text, ' '),
    };
    let scale = match unit {
        ' ' | 'b' => 1.0,
        'k' => 1024.0,
        'm' => 1024.0 * 1024.0,
        'g' => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| (value * scale).round() as u64)
}

/// `count` Poisson arrivals at `rate` per second from time 0, sizes from `mix`.
pub fn generate(count: usize, seed: u64, rate: f64, mix: &SizeMix) -> Vec<Arrival> {
    let mut rng = Rng::new(seed);
    let mut at = 0.0;
    (0..count)
        .map(|_| {
            at += rng.exponential(rate);
            Arrival {
                at,
                bytes: mix.draw(&mut rng),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendmail_ids_carry_their_queue_time() {
        // The spec's example: queued 10:17:47 EDT, 23 May 2002.
        let at = sendmail_id_time("g4NEHl121396", 2026).unwrap();
        assert_eq!(at, 1022163467.0);
        assert!(
            sendmail_id_time("ID000000000001", 2026).is_none(),
            "month 'D' = 13"
        );
        assert!(sendmail_id_time("short", 2026).is_none());
        // A 2026 id (tm_year 126 = 6 mod 60 = '6'), read in 2026.
        let at = sendmail_id_time("6ALNNrgA023896", 2026).unwrap();
        assert_eq!(
            at,
            Utc.with_ymd_and_hms(2026, 11, 21, 23, 23, 53)
                .unwrap()
                .timestamp() as f64
        );
    }

    #[test]
    fn traces_read_plain_and_feed_log_lines_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace");
        std::fs::write(
            &path,
            "# t bytes\n100.5 2000\n100.25 30000\nfeed: g4NEHl121396 2675 -> q1\nfeed: Error, moving: x\n",
        )
        .unwrap();
        let arrivals = read_trace(&path).unwrap();
        assert_eq!(arrivals.len(), 3);
        assert_eq!(
            arrivals[0],
            Arrival {
                at: 100.25,
                bytes: 30000
            }
        );
        assert_eq!(arrivals[2].bytes, 2675);
        std::fs::write(&path, "feed: ID000000000001 2675 -> q1\n").unwrap();
        let err = read_trace(&path).unwrap_err().to_string();
        assert!(err.contains("carry no sendmail time"), "{err}");
    }

    #[test]
    fn generated_traces_follow_the_mix_and_the_seed() {
        let mix: SizeMix = "3:1k-2k,1:1m-1m".parse().unwrap();
        let a = generate(4000, 7, 20.0, &mix);
        assert_eq!(a, generate(4000, 7, 20.0, &mix));
        let big = a.iter().filter(|x| x.bytes == 1 << 20).count();
        assert!((900..1100).contains(&big), "{big}");
        assert!(
            a.iter()
                .all(|x| x.bytes == 1 << 20 || (1024..=2048).contains(&x.bytes))
        );
        let span = a.last().unwrap().at;
        assert!((180.0..220.0).contains(&span), "{span}");
        assert!("70:2k".parse::<SizeMix>().is_err());
        assert_eq!(parse_size("1.5m"), Some(1_572_864));
        assert_eq!(SizeMix::default().ranges.len(), 4);
    }
}
