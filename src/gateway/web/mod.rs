//! `--web.config.file`: the exporter-toolkit web configuration (HTTPS and basic auth), so that a
//! file written for the reference Pushgateway works unchanged.

pub mod file;

pub use file::{WebConfig, WebConfigError, protect, start_tls};
