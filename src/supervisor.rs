//! The `sie` supervisor: starts the feed loop and one work loop per feed queue as child
//! processes, restarts a child that dies, and on SIGTERM/SIGINT (or its stop file) sends
//! every child SIGTERM and waits for it to finish its pass.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::config::{Config, RunSettings};
use crate::daemon::{DaemonError, Role, StartUp, install_shipped_definitions, recover};
use crate::lockfile::{claim_pid_file, clear_stop};
use crate::log::ProcessLog;
use crate::notify::Outbox;
use crate::queue::{self, Spool};

/// How a child is started: this same executable with the role's arguments.
#[derive(Debug, Clone)]
pub struct ChildCommand {
    pub exe: PathBuf,
    pub spool: PathBuf,
    pub config: Option<PathBuf>,
}

impl ChildCommand {
    fn command(&self, role: &Role, start: StartUp) -> Command {
        let mut command = Command::new(&self.exe);
        command.arg("--spool").arg(&self.spool);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        match role {
            Role::Feed => command.args(["--role", "feed"]),
            Role::Work(queue) => command.args(["--role", "work", queue]),
            Role::Notify => command.args(["--role", "notify"]),
        };
        if start == StartUp::Recovered {
            command.arg("--recovered");
        }
        // SAFETY: prctl is async-signal-safe; the child asks to be sent SIGTERM if the
        // supervisor dies, so no loop outlives a killed supervisor unnoticed.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
            });
        }
        command
    }
}

/// Runs every loop until SIGTERM/SIGINT (or `stop sie`), then stops them cleanly. The
/// notify loop runs when `config` has an `[init.notify]` table.
pub fn supervise(
    spool: &Spool,
    config: &Config,
    child: &ChildCommand,
    echo: bool,
) -> Result<(), DaemonError> {
    crate::cli::use_small_pages();
    let mut roles = vec![Role::Feed];
    roles.extend(spool.feed_queue_names().into_iter().map(Role::Work));
    if let Some(settings) = &config.init.notify {
        // Bad settings stop `sie` before it starts anything, instead of a notify loop
        // restarted forever.
        Outbox::new(spool, settings)?;
        roles.push(Role::Notify);
    }
    spool.ensure_tree()?;
    let _pid_file = claim_pid_file(spool, "sie")?;
    let signalled = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&signalled))
            .map_err(DaemonError::Signals)?;
    }
    let mut log = ProcessLog::new("sie", spool.log_file("sie"), echo);
    clear_stop(spool, "sie")?;
    install_shipped_definitions(spool, &mut log);
    // One recovery of the spool before any loop starts, instead of one per loop: each
    // takes the move guard exclusively and lists every queue, so six of them one after
    // another held up the first pass by a third of a second with 10,000 messages in
    // `in`. A loop restarted later recovers the spool itself.
    recover(spool, &RunSettings::new(config), &mut log)?;
    let mut children: BTreeMap<String, (Role, Child)> = BTreeMap::new();
    for role in &roles {
        let started = spawn(child, role, StartUp::Recovered, &mut log)?;
        children.insert(role.process_name().to_string(), (role.clone(), started));
    }
    log.dated(&format!(
        "Supervising {} processes, pid {}.",
        children.len(),
        std::process::id()
    ));
    while !signalled.load(Ordering::Relaxed) && !crate::lockfile::stop_requested(spool, "sie") {
        std::thread::sleep(Duration::from_millis(200));
        for (name, (role, process)) in children.iter_mut() {
            if let Ok(Some(status)) = process.try_wait() {
                log.dated(&format!("{name} exited ({status}); restarting it."));
                std::thread::sleep(Duration::from_millis(500));
                *process = spawn(child, role, StartUp::Recover, &mut log)?;
            }
        }
    }
    log.dated("Stopping every process after its current pass.");
    // SIGTERM rather than stop files: a loop ends its pass on either, but one restarted
    // a moment ago may still be starting, and a starting loop removes the stop file it
    // finds as one left from an earlier run.
    for (_, process) in children.values() {
        signal_child(process, Signal::SIGTERM);
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for (name, (_, process)) in children.iter_mut() {
        while process.try_wait().ok().flatten().is_none() {
            if Instant::now() >= deadline {
                // Every move is rename + fsync, so a kill loses nothing; the next start
                // recovers any entry split across two queues.
                log.dated(&format!(
                    "{name} did not stop within {} s; killing it.",
                    STOP_TIMEOUT.as_secs()
                ));
                signal_child(process, Signal::SIGKILL);
                let _ = process.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    clear_stop(spool, "sie")?;
    log.dated("Stopped.");
    Ok(())
}

/// How long a stopping child may take to finish its pass.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

fn signal_child(process: &Child, signal: Signal) {
    // The child may have exited already; it is reaped by the wait that follows.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(process.id() as i32), signal);
}

fn spawn(
    child: &ChildCommand,
    role: &Role,
    start: StartUp,
    log: &mut ProcessLog,
) -> Result<Child, DaemonError> {
    let process = child
        .command(role, start)
        .spawn()
        .map_err(|e| queue::Error::io(&child.exe, e))?;
    log.line(&format!(
        "Started {} as pid {}.",
        role.process_name(),
        process.id()
    ));
    Ok(process)
}

/// An absolute form of `path`, so children find it whatever their directory.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
