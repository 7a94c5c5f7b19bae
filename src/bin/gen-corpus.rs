//! gen-corpus — write a deterministic corpus of realistic test messages.
//!
//! `gen-corpus --seed S --count N --out DIR [--mix realistic|small|big]
//! [--format queue|eml|both] [--eicar-rate R] [--spam-rate R] [--ext-rate R] [--force]`
//!
//! Writes sendmail queue entries (`DIR/queue/qf<ID>` + `df<ID>`), RFC 822 files
//! (`DIR/eml/<ID>.eml`) and `DIR/MANIFEST.tsv` (id, bytes, kind, where, class). The same
//! seed and arguments give byte-identical files. Layout and mix: `sie::corpus`.
//!
//! EXIT STATUS: 0 written; 2 fatal error (bad rates, existing corpus without --force,
//! file-system error).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use sie::cli::EXIT_OK;
use sie::corpus::{CorpusSpec, Format, Mix, write_corpus};

/// Write a deterministic corpus of test messages (sendmail queue entries and .eml files).
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  gen-corpus --seed 1 --count 2000 --out /tmp/corpus\n  gen-corpus --seed 7 --count 10000 --mix small --format queue --out /tmp/small\n  cp /tmp/small/queue/* queues/in/"
)]
struct Args {
    /// Seed of the generator: the same seed and arguments give the same files
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of messages
    #[arg(long)]
    count: usize,
    /// Size mix: realistic (mostly 2-20 KiB, 5.5% of 100 KiB-5 MiB), small or big
    #[arg(long, value_enum, default_value = "realistic")]
    mix: Mix,
    /// Output directory (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Write queue entries, .eml files or both
    #[arg(long, value_enum, default_value = "both")]
    format: Format,
    /// Share of messages carrying the EICAR test file
    #[arg(long, default_value_t = 0.02)]
    eicar_rate: f64,
    /// Share of spam-like messages
    #[arg(long, default_value_t = 0.2)]
    spam_rate: f64,
    /// Share of messages with a blocked attachment name (.exe, invoice.pdf.exe)
    #[arg(long, default_value_t = 0.01)]
    ext_rate: f64,
    /// Replace a corpus already in DIR (removes DIR/queue, DIR/eml, DIR/MANIFEST.tsv)
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("gen-corpus", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let spec = CorpusSpec {
        seed: args.seed,
        count: args.count,
        mix: args.mix,
        eicar_rate: args.eicar_rate,
        spam_rate: args.spam_rate,
        ext_rate: args.ext_rate,
    };
    let plan = spec.plan().map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let summary = write_corpus(&plan, &args.out, args.format, args.force)?;
    let seconds = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "gen-corpus: {} messages, {} bytes ({:.1} MB), {} files, {} bytes written to {} in {seconds:.2} s ({:.0} msgs/s, {:.1} MB/s)",
        summary.messages,
        summary.bytes,
        summary.bytes as f64 / 1e6,
        summary.files,
        summary.written,
        args.out.display(),
        summary.messages as f64 / seconds.max(1e-9),
        summary.written as f64 / 1e6 / seconds.max(1e-9),
    )?;
    let kinds: Vec<String> = summary
        .kinds
        .iter()
        .map(|(k, n)| format!("{k}:{n}"))
        .collect();
    let classes: Vec<String> = summary
        .classes
        .iter()
        .map(|(c, (n, bytes))| format!("{c}:{n} ({:.1} MB)", *bytes as f64 / 1e6))
        .collect();
    writeln!(out, "gen-corpus: kinds {}", kinds.join(" "))?;
    writeln!(out, "gen-corpus: sizes {}", classes.join(" "))?;
    Ok(ExitCode::from(EXIT_OK))
}
