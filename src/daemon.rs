//! The process loop shared by `sie-feed`, `sie-work` and `sie-notify`: claim the pid
//! file, recover the spool (unless the supervisor just did), then `pass -> stop
//! requested? -> sleep -> pass`, re-reading the run settings before each pass. Work
//! loops start a pass every `loop_delay` (sleeping what is left of it after the pass),
//! staggered across the queues. SIGTERM/SIGINT and the stop file both end it after the
//! current pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::{Config, RunSettings};
use crate::feed::feed_pass;
use crate::lockfile::{
    self, Holder, LockWait, claim_pid_file, clear_stop, stale_lock_cleared, stop_requested,
    write_free,
};
use crate::log::ProcessLog;
use crate::notify::{Notice, NotifyError, Outbox, record_notices};
use crate::queue::recover::recover_spool;
use crate::queue::{self, ListingCache, Spool};
use crate::rules::ensure_installed;
use crate::rules::install::installed_set;
use crate::timefmt::now_epoch;
use crate::work::{PassEnd, WorkError, WorkState, work_pass};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Queue(#[from] queue::Error),
    #[error(transparent)]
    Lock(#[from] lockfile::LockError),
    #[error(transparent)]
    Work(#[from] WorkError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("{queue}: not a feed queue of this spool (feed1..feed{count})")]
    NotAFeedQueue { queue: String, count: usize },
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error("notifications are off: the settings file has no [init.notify] table")]
    NotifyOff,
}

/// Whether a starting loop recovers the spool itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartUp {
    /// It does: a loop started on its own, or restarted after a crash that may have
    /// split an entry.
    Recover,
    /// The supervisor recovered the whole spool just before it started this loop with
    /// the others. The loop only empties its scratch space.
    Recovered,
}

/// Which loop a process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Feed,
    Work(String),
    /// The notification sender (`sie/notify/` jobs to SMTP).
    Notify,
}

impl Role {
    /// The process name used for its log, pid and stop files (`feed`, `feed1` ...).
    pub fn process_name(&self) -> &str {
        match self {
            Role::Feed => "feed",
            Role::Work(queue) => queue,
            Role::Notify => "notify",
        }
    }
}

/// Runs the loop of `role` until a stop file or signal ends it. `echo` copies the log
/// to stderr.
pub fn run(
    role: Role,
    spool: &Spool,
    config: &Config,
    echo: bool,
    start: StartUp,
) -> Result<(), DaemonError> {
    crate::cli::use_small_pages();
    if let Role::Work(queue) = &role
        && !spool.feed_queue_names().contains(queue)
    {
        return Err(DaemonError::NotAFeedQueue {
            queue: queue.clone(),
            count: spool.feed_queue_count(),
        });
    }
    let mut outbox = match (&role, &config.init.notify) {
        (Role::Notify, Some(settings)) => Some(Outbox::new(spool, settings)?),
        (Role::Notify, None) => return Err(DaemonError::NotifyOff),
        _ => None,
    };
    spool.ensure_tree()?;
    let name = role.process_name().to_string();
    let _pid_file = claim_pid_file(spool, &name)?;
    let signalled = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&signalled))
            .map_err(DaemonError::Signals)?;
    }
    let mut log = ProcessLog::new(&name, spool.log_file(&name), echo);
    if clear_stop(spool, &name)? {
        log.line("Removed a stop file left from before this start.");
    }
    log.dated(&format!("Starting, pid {}.", std::process::id()));
    let mut settings = RunSettings::new(config);
    empty_scratch(spool, &name)?;
    // The notify loop never touches a queue, so it leaves recovery to the others.
    if role != Role::Notify && start == StartUp::Recover {
        recover(spool, &settings, &mut log)?;
    }
    match role {
        Role::Feed => install_shipped_definitions(spool, &mut log),
        Role::Work(_) if installed_set(spool).is_none() => log.line(
            "No definitions installed yet: scanning with the built-in EICAR signature until a set is installed.",
        ),
        Role::Work(_) | Role::Notify => {}
    }
    let mut work_state = WorkState::default();
    let mut listings = ListingCache::default();
    let should_stop = || signalled.load(Ordering::Relaxed) || stop_requested(spool, &name);
    // Work loops start spread over one loop_delay (feed1 first) and then keep a fixed
    // cadence, so their wake-ups stay spread instead of bunching, which is also what
    // `solve --simulate` models.
    if let Role::Work(queue) = &role {
        let position = spool
            .feed_queue_names()
            .iter()
            .position(|q| q == queue)
            .unwrap_or(0);
        let offset =
            settings.current().loop_delay * position as f64 / spool.feed_queue_count() as f64;
        if sleep_unless(&should_stop, Duration::from_secs_f64(offset)) {
            clear_stop(spool, &name)?;
            log.dated("Stopped.");
            return Ok(());
        }
    }
    let mut pass = 0u64;
    loop {
        pass += 1;
        let pass_started = Instant::now();
        log.reopen();
        // The queue loops log a line or two per message; notify logs few, and as they
        // happen, so its lines go out at once.
        if role != Role::Notify {
            log.hold();
        }
        match settings.reload() {
            Ok(true) => log.line("Run settings reloaded."),
            Ok(false) => {}
            Err(e) => log.line(&format!("Keeping the last good run settings: {e}")),
        }
        let run = settings.current().clone();
        let delay = match &role {
            Role::Feed => {
                match feed_pass(spool, &run, &mut log, &mut listings) {
                    Ok(_) => {}
                    Err(e) => log.line(&format!("Pass failed: {e}")),
                }
                run.feed_loop_delay
            }
            Role::Work(queue) => {
                let worked = match work_pass(
                    spool,
                    queue,
                    &run,
                    &mut log,
                    pass,
                    &mut work_state,
                    &should_stop,
                ) {
                    Ok(PassEnd::Finished(_, notices)) => {
                        record_quarantined(spool, config, &notices, &mut log);
                        true
                    }
                    Ok(PassEnd::Idle) => false,
                    Ok(PassEnd::Stopped) => break,
                    Err(e) => {
                        log.line(&format!("Pass failed: {e}"));
                        true
                    }
                };
                let delay = (run.loop_delay - pass_started.elapsed().as_secs_f64()).max(0.0);
                write_free(spool, queue, now_epoch() + delay)?;
                if worked {
                    log.dated(&format!("Sleeping: {}", (delay * 1000.0).round() / 1000.0));
                }
                delay
            }
            Role::Notify => {
                let Some(outbox) = outbox.as_mut() else {
                    break;
                };
                outbox.pass(&mut log, &should_stop);
                outbox.loop_delay()
            }
        };
        log.release();
        if should_stop() || sleep_unless(&should_stop, Duration::from_secs_f64(delay)) {
            break;
        }
    }
    log.release();
    clear_stop(spool, &name)?;
    log.dated("Stopped.");
    Ok(())
}

/// Leaves a notification job for each quarantined message when notifications are on.
/// The moves are durable already; a job that cannot be written costs only its
/// notification, so it is logged and the loop runs on.
fn record_quarantined(spool: &Spool, config: &Config, notices: &[Notice], log: &mut ProcessLog) {
    if config.init.notify.is_none() || notices.is_empty() {
        return;
    }
    if let Err(e) = record_notices(spool, notices) {
        let ids: Vec<&str> = notices.iter().map(|n| n.id.as_str()).collect();
        log.line(&format!(
            "Cannot record notifications for {}: {e}",
            ids.join(" ")
        ));
    }
}

/// Installs the definitions built into SIE when the spool has none, so a fresh spool
/// scans with them from the start; a failure is logged and the loops run on.
pub fn install_shipped_definitions(spool: &Spool, log: &mut ProcessLog) {
    let mut stale_lines = Vec::new();
    let mut on_stale = |queue: &str, holder: &Holder| {
        stale_lines.push(stale_lock_cleared(queue, holder));
    };
    let installed = ensure_installed(
        spool,
        LockWait::uninterrupted(Duration::from_secs(60), &mut on_stale),
    );
    for line in &stale_lines {
        log.line(line);
    }
    match installed {
        Ok(Some(report)) => log.line(&format!(
            "Installed the shipped definitions in {}: {}",
            report.set_dir.display(),
            report.summary
        )),
        Ok(None) => {}
        Err(e) => log.line(&format!("Cannot install the shipped definitions: {e}")),
    }
}

/// Empties the scratch space of process `name`: a scan it left is of no use.
fn empty_scratch(spool: &Spool, name: &str) -> Result<(), DaemonError> {
    let scratch = spool.work_dir(name);
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(|e| queue::Error::io(&scratch, e))?;
    }
    Ok(())
}

/// Reunites the entries a crash split across two queues, in the whole spool.
pub(crate) fn recover(
    spool: &Spool,
    settings: &RunSettings,
    log: &mut ProcessLog,
) -> Result<(), DaemonError> {
    let recovery = recover_spool(spool, settings.current().orphan_age())?;
    for (id, from, to) in &recovery.reunited {
        log.line(&format!(
            "Recovered {id}: df from {} put back beside its qf in {}",
            from.display(),
            to.display()
        ));
    }
    for (id, from) in &recovery.orphans_quarantined {
        log.line(&format!(
            "Error, moving: {id} (df without qf in {})",
            from.display()
        ));
    }
    Ok(())
}

/// Sleeps up to `duration`, waking early when `should_stop` turns true; returns whether
/// it did.
fn sleep_unless(should_stop: &dyn Fn() -> bool, duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
        if should_stop() {
            return true;
        }
    }
}
