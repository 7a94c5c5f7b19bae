//! qls — how many messages and bytes each queue holds, one line per queue.
//!
//! `qls [queue]...` prints `<queue> <msgs> <bytes>` in aligned columns for the named
//! queues (default: `in feed1..N out virus ext spam error delete release good`), then a
//! `total` line. A queue holding df files without their qf says so after its numbers.
//! `--json` prints one object per queue and line: `queue`, `msgs`, `bytes`, `orphan_dfs`.
//! Nothing is locked or read beyond the directory listings.
//!
//! FILES: `<spool>/<queue>/`.
//! EXIT STATUS: 0 listed; 2 fatal error (unknown queue, unreadable directory).
//! SECURITY: needs read access to the queue directories.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sie::cli::{EXIT_OK, SpoolArgs};
use sie::report::listing::{default_queues, summarize, write_qls, write_qls_json};

/// List several queues at once: messages and bytes per queue.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  qls                 every queue\n  qls virus ext spam  the quarantine queues\n  qls --json in out"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Queues to list [default: all but archive]
    queues: Vec<String>,
    /// One JSON object per queue and line
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("qls", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (_config, spool) = args.common.open()?;
    let queues = match args.queues.is_empty() {
        true => default_queues(&spool),
        false => args.queues.clone(),
    };
    let rows = queues
        .iter()
        .map(|q| summarize(&spool, q))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = std::io::stdout().lock();
    match args.json {
        true => write_qls_json(&mut out, &rows)?,
        false => write_qls(&mut out, &rows)?,
    }
    out.flush()?;
    Ok(ExitCode::from(EXIT_OK))
}
