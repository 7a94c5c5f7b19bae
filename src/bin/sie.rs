//! sie — run the whole pipeline in the foreground.
//!
//! Starts the feed loop and one work loop per feed queue (as child processes of this
//! same program), restarts any that dies, and stops them all cleanly on SIGTERM or
//! Ctrl-C, after their current pass. With no flags it runs on the embedded defaults with
//! the spool `./queues`, created when missing.
//!
//! FILES: `<spool>/sie/logs/*.log`, `<spool>/sie/pids/*.pid`, `<spool>/sie/locks/`.
//! EXIT STATUS: 0 after a clean stop, 2 on a fatal error.
//! SECURITY: needs write access to the spool only; run it as the MTAs' queue owner.

use std::process::ExitCode;

use clap::Parser;
use sie::cli::{SpoolArgs, fail};
use sie::daemon::{Role, StartUp, run};
use sie::supervisor::{ChildCommand, absolute, supervise};

#[derive(Parser)]
#[command(version, about = "Run SIE's feed and work loops in the foreground")]
#[command(
    after_help = "Examples:\n  sie                       # spool ./queues, embedded defaults\n  sie --spool /var/spool/sie --config /etc/sie.toml"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Internal: run one loop (`feed`, or `work <queue>`) instead of supervising
    #[arg(long, hide = true, num_args = 1..=2, value_names = ["ROLE", "QUEUE"])]
    role: Vec<String>,
    /// Internal: the supervisor has just recovered the spool; the loop skips its own recovery
    #[arg(long, hide = true, requires = "role")]
    recovered: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = (|| -> anyhow::Result<()> {
        let (config, spool) = args.common.open()?;
        let start = if args.recovered {
            StartUp::Recovered
        } else {
            StartUp::Recover
        };
        match args.role.as_slice() {
            [] => {
                let exe = std::env::current_exe()?;
                let child = ChildCommand {
                    exe,
                    spool: absolute(spool.root()),
                    config: config.path.as_deref().map(absolute),
                };
                supervise(&spool, &config, &child, true)?;
            }
            [role] if role == "feed" => run(Role::Feed, &spool, &config, true, start)?,
            [role] if role == "notify" => run(Role::Notify, &spool, &config, true, start)?,
            [role, queue] if role == "work" => {
                run(Role::Work(queue.clone()), &spool, &config, true, start)?
            }
            other => anyhow::bail!("unknown role {other:?}"),
        }
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("sie", e.as_ref()),
    }
}
