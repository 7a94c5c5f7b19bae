//! Times as SIE prints them: log dates like `Thu May 23 10:18:10 EDT 2002` (local time),
//! epoch seconds with milliseconds (`1795303433.250`), and pass ids.

use chrono::{DateTime, Local, TimeZone};

/// Seconds since the epoch, with sub-second precision.
pub fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The log date format, as date(1) prints it.
pub fn log_date(when: DateTime<Local>) -> String {
    let zone = zone_abbreviation(when.timestamp());
    when.format(&format!("%a %b %e %H:%M:%S {zone} %Y"))
        .to_string()
}

/// The local time zone's abbreviation at `epoch` (`EDT`, `CET`, `UTC`), as date(1)
/// prints it; chrono only knows numeric offsets, so this asks the C library.
fn zone_abbreviation(epoch: i64) -> String {
    let time: libc::time_t = epoch;
    // SAFETY: localtime_r writes only into `tm`, which we own; tm_zone then points to
    // static zone data of the C library (or is null), read at once.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&time, &mut tm).is_null() || tm.tm_zone.is_null() {
            return "UTC".to_string();
        }
        std::ffi::CStr::from_ptr(tm.tm_zone)
            .to_string_lossy()
            .into_owned()
    }
}

/// A pass id: local date and time, pid and pass number (`20020523043700.21037.349`).
pub fn pass_id(when: DateTime<Local>, pass: u64) -> String {
    format!(
        "{}.{}.{pass}",
        when.format("%Y%m%d%H%M%S"),
        std::process::id()
    )
}

/// Epoch seconds (with optional fraction) to a local date with milliseconds.
pub fn epoch_to_date(epoch: f64) -> Option<String> {
    if !epoch.is_finite() {
        return None;
    }
    let millis = (epoch * 1000.0).round() as i64;
    let when = Local.timestamp_millis_opt(millis).single()?;
    let zone = zone_abbreviation(when.timestamp());
    Some(
        when.format(&format!("%a %b %e %H:%M:%S%.3f {zone} %Y"))
            .to_string(),
    )
}

/// A date to epoch seconds with milliseconds. Accepts RFC 3339, RFC 2822, the log
/// format, `YYYY-MM-DD HH:MM[:SS[.fff]]` and `YYYYmmddHHMMSS` (local time where no zone
/// is given).
pub fn date_to_epoch(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(when) = DateTime::parse_from_rfc3339(text) {
        return Some(when.timestamp_millis() as f64 / 1000.0);
    }
    if let Ok(when) = DateTime::parse_from_rfc2822(text) {
        return Some(when.timestamp_millis() as f64 / 1000.0);
    }
    let naive_formats = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y%m%d%H%M%S",
        "%a %b %e %H:%M:%S%.f %Y",
    ];
    // A zone abbreviation (EDT, UTC) is ambiguous; the log format is read as local time.
    let without_zone = drop_zone_abbreviation(text);
    for format in naive_formats {
        for candidate in [text, without_zone.as_str()] {
            if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(candidate, format)
                && let Some(when) = Local.from_local_datetime(&naive).earliest()
            {
                return Some(when.timestamp_millis() as f64 / 1000.0);
            }
        }
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let when = Local
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .earliest()?;
    Some(when.timestamp_millis() as f64 / 1000.0)
}

fn drop_zone_abbreviation(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let zone_like = |word: &str| {
        word.chars().all(|c| c.is_ascii_alphabetic())
            || word.starts_with(['+', '-']) && word[1..].chars().all(|c| c.is_ascii_digit())
    };
    if words.len() == 6 && zone_like(words[4]) {
        let mut kept = words.clone();
        kept.remove(4);
        kept.join(" ")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_date_round_trip_with_milliseconds() {
        let epoch = 1795303433.25;
        let date = epoch_to_date(epoch).unwrap();
        assert!(date.contains(".250"), "{date}");
        assert_eq!(date_to_epoch(&date), Some(epoch));
    }

    #[test]
    fn common_date_forms_parse() {
        assert_eq!(date_to_epoch("2026-11-21T23:23:53Z"), Some(1795303433.0));
        assert_eq!(
            date_to_epoch("Sat, 21 Nov 2026 23:23:53 +0000"),
            Some(1795303433.0)
        );
        assert!(date_to_epoch("20261121232353").is_some());
        assert!(date_to_epoch("2026-11-21").is_some());
        assert!(date_to_epoch("not a date").is_none());
    }

    #[test]
    fn pass_ids_and_log_dates_have_the_log_shape() {
        let when = Local.timestamp_opt(1795303433, 0).unwrap();
        let id = pass_id(when, 349);
        assert_eq!(id.len(), 14 + 1 + std::process::id().to_string().len() + 4);
        assert!(id.ends_with(".349"));
        let date = log_date(when);
        assert!(date.ends_with(" 2026"), "{date}");
        assert_eq!(date.split_whitespace().count(), 6, "{date}");
    }
}
