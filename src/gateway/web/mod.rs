//! `--web.config.file`: HTTPS and basic auth in the format of the Prometheus exporter-toolkit
//! (`tls_server_config`, `http_server_config`, `basic_auth_users`), so that a file written for
//! the reference Pushgateway works unchanged.
//!
//! - `file.rs`: the file's layout and every check of it, into the settings below;
//! - `tls.rs`: the rustls server configuration for those settings, with certificate reload;
//! - `basic_auth.rs`: basic auth and the file's headers, as a layer around every route.
//!
//! The file is read and checked once, before any port is bound: a file that cannot be honoured
//! is a start error, never a silent fallback to plain HTTP. Loading it is here, at the room's
//! door, because it takes both the file's checks and a trial TLS configuration.
//!
//! This room uses axum for the basic-auth layer and the header types it adds, the only room but
//! http/ that does.

pub mod basic_auth;
pub mod file;
pub mod tls;

use std::path::Path;
use std::sync::Arc;

use self::file::parse;
use self::tls::server_config;
use crate::tls::SwappableCert;

pub use basic_auth::protect;
pub use file::{FileError, WebConfig, WebConfigError};
pub use tls::start_tls;

impl WebConfig {
    /// Reads and checks the file, including that the certificate pair and the client CAs load.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| WebConfigError::Read { path: path.to_owned(), source })?;
        let invalid = |reason| WebConfigError::Invalid { path: path.to_owned(), reason: Box::new(reason) };
        let dir = path.parent().unwrap_or(Path::new(""));
        let config = parse(&text, dir).map_err(invalid)?;
        if let Some(tls) = &config.tls {
            // Everything rustls would refuse is found now, with a throw-away resolver.
            let pair = crate::tls::load_certified_key(&tls.cert_file, &tls.key_file)
                .map_err(|source| WebConfigError::Tls { path: path.to_owned(), source })?;
            server_config(tls, config.http2, Arc::new(SwappableCert::new(pair))).map_err(invalid)?;
        }
        Ok(config)
    }
}
