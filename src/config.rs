//! Settings: `[init]` is read once at start (spool, queue count), `[run]` before every
//! pass (delays, sizes, NQ, batch timing, extensions, limits). Every key has a default, so
//! no file is needed; a bad file is reported with file, line and key, and a running
//! process keeps its last good run settings. Unknown keys are errors, not warnings: a
//! misspelt key would otherwise be silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::scan::{Limits, ScanOptions};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Settings read once when a process starts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InitConfig {
    /// Spool root; relative paths are taken from the current directory.
    pub spool_root: PathBuf,
    /// Number of feed queues (feed1..feedN), each with its own work process.
    pub feed_queues: usize,
    /// `[init.notify]`: SMTP notifications; absent means none are sent.
    pub notify: Option<crate::notify::NotifyInit>,
    /// `[init.web]`: the web console (`sie-web`).
    pub web: crate::web::WebConfig,
}

impl Default for InitConfig {
    fn default() -> Self {
        InitConfig {
            spool_root: PathBuf::from("queues"),
            feed_queues: 5,
            notify: None,
            web: crate::web::WebConfig::default(),
        }
    }
}

/// Timing parameters of one work queue: a pass over `msgs` messages of `bytes` bytes is
/// predicted to take `t00 + t0*msgs + ts*bytes` seconds (fitted by `solve`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueTiming {
    pub t00: f64,
    pub t0: f64,
    pub ts: f64,
}

impl Default for QueueTiming {
    fn default() -> Self {
        QueueTiming {
            t00: 0.05,
            t0: 0.005,
            ts: 2.0e-8,
        }
    }
}

impl QueueTiming {
    pub fn predict(&self, msgs: usize, bytes: u64) -> f64 {
        self.t00 + self.t0 * msgs as f64 + self.ts * bytes as f64
    }
}

/// How the feed chooses among the queues that admit a message (`run.feed_policy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedPolicy {
    /// The queue with the fewest bytes queued.
    #[default]
    Bytes,
    /// The queue where the message is predicted to be scanned soonest, from
    /// `free.<queue>` and the queue's `t00/t0/ts` (see `feed::eta_queue`).
    Eta,
}

/// Settings re-read before every pass.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Seconds the feed sleeps between passes.
    pub feed_loop_delay: f64,
    /// Seconds a work process sleeps between passes.
    pub loop_delay: f64,
    /// Largest message (qf + df bytes) each feed queue takes; 0 means no limit.
    pub sizes: Vec<u64>,
    /// Queues 1..=nq take any size within their limit; queues above nq take only
    /// messages bigger than every lower queue's limit.
    pub nq: usize,
    /// `"bytes"` (least bytes queued) or `"eta"` (soonest predicted completion).
    pub feed_policy: FeedPolicy,
    /// Seconds a work pass should take at most (the first message is always taken).
    pub maxpass: f64,
    /// Upper bound on messages per pass, whatever the timing predicts.
    pub max_batch: usize,
    /// Seconds before a df without qf, or an incomplete unlocked qf, counts as broken.
    pub orphan_age: f64,
    /// Move clean messages to `good` instead of `out` (hold clean mail, e.g. to try SIE
    /// out without delivering).
    pub good_queue: bool,
    /// Where a message goes when a scan limit stopped its scan (`unscannable`): `error`
    /// (the default: an admin looks at it), `virus` (treat as hostile), or `out`
    /// (deliver unscanned parts: only for sites that prefer delivery to safety).
    pub unscannable_queue: String,
    /// Blocked attachment extensions (without the dot).
    pub exts: Vec<String>,
    /// Decoding limits per message.
    pub limits: LimitsConfig,
    /// Per-queue timing, keyed by queue name (`feed1` ...).
    pub queue: BTreeMap<String, QueueTiming>,
    /// Per-queue scan options, keyed by queue name.
    pub scan: BTreeMap<String, QueueScan>,
}

/// What the scan of one work queue includes (`[run.scan.<queue>]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueScan {
    /// Run the spam rules. Unset: on for queues 1..=nq, off for the big-message
    /// queues above nq (big messages are rarely spam and costly to score).
    pub spam: Option<bool>,
}

/// `[run.limits]`: what one message's scan may cost before it is `unscannable`
/// (see `scan::Limits` for each).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Nesting of MIME parts and archives, counted together.
    pub max_depth: usize,
    /// Parts, uuencoded files and archive members per message.
    pub max_parts: usize,
    /// Decoded and extracted bytes per message, all parts and members together.
    pub max_decoded_bytes: u64,
    /// Bytes extracted from one archive member.
    pub max_member_bytes: u64,
    /// Wall-clock seconds per message; 0 means no limit.
    pub max_scan_seconds: f64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let limits = Limits::default();
        LimitsConfig {
            max_depth: limits.max_depth,
            max_parts: limits.max_parts,
            max_decoded_bytes: limits.max_decoded_bytes,
            max_member_bytes: limits.max_member_bytes,
            max_scan_seconds: limits.max_scan_seconds,
        }
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            feed_loop_delay: 1.0,
            loop_delay: 1.0,
            sizes: vec![2 << 20, 2 << 20, 2 << 20, 2 << 20, 0],
            nq: 4,
            feed_policy: FeedPolicy::Bytes,
            maxpass: 5.0,
            max_batch: 256,
            orphan_age: 600.0,
            good_queue: false,
            unscannable_queue: "error".to_string(),
            exts: ScanOptions::default().exts,
            limits: LimitsConfig::default(),
            queue: BTreeMap::new(),
            scan: BTreeMap::new(),
        }
    }
}

impl RunConfig {
    pub fn timing(&self, queue: &str) -> QueueTiming {
        self.queue.get(queue).copied().unwrap_or_default()
    }

    pub fn orphan_age(&self) -> Duration {
        Duration::from_secs_f64(self.orphan_age)
    }

    /// The scan options of work queue `queue` (`feed<k>`).
    pub fn scan_options(&self, queue: &str) -> ScanOptions {
        let big_message_queue = queue
            .strip_prefix("feed")
            .and_then(|k| k.parse::<usize>().ok())
            .is_some_and(|k| k > self.nq);
        let spam = self
            .scan
            .get(queue)
            .and_then(|scan| scan.spam)
            .unwrap_or(!big_message_queue);
        ScanOptions {
            exts: self.exts.clone(),
            limits: Limits {
                max_depth: self.limits.max_depth,
                max_parts: self.limits.max_parts,
                max_decoded_bytes: self.limits.max_decoded_bytes,
                max_member_bytes: self.limits.max_member_bytes,
                max_scan_seconds: self.limits.max_scan_seconds,
            },
            spam,
        }
    }

    /// Checks values that parse but make no sense, naming the key at fault.
    fn check(&self, feed_queues: usize) -> Result<(), (&'static str, String)> {
        for (key, value) in [
            ("feed_loop_delay", self.feed_loop_delay),
            ("loop_delay", self.loop_delay),
            ("orphan_age", self.orphan_age),
        ] {
            if !(value.is_finite() && (0.0..=86400.0).contains(&value)) {
                return Err((
                    key,
                    format!("run.{key} must be between 0 and 86400 seconds"),
                ));
            }
        }
        let scan_seconds = self.limits.max_scan_seconds;
        if !(scan_seconds.is_finite() && scan_seconds >= 0.0) {
            return Err((
                "max_scan_seconds",
                "run.limits.max_scan_seconds must be 0 (no limit) or a positive number of seconds"
                    .into(),
            ));
        }
        if self.limits.max_depth == 0 || self.limits.max_parts == 0 {
            return Err((
                "limits",
                "run.limits.max_depth and max_parts must be at least 1".into(),
            ));
        }
        if !(self.maxpass.is_finite() && self.maxpass > 0.0) {
            return Err((
                "maxpass",
                "run.maxpass must be a positive number of seconds".into(),
            ));
        }
        if !["error", "virus", "out"].contains(&self.unscannable_queue.as_str()) {
            return Err((
                "unscannable_queue",
                format!(
                    "run.unscannable_queue must be \"error\", \"virus\" or \"out\", not {:?}",
                    self.unscannable_queue
                ),
            ));
        }
        if self.max_batch == 0 {
            return Err(("max_batch", "run.max_batch must be at least 1".into()));
        }
        if self.sizes.len() != feed_queues {
            return Err((
                "sizes",
                format!(
                    "run.sizes lists {} limits but there are {feed_queues} feed queues",
                    self.sizes.len()
                ),
            ));
        }
        if self.nq == 0 || self.nq > feed_queues {
            return Err(("nq", format!("run.nq must be between 1 and {feed_queues}")));
        }
        for (table, names) in [
            ("queue", self.queue.keys().collect::<Vec<_>>()),
            ("scan", self.scan.keys().collect()),
        ] {
            for name in names {
                let known = name
                    .strip_prefix("feed")
                    .and_then(|k| k.parse::<usize>().ok())
                    .is_some_and(|k| (1..=feed_queues).contains(&k));
                if !known {
                    return Err((table, format!("run.{table}.{name}: no such feed queue")));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConfigFile {
    init: InitConfig,
    run: RunConfig,
}

/// A loaded configuration file (or the embedded defaults when there is none).
#[derive(Debug, Clone)]
pub struct Config {
    pub path: Option<PathBuf>,
    pub init: InitConfig,
    pub run: RunConfig,
}

impl Config {
    /// Loads `path`, or the defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config {
                path: None,
                init: InitConfig::default(),
                run: RunConfig::default(),
            });
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_text(path, &text)
    }

    /// Parses and checks the text of the settings file `path`.
    fn from_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file = parse(path, text)?;
        if file.init.feed_queues == 0 || file.init.feed_queues > 99 {
            return Err(invalid(
                path,
                text,
                "feed_queues",
                "init.feed_queues must be between 1 and 99".into(),
            ));
        }
        let mut run = file.run;
        fit_sizes_default(&mut run, text, file.init.feed_queues);
        run.check(file.init.feed_queues)
            .map_err(|(key, message)| invalid(path, text, key, message))?;
        Ok(Config {
            path: Some(path.to_path_buf()),
            init: file.init,
            run,
        })
    }
}

/// The default `sizes` fit five queues; with another count and no `sizes` in the file,
/// the last queue is the unlimited one and the others keep the default limit.
fn fit_sizes_default(run: &mut RunConfig, text: &str, feed_queues: usize) {
    if key_line(text, "sizes").is_none() && run.sizes.len() != feed_queues {
        let limit = RunConfig::default().sizes[0];
        run.sizes = vec![limit; feed_queues];
        run.sizes[feed_queues - 1] = 0;
        run.nq = run.nq.min(feed_queues.saturating_sub(1)).max(1);
    }
}

fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0);
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            message: e.message().to_string(),
        }
    })
}

fn invalid(path: &Path, text: &str, key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line: key_line(text, key).unwrap_or(0),
        message,
    }
}

/// The line where `key` is set (or its table starts), for error messages.
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
                || line.starts_with(&format!("[run.{key}"))
        })
        .map(|index| index + 1)
}

/// The run settings of a process: re-read before each pass when the file's content
/// changed (content, not mtime: two edits within one clock tick must both count), and
/// kept as they were when the new file is bad.
#[derive(Debug)]
pub struct RunSettings {
    path: Option<PathBuf>,
    feed_queues: usize,
    current: RunConfig,
    /// The file content last acted on; `None` until the first reload reads it.
    seen: Option<String>,
}

impl RunSettings {
    pub fn new(config: &Config) -> RunSettings {
        RunSettings {
            path: config.path.clone(),
            feed_queues: config.init.feed_queues,
            current: config.run.clone(),
            seen: None,
        }
    }

    pub fn current(&self) -> &RunConfig {
        &self.current
    }

    /// Re-reads the file and applies it if its content changed. On error the last
    /// good settings stay in force and the error is returned (once) for the log.
    pub fn reload(&mut self) -> Result<bool, ConfigError> {
        let Some(path) = self.path.clone() else {
            return Ok(false);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        });
        let text = match text {
            Ok(text) if self.seen.as_deref() == Some(text.as_str()) => return Ok(false),
            Ok(text) => text,
            Err(e) => return Err(e),
        };
        self.seen = Some(text.clone());
        let config = Config::from_text(&path, &text)?;
        if config.init.feed_queues != self.feed_queues {
            return Err(ConfigError::Invalid {
                line: key_line(&text, "feed_queues").unwrap_or(0),
                path,
                message: "init.feed_queues changed; it takes effect only after a restart".into(),
            });
        }
        let changed = config.run != self.current;
        self.current = config.run;
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("sie.toml");
        fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn no_file_means_defaults() {
        let config = Config::load(None).unwrap();
        assert_eq!(config.init.feed_queues, 5);
        assert_eq!(config.run.nq, 4);
        assert_eq!(config.run.sizes.len(), 5);
        assert!(config.run.check(5).is_ok());
    }

    #[test]
    fn the_documented_example_is_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let text = include_str!("../tools/sie.toml.example");
        let config = Config::load(Some(&write(dir.path(), text))).unwrap();
        let defaults = RunConfig::default();
        assert_eq!(config.run.queue["feed1"], QueueTiming::default());
        assert_eq!(
            RunConfig {
                queue: BTreeMap::new(),
                ..config.run
            },
            defaults
        );
        assert_eq!(config.init.feed_queues, InitConfig::default().feed_queues);
        assert_eq!(config.init.spool_root, InitConfig::default().spool_root);
        assert_eq!(config.init.web, crate::web::WebConfig::default());
        assert_eq!(config.init.notify, None, "notifications are off by default");

        // The commented [init.notify] block, switched on, is the notify defaults.
        let mut in_block = false;
        let mut switched_on = String::new();
        for line in text.lines() {
            in_block = (in_block && !line.is_empty()) || line == "# [init.notify]";
            let line = match line.strip_prefix("# ") {
                Some(setting) if in_block && !setting.starts_with(' ') => setting,
                _ => line,
            };
            switched_on.push_str(line);
            switched_on.push('\n');
        }
        let config = Config::load(Some(&write(dir.path(), &switched_on))).unwrap();
        assert_eq!(
            config.init.notify,
            Some(crate::notify::NotifyInit::default())
        );
    }

    #[test]
    fn spam_rules_skip_the_big_message_queue_unless_told_otherwise() {
        let run = RunConfig::default();
        assert!(run.scan_options("feed1").spam);
        assert!(!run.scan_options("feed5").spam);
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "[run.scan.feed5]\nspam = true\n[run.scan.feed2]\nspam = false\n",
        );
        let run = Config::load(Some(&path)).unwrap().run;
        assert!(run.scan_options("feed5").spam);
        assert!(!run.scan_options("feed2").spam);
        let path = write(dir.path(), "[run.scan.feed7]\nspam = true\n");
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("feed7"), "{err}");
    }

    #[test]
    fn unscannable_messages_go_where_the_admin_says() {
        assert_eq!(RunConfig::default().unscannable_queue, "error");
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[run]\nunscannable_queue = \"virus\"\n");
        assert_eq!(
            Config::load(Some(&path)).unwrap().run.unscannable_queue,
            "virus"
        );
        let path = write(dir.path(), "[run]\n\nunscannable_queue = \"spam\"\n");
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("sie.toml:3:") && err.contains("unscannable_queue"),
            "{err}"
        );
    }

    #[test]
    fn a_file_overrides_some_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "# test\n[run]\nloop_delay = 0.2\nexts = [\"exe\"]\n[run.queue.feed2]\nt0 = 0.5\n",
        );
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.run.loop_delay, 0.2);
        assert_eq!(config.run.exts, ["exe"]);
        assert_eq!(config.run.timing("feed2").t0, 0.5);
        assert_eq!(config.run.timing("feed2").t00, QueueTiming::default().t00);
        assert_eq!(config.run.timing("feed1"), QueueTiming::default());
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[run]\nloop_delay = 1\nnq = \"four\"\n");
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("sie.toml:3:"), "{err}");
        let path = write(dir.path(), "[run]\nloop_dleay = 1\n");
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("loop_dleay"), "{err}");
        let path = write(dir.path(), "[run]\n\nnq = 9\n");
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("sie.toml:3:") && err.contains("run.nq"),
            "{err}"
        );
        let path = write(dir.path(), "[run.queue.feed9]\nt0 = 1\n");
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains(":1:") && err.contains("feed9"), "{err}");
    }

    #[test]
    fn feed_policy_defaults_to_bytes_and_a_bad_one_names_its_line() {
        assert_eq!(RunConfig::default().feed_policy, FeedPolicy::Bytes);
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[run]\nfeed_policy = \"eta\"\n");
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.run.feed_policy, FeedPolicy::Eta);
        let path = write(dir.path(), "[run]\nnq = 4\nfeed_policy = \"fastest\"\n");
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("sie.toml:3:") && err.contains("fastest") && err.contains("eta"),
            "{err}"
        );
    }

    #[test]
    fn other_queue_counts_get_fitting_default_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[init]\nfeed_queues = 2\n");
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.run.sizes, [2 << 20, 0]);
        assert_eq!(config.run.nq, 1);
    }

    #[test]
    fn reload_keeps_the_last_good_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[run]\nloop_delay = 0.5\n");
        let config = Config::load(Some(&path)).unwrap();
        let mut settings = RunSettings::new(&config);
        fs::write(&path, "[run]\nloop_delay = 0.25\n").unwrap();
        assert!(settings.reload().unwrap());
        assert_eq!(settings.current().loop_delay, 0.25);
        fs::write(&path, "[run]\nloop_delay = -3\n").unwrap();
        let err = settings.reload().unwrap_err().to_string();
        assert!(
            err.contains("sie.toml:2:") && err.contains("loop_delay"),
            "{err}"
        );
        assert_eq!(settings.current().loop_delay, 0.25);
        assert!(
            !settings.reload().unwrap(),
            "an unchanged bad file is not re-reported"
        );
    }
}
