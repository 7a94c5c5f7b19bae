//! Notification jobs in `sie/notify/`: one JSON file per quarantined message, written
//! by the work loop with the message's facts, then planned (one delivery per address)
//! and worked off by the notify loop; what cannot be sent ends in `failed/`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::NotifyError;
use crate::queue::durable::{sync_dir, write_atomic};
use crate::queue::qf::ControlFile;
use crate::queue::{QueueId, Spool};
use crate::scan::{Verdict, VerdictKind};
use crate::timefmt::now_epoch;

/// Suffix of job files; anything else in the directory (temp files, `rate.json`) is
/// not a job.
const JOB_SUFFIX: &str = ".job";

/// Where jobs wait: `<spool>/sie/notify/`.
pub fn notify_dir(spool: &Spool) -> PathBuf {
    spool.state_dir().join("notify")
}

/// Where notifications that could not be sent are kept for the admin.
pub fn failed_dir(spool: &Spool) -> PathBuf {
    notify_dir(spool).join("failed")
}

/// The facts about one quarantined message that its notifications may show, taken
/// when the work loop moved it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub id: String,
    /// `virus`, `ext`, `spam`, `unscannable` or `error`.
    pub verdict: String,
    /// Signature, rule or limit name.
    pub rule: String,
    /// Where in the message (`part 2 (docs.zip) > eicar.com`).
    pub location: String,
    pub reason: String,
    /// The spam score, when the spam rules ran.
    #[serde(default)]
    pub score: Option<f64>,
    /// The queue the message was moved to.
    pub queue: String,
    /// Envelope sender without angle brackets; empty for the null sender.
    pub sender: String,
    pub recipients: Vec<String>,
    /// Header fields of the message, decoded (empty when absent).
    pub from_header: String,
    pub subject: String,
    pub auto_submitted: String,
    pub precedence: String,
    pub list_id: String,
    /// When the message was moved, epoch seconds.
    pub judged: f64,
}

impl Notice {
    /// The notice of a message moved to `queue` with `verdict`; `None` for clean ones.
    /// `control` is `None` when the qf did not parse (the verdict is then an error).
    pub fn new(
        id: &QueueId,
        control: Option<&ControlFile>,
        verdict: &Verdict,
        queue: &str,
    ) -> Option<Notice> {
        if verdict.kind == VerdictKind::Clean {
            return None;
        }
        let mut notice = Notice {
            id: id.as_str().to_string(),
            verdict: verdict.kind.as_str().to_string(),
            rule: verdict.name.clone(),
            location: verdict.location.clone(),
            reason: verdict.reason.clone(),
            score: verdict.score,
            queue: queue.to_string(),
            sender: String::new(),
            recipients: Vec::new(),
            from_header: String::new(),
            subject: String::new(),
            auto_submitted: String::new(),
            precedence: String::new(),
            list_id: String::new(),
            judged: now_epoch(),
        };
        if let Some(control) = control {
            notice.sender = bare_address(&control.sender().unwrap_or_default());
            notice.recipients = control
                .recipients()
                .iter()
                .map(|r| bare_address(r))
                .collect();
            let headers = control.header_section();
            if let Some(parsed) = mail_parser::MessageParser::default().parse_headers(&headers) {
                notice.from_header = parsed
                    .from()
                    .and_then(|from| from.first())
                    .and_then(|addr| addr.address())
                    .unwrap_or_default()
                    .to_string();
                notice.subject = parsed.subject().unwrap_or_default().to_string();
            }
            let text = |name: &str| control.header(name).unwrap_or_default();
            notice.auto_submitted = text("Auto-Submitted");
            notice.precedence = text("Precedence");
            notice.list_id = text("List-Id");
        }
        Some(notice)
    }

    /// The attachment or member name the finding is in, from `location`: the last
    /// `>` step, with a part's name taken from its parentheses and annotations such
    /// as `(uuencoded)` dropped. Empty when the finding is not in a named file.
    pub fn file_name(&self) -> String {
        let last = self.location.rsplit(" > ").next().unwrap_or("").trim();
        if let Some(part) = last.strip_prefix("part ") {
            return match (part.find('('), part.rfind(')')) {
                (Some(open), Some(close)) if open < close => part[open + 1..close].to_string(),
                _ => String::new(),
            };
        }
        if last == "raw message" || self.location.is_empty() {
            return String::new();
        }
        match last.rfind(" (") {
            Some(note) if last.ends_with(')') => last[..note].to_string(),
            _ => last.to_string(),
        }
    }
}

/// `<a@b>` -> `a@b`; `<>` -> empty.
fn bare_address(text: &str) -> String {
    let text = text.trim();
    text.strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(text)
        .to_string()
}

/// Who a delivery goes to, by the role the addressee has for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The admin of a recipient's domain.
    Admin,
    /// The envelope sender.
    Sender,
    /// One envelope recipient.
    Recipients,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Admin => "admin",
            Kind::Sender => "sender",
            Kind::Recipients => "recipients",
        }
    }
}

/// One notification still to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub kind: Kind,
    pub to: String,
    pub attempts: u32,
    /// Epoch seconds before which it is not tried again.
    pub next_attempt: f64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_error: String,
}

/// A job file: a notice and, once the notify loop planned it, its pending deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub notice: Notice,
    /// `None` until planned; planned jobs are removed when this becomes empty.
    pub deliveries: Option<Vec<Delivery>>,
}

impl Job {
    pub fn read(path: &Path) -> Result<Job, NotifyError> {
        let bytes = fs::read(path).map_err(|e| NotifyError::io(path, e))?;
        serde_json::from_slice(&bytes).map_err(|source| NotifyError::BadJob {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Replaces the job file durably.
    pub fn write(&self, path: &Path) -> Result<(), NotifyError> {
        write_atomic(path, &self.to_bytes(), 0o600).map_err(|e| NotifyError::io(path, e))
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a job always serializes");
        bytes.push(b'\n');
        bytes
    }
}

/// Writes one job per notice into `sie/notify/`, each file synced, then the directory
/// once: cheap enough to run after every work pass. Returns the paths written.
pub fn record_notices(spool: &Spool, notices: &[Notice]) -> Result<Vec<PathBuf>, NotifyError> {
    if notices.is_empty() {
        return Ok(Vec::new());
    }
    let dir = notify_dir(spool);
    create_dir(&dir)?;
    let mut written = Vec::with_capacity(notices.len());
    for notice in notices {
        let job = Job {
            notice: notice.clone(),
            deliveries: None,
        };
        // Milliseconds first, so a listing sorted by name is oldest first; the pid keeps
        // two work loops apart.
        let name = format!(
            "{:013}-{}-{}{JOB_SUFFIX}",
            (notice.judged * 1000.0) as u64,
            notice.id,
            std::process::id()
        );
        let path = dir.join(&name);
        let temp = dir.join(format!(".tmp.{name}"));
        let result = (|| {
            let mut file: File = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(&job.to_bytes())?;
            file.sync_all()?;
            fs::rename(&temp, &path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&temp);
            return Err(NotifyError::io(&path, e));
        }
        written.push(path);
    }
    sync_dir(&dir).map_err(|e| NotifyError::io(&dir, e))?;
    Ok(written)
}

/// The job files waiting in `dir`, oldest first.
pub fn list_jobs(dir: &Path) -> Result<Vec<PathBuf>, NotifyError> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NotifyError::io(dir, e)),
    };
    let mut jobs = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| NotifyError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(JOB_SUFFIX) && !name.starts_with('.') {
            jobs.push(entry.path());
        }
    }
    jobs.sort();
    Ok(jobs)
}

/// Keeps deliveries that will never be sent in `failed/`, as a job file of their own
/// beside the reason; returns the path written.
pub fn keep_failed(
    spool: &Spool,
    job_path: &Path,
    notice: &Notice,
    failed: Vec<Delivery>,
) -> Result<PathBuf, NotifyError> {
    let dir = failed_dir(spool);
    create_dir(&dir)?;
    let stem = job_path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .trim_end_matches(JOB_SUFFIX)
        .to_string();
    let mut path = dir.join(format!("{stem}{JOB_SUFFIX}"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = dir.join(format!("{stem}.{n}{JOB_SUFFIX}"));
    }
    let job = Job {
        notice: notice.clone(),
        deliveries: Some(failed),
    };
    job.write(&path)?;
    Ok(path)
}

/// Removes a finished job file durably.
pub fn remove_job(path: &Path) -> Result<(), NotifyError> {
    fs::remove_file(path).map_err(|e| NotifyError::io(path, e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    sync_dir(dir).map_err(|e| NotifyError::io(dir, e))
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), NotifyError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| NotifyError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::qf::ControlFileBuilder;

    fn control(sender: &str, headers: &[(&str, &str)]) -> ControlFile {
        let bytes = ControlFileBuilder {
            created: 1795303433,
            sender: sender.into(),
            recipients: vec!["a@dest.test".into(), "b@other.test".into()],
            helo: "client.test".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body_bytes: 0,
        }
        .build();
        ControlFile::parse(&bytes).unwrap()
    }

    fn notice_at(location: &str) -> Notice {
        let id = QueueId::parse("6ALNNrgA000001").unwrap();
        let verdict = Verdict::new(VerdictKind::Ext, "ext:exe", location, "blocked");
        Notice::new(&id, None, &verdict, "ext").unwrap()
    }

    #[test]
    fn a_notice_carries_envelope_and_decoded_headers() {
        let id = QueueId::parse("6ALNNrgA000001").unwrap();
        let control = control(
            "s@client.test",
            &[
                ("From", "Someone <s@client.test>"),
                ("Subject", "=?UTF-8?Q?caf=C3=A9?= menu"),
                ("Precedence", "bulk"),
            ],
        );
        let verdict = Verdict::new(VerdictKind::Virus, "Eicar", "part 2 (e.com)", "found");
        let notice = Notice::new(&id, Some(&control), &verdict, "virus").unwrap();
        assert_eq!(notice.sender, "s@client.test");
        assert_eq!(notice.recipients, ["a@dest.test", "b@other.test"]);
        assert_eq!(notice.from_header, "s@client.test");
        assert_eq!(notice.subject, "café menu");
        assert_eq!(notice.precedence, "bulk");
        assert_eq!(notice.verdict, "virus");
        assert!(Notice::new(&id, Some(&control), &Verdict::clean(), "out").is_none());
    }

    #[test]
    fn file_names_come_from_the_location() {
        assert_eq!(
            notice_at("part 2 (invoice.pdf.exe)").file_name(),
            "invoice.pdf.exe"
        );
        assert_eq!(
            notice_at("part 2 (docs.zip) > inner.zip > eicar.com").file_name(),
            "eicar.com"
        );
        assert_eq!(
            notice_at("part 1 > eicar.com (uuencoded)").file_name(),
            "eicar.com"
        );
        assert_eq!(notice_at("raw message").file_name(), "");
        assert_eq!(notice_at("part 3").file_name(), "");
        assert_eq!(notice_at("").file_name(), "");
    }

    #[test]
    fn recorded_jobs_are_listed_oldest_first_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("queues"), 5);
        let mut first = notice_at("part 2 (a.exe)");
        first.judged = 100.0;
        let mut second = first.clone();
        second.judged = 200.0;
        let written = record_notices(&spool, &[second.clone(), first.clone()]).unwrap();
        assert_eq!(written.len(), 2);
        let listed = list_jobs(&notify_dir(&spool)).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(Job::read(&listed[0]).unwrap().notice, first);
        assert_eq!(Job::read(&listed[1]).unwrap().notice, second);
        let failed = keep_failed(&spool, &listed[0], &first, Vec::new()).unwrap();
        let again = keep_failed(&spool, &listed[0], &first, Vec::new()).unwrap();
        assert_ne!(failed, again, "a failed job never overwrites another");
        remove_job(&listed[0]).unwrap();
        assert_eq!(list_jobs(&notify_dir(&spool)).unwrap(), [listed[1].clone()]);
    }
}
