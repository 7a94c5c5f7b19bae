//! Test helpers shared by the unit tests of every module that needs a spool.

use super::Spool;

/// A fresh spool tree with `feed_queues` feed queues under a temporary directory; the
/// directory lives as long as the returned guard.
pub fn temp_spool(feed_queues: usize) -> (tempfile::TempDir, Spool) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path().join("queues"), feed_queues);
    spool.ensure_tree().unwrap();
    (dir, spool)
}
