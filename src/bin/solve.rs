//! solve — fit each work queue's pass time `t00 + t0*msgs + ts*bytes` from the logs, or
//! simulate the feed policies on an arrival trace.
//!
//! `solve [--since DATE] [--queue Q]... [--robust] [--json] [--write] [LOG]...` reads the
//! `Stats:` lines of the work logs (default: `<spool>/sie/logs/feed<N>.log*` and
//! `<spool>/archive/**/feed<N>.log*`, gzip included) and fits, per queue and for all
//! queues pooled (`all`), t00, t0 and ts by least squares: a table with each estimate,
//! its 95% confidence interval, the passes used, R^2 and the RMS residual, then the lines
//! for the run settings. A queue whose passes cannot determine a parameter is refused
//! with the reason. `--robust` down-weights outlying passes (Huber). `--write` puts the
//! fitted values into `[run.queue.<q>]` of the settings file (atomically, keeping its
//! comments). `--json` prints one object per queue and line.
//!
//! `solve --simulate (--trace FILE | --generate N) [--policy P]... [--sizes LIST] [--nq N]
//! [--sleep-after-pass] [--svg FILE]` replays arrivals (a trace of `<epoch> <bytes>` lines
//! or a feed log, or generated ones) through a model of the feed and work loops with the
//! run settings and prints p50/p99 latency per size class for each feed policy, so the
//! effect of `sizes`, `nq` and `feed_policy` can be seen before changing them; `--svg`
//! draws latency against message size.
//!
//! FILES: `<spool>/sie/logs/feed<N>.log*`, `<spool>/archive/`, the settings file.
//! EXIT STATUS: 0 every queue fitted (or simulated); 1 some queue refused, or no passes;
//! 2 fatal error (unreadable log or trace, bad date, `--write` without a settings file).
//! SECURITY: reads the logs; `--write` needs write access to the settings file and its
//! directory (the file is replaced, keeping its mode; run it as the file's owner).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use sie::cli::{EXIT_FINDINGS, EXIT_OK, SpoolArgs};
use sie::config::FeedPolicy;
use sie::log::tail::log_path;
use sie::tune::report::{self, settings_timing};
use sie::tune::samples::{PassSet, spool_work_logs};
use sie::tune::simulate::{self, Cadence, simulate};
use sie::tune::solver::Method;
use sie::tune::trace::{SizeMix, generate, parse_size, read_trace};
use sie::tune::{chart, settings};

/// Fit t00/t0/ts per queue from the work logs, or simulate the feed policies.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  solve --since 2026-11-01 --robust\n  solve --write --config /etc/sie/sie.toml\n  solve --simulate --generate 20000 --rate 40 --svg latency.svg"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Logs to read (paths or process names) instead of the spool's work logs
    #[arg(conflicts_with = "simulate")]
    logs: Vec<String>,
    /// Only passes started at or after this date
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only this queue (repeatable)
    #[arg(long = "queue", value_name = "Q")]
    queues: Vec<String>,
    /// Down-weight outlying passes (Huber IRLS)
    #[arg(long)]
    robust: bool,
    /// Write the fitted values into the settings file (--config / SIE_CONFIG)
    #[arg(long, conflicts_with = "simulate")]
    write: bool,
    /// One JSON object per line
    #[arg(long)]
    json: bool,
    /// Simulate the feed and work loops instead of fitting
    #[arg(long)]
    simulate: bool,
    /// Arrival trace: `<epoch> <bytes>` lines or a feed log
    #[arg(
        long,
        value_name = "FILE",
        requires = "simulate",
        conflicts_with = "generate"
    )]
    trace: Option<PathBuf>,
    /// Generate N Poisson arrivals instead of reading a trace
    #[arg(long, value_name = "N", requires = "simulate")]
    generate: Option<usize>,
    /// Seed of the generated trace (the same seed gives the same trace)
    #[arg(long, default_value_t = 1, requires = "generate")]
    seed: u64,
    /// Arrivals per second of the generated trace
    #[arg(long, default_value_t = 20.0, requires = "generate")]
    rate: f64,
    /// Sizes of the generated trace, e.g. 70:2k-20k,22:20k-200k,6:200k-2m,2:2m-20m
    #[arg(long, value_name = "MIX", requires = "generate")]
    size_mix: Option<SizeMix>,
    /// Feed policy to simulate, bytes or eta (repeatable) [default: both]
    #[arg(long = "policy", value_name = "P", value_parser = parse_policy, requires = "simulate")]
    policies: Vec<FeedPolicy>,
    /// Queue size limits instead of run.sizes, e.g. 2m,2m,2m,2m,0
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = size_arg, requires = "simulate")]
    sizes: Option<Vec<u64>>,
    /// NQ instead of run.nq
    #[arg(long, requires = "simulate")]
    nq: Option<usize>,
    /// Model work processes that sleep loop_delay after each pass (a what-if: sie-work
    /// starts a pass every loop_delay)
    #[arg(long, requires = "simulate")]
    sleep_after_pass: bool,
    /// Write a chart of latency against message size to FILE
    #[arg(long, value_name = "FILE", requires = "simulate")]
    svg: Option<PathBuf>,
}

fn parse_policy(text: &str) -> Result<FeedPolicy, String> {
    match text {
        "bytes" => Ok(FeedPolicy::Bytes),
        "eta" => Ok(FeedPolicy::Eta),
        _ => Err("expected bytes or eta".into()),
    }
}

fn size_arg(text: &str) -> Result<u64, String> {
    parse_size(text).ok_or_else(|| format!("{text:?} is not a size (2000, 2k, 2m)"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = if args.simulate {
        run_simulation(&args)
    } else {
        run_fit(&args)
    };
    result.unwrap_or_else(|e| sie::cli::fail("solve", e.as_ref()))
}

fn run_fit(args: &Args) -> anyhow::Result<ExitCode> {
    let (config, spool) = args.common.open()?;
    if args.write && config.path.is_none() {
        bail!("--write needs a settings file: give --config FILE or set SIE_CONFIG");
    }
    let since = match &args.since {
        Some(text) => Some(
            sie::timefmt::date_to_epoch(text).with_context(|| format!("not a date: {text:?}"))?,
        ),
        None => None,
    };
    let logs = match args.logs.is_empty() {
        true => spool_work_logs(&spool)?,
        false => args.logs.iter().map(|l| log_path(&spool, l)).collect(),
    };
    let mut set = PassSet::default();
    for log in &logs {
        set.add_log(log, since, &args.queues)?;
    }
    for queue in &args.queues {
        set.add(queue, Vec::new(), None);
    }
    if set.all().is_empty() {
        eprintln!(
            "solve: no work passes in {} log(s); nothing to fit",
            logs.len()
        );
        return Ok(ExitCode::from(EXIT_FINDINGS));
    }
    let method = if args.robust {
        Method::Huber
    } else {
        Method::LeastSquares
    };
    let fits = report::fit_queues(&set, method);
    let mut out = std::io::stdout().lock();
    match args.json {
        true => report::write_json(&fits, &mut out)?,
        false => report::write_text(&fits, &mut out)?,
    }
    out.flush()?;
    if args.write {
        let path = config.path.as_deref().unwrap_or(std::path::Path::new(""));
        let known = spool.feed_queue_names();
        let mut timings = Vec::new();
        for result in fits.iter().filter(|r| r.queue != "all") {
            match &result.outcome {
                Ok(fit) if known.contains(&result.queue) => {
                    timings.push((result.queue.clone(), settings_timing(fit)))
                }
                Ok(_) => eprintln!(
                    "solve: {} is not a feed queue of this spool; not written",
                    result.queue
                ),
                Err(_) => eprintln!(
                    "solve: {} refused; its settings are left as they are",
                    result.queue
                ),
            }
        }
        if timings.is_empty() {
            eprintln!(
                "solve: no queue fitted; {} is left as it is",
                path.display()
            );
            return Ok(ExitCode::from(EXIT_FINDINGS));
        }
        let changed = settings::write_timings(path, &timings)?;
        let names: Vec<&str> = timings.iter().map(|(q, _)| q.as_str()).collect();
        let verb = if changed { "wrote" } else { "unchanged:" };
        eprintln!(
            "solve: {verb} t00/t0/ts of {} in {}",
            names.join(" "),
            path.display()
        );
    }
    let refused = fits.iter().any(|f| f.outcome.is_err());
    Ok(ExitCode::from(if refused {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }))
}

fn run_simulation(args: &Args) -> anyhow::Result<ExitCode> {
    let (config, _spool) = args.common.open()?;
    let mut run = config.run.clone();
    if let Some(sizes) = &args.sizes {
        if sizes.is_empty() {
            bail!("--sizes needs at least one queue");
        }
        if args.nq.is_none() && sizes.len() != run.sizes.len() {
            run.nq = run.nq.min(sizes.len().saturating_sub(1)).max(1);
        }
        run.sizes = sizes.clone();
    }
    run.nq = args.nq.unwrap_or(run.nq);
    if run.nq == 0 || run.nq > run.sizes.len() {
        bail!(
            "--nq must be between 1 and the number of queues ({})",
            run.sizes.len()
        );
    }
    let arrivals = match (&args.trace, args.generate) {
        (Some(path), _) => read_trace(path)?,
        (None, Some(count)) => {
            if !(args.rate.is_finite() && args.rate > 0.0) {
                bail!("--rate must be a positive number of messages per second");
            }
            let mix = args.size_mix.clone().unwrap_or_default();
            generate(count, args.seed, args.rate, &mix)
        }
        (None, None) => bail!("--simulate needs --trace FILE or --generate N"),
    };
    let policies = match args.policies.is_empty() {
        true => vec![FeedPolicy::Bytes, FeedPolicy::Eta],
        false => args.policies.clone(),
    };
    let cadence = match args.sleep_after_pass {
        true => Cadence::AfterPass,
        false => Cadence::Fixed,
    };
    let outcomes: Vec<_> = policies
        .iter()
        .map(|&p| simulate(&arrivals, &run, p, cadence))
        .collect();
    let span = arrivals.last().map_or(0.0, |a| a.at) - arrivals.first().map_or(0.0, |a| a.at);
    let sizes: Vec<String> = run.sizes.iter().map(|s| s.to_string()).collect();
    let title = format!(
        "{} messages in {span:.0} s; sizes {}, nq {}, maxpass {} s, loop_delay {} s{}, feed_loop_delay {} s",
        arrivals.len(),
        sizes.join(","),
        run.nq,
        run.maxpass,
        run.loop_delay,
        if args.sleep_after_pass {
            " (sleep after pass)"
        } else {
            ""
        },
        run.feed_loop_delay
    );
    let mut out = std::io::stdout().lock();
    if args.json {
        simulate::write_json(&outcomes, &mut out)?;
    } else {
        writeln!(
            out,
            "{title}\nlatency in seconds, arrival in `in` to scanned:"
        )?;
        simulate::write_text(&outcomes, &mut out)?;
    }
    out.flush()?;
    if let Some(path) = &args.svg {
        std::fs::write(path, chart::svg(&outcomes, &title))
            .with_context(|| path.display().to_string())?;
    }
    Ok(ExitCode::from(EXIT_OK))
}
