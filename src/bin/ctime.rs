//! ctime — epoch seconds to a local date with milliseconds.
//!
//! `ctime [EPOCH]...` prints, for each epoch time (seconds, with an optional fraction,
//! as in `free.<q>` files and pass timings), the local date with milliseconds
//! (`Sat Nov 21 18:23:53.250 EST 2026`), one per line; with no argument, now.
//! `time` does the reverse.
//!
//! FILES: none.
//! EXIT STATUS: 0 all converted; 2 some argument is not an epoch time.
//! SECURITY: none needed.

use std::process::ExitCode;

use clap::Parser;
use sie::cli::{EXIT_FATAL, EXIT_OK};
use sie::timefmt::{epoch_to_date, now_epoch};

/// Epoch seconds (with fraction) to a local date with milliseconds.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  ctime 1795303433.25\n  ctime $(cat queues/sie/locks/free.feed1)"
)]
struct Args {
    /// Accepted for uniformity with the other tools; unused
    #[command(flatten)]
    _common: sie::cli::SpoolArgs,
    /// Epoch seconds, e.g. 1795303433.250 [default: now]
    #[arg(allow_negative_numbers = true)]
    epochs: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let epochs = match args.epochs.is_empty() {
        true => vec![now_epoch().to_string()],
        false => args.epochs,
    };
    let mut code = EXIT_OK;
    for text in &epochs {
        match text.trim().parse::<f64>().ok().and_then(epoch_to_date) {
            Some(date) => println!("{date}"),
            None => {
                eprintln!("ctime: not an epoch time: {text:?}");
                code = EXIT_FATAL;
            }
        }
    }
    ExitCode::from(code)
}
