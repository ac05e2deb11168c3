//! TLS for the servers: rustls with the ring provider, TLS 1.2 and 1.3 only, and a serving
//! certificate reloaded from disk when it changes, without a restart and without dropping the
//! connections already open.
//!
//! The webhook's certificate comes from a Secret volume. Kubernetes updates such a volume by
//! swapping a `..data` symlink, which watches on the files themselves miss
//! (kubernetes/ingress-nginx#6386, cilium/cilium#13621), so [`ReloadingCert`] watches the
//! directory and also polls, and a pair on disk that does not load never replaces a good one.

mod keypair;
mod reload;
mod resolver;

use std::path::PathBuf;
use std::sync::Arc;

pub use keypair::load_certified_key;
pub use reload::{Reload, ReloadHandle, ReloadOptions, ReloadingCert};
pub use resolver::SwappableCert;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("no usable PEM certificate in {}: {reason}", .path.display())]
    Certificate { path: PathBuf, reason: String },
    #[error("no usable PEM private key (PKCS#8, PKCS#1 or SEC1) in {}: {reason}", .path.display())]
    PrivateKey { path: PathBuf, reason: String },
    #[error(
        "the private key in {} does not belong to the certificate in {}: {reason}",
        .key.display(), .cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf, reason: String },
    #[error("cannot build the TLS configuration: {0}")]
    Config(rustls::Error),
    #[error("cannot start the certificate reloader: {0}")]
    Spawn(std::io::Error),
    #[error("the certificate reloader has stopped")]
    ReloaderStopped,
}

/// Makes ring the process-wide rustls provider. rustls refuses to guess when more than one
/// provider is compiled in, and clients built later (kube) take the process default. Safe to
/// call any number of times.
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is all this function promises.
    let _ = rustls::crypto::CryptoProvider::install_default(rustls::crypto::ring::default_provider());
}

/// The provider this module builds every configuration with, whatever the process default is.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration that asks `certificates` for the certificate of every handshake:
/// TLS 1.3 and 1.2 only, ALPN `h2` then `http/1.1` (without ALPN a client never gets HTTP/2).
pub fn server_config(
    certificates: Arc<dyn rustls::server::ResolvesServerCert>,
) -> Result<rustls::ServerConfig, TlsError> {
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(certificates);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
