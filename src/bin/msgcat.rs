//! msgcat — print a queued message as MTA-out would send it.
//!
//! `msgcat <queue> <id-or-glob>...` or `msgcat <path/qf<ID>>...` prints each entry's
//! header section (from its qf, without sendmail's conditional Return-Path), a blank
//! line, then its body (the df). `--qf` prints the control file as stored instead,
//! then a line `--- df ---`, then the df. Entries are read without locking them.
//! Several entries are printed one after the other.
//!
//! FILES: `<spool>/<queue>/qf<ID>`, `df<ID>`.
//! EXIT STATUS: 0 printed; 1 some entry was missing, had no df, or a broken qf (said on
//! stderr, the rest printed); 2 fatal error.
//! SECURITY: needs read access to the queue; the output is the message, mind who sees it.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sie::cli::{EXIT_FINDINGS, EXIT_OK, SpoolArgs};
use sie::report::listing::{entries_named, write_entry};

/// Print one queued message (qf headers + df body) as one stream.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  msgcat virus 6ALNNrgA023896\n  msgcat --qf queues/in/qf6ALNNrgA023896 | less"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// `<queue> <id-or-glob>...`, or paths of qf files
    #[arg(required = true, value_name = "QUEUE ID... | QF-PATH")]
    args: Vec<String>,
    /// Print the raw control file, a `--- df ---` line, then the df
    #[arg(long)]
    qf: bool,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("msgcat", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (_config, spool) = args.common.open()?;
    let (entries, missing) = entries_named(&spool, &args.args)?;
    let mut problems = missing.len();
    for text in &missing {
        eprintln!("msgcat: {text}");
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for entry in &entries {
        if let Err(e) = write_entry(&mut out, entry, args.qf) {
            if e.is_output_error() {
                return Err(e.into());
            }
            out.flush()?;
            eprintln!("msgcat: {e}");
            problems += 1;
        }
    }
    out.flush()?;
    Ok(ExitCode::from(if problems > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }))
}
