//! lock — lock work queues for an admin, waiting for their passes to end.
//!
//! `lock <queue>...|all` takes `sie/locks/lock.<queue>` for each named work queue
//! (`all`: feed1..N) as an admin lock (holder pid 0, `lock by <user> at <date>`), which
//! lasts until `unlock`. While a work process holds a queue's lock (a pass is scanning),
//! `lock` waits for it, up to `--timeout` seconds in all. A queue already locked by an
//! admin counts as locked. If some queue cannot be locked in time, the locks this run
//! took are released again, so a script's `lock all && update && unlock all` never
//! leaves half the queues locked. Prints each queue locked.
//!
//! FILES: `<spool>/sie/locks/lock.<queue>`.
//! EXIT STATUS: 0 all locked; 1 timed out (nothing left locked by this run); 2 fatal.
//! SECURITY: run as the spool's owner; needs write access to `sie/locks`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sie::cli::{EXIT_FINDINGS, EXIT_OK, SpoolArgs};
use sie::lockfile::{Holder, LockQueuesOutcome, expand_names, lock_queues};

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
    let timeout = Duration::from_secs_f64(args.timeout.max(0.0));
    match lock_queues(&spool, &queues, &holder, timeout)? {
        LockQueuesOutcome::Locked(locked) => {
            for (queue, earlier) in locked {
                match earlier {
                    None => println!("{queue} locked ({})", holder.name),
                    Some(other) => println!("{queue} already locked ({})", other.name),
                }
            }
            Ok(ExitCode::from(EXIT_OK))
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
