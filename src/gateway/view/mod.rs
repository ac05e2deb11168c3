//! The views: everything the gateway shows of the store, each a pure function of the store (and
//! the configuration) to a body, so that it is tested without sockets.
//!
//! - `scrape.rs`: `GET /metrics`, text 0.0.4 or delimited protobuf, with the push-time series;
//! - `api.rs`: the JSON API under `/api/v1/`, in the reference's shapes (a native histogram's
//!   buckets as `native_histogram.rs` lists them);
//! - `ui.rs`: the web pages (groups, CronJob board, status) and their embedded assets;
//! - `board.rs`: the CronJob board, a status per CronJob read from its series;
//! - `runs.rs`: a CronJob's run history as JSON;
//! - `cronjob_page.rs`: a CronJob's page, its runs as a table and a chart
//!   (`duration_chart.rs`), each run's outcome as `run_view.rs` words it;
//! - `selection.rs`: the filters and pages of the board, the groups page and their APIs;
//! - `own_metrics.rs`: the gateway's own metrics, exposed beside the pushed ones.
//!
//! A view only reads: it imports the store and the configuration, never the HTTP edge (which
//! calls it) or the store file. Which request reaches which view is http/'s business.

pub mod api;
pub mod board;
pub mod cronjob_page;
pub mod duration_chart;
pub mod native_histogram;
pub mod own_metrics;
pub mod run_view;
pub mod runs;
pub mod scrape;
pub mod selection;
pub mod ui;
