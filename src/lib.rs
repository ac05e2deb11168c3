//! cronpush: know whether your Kubernetes CronJobs ran, when, and how they ended.
//!
//! One binary with several roles; this library holds them so that the roles share one model
//! and tests reach the pure parts without sockets.

#![forbid(unsafe_code)]

pub mod certs;
pub mod contract;
pub mod exit_status;
pub mod exposition;
pub mod fuzzing;
pub mod gateway;
pub mod go_duration;
pub mod logging;
pub mod proto;
pub mod pushers;
pub mod schedule;
pub mod tls;
pub mod webhook;
