//! Helpers shared by the integration tests.
//!
//! Every file in `tests/` is its own crate and compiles this module separately,
//! each using only a subset of the helpers; `dead_code` is therefore allowed for
//! the whole module instead of sprinkling attributes over every item.
#![allow(dead_code)]

pub mod browser;
pub mod sendmail;
pub mod sink;
pub mod spool;
pub mod web;
