//! Reports for admins, computed from the queues and the logs: queue listings (`mailq`,
//! `qls`) and per-queue statistics from the `Stats:` lines (`stats`).

pub mod listing;
pub mod stats;
