//! updatevdl — install new definitions, or check them without installing.
//!
//! `updatevdl <dir | file.tar.gz>` copies the definition files (`*.vdl`, `*.hdb`,
//! `*.hsb`, `*.ndb`, `*.ldb`, `*.fp`, `*.sfp`, `*.ign2`, `*.cf`; file names only, never
//! archive paths) into a new set under `<spool>/sie/vdl/`, compiles it and runs the
//! self-test (the EICAR test file must be found, a plain message must pass). Only then
//! does it lock every work queue, point `current` at the new set, and unlock; work
//! processes load it at their next pass. Anything that fails leaves the old set
//! running. SIGINT, SIGTERM or SIGHUP (cron's session ending) before the switch
//! installs nothing and releases every queue lock taken; the switch itself is never cut
//! in half. A lock left by an updatevdl killed outright names a dead pid: the next lock
//! taker (a work loop, `lock`, or the next updatevdl) clears it and logs that it did.
//! Only one updatevdl runs at a time (`sie/pids/updatevdl.pid`). `--check` compiles and
//! self-tests without installing. What it did goes to `sie/logs/updatevdl.log` too.
//!
//! FILES: `<spool>/sie/vdl/set.<n>/`, `current`, `previous`; `<spool>/sie/locks/lock.<q>`;
//! `<spool>/sie/logs/updatevdl.log`; `<spool>/sie/pids/updatevdl.pid`.
//! EXIT STATUS: 0 installed (or checked); 1 installed with lines skipped; 2 rejected,
//! queues busy, interrupted, already running, or a fatal error — the old set stays.
//! SECURITY: run as the spool's owner (cron); needs write access to `sie/`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;
use sie::cli::{EXIT_FINDINGS, EXIT_OK, SpoolArgs};
use sie::lockfile::{Holder, LockWait, claim_pid_file, stale_lock_cleared};
use sie::log::ProcessLog;
use sie::rules::{install::install, validate_dir};

/// Install or check a definitions directory or tarball.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  updatevdl vdl\n  updatevdl --check /tmp/new-defs\n  updatevdl /var/tmp/defs-20261122.tar.gz"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Compile and self-test only
    #[arg(long)]
    check: bool,
    /// Seconds to wait for running passes to release their queues
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    timeout: f64,
    /// Definitions directory, or a .tar.gz / .tgz of one
    source: std::path::PathBuf,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("updatevdl", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (summary, problems) = if args.check {
        anyhow::ensure!(args.source.is_dir(), "--check takes a directory");
        validate_dir(&args.source)
            .map_err(|reason| anyhow::anyhow!("{}: rejected: {reason}", args.source.display()))?
    } else {
        let interrupted = Arc::new(AtomicBool::new(false));
        for signal in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            signal_hook::flag::register(signal, Arc::clone(&interrupted))?;
        }
        let (_config, spool) = args.common.open()?;
        spool.ensure_tree()?;
        let _running = claim_pid_file(&spool, "updatevdl")?;
        let mut log = ProcessLog::new("updatevdl", spool.log_file("updatevdl"), false);
        log.dated(&format!("Installing {}.", args.source.display()));
        let mut on_stale = |queue: &str, dead: &Holder| {
            let line = stale_lock_cleared(queue, dead);
            eprintln!("updatevdl: {line}");
            log.line(&line);
        };
        let wait = LockWait {
            timeout: Duration::from_secs_f64(args.timeout.max(0.0)),
            interrupted: &interrupted,
            on_stale: &mut on_stale,
        };
        let report = match install(&spool, &args.source, &validate_dir, wait) {
            Ok(report) => report,
            Err(e) => {
                log.line(&format!("Not installed: {e}"));
                return Err(e.into());
            }
        };
        log.line(&format!(
            "Installed {} ({}): {}",
            report.set_dir.display(),
            report.files.join(" "),
            report.summary
        ));
        println!(
            "installed {} ({})",
            report.set_dir.display(),
            report.files.join(" ")
        );
        (report.summary, report.problems)
    };
    for problem in &problems {
        eprintln!("updatevdl: skipped {problem}");
    }
    println!("{summary}");
    Ok(ExitCode::from(if problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }))
}
