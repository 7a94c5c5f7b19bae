//! unlock — remove admin locks from work queues.
//!
//! `unlock <queue>...|all` removes `sie/locks/lock.<queue>` for each named work queue
//! (`all`: feed1..N) and prints who held it. A lock held by a running work process
//! (its pass is scanning) is left alone unless `--force`: removing it would let a
//! second pass or a rule install in while the first is still scanning. A lock whose
//! holder process is dead is removed.
//!
//! FILES: `<spool>/sie/locks/lock.<queue>`.
//! EXIT STATUS: 0 done (a queue that was not locked is fine); 1 some lock was held by a
//! running process and kept; 2 fatal error.
//! SECURITY: run as the spool's owner; needs write access to `sie/locks`.

use std::process::ExitCode;

use clap::Parser;
use sie::cli::{EXIT_FINDINGS, EXIT_OK, SpoolArgs};
use sie::lockfile::{expand_names, queue_lock_holder, unlock_queue};

/// Unlock work queues locked with `lock`.
#[derive(Parser)]
#[command(after_help = "Examples:\n  unlock all\n  unlock feed5")]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Work queues (feed1..N), or `all`
    #[arg(required = true)]
    queues: Vec<String>,
    /// Also remove a lock held by a running work process
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("unlock", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (_config, spool) = args.common.open()?;
    let queues = expand_names(&args.queues, &spool.feed_queue_names())?;
    let mut kept = 0;
    for queue in &queues {
        match queue_lock_holder(&spool, queue)? {
            None => println!("{queue} was not locked"),
            Some(h) if h.pid > 0 && !h.is_stale() && !args.force => {
                eprintln!(
                    "unlock: {queue}: held by running pid {} ({}); kept",
                    h.pid, h.name
                );
                kept += 1;
            }
            Some(_) => match unlock_queue(&spool, queue)? {
                Some(h) => println!("{queue} unlocked (was: {} {})", h.pid, h.name),
                None => println!("{queue} was not locked"),
            },
        }
    }
    Ok(ExitCode::from(if kept > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }))
}
