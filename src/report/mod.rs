//! Reports for admins, computed from the queues and the logs: queue listings (`mailq`,
//! `qls`), per-queue statistics from the `Stats:` lines (`stats`) and the live view that
//! `mon` and the web console show (`live`).

pub mod listing;
pub mod live;
pub mod stats;
