//! The views: everything the gateway shows of the store, each a pure function of the store (and
//! the configuration) to a body, so that it is tested without sockets.
//!
//! - `scrape.rs`: `GET /metrics`, text 0.0.4 or delimited protobuf, with the push-time series;
//! - `api.rs`: the JSON API under `/api/v1/`, in the reference's shapes;
//! - `ui.rs`: the web pages (groups, CronJob board, status) and their embedded assets;
//! - `board.rs`: the CronJob board, a status per CronJob read from its series;
//! - `runs.rs`: a CronJob's run history as JSON;
//! - `own_metrics.rs`: the gateway's own metrics, exposed beside the pushed ones.
//!
//! A view only reads: it imports the store and the configuration, never the HTTP edge (which
//! calls it) or the store file. Which request reaches which view is http/'s business.

pub mod api;
pub mod board;
pub mod own_metrics;
pub mod runs;
pub mod scrape;
pub mod ui;
