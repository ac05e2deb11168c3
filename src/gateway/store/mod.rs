//! The store: the gateway's in-memory model of what was pushed. It holds groups of metric
//! families, each named by a grouping key, and keeps one invariant: whatever it holds can be
//! scraped.
//!
//! - `grouping.rs`: grouping keys, the label sets in push URLs that name groups;
//! - `family.rs`: a family as a group keeps it, already in the forms a scrape sends;
//! - `prepared_push.rs`: a push made ready outside the store's lock;
//! - `consistency.rs`: the checks a pushed family must pass for the store to stay scrapable;
//! - `groups.rs`: the store itself, its groups and the indexes a push is checked against;
//! - `cronjob_series.rs`: reading the `cronjob_*` series of cronpush's pushers;
//! - `limits.rs`: what a push may bring, checked before the store changes;
//! - `runs.rs`: the run history of a CronJob's group, read from its start and end pushes;
//! - `log_delivery.rs`: the last log lines of a failed run, as the sidecar delivers them;
//! - `push_pipeline.rs`: a client's push on its way in, every check in the order it runs;
//! - `clock.rs`: the store's time ([`Nanos`]) and its conversions, which every room uses.
//!
//! This room imports nothing else of the gateway, only the exposition formats, the protobuf
//! model, std and external crates: it knows nothing of HTTP, files or pages, so it is tested
//! without sockets, and every other room reaches it through the names below. Inside it the files
//! import one way: `clock` and `grouping` first, then `family`, `consistency`, `cronjob_series`
//! and `runs` (then `log_delivery`), `prepared_push`, `groups`, `limits`, and `push_pipeline` last.

// The grouping key is pure, and needed without the `roles` feature (the fuzz targets).
pub mod grouping;

#[cfg(feature = "roles")]
pub mod clock;
#[cfg(feature = "roles")]
pub mod consistency;
#[cfg(feature = "roles")]
pub mod cronjob_series;
#[cfg(feature = "roles")]
pub mod family;
#[cfg(feature = "roles")]
pub mod groups;
#[cfg(feature = "roles")]
pub mod limits;
#[cfg(feature = "roles")]
pub mod log_delivery;
#[cfg(feature = "roles")]
pub mod prepared_push;
#[cfg(feature = "roles")]
pub mod push_pipeline;
#[cfg(feature = "roles")]
pub mod runs;

pub use grouping::GroupingKey;

#[cfg(feature = "roles")]
pub use clock::Nanos;
#[cfg(feature = "roles")]
pub use family::{PUSH_FAILURE_TIME, PUSH_FAILURE_TIME_HELP, PUSH_TIME, PUSH_TIME_HELP, StoredFamily};
#[cfg(feature = "roles")]
pub use groups::{Group, LogsRefusal, Named, PushError, Store};
#[cfg(feature = "roles")]
pub use prepared_push::{PreparedPush, PushMethod, SeriesHasher};
