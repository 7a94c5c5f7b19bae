//! A fresh spool per test, entries written the way sendmail writes them (df first, qf
//! through a tf renamed over it), and helpers to run the SIE binaries against it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sie::queue::qf::ControlFileBuilder;
use sie::queue::{QueueId, Spool};

pub struct TestSpool {
    pub dir: tempfile::TempDir,
    pub spool: Spool,
    pub config: PathBuf,
}

/// Run settings that make a test spool quick: short delays, and broken files counted
/// as broken after one second instead of ten minutes.
pub const FAST_RUN: &str = "[run]\nfeed_loop_delay = 0.1\nloop_delay = 0.1\norphan_age = 1\n";

impl TestSpool {
    pub fn new() -> TestSpool {
        TestSpool::with_config(FAST_RUN)
    }

    pub fn with_config(text: &str) -> TestSpool {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("queues"), 5);
        spool.ensure_tree().unwrap();
        let config = dir.path().join("sie.toml");
        fs::write(&config, text).unwrap();
        TestSpool { dir, spool, config }
    }

    pub fn queue(&self, name: &str) -> PathBuf {
        self.spool.queue_dir(name).unwrap()
    }

    /// Queues a message in `queue` with a sendmail-shaped control file.
    pub fn queue_message(&self, queue: &str, id: &str, subject: &str, body: &[u8]) -> QueueId {
        self.queue_message_with(queue, id, &[("Subject", subject)], body)
    }

    pub fn queue_message_with(
        &self,
        queue: &str,
        id: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> QueueId {
        let dir = self.queue(queue);
        let id = QueueId::parse(id).unwrap();
        let mut all_headers = vec![
            (
                "Received".to_string(),
                format!(
                    "from client.test (localhost [127.0.0.1])\n\tby mta.pipeline.test (8.17.1.9/8.17.1.9) with ESMTP id {id}\n\tfor <rcpt@dest.test>; Sat, 21 Nov 2026 23:23:53 GMT"
                ),
            ),
            (
                "Date".to_string(),
                "Sat, 21 Nov 2026 23:23:53 +0000".to_string(),
            ),
            ("From".to_string(), "sender@client.test".to_string()),
            ("To".to_string(), "rcpt@dest.test".to_string()),
        ];
        all_headers.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let qf = ControlFileBuilder {
            created: 1795303433,
            sender: "sender@client.test".into(),
            recipients: vec!["rcpt@dest.test".into()],
            helo: "client.test".into(),
            headers: all_headers,
            body_bytes: body.len() as u64,
        }
        .build();
        fs::write(dir.join(id.df_name()), body).unwrap();
        let tf = dir.join(format!("tf{id}"));
        fs::write(&tf, qf).unwrap();
        fs::rename(&tf, dir.join(id.qf_name())).unwrap();
        id
    }

    /// Ids of the complete entries (qf present) in a queue, sorted.
    pub fn ids(&self, queue: &str) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(self.queue(queue))
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_prefix("qf").map(str::to_string)
            })
            .collect();
        ids.sort();
        ids
    }

    /// Every file name in a queue, sorted (to see stray dfs too).
    pub fn files(&self, queue: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.queue(queue))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != ".gitkeep")
            .collect();
        names.sort();
        names
    }

    pub fn result(&self, queue: &str, id: &str) -> Option<String> {
        fs::read_to_string(self.spool.results_dir(queue).join(id)).ok()
    }

    pub fn log(&self, process: &str) -> String {
        fs::read_to_string(self.spool.log_file(process)).unwrap_or_default()
    }

    /// A command for one of SIE's programs with `--spool` and `--config` set.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(bin(program));
        command
            .arg("--spool")
            .arg(self.spool.root())
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program).args(args).output().unwrap()
    }

    /// Starts one work loop (`sie-work <queue>`) on its own, quiet.
    pub fn start_work(&self, queue: &str) -> Child {
        self.command("sie-work")
            .arg(queue)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Starts the `sie` supervisor, quiet.
    pub fn start_sie(&self) -> Child {
        self.command("sie")
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    }
}

/// The path of a binary of this package.
pub fn bin(program: &str) -> PathBuf {
    let exe = match program {
        "sie" => env!("CARGO_BIN_EXE_sie"),
        "sie-feed" => env!("CARGO_BIN_EXE_sie-feed"),
        "sie-work" => env!("CARGO_BIN_EXE_sie-work"),
        "lock" => env!("CARGO_BIN_EXE_lock"),
        "unlock" => env!("CARGO_BIN_EXE_unlock"),
        other => panic!("no binary {other} known to the tests"),
    };
    PathBuf::from(exe)
}

/// Sends SIGTERM and waits; returns the exit code.
pub fn terminate(child: &mut Child, timeout: Duration) -> Option<i32> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `done` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// A sendmail-like queue id (14 characters) from a number.
pub fn test_id(n: u32) -> String {
    format!("6ALNNrgA{n:06}")
}

pub fn set_file_age(path: &Path, secs: u64) {
    let when = std::time::SystemTime::now() - Duration::from_secs(secs);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}
