//! ptail — follow several logs at once, each line prefixed by its log's name.
//!
//! `ptail [-n N] [log]...` prints the last N lines (default 10) of each log, then every
//! new line as it is written, as `<name>| <line>` where `<name>` is the log's file stem
//! (`feed1| feed1: Stats: ...`; SIE's lines already name their process, so the log name
//! is set off with `|`). A log is a path or a process name (`feed1` means
//! `<spool>/sie/logs/feed1.log`); with none, every `*.log` there is followed, and logs
//! created later are picked up. Polls every 200 ms. A truncated log is read again from
//! its start; a rotated one is read to its end, then the new file from its start.
//! `--once` prints the last lines and exits.
//!
//! FILES: `<spool>/sie/logs/*.log`.
//! EXIT STATUS: 0 on `--once` or a closed output pipe; 2 fatal error (unreadable log).
//! SECURITY: needs read access to the logs only.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sie::cli::{EXIT_OK, SpoolArgs};
use sie::log::tail::{Follower, log_path};

/// Follow several logs at once, each line prefixed by its log name.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  ptail                 every log of the spool\n  ptail -n 0 feed1 feed2\n  ptail --once -n 3 queues/sie/logs/feed.log"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Logs: paths, or process names in the spool's log directory [default: all]
    logs: Vec<String>,
    /// Lines of each log to print first
    #[arg(short = 'n', long = "lines", default_value_t = 10, value_name = "N")]
    lines: usize,
    /// Print the last lines and exit instead of following
    #[arg(long)]
    once: bool,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("ptail", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (_config, spool) = args.common.open()?;
    let mut follower = match args.logs.is_empty() {
        true => Follower::dir(&spool.logs_dir())?,
        false => Follower::files(args.logs.iter().map(|log| log_path(&spool, log))),
    };
    let mut out = std::io::stdout().lock();
    let mut lines = follower.start(args.lines)?;
    loop {
        for line in &lines {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        if args.once {
            return Ok(ExitCode::from(EXIT_OK));
        }
        std::thread::sleep(Duration::from_millis(200));
        lines = follower.poll()?;
    }
}
