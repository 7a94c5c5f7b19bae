//! sie-feed — the feed loop.
//!
//! Each pass moves the messages of `<spool>/in`, oldest first, to the feed queue whose
//! size limit admits them and which has the fewest bytes queued, logging
//! `<id> <bytes> -> q<k>` in `<spool>/sie/logs/feed.log`. Stops after the current pass
//! on SIGTERM/SIGINT or when `<spool>/sie/locks/stop.feed` appears (`stop feed`).
//!
//! EXIT STATUS: 0 after a clean stop, 2 on a fatal error.
//! SECURITY: needs write access to the spool only.

use std::process::ExitCode;

use clap::Parser;
use sie::cli::{SpoolArgs, run_loop};
use sie::daemon::Role;

#[derive(Parser)]
#[command(
    version,
    about = "Spread messages from the in queue over the feed queues"
)]
#[command(after_help = "Example:\n  sie-feed --spool /var/spool/sie --config /etc/sie.toml")]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Copy log lines to stderr
    #[arg(long)]
    foreground: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    run_loop("sie-feed", Role::Feed, &args.common, args.foreground)
}
