//! SIE scans mail between two sendmail instances: `feed` spreads queued messages from
//! `queues/in` over work queues, `work` scans them and moves each to its result queue.
//! Every program in `src/bin/` is a thin front end over the modules below.

pub mod cli;
pub mod config;
pub mod corpus;
pub mod daemon;
pub mod feed;
pub mod inputs;
pub mod lockfile;
pub mod log;
pub mod mon;
pub mod notify;
pub mod queue;
pub mod report;
pub mod rules;
pub mod scan;
pub mod supervisor;
pub mod timefmt;
pub mod tune;
pub mod web;
pub mod work;

// Scans allocate and free many small buffers per message on every core: glibc's
// malloc spent a sixth of the spam rules' instructions and most of their system time
// (returning freed pages), mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
