//! claribi: the clariBI on-prem authentication and API server.
//!
//! Modules in reading order; docs/architecture.md has the map and the invariants.
// Audited exceptions: the scheduling-policy system call in `sched`, and handing freed memory
// back to the system after argon2 in `auth::password`.
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod domain;
pub mod error;
pub mod http;
pub mod ops;
pub mod sched;
pub mod store;
pub mod telemetry;
