//! Per-queue statistics from the logs' `Stats:` lines (the `stats` program): passes,
//! total/max/average per pass of messages, bytes, scan CPU (`vf`), pass time (`vs`) and
//! lock wait, and the verdict totals. The sum over all queues is itself a `Stats:` line.

use std::io::{self, BufRead, Write};
use std::path::Path;

use serde_json::json;

use crate::log::StatsLine;
use crate::timefmt::date_to_epoch;

/// The name a log's statistics are filed under: its file name up to `.log`
/// (`feed1.log` and a rotated `feed1.log.1` are both `feed1`).
pub fn queue_of_log(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.find(".log") {
        Some(at) if at > 0 => name[..at].to_string(),
        _ => name,
    }
}

/// The date of a dated log line (`feed1: Thu May 23 10:18:10 EDT 2002: Started pass`),
/// in epoch seconds.
pub fn log_line_date(line: &str) -> Option<f64> {
    let mut parts = line.splitn(3, ": ");
    let _process = parts.next()?;
    let date = parts.next()?;
    parts.next()?;
    // Only a date has the shape "Thu May 23 10:18:10 ...": cheap check before parsing.
    if date.len() < 20 || date.as_bytes().get(3) != Some(&b' ') {
        return None;
    }
    date_to_epoch(date).or_else(|| date_to_epoch(&without_zone(date)))
}

/// `Thu May 23 10:18:10 +02:00 2002` (chrono's `%Z` for local time) without its zone.
fn without_zone(date: &str) -> String {
    let words: Vec<&str> = date.split_whitespace().collect();
    if words.len() == 6 {
        [&words[..4], &words[5..]].concat().join(" ")
    } else {
        date.to_string()
    }
}

/// The passes of one queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    pub queue: String,
    pub passes: u64,
    /// Field by field sum of the passes' lines.
    pub sum: StatsLine,
    /// Field by field maximum.
    pub max: StatsLine,
}

impl QueueStats {
    pub fn new(queue: &str) -> QueueStats {
        QueueStats {
            queue: queue.to_string(),
            passes: 0,
            sum: StatsLine::default(),
            max: StatsLine::default(),
        }
    }

    pub fn add(&mut self, line: &StatsLine) {
        self.passes += 1;
        self.fold(line, line);
    }

    /// Adds every pass of another queue (for the all-queues total).
    pub fn merge(&mut self, other: &QueueStats) {
        self.passes += other.passes;
        self.fold(&other.sum, &other.max);
    }

    fn fold(&mut self, sum: &StatsLine, max: &StatsLine) {
        let (s, m) = (&mut self.sum, &mut self.max);
        for (acc, top, add, high) in [
            (&mut s.vir, &mut m.vir, sum.vir, max.vir),
            (&mut s.ext, &mut m.ext, sum.ext, max.ext),
            (&mut s.spam, &mut m.spam, sum.spam, max.spam),
            (&mut s.vir_ex, &mut m.vir_ex, sum.vir_ex, max.vir_ex),
            (&mut s.ext_ex, &mut m.ext_ex, sum.ext_ex, max.ext_ex),
            (&mut s.spam_ex, &mut m.spam_ex, sum.spam_ex, max.spam_ex),
            (&mut s.clean, &mut m.clean, sum.clean, max.clean),
            (&mut s.msgs, &mut m.msgs, sum.msgs, max.msgs),
            (&mut s.bytes, &mut m.bytes, sum.bytes, max.bytes),
        ] {
            *acc += add;
            *top = (*top).max(high);
        }
        for (acc, top, add, high) in [
            (&mut s.vf, &mut m.vf, sum.vf, max.vf),
            (&mut s.vs, &mut m.vs, sum.vs, max.vs),
            (&mut s.lock, &mut m.lock, sum.lock, max.lock),
        ] {
            *acc += add;
            *top = top.max(high);
        }
    }

    /// Per-pass average of a summed value.
    pub fn avg(&self, total: f64) -> f64 {
        if self.passes == 0 {
            0.0
        } else {
            total / self.passes as f64
        }
    }

    /// (name, total, max, decimals) of the measured columns.
    fn metrics(&self) -> [(&'static str, f64, f64, usize); 5] {
        let (s, m) = (&self.sum, &self.max);
        [
            ("msgs", s.msgs as f64, m.msgs as f64, 0),
            ("bytes", s.bytes as f64, m.bytes as f64, 0),
            ("vf", s.vf, m.vf, 2),
            ("vs", s.vs, m.vs, 3),
            ("lock", s.lock, m.lock, 3),
        ]
    }

    fn verdicts(&self) -> String {
        let s = &self.sum;
        format!(
            "vir:{} ext:{} spam:{} vir-ex:{} ext-ex:{} spam-ex:{} clean:{} error:{}",
            s.vir,
            s.ext,
            s.spam,
            s.vir_ex,
            s.ext_ex,
            s.spam_ex,
            s.clean,
            s.errors()
        )
    }

    fn to_json(&self) -> serde_json::Value {
        let mut value = json!({
            "queue": self.queue,
            "passes": self.passes,
            "vir": self.sum.vir, "ext": self.sum.ext, "spam": self.sum.spam,
            "vir_ex": self.sum.vir_ex, "ext_ex": self.sum.ext_ex, "spam_ex": self.sum.spam_ex,
            "clean": self.sum.clean, "errors": self.sum.errors(),
        });
        for (name, total, max, _) in self.metrics() {
            value[name] = json!({"total": total, "max": max, "avg": self.avg(total)});
        }
        value
    }
}

/// Statistics of several queues, in queue order (`feed2` before `feed10`).
#[derive(Debug, Clone, Default)]
pub struct StatsReport {
    pub queues: Vec<QueueStats>,
}

impl StatsReport {
    /// Reads the `Stats:` lines of one log filed under `queue`. With `since`, only passes
    /// after the last dated line at or after that epoch time count (a pass's `Stats:`
    /// line follows its dated `Started pass` line). Returns the passes counted.
    pub fn add_log(
        &mut self,
        queue: &str,
        mut log: impl BufRead,
        since: Option<f64>,
    ) -> io::Result<u64> {
        let index = match self.queues.iter().position(|q| q.queue == queue) {
            Some(index) => index,
            None => {
                self.queues.push(QueueStats::new(queue));
                self.queues.sort_by_key(|q| queue_order(&q.queue));
                self.queues
                    .iter()
                    .position(|q| q.queue == queue)
                    .unwrap_or(0)
            }
        };
        let stats = &mut self.queues[index];
        let mut counting = since.is_none();
        let mut passes = 0;
        let mut raw = Vec::new();
        loop {
            raw.clear();
            if log.read_until(b'\n', &mut raw)? == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&raw);
            if let Some(stats_line) = StatsLine::from_log_line(&line) {
                if counting {
                    stats.add(&stats_line);
                    passes += 1;
                }
            } else if let (Some(since), Some(when)) = (since, log_line_date(&line)) {
                counting = when >= since;
            }
        }
        Ok(passes)
    }

    /// Drops queues without passes (logs of processes that write no `Stats:` lines).
    pub fn drop_empty(&mut self) {
        self.queues.retain(|q| q.passes > 0);
    }

    /// Every queue together, filed as `all`.
    pub fn total(&self) -> QueueStats {
        let mut all = QueueStats::new("all");
        for queue in &self.queues {
            all.merge(queue);
        }
        all
    }

    /// One block per queue, then the summed `Stats:` line as the last line.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        for queue in &self.queues {
            writeln!(
                out,
                "{}: {} pass{}  {}",
                queue.queue,
                queue.passes,
                if queue.passes == 1 { "" } else { "es" },
                queue.verdicts()
            )?;
            writeln!(out, "       {:>14} {:>14} {:>14}", "total", "max", "avg")?;
            for (name, total, max, decimals) in queue.metrics() {
                let avg = queue.avg(total);
                writeln!(
                    out,
                    "  {name:<5}{total:>14.decimals$} {max:>14.decimals$} {avg:>14.avg_decimals$}",
                    avg_decimals = decimals.max(2)
                )?;
            }
        }
        writeln!(out, "{}", self.total().sum)
    }

    /// One JSON object per line per queue, then one for `all` with the summed
    /// `Stats:` line as `stats_line`.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        for queue in &self.queues {
            serde_json::to_writer(&mut *out, &queue.to_json())?;
            writeln!(out)?;
        }
        let total = self.total();
        let mut value = total.to_json();
        value["stats_line"] = json!(total.sum.to_string());
        serde_json::to_writer(&mut *out, &value)?;
        writeln!(out)
    }
}

/// Sort key: the name without its trailing number, then the number (`feed2` < `feed10`).
fn queue_order(name: &str) -> (String, u64, String) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = name.split_at(name.len() - digits);
    (
        stem.to_string(),
        number.parse().unwrap_or(0),
        name.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
feed1: Thu May 23 10:18:10 EDT 2002: Started pass 20020523043700.21037.349.
feed1: Clean, moving: g4NEHl121396
feed1: Stats: vir:0 ext:0 spam:0 vir-ex:0 ext-ex:0 spam-ex:0 clean:1 msgs:1 bytes:2675 vf:15.32 vs:17.195 lock:0.085
feed1: Thu May 23 10:18:28 EDT 2002: Finished pass.
feed1: Thu May 23 11:00:00 EDT 2002: Started pass 20020523050000.21037.350.
feed1: Stats: vir:1 ext:0 spam:2 vir-ex:0 ext-ex:0 spam-ex:1 clean:3 msgs:8 bytes:10000 vf:1.00 vs:2.005 lock:0.015
";

    #[test]
    fn passes_are_summed_and_maxed_per_queue() {
        let mut report = StatsReport::default();
        assert_eq!(report.add_log("feed1", LOG.as_bytes(), None).unwrap(), 2);
        let q = &report.queues[0];
        assert_eq!(q.passes, 2);
        assert_eq!((q.sum.msgs, q.max.msgs), (9, 8));
        assert_eq!((q.sum.bytes, q.max.bytes), (12675, 10000));
        assert!((q.sum.vf - 16.32).abs() < 1e-9 && q.max.vf == 15.32);
        assert!((q.avg(q.sum.vs) - 9.6).abs() < 1e-9);
        assert_eq!(q.sum.errors(), 1);
        assert_eq!(
            report.total().sum.to_string(),
            "Stats: vir:1 ext:0 spam:2 vir-ex:0 ext-ex:0 spam-ex:1 clean:4 msgs:9 bytes:12675 vf:16.32 vs:19.200 lock:0.100"
        );
    }

    #[test]
    fn queues_merge_into_one_total_and_sort_naturally() {
        let mut report = StatsReport::default();
        report.add_log("feed10", LOG.as_bytes(), None).unwrap();
        report.add_log("feed2", LOG.as_bytes(), None).unwrap();
        report
            .add_log("feed", "feed: Started\n".as_bytes(), None)
            .unwrap();
        report.drop_empty();
        let names: Vec<_> = report.queues.iter().map(|q| q.queue.as_str()).collect();
        assert_eq!(names, ["feed2", "feed10"]);
        let all = report.total();
        assert_eq!(all.passes, 4);
        assert_eq!((all.sum.msgs, all.max.msgs), (18, 8));
        assert_eq!((all.sum.clean, all.max.clean), (8, 3));
        assert!((all.sum.vs - 38.4).abs() < 1e-9 && all.max.vs == 17.195);
    }

    #[test]
    fn since_keeps_only_later_passes() {
        let mut report = StatsReport::default();
        let since = log_line_date("feed1: Thu May 23 10:30:00 EDT 2002: x").unwrap();
        assert_eq!(
            report
                .add_log("feed1", LOG.as_bytes(), Some(since))
                .unwrap(),
            1
        );
        assert_eq!(report.queues[0].sum.msgs, 8);
    }

    #[test]
    fn text_ends_with_the_summed_stats_line_and_json_parses() {
        let mut report = StatsReport::default();
        report.add_log("feed1", LOG.as_bytes(), None).unwrap();
        let mut out = Vec::new();
        report.write_text(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("feed1: 2 passes  vir:1 ext:0 spam:2 "),
            "{text}"
        );
        assert!(text.contains("error:1\n"), "{text}");
        let msgs_row: Vec<_> = text
            .lines()
            .find(|l| l.trim_start().starts_with("msgs"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(msgs_row, ["msgs", "9", "8", "4.50"]);
        let last = text.lines().last().unwrap();
        assert_eq!(last.parse::<StatsLine>().unwrap(), report.total().sum);

        let mut out = Vec::new();
        report.write_json(&mut out).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["queue"], "feed1");
        assert_eq!(lines[0]["bytes"]["max"], 10000.0);
        assert_eq!(lines[1]["queue"], "all");
        assert!(
            lines[1]["stats_line"]
                .as_str()
                .unwrap()
                .starts_with("Stats: vir:1")
        );
    }

    #[test]
    fn log_names_and_dates() {
        assert_eq!(queue_of_log(Path::new("/x/feed1.log")), "feed1");
        assert_eq!(queue_of_log(Path::new("feed1.log.1")), "feed1");
        assert!(log_line_date("feed1: Clean, moving: x").is_none());
        assert!(log_line_date("feed1: Stats: vir:0").is_none());
        let now = chrono::Local::now();
        let line = format!("feed1: {}: Started pass.", crate::timefmt::log_date(now));
        let when = log_line_date(&line).unwrap();
        assert!((when - now.timestamp() as f64).abs() < 1.5, "{line}");
    }
}
