//! `mon` in a real terminal: started in a detached 80x24 tmux session (each test on its
//! own tmux server socket) on a test spool, read back with `capture-pane`. Each queue row
//! must show one X per queued message, follow messages coming and going, end a row too
//! short for all its Xs with `+N`, and `q` / Ctrl-C must end mon and leave the screen.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use chrono::Local;
use common::spool::{TestSpool, test_id, wait_until};
use sie::log::StatsLine;
use sie::mon::view::human_bytes;
use sie::timefmt::log_date;

/// Generous: a loaded machine may take seconds to start a process in tmux.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(30);

const QUEUES: [&str; 13] = [
    "in", "feed1", "feed2", "feed3", "feed4", "feed5", "out", "virus", "ext", "spam", "error",
    "delete", "release",
];

/// A tmux server of its own (its socket in the test's directory), killed when the test
/// ends however it ends.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts `shell_command` in a detached 80x24 session named `mon`.
    fn start(spool: &TestSpool, shell_command: &str) -> Tmux {
        let tmux = Tmux {
            socket: spool.dir.path().join("tmux.sock"),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "24",
            "-s",
            "mon",
            shell_command,
        ]);
        tmux
    }

    /// Starts mon; when it ends, the pane says `mon exited with <status>` and stays open.
    fn start_mon(spool: &TestSpool) -> Tmux {
        let shell = format!("{}; echo mon exited with $?; sleep 600", mon_command(spool));
        Tmux::start(spool, &shell)
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux must be installed (tools/test installs it)");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// The visible screen, one string per row.
    fn screen(&self) -> Vec<String> {
        let output = self.run(&["capture-pane", "-p", "-t", "mon"]);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until `check` accepts the screen; panics with the last screen otherwise.
    fn wait_for(&self, what: &str, mut check: impl FnMut(&[String]) -> bool) -> Vec<String> {
        let mut last = Vec::new();
        let held = wait_until(SCREEN_TIMEOUT, || {
            last = self.screen();
            check(&last)
        });
        assert!(held, "screen never showed {what}:\n{}", last.join("\n"));
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// The shell words that run mon on `spool`, polling every 0.2 s.
fn mon_command(spool: &TestSpool) -> String {
    format!(
        "{} --spool {} --config {} --interval 0.2",
        quoted(Path::new(env!("CARGO_BIN_EXE_mon"))),
        quoted(spool.spool.root()),
        quoted(&spool.config)
    )
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// A queue row as drawn: message count, bytes column, Xs, and the `+N` of Xs not drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    messages: usize,
    bytes: String,
    marks: usize,
    more: usize,
}

/// The queue rows of a screen, by queue name (rows start with the name; verdict rows
/// start with a time, so they are never taken for queue rows).
fn queue_rows(screen: &[String]) -> HashMap<String, Row> {
    let mut rows = HashMap::new();
    for line in screen {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 || !QUEUES.contains(&fields[0]) {
            continue;
        }
        let Ok(messages) = fields[1].parse() else {
            continue;
        };
        let more = fields
            .last()
            .and_then(|f| f.strip_prefix('+'))
            .map_or(0, |n| n.parse().unwrap());
        let marks = fields[3..]
            .iter()
            .filter(|f| f.chars().all(|c| c == 'X'))
            .map(|f| f.len())
            .sum();
        rows.insert(
            fields[0].to_string(),
            Row {
                messages,
                bytes: fields[2].to_string(),
                marks,
                more,
            },
        );
    }
    rows
}

/// Messages and qf + df bytes of a queue, counted from the files.
fn on_disk(spool: &TestSpool, queue: &str) -> (usize, u64) {
    let ids = spool.ids(queue);
    let bytes = ids
        .iter()
        .flat_map(|id| [format!("qf{id}"), format!("df{id}")])
        .map(|name| fs::metadata(spool.queue(queue).join(name)).unwrap().len())
        .sum();
    (ids.len(), bytes)
}

/// True when every queue row shows exactly the messages on disk, one X each.
fn rows_match_disk(spool: &TestSpool, screen: &[String]) -> bool {
    let rows = queue_rows(screen);
    QUEUES.iter().all(|queue| {
        let (messages, bytes) = on_disk(spool, queue);
        rows.get(*queue).is_some_and(|row| {
            *row == Row {
                messages,
                bytes: human_bytes(bytes),
                marks: messages,
                more: 0,
            }
        })
    })
}

fn queue_many(spool: &TestSpool, queue: &str, first: u32, count: u32, body: &[u8]) {
    for n in first..first + count {
        spool.queue_message(queue, &test_id(n), "mon test", body);
    }
}

fn remove(spool: &TestSpool, queue: &str, id: &str) {
    fs::remove_file(spool.queue(queue).join(format!("qf{id}"))).unwrap();
    fs::remove_file(spool.queue(queue).join(format!("df{id}"))).unwrap();
}

#[test]
fn rows_show_one_x_per_message_and_follow_the_queues() {
    let spool = TestSpool::new();
    queue_many(&spool, "in", 1, 3, b"small body\r\n");
    queue_many(&spool, "feed2", 100, 7, &[b'x'; 3000]);
    queue_many(&spool, "virus", 200, 1, b"X5O!P%@AP\r\n");
    let tmux = Tmux::start_mon(&spool);
    let screen = tmux.wait_for("the queued messages", |s| rows_match_disk(&spool, s));
    let rows = queue_rows(&screen);
    assert_eq!(rows.len(), QUEUES.len(), "{}", screen.join("\n"));
    assert_eq!((rows["in"].marks, rows["feed2"].marks), (3, 7));
    assert_eq!(rows["out"].marks, 0);
    assert!(rows["feed2"].bytes.ends_with('K'), "{:?}", rows["feed2"]);
    assert!(screen[0].contains("0 msgs/min") && screen[0].contains("11 queued"));
    assert!(screen.len() <= 24 && screen.iter().all(|row| row.chars().count() <= 80));

    // Messages come and go: the rows follow.
    queue_many(&spool, "out", 300, 2, b"delivered soon\r\n");
    remove(&spool, "feed2", &test_id(100));
    remove(&spool, "feed2", &test_id(101));
    let screen = tmux.wait_for("2 in out and 5 in feed2", |s| {
        rows_match_disk(&spool, s) && queue_rows(s)["feed2"].marks == 5
    });
    assert_eq!(queue_rows(&screen)["out"].marks, 2);

    // A work pass in the log: the rate and the verdict appear.
    let date = log_date(Local::now());
    let stats = StatsLine {
        vir: 1,
        clean: 1,
        msgs: 2,
        vs: 0.2,
        ..StatsLine::default()
    };
    let log = format!(
        "feed1: {date}: Started pass 1.1.1.\nfeed1: Clean, moving: 6AM0Crsh016634\nfeed1: Virus, moving: 6AM0CrXU016646 (Eicar-Test-Signature: part 1)\nfeed1: {stats}\nfeed1: {date}: Finished pass.\n"
    );
    fs::write(spool.spool.log_file("feed1"), log).unwrap();
    let screen = tmux.wait_for("the pass of feed1.log", |s| {
        s[0].contains(" 2 msgs/min") && s.iter().any(|row| row.contains("6AM0CrXU016646"))
    });
    let verdicts: Vec<&String> = screen
        .iter()
        .filter(|r| r.split_whitespace().nth(1) == Some("feed1"))
        .collect();
    assert!(
        verdicts[0].contains("virus") && verdicts[0].contains("Eicar-Test-Signature: part 1"),
        "newest first: {verdicts:?}"
    );
    assert!(verdicts[1].contains("clean") && verdicts[1].contains("6AM0Crsh016634"));
    assert!(rows_match_disk(&spool, &screen));

    tmux.run(&["send-keys", "-t", "mon", "q"]);
    let screen = tmux.wait_for("mon ending", |s| {
        s.iter().any(|row| row.contains("mon exited with 0"))
    });
    assert!(
        queue_rows(&screen).is_empty(),
        "the monitor's screen is gone:\n{}",
        screen.join("\n")
    );
}

#[test]
fn a_queue_longer_than_its_row_ends_with_plus_n_and_resizing_redraws() {
    let spool = TestSpool::new();
    queue_many(&spool, "in", 1, 150, b"one of many\r\n");
    queue_many(&spool, "spam", 500, 4, b"buy now\r\n");
    let tmux = Tmux::start_mon(&spool);
    let screen = tmux.wait_for("150 messages in in", |s| {
        queue_rows(s)
            .get("in")
            .is_some_and(|row| row.messages == 150)
    });
    let row = queue_rows(&screen)["in"].clone();
    assert_eq!(row.marks + row.more, 150, "{row:?}");
    assert!(row.marks >= 50 && row.more > 0, "{row:?}");
    assert_eq!(row.bytes, human_bytes(on_disk(&spool, "in").1));
    assert_eq!(queue_rows(&screen)["spam"].marks, 4);
    let in_line = screen.iter().find(|l| l.starts_with("in ")).unwrap();
    assert!(in_line.chars().count() <= 80, "{in_line}");

    // A wider terminal holds more Xs; the count they stand for stays the same.
    tmux.run(&["resize-window", "-t", "mon", "-x", "120", "-y", "30"]);
    let screen = tmux.wait_for("a 120-column row", |s| {
        queue_rows(s)
            .get("in")
            .is_some_and(|r| r.marks > row.marks && r.marks + r.more == 150)
    });
    assert!(queue_rows(&screen)["in"].marks >= 90);

    tmux.run(&["send-keys", "-t", "mon", "C-c"]);
    tmux.wait_for("mon ending on Ctrl-C", |s| {
        s.iter().any(|row| row.contains("mon exited with 0"))
    });
}

/// A process state from /proc; `None` once the process is gone.
fn process_state(pid: &str) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn a_lost_terminal_ends_mon() {
    let spool = TestSpool::new();
    queue_many(&spool, "in", 1, 2, b"hello\r\n");
    let tmux = Tmux::start(&spool, &format!("exec {}", mon_command(&spool)));
    tmux.wait_for("the queue rows", |s| rows_match_disk(&spool, s));
    let output = tmux.run(&["display-message", "-p", "-t", "mon", "#{pane_pid}"]);
    let pid = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(process_state(&pid).is_some(), "mon runs as pid {pid}");

    // Killing the server closes the terminal under mon, as a dropped ssh session does.
    tmux.run(&["kill-server"]);
    let ended = wait_until(SCREEN_TIMEOUT, || {
        matches!(process_state(&pid), None | Some('Z'))
    });
    if !ended {
        // Do not leave it spinning on the dead terminal.
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    }
    assert!(ended, "mon (pid {pid}) still ran without its terminal");
}
