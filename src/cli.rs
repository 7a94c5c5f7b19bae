//! What every program shares: `--spool`/`SIE_SPOOL` and `--config`/`SIE_CONFIG`, and
//! the exit codes (0 ok, 1 finished with findings or skipped entries, 2 fatal).

use std::error::Error;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, ConfigError};
use crate::daemon::{Role, StartUp};
use crate::queue::Spool;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_FATAL: u8 = 2;

/// The flags every program takes.
#[derive(Debug, Clone, clap::Args)]
pub struct SpoolArgs {
    /// Spool root [default: init.spool_root of the config, else ./queues]
    #[arg(long, env = "SIE_SPOOL", value_name = "DIR", global = true)]
    pub spool: Option<PathBuf>,
    /// Settings file (TOML); without one the embedded defaults apply
    #[arg(long, env = "SIE_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

impl SpoolArgs {
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        Config::load(self.config.as_deref())
    }

    /// The spool named by `--spool`, else by the config.
    pub fn spool(&self, config: &Config) -> Spool {
        let root = self
            .spool
            .clone()
            .unwrap_or_else(|| config.init.spool_root.clone());
        Spool::new(root, config.init.feed_queues)
    }

    /// Loads the config and names the spool, in one step for programs that need both.
    pub fn open(&self) -> Result<(Config, Spool), ConfigError> {
        let config = self.load_config()?;
        let spool = self.spool(&config);
        Ok((config, spool))
    }
}

/// Turns transparent huge pages off for this process and the ones it starts (the flag
/// is inherited and kept across exec). mimalloc asks for huge pages for its heap, and
/// each first touch of one zeroes 2 MiB: the work loops' resident memory was twice
/// their use (50 MiB against 23), and zeroing took a tenth of a pipeline run's CPU
/// and almost half of its first half second. A kernel without the flag just keeps
/// huge pages.
pub fn use_small_pages() {
    let _ = nix::sys::prctl::set_thp_disable(true);
}

/// The whole of `sie-feed`, `sie-work` and `sie-notify`: runs `role`'s loop on the spool
/// and settings `args` name until it is told to stop.
pub fn run_loop(program: &str, role: Role, args: &SpoolArgs, foreground: bool) -> ExitCode {
    let (config, spool) = match args.open() {
        Ok(opened) => opened,
        Err(e) => return fail(program, &e),
    };
    match crate::daemon::run(role, &spool, &config, foreground, StartUp::Recover) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(program, &e),
    }
}

/// Prints a fatal error with its causes and gives exit code 2; a closed output pipe
/// (`mailq | head`) is not an error and exits 0.
pub fn fail(program: &str, err: &(dyn Error + 'static)) -> ExitCode {
    let mut cause: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::BrokenPipe
        {
            return ExitCode::from(EXIT_OK);
        }
        cause = e.source();
    }
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        // Errors written `{path}: {source}` already end with their cause's text.
        let said = e.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = e.source();
    }
    eprintln!("{program}: {text}");
    ExitCode::from(EXIT_FATAL)
}
