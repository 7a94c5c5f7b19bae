//! stop — ask SIE processes to exit cleanly after their current pass.
//!
//! `stop <process>...|all` writes `sie/locks/stop.<process>` for each of `sie` (the
//! supervisor), `feed`, `feed1..N` and `notify` (`all`: every one of them). Each process checks
//! its stop file after a pass and exits, so no pass is cut short. With `--wait`, waits
//! (up to `--timeout` seconds) until each process's pid file `sie/pids/<process>.pid`
//! is gone or names a dead process. `--cancel` removes the stop files instead.
//!
//! FILES: `<spool>/sie/locks/stop.<process>`, `<spool>/sie/pids/<process>.pid`.
//! EXIT STATUS: 0 done; 1 some process still ran when `--wait` timed out; 2 fatal.
//! SECURITY: run as the spool's owner; needs write access to `sie/locks`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sie::cli::{EXIT_FINDINGS, EXIT_OK, SpoolArgs};
use sie::lockfile::{clear_stop, expand_names, request_stop, wait_stopped};

/// Stop SIE processes cleanly through stop files.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  stop --wait all\n  stop feed          stop feeding, keep scanning\n  stop --cancel all"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Processes: sie, feed, feed1..N, notify, or `all`
    #[arg(required = true)]
    processes: Vec<String>,
    /// Wait until the processes have exited
    #[arg(long)]
    wait: bool,
    /// Seconds to wait with --wait
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    timeout: f64,
    /// Remove the stop files instead of writing them
    #[arg(long, conflicts_with = "wait")]
    cancel: bool,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("stop", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (_config, spool) = args.common.open()?;
    let mut known = vec!["sie".to_string(), "feed".to_string()];
    known.extend(spool.feed_queue_names());
    known.push("notify".to_string());
    let processes = expand_names(&args.processes, &known)?;
    for process in &processes {
        if args.cancel {
            let had = clear_stop(&spool, process)?;
            println!(
                "{process}: {}",
                if had {
                    "stop cancelled"
                } else {
                    "no stop pending"
                }
            );
        } else {
            request_stop(&spool, process)?;
            println!("{process}: stop requested");
        }
    }
    if !args.wait {
        return Ok(ExitCode::from(EXIT_OK));
    }
    let running = wait_stopped(
        &spool,
        &processes,
        Duration::from_secs_f64(args.timeout.max(0.0)),
    );
    for process in &running {
        eprintln!("stop: {process} still running after {}s", args.timeout);
    }
    Ok(ExitCode::from(if running.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }))
}
