//! stats — per-queue totals, maxima and averages of the work passes, from the logs.
//!
//! `stats [--since DATE] [log]...` reads the `Stats:` lines of the given logs (paths or
//! process names; default every `*.log` of `<spool>/sie/logs`; gzip-compressed logs are
//! read as they are; `--archived` adds the work logs `rotate` archived under
//! `<spool>/archive/`, so `--since` can reach back past a rotation) and prints, per queue
//! (the log's name up to `.log`), the number of passes, the verdict totals and the
//! total, maximum and per-pass average of messages, bytes, `vf` (scan CPU s), `vs`
//! (pass wall s) and lock wait; the last line is the sum of all queues as a `Stats:`
//! line. `--since` counts only passes started at or after DATE (any form `time`
//! accepts). `--json` prints one object per queue and line, then one for `all`.
//!
//! FILES: `<spool>/sie/logs/*.log`, `<spool>/archive/*/logs/*.log.gz`.
//! EXIT STATUS: 0 printed; 2 fatal error (unreadable log, bad date).
//! SECURITY: needs read access to the logs only.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sie::cli::{EXIT_OK, SpoolArgs};
use sie::log::tail::{log_path, spool_logs};
use sie::report::stats::{StatsReport, queue_of_log};
use sie::tune::samples::{open_log, spool_work_logs};

/// Per-queue totals/max/avg of files, bytes, vf, vs from the logs' Stats: lines.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  stats\n  stats --since '2026-11-21 00:00' feed1 feed2\n  stats --json | jq ."
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Logs: paths, or process names in the spool's log directory [default: all]
    logs: Vec<String>,
    /// Count only passes started at or after this date
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// One JSON object per queue and line, then one for all queues
    #[arg(long)]
    json: bool,
    /// Also read the work logs archived by rotate
    #[arg(long, conflicts_with = "logs")]
    archived: bool,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("stats", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (_config, spool) = args.common.open()?;
    let since = match &args.since {
        Some(text) => Some(
            sie::timefmt::date_to_epoch(text).with_context(|| format!("not a date: {text:?}"))?,
        ),
        None => None,
    };
    let mut logs = match args.logs.is_empty() {
        true => spool_logs(&spool)?,
        false => args.logs.iter().map(|log| log_path(&spool, log)).collect(),
    };
    if args.archived {
        let live = logs.clone();
        logs.extend(
            spool_work_logs(&spool)?
                .into_iter()
                .filter(|log| !live.contains(log)),
        );
    }
    let mut report = StatsReport::default();
    for log in &logs {
        report
            .add_log(&queue_of_log(log), open_log(log)?, since)
            .with_context(|| log.display().to_string())?;
    }
    report.drop_empty();
    let mut out = std::io::stdout().lock();
    match args.json {
        true => report.write_json(&mut out)?,
        false => report.write_text(&mut out)?,
    }
    out.flush()?;
    Ok(ExitCode::from(EXIT_OK))
}
