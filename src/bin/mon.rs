//! mon — the live terminal monitor: one row per queue with its message count, its bytes
//! and one `X` per message (`+N` ends a row too short for all of them), a header with the
//! time and the messages scanned in the last minute, and the last verdicts of the work
//! logs. Redraws every `--interval` seconds and on resize; `q`, Esc or Ctrl-C quit.
//! Fits 80x24 and works over ssh.
//!
//! FILES: `<spool>/<queue>/` (listed), `<spool>/sie/logs/feed1..N.log` (followed).
//! EXIT STATUS: 0 quit; 2 fatal error (not a terminal, unreadable spool).
//! SECURITY: needs read access to the queue directories and the logs; changes nothing.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sie::cli::{EXIT_OK, SpoolArgs};

/// Watch the queues fill and drain: one X per message.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  mon\n  mon --spool /var/spool/sie --interval 2\n\nKeys: q, Esc or Ctrl-C quit."
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Seconds between polls of the queues and logs
    #[arg(long, value_name = "SECONDS", default_value = "0.5", value_parser = sie::mon::parse_interval)]
    interval: Duration,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("mon", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (_config, spool) = args.common.open()?;
    sie::mon::run(&spool, args.interval)?;
    Ok(ExitCode::from(EXIT_OK))
}
