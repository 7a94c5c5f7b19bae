//! One pass of the notify loop: plan new jobs, send each due delivery over SMTP with
//! lettre, keep failures with exponential backoff (to `failed/` after `max_age` or a
//! permanent refusal), hold what is over the hourly limit, and send the summaries.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Local};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, SmtpTransport, Transport};
use sha2::{Digest, Sha256};

use super::job::{
    self, Delivery, Job, Kind, Notice, keep_failed, list_jobs, notify_dir, remove_job,
};
use super::policy::Policy;
use super::rate::{Held, RateLimit, Summary};
use super::template::{MESSAGE_PLACEHOLDERS, SUMMARY_PLACEHOLDERS, Template};
use super::{NotifyError, NotifyInit, TlsMode};
use crate::log::ProcessLog;
use crate::queue::Spool;
use crate::timefmt::now_epoch;

/// The policy and the templates it uses, loaded together so a pass never mixes an
/// old policy with new templates.
#[derive(Debug, Clone, PartialEq)]
struct Setup {
    policy: Policy,
    templates: BTreeMap<String, Template>,
}

impl Setup {
    fn load(settings: &NotifyInit) -> Result<(Setup, Vec<String>), NotifyError> {
        let (policy, warnings) = Policy::load(&settings.config)?;
        let dir = settings.template_dir();
        let mut templates = BTreeMap::new();
        for verdict in ["virus", "ext", "spam", "error"] {
            for kind in [Kind::Admin, Kind::Sender, Kind::Recipients] {
                if policy.tells(verdict, kind) {
                    let name = template_name(verdict, kind);
                    let template = Template::load(&dir, &name, &MESSAGE_PLACEHOLDERS)?;
                    templates.insert(name, template);
                }
            }
        }
        let summary = Template::load(&dir, "summary", &SUMMARY_PLACEHOLDERS)?;
        templates.insert("summary".to_string(), summary);
        Ok((Setup { policy, templates }, warnings))
    }
}

/// `<verdict>-<kind>`; unscannable messages use the error templates.
fn template_name(verdict: &str, kind: Kind) -> String {
    let verdict = match verdict {
        "virus" | "ext" | "spam" => verdict,
        _ => "error",
    };
    format!("{verdict}-{}", kind.as_str())
}

/// What one pass did, for tests and the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassCounts {
    pub sent: usize,
    pub deferred: usize,
    pub held: usize,
    pub failed: usize,
    pub summaries: usize,
}

/// How a send failed.
enum SendError {
    /// The server cannot be reached or refuses everyone for now: stop this pass.
    ServerDown(String),
    /// This delivery failed for now; others may go through.
    Transient(String),
    /// It will never be accepted (bad address, 5xx): keep it in `failed/`.
    Permanent(String),
}

/// The notify loop's state between passes.
pub struct Outbox {
    spool: Spool,
    settings: NotifyInit,
    transport: SmtpTransport,
    from: Mailbox,
    envelope_from: Option<Address>,
    host: String,
    setup: Option<Setup>,
    /// The last problem logged about the setup, so a broken file is reported once.
    setup_problem: Option<String>,
}

impl Outbox {
    /// Checks the settings and prepares the SMTP transport (no connection yet).
    pub fn new(spool: &Spool, settings: &NotifyInit) -> Result<Outbox, NotifyError> {
        let invalid = NotifyError::Settings;
        for (key, value) in [
            ("timeout", settings.timeout),
            ("retry_min", settings.retry_min),
            ("retry_max", settings.retry_max),
            ("max_age", settings.max_age),
            ("loop_delay", settings.loop_delay),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(format!(
                    "init.notify.{key} must be a positive number of seconds"
                )));
            }
        }
        let from: Mailbox = settings
            .from_address()
            .parse()
            .map_err(|e| invalid(format!("init.notify.from: {e}")))?;
        let envelope_from = if settings.envelope_from.is_empty() {
            None
        } else {
            Some(
                settings
                    .envelope_from
                    .parse::<Address>()
                    .map_err(|e| invalid(format!("init.notify.envelope_from: {e}")))?,
            )
        };
        let host = settings.hello();
        let mut builder = SmtpTransport::builder_dangerous(settings.smtp_host.clone())
            .port(settings.smtp_port)
            .timeout(Some(Duration::from_secs_f64(settings.timeout)))
            .hello_name(ClientId::Domain(host.clone()));
        if settings.tls != TlsMode::None {
            let mut tls = TlsParameters::builder(settings.smtp_host.clone());
            if let Some(ca_file) = &settings.ca_file {
                let pem = std::fs::read(ca_file).map_err(|e| NotifyError::io(ca_file, e))?;
                // lettre accepts a file without any certificate, which would leave the
                // site's CA silently untrusted.
                if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                    return Err(invalid(format!(
                        "init.notify.ca_file {}: no PEM certificate in it",
                        ca_file.display()
                    )));
                }
                let certificate = Certificate::from_pem(&pem).map_err(|e| {
                    invalid(format!("init.notify.ca_file {}: {e}", ca_file.display()))
                })?;
                tls = tls.add_root_certificate(certificate);
            }
            let parameters = tls
                .build_rustls()
                .map_err(|e| invalid(format!("init.notify.tls: {e}")))?;
            builder = builder.tls(match settings.tls {
                TlsMode::Starttls => Tls::Required(parameters),
                _ => Tls::Wrapper(parameters),
            });
        }
        Ok(Outbox {
            spool: spool.clone(),
            settings: settings.clone(),
            transport: builder.build(),
            from,
            envelope_from,
            host,
            setup: None,
            setup_problem: None,
        })
    }

    /// Seconds the notify loop sleeps between passes.
    pub fn loop_delay(&self) -> f64 {
        self.settings.loop_delay
    }

    /// One pass over the jobs; `should_stop` ends it early between jobs.
    pub fn pass(&mut self, log: &mut ProcessLog, should_stop: &dyn Fn() -> bool) -> PassCounts {
        let mut counts = PassCounts::default();
        self.refresh_setup(log);
        let Some(setup) = self.setup.clone() else {
            return counts;
        };
        let dir = notify_dir(&self.spool);
        let rate_path = dir.join("rate.json");
        let mut rate = match RateLimit::load(&rate_path, self.settings.rate_limit) {
            Ok(rate) => rate,
            Err(e) => {
                let aside = dir.join(format!("rate.json.bad.{}", now_epoch() as u64));
                log.line(&format!(
                    "Cannot read the rate limit state, kept as {}: {e}",
                    aside.display()
                ));
                let _ = std::fs::rename(&rate_path, &aside);
                RateLimit::empty(&rate_path, self.settings.rate_limit)
            }
        };
        let jobs = match list_jobs(&dir) {
            Ok(jobs) => jobs,
            Err(e) => {
                log.line(&format!("Cannot list notifications: {e}"));
                return counts;
            }
        };
        let mut server_down = false;
        for path in jobs {
            if should_stop() {
                break;
            }
            if let Err(e) =
                self.work_job(&setup, &path, &mut rate, &mut server_down, &mut counts, log)
            {
                log.line(&format!("Notification job {}: {e}", path.display()));
            }
        }
        if !server_down {
            self.send_summaries(&setup, &mut rate, &mut counts, log);
        }
        if let Err(e) = rate.save(now_epoch()) {
            log.line(&format!("Cannot save the rate limit state: {e}"));
        }
        counts
    }

    /// Re-reads `notify.toml` and the templates; a broken setup is logged once and the
    /// last good one stays in use (jobs wait while there is none).
    fn refresh_setup(&mut self, log: &mut ProcessLog) {
        match Setup::load(&self.settings) {
            Ok((setup, warnings)) => {
                if self.setup.as_ref() != Some(&setup) {
                    let source = setup
                        .policy
                        .path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "the built-in notify.toml".to_string());
                    log.line(&format!("Notification policy loaded from {source}."));
                    for warning in warnings {
                        log.line(&warning);
                    }
                    self.setup = Some(setup);
                }
                self.setup_problem = None;
            }
            Err(e) => {
                let problem = e.to_string();
                if self.setup_problem.as_deref() != Some(problem.as_str()) {
                    let keeping = if self.setup.is_some() {
                        "keeping the last good policy and templates"
                    } else {
                        "notifications wait until it is fixed"
                    };
                    log.line(&format!("Notification setup: {problem}; {keeping}."));
                    self.setup_problem = Some(problem);
                }
            }
        }
    }

    fn work_job(
        &self,
        setup: &Setup,
        path: &Path,
        rate: &mut RateLimit,
        server_down: &mut bool,
        counts: &mut PassCounts,
        log: &mut ProcessLog,
    ) -> Result<(), NotifyError> {
        let mut job = match Job::read(path) {
            Ok(job) => job,
            Err(e @ NotifyError::BadJob { .. }) => {
                let aside = job::failed_dir(&self.spool)
                    .join(path.file_name().unwrap_or_default())
                    .with_extension("bad");
                job::create_dir(&job::failed_dir(&self.spool))?;
                std::fs::rename(path, &aside).map_err(|e| NotifyError::io(path, e))?;
                log.line(&format!("{e}; moved to {}", aside.display()));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let now = now_epoch();
        let notice = job.notice.clone();
        let deliveries = match job.deliveries.take() {
            Some(deliveries) => deliveries,
            None => {
                let plan = setup.policy.plan(&notice, now);
                let told: Vec<String> = plan
                    .deliveries
                    .iter()
                    .map(|d| format!("{} {}", d.kind.as_str(), d.to))
                    .collect();
                let mut line = format!(
                    "{} {}: {}",
                    notice.id,
                    notice.verdict,
                    if told.is_empty() {
                        "nobody to tell".to_string()
                    } else {
                        format!("to tell {}", told.join(", "))
                    }
                );
                for skipped in &plan.skipped {
                    line.push_str("; ");
                    line.push_str(skipped);
                }
                log.line(&line);
                plan.deliveries
            }
        };
        let mut pending = Vec::new();
        let mut failed = Vec::new();
        for mut delivery in deliveries {
            if *server_down || delivery.next_attempt > now {
                pending.push(delivery);
                continue;
            }
            if !rate.allows(&delivery.to, now) {
                rate.hold(
                    &delivery.to,
                    Held {
                        judged: notice.judged,
                        id: notice.id.clone(),
                        verdict: notice.verdict.clone(),
                        rule: notice.rule.clone(),
                        sender: notice.sender.clone(),
                    },
                );
                counts.held += 1;
                log.line(&format!(
                    "Held {} {} for {} {}: over {} notifications an hour; it goes in a summary.",
                    notice.id,
                    notice.verdict,
                    delivery.kind.as_str(),
                    delivery.to,
                    rate.per_hour()
                ));
                continue;
            }
            match self.send_notice(setup, path, &notice, &delivery) {
                Ok(()) => {
                    rate.record_sent(&delivery.to, now);
                    counts.sent += 1;
                    log.line(&format!(
                        "Sent {} {} notification to {} {}.",
                        notice.id,
                        notice.verdict,
                        delivery.kind.as_str(),
                        delivery.to
                    ));
                }
                Err(error) => {
                    let (why, permanent) = match error {
                        SendError::ServerDown(why) => {
                            *server_down = true;
                            (why, false)
                        }
                        SendError::Transient(why) => (why, false),
                        SendError::Permanent(why) => (why, true),
                    };
                    delivery.attempts += 1;
                    delivery.last_error = why.clone();
                    let too_old = now - notice.judged >= self.settings.max_age;
                    if permanent || too_old {
                        counts.failed += 1;
                        log.line(&format!(
                            "Giving up on {} {} notification to {} {} after {} attempts: {why}",
                            notice.id,
                            notice.verdict,
                            delivery.kind.as_str(),
                            delivery.to,
                            delivery.attempts
                        ));
                        failed.push(delivery);
                    } else {
                        let wait = backoff(&self.settings, delivery.attempts);
                        delivery.next_attempt = now + wait;
                        counts.deferred += 1;
                        log.line(&format!(
                            "Cannot send {} {} notification to {} {} (attempt {}): {why}; next try in {} s.",
                            notice.id,
                            notice.verdict,
                            delivery.kind.as_str(),
                            delivery.to,
                            delivery.attempts,
                            (wait * 10.0).round() / 10.0
                        ));
                        pending.push(delivery);
                    }
                }
            }
        }
        // Held notifications are in the rate state before the job forgets them.
        rate.save(now)?;
        if !failed.is_empty() {
            let kept = keep_failed(&self.spool, path, &notice, failed)?;
            log.line(&format!("Kept in {}", kept.display()));
        }
        if pending.is_empty() {
            remove_job(path)
        } else {
            job.deliveries = Some(pending);
            job.write(path)
        }
    }

    fn send_notice(
        &self,
        setup: &Setup,
        job_path: &Path,
        notice: &Notice,
        delivery: &Delivery,
    ) -> Result<(), SendError> {
        let name = template_name(&notice.verdict, delivery.kind);
        let template = setup
            .templates
            .get(&name)
            .ok_or_else(|| SendError::Transient(format!("no template {name}")))?;
        let values = self.message_values(notice, delivery);
        let stem = job_path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let message_id = format!(
            "<{stem}.{}.{}@{}>",
            delivery.kind.as_str(),
            short_hash(&delivery.to),
            self.host
        );
        self.send(template, &values, &delivery.to, message_id)
    }

    fn message_values(
        &self,
        notice: &Notice,
        delivery: &Delivery,
    ) -> BTreeMap<&'static str, String> {
        let or_null = |sender: &str| {
            if sender.is_empty() {
                "<>".to_string()
            } else {
                sender.to_string()
            }
        };
        BTreeMap::from([
            ("id", notice.id.clone()),
            ("verdict", notice.verdict.clone()),
            ("rule", notice.rule.clone()),
            ("where", notice.location.clone()),
            ("reason", notice.reason.clone()),
            ("file", notice.file_name()),
            ("queue", notice.queue.clone()),
            ("sender", or_null(&notice.sender)),
            ("recipients", notice.recipients.join(", ")),
            ("to", delivery.to.clone()),
            ("kind", delivery.kind.as_str().to_string()),
            ("from", notice.from_header.clone()),
            ("subject", notice.subject.clone()),
            ("date", rfc2822(notice.judged)),
            ("host", self.host.clone()),
            (
                "score",
                notice.score.map(|s| format!("{s:.1}")).unwrap_or_default(),
            ),
        ])
    }

    fn send_summaries(
        &self,
        setup: &Setup,
        rate: &mut RateLimit,
        counts: &mut PassCounts,
        log: &mut ProcessLog,
    ) {
        let Some(template) = setup.templates.get("summary") else {
            return;
        };
        let now = now_epoch();
        for summary in rate.summaries_due(now) {
            let values = self.summary_values(&summary, rate.per_hour(), now);
            let message_id = format!(
                "<summary.{}.{}@{}>",
                (now * 1000.0) as u64,
                short_hash(&summary.to),
                self.host
            );
            match self.send(template, &values, &summary.to, message_id) {
                Ok(()) => {
                    rate.summary_sent(&summary.to, now);
                    counts.summaries += 1;
                    log.line(&format!(
                        "Sent a summary of {} held notifications to {}.",
                        summary.count(),
                        summary.to
                    ));
                }
                Err(
                    SendError::ServerDown(why)
                    | SendError::Transient(why)
                    | SendError::Permanent(why),
                ) => {
                    let wait = backoff(&self.settings, summary.attempts + 1);
                    rate.summary_failed(&summary.to, now + wait);
                    log.line(&format!(
                        "Cannot send the summary to {}: {why}; next try in {} s.",
                        summary.to,
                        (wait * 10.0).round() / 10.0
                    ));
                }
            }
        }
    }

    fn summary_values(
        &self,
        summary: &Summary,
        per_hour: u32,
        now: f64,
    ) -> BTreeMap<&'static str, String> {
        let mut list: Vec<String> = summary
            .held
            .iter()
            .map(|h| {
                let sender = if h.sender.is_empty() {
                    "<>"
                } else {
                    h.sender.as_str()
                };
                format!(
                    "  {}  {}  {}  {}  from {}",
                    rfc2822(h.judged),
                    h.id,
                    h.verdict,
                    h.rule,
                    sender
                )
            })
            .collect();
        if summary.unlisted > 0 {
            list.push(format!("  ... and {} more", summary.unlisted));
        }
        BTreeMap::from([
            ("to", summary.to.clone()),
            ("count", summary.count().to_string()),
            ("limit", per_hour.to_string()),
            ("list", list.join("\n")),
            ("date", rfc2822(now)),
            ("host", self.host.clone()),
        ])
    }

    /// Renders and sends one notification to `to`; returns once the server accepted it.
    fn send(
        &self,
        template: &Template,
        values: &BTreeMap<&'static str, String>,
        to: &str,
        message_id: String,
    ) -> Result<(), SendError> {
        let address: Address = to
            .parse()
            .map_err(|e| SendError::Permanent(format!("{to:?} is not a mail address: {e}")))?;
        let rendered = template.render(values);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, address.clone()))
            .date(SystemTime::now())
            .message_id(Some(message_id));
        let mut auto_submitted = false;
        for (key, value) in rendered.headers {
            auto_submitted |= key.eq_ignore_ascii_case("auto-submitted");
            let name = HeaderName::new_from_ascii(key.clone()).map_err(|e| {
                SendError::Transient(format!("template {}: header {key:?}: {e}", template.name))
            })?;
            builder = builder.raw_header(HeaderValue::new(name, value));
        }
        if !auto_submitted {
            // RFC 3834: marks the notification as automatic, so autoresponders and
            // other filters never answer it.
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_string(),
            ));
        }
        let envelope = lettre::address::Envelope::new(self.envelope_from.clone(), vec![address])
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let message = builder
            .header(ContentType::TEXT_PLAIN)
            .envelope(envelope)
            .body(rendered.body)
            .map_err(|e| SendError::Transient(format!("template {}: {e}", template.name)))?;
        self.transport.send(&message).map(|_| ()).map_err(|e| {
            let why = e.to_string();
            let server_busy = e.status().is_some_and(|code| code.to_string() == "421");
            if e.is_permanent() {
                SendError::Permanent(why)
            } else if e.is_transient() && !server_busy {
                SendError::Transient(why)
            } else {
                SendError::ServerDown(why)
            }
        })
    }
}

/// Seconds to wait after the `attempts`-th failure: `retry_min` doubled per earlier
/// failure, at most `retry_max`.
fn backoff(settings: &NotifyInit, attempts: u32) -> f64 {
    let doublings = attempts.saturating_sub(1).min(30);
    (settings.retry_min * f64::from(1u32 << doublings)).min(settings.retry_max)
}

fn rfc2822(epoch: f64) -> String {
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(epoch.max(0.0));
    DateTime::<Local>::from(when).to_rfc2822()
}

/// Eight hex digits naming an address inside a Message-ID without showing it.
fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.to_ascii_lowercase().as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::job::{failed_dir, record_notices};

    /// A spool, settings aimed at a loopback port nobody listens on, and the log path.
    fn unreachable(max_age: f64) -> (tempfile::TempDir, Spool, NotifyInit) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("queues"), 5);
        spool.ensure_tree().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(dir.path().join("notify.toml"), "virus = [\"recipients\"]\n").unwrap();
        let settings = NotifyInit {
            smtp_port: port,
            config: dir.path().join("notify.toml"),
            hello_name: "relay.test".into(),
            retry_min: 30.0,
            max_age,
            timeout: 5.0,
            ..NotifyInit::default()
        };
        (dir, spool, settings)
    }

    fn notice(id: &str, recipient: &str, age: f64) -> Notice {
        Notice {
            id: id.into(),
            verdict: "virus".into(),
            rule: "Eicar-Test-Signature".into(),
            location: "part 2 (eicar.com)".into(),
            reason: "found".into(),
            score: None,
            queue: "virus".into(),
            sender: "s@client.test".into(),
            recipients: vec![recipient.into()],
            from_header: "s@client.test".into(),
            subject: "hi".into(),
            auto_submitted: String::new(),
            precedence: String::new(),
            list_id: String::new(),
            judged: now_epoch() - age,
        }
    }

    fn jobs(spool: &Spool) -> Vec<Job> {
        list_jobs(&notify_dir(spool))
            .unwrap()
            .iter()
            .map(|path| Job::read(path).unwrap())
            .collect()
    }

    fn failed(spool: &Spool) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(failed_dir(spool))
            .map(|read| {
                read.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn an_unreachable_server_defers_with_backoff_and_stops_the_pass() {
        let (dir, spool, settings) = unreachable(3600.0);
        record_notices(
            &spool,
            &[
                notice("ID1", "a@dest.test", 0.0),
                notice("ID2", "b@dest.test", 0.0),
            ],
        )
        .unwrap();
        let mut outbox = Outbox::new(&spool, &settings).unwrap();
        let mut log = ProcessLog::new("notify", dir.path().join("notify.log"), false);
        let before = now_epoch();
        let counts = outbox.pass(&mut log, &|| false);
        assert_eq!(
            counts,
            PassCounts {
                deferred: 1,
                ..PassCounts::default()
            }
        );
        let jobs = jobs(&spool);
        let first = &jobs[0].deliveries.as_ref().unwrap()[0];
        assert_eq!(first.attempts, 1);
        assert!(
            first.next_attempt >= before + 30.0,
            "retry_min before the next try"
        );
        assert!(!first.last_error.is_empty());
        let second = &jobs[1].deliveries.as_ref().unwrap()[0];
        assert_eq!(
            second.attempts, 0,
            "the pass stopped at the unreachable server"
        );
        let text = std::fs::read_to_string(dir.path().join("notify.log")).unwrap();
        assert!(
            text.contains(
                "Cannot send ID1 virus notification to recipients a@dest.test (attempt 1)"
            ),
            "{text}"
        );
        assert!(failed(&spool).is_empty());
    }

    #[test]
    fn what_can_never_be_sent_is_kept_in_failed_not_dropped() {
        let (dir, spool, settings) = unreachable(60.0);
        record_notices(
            &spool,
            &[
                notice("OLD", "a@dest.test", 120.0),
                notice("BAD", "no address", 0.0),
            ],
        )
        .unwrap();
        std::fs::write(notify_dir(&spool).join("0000000000000-X-1.job"), b"{ torn").unwrap();
        let mut outbox = Outbox::new(&spool, &settings).unwrap();
        let mut log = ProcessLog::new("notify", dir.path().join("notify.log"), false);
        // The first pass gives up on the old one at the unreachable server and stops
        // there; the second finds the address impossible without any server.
        let first = outbox.pass(&mut log, &|| false);
        assert_eq!(first.failed, 1, "{first:?}");
        let second = outbox.pass(&mut log, &|| false);
        assert_eq!(second.failed, 1, "{second:?}");
        assert!(jobs(&spool).is_empty(), "nothing left to try");
        let kept = failed(&spool);
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert!(kept.iter().any(|name| name.ends_with(".bad")), "{kept:?}");
        let text = std::fs::read_to_string(dir.path().join("notify.log")).unwrap();
        assert!(
            text.contains("Giving up on OLD virus notification"),
            "{text}"
        );
        assert!(
            text.contains("\"no address\" is not a mail address"),
            "{text}"
        );
        let old = kept.iter().find(|name| name.contains("-OLD-")).unwrap();
        let job = Job::read(&failed_dir(&spool).join(old)).unwrap();
        assert_eq!(job.deliveries.unwrap()[0].attempts, 1);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let settings = NotifyInit {
            retry_min: 10.0,
            retry_max: 100.0,
            ..NotifyInit::default()
        };
        let waits: Vec<f64> = (1..=6).map(|n| backoff(&settings, n)).collect();
        assert_eq!(waits, [10.0, 20.0, 40.0, 80.0, 100.0, 100.0]);
        assert_eq!(backoff(&settings, 500), 100.0);
    }

    #[test]
    fn tls_settings_load_the_site_ca_and_name_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path(), 5);
        let ca = dir.path().join("ca.pem");
        let generated = rcgen::generate_simple_self_signed(vec!["relay.test".into()]).unwrap();
        std::fs::write(&ca, generated.cert.pem()).unwrap();
        for tls in [TlsMode::Starttls, TlsMode::Tls] {
            let settings = NotifyInit {
                smtp_host: "relay.test".into(),
                tls,
                ca_file: Some(ca.clone()),
                ..NotifyInit::default()
            };
            assert!(Outbox::new(&spool, &settings).is_ok(), "{tls:?}");
        }
        std::fs::write(&ca, "not a certificate").unwrap();
        let settings = NotifyInit {
            tls: TlsMode::Starttls,
            ca_file: Some(ca.clone()),
            ..NotifyInit::default()
        };
        let err = Outbox::new(&spool, &settings).err().unwrap().to_string();
        assert!(err.contains("ca_file") && err.contains("ca.pem"), "{err}");
    }

    #[test]
    fn unscannable_messages_use_the_error_templates() {
        assert_eq!(template_name("unscannable", Kind::Admin), "error-admin");
        assert_eq!(template_name("virus", Kind::Recipients), "virus-recipients");
    }

    #[test]
    fn bad_settings_are_refused_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path(), 5);
        let settings = NotifyInit {
            retry_min: 0.0,
            ..NotifyInit::default()
        };
        let err = Outbox::new(&spool, &settings).err().unwrap().to_string();
        assert!(err.contains("init.notify.retry_min"), "{err}");
        let settings = NotifyInit {
            from: "not an address".into(),
            ..NotifyInit::default()
        };
        let err = Outbox::new(&spool, &settings).err().unwrap().to_string();
        assert!(err.contains("init.notify.from"), "{err}");
    }
}
