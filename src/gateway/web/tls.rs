//! Serving HTTPS as the file says: the rustls server configuration (versions, cipher suites,
//! curves, client certificates as Go's `tls.ClientAuthType` asks for them, ALPN), serving the
//! certificate pair that [`ReloadingCert`] keeps fresh; the rest of the file is not reloaded.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

use super::file::{ClientAuth, FileError, TlsSettings, WebConfig, WebConfigError};
use crate::tls::{ReloadHandle, ReloadingCert};

/// The server configuration for `settings`, serving what `certificates` resolves.
pub(super) fn server_config(
    settings: &TlsSettings,
    http2: bool,
    certificates: Arc<dyn ResolvesServerCert>,
) -> Result<ServerConfig, FileError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(suites) = &settings.cipher_suites {
        provider.cipher_suites.clone_from(suites);
    }
    if let Some(groups) = &settings.kx_groups {
        provider.kx_groups.clone_from(groups);
    }
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&settings.versions)
        .map_err(FileError::Versions)?;
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ClientCertVerifier> = match &settings.client_auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert => Arc::new(AnyClientCert { algorithms, mandatory: false }),
        ClientAuth::RequireAnyClientCert => Arc::new(AnyClientCert { algorithms, mandatory: true }),
        ClientAuth::VerifyClientCertIfGiven(roots) => {
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(FileError::ClientVerifier)?
        }
        ClientAuth::RequireAndVerifyClientCert(roots) => {
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(FileError::ClientVerifier)?
        }
    };
    let mut config = builder.with_client_cert_verifier(verifier).with_cert_resolver(certificates);
    config.alpn_protocols = if http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    config.ignore_client_order = settings.prefer_server_cipher_suites;
    Ok(config)
}

/// Starts reloading the certificate pair and returns the configuration to serve with; the
/// handle must live as long as the server.
pub fn start_tls(config: &WebConfig) -> Result<Option<(Arc<ServerConfig>, ReloadHandle)>, WebConfigError> {
    let Some(settings) = &config.tls else { return Ok(None) };
    let tls_error = |source| WebConfigError::Tls { path: settings.cert_file.clone(), source };
    let (reloading, handle) = ReloadingCert::spawn(&settings.cert_file, &settings.key_file).map_err(tls_error)?;
    let served = server_config(settings, config.http2, reloading.cert_resolver.clone())
        .map_err(|reason| WebConfigError::Invalid { path: settings.cert_file.clone(), reason: Box::new(reason) })?;
    Ok(Some((Arc::new(served), handle)))
}

/// Go's `tls.RequestClientCert` and `tls.RequireAnyClientCert`: the chain is not verified, but
/// the client must prove it holds the key of the certificate it sent.
#[derive(Debug)]
struct AnyClientCert {
    algorithms: WebPkiSupportedAlgorithms,
    mandatory: bool,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
