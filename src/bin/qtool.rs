//! qtool — move queue entries from one queue to another, with sendmail's locking.
//!
//! `qtool <from> <to> <id-or-glob>...` moves every entry of queue `<from>` whose id
//! matches (`6ALN*`, `?` for one character) to queue `<to>`. Each entry is locked as
//! sendmail locks it (flock on the qf, never waiting); an entry in use by the MTA or by
//! SIE, an incomplete one (still being written) and one whose id `<to>` already holds
//! are skipped with a message. The move renames the df, then the qf. Result files in
//! `sie/results/` are left alone: they are the history of why a message was held.
//! Prints `<id> <from> -> <to>` per moved entry.
//!
//! FILES: `<spool>/<queue>/qf<ID>`, `df<ID>`; `<spool>/sie/locks/spool`.
//! EXIT STATUS: 0 every matching entry moved; 1 some were skipped, or none matched;
//! 2 fatal error (unknown queue, bad pattern, unreadable queue).
//! SECURITY: run as the spool's owner (the MTA user); needs write access to both queues.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sie::cli::{EXIT_FINDINGS, EXIT_OK, SpoolArgs};
use sie::queue::select::{IdPatterns, MoveOutcome, move_matching};

/// Move queue entries between queues by id or pattern, with sendmail locking.
#[derive(Parser)]
#[command(
    after_help = "Example:\n  qtool virus out '6ALN*'    release held messages whose id starts with 6ALN"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Queue to take entries from (in, feed1.., out, virus, ext, spam, error, ...)
    from: String,
    /// Queue to put them in
    to: String,
    /// Queue ids or globs (`*`, `?`); a leading qf/df is ignored
    #[arg(required = true)]
    ids: Vec<String>,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("qtool", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (_config, spool) = args.common.open()?;
    anyhow::ensure!(
        args.from != args.to,
        "{} and {} are the same queue",
        args.from,
        args.to
    );
    let outcomes = move_matching(&spool, &args.from, &args.to, &IdPatterns::new(&args.ids)?)?;
    if outcomes.is_empty() {
        eprintln!(
            "qtool: no entry of {} matches {}",
            args.from,
            args.ids.join(" ")
        );
        return Ok(ExitCode::from(EXIT_FINDINGS));
    }
    let mut out = std::io::stdout().lock();
    let mut skipped = 0;
    for (id, outcome) in outcomes {
        match outcome {
            MoveOutcome::Moved => writeln!(out, "{id} {} -> {}", args.from, args.to)?,
            MoveOutcome::Skipped(why) => {
                eprintln!("qtool: {id}: skipped: {why}");
                skipped += 1;
            }
        }
    }
    Ok(ExitCode::from(if skipped > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }))
}
