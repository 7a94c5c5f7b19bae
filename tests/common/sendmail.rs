//! Harness for running real sendmail (Debian `sendmail-bin` 8.17) around SIE.
//!
//! Follows `SENDMAIL.md` (the shared, tested facts):
//! - every sendmail invocation runs inside
//!   `unshare --uts --mount --propagation private` with a private host name and
//!   bind-mounted `/etc/hosts`, `/etc/nsswitch.conf` and `/etc/resolv.conf`
//!   (§2), so sendmail never does DNS and never sleeps 60 s on its own name;
//! - one hand-written 37-line cf (§3b) serves both instances; the listener
//!   port and the sink port are substituted when it is written, the queue
//!   directory and pid file are given with `-O` per instance (§4);
//! - instance A is `-bD -ODeliveryMode=queueonly` (foreground, never delivers);
//!   instance B is a synchronous `-qf` run or a `-q1s` persistent runner that
//!   relays to `[127.0.0.1]:<sink port>`.
//!
//! All traffic stays on 127.0.0.1. Every process started here is stopped by
//! its id when its guard is dropped (no leftovers). Only `std` is used.

use std::fs;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The sendmail binary (`/usr/libexec/sendmail/sendmail` through alternatives).
pub const SENDMAIL: &str = "/usr/sbin/sendmail";
/// Host name inside the namespace; also `$j` in the cf.
pub const MTA_HOSTNAME: &str = "mta.pipeline.test";
/// HELO name used by [`send`].
pub const CLIENT_HELO: &str = "client.test";

/// The hand-written cf of SENDMAIL.md §3b, verbatim, with `@INPORT@`,
/// `@SINKPORT@` and `@ETC@` placeholders. Fields are TAB separated where
/// sendmail requires it (rewrite rules: LHS TAB RHS).
const CF_TEMPLATE: &str = "V10/Berkeley
Djmta.pipeline.test
Cwlocalhost mta.pipeline.test
O QueueDirectory=/nonexistent/override-with-O-QueueDirectory
O DaemonPortOptions=Family=inet, Name=MTA-in, Addr=127.0.0.1, Port=@INPORT@
O DontProbeInterfaces=True
O ServiceSwitchFile=@ETC@/service.switch
O Timeout.ident=0
O PrivacyOptions=noetrn,noexpn,novrfy,restrictqrun
H?P?Return-Path: <$g>
HReceived: from $s ($_) by $j with $r id $i; $b
H?D?Date: $a
H?F?From: $g
H?M?Message-Id: <$t.$i@$j>
S3
R$@\t\t\t$@ <@>
R<>\t\t\t$@ <@>
R$* < $+ > $*\t\t$: $2
R$+ @ $+\t\t$@ $1 < @ $2 >
S0
R<@>\t\t\t$#relay $@ [127.0.0.1] $: <>
R$+ < @ $+ >\t\t$#relay $@ [127.0.0.1] $: $1 < @ $2 >
R$*\t\t\t$#error $@ 5.1.3 $: \"553 address needs a domain\"
S4
R$* < @ $+ > $*\t\t$@ $1 @ $2 $3
R<@>\t\t\t$@
S10
Mlocal,\tP=/bin/false, F=lsDFM, S=10, R=10, A=false
Mprog,\tP=/bin/false, F=lsDFM, S=10, R=10, A=false
Mrelay,\tP=[IPC], F=mDFMuXa8, S=10, R=10, E=\\r\\n, L=2040, T=DNS/RFC822/SMTP, A=TCP $h @SINKPORT@
";

const HOSTS: &str = "127.0.0.1\tmta.pipeline.test localhost\n::1\tmta.pipeline.test localhost\n";
const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files\n";
const RESOLV: &str = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n";
const SERVICE_SWITCH: &str = "hosts files\naliases files\n";

/// The namespace wrapper of SENDMAIL.md §2. `$0` is the private etc dir.
const NS_SCRIPT: &str = "hostname mta.pipeline.test && \
mount --bind \"$0/hosts\" /etc/hosts && \
mount --bind \"$0/nsswitch.conf\" /etc/nsswitch.conf && \
mount --bind \"$0/resolv.conf\" /etc/resolv.conf && \
exec \"$@\"";

/// Finds a free TCP port on 127.0.0.1 (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Fails loudly (panics) unless the e2e prerequisites are present: root, sendmail,
/// swaks, unshare/mount namespaces. These tests must never silently skip.
pub fn require_tools() {
    let mut problems = Vec::new();
    match effective_uid() {
        Some(0) => {}
        Some(uid) => problems.push(format!("must run as root (euid is {uid})")),
        None => problems.push("cannot read the euid from /proc/self/status".to_string()),
    }
    if !Path::new(SENDMAIL).exists() {
        problems.push(format!("{SENDMAIL} is missing (package sendmail-bin)"));
    }
    let swaks_ok = Command::new("swaks")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !swaks_ok {
        problems.push("swaks is missing or broken (package swaks)".to_string());
    }
    if problems.is_empty() {
        let ns_ok = Command::new("unshare")
            .args(["--uts", "--mount", "--propagation", "private", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ns_ok {
            problems.push(
                "`unshare --uts --mount --propagation private true` failed \
                 (no namespace privileges in this container?)"
                    .to_string(),
            );
        }
    }
    if !problems.is_empty() {
        panic!(
            "\n\nreal-sendmail end-to-end test cannot run:\n  - {}\n\
             Fix: run as root after\n  apt-get install -y --no-install-recommends sendmail-bin swaks\n\
             (this test fails instead of skipping on purpose)\n",
            problems.join("\n  - ")
        );
    }
}

fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

static RUN_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Output of a bounded, synchronous sendmail (or other) run.
#[derive(Debug)]
pub struct RunOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// A prepared sendmail configuration in `root`: `etc/` (the namespace's
/// hosts/nsswitch/resolv plus service.switch), `pipeline.cf`, `run/` (pid
/// files) and `log/` (stdout/stderr of every process started).
#[derive(Clone, Debug)]
pub struct Mta {
    root: PathBuf,
    etc: PathBuf,
    cf: PathBuf,
    run: PathBuf,
    log: PathBuf,
    in_port: u16,
    sink_port: u16,
}

impl Mta {
    /// Writes `root/etc/{hosts,nsswitch.conf,resolv.conf,service.switch}` and
    /// `root/pipeline.cf` (listener on `127.0.0.1:in_port`, relay to
    /// `[127.0.0.1]:sink_port`), and creates `root/run` and `root/log`.
    pub fn prepare(root: &Path, in_port: u16, sink_port: u16) -> io::Result<Mta> {
        let root = root.to_path_buf();
        let etc = root.join("etc");
        let run = root.join("run");
        let log = root.join("log");
        for d in [&root, &etc, &run, &log] {
            fs::create_dir_all(d)?;
        }
        for p in [&root, &etc] {
            if p.to_str().is_none_or(|s| s.contains(char::is_whitespace)) {
                return Err(io::Error::other(format!(
                    "{}: sendmail paths must be UTF-8 without white space",
                    p.display()
                )));
            }
        }
        fs::write(etc.join("hosts"), HOSTS)?;
        fs::write(etc.join("nsswitch.conf"), NSSWITCH)?;
        fs::write(etc.join("resolv.conf"), RESOLV)?;
        fs::write(etc.join("service.switch"), SERVICE_SWITCH)?;
        let cf = root.join("pipeline.cf");
        let text = CF_TEMPLATE
            .replace("@INPORT@", &in_port.to_string())
            .replace("@SINKPORT@", &sink_port.to_string())
            .replace("@ETC@", etc.to_str().unwrap());
        fs::write(&cf, text)?;
        Ok(Mta {
            root,
            etc,
            cf,
            run,
            log,
            in_port,
            sink_port,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn cf(&self) -> &Path {
        &self.cf
    }
    pub fn etc(&self) -> &Path {
        &self.etc
    }
    pub fn log_dir(&self) -> &Path {
        &self.log
    }
    pub fn in_port(&self) -> u16 {
        self.in_port
    }
    pub fn sink_port(&self) -> u16 {
        self.sink_port
    }

    /// `unshare … sh -c '<§2 wrapper>' <etc> /usr/sbin/sendmail -C <cf> <args…>`.
    /// `unshare` and `sh` exec in place, so the child's pid is sendmail's pid.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args(["--uts", "--mount", "--propagation", "private", "sh", "-c"])
            .arg(NS_SCRIPT)
            .arg(&self.etc)
            .arg(SENDMAIL)
            .arg("-C")
            .arg(&self.cf);
        for a in args {
            cmd.arg(a);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs sendmail in the namespace with `args`, synchronously, at most
    /// `timeout` (then it is killed and an error returned).
    pub fn run<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: &[S],
        timeout: Duration,
    ) -> io::Result<RunOutput> {
        let n = RUN_COUNTER.fetch_add(1, Ordering::SeqCst);
        run_bounded(self.command(args), &self.log, &format!("run{n}"), timeout)
    }

    /// Starts instance A: `-bD -ODeliveryMode=queueonly -OQueueDirectory=<queue>
    /// -OPidFile=<run>/in.pid`, and waits until `127.0.0.1:in_port` accepts
    /// connections. The queue directory is created if missing (sendmail does not).
    pub fn start_a(&self, queue: &Path) -> io::Result<Listener> {
        fs::create_dir_all(queue)?;
        let pid_file = self.run.join("in.pid");
        let _ = fs::remove_file(&pid_file);
        let stdout = self.log.join("a.stdout");
        let stderr = self.log.join("a.stderr");
        let mut cmd = self.command(&[
            "-bD".to_string(),
            "-ODeliveryMode=queueonly".to_string(),
            format!("-OQueueDirectory={}", queue.display()),
            format!("-OPidFile={}", pid_file.display()),
        ]);
        cmd.stdout(fs::File::create(&stdout)?)
            .stderr(fs::File::create(&stderr)?);
        let child = cmd.spawn()?;
        let mut listener = Listener {
            pid: child.id(),
            child: Some(child),
            port: self.in_port,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = listener.child.as_mut().unwrap().try_wait()? {
                listener.child = None;
                return Err(io::Error::other(format!(
                    "sendmail A exited early with {status}; stderr: {}",
                    fs::read_to_string(&listener.stderr).unwrap_or_default()
                )));
            }
            if TcpStream::connect_timeout(
                &format!("127.0.0.1:{}", self.in_port).parse().unwrap(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return Ok(listener);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "sendmail A did not listen on 127.0.0.1:{} within 15 s; stderr: {}",
                    self.in_port,
                    fs::read_to_string(&listener.stderr).unwrap_or_default()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs instance B once, synchronously: `-qf` on `queue` (add `-v` in
    /// `extra` for the SMTP transcript, `-qI<id>` to select ids).
    pub fn run_b_once(&self, queue: &Path, extra: &[&str]) -> io::Result<RunOutput> {
        let mut args = vec![
            format!("-OQueueDirectory={}", queue.display()),
            "-qf".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.run(&args, Duration::from_secs(120))
    }

    /// Starts instance B as a persistent runner (`-q1s`, daemonizes) on `queue`.
    /// Its pid is read from the pid file (first line); it is killed on drop.
    pub fn start_b(&self, queue: &Path) -> io::Result<QueueRunner> {
        fs::create_dir_all(queue)?;
        let pid_file = self.run.join("out.pid");
        let _ = fs::remove_file(&pid_file);
        let n = RUN_COUNTER.fetch_add(1, Ordering::SeqCst);
        let out = run_bounded(
            self.command(&[
                format!("-OQueueDirectory={}", queue.display()),
                format!("-OPidFile={}", pid_file.display()),
                "-q1s".to_string(),
            ]),
            &self.log,
            &format!("b-start{n}"),
            Duration::from_secs(30),
        )?;
        if !out.success() {
            return Err(io::Error::other(format!(
                "sendmail B -q1s failed: {}: {}{}",
                out.status, out.stdout, out.stderr
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(pid) = read_pid_file(&pid_file).filter(|&p| process_alive(p)) {
                return Ok(QueueRunner { pid, pid_file });
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "sendmail B wrote no usable pid file {} within 15 s",
                    pid_file.display()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `sendmail -bp` (mailq) on `queue`.
    pub fn mailq(&self, queue: &Path) -> io::Result<RunOutput> {
        self.run(
            &[
                format!("-OQueueDirectory={}", queue.display()),
                "-bp".to_string(),
            ],
            Duration::from_secs(30),
        )
    }
}

/// Runs `cmd` with stdout/stderr sent to files in `log_dir` (pipes could be
/// inherited by a daemonizing child and block us), bounded by `timeout`.
pub fn run_bounded(
    mut cmd: Command,
    log_dir: &Path,
    tag: &str,
    timeout: Duration,
) -> io::Result<RunOutput> {
    let out_path = log_dir.join(format!("{tag}.stdout"));
    let err_path = log_dir.join(format!("{tag}.stderr"));
    cmd.stdout(fs::File::create(&out_path)?)
        .stderr(fs::File::create(&err_path)?);
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{tag}: {cmd:?} did not finish within {timeout:?}"),
            ));
        }
        thread::sleep(Duration::from_millis(10));
    };
    Ok(RunOutput {
        status,
        stdout: String::from_utf8_lossy(&fs::read(&out_path)?).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&err_path)?).into_owned(),
    })
}

/// Instance A (`-bD`), a direct child of the test. Stopped on drop.
pub struct Listener {
    child: Option<Child>,
    pid: u32,
    port: u16,
    stderr: PathBuf,
}

impl Listener {
    pub fn pid(&self) -> u32 {
        self.pid
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// What sendmail A wrote on stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
    /// SIGTERM (then SIGKILL after 10 s) to A and its SMTP children; waits.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let kids = descendants(self.pid);
        signal(self.pid, "TERM");
        for &k in &kids {
            signal(k, "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    break child.wait().ok();
                }
            }
        };
        wait_gone_or_kill(&kids, Duration::from_secs(5));
        status
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Instance B as a `-q1s` daemon (not our child: it daemonized). Killed on drop
/// by the pid from the first line of its pid file, with its queue-run children.
pub struct QueueRunner {
    pid: u32,
    pid_file: PathBuf,
}

impl QueueRunner {
    pub fn pid(&self) -> u32 {
        self.pid
    }
    pub fn pid_file(&self) -> &Path {
        &self.pid_file
    }
    /// Stops the runner (SIGTERM, SIGKILL after 10 s). Idempotent.
    pub fn stop(&mut self) {
        if self.pid == 0 {
            return;
        }
        let pid = std::mem::replace(&mut self.pid, 0);
        if !process_alive(pid) {
            return;
        }
        let mut all = descendants(pid);
        all.push(pid);
        for &p in &all {
            signal(p, "TERM");
        }
        wait_gone_or_kill(&all, Duration::from_secs(10));
    }
}

impl Drop for QueueRunner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// First line of a sendmail pid file.
pub fn read_pid_file(path: &Path) -> Option<u32> {
    fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Process state letter from /proc (None if gone).
fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

/// True if the process exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// All live descendants of `pid` (children first), from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat"))
                && let Some(close) = stat.rfind(')')
            {
                let mut f = stat[close + 1..].split_whitespace();
                let state = f.next().unwrap_or("");
                if let Some(ppid) = f.next().and_then(|s| s.parse::<u32>().ok())
                    && state != "Z"
                {
                    parent_of.push((p, ppid));
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(cur) = frontier.pop() {
        for &(p, pp) in &parent_of {
            if pp == cur && !out.contains(&p) {
                out.push(p);
                frontier.push(p);
            }
        }
    }
    out
}

fn signal(pid: u32, sig: &str) {
    if pid == 0 {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Sends SIGTERM to `pid` (via kill(1)).
pub fn sigterm(pid: u32) {
    signal(pid, "TERM");
}

/// Waits up to `grace` for all `pids` to be gone (or zombies), then SIGKILLs the rest.
pub fn wait_gone_or_kill(pids: &[u32], grace: Duration) {
    let deadline = Instant::now() + grace;
    while pids.iter().any(|&p| process_alive(p)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    for &p in pids {
        if process_alive(p) {
            signal(p, "KILL");
        }
    }
}

// ---------------------------------------------------------------------------
// Sending with swaks

/// An attachment for [`compose`]/[`send`]: file name and content.
pub type Attachment<'a> = Option<(&'a str, &'a [u8])>;

/// Builds a message (CRLF line ends, 7-bit): `From`, `To`, `Subject`,
/// `MIME-Version`, and either a text/plain body or a multipart/mixed body with
/// the text part and a base64 attachment (76-character lines). No `Date` or
/// `Message-Id`: sendmail A adds them. Deterministic for given arguments.
pub fn compose(from: &str, to: &str, subject: &str, body: &str, attachment: Attachment) -> Vec<u8> {
    let body = crlf(body);
    let mut m = String::new();
    m.push_str(&format!(
        "From: <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
    ));
    match attachment {
        None => {
            m.push_str("Content-Type: text/plain; charset=us-ascii\r\n");
            m.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
            m.push_str(&body);
        }
        Some((name, bytes)) => {
            let boundary = format!("=_sie_test_{:016x}", fnv1a(body.as_bytes()) ^ fnv1a(bytes));
            m.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
                 This is a multi-part message in MIME format.\r\n\r\n\
                 --{boundary}\r\n\
                 Content-Type: text/plain; charset=us-ascii\r\n\
                 Content-Transfer-Encoding: 7bit\r\n\r\n"
            ));
            m.push_str(&body);
            m.push_str(&format!(
                "\r\n--{boundary}\r\n\
                 Content-Type: application/octet-stream; name=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
            ));
            m.push_str(&base64_lines(bytes));
            m.push_str(&format!("\r\n--{boundary}--\r\n"));
        }
    }
    m.into_bytes()
}

/// Normalizes line ends to CRLF and makes sure the text ends with CRLF.
pub fn crlf(text: &str) -> String {
    let mut out = text.replace("\r\n", "\n").replace('\n', "\r\n");
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

/// Sends `data` (a complete message, as from [`compose`]) to
/// `127.0.0.1:port` with swaks, returning the queue id from sendmail's
/// `250 2.0.0 <ID> Message accepted for delivery`. `to` may be a
/// comma-separated list; `from` may be `""` or `"<>"` for the null sender.
///
/// The data goes through `--no-data-fixup --data @file`: swaks's fix-ups
/// would otherwise rewrite literal `\n` and `%TOKENS%` in the text.
/// Dot-stuffing and the final `.` are done here.
pub fn send_data(port: u16, from: &str, to: &str, data: &[u8]) -> io::Result<String> {
    let mut wire = Vec::with_capacity(data.len() + 64);
    let trimmed = data.strip_suffix(b"\n").unwrap_or(data);
    for line in trimmed.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b".") {
            wire.push(b'.');
        }
        wire.extend_from_slice(line);
        wire.extend_from_slice(b"\r\n");
    }
    // swaks appends CRLF after the data it is given.
    wire.extend_from_slice(b".");
    let n = RUN_COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("sie-swaks-{}-{n}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let file = dir.join("data.eml");
    fs::File::create(&file)?.write_all(&wire)?;
    let from_arg = if from.is_empty() { "<>" } else { from };
    let mut cmd = Command::new("swaks");
    cmd.args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args(["--helo", CLIENT_HELO, "--from", from_arg, "--to", to])
        .args(["--timeout", "60", "--no-data-fixup"])
        .arg("--data")
        .arg(format!("@{}", file.display()))
        .stdin(Stdio::null());
    let out = run_bounded(cmd, &dir, "swaks", Duration::from_secs(120));
    let _ = fs::remove_dir_all(&dir);
    let out = out?;
    let id = parse_accepted_id(&out.stdout);
    match (out.success(), id) {
        (true, Some(id)) => Ok(id),
        _ => Err(io::Error::other(format!(
            "swaks to port {port} failed ({}):\n{}\n{}",
            out.status, out.stdout, out.stderr
        ))),
    }
}

/// Composes and sends one message; returns sendmail's queue id.
pub fn send(
    port: u16,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    attachment: Attachment,
) -> io::Result<String> {
    send_data(
        port,
        from,
        to,
        &compose(from, to, subject, body, attachment),
    )
}

/// Extracts `<ID>` from swaks's transcript line
/// `<~  250 2.0.0 <ID> Message accepted for delivery`.
pub fn parse_accepted_id(transcript: &str) -> Option<String> {
    transcript.lines().find_map(|line| {
        let rest = line.split_once("250 2.0.0 ")?.1;
        let mut words = rest.split_whitespace();
        let id = words.next()?;
        (words.next() == Some("Message") && id.chars().all(|c| c.is_ascii_alphanumeric()))
            .then(|| id.to_string())
    })
}

// ---------------------------------------------------------------------------
// Queue directory inspection

/// Ids of the `qf*` files in a queue directory, sorted.
pub fn qf_ids(dir: &Path) -> Vec<String> {
    prefixed_ids(dir, "qf")
}

/// Ids of the `df*` files in a queue directory, sorted.
pub fn df_ids(dir: &Path) -> Vec<String> {
    prefixed_ids(dir, "df")
}

fn prefixed_ids(dir: &Path, prefix: &str) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix(prefix))
                        .map(str::to_string)
                })
                .filter(|id| !id.is_empty())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Names of the queue-entry files (`qf`, `df`, `tf`, `xf`, `Qf`, `hf`, `Tf`) in a directory.
pub fn entry_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| {
                    ["qf", "df", "tf", "xf", "Qf", "hf", "Tf"]
                        .iter()
                        .any(|p| n.starts_with(p))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Moves one entry between queue directories the simple way (df first, then qf).
/// Only for harness tests where no other process touches the files.
pub fn move_entry(from: &Path, to: &Path, id: &str) -> io::Result<()> {
    fs::rename(from.join(format!("df{id}")), to.join(format!("df{id}")))?;
    fs::rename(from.join(format!("qf{id}")), to.join(format!("qf{id}")))
}

// ---------------------------------------------------------------------------
// Small encoders used by the tests

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, no line breaks.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Base64 in CRLF-terminated lines of 76 characters (MIME).
pub fn base64_lines(bytes: &[u8]) -> String {
    let flat = base64(bytes);
    let mut out = String::with_capacity(flat.len() + flat.len() / 38 + 2);
    for chunk in flat.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push_str("\r\n");
    }
    out
}

/// Decodes base64, ignoring white space; None on any other invalid character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
