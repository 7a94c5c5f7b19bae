//! `solve --write`: puts fitted `t00`, `t0`, `ts` into `[run.queue.<q>]` of the settings
//! file in place. Only those values change: comments, layout and every other key stay
//! byte for byte (toml_edit); a missing table is added at the end. The new file must
//! still load as SIE settings, and replaces the old one atomically (temp file in the same
//! directory, fsync, rename, fsync of the directory) with the old file's mode. Running
//! processes pick the values up before their next pass.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

use super::TuneError;
use super::report::format_value;
use crate::config::{Config, QueueTiming};
use crate::queue::durable::write_atomic;

/// Returns `text` with each queue's timing set, or why it cannot be done.
pub fn update_text(text: &str, timings: &[(String, QueueTiming)]) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("not valid TOML: {e}"))?;
    // Comments after the last key belong to the document's end; a table added there
    // must come after them, not before.
    let mut tail = doc.trailing().as_str().unwrap_or("").to_string();
    for (queue, timing) in timings {
        let mut prefix = "\n".to_string();
        if !has_queue_table(&doc, queue) && !tail.trim().is_empty() {
            if !tail.ends_with('\n') {
                tail.push('\n');
            }
            prefix = format!("{tail}\n");
            doc.set_trailing("");
            tail.clear();
        }
        let table = queue_table(&mut doc, queue, &prefix)?;
        for (key, value) in [("t00", timing.t00), ("t0", timing.t0), ("ts", timing.ts)] {
            set_value(table, key, value).map_err(|e| format!("run.queue.{queue}.{key}: {e}"))?;
        }
    }
    Ok(doc.to_string())
}

fn has_queue_table(doc: &DocumentMut, queue: &str) -> bool {
    doc.get("run")
        .and_then(|run| run.get("queue"))
        .and_then(|queues| queues.get(queue))
        .is_some()
}

/// `run.queue.<queue>` as a table, created (with implicit parents, and `prefix` before
/// its header) when missing.
fn queue_table<'d>(
    doc: &'d mut DocumentMut,
    queue: &str,
    prefix: &str,
) -> Result<&'d mut dyn TableLike, String> {
    let mut at: &mut dyn TableLike = doc.as_table_mut();
    let path = ["run", "queue", queue];
    for (depth, key) in path.iter().enumerate() {
        let last = depth == path.len() - 1;
        if at.get(key).is_none() {
            let mut table = Table::new();
            if last {
                table.decor_mut().set_prefix(prefix);
            } else {
                table.set_implicit(true);
            }
            at.insert(key, Item::Table(table));
        }
        let name = path[..=depth].join(".");
        at = at
            .get_mut(key)
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| format!("{name} is not a table"))?;
    }
    Ok(at)
}

/// Sets `key` to `value`, keeping the spacing and comment around an old value.
fn set_value(table: &mut dyn TableLike, key: &str, value: f64) -> Result<(), String> {
    let mut new: Value = format_value(value)
        .parse()
        .map_err(|e| format!("cannot format {value}: {e}"))?;
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        Some(_) => return Err("is not a number".to_string()),
        None => {
            table.insert(key, Item::Value(new));
        }
    }
    Ok(())
}

/// Writes the timings into the settings file at `path` (a symbolic link is followed, so
/// the file it names is replaced). Returns whether anything changed.
pub fn write_timings(path: &Path, timings: &[(String, QueueTiming)]) -> Result<bool, TuneError> {
    let target = fs::canonicalize(path).map_err(|e| TuneError::io(path, e))?;
    let text = fs::read_to_string(&target).map_err(|e| TuneError::io(&target, e))?;
    let mode = fs::metadata(&target)
        .map_err(|e| TuneError::io(&target, e))?
        .permissions()
        .mode()
        & 0o7777;
    let settings_error = |message: String| TuneError::Settings {
        path: target.clone(),
        message,
    };
    let new = update_text(&text, timings).map_err(settings_error)?;
    if new == text {
        return Ok(false);
    }
    check_loads(&target, &new).map_err(settings_error)?;
    write_atomic(&target, new.as_bytes(), mode).map_err(|e| TuneError::io(&target, e))?;
    Ok(true)
}

/// Loads `text` as SIE settings from a private scratch file, so a file that would not
/// load is never put in place (the processes would keep their old settings and log it).
fn check_loads(target: &Path, text: &str) -> Result<(), String> {
    let scratch = scratch_path(target);
    let result = (|| {
        write_atomic(&scratch, text.as_bytes(), 0o600).map_err(|e| e.to_string())?;
        Config::load(Some(&scratch))
            .map(|_| ())
            .map_err(|e| format!("the updated settings would not load: {e}"))
    })();
    let _ = fs::remove_file(&scratch);
    result
}

fn scratch_path(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    std::env::temp_dir().join(format!(".solve-check.{}.{name}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: QueueTiming = QueueTiming {
        t00: 0.0412,
        t0: 0.006,
        ts: 2.5e-8,
    };

    #[test]
    fn only_the_values_change_and_comments_stay() {
        let text = "\
# site settings
[run]
loop_delay = 0.5   # quick

[run.queue.feed1]   # fitted 2026-11-01
t00 = 0.05          # per pass
t0    =   0.005
ts = 2.0e-8
# end of feed1

[run.limits]
max_depth = 10
";
        let new = update_text(text, &[("feed1".into(), TIMING)]).unwrap();
        let expected = text
            .replace("t00 = 0.05 ", "t00 = 0.0412 ")
            .replace("0.005\n", "0.006\n")
            .replace("2.0e-8", "2.5e-8");
        assert_eq!(new, expected);
    }

    #[test]
    fn a_missing_table_is_added_at_the_end() {
        let text = "# no timing yet\n[run]\nnq = 4\n";
        let new = update_text(text, &[("feed3".into(), TIMING)]).unwrap();
        assert_eq!(
            new,
            format!("{text}\n[run.queue.feed3]\nt00 = 0.0412\nt0 = 0.006\nts = 2.5e-8\n")
        );
        let text = "[run]\nnq = 4\n# last words\n";
        let new = update_text(text, &[("feed2".into(), TIMING), ("feed3".into(), TIMING)]).unwrap();
        assert!(
            new.starts_with(&format!("{text}\n[run.queue.feed2]\nt00 = 0.0412\n")),
            "{new}"
        );
        assert!(
            new.ends_with(
                "ts = 2.5e-8\n\n[run.queue.feed3]\nt00 = 0.0412\nt0 = 0.006\nts = 2.5e-8\n"
            ),
            "{new}"
        );
        let empty = update_text("", &[("feed1".into(), TIMING)]).unwrap();
        assert!(
            empty.contains("[run.queue.feed1]\nt00 = 0.0412\n"),
            "{empty}"
        );
        assert!(
            !empty.contains("[run]") && !empty.contains("[run.queue]"),
            "{empty}"
        );
    }

    #[test]
    fn a_key_that_is_not_a_number_is_refused() {
        let err =
            update_text("[run.queue.feed1.t0]\nx = 1\n", &[("feed1".into(), TIMING)]).unwrap_err();
        assert!(err.contains("run.queue.feed1.t0"), "{err}");
        let err = update_text("run = 3\n", &[("feed1".into(), TIMING)]).unwrap_err();
        assert!(err.contains("run is not a table"), "{err}");
    }

    #[test]
    fn the_file_is_replaced_with_its_mode_and_must_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sie.toml");
        fs::write(&path, "[run]\nnq = 4\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(write_timings(&path, &[("feed2".into(), TIMING)]).unwrap());
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.run.timing("feed2"), TIMING);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert!(!write_timings(&path, &[("feed2".into(), TIMING)]).unwrap());
        let before = fs::read_to_string(&path).unwrap();
        let err = write_timings(&path, &[("feed9".into(), TIMING)]).unwrap_err();
        assert!(err.to_string().contains("would not load"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), before);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file is left behind");
    }
}
