//! A period's reports, computed from its archive directory alone (so a period can be
//! reported again at any time): `sie/stats/<period>.txt` and `.json` (the `stats`
//! tables plus the archived queues), `sie/summary/<period>.html` (self-contained: no
//! script, no external resource; inline SVG charts) and `sie/summary/index.html`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, Read};
use std::path::PathBuf;

use chrono::{Local, NaiveDateTime, TimeDelta, TimeZone, Timelike};
use serde_json::json;

use super::chart::{self, Bar, Point};
use super::{Result, RotateError, io_err, make_dir};
use crate::log::StatsLine;
use crate::queue::Spool;
use crate::queue::durable::write_atomic;
use crate::report::archive::{self, Period, open_log, period_dir};
use crate::report::stats::{StatsReport, log_line_date};

/// Fill of the messages-per-hour bars.
pub const HOURLY_COLOUR: &str = "#1f77b4";
/// Fill of the pass-time points.
pub const PASS_COLOUR: &str = "#ff7f0e";
/// Verdicts in display order with their fills.
pub const VERDICT_COLOURS: [(&str, &str); 8] = [
    ("clean", "#2ca02c"),
    ("vir", "#d62728"),
    ("ext", "#9467bd"),
    ("spam", "#8c564b"),
    ("vir-ex", "#e377c2"),
    ("ext-ex", "#bcbd22"),
    ("spam-ex", "#17becf"),
    ("error", "#7f7f7f"),
];

/// `<spool>/sie/summary`.
pub fn summary_dir(spool: &Spool) -> PathBuf {
    spool.state_dir().join("summary")
}

/// One pass read from a rotated log: its queue, start (epoch s, if dated) and counts.
#[derive(Debug, Clone)]
pub struct PassSample {
    pub queue: String,
    pub started: Option<f64>,
    pub stats: StatsLine,
}

/// What the reports of one period are made of.
#[derive(Debug)]
pub struct PeriodData {
    pub period: Period,
    pub stats: StatsReport,
    pub passes: Vec<PassSample>,
}

/// Reads a period's logs and archives.
pub fn read_period(spool: &Spool, name: &str) -> Result<PeriodData> {
    let dir = period_dir(spool, name)?;
    let period = archive::period(&dir, name)?;
    let mut stats = StatsReport::default();
    let mut passes = Vec::new();
    for log in &period.logs {
        let log_path = dir.join("logs").join(format!("{log}.log.gz"));
        let mut text = Vec::new();
        open_log(&dir, log)?
            .read_to_end(&mut text)
            .map_err(io_err(&log_path))?;
        stats
            .add_log(log, &text[..], None)
            .map_err(io_err(&log_path))?;
        let mut started = None;
        for line in text.lines() {
            let line = line.map_err(io_err(&log_path))?;
            if let Some(line_stats) = StatsLine::from_log_line(&line) {
                passes.push(PassSample {
                    queue: log.clone(),
                    started,
                    stats: line_stats,
                });
            } else if line.contains(": Started pass")
                && let Some(when) = log_line_date(&line)
            {
                started = Some(when);
            }
        }
    }
    stats.drop_empty();
    Ok(PeriodData {
        period,
        stats,
        passes,
    })
}

/// Writes the statistics and the summary of period `name`, then the index; returns
/// the summary's path.
pub fn write_period_reports(spool: &Spool, name: &str) -> Result<PathBuf> {
    let data = read_period(spool, name)?;
    let stats_dir = spool.stats_dir();
    make_dir(&stats_dir)?;
    let text_path = stats_dir.join(format!("{name}.txt"));
    write_atomic(&text_path, stats_text(&data)?.as_bytes(), 0o644).map_err(io_err(&text_path))?;
    let json_path = stats_dir.join(format!("{name}.json"));
    let json = serde_json::to_vec_pretty(&stats_json(&data)?).map_err(|e| RotateError::Io {
        path: json_path.clone(),
        source: e.into(),
    })?;
    write_atomic(&json_path, &json, 0o644).map_err(io_err(&json_path))?;
    let dir = summary_dir(spool);
    make_dir(&dir)?;
    let html_path = dir.join(format!("{name}.html"));
    write_atomic(&html_path, html(&data).as_bytes(), 0o644).map_err(io_err(&html_path))?;
    write_index(spool)?;
    Ok(html_path)
}

fn stats_text(data: &PeriodData) -> Result<String> {
    let mut out = Vec::new();
    out.extend_from_slice(format!("period: {}\n", data.period.name).as_bytes());
    for queue in &data.period.queues {
        out.extend_from_slice(
            format!(
                "archived {}: {} entries, {} bytes ({} compressed)\n",
                queue.queue, queue.entries, queue.bytes, queue.compressed_bytes
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(format!("logs: {}\n", data.period.logs.join(" ")).as_bytes());
    data.stats
        .write_text(&mut out)
        .map_err(io_err(&data.period.path))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn stats_json(data: &PeriodData) -> Result<serde_json::Value> {
    let mut lines = Vec::new();
    data.stats
        .write_json(&mut lines)
        .map_err(io_err(&data.period.path))?;
    let queues: Vec<serde_json::Value> = String::from_utf8_lossy(&lines)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Ok(json!({
        "period": data.period.name,
        "logs": data.period.logs,
        "archived": data.period.queues.iter().map(|q| json!({
            "queue": q.queue, "entries": q.entries, "bytes": q.bytes,
            "compressed_bytes": q.compressed_bytes,
        })).collect::<Vec<_>>(),
        "stats": queues,
    }))
}

/// Messages per local hour (of the passes' start), from the first pass's hour to the
/// last's; hours without passes are bars of height zero.
pub fn hourly_bars(passes: &[PassSample]) -> Vec<Bar> {
    let mut per_hour: BTreeMap<NaiveDateTime, u64> = BTreeMap::new();
    for pass in passes {
        if let Some(hour) = pass.started.and_then(local_hour) {
            *per_hour.entry(hour).or_default() += pass.stats.msgs;
        }
    }
    let (Some(&first), Some(&last)) = (per_hour.keys().next(), per_hour.keys().last()) else {
        return Vec::new();
    };
    // A month of hours at most; a longer period shows its last month.
    let mut hour = first.max(last - TimeDelta::hours(24 * 31 - 1));
    let mut bars = Vec::new();
    while hour <= last {
        let msgs = per_hour.get(&hour).copied().unwrap_or(0);
        bars.push(Bar {
            label: hour.format("%H:00").to_string(),
            value: msgs as f64,
            colour: HOURLY_COLOUR,
            tip: format!("{}: {msgs} messages", hour.format("%Y-%m-%d %H:00")),
        });
        hour += TimeDelta::hours(1);
    }
    bars
}

/// The local hour (date and hour, minutes cut) of an epoch time.
pub fn local_hour(epoch: f64) -> Option<NaiveDateTime> {
    let local = Local.timestamp_opt(epoch.floor() as i64, 0).single()?;
    local
        .naive_local()
        .date()
        .and_hms_opt(local.naive_local().hour(), 0, 0)
}

/// One point per pass: bytes scanned against pass wall time.
pub fn pass_points(passes: &[PassSample]) -> Vec<Point> {
    passes
        .iter()
        .map(|p| Point {
            x: p.stats.bytes as f64,
            y: p.stats.vs,
            tip: format!(
                "{}: {} msgs, {} bytes, {:.3} s",
                p.queue, p.stats.msgs, p.stats.bytes, p.stats.vs
            ),
        })
        .collect()
}

/// One bar per verdict, from the summed `Stats:` lines.
pub fn verdict_bars(total: &StatsLine) -> Vec<Bar> {
    let counts = [
        total.clean,
        total.vir,
        total.ext,
        total.spam,
        total.vir_ex,
        total.ext_ex,
        total.spam_ex,
        total.errors(),
    ];
    VERDICT_COLOURS
        .iter()
        .zip(counts)
        .map(|((name, colour), count)| Bar {
            label: name.to_string(),
            value: count as f64,
            colour,
            tip: format!("{name}: {count}"),
        })
        .collect()
}

const STYLE: &str = "body{font-family:sans-serif;margin:16px;color:#222}\
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:18px 0 6px}\
.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{border:1px solid #ccc}\
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}pre{font-size:12px;background:#f6f6f6;padding:8px}";

/// The summary page.
pub fn html(data: &PeriodData) -> String {
    let total = data.stats.total();
    let esc = chart::escape;
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>SIE period {name}</title><style>{STYLE}</style></head><body>\n<h1>SIE period {name}</h1>\n<p>{passes} passes, {msgs} messages, {bytes} bytes scanned; {archived} entries archived from quarantine; logs: {logs}.</p>\n",
        name = esc(&data.period.name),
        passes = total.passes,
        msgs = total.sum.msgs,
        bytes = total.sum.bytes,
        archived = data.period.queues.iter().map(|q| q.entries).sum::<u64>(),
        logs = esc(&data.period.logs.join(", ")),
    );
    s.push_str("<div class=\"charts\">\n");
    s.push_str(&chart::bars(
        "Messages per hour",
        "messages",
        &hourly_bars(&data.passes),
        "hourly",
    ));
    s.push_str(&chart::scatter(
        "Pass time against bytes per pass",
        "bytes scanned in the pass",
        "pass wall time (s)",
        &pass_points(&data.passes),
        PASS_COLOUR,
        "passes",
    ));
    s.push_str(&chart::bars(
        "Verdict mix",
        "messages",
        &verdict_bars(&total.sum),
        "verdicts",
    ));
    s.push_str("</div>\n<h2>Work queues</h2>\n<table><tr><th>queue</th><th>passes</th><th>messages</th><th>bytes</th>");
    for (verdict, _) in VERDICT_COLOURS {
        let _ = write!(s, "<th>{verdict}</th>");
    }
    s.push_str("<th>vf s</th><th>vs avg s</th><th>vs max s</th></tr>\n");
    for queue in data.stats.queues.iter().chain([&total]) {
        let sum = &queue.sum;
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&queue.queue),
            queue.passes,
            sum.msgs,
            sum.bytes
        );
        for count in [
            sum.clean,
            sum.vir,
            sum.ext,
            sum.spam,
            sum.vir_ex,
            sum.ext_ex,
            sum.spam_ex,
            sum.errors(),
        ] {
            let _ = write!(s, "<td>{count}</td>");
        }
        let _ = writeln!(
            s,
            "<td>{:.2}</td><td>{:.3}</td><td>{:.3}</td></tr>",
            sum.vf,
            queue.avg(sum.vs),
            queue.max.vs
        );
    }
    s.push_str("</table>\n<h2>Archived quarantine queues</h2>\n<table><tr><th>queue</th><th>entries</th><th>bytes</th><th>compressed</th><th>parts</th></tr>\n");
    for queue in &data.period.queues {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&queue.queue),
            queue.entries,
            queue.bytes,
            queue.compressed_bytes,
            queue.parts.len()
        );
    }
    s.push_str("</table>\n</body></html>\n");
    s
}

/// `index.html`: every period, newest first, linking its summary.
fn write_index(spool: &Spool) -> Result<()> {
    let dir = summary_dir(spool);
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>SIE periods</title><style>{STYLE}</style></head><body>\n<h1>SIE periods</h1>\n<table><tr><th>period</th><th>archived entries</th><th>logs</th></tr>\n"
    );
    for period in archive::periods(spool)?.iter().rev() {
        let page = format!("{}.html", period.name);
        let name = chart::escape(&period.name);
        let link = match dir.join(&page).exists() {
            true => format!("<a href=\"{page}\">{name}</a>"),
            false => name,
        };
        let _ = writeln!(
            s,
            "<tr><td>{link}</td><td>{}</td><td>{}</td></tr>",
            period.queues.iter().map(|q| q.entries).sum::<u64>(),
            period.logs.len()
        );
    }
    s.push_str("</table>\n</body></html>\n");
    let path = dir.join("index.html");
    write_atomic(&path, s.as_bytes(), 0o644).map_err(io_err(&path))
}
