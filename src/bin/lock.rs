//! lock — lock work queues for an admin, waiting for their passes to end.
//!
//! `lock <queue>...|all` takes `sie/locks/lock.<queue>` for each named work queue
//! (`all`: feed1..N) as an admin lock (holder pid 0, `lock by <user> at <date>`), which
//! lasts until `unlock`. While a work process holds a queue's lock (a pass is scanning),
//! `lock` waits for it, polling every 100 ms, up to `--timeout` seconds in all. A
//! queue already locked by an admin counts as locked. If some queue cannot be locked in
//! time, the locks this run took are released again, so a script's `lock all &&
//! update && unlock all` never leaves half the queues locked. Prints each queue locked.
//!
//! FILES: `<spool>/sie/locks/lock.<queue>`.
//! EXIT STATUS: 0 all locked; 1 timed out (nothing left locked by this run); 2 fatal.
//! SECURITY: run as the spool's owner; needs write access to `sie/locks`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use sie::cli::{EXIT_FINDINGS, EXIT_OK, SpoolArgs};
use sie::lockfile::{Holder, QueueLockOutcome, try_lock_queue, unlock_queue};

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
    let queues = work_queues(&args.queues, spool.feed_queue_names())?;
    let holder = Holder {
        pid: 0,
        name: format!(
            "lock by {} at {}",
            user(),
            sie::timefmt::log_date(chrono::Local::now())
        ),
    };
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout.max(0.0));
    let mut taken = Vec::new();
    for queue in &queues {
        loop {
            match try_lock_queue(&spool, queue, &holder)? {
                QueueLockOutcome::Taken(lock) => {
                    lock.keep();
                    taken.push(queue);
                    println!("{queue} locked ({})", holder.name);
                }
                QueueLockOutcome::Held(other) if other.pid == 0 => {
                    println!("{queue} already locked ({})", other.name);
                }
                QueueLockOutcome::Held(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                QueueLockOutcome::Held(other) => {
                    eprintln!(
                        "lock: {queue}: still held by pid {} ({}) after {}s",
                        other.pid, other.name, args.timeout
                    );
                    for queue in taken {
                        unlock_queue(&spool, queue)?;
                        eprintln!("lock: {queue}: released again");
                    }
                    return Ok(ExitCode::from(EXIT_FINDINGS));
                }
            }
            break;
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// `all`, or the named queues, each of which must be a work queue.
fn work_queues(names: &[String], all: Vec<String>) -> anyhow::Result<Vec<String>> {
    if names.iter().any(|n| n == "all") {
        return Ok(all);
    }
    for name in names {
        anyhow::ensure!(
            all.contains(name),
            "{name:?} is not a work queue ({})",
            all.join(" ")
        );
    }
    Ok(names.to_vec())
}

/// Who is locking: `$USER`, `$LOGNAME`, else the uid.
fn user() -> String {
    use std::os::unix::fs::MetadataExt;
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            Some(format!(
                "uid {}",
                std::fs::metadata("/proc/self").ok()?.uid()
            ))
        })
        .unwrap_or_else(|| "unknown".into())
}
