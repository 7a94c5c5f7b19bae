//! Reports for admins, computed from the queues and the logs: queue listings (`mailq`,
//! `qls`), per-queue statistics from the `Stats:` lines (`stats`) and the live view that
//! `mon` and the web console show (`live`).

pub mod archive;
pub mod listing;
pub mod live;
pub mod rotate;
pub mod stats;
