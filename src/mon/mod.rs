//! `mon`, the live terminal monitor: takes a [`LiveSnapshot`] of the spool every interval
//! and draws it full screen (ratatui on crossterm), redrawing at once when the terminal is
//! resized; `q`, Esc or Ctrl-C (and SIGTERM, SIGHUP, SIGINT) end it and restore the terminal.
//!
//! Decisions: the queues are polled, not watched with inotify, because what is shown is
//! the queue listing itself and a poll every half second costs a dozen directory reads;
//! ratatui redraws only the cells that changed, so an idle screen sends little more than
//! its clock over ssh.

pub mod view;

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::cli::EXIT_OK;
use crate::queue::Spool;
use crate::report::live::{LiveError, LiveMonitor, LiveSnapshot};
use view::Screen;

/// The shortest `--interval`: faster polling only burns CPU on big queues.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// How often the loop looks at the stop signals while it waits for keys, and how often
/// the terminal is checked for a hang-up.
const SIGNAL_CHECK: Duration = Duration::from_millis(200);

/// How long a stop signal may wait for the main loop to restore the terminal.
const STOP_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum MonError {
    #[error("standard output is not a terminal; mon draws a full screen")]
    NotATerminal,
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error("terminal: {0}")]
    Terminal(#[from] io::Error),
}

/// `--interval SECONDS`: a positive number of seconds, at least [`MIN_INTERVAL`].
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    let interval = Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if interval < MIN_INTERVAL {
        return Err(format!(
            "{text} s is shorter than the minimum of {} s",
            MIN_INTERVAL.as_secs_f64()
        ));
    }
    Ok(interval)
}

/// Runs the monitor until a quit key or a stop signal. The first snapshot is taken before
/// the terminal is touched, so a wrong spool is reported as a plain error.
pub fn run(spool: &Spool, interval: Duration) -> Result<(), MonError> {
    let mut monitor = LiveMonitor::new(spool);
    let first = monitor.snapshot()?;
    if !io::stdout().is_terminal() {
        return Err(MonError::NotATerminal);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    watch_for_hangup(Arc::clone(&stop));
    // try_init also installs a panic hook that restores the terminal.
    let mut terminal = ratatui::try_init()?;
    let shown = show(&mut terminal, &mut monitor, first, interval, &stop);
    let restored = ratatui::try_restore();
    shown?;
    restored?;
    Ok(())
}

/// Ends the process when the main loop cannot. Once the terminal is gone (ssh dropped,
/// tmux pane killed) crossterm's event poll reads EOF over and over and never returns
/// (crossterm issue 793), so the stop flag is never looked at: this thread exits instead,
/// when the terminal hangs up or when a stop signal was not obeyed within a second.
fn watch_for_hangup(stop: Arc<AtomicBool>) {
    thread::spawn(move || {
        let mut stopping_since: Option<Instant> = None;
        loop {
            thread::sleep(SIGNAL_CHECK);
            if terminal_hung_up() {
                std::process::exit(i32::from(EXIT_OK));
            }
            if stop.load(Ordering::Relaxed) {
                let since = *stopping_since.get_or_insert_with(Instant::now);
                if since.elapsed() > STOP_GRACE {
                    std::process::exit(i32::from(EXIT_OK));
                }
            }
        }
    });
}

/// True when standard output, the terminal drawn on, has hung up.
fn terminal_hung_up() -> bool {
    let mut stdout = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: poll reads and writes only the one pollfd we own, and returns at once.
    let ready = unsafe { libc::poll(&mut stdout, 1, 0) };
    ready > 0 && stdout.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

fn show(
    terminal: &mut DefaultTerminal,
    monitor: &mut LiveMonitor,
    first: LiveSnapshot,
    interval: Duration,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut snapshot = first;
    let mut problem: Option<String> = None;
    let mut next_poll = Instant::now() + interval;
    let mut redraw = true;
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next_poll {
            // A failed poll (a queue directory moved away, say) keeps the last numbers up
            // and says why in the header; the next poll tries again.
            match monitor.snapshot() {
                Ok(taken) => {
                    snapshot = taken;
                    problem = None;
                }
                Err(e) => problem = Some(e.to_string()),
            }
            next_poll = Instant::now() + interval;
            redraw = true;
        }
        if redraw {
            let screen = Screen {
                snapshot: &snapshot,
                problem: problem.as_deref(),
            };
            terminal.draw(|frame| view::render(frame, &screen))?;
            redraw = false;
        }
        let wait = next_poll
            .saturating_duration_since(Instant::now())
            .min(SIGNAL_CHECK);
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(key) if is_quit(&key) => break,
                Event::Resize(..) => redraw = true,
                _ => {}
            }
        }
    }
    Ok(())
}

fn is_quit(key: &KeyEvent) -> bool {
    key.kind == KeyEventKind::Press
        && match key.code {
            KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc => true,
            KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_is_seconds_with_a_floor() {
        assert_eq!(parse_interval("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("2"), Ok(Duration::from_secs(2)));
        assert!(parse_interval("0.01").unwrap_err().contains("minimum"));
        assert!(parse_interval("-1").is_err());
        assert!(parse_interval("soon").is_err());
    }

    #[test]
    fn q_esc_and_ctrl_c_quit_other_keys_do_not() {
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        assert!(is_quit(&key(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(is_quit(&key(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(is_quit(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!is_quit(&key(KeyCode::Char('c'), KeyModifiers::NONE)));
        assert!(!is_quit(&key(KeyCode::Char('x'), KeyModifiers::NONE)));
    }
}
