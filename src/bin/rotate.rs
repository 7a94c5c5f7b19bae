//! rotate — the cron job that archives logs and quarantine queues.
//!
//! `rotate` creates the period `<spool>/archive/<YYYY-MM-DD>` (`.2`, `.3` ... for later
//! runs the same day), moves every process log there compressed (`logs/<name>.log.gz`),
//! archives the entries of `virus ext spam error delete release` with their result files
//! (`<queue>.tar.gz`, verified before the originals are removed), writes the period's
//! statistics (`sie/stats/<period>.txt`, `.json`) and HTML summary
//! (`sie/summary/<period>.html`, `index.html`), and prints what it did. Safe to run
//! while SIE runs: an entry locked by another process is left for the next run, and
//! no log line is lost. A run interrupted by a crash is finished by the next one.
//!
//! FILES: `<spool>/sie/logs/`, the quarantine queues, `<spool>/sie/results/`,
//! `<spool>/archive/`, `<spool>/sie/stats/`, `<spool>/sie/summary/`,
//! `<spool>/sie/locks/lock.rotate`.
//! EXIT STATUS: 0 done; 1 done, but entries locked elsewhere were skipped; 2 fatal
//! error (another rotate running, unwritable archive).
//! SECURITY: run it as the user that owns the spool (as SIE runs), from cron.

use std::process::ExitCode;

use clap::Parser;
use sie::cli::{EXIT_FINDINGS, EXIT_OK, SpoolArgs};
use sie::report::rotate::rotate;

/// Archive logs and quarantine queues; write period statistics and an HTML summary.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  rotate\n  rotate --spool /var/spool/sie   # crontab: 5 0 * * *"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("rotate", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (_config, spool) = args.common.open()?;
    let report = rotate(&spool)?;
    for line in &report.recovered {
        println!("recovered: {line}");
    }
    println!(
        "period {} in {}",
        report.period,
        report.period_dir.display()
    );
    println!("logs: {}", report.logs.join(" "));
    for (queue, count) in &report.archived {
        println!("archived {queue}: {count}");
    }
    for skipped in &report.skipped {
        println!("skipped (locked elsewhere): {skipped}");
    }
    println!("summary: {}", report.summary.display());
    Ok(ExitCode::from(match report.skipped.is_empty() {
        true => EXIT_OK,
        false => EXIT_FINDINGS,
    }))
}
