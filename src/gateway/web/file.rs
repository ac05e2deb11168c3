//! The web configuration file and its checks: the toolkit's layout (`tls_server_config`,
//! `http_server_config`, `basic_auth_users`), read into the settings the TLS and basic-auth
//! layers serve with.
//!
//! As in the toolkit, unknown keys are errors and relative paths are resolved against the file's
//! directory. What rustls cannot do is refused by name: TLS 1.0 and 1.1, the CBC and
//! RSA-key-exchange cipher suites, the P-521 curve, and `client_allowed_sans`.
//!
//! The response headers a file sets are kept as axum's (the `http` crate's) header types, so that
//! the basic-auth layer adds them as they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use rustls::crypto::SupportedKxGroup;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::{RootCertStore, SupportedCipherSuite, SupportedProtocolVersion};
use serde::Deserialize;

use crate::tls::TlsError;

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read the web config file {}: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid web config file {}: {reason}", .path.display())]
    Invalid { path: PathBuf, reason: Box<FileError> },
    #[error("web config file {}: {source}", .path.display())]
    Tls { path: PathBuf, source: TlsError },
}

/// What is wrong in the file: each check's refusal, naming the key it is about.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Yaml(#[from] serde_saphyr::Error),
    #[error("basic_auth_users: the password hash of {user:?} is not a bcrypt hash: {why}")]
    PasswordHash { user: String, why: bcrypt::BcryptError },
    #[error("tls_server_config needs both cert_file and key_file")]
    CertOrKeyMissing,
    #[error("tls_server_config.client_allowed_sans is not supported by cronpush")]
    ClientAllowedSans,
    #[error("tls_server_config.{key}: {name} is not supported (rustls speaks only TLS12 and TLS13)")]
    OldVersion { key: &'static str, name: String },
    #[error("tls_server_config.{key}: unknown TLS version {name:?} (TLS12 or TLS13)")]
    UnknownVersion { key: &'static str, name: String },
    #[error("tls_server_config: min_version is above max_version")]
    VersionsReversed,
    #[error("tls_server_config: client_auth_type {kind} needs client_ca_file")]
    ClientCaMissing { kind: String },
    #[error("tls_server_config.client_ca_file {}: {why}", .path.display())]
    ClientCa { path: PathBuf, why: ClientCaError },
    #[error("tls_server_config: invalid client_auth_type {0:?}")]
    ClientAuthType(String),
    #[error("tls_server_config: client_ca_file is set but client_auth_type does not verify client certificates")]
    ClientCaUnused,
    #[error("tls_server_config.cipher_suites: {name} is unknown or not supported by rustls (supported: {})", .offered.join(", "))]
    CipherSuite { name: String, offered: Vec<String> },
    #[error("tls_server_config.curve_preferences: CurveP521 is not supported by rustls")]
    CurveP521,
    #[error("tls_server_config.curve_preferences: unknown curve {0:?}")]
    UnknownCurve(String),
    #[error("http_server_config.headers: HTTP header {0:?} can not be configured")]
    HeaderNotSettable(String),
    #[error("http_server_config.headers: invalid value for {name}: expected one of {allowed:?}, got {value:?}")]
    HeaderValueNotAllowed { name: String, allowed: &'static [&'static str], value: String },
    #[error("http_server_config.headers: bad value for {0}")]
    HeaderValue(String),
    #[error(transparent)]
    HeaderName(#[from] axum::http::header::InvalidHeaderName),
    /// rustls refuses the versions (found when the server configuration is built, tls.rs).
    #[error("tls_server_config: {0}")]
    Versions(rustls::Error),
    /// rustls refuses the client CAs (found when the server configuration is built, tls.rs).
    #[error("tls_server_config.client_ca_file: {0}")]
    ClientVerifier(rustls::server::VerifierBuilderError),
}

/// Why the client CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientCaError {
    #[error("{0}")]
    Read(std::io::Error),
    #[error("{0}")]
    Pem(rustls::pki_types::pem::Error),
    #[error("{0}")]
    Certificate(rustls::Error),
    #[error("no CERTIFICATE section")]
    Empty,
}

/// What the file says, checked.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `None`: plain HTTP.
    pub tls: Option<TlsSettings>,
    pub http2: bool,
    /// Added to every response that does not set them itself.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// User name → bcrypt hash. Empty: no authentication.
    pub users: BTreeMap<String, String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self { tls: None, http2: true, headers: Vec::new(), users: BTreeMap::new() }
    }
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_auth: ClientAuth,
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// The TLS 1.2 suites the file allows, in its order; TLS 1.3 suites are always offered, as
    /// in Go. `None`: the provider's defaults.
    pub cipher_suites: Option<Vec<SupportedCipherSuite>>,
    pub kx_groups: Option<Vec<&'static dyn SupportedKxGroup>>,
    pub prefer_server_cipher_suites: bool,
}

/// Go's `tls.ClientAuthType`, under the toolkit's names.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    NoClientCert,
    /// Asks for a certificate and takes the connection with or without one, unverified.
    RequestClientCert,
    /// Requires a certificate, any certificate: only the handshake signature is checked.
    RequireAnyClientCert,
    VerifyClientCertIfGiven(Arc<RootCertStore>),
    RequireAndVerifyClientCert(Arc<RootCertStore>),
}

// The file's layout, strict as the toolkit's `yaml.UnmarshalStrict`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileContents {
    tls_server_config: Option<TlsFile>,
    http_server_config: Option<HttpFile>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The headers the toolkit lets a file set, with the values it accepts (`None`: any).
const SETTABLE_HEADERS: &[(&str, Option<&[&str]>)] = &[
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

/// The checks that need no certificate: the whole file but the files it names, except the
/// client CAs, which are read here.
pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, FileError> {
    let file: FileContents =
        if is_empty_document(text) { FileContents::default() } else { serde_saphyr::from_str(text)? };
    let http = file.http_server_config.unwrap_or_default();
    let users = file.basic_auth_users.unwrap_or_default();
    for (user, hash) in &users {
        hash.parse::<bcrypt::HashParts>().map_err(|why| FileError::PasswordHash { user: user.clone(), why })?;
    }
    Ok(WebConfig {
        tls: file.tls_server_config.map(|tls| tls_settings(tls, dir)).transpose()?.flatten(),
        http2: http.http2.unwrap_or(true),
        headers: headers(http.headers.unwrap_or_default())?,
        users,
    })
}

fn is_empty_document(text: &str) -> bool {
    text.lines().map(str::trim).all(|l| l.is_empty() || l.starts_with('#') || l == "---")
}

/// `None` when the section names no file at all: the toolkit then serves plain HTTP.
fn tls_settings(file: TlsFile, dir: &Path) -> Result<Option<TlsSettings>, FileError> {
    let nonempty = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    if !nonempty(&file.cert_file)
        && !nonempty(&file.key_file)
        && !nonempty(&file.client_auth_type)
        && !nonempty(&file.client_ca_file)
    {
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (file.cert_file.filter(|s| !s.is_empty()), file.key_file.filter(|s| !s.is_empty()))
    else {
        return Err(FileError::CertOrKeyMissing);
    };
    if file.client_allowed_sans.is_some_and(|sans| !sans.is_empty()) {
        return Err(FileError::ClientAllowedSans);
    }
    let min = version(file.min_version.as_deref().unwrap_or("TLS12"), "min_version")?;
    let max = version(file.max_version.as_deref().unwrap_or("TLS13"), "max_version")?;
    if min > max {
        return Err(FileError::VersionsReversed);
    }
    let versions = [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
        .into_iter()
        .filter(|(v, _)| (min..=max).contains(v))
        .map(|(_, version)| version)
        .collect();
    let ca_file = file.client_ca_file.filter(|s| !s.is_empty()).map(|f| dir.join(f));
    Ok(Some(TlsSettings {
        cert_file: dir.join(cert),
        key_file: dir.join(key),
        client_auth: client_auth(file.client_auth_type.as_deref().unwrap_or(""), ca_file.as_deref())?,
        versions,
        cipher_suites: file.cipher_suites.map(|names| cipher_suites(&names)).transpose()?,
        kx_groups: file.curve_preferences.map(|names| kx_groups(&names)).transpose()?,
        prefer_server_cipher_suites: file.prefer_server_cipher_suites.unwrap_or(true),
    }))
}

/// 12 or 13, for TLS 1.2 or 1.3.
fn version(name: &str, key: &'static str) -> Result<u8, FileError> {
    match name {
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        "TLS10" | "TLS11" => Err(FileError::OldVersion { key, name: name.to_owned() }),
        other => Err(FileError::UnknownVersion { key, name: other.to_owned() }),
    }
}

fn client_auth(kind: &str, ca_file: Option<&Path>) -> Result<ClientAuth, FileError> {
    let roots = || -> Result<Arc<RootCertStore>, FileError> {
        let Some(ca_file) = ca_file else {
            return Err(FileError::ClientCaMissing { kind: kind.to_owned() });
        };
        let bad = |why: ClientCaError| FileError::ClientCa { path: ca_file.to_owned(), why };
        let pem = std::fs::read(ca_file).map_err(|e| bad(ClientCaError::Read(e)))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| bad(ClientCaError::Pem(e)))?;
            roots.add(cert).map_err(|e| bad(ClientCaError::Certificate(e)))?;
        }
        if roots.is_empty() {
            return Err(bad(ClientCaError::Empty));
        }
        Ok(Arc::new(roots))
    };
    let auth = match kind {
        "" | "NoClientCert" => ClientAuth::NoClientCert,
        "RequestClientCert" => ClientAuth::RequestClientCert,
        "RequireAnyClientCert" => ClientAuth::RequireAnyClientCert,
        "VerifyClientCertIfGiven" => return Ok(ClientAuth::VerifyClientCertIfGiven(roots()?)),
        "RequireAndVerifyClientCert" => return Ok(ClientAuth::RequireAndVerifyClientCert(roots()?)),
        other => return Err(FileError::ClientAuthType(other.to_owned())),
    };
    if ca_file.is_some() {
        // The toolkit's own check: CAs that nothing would use are a mistake in the file.
        return Err(FileError::ClientCaUnused);
    }
    Ok(auth)
}

/// Go's names are the IANA names rustls prints. TLS 1.3 names are taken and change nothing: Go
/// does not let them be configured either.
fn cipher_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, FileError> {
    let all = rustls::crypto::ring::ALL_CIPHER_SUITES;
    let name_of = |suite: &SupportedCipherSuite| format!("{:?}", suite.suite());
    let mut chosen: Vec<_> = all.iter().filter(|s| s.tls13().is_some()).copied().collect();
    for name in names {
        let name =
            name.strip_suffix("_CHACHA20_POLY1305").map_or(name.clone(), |n| format!("{n}_CHACHA20_POLY1305_SHA256"));
        let Some(suite) = all.iter().find(|s| name_of(s) == name) else {
            let offered: Vec<_> = all.iter().filter(|s| s.tls13().is_none()).map(name_of).collect();
            return Err(FileError::CipherSuite { name, offered });
        };
        if !chosen.iter().any(|s| s.suite() == suite.suite()) {
            chosen.push(*suite);
        }
    }
    Ok(chosen)
}

fn kx_groups(names: &[String]) -> Result<Vec<&'static dyn SupportedKxGroup>, FileError> {
    use rustls::crypto::ring::kx_group;
    names
        .iter()
        .map(|name| match name.as_str() {
            "X25519" => Ok(kx_group::X25519),
            "CurveP256" => Ok(kx_group::SECP256R1),
            "CurveP384" => Ok(kx_group::SECP384R1),
            "CurveP521" => Err(FileError::CurveP521),
            other => Err(FileError::UnknownCurve(other.to_owned())),
        })
        .collect()
}

fn headers(configured: BTreeMap<String, String>) -> Result<Vec<(HeaderName, HeaderValue)>, FileError> {
    configured
        .into_iter()
        .map(|(name, value)| {
            let Some((_, allowed)) = SETTABLE_HEADERS.iter().find(|(n, _)| *n == name) else {
                return Err(FileError::HeaderNotSettable(name));
            };
            if let Some(allowed) = allowed.filter(|a| !a.iter().any(|a| a.eq_ignore_ascii_case(&value))) {
                return Err(FileError::HeaderValueNotAllowed { name, allowed, value });
            }
            let Ok(value) = HeaderValue::from_str(&value) else {
                return Err(FileError::HeaderValue(name));
            };
            Ok((HeaderName::from_bytes(name.as_bytes())?, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<WebConfig, FileError> {
        parse(text, Path::new("/etc/cronpush"))
    }

    #[test]
    fn an_empty_file_is_plain_http_without_auth() {
        let config = parsed("# nothing\n").unwrap();
        assert!(config.tls.is_none() && config.users.is_empty() && config.http2);
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let error = parsed("tls_server_config:\n  cert_fle: a.crt\n").unwrap_err().to_string();
        assert!(error.contains("cert_fle"), "{error}");
        let error = parsed("basic_auth:\n  a: b\n").unwrap_err().to_string();
        assert!(error.contains("basic_auth"), "{error}");
    }

    #[test]
    fn relative_paths_are_resolved_against_the_file_directory() {
        let config = parsed("tls_server_config:\n  cert_file: a.crt\n  key_file: /abs/a.key\n").unwrap();
        let tls = config.tls.unwrap();
        assert_eq!(tls.cert_file, Path::new("/etc/cronpush/a.crt"));
        assert_eq!(tls.key_file, Path::new("/abs/a.key"));
        assert_eq!(tls.versions.len(), 2);
    }

    #[test]
    fn what_rustls_cannot_do_is_refused_by_name() {
        let tls = |extra: &str| parsed(&format!("tls_server_config:\n  cert_file: a\n  key_file: b\n{extra}"));
        assert!(tls("  min_version: TLS10\n").unwrap_err().to_string().contains("TLS10"));
        assert!(tls("  max_version: TLS11\n").unwrap_err().to_string().contains("TLS11"));
        assert!(tls("  curve_preferences: [CurveP521]\n").unwrap_err().to_string().contains("CurveP521"));
        let cbc = tls("  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n").unwrap_err().to_string();
        assert!(cbc.contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"), "{cbc}");
        assert!(
            tls("  client_auth_type: RequireAndVerifyClientCert\n").unwrap_err().to_string().contains("client_ca_file")
        );
        assert!(tls("  client_auth_type: Sometimes\n").unwrap_err().to_string().contains("Sometimes"));
        let only12 = tls("  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n");
        let only12 = only12.unwrap().tls.unwrap();
        assert_eq!(only12.versions.len(), 1);
        assert_eq!(only12.cipher_suites.unwrap().len(), 4);
        assert!(parsed("tls_server_config:\n  key_file: b\n").unwrap_err().to_string().contains("cert_file"));
    }

    #[test]
    fn password_hashes_must_be_bcrypt_and_headers_the_settable_ones() {
        assert!(parsed("basic_auth_users:\n  alice: plaintext\n").unwrap_err().to_string().contains("alice"));
        let error = parsed("http_server_config:\n  headers:\n    Server: x\n").unwrap_err().to_string();
        assert!(error.contains("Server"), "{error}");
        assert!(parsed("http_server_config:\n  headers:\n    X-Frame-Options: allow\n").is_err());
        let ok = parsed("http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: DENY\n").unwrap();
        assert!(!ok.http2 && ok.headers.len() == 1);
    }
}
