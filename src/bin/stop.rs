//! stop — ask SIE processes to exit cleanly after their current pass.
//!
//! `stop <process>...|all` writes `sie/locks/stop.<process>` for each of `sie` (the
//! supervisor), `feed` and `feed1..N` (`all`: every one of them). Each process checks
//! its stop file after a pass and exits, so no pass is cut short. With `--wait`, waits
//! (up to `--timeout` seconds) until each process's pid file `sie/pids/<process>.pid`
//! is gone or names a dead process. `--cancel` removes the stop files instead.
//!
//! FILES: `<spool>/sie/locks/stop.<process>`, `<spool>/sie/pids/<process>.pid`.
//! EXIT STATUS: 0 done; 1 some process still ran when `--wait` timed out; 2 fatal.
//! SECURITY: run as the spool's owner; needs write access to `sie/locks`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use sie::cli::{EXIT_FINDINGS, EXIT_OK, SpoolArgs};
use sie::lockfile::{clear_stop, process_alive, read_pid_file, request_stop};

/// Stop SIE processes cleanly through stop files.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  stop --wait all\n  stop feed          stop feeding, keep scanning\n  stop --cancel all"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Processes: sie, feed, feed1..N, or `all`
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
    let mut all = vec!["sie".to_string(), "feed".to_string()];
    all.extend(spool.feed_queue_names());
    let processes = match args.processes.iter().any(|p| p == "all") {
        true => all.clone(),
        false => args.processes.clone(),
    };
    for process in &processes {
        anyhow::ensure!(
            all.contains(process),
            "{process:?} is not one of: {}",
            all.join(" ")
        );
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
    let running = |p: &&String| {
        read_pid_file(&spool.pid_file(p)).is_some_and(|pid| pid > 0 && process_alive(pid))
    };
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout.max(0.0));
    while args.wait && processes.iter().any(|p| running(&p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<&String> = processes.iter().filter(running).collect();
    if args.wait && !left.is_empty() {
        for p in left {
            eprintln!("stop: {p} still running after {}s", args.timeout);
        }
        return Ok(ExitCode::from(EXIT_FINDINGS));
    }
    Ok(ExitCode::from(EXIT_OK))
}
