//! time — a date to epoch seconds with milliseconds.
//!
//! `time [DATE]...` prints, for each date, the epoch time with three decimals, one per
//! line; with no argument, now. Accepted: RFC 3339 (`2026-11-21T23:23:53Z`), RFC 2822
//! (`Sat, 21 Nov 2026 23:23:53 +0000`), the log and `ctime` format (`Sat Nov 21
//! 23:23:53.250 2026`, zone word ignored: local time), `YYYY-MM-DD [HH:MM[:SS[.fff]]]`
//! and `YYYYmmddHHMMSS`; local time where no zone is given. A date left unquoted (one
//! word per argument) is read as one date when the words do not parse one by one.
//! Note: this `time` shadows the shell's `time` keyword and time(1); call it by path.
//!
//! FILES: none.
//! EXIT STATUS: 0 all converted; 2 some argument is not a date.
//! SECURITY: none needed.

use std::process::ExitCode;

use clap::Parser;
use sie::cli::{EXIT_FATAL, EXIT_OK};
use sie::timefmt::{date_to_epoch, now_epoch};

/// A date to epoch seconds with milliseconds.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  time '2026-11-21 23:23:53.250'\n  time Thu May 23 10:18:10 EDT 2002"
)]
struct Args {
    /// Accepted for uniformity with the other tools; unused
    #[command(flatten)]
    _common: sie::cli::SpoolArgs,
    /// Dates [default: now]
    #[arg(allow_hyphen_values = true)]
    dates: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.dates.is_empty() {
        println!("{:.3}", now_epoch());
        return ExitCode::from(EXIT_OK);
    }
    let each: Vec<Option<f64>> = args.dates.iter().map(|d| date_to_epoch(d)).collect();
    let joined = date_to_epoch(&args.dates.join(" "));
    if let (true, Some(epoch)) = (each.contains(&None), joined) {
        println!("{epoch:.3}");
        return ExitCode::from(EXIT_OK);
    }
    let mut code = EXIT_OK;
    for (text, epoch) in args.dates.iter().zip(each) {
        match epoch {
            Some(epoch) => println!("{epoch:.3}"),
            None => {
                eprintln!("time: not a date: {text:?}");
                code = EXIT_FATAL;
            }
        }
    }
    ExitCode::from(code)
}
