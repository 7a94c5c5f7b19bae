//! The passes `solve` fits: one per `Stats:` line of a work log, with its messages, bytes
//! and wall time `vs`, filed under the log's queue (`feed1.log`, `feed1.log.3.gz` ->
//! `feed1`) and dated by the `Started pass` line before it. Gzip files are read by magic.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::{QueueKey, TuneError, queue_order};
use crate::log::StatsLine;
use crate::queue::Spool;
use crate::report::stats::{log_line_date, queue_of_log};

/// One work pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Epoch seconds of the pass's `Started pass` line, when the log has it.
    pub started: Option<f64>,
    /// The pass id of that line (`20020523043700.21037.349`): the same pass found in two
    /// files (a live log and its archived copy) is counted once.
    pub pass_id: Option<String>,
    pub msgs: u64,
    pub bytes: u64,
    pub vs: f64,
}

/// Reads the passes of one log. A `Stats:` line takes the date and pass id of the last
/// `Started pass` line before it; a line that cannot be parsed is not a pass.
pub fn read_passes(log: impl BufRead) -> io::Result<Vec<Sample>> {
    let mut passes = Vec::new();
    let mut started: Option<(Option<f64>, String)> = None;
    for line in log.split(b'\n') {
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        if let Some(stats) = StatsLine::from_log_line(&line) {
            let (when, id) = started.take().unzip();
            passes.push(Sample {
                started: when.flatten(),
                pass_id: id,
                msgs: stats.msgs,
                bytes: stats.bytes,
                vs: stats.vs,
            });
        } else if let Some(at) = line.find(": Started pass ") {
            let id = line[at + ": Started pass ".len()..].trim_end();
            let id = id.strip_suffix('.').unwrap_or(id).to_string();
            started = Some((log_line_date(&line), id));
        }
    }
    Ok(passes)
}

/// Opens a log for reading, through gzip when it starts with gzip's magic bytes.
pub fn open_log(path: &Path) -> Result<Box<dyn BufRead>, TuneError> {
    let mut file = File::open(path).map_err(|e| TuneError::io(path, e))?;
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut file, &mut magic).map_err(|e| TuneError::io(path, e))?;
    let head = io::Cursor::new(magic[..got].to_vec());
    let whole = head.chain(file);
    Ok(if magic[..got] == [0x1f, 0x8b] {
        Box::new(BufReader::new(MultiGzDecoder::new(whole)))
    } else {
        Box::new(BufReader::new(whole))
    })
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The work logs of a spool, live and rotated: files named `feed<N>.log*` in
/// `<spool>/sie/logs` and anywhere under `<spool>/archive` (`feed1.log`, `feed1.log.1`,
/// `feed1.log.2.gz`, `2026-11/feed1.log-20261121.gz` ...). Other logs (`feed.log`,
/// `sie.log`) have no `Stats:` lines and are not read. Symbolic links are not followed.
pub fn spool_work_logs(spool: &Spool) -> Result<Vec<PathBuf>, TuneError> {
    let mut logs = Vec::new();
    collect_logs(&spool.logs_dir(), false, &mut logs)?;
    let archive = spool.root().join("archive");
    if archive.is_dir() {
        collect_logs(&archive, true, &mut logs)?;
    }
    logs.sort();
    Ok(logs)
}

fn collect_logs(dir: &Path, recurse: bool, logs: &mut Vec<PathBuf>) -> Result<(), TuneError> {
    for item in fs::read_dir(dir).map_err(|e| TuneError::io(dir, e))? {
        let item = item.map_err(|e| TuneError::io(dir, e))?;
        let kind = item
            .file_type()
            .map_err(|e| TuneError::io(item.path(), e))?;
        let path = item.path();
        if kind.is_dir() && recurse {
            collect_logs(&path, true, logs)?;
        } else if kind.is_file() && is_work_log(&path) {
            logs.push(path);
        }
    }
    Ok(())
}

/// `feed<N>.log` or a rotated copy of it (`feed<N>.log<anything>`).
fn is_work_log(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.contains(".log")
        && queue_of_log(path)
            .strip_prefix("feed")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The passes of several logs, per queue, in queue order.
#[derive(Debug, Clone, Default)]
pub struct PassSet {
    queues: BTreeMap<QueueKey, (String, Vec<Sample>)>,
    /// Passes seen twice (same queue and pass id) and counted once.
    pub duplicates: usize,
    /// Passes left out by `since` (including undated ones when `since` is given).
    pub too_old: usize,
    seen: HashSet<(String, String)>,
}

impl PassSet {
    /// Reads `path`, filed under its queue, keeping passes started at or after `since`
    /// and only queues in `only` (when not empty).
    pub fn add_log(
        &mut self,
        path: &Path,
        since: Option<f64>,
        only: &[String],
    ) -> Result<(), TuneError> {
        let queue = queue_of_log(path);
        if !only.is_empty() && !only.contains(&queue) {
            return Ok(());
        }
        let passes = read_passes(open_log(path)?).map_err(|e| TuneError::io(path, e))?;
        self.add(&queue, passes, since);
        Ok(())
    }

    /// Files `passes` under `queue` (a queue asked for by name is listed even when it
    /// has no passes, so it is reported).
    pub fn add(&mut self, queue: &str, passes: Vec<Sample>, since: Option<f64>) {
        let (_, list) = self
            .queues
            .entry(queue_order(queue))
            .or_insert_with(|| (queue.to_string(), Vec::new()));
        for pass in passes {
            if let Some(since) = since
                && pass.started.is_none_or(|when| when < since)
            {
                self.too_old += 1;
                continue;
            }
            if let Some(id) = &pass.pass_id
                && !self.seen.insert((queue.to_string(), id.clone()))
            {
                self.duplicates += 1;
                continue;
            }
            list.push(pass);
        }
    }

    /// Each queue's name and passes, in queue order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Sample])> {
        self.queues
            .values()
            .map(|(name, passes)| (name.as_str(), passes.as_slice()))
    }

    /// Every pass of every queue, for the pooled fit.
    pub fn all(&self) -> Vec<Sample> {
        self.iter().flat_map(|(_, p)| p.iter().cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LOG: &str = "\
feed1: Thu May 23 10:18:10 EDT 2002: Started pass 20020523043700.21037.349.
feed1: Clean, moving: g4NEHl121396
feed1: Stats: vir:0 ext:0 spam:0 vir-ex:0 ext-ex:0 spam-ex:0 clean:1 msgs:1 bytes:2675 vf:15.32 vs:17.195 lock:0.085
feed1: Thu May 23 10:18:28 EDT 2002: Finished pass.
feed1: Thu May 23 11:00:00 EDT 2002: Started pass 20020523050000.21037.350.
feed1: Stats: vir:1 ext:0 spam:2 vir-ex:0 ext-ex:0 spam-ex:1 clean:3 msgs:8 bytes:10000 vf:1.00 vs:2.005 lock:0.015
feed1: Stats: broken
";

    #[test]
    fn stats_lines_become_passes_dated_by_their_started_line() {
        let passes = read_passes(LOG.as_bytes()).unwrap();
        assert_eq!(passes.len(), 2);
        assert_eq!(
            (passes[0].msgs, passes[0].bytes, passes[0].vs),
            (1, 2675, 17.195)
        );
        assert_eq!(
            passes[1].pass_id.as_deref(),
            Some("20020523050000.21037.350")
        );
        let first = passes[0].started.unwrap();
        assert_eq!(passes[1].started.unwrap() - first, 42.0 * 60.0 - 10.0);
    }

    #[test]
    fn gzip_archives_read_like_plain_logs_and_copies_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("feed1.log.1");
        fs::write(&plain, LOG).unwrap();
        let packed = dir.path().join("feed1.log.1.gz");
        let mut gz = flate2::write::GzEncoder::new(
            File::create(&packed).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(LOG.as_bytes()).unwrap();
        gz.finish().unwrap();
        let mut set = PassSet::default();
        set.add_log(&packed, None, &[]).unwrap();
        set.add_log(&plain, None, &[]).unwrap();
        let (name, passes) = set.iter().next().unwrap();
        assert_eq!((name, passes.len(), set.duplicates), ("feed1", 2, 2));
    }

    #[test]
    fn since_and_queue_filters() {
        let since = log_line_date("feed1: Thu May 23 10:30:00 EDT 2002: x");
        let mut set = PassSet::default();
        set.add("feed1", read_passes(LOG.as_bytes()).unwrap(), since);
        assert_eq!(set.all().len(), 1);
        assert_eq!(set.too_old, 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feed2.log");
        fs::write(&path, LOG).unwrap();
        set.add_log(&path, None, &["feed3".to_string()]).unwrap();
        assert_eq!(set.iter().count(), 1);
    }

    #[test]
    fn spool_logs_include_rotated_and_archived_work_logs_only() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path(), 2);
        spool.ensure_tree().unwrap();
        let month = dir.path().join("archive/2026-11");
        fs::create_dir_all(&month).unwrap();
        for path in [
            spool.log_file("feed1"),
            spool.log_file("feed"),
            spool.log_file("sie"),
            spool.logs_dir().join("feed2.log.1.gz"),
            month.join("feed10.log-20261121.gz"),
            month.join("qfXYZ"),
        ] {
            fs::write(path, "").unwrap();
        }
        let names: Vec<String> = spool_work_logs(&spool)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["feed10.log-20261121.gz", "feed1.log", "feed2.log.1.gz"]
        );
    }
}
