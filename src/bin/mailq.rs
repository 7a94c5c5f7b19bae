//! mailq — list one queue's entries, oldest first, in sendmail's succinct `mailq` layout.
//!
//! `mailq [queue]` (default `in`) prints a header, then per entry its id, size (qf + df
//! bytes), queue time, sender and, indented below, its recipients; then the total. The
//! control files are read without locking them, so listing never disturbs the MTA or
//! SIE; an entry caught half-written shows `(unreadable: <reason>)`. `--ids` prints only
//! the ids, one per line.
//!
//! FILES: `<spool>/<queue>/qf<ID>`, `df<ID>`.
//! EXIT STATUS: 0 listed; 2 fatal error (unknown queue, unreadable directory).
//! SECURITY: needs read access to the queue directory (the MTA user, or root).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sie::cli::{EXIT_OK, SpoolArgs};
use sie::report::listing::{read_queue, write_mailq};

/// List a queue's entries with sizes, like sendmail's mailq.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  mailq            the in queue\n  mailq virus      quarantined viruses\n  mailq --ids spam | head"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Queue to list
    #[arg(default_value = "in")]
    queue: String,
    /// Print only the queue ids, oldest first
    #[arg(long)]
    ids: bool,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("mailq", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (_config, spool) = args.common.open()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.ids {
        let listing = sie::queue::list_dir(&spool.queue_dir(&args.queue)?)?;
        for entry in &listing.entries {
            writeln!(out, "{}", entry.id)?;
        }
    } else {
        write_mailq(&mut out, &args.queue, &read_queue(&spool, &args.queue)?)?;
    }
    out.flush()?;
    Ok(ExitCode::from(EXIT_OK))
}
