//! sie-work — the work loop of one feed queue.
//!
//! Each pass locks the queue (`<spool>/sie/locks/lock.<queue>`), scans a batch chosen
//! oldest first to fit `maxpass`, unlocks, and moves each message to out, virus, ext,
//! spam or error with a result file in `<spool>/sie/results/`. Logs to
//! `<spool>/sie/logs/<queue>.log`, writes `free.<queue>` after each pass, and stops after
//! the current pass on SIGTERM/SIGINT or `stop <queue>`.
//!
//! EXIT STATUS: 0 after a clean stop, 2 on a fatal error.
//! SECURITY: needs write access to the spool only; never runs message content.

use std::process::ExitCode;

use clap::Parser;
use sie::cli::{SpoolArgs, run_loop};
use sie::daemon::Role;

#[derive(Parser)]
#[command(version, about = "Scan the messages of one feed queue")]
#[command(after_help = "Example:\n  sie-work --spool /var/spool/sie feed1")]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// The feed queue to work (feed1 .. feedN)
    queue: String,
    /// Copy log lines to stderr
    #[arg(long)]
    foreground: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    run_loop(
        "sie-work",
        Role::Work(args.queue.clone()),
        &args.common,
        args.foreground,
    )
}
