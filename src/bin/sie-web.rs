//! sie-web — the web queue console: mail admins log in from a browser, see the
//! queues of their domains, read quarantined messages and release, delete, rescan or
//! download them. `sie-web passwd <user>` sets a user's password.
//!
//! Settings come from `[init.web]` of the config file; the flags override them.
//! FILES: `<spool>/sie/web/users` (who may see which domains), `.../passwords`
//! (argon2 hashes), `.../audit.log` (every login and action).
//! EXIT STATUS: 0 stopped by SIGTERM/SIGINT or password set, 2 fatal error.
//! SECURITY: run it as the user that owns the spool (it moves entries through the
//! queue layer); it needs no root. Listen on loopback or use TLS with `--require-tls`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sie::cli::{EXIT_OK, SpoolArgs};
use sie::web::passwords::{Passwords, read_new_password};
use sie::web::users::Users;
use sie::web::{WebConfig, WebError, server};

/// The SIE web queue console.
#[derive(Parser)]
#[command(
    after_help = "Examples:\n  echo 'pass phrase' | sie-web passwd rick\n  sie-web --listen 127.0.0.1:8025\n  sie-web --tls-cert cert.pem --tls-key key.pem --require-tls --listen 0.0.0.0:8443"
)]
struct Args {
    #[command(flatten)]
    common: SpoolArgs,
    /// Address and port to listen on [default: init.web.listen, else 127.0.0.1:8025]
    #[arg(long, value_name = "ADDR", global = true)]
    listen: Option<String>,
    /// PEM certificate chain for TLS
    #[arg(long, value_name = "FILE", global = true)]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS
    #[arg(long, value_name = "FILE", global = true)]
    tls_key: Option<PathBuf>,
    /// Refuse plain HTTP connections
    #[arg(long, global = true)]
    require_tls: bool,
    /// Users file [default: <spool>/sie/web/users]
    #[arg(long, value_name = "FILE", global = true)]
    users: Option<PathBuf>,
    /// Passwords file [default: <spool>/sie/web/passwords]
    #[arg(long, value_name = "FILE", global = true)]
    passwords: Option<PathBuf>,
    /// Audit log [default: <spool>/sie/web/audit.log]
    #[arg(long, value_name = "FILE", global = true)]
    audit_log: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Set a user's password, read from standard input (asked twice on a terminal)
    Passwd { user: String },
}

fn main() -> ExitCode {
    run(Args::parse()).unwrap_or_else(|e| sie::cli::fail("sie-web", e.as_ref()))
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (config, spool) = args.common.open()?;
    let mut web: WebConfig = config.init.web.clone();
    web.listen = args.listen.unwrap_or(web.listen);
    web.tls_cert = args.tls_cert.or(web.tls_cert);
    web.tls_key = args.tls_key.or(web.tls_key);
    web.require_tls |= args.require_tls;
    web.users_file = args.users.or(web.users_file);
    web.passwords_file = args.passwords.or(web.passwords_file);
    web.audit_log = args.audit_log.or(web.audit_log);
    if let Some(Command::Passwd { user }) = args.command {
        let users_path = web.users_path(&spool);
        if !Users::load(&users_path)?.contains(&user) {
            return Err(WebError::UnknownUser {
                user,
                path: users_path,
            }
            .into());
        }
        let password = read_new_password()?;
        let path = web.passwords_path(&spool);
        Passwords::load(&path)?.set(&path, &user, &password)?;
        println!("sie-web: password of {user} set in {}", path.display());
        return Ok(ExitCode::from(EXIT_OK));
    }
    server::serve(spool, config.run, &web, |addr, tls| {
        let scheme = if tls { "https" } else { "http" };
        println!("sie-web: listening on {scheme}://{addr}/");
        let _ = std::io::stdout().flush();
    })?;
    Ok(ExitCode::from(EXIT_OK))
}
