//! lock — lock work queues for an admin, waiting for their passes to end.
//!
//! `lock <queue>...|all` takes `sie/locks/lock.<queue>` for each named work queue
//! (`all`: feed1..N) as an admin lock (holder pid 0, `lock by <user> at <date>`), which
//! lasts until `unlock`. While a work process holds a queue's lock (a pass is scanning),
//! `lock` waits for it, up to `--timeout` seconds in all. A queue already locked by an
//! admin counts as locked. If some queue cannot be locked in time, the locks this run
//! took are released again, so a script's `lock all && update && unlock all` never
//! leaves half the queues locked; so does SIGINT/SIGTERM while waiting. A lock whose
//! holder process is dead (a killed `updatevdl` or work loop) is cleared and reported.
//! Prints each queue locked.
//!
//! FILES: `<spool>/sie/locks/lock.<queue>`.
//! EXIT STATUS: 0 all locked; 1 timed out (nothing left locked by this run); 2
//! interrupted (nothing left locked by this run) or fatal.
//! SECURITY: run as the spool's owner; needs write access to `sie/locks`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;
use sie::cli::{EXIT_FATAL, EXIT_FINDINGS, EXIT_OK, SpoolArgs};
use sie::lockfile::{
    Holder, LockQueuesOutcome, LockWait, expand_names, lock_queues, stale_lock_cleared,
};

/// Lock work queues (multi-queue admin lock), waiting while a pass holds them.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  lock all && install-rules && unlock all\n  lock --timeout 10 feed1 feed2"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Work queues (feed1..N), or `all`
    #[arg(required = true)]
    queues: Vec<String>,
    /// Seconds to wait in all for running passes to release their queues
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    timeout: f64,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("lock", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (_config, spool) = args.common.open()?;
    let queues = expand_names(&args.queues, &spool.feed_queue_names())?;
    let user = std::env::var("USER").unwrap_or_else(|_| format!("uid {}", nix::unistd::getuid()));
    let holder = Holder {
        pid: 0,
        name: format!(
            "lock by {user} at {}",
            sie::timefmt::log_date(chrono::Local::now())
        ),
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))?;
    }
    let wait = LockWait {
        timeout: Duration::from_secs_f64(args.timeout.max(0.0)),
        interrupted: &interrupted,
        on_stale: &mut |queue: &str, dead: &Holder| {
            println!("{}", stale_lock_cleared(queue, dead));
        },
    };
    match lock_queues(&spool, &queues, &holder, wait)? {
        LockQueuesOutcome::Locked(locked) => {
            for locked in locked {
                match locked.earlier_admin {
                    None => println!("{} locked ({})", locked.queue, holder.name),
                    Some(other) => println!("{} already locked ({})", locked.queue, other.name),
                }
            }
            Ok(ExitCode::from(EXIT_OK))
        }
        LockQueuesOutcome::Interrupted => {
            eprintln!("lock: interrupted; nothing left locked");
            Ok(ExitCode::from(EXIT_FATAL))
        }
        LockQueuesOutcome::TimedOut { queue, holder } => {
            eprintln!(
                "lock: {queue}: still held by pid {} ({}) after {}s; nothing left locked",
                holder.pid, holder.name, args.timeout
            );
            Ok(ExitCode::from(EXIT_FINDINGS))
        }
    }
}
