//! A minimal SMTP sink for tests, standard library only.
//!
//! It listens on `127.0.0.1:<ephemeral>` and speaks enough ESMTP for
//! sendmail's `relay` mailer: `EHLO`/`HELO`, `MAIL`, `RCPT`, `DATA` (with
//! dot-unstuffing), `RSET`, `NOOP`, `QUIT` (plus polite refusals of `VRFY`,
//! `EXPN`, `ETRN` and anything unknown). Every accepted message is stored with
//! its envelope and its raw data bytes exactly as received (CRLF line ends,
//! unstuffed, without the terminating `.` line).
//!
//! The sink is bounded: it stops accepting when dropped, shuts down the open
//! connections and joins all of its threads.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Longest command line or data line accepted (sendmail's relay mailer wraps at 2040).
const MAX_LINE: usize = 1 << 20;
/// Biggest message accepted; bigger ones get `552` (keeps a runaway client bounded).
const MAX_MESSAGE: usize = 64 << 20;
/// An idle connection is dropped after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// One message received by the sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkMessage {
    /// The `HELO`/`EHLO` argument of the session.
    pub helo: String,
    /// Envelope sender without the angle brackets (`""` for the null sender).
    pub from: String,
    /// Envelope recipients without the angle brackets, in `RCPT` order.
    pub rcpts: Vec<String>,
    /// The message as transmitted after dot-unstuffing: headers, blank line,
    /// body, CRLF line ends, without the final `.` line.
    pub data: Vec<u8>,
}

impl SinkMessage {
    /// Lossy UTF-8 view of the whole data.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// Byte offset where the body starts (after the first empty line), if any.
    fn body_start(&self) -> Option<usize> {
        if self.data.starts_with(b"\r\n") {
            return Some(2);
        }
        find(&self.data, b"\r\n\r\n").map(|i| i + 4)
    }

    /// The header section including its final CRLF (not the empty line).
    pub fn header_bytes(&self) -> &[u8] {
        match self.body_start() {
            Some(start) => &self.data[..start - 2],
            None => &self.data,
        }
    }

    /// The body: everything after the first empty line.
    pub fn body(&self) -> &[u8] {
        match self.body_start() {
            Some(start) => &self.data[start..],
            None => &[],
        }
    }

    /// Unfolded headers `(name, value)` in order; the value has its
    /// continuation line breaks replaced by single spaces, and is trimmed.
    pub fn headers(&self) -> Vec<(String, String)> {
        let text = String::from_utf8_lossy(self.header_bytes()).into_owned();
        let mut out: Vec<(String, String)> = Vec::new();
        for line in text.split("\r\n") {
            if line.is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                out.push((name.to_string(), value.trim().to_string()));
            }
        }
        out
    }

    /// The first header with this name (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All values of the headers with this name (case-insensitive), unfolded.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers()
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }

    /// Queue ids named in `Received:` headers (`... with ESMTP id <ID> ...`),
    /// top-most (newest) first. The MTA that received the message over SMTP adds
    /// exactly one such header; a sendmail queue run adds none.
    pub fn received_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for value in self.header_all("Received") {
            let words: Vec<&str> = value.split_whitespace().collect();
            for pair in words.windows(2) {
                if pair[0] == "id" {
                    let id = pair[1].trim_end_matches(';');
                    if !id.is_empty() {
                        ids.push(id.to_string());
                    }
                    break;
                }
            }
        }
        ids
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

type Messages = Arc<Mutex<Vec<SinkMessage>>>;
type Connections = Arc<Mutex<Vec<(TcpStream, JoinHandle<()>)>>>;

/// A running SMTP sink. Dropping it stops it.
pub struct Sink {
    port: u16,
    messages: Messages,
    connections: Connections,
    accepted_connections: Arc<AtomicUsize>,
    shutdown: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Sink {
    /// Starts a sink on `127.0.0.1` with an ephemeral port.
    ///
    /// Panics if it cannot bind (tests want a loud failure).
    pub fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("sink: bind 127.0.0.1:0");
        let port = listener.local_addr().expect("sink: local_addr").port();
        listener
            .set_nonblocking(true)
            .expect("sink: set_nonblocking");
        let messages: Messages = Arc::default();
        let connections: Connections = Arc::default();
        let shutdown = Arc::new(AtomicBool::new(false));
        let accepted_connections = Arc::new(AtomicUsize::new(0));
        let acceptor = {
            let messages = Arc::clone(&messages);
            let connections = Arc::clone(&connections);
            let shutdown = Arc::clone(&shutdown);
            let accepted = Arc::clone(&accepted_connections);
            thread::Builder::new()
                .name(format!("sink-accept-{port}"))
                .spawn(move || accept_loop(listener, messages, connections, shutdown, accepted))
                .expect("sink: spawn acceptor")
        };
        Sink {
            port,
            messages,
            connections,
            accepted_connections,
            shutdown,
            acceptor: Some(acceptor),
        }
    }

    /// The TCP port the sink listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A snapshot of the messages received so far, in order of completion.
    pub fn messages(&self) -> Vec<SinkMessage> {
        self.messages.lock().unwrap().clone()
    }

    /// How many messages were received so far.
    pub fn count(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    /// How many TCP connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted_connections.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` messages arrived; false on timeout.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let conns: Vec<_> = self.connections.lock().unwrap().drain(..).collect();
        for (stream, handle) in conns {
            let _ = stream.shutdown(Shutdown::Both);
            let _ = handle.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    messages: Messages,
    connections: Connections,
    shutdown: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
) {
    while !shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _peer)) => {
                accepted.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
                let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
                let Ok(control) = stream.try_clone() else {
                    continue;
                };
                let messages = Arc::clone(&messages);
                let handle = thread::spawn(move || {
                    let _ = serve(stream, &messages);
                });
                let mut conns = connections.lock().unwrap();
                // Reap finished sessions so a long test does not accumulate handles.
                let mut i = 0;
                while i < conns.len() {
                    if conns[i].1.is_finished() {
                        let (_s, h) = conns.swap_remove(i);
                        let _ = h.join();
                    } else {
                        i += 1;
                    }
                }
                conns.push((control, handle));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Reads one line (up to and including LF). `Ok(None)` on EOF.
fn read_line<R: BufRead>(reader: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = Read::take(reader, MAX_LINE as u64).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(line))
}

/// Strips the angle brackets (and any ESMTP parameters) from `MAIL FROM:`/`RCPT TO:` arguments.
fn path_arg(rest: &str) -> String {
    let rest = rest.trim();
    if let Some(stripped) = rest.strip_prefix('<') {
        match stripped.find('>') {
            Some(end) => stripped[..end].to_string(),
            None => stripped.to_string(),
        }
    } else {
        rest.split_whitespace().next().unwrap_or("").to_string()
    }
}

/// Case-insensitive prefix strip for SMTP verbs like `MAIL FROM:`.
fn strip_verb<'a>(line: &'a str, verb: &str) -> Option<&'a str> {
    if line.len() >= verb.len() && line[..verb.len()].eq_ignore_ascii_case(verb) {
        Some(&line[verb.len()..])
    } else {
        None
    }
}

fn reply(w: &mut TcpStream, text: &str) -> std::io::Result<()> {
    w.write_all(text.as_bytes())?;
    w.flush()
}

fn serve(stream: TcpStream, messages: &Messages) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    reply(&mut writer, "220 sink.test ESMTP test sink ready\r\n")?;

    let mut helo = String::new();
    let mut from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();

    while let Some(raw) = read_line(&mut reader)? {
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                helo = line.trim_start()[verb.len()..].trim().to_string();
                from = None;
                rcpts.clear();
                reply(
                    &mut writer,
                    "250-sink.test greets you\r\n250-8BITMIME\r\n250-PIPELINING\r\n\
                     250-SIZE 67108864\r\n250-ENHANCEDSTATUSCODES\r\n250 HELP\r\n",
                )?;
            }
            "HELO" => {
                helo = line.trim_start()[verb.len()..].trim().to_string();
                from = None;
                rcpts.clear();
                reply(&mut writer, "250 sink.test\r\n")?;
            }
            "MAIL" => match strip_verb(line, "MAIL FROM:") {
                Some(rest) if from.is_none() => {
                    from = Some(path_arg(rest));
                    rcpts.clear();
                    reply(&mut writer, "250 2.1.0 sender ok\r\n")?;
                }
                Some(_) => reply(&mut writer, "503 5.5.1 nested MAIL command\r\n")?,
                None => reply(&mut writer, "501 5.5.4 syntax: MAIL FROM:<address>\r\n")?,
            },
            "RCPT" => match strip_verb(line, "RCPT TO:") {
                Some(_) if from.is_none() => reply(&mut writer, "503 5.5.1 need MAIL first\r\n")?,
                Some(rest) => {
                    rcpts.push(path_arg(rest));
                    reply(&mut writer, "250 2.1.5 recipient ok\r\n")?;
                }
                None => reply(&mut writer, "501 5.5.4 syntax: RCPT TO:<address>\r\n")?,
            },
            "DATA" => {
                if from.is_none() || rcpts.is_empty() {
                    reply(&mut writer, "503 5.5.1 need MAIL and RCPT first\r\n")?;
                    continue;
                }
                reply(&mut writer, "354 end data with <CR><LF>.<CR><LF>\r\n")?;
                let mut data = Vec::new();
                let mut too_big = false;
                loop {
                    let Some(raw) = read_line(&mut reader)? else {
                        // Connection lost inside DATA: the message is not accepted.
                        return Ok(());
                    };
                    if raw == b".\r\n" || raw == b".\n" {
                        break;
                    }
                    let unstuffed = if raw.starts_with(b".") {
                        &raw[1..]
                    } else {
                        &raw[..]
                    };
                    if data.len() + unstuffed.len() > MAX_MESSAGE {
                        too_big = true;
                    } else {
                        data.extend_from_slice(unstuffed);
                    }
                }
                if too_big {
                    reply(
                        &mut writer,
                        "552 5.3.4 message too big for the test sink\r\n",
                    )?;
                } else {
                    let n = {
                        let mut all = messages.lock().unwrap();
                        all.push(SinkMessage {
                            helo: helo.clone(),
                            from: from.clone().unwrap_or_default(),
                            rcpts: rcpts.clone(),
                            data,
                        });
                        all.len()
                    };
                    reply(
                        &mut writer,
                        &format!("250 2.0.0 Ok: queued as SINK{n:06}\r\n"),
                    )?;
                }
                from = None;
                rcpts.clear();
            }
            "RSET" => {
                from = None;
                rcpts.clear();
                reply(&mut writer, "250 2.0.0 reset\r\n")?;
            }
            "NOOP" => reply(&mut writer, "250 2.0.0 ok\r\n")?,
            "QUIT" => {
                reply(&mut writer, "221 2.0.0 sink.test closing\r\n")?;
                return Ok(());
            }
            "VRFY" | "EXPN" | "ETRN" => reply(&mut writer, "502 5.5.1 not implemented\r\n")?,
            _ => reply(&mut writer, "500 5.5.2 command not recognized\r\n")?,
        }
    }
    Ok(())
}
