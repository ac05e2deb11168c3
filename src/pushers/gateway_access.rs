//! What the pushers need beyond a URL to reach a gateway that runs with `--web.config.file`: the
//! CA that signed its certificate (a Pi's gateway has one from a private CA, which no public root
//! vouches for) and basic-auth credentials that need not sit in the URL, where the webhook would
//! write them into every injected Pod's spec in clear.
//!
//! The webhook hands the CA over as PEM text in [`env::GATEWAY_CA`] (a CA certificate is public),
//! and the credentials through [`env::GATEWAY_USERNAME`] and [`env::GATEWAY_PASSWORD`] taken from a
//! Secret by the kubelet (`secretKeyRef`), so that the Pod spec names the Secret, not the password.
//!
//! In the webhook's relay push mode the pushers hold no gateway secret at all: they push to the
//! relay, trusting its CA, and present their Pod's projected token ([`env::GATEWAY_TOKEN_FILE`]),
//! read again for every request since the kubelet rotates it.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::contract::env;

/// The pushers' flags for reaching the gateway; each falls back to its variable.
#[derive(Args, Debug, Clone, Default)]
pub struct GatewayAccessArgs {
    /// The CA bundle (PEM text, not a path) that signed the gateway's certificate, trusted
    /// beside the public roots.
    #[arg(long, env = env::GATEWAY_CA, hide_env_values = true)]
    pub gateway_ca: Option<String>,
    /// The same as a file, for a pusher run by hand.
    #[arg(long)]
    pub gateway_ca_file: Option<PathBuf>,
    /// Basic auth for the gateway, instead of credentials in the URL.
    #[arg(long, env = env::GATEWAY_USERNAME)]
    pub gateway_username: Option<String>,
    #[arg(long, env = env::GATEWAY_PASSWORD, hide_env_values = true)]
    pub gateway_password: Option<String>,
    /// A file holding a bearer token sent with every push, read again for each (a projected
    /// service-account token is rotated by the kubelet): the relay's push mode.
    #[arg(long, env = env::GATEWAY_TOKEN_FILE)]
    pub gateway_token_file: Option<PathBuf>,
}

/// The access, read and checked.
#[derive(Clone, Default)]
pub struct GatewayAccess {
    /// The extra roots, DER.
    pub roots: Vec<Vec<u8>>,
    /// Username and password, when given.
    pub credentials: Option<(String, String)>,
    /// Where the bearer token sent with every push is, when one is.
    pub token_file: Option<PathBuf>,
}

impl std::fmt::Debug for GatewayAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, not even in a debug line.
        f.debug_struct("GatewayAccess")
            .field("roots", &self.roots.len())
            .field("username", &self.credentials.as_ref().map(|(user, _)| user))
            .field("token_file", &self.token_file)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayAccessError {
    #[error("cannot read the gateway's CA file {path}: {source}")]
    ReadFile { path: PathBuf, source: std::io::Error },
    #[error("the gateway's CA ({what}) holds no PEM certificate")]
    NoCertificate { what: String },
    #[error("the gateway's CA ({what}) is not PEM: {why}")]
    NotPem { what: String, why: String },
    #[error("{} is set without {}: give both or neither", .0, .1)]
    HalfCredentials(&'static str, &'static str),
    #[error("both basic-auth credentials and {} are given: a push carries one Authorization", env::GATEWAY_TOKEN_FILE)]
    TwoAuthorizations,
}

impl GatewayAccessArgs {
    pub fn resolve(&self) -> Result<GatewayAccess, GatewayAccessError> {
        let mut roots = Vec::new();
        if let Some(pem) = self.gateway_ca.as_deref().filter(|pem| !pem.trim().is_empty()) {
            roots.extend(certificates(pem.as_bytes(), env::GATEWAY_CA)?);
        }
        if let Some(path) = &self.gateway_ca_file {
            roots.extend(read_ca_file(path)?.1);
        }
        let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let credentials = match (given(&self.gateway_username), given(&self.gateway_password)) {
            (Some(user), Some(password)) => Some((user, password)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(GatewayAccessError::HalfCredentials(env::GATEWAY_USERNAME, env::GATEWAY_PASSWORD));
            }
            (None, Some(_)) => {
                return Err(GatewayAccessError::HalfCredentials(env::GATEWAY_PASSWORD, env::GATEWAY_USERNAME));
            }
        };
        let token_file = self.gateway_token_file.clone().filter(|path| !path.as_os_str().is_empty());
        if credentials.is_some() && token_file.is_some() {
            return Err(GatewayAccessError::TwoAuthorizations);
        }
        Ok(GatewayAccess { roots, credentials, token_file })
    }
}

impl GatewayAccess {
    /// An HTTP client builder that trusts the public roots and the access's CA, and names
    /// cronpush as its user agent; the credentials are the caller's to add.
    pub fn client_builder(&self) -> Result<reqwest::ClientBuilder, reqwest::Error> {
        crate::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder().user_agent(concat!("cronpush/", env!("CARGO_PKG_VERSION")));
        for der in &self.roots {
            builder = builder.add_root_certificate(reqwest::Certificate::from_der(der)?);
        }
        Ok(builder)
    }
}

/// A CA file, read once: its PEM text (handed on as it is) and its certificates (DER), checked.
pub fn read_ca_file(path: &Path) -> Result<(String, Vec<Vec<u8>>), GatewayAccessError> {
    let read_failed = |source| GatewayAccessError::ReadFile { path: path.to_path_buf(), source };
    let pem = std::fs::read(path).map_err(read_failed)?;
    let roots = certificates(&pem, &path.display().to_string())?;
    let text =
        String::from_utf8(pem).map_err(|e| read_failed(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    Ok((text, roots))
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<Vec<u8>>, GatewayAccessError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certificates: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| GatewayAccessError::NotPem { what: what.to_string(), why: e.to_string() })?;
    if certificates.is_empty() {
        return Err(GatewayAccessError::NoCertificate { what: what.to_string() });
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(Vec::<String>::new()).unwrap().self_signed(&key).unwrap().pem()
    }

    #[test]
    fn reads_the_ca_and_the_credentials() {
        let args = GatewayAccessArgs {
            gateway_ca: Some(format!("{}{}", ca_pem(), ca_pem())),
            gateway_username: Some("pi".into()),
            gateway_password: Some("secret".into()),
            ..Default::default()
        };
        let access = args.resolve().unwrap();
        assert_eq!(access.roots.len(), 2);
        assert_eq!(access.credentials, Some(("pi".into(), "secret".into())));
        assert!(!format!("{access:?}").contains("secret"), "{access:?}");
    }

    #[test]
    fn refuses_what_cannot_be_used() {
        let half = GatewayAccessArgs { gateway_username: Some("pi".into()), ..Default::default() };
        assert!(matches!(half.resolve(), Err(GatewayAccessError::HalfCredentials(..))));
        let not_pem = GatewayAccessArgs { gateway_ca: Some("not a certificate".into()), ..Default::default() };
        assert!(matches!(not_pem.resolve(), Err(GatewayAccessError::NoCertificate { .. })), "{:?}", not_pem.resolve());
        let missing = GatewayAccessArgs { gateway_ca_file: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        assert!(matches!(missing.resolve(), Err(GatewayAccessError::ReadFile { .. })));
        assert!(GatewayAccessArgs::default().resolve().unwrap().roots.is_empty());
        let both = GatewayAccessArgs {
            gateway_username: Some("pi".into()),
            gateway_password: Some("secret".into()),
            gateway_token_file: Some("/var/run/token".into()),
            ..Default::default()
        };
        assert!(matches!(both.resolve(), Err(GatewayAccessError::TwoAuthorizations)));
    }
}
