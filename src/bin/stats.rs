//! stats — per-queue totals, maxima and averages of the work passes, from the logs.
//!
//! `stats [--since DATE] [log]...` reads the `Stats:` lines of the given logs (paths or
//! process names; default every `*.log` of `<spool>/sie/logs`) and prints, per queue
//! (the log's name up to `.log`), the number of passes, the verdict totals and the
//! total, maximum and per-pass average of messages, bytes, `vf` (scan CPU s), `vs`
//! (pass wall s) and lock wait; the last line is the sum of all queues as a `Stats:`
//! line. `--since` counts only passes started at or after DATE (any form `time`
//! accepts). `--json` prints one object per queue and line, then one for `all`.
//!
//! FILES: `<spool>/sie/logs/*.log`.
//! EXIT STATUS: 0 printed; 2 fatal error (unreadable log, bad date).
//! SECURITY: needs read access to the logs only.

use std::io::{BufReader, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sie::cli::{EXIT_OK, SpoolArgs};
use sie::log::tail::{log_path, spool_logs};
use sie::report::stats::{StatsReport, queue_of_log};

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
    let logs = match args.logs.is_empty() {
        true => spool_logs(&spool)?,
        false => args.logs.iter().map(|log| log_path(&spool, log)).collect(),
    };
    let mut report = StatsReport::default();
    for log in &logs {
        let file = std::fs::File::open(log).with_context(|| log.display().to_string())?;
        report
            .add_log(&queue_of_log(log), BufReader::new(file), since)
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
