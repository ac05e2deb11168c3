//! The pushers: the two containers the webhook injects into a CronJob's Pod. `cronpush start`
//! (an init container) pushes the run's start metrics; `cronpush sidecar` (a native sidecar)
//! pushes how it ended, learned from the relay ([`exit_source`]).
//!
//! They run inside someone else's Job, so they share one rule: nothing they meet, from a
//! missing gateway to a garbled environment, may fail or hold up that Job. Every input is read
//! leniently ([`run`]), every push is bounded by a deadline ([`gateway_client`]), and the process always
//! exits 0 ([`process`]). A gateway behind TLS and basic auth is reached with what
//! [`gateway_access`] reads.

pub mod end_metrics;
pub mod exit_source;
pub mod gateway_access;
pub mod gateway_client;
pub mod group;
pub mod process;
pub mod run;
pub mod sidecar;
pub mod skipped_slots;
pub mod start;
pub mod start_metrics;
