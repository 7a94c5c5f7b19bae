//! Notifications end to end: SIE's work loop quarantines virus, ext, spam and error
//! messages, and the notify loop tells the domain admin, the sender and the
//! recipients through an SMTP sink on loopback, from the templates in `notify/`;
//! never the sender of spam nor a null or forged sender; with the sink down the
//! messages still move on time and the notifications arrive once it is up; the hourly
//! limit holds and what it held arrives as one summary; STARTTLS from the settings
//! trusts the site's CA and sends nothing to a server it cannot verify.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::sink::{Sink, SinkMessage};
use common::spool::{FAST_RUN, TestSpool, terminate, wait_until};
use sie::queue::QueueId;
use sie::queue::qf::ControlFileBuilder;

/// The EICAR test file, assembled at run time so this source file does not itself
/// contain the signature.
fn eicar() -> String {
    [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-",
        "TEST-FILE!$H+H*",
    ]
    .concat()
}

const SENDER: &str = "sender@client.test";
const RCPT: &str = "rcpt@dest.test";
const ADMIN: &str = "boss@dest.test";
const LONG: Duration = Duration::from_secs(60);

/// A sendmail-shaped entry with the given envelope and headers in `queue`.
fn queue_mail(
    spool: &TestSpool,
    queue: &str,
    id: &str,
    sender: &str,
    from_header: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> String {
    let dir = spool.queue(queue);
    let id = QueueId::parse(id).unwrap();
    let mut all = vec![
        (
            "Date".to_string(),
            "Sat, 21 Nov 2026 23:23:53 +0000".to_string(),
        ),
        ("From".to_string(), from_header.to_string()),
        ("To".to_string(), RCPT.to_string()),
        ("Message-Id".to_string(), format!("<{id}@client.test>")),
    ];
    all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let qf = ControlFileBuilder {
        created: 1795303433,
        sender: sender.into(),
        recipients: vec![RCPT.into()],
        helo: "client.test".into(),
        headers: all,
        body_bytes: body.map_or(0, |b| b.len() as u64),
    }
    .build();
    if let Some(body) = body {
        fs::write(dir.join(id.df_name()), body).unwrap();
    }
    let tf = dir.join(format!("tf{id}"));
    fs::write(&tf, qf).unwrap();
    fs::rename(&tf, dir.join(id.qf_name())).unwrap();
    id.to_string()
}

const MIXED: (&str, &str) = ("Content-Type", "multipart/mixed; boundary=\"b1\"");

/// A two-part body whose second part is an attachment `name` holding `content`.
fn attachment(name: &str, content: &str) -> String {
    format!(
        "--b1\nContent-Type: text/plain\n\nPlease see the attachment.\n\
         --b1\nContent-Type: application/octet-stream; name=\"{name}\"\n\
         Content-Disposition: attachment; filename=\"{name}\"\n\
         Content-Transfer-Encoding: 7bit\n\n{content}\n--b1--\n"
    )
}

/// Settings with the notify table pointing at `port` and at `notify_dir`.
fn settings(port: u16, notify_dir: &Path, rate_limit: u32) -> String {
    format!(
        "{FAST_RUN}\n[init.notify]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\n\
         config = \"{}\"\nfrom = \"SIE <sie@relay.test>\"\nhello_name = \"relay.test\"\n\
         timeout = 10\nretry_min = 0.3\nretry_max = 1.0\nloop_delay = 0.1\n\
         rate_limit = {rate_limit}\n",
        notify_dir.join("notify.toml").display()
    )
}

/// A copy of the shipped `notify/` templates with `notify.toml` as given.
fn notify_dir(root: &Path, policy: &str) -> PathBuf {
    let dir = root.join("notify");
    fs::create_dir_all(&dir).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("notify");
    for entry in fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt") {
            fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    fs::write(dir.join("notify.toml"), policy).unwrap();
    dir
}

fn start(program: &str, spool: &TestSpool, args: &[&str]) -> Child {
    let exe = match program {
        "sie" => env!("CARGO_BIN_EXE_sie"),
        "sie-work" => env!("CARGO_BIN_EXE_sie-work"),
        "sie-notify" => env!("CARGO_BIN_EXE_sie-notify"),
        other => panic!("no binary {other}"),
    };
    Command::new(exe)
        .arg("--spool")
        .arg(spool.spool.root())
        .arg("--config")
        .arg(&spool.config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A received notification, decoded.
struct Received {
    to: String,
    id: String,
    subject: String,
    body: String,
    raw: SinkMessage,
}

fn decode(message: &SinkMessage) -> Received {
    let parsed = mail_parser::MessageParser::default()
        .parse(&message.data)
        .expect("a notification parses as mail");
    assert_eq!(message.rcpts.len(), 1, "one addressee per notification");
    Received {
        to: message.rcpts[0].clone(),
        id: message.header("X-SIE-Queue-Id").unwrap_or_default(),
        subject: parsed.subject().unwrap_or_default().to_string(),
        body: parsed
            .body_text(0)
            .unwrap_or_default()
            .replace("\r\n", "\n"),
        raw: message.clone(),
    }
}

fn job_files(spool: &TestSpool) -> Vec<PathBuf> {
    let dir = spool.spool.state_dir().join("notify");
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    read.map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "job"))
        .collect()
}

fn settle(ids: &[(&str, &String)], spool: &TestSpool) -> bool {
    ids.iter().all(|(queue, id)| spool.ids(queue).contains(id))
}

#[test]
fn every_verdict_tells_each_kind_from_the_templates_and_spares_spam_null_and_forged_senders() {
    let sink = Sink::start();
    let root = tempfile::tempdir().unwrap();
    let policy = "virus = [\"admin\", \"sender\", \"recipients\"]\n\
                  ext = [\"admin\", \"sender\", \"recipients\"]\n\
                  spam = [\"admin\", \"sender\", \"recipients\"]\n\
                  error = [\"admin\", \"sender\", \"recipients\"]\n\
                  [admins]\n\"dest.test\" = \"boss@dest.test\"\n";
    let dir = notify_dir(root.path(), policy);
    // The site's own template wins over the shipped one, and shows every placeholder.
    fs::write(
        dir.join("virus-admin.txt"),
        "Subject: VIRUS {rule} in {id}\nX-SIE-Queue-Id: {id}\n\n\
         id={id} verdict={verdict} rule={rule} file={file} queue={queue}\n\
         sender={sender} recipients={recipients} to={to} subject={subject}\n\
         date={date} where={where}\n",
    )
    .unwrap();
    let spool = TestSpool::with_config(&settings(sink.port(), &dir, 0));

    let virus = queue_mail(
        &spool,
        "feed1",
        "6ALNNrgA000001",
        SENDER,
        SENDER,
        &[("Subject", "quarterly report"), MIXED],
        Some(&attachment("eicar.com", &eicar())),
    );
    let ext = queue_mail(
        &spool,
        "feed1",
        "6ALNNrgA000002",
        SENDER,
        SENDER,
        &[("Subject", "your invoice"), MIXED],
        Some(&attachment("invoice.pdf.exe", "MZ not really")),
    );
    let spam = queue_mail(
        &spool,
        "feed1",
        "6ALNNrgA000003",
        SENDER,
        SENDER,
        &[("Subject", "YOU HAVE WON $1000000 USD")],
        Some(
            "Congratulations, you have won! Claim your prize now: you are our lottery winner.\n\
              Make money fast, work from home and earn $5000 per week. Get rich quick!\n",
        ),
    );
    let error = queue_mail(
        &spool,
        "feed1",
        "6ALNNrgA000004",
        SENDER,
        SENDER,
        &[("Subject", "no body")],
        None,
    );
    let null_sender = queue_mail(
        &spool,
        "feed1",
        "6ALNNrgA000005",
        "",
        "MAILER-DAEMON@client.test",
        &[("Subject", "Undelivered Mail"), MIXED],
        Some(&attachment("report.exe", "MZ")),
    );
    let forged = queue_mail(
        &spool,
        "feed1",
        "6ALNNrgA000006",
        SENDER,
        "ceo@bank.test",
        &[("Subject", "urgent payment"), MIXED],
        Some(&attachment("pay.scr", "MZ")),
    );
    let clean = queue_mail(
        &spool,
        "feed1",
        "6ALNNrgA000007",
        SENDER,
        SENDER,
        &[("Subject", "lunch")],
        Some("See you at noon.\n"),
    );

    let started = Instant::now();
    let mut sie = start("sie", &spool, &[]);
    let placed = [
        ("virus", &virus),
        ("ext", &ext),
        ("spam", &spam),
        ("error", &error),
        ("ext", &null_sender),
        ("ext", &forged),
        ("out", &clean),
    ];
    assert!(
        wait_until(LONG, || settle(&placed, &spool)),
        "messages not in their queues: {}",
        spool.log("feed1")
    );
    let moved_after = started.elapsed();
    let expected: BTreeSet<(String, String)> = [
        (&virus, ADMIN),
        (&virus, SENDER),
        (&virus, RCPT),
        (&ext, ADMIN),
        (&ext, SENDER),
        (&ext, RCPT),
        (&spam, ADMIN),
        (&spam, RCPT),
        (&error, ADMIN),
        (&error, SENDER),
        (&error, RCPT),
        (&null_sender, ADMIN),
        (&null_sender, RCPT),
        (&forged, ADMIN),
        (&forged, RCPT),
    ]
    .iter()
    .map(|(id, to)| (id.to_string(), to.to_string()))
    .collect();
    let arrived = sink.wait_for(expected.len(), LONG);
    assert!(
        arrived,
        "{} of {} notifications arrived; log:\n{}",
        sink.count(),
        expected.len(),
        spool.log("notify")
    );
    // Anything extra (a second copy, the sender of spam) would be sent by now: every
    // job is done once the last notification is out.
    assert!(wait_until(LONG, || job_files(&spool).is_empty()));
    thread::sleep(Duration::from_millis(500));
    let notify_log = spool.log("notify");
    let received: Vec<Received> = sink.messages().iter().map(decode).collect();
    let got: BTreeSet<(String, String)> = received
        .iter()
        .map(|r| (r.id.clone(), r.to.clone()))
        .collect();
    assert_eq!(got, expected, "log:\n{notify_log}");
    assert_eq!(received.len(), expected.len(), "no notification twice");
    assert!(
        moved_after < Duration::from_secs(30),
        "moves took {moved_after:?}"
    );

    for r in &received {
        assert_eq!(
            r.raw.from, "",
            "notifications go out with the null envelope sender"
        );
        assert_eq!(r.raw.helo, "relay.test");
        assert_eq!(r.raw.header("To").as_deref(), Some(r.to.as_str()));
        assert!(r.raw.header("From").unwrap().contains("sie@relay.test"));
        assert_eq!(
            r.raw.header("Auto-Submitted").as_deref(),
            Some("auto-generated")
        );
        assert!(r.raw.header("Message-ID").is_some() && r.raw.header("Date").is_some());
        assert!(r.body.contains(&r.id), "{} to {}: {}", r.id, r.to, r.body);
    }
    let find = |id: &str, to: &str| received.iter().find(|r| r.id == id && r.to == to).unwrap();

    let custom = find(&virus, ADMIN);
    assert_eq!(
        custom.subject,
        format!("VIRUS Eicar-Test-Signature in {virus}")
    );
    for expected in [
        format!("id={virus} verdict=virus rule=Eicar-Test-Signature file=eicar.com queue=virus"),
        format!("sender={SENDER} recipients={RCPT} to={ADMIN} subject=quarterly report"),
    ] {
        assert!(
            custom.body.contains(&expected),
            "{expected:?} not in:\n{}",
            custom.body
        );
    }
    let date = custom
        .body
        .lines()
        .find_map(|l| l.strip_prefix("date="))
        .unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc2822(date.split(" where=").next().unwrap()).is_ok(),
        "{date}"
    );

    let sender_virus = find(&virus, SENDER);
    assert!(
        sender_virus.subject.contains("virus found"),
        "{}",
        sender_virus.subject
    );
    assert!(
        sender_virus.body.contains("Eicar-Test-Signature")
            && sender_virus.body.contains("quarterly report")
    );
    let rcpt_virus = find(&virus, RCPT);
    assert!(
        rcpt_virus
            .body
            .contains(&format!("from {SENDER} to you ({RCPT})")),
        "{}",
        rcpt_virus.body
    );

    assert_eq!(
        find(&ext, SENDER).subject,
        format!("Your message to {RCPT} was not delivered: attachment invoice.pdf.exe blocked")
    );
    assert!(
        find(&ext, ADMIN)
            .subject
            .contains("blocked attachment invoice.pdf.exe")
    );
    assert!(find(&ext, RCPT).body.contains("\"invoice.pdf.exe\""));

    assert!(
        find(&spam, ADMIN)
            .subject
            .contains(&format!("spam from {SENDER} held as {spam}"))
    );
    assert!(find(&spam, RCPT).subject.contains("YOU HAVE WON"));
    assert!(
        find(&error, ADMIN).body.contains("missing-df"),
        "{}",
        find(&error, ADMIN).body
    );
    assert!(find(&error, SENDER).subject.contains("delayed"));
    assert!(
        find(&null_sender, ADMIN).body.contains("<>"),
        "the null sender shows as <>"
    );

    assert!(
        notify_log.contains("ignored: the sender of spam is never told"),
        "{notify_log}"
    );
    assert!(
        notify_log.contains(&format!(
            "{spam} spam: to tell admin {ADMIN}, recipients {RCPT}; sender not told (spam"
        )),
        "{notify_log}"
    );
    assert!(notify_log.contains(&format!("{null_sender} ext: to tell admin {ADMIN}, recipients {RCPT}; sender not told (null sender)")), "{notify_log}");
    assert!(notify_log.contains("likely forged"), "{notify_log}");
    assert_eq!(terminate(&mut sie, LONG), Some(0));
    assert!(
        spool.log("sie").contains("Started notify"),
        "{}",
        spool.log("sie")
    );
}

/// A TCP relay to the sink on a port of its own, so the "SMTP server" can be down
/// (nothing listens on the port) and come up later on the same port.
struct Forwarder {
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Forwarder {
    fn start(port: u16, sink_port: u16) -> Forwarder {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the forwarder port");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let acceptor = thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let server = TcpStream::connect(("127.0.0.1", sink_port)).unwrap();
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                        pipe(server, client);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Forwarder {
            stop,
            acceptor: Some(acceptor),
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Copies `from` to `to` until `from` closes, then closes `to` for writing.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while let Ok(n) = from.read(&mut buffer) {
            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// A loopback port with nothing listening on it.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn with_the_server_down_messages_move_on_time_and_notifications_follow_when_it_is_up() {
    let sink = Sink::start();
    let port = free_port();
    let root = tempfile::tempdir().unwrap();
    let dir = notify_dir(root.path(), "virus = [\"admin\"]\next = [\"recipients\"]\n");
    let spool = TestSpool::with_config(&settings(port, &dir, 0));
    let virus = queue_mail(
        &spool,
        "feed1",
        "6ALNNrgA000011",
        SENDER,
        SENDER,
        &[("Subject", "with eicar"), MIXED],
        Some(&attachment("eicar.com", &eicar())),
    );
    let ext = queue_mail(
        &spool,
        "feed2",
        "6ALNNrgA000012",
        SENDER,
        SENDER,
        &[("Subject", "with exe"), MIXED],
        Some(&attachment("setup.exe", "MZ")),
    );

    let started = Instant::now();
    let mut sie = start("sie", &spool, &[]);
    assert!(wait_until(LONG, || settle(
        &[("virus", &virus), ("ext", &ext)],
        &spool
    )));
    let moved_after = started.elapsed();
    assert!(
        moved_after < Duration::from_secs(30),
        "moves took {moved_after:?}"
    );
    // Two failed attempts at least, each logged, and the jobs kept with their count.
    assert!(
        wait_until(LONG, || spool.log("notify").matches("Cannot send").count()
            >= 2),
        "{}",
        spool.log("notify")
    );
    let failed_once =
        |job: &PathBuf| fs::read_to_string(job).is_ok_and(|text| text.contains("\"last_error\""));
    assert!(
        wait_until(LONG, || {
            let jobs = job_files(&spool);
            jobs.len() == 2 && jobs.iter().all(failed_once)
        }),
        "both jobs wait, each with its failure: {:?}",
        job_files(&spool)
    );
    assert_eq!(sink.count(), 0);

    let forwarder = Forwarder::start(port, sink.port());
    assert!(sink.wait_for(2, LONG), "{}", spool.log("notify"));
    assert!(
        wait_until(LONG, || job_files(&spool).is_empty()),
        "{:?}",
        job_files(&spool)
    );
    let received: Vec<Received> = sink.messages().iter().map(decode).collect();
    let got: BTreeSet<(String, String)> = received
        .iter()
        .map(|r| (r.id.clone(), r.to.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        (virus.clone(), "postmaster@dest.test".to_string()),
        (ext.clone(), RCPT.to_string()),
    ]
    .into();
    assert_eq!(
        got, expected,
        "the admin of dest.test defaults to its postmaster"
    );
    let log = spool.log("notify");
    assert!(
        log.contains(&format!(
            "Sent {virus} virus notification to admin postmaster@dest.test."
        )),
        "{log}"
    );
    assert!(
        !spool.spool.state_dir().join("notify/failed").exists(),
        "nothing given up"
    );
    assert_eq!(terminate(&mut sie, LONG), Some(0));
    drop(forwarder);
}

#[test]
fn over_the_hourly_limit_notifications_wait_for_one_summary() {
    let sink = Sink::start();
    let root = tempfile::tempdir().unwrap();
    let dir = notify_dir(root.path(), "virus = [\"recipients\"]\n");
    let spool = TestSpool::with_config(&settings(sink.port(), &dir, 2));
    let ids: Vec<String> = (21..25)
        .map(|n| {
            queue_mail(
                &spool,
                "feed1",
                &format!("6ALNNrgA0000{n}"),
                SENDER,
                SENDER,
                &[("Subject", "eicar")],
                Some(&eicar()),
            )
        })
        .collect();
    // The work loop alone: every job is written before the notify loop starts.
    let mut work = start("sie-work", &spool, &["feed1"]);
    assert!(wait_until(LONG, || spool.ids("virus").len() == ids.len()
        && job_files(&spool).len() == ids.len()));
    assert_eq!(terminate(&mut work, LONG), Some(0));

    // One of this hour's two notifications to RCPT went out 3585 s ago: one is left
    // now, and a second frees up in 15 s.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let state = format!(
        "{{\"{RCPT}\":{{\"sent\":[{}],\"held\":[],\"held_unlisted\":0,\"summary_attempts\":0,\"next_summary\":0.0}}}}",
        now - 3585.0
    );
    fs::write(spool.spool.state_dir().join("notify/rate.json"), state).unwrap();
    let mut notify = start("sie-notify", &spool, &[]);
    assert!(sink.wait_for(1, LONG), "{}", spool.log("notify"));
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sink.count(),
        1,
        "only one send fits in the hour: {}",
        spool.log("notify")
    );
    let first = decode(&sink.messages()[0]);
    assert!(ids.contains(&first.id), "{}", first.id);
    assert_eq!(
        spool
            .log("notify")
            .matches("over 2 notifications an hour")
            .count(),
        3
    );

    assert!(sink.wait_for(2, LONG), "{}", spool.log("notify"));
    let summary = decode(&sink.messages()[1]);
    assert_eq!(summary.to, RCPT);
    assert_eq!(
        summary.subject,
        format!("[SIE] 3 notifications held back for {RCPT}")
    );
    assert!(
        !summary.body.contains(&first.id),
        "the one sent is not listed"
    );
    for id in ids.iter().filter(|id| **id != first.id) {
        assert_eq!(
            summary.body.matches(id.as_str()).count(),
            1,
            "{id} in\n{}",
            summary.body
        );
    }
    assert!(
        summary.body.contains("More than 2 notifications an hour"),
        "{}",
        summary.body
    );
    thread::sleep(Duration::from_secs(1));
    assert_eq!(
        sink.count(),
        2,
        "the hour is full again: nothing more goes out"
    );
    assert!(job_files(&spool).is_empty());
    assert_eq!(terminate(&mut notify, LONG), Some(0));
}

/// One SMTP session at a time on loopback that requires STARTTLS with `config`; each
/// accepted message (envelope recipients, data) goes to the returned channel.
fn starttls_server(
    config: Arc<rustls::ServerConfig>,
) -> (u16, mpsc::Receiver<(Vec<String>, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, received) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut tcp) = stream else { break };
            tcp.set_read_timeout(Some(LONG)).unwrap();
            let mut plain = |reply: &str| -> Option<String> {
                tcp.write_all(reply.as_bytes()).ok()?;
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                // Byte by byte, so nothing meant for the TLS layer is read here.
                while !line.ends_with(b"\n") {
                    if tcp.read(&mut byte).ok()? == 0 {
                        return None;
                    }
                    line.push(byte[0]);
                }
                Some(String::from_utf8_lossy(&line).to_ascii_uppercase())
            };
            let session = plain("220 tls.test ESMTP\r\n")
                .filter(|ehlo| ehlo.starts_with("EHLO"))
                .and_then(|_| plain("250-tls.test\r\n250 STARTTLS\r\n"))
                .filter(|starttls| starttls.starts_with("STARTTLS"));
            if session.is_none() {
                continue;
            }
            tcp.write_all(b"220 2.0.0 ready to start TLS\r\n").unwrap();
            let connection = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let mut tls = BufReader::new(rustls::StreamOwned::new(connection, tcp));
            let mut rcpts = Vec::new();
            let mut line = String::new();
            loop {
                line.clear();
                if tls.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let verb = line.to_ascii_uppercase();
                let reply = if verb.starts_with("RCPT TO:") {
                    rcpts.push(line[8..].trim().trim_matches(['<', '>']).to_string());
                    "250 ok\r\n"
                } else if verb.starts_with("DATA") {
                    tls.get_mut().write_all(b"354 go on\r\n").unwrap();
                    let mut data = String::new();
                    loop {
                        line.clear();
                        if tls.read_line(&mut line).unwrap_or(0) == 0 || line == ".\r\n" {
                            break;
                        }
                        data.push_str(&line);
                    }
                    let _ = sender.send((std::mem::take(&mut rcpts), data));
                    "250 queued\r\n"
                } else if verb.starts_with("QUIT") {
                    let _ = tls.get_mut().write_all(b"221 bye\r\n");
                    break;
                } else {
                    "250 ok\r\n"
                };
                if tls.get_mut().write_all(reply.as_bytes()).is_err() {
                    break;
                }
            }
        }
    });
    (port, received)
}

#[test]
fn starttls_from_the_settings_is_used_and_the_site_ca_trusted() {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![generated.cert.der().clone()], key.into())
    .unwrap();
    let (port, received) = starttls_server(Arc::new(config));
    let root = tempfile::tempdir().unwrap();
    let dir = notify_dir(root.path(), "virus = [\"admin\"]\n");
    let ca = root.path().join("ca.pem");
    fs::write(&ca, generated.cert.pem()).unwrap();
    let text = format!(
        "{}tls = \"starttls\"\nca_file = \"{}\"\n",
        settings(port, &dir, 0),
        ca.display()
    );
    let spool = TestSpool::with_config(&text);
    let virus = queue_mail(
        &spool,
        "feed1",
        "6ALNNrgA000031",
        SENDER,
        SENDER,
        &[("Subject", "over tls")],
        Some(&eicar()),
    );
    let mut work = start("sie-work", &spool, &["feed1"]);
    let mut notify = start("sie-notify", &spool, &[]);
    assert!(wait_until(LONG, || spool.ids("virus").contains(&virus)));
    let (rcpts, data) = received
        .recv_timeout(LONG)
        .unwrap_or_else(|_| panic!("nothing arrived over TLS: {}", spool.log("notify")));
    assert_eq!(rcpts, ["postmaster@dest.test"]);
    assert!(data.contains(&format!("X-SIE-Queue-Id: {virus}")), "{data}");
    assert!(wait_until(LONG, || spool
        .log("notify")
        .contains(&format!("Sent {virus} virus notification"))));
    assert_eq!(terminate(&mut work, LONG), Some(0));
    assert_eq!(terminate(&mut notify, LONG), Some(0));

    // A server whose certificate the settings do not trust gets nothing, not even in
    // plain text: the notification waits for a retry.
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    fs::write(&ca, stranger.cert.pem()).unwrap();
    let spool = TestSpool::with_config(&text);
    queue_mail(
        &spool,
        "feed1",
        "6ALNNrgA000032",
        SENDER,
        SENDER,
        &[],
        Some(&eicar()),
    );
    let mut work = start("sie-work", &spool, &["feed1"]);
    let mut notify = start("sie-notify", &spool, &[]);
    assert!(
        wait_until(LONG, || spool.log("notify").contains("Cannot send")),
        "{}",
        spool.log("notify")
    );
    assert!(received.recv_timeout(Duration::from_secs(1)).is_err());
    assert_eq!(job_files(&spool).len(), 1, "the job waits for a retry");
    assert_eq!(terminate(&mut work, LONG), Some(0));
    assert_eq!(terminate(&mut notify, LONG), Some(0));
}
