//! gen-sigs — write a ClamAV-compatible signature set of realistic size.
//!
//! `gen-sigs --seed S --count N --out DIR [--match-corpus CORPUS [--corpus-hashes K]]`
//!
//! Writes `DIR/gen.ndb` (hex body signatures, some with wildcards), `DIR/gen.hdb` (MD5)
//! and `DIR/gen.hsb` (SHA-256), each with EICAR, loadable by SIE and by `clamscan -d DIR`.
//! With `--match-corpus`, K attachments of clean corpus messages get hash signatures and
//! `DIR/CORPUS-MATCHES.tsv` names the messages they match. Rules: `sie::corpus::sigs`.
//!
//! EXIT STATUS: 0 written; 2 fatal error.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use sie::cli::EXIT_OK;
use sie::corpus::sigs::{SigSpec, write_sigs};

/// Write a ClamAV-compatible signature set (gen.ndb, gen.hdb, gen.hsb).
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  gen-sigs --seed 1 --count 1000000 --out /tmp/sigs\n  gen-sigs --count 10000 --out /tmp/sigs --match-corpus /tmp/corpus\n  clamscan -d /tmp/sigs -r /tmp/corpus/eml"
)]
struct Args {
    /// Seed of the generator: the same seed and arguments give the same files
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of random signatures (60% ndb, 25% hdb, 15% hsb); EICAR comes on top
    #[arg(long)]
    count: usize,
    /// Output directory (created if missing; its gen.* files are replaced)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// A gen-corpus directory: add hash signatures of some of its attachments
    #[arg(long, value_name = "CORPUS")]
    match_corpus: Option<PathBuf>,
    /// How many corpus attachments to hash
    #[arg(long, default_value_t = 6, requires = "match_corpus")]
    corpus_hashes: usize,
}

fn main() -> ExitCode {
    run(&Args::parse()).unwrap_or_else(|e| sie::cli::fail("gen-sigs", e.as_ref()))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let spec = SigSpec {
        seed: args.seed,
        count: args.count,
        match_corpus: args.match_corpus.clone(),
        corpus_hashes: args.corpus_hashes,
    };
    let started = Instant::now();
    let summary = write_sigs(&spec, &args.out)?;
    let seconds = started.elapsed().as_secs_f64();
    let kinds: Vec<String> = summary
        .kinds
        .iter()
        .map(|(k, n)| format!("{k}:{n}"))
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "gen-sigs: {} signatures ({}), {} bytes ({:.1} MB) to {} in {seconds:.2} s",
        summary.total(),
        kinds.join(" "),
        summary.bytes,
        summary.bytes as f64 / 1e6,
        args.out.display(),
    )?;
    for (id, signature) in &summary.corpus_matches {
        writeln!(out, "gen-sigs: {signature} matches an attachment of {id}")?;
    }
    Ok(ExitCode::from(EXIT_OK))
}
