//! Loading a certificate chain and its private key from PEM files into a rustls `CertifiedKey`,
//! refusing a pair whose key does not belong to the certificate.

use std::path::Path;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{TlsError, provider};

/// The bytes of a certificate file and a key file, read one after the other.
#[derive(PartialEq, Eq)]
pub(super) struct PairBytes {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// Loads `cert_path` (the serving certificate first, then any intermediates) and `key_path`.
pub fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    parse_pair(&read_pair(cert_path, key_path)?, cert_path, key_path)
}

pub(super) fn read_pair(cert_path: &Path, key_path: &Path) -> Result<PairBytes, TlsError> {
    let read = |path: &Path| std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source });
    Ok(PairBytes { cert: read(cert_path)?, key: read(key_path)? })
}

pub(super) fn parse_pair(pair: &PairBytes, cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = parse_chain(&pair.cert, cert_path)?;
    let key = PrivateKeyDer::from_pem_slice(&pair.key)
        .map_err(|e| TlsError::PrivateKey { path: key_path.to_owned(), reason: e.to_string() })?;
    certified_key(chain, key, &provider(), cert_path, key_path)
}

fn parse_chain(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::Certificate { path: path.to_owned(), reason };
    let chain = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
    if chain.is_empty() {
        return Err(bad("no CERTIFICATE section".to_owned()));
    }
    Ok(chain)
}

fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::PrivateKey { path: key_path.to_owned(), reason: e.to_string() })?;
    let certified = CertifiedKey::new(chain, signing_key);
    // Unlike `CertifiedKey::from_der`, an unknown answer is a refusal too: every ring key can say
    // its public key, and a pair that cannot be checked must not replace one that works.
    certified.keys_match().map_err(|e| TlsError::KeyMismatch {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(certified)
}
