//! msgscan — scan messages and files the way a work queue would, and say why.
//!
//! Each argument is a queue id (found in any queue of the spool), an `.eml` file, an
//! mbox (each message scanned), any other file (scanned as an attachment of that
//! name), or a directory (every file below it, in parallel, with a progress bar on
//! stderr). Definitions come from `--vdl DIR` (every `*.vdl`, `*.hdb`, `*.hsb`,
//! `*.ndb`, `*.ldb`, `*.fp`, `*.sfp`, `*.ign2` and SpamAssassin `*.cf` in it), else the
//! spool's installed set, else the definitions built into SIE. Lines of those files
//! that cannot be used are listed on stderr with file and line.
//!
//! OUTPUT: `<path>: <verdict> <name> at <where>: <why>`, or with `--json` one object per
//! message: `path`, `verdict`, `name`, `where`, `score`, `why`.
//! EXIT STATUS: 0 all clean, 1 something found, 2 an input could not be read or
//! scanned (or a fatal error).
//! SECURITY: reads what it is given; needs no privilege, writes nothing.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use rayon::prelude::*;
use sie::cli::{EXIT_FATAL, EXIT_FINDINGS, EXIT_OK, SpoolArgs};
use sie::inputs::{Source, read, scan_input, sources};
use sie::rules::{RuleSet, install::installed_set};
use sie::scan::VerdictKind;

/// Scan queued messages, .eml or mbox files, other files or directories.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  msgscan 6ALNNrgA023896\n  msgscan --vdl vdl --json ~/Maildir/cur\n  msgscan suspicious.zip"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Definitions directory instead of the installed set
    #[arg(long, value_name = "DIR")]
    vdl: Option<std::path::PathBuf>,
    /// One JSON object per line per message
    #[arg(long)]
    json: bool,
    /// Queue ids, files or directories
    #[arg(required = true)]
    inputs: Vec<String>,
}

/// Inputs read and scanned at a time: enough to keep every core busy, few enough to
/// bound memory.
const CHUNK: usize = 64;

fn main() -> ExitCode {
    // As in the work loops: with huge pages, loading a million signatures took 0.3 s
    // or, when the kernel had to compact memory for them first, 1 s.
    sie::cli::use_small_pages();
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("msgscan", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (config, spool) = args.common.open()?;
    let (rules, problems) = match (&args.vdl, installed_set(&spool)) {
        (Some(dir), _) => RuleSet::load_dir(dir)?,
        (None, Some(set)) => RuleSet::load_dir(&set)?,
        (None, None) => RuleSet::shipped()?,
    };
    for problem in &problems {
        eprintln!("msgscan: skipped {problem}");
    }
    let options = config.run.scan_options("feed1");
    let found = sources(&args.inputs, &spool)?;
    let progress = (found.len() > 1 && found.iter().all(|s| matches!(s, Source::File(_))))
        .then(|| indicatif::ProgressBar::new(found.len() as u64));
    let mut out = std::io::stdout().lock();
    let mut status = EXIT_OK;
    for chunk in found.chunks(CHUNK) {
        let results: Vec<_> = chunk
            .par_iter()
            .map(|source| {
                read(source).map(|inputs| {
                    inputs
                        .into_iter()
                        .map(|input| (input.label.clone(), scan_input(&input, &options, &rules)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for result in results {
            let verdicts = match result {
                Ok(verdicts) => verdicts,
                Err(e) => {
                    eprintln!("msgscan: {e}");
                    status = EXIT_FATAL;
                    continue;
                }
            };
            for (label, verdict) in verdicts {
                if args.json {
                    let line = serde_json::json!({
                        "path": label, "verdict": verdict.kind.as_str(), "name": verdict.name,
                        "where": verdict.location, "score": verdict.score, "why": verdict.reason,
                    });
                    writeln!(out, "{line}")?;
                } else if verdict.kind == VerdictKind::Clean {
                    writeln!(out, "{label}: clean")?;
                } else {
                    writeln!(
                        out,
                        "{label}: {} {} at {}: {}",
                        verdict.kind.as_str(),
                        verdict.name,
                        verdict.location,
                        verdict.reason
                    )?;
                }
                status = status.max(match verdict.kind {
                    VerdictKind::Clean => EXIT_OK,
                    VerdictKind::Error => EXIT_FATAL,
                    _ => EXIT_FINDINGS,
                });
            }
        }
        if let Some(bar) = &progress {
            bar.inc(chunk.len() as u64);
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    out.flush()?;
    // The process ends here: freeing a large set one allocation at a time would take
    // as long as a third of loading it, and the kernel reclaims it all at once.
    std::mem::forget(rules);
    Ok(ExitCode::from(status))
}
