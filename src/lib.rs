//! cronpush: know whether your Kubernetes CronJobs ran, when, and how they ended.
//!
//! One binary with several roles; this library holds them so that the roles share one model
//! and tests reach the pure parts without sockets.

#![forbid(unsafe_code)]

// Without the `roles` feature (see Cargo.toml) only the exposition formats, the grouping key and
// the push routes are built: the pure parts that the fuzz targets exercise.
pub mod exposition;
pub mod fuzzing;
pub mod gateway;
pub mod proto;

#[cfg(feature = "roles")]
pub mod certs;
#[cfg(feature = "roles")]
pub mod contract;
#[cfg(feature = "roles")]
pub mod exit_status;
#[cfg(feature = "roles")]
pub mod go_duration;
#[cfg(feature = "roles")]
pub mod http_server;
#[cfg(feature = "roles")]
pub mod logging;
#[cfg(feature = "roles")]
pub mod pushers;
#[cfg(feature = "roles")]
pub mod schedule;
#[cfg(feature = "roles")]
pub mod shutdown;
#[cfg(feature = "roles")]
pub mod tls;
#[cfg(feature = "roles")]
pub mod webhook;
