//! sie-notify — the notification loop on its own (`sie` runs it as a child when the
//! settings have an `[init.notify]` table).
//!
//! Each pass plans the jobs the work loops left in `<spool>/sie/notify/` (who is told,
//! from `notify.toml`), renders the templates beside `notify.toml`, and sends them over
//! SMTP; failures are retried with backoff and end in `<spool>/sie/notify/failed/`.
//! Logs to `<spool>/sie/logs/notify.log`; stops after the current pass on
//! SIGTERM/SIGINT or the stop file `<spool>/sie/locks/stop.notify`.
//!
//! EXIT STATUS: 0 after a clean stop, 2 on a fatal error (no `[init.notify]`, bad
//! settings, already running).
//! SECURITY: needs write access to `<spool>/sie/` and a connection to the SMTP server
//! only; it never reads message bodies.

use std::process::ExitCode;

use clap::Parser;
use sie::cli::{SpoolArgs, run_loop};
use sie::daemon::Role;

#[derive(Parser)]
#[command(version, about = "Send SIE's notifications of quarantined messages")]
#[command(after_help = "Example:\n  sie-notify --spool /var/spool/sie --config /etc/sie.toml")]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Copy log lines to stderr
    #[arg(long)]
    foreground: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    run_loop("sie-notify", Role::Notify, &args.common, args.foreground)
}
