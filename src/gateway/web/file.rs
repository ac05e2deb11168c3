//! `--web.config.file`: HTTPS and basic auth in the format of the Prometheus exporter-toolkit
//! (`tls_server_config`, `http_server_config`, `basic_auth_users`), so that a file written for
//! the reference Pushgateway works unchanged.
//!
//! The file is read and checked once, before any port is bound: a file that cannot be honoured
//! is a start error, never a silent fallback to plain HTTP. As in the toolkit, unknown keys are
//! errors and relative paths are resolved against the file's directory. The serving
//! certificate is then kept fresh by [`ReloadingCert`]; the rest of the file is not reloaded.
//!
//! What rustls cannot do is refused by name: TLS 1.0 and 1.1, the CBC and RSA-key-exchange
//! cipher suites, the P-521 curve, and `client_allowed_sans`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};
use serde::Deserialize;

use crate::tls::{ReloadHandle, ReloadingCert, SwappableCert, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read the web config file {}: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid web config file {}: {reason}", .path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("web config file {}: {source}", .path.display())]
    Tls { path: PathBuf, source: TlsError },
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

impl WebConfig {
    /// Reads and checks the file, including that the certificate pair and the client CAs load.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| WebConfigError::Read { path: path.to_owned(), source })?;
        let invalid = |reason: String| WebConfigError::Invalid { path: path.to_owned(), reason };
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

/// The checks that need no certificate: the whole file but the files it names, except the
/// client CAs, which are read here.
pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, String> {
    let file: FileContents = if is_empty_document(text) {
        FileContents::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())?
    };
    let http = file.http_server_config.unwrap_or_default();
    let users = file.basic_auth_users.unwrap_or_default();
    for (user, hash) in &users {
        hash.parse::<bcrypt::HashParts>()
            .map_err(|e| format!("basic_auth_users: the password hash of {user:?} is not a bcrypt hash: {e}"))?;
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
fn tls_settings(file: TlsFile, dir: &Path) -> Result<Option<TlsSettings>, String> {
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
        return Err("tls_server_config needs both cert_file and key_file".to_owned());
    };
    if file.client_allowed_sans.is_some_and(|sans| !sans.is_empty()) {
        return Err("tls_server_config.client_allowed_sans is not supported by cronpush".to_owned());
    }
    let min = version(file.min_version.as_deref().unwrap_or("TLS12"), "min_version")?;
    let max = version(file.max_version.as_deref().unwrap_or("TLS13"), "max_version")?;
    if min > max {
        return Err("tls_server_config: min_version is above max_version".to_owned());
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
fn version(name: &str, key: &str) -> Result<u8, String> {
    match name {
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        "TLS10" | "TLS11" => {
            Err(format!("tls_server_config.{key}: {name} is not supported (rustls speaks only TLS12 and TLS13)"))
        }
        other => Err(format!("tls_server_config.{key}: unknown TLS version {other:?} (TLS12 or TLS13)")),
    }
}

fn client_auth(kind: &str, ca_file: Option<&Path>) -> Result<ClientAuth, String> {
    let roots = || -> Result<Arc<RootCertStore>, String> {
        let Some(ca_file) = ca_file else {
            return Err(format!("tls_server_config: client_auth_type {kind} needs client_ca_file"));
        };
        let bad = |reason: String| format!("tls_server_config.client_ca_file {}: {reason}", ca_file.display());
        let pem = std::fs::read(ca_file).map_err(|e| bad(e.to_string()))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(bad("no CERTIFICATE section".to_owned()));
        }
        Ok(Arc::new(roots))
    };
    let auth = match kind {
        "" | "NoClientCert" => ClientAuth::NoClientCert,
        "RequestClientCert" => ClientAuth::RequestClientCert,
        "RequireAnyClientCert" => ClientAuth::RequireAnyClientCert,
        "VerifyClientCertIfGiven" => return Ok(ClientAuth::VerifyClientCertIfGiven(roots()?)),
        "RequireAndVerifyClientCert" => return Ok(ClientAuth::RequireAndVerifyClientCert(roots()?)),
        other => return Err(format!("tls_server_config: invalid client_auth_type {other:?}")),
    };
    if ca_file.is_some() {
        // The toolkit's own check: CAs that nothing would use are a mistake in the file.
        return Err("tls_server_config: client_ca_file is set but client_auth_type does not verify client \
                    certificates"
            .to_owned());
    }
    Ok(auth)
}

/// Go's names are the IANA names rustls prints. TLS 1.3 names are taken and change nothing: Go
/// does not let them be configured either.
fn cipher_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, String> {
    let all = rustls::crypto::ring::ALL_CIPHER_SUITES;
    let name_of = |suite: &SupportedCipherSuite| format!("{:?}", suite.suite());
    let mut chosen: Vec<_> = all.iter().filter(|s| s.tls13().is_some()).copied().collect();
    for name in names {
        let name =
            name.strip_suffix("_CHACHA20_POLY1305").map_or(name.clone(), |n| format!("{n}_CHACHA20_POLY1305_SHA256"));
        let Some(suite) = all.iter().find(|s| name_of(s) == name) else {
            let offered: Vec<_> = all.iter().filter(|s| s.tls13().is_none()).map(name_of).collect();
            return Err(format!(
                "tls_server_config.cipher_suites: {name} is unknown or not supported by rustls (supported: {})",
                offered.join(", ")
            ));
        };
        if !chosen.iter().any(|s| s.suite() == suite.suite()) {
            chosen.push(*suite);
        }
    }
    Ok(chosen)
}

fn kx_groups(names: &[String]) -> Result<Vec<&'static dyn SupportedKxGroup>, String> {
    use rustls::crypto::ring::kx_group;
    names
        .iter()
        .map(|name| match name.as_str() {
            "X25519" => Ok(kx_group::X25519),
            "CurveP256" => Ok(kx_group::SECP256R1),
            "CurveP384" => Ok(kx_group::SECP384R1),
            "CurveP521" => Err("tls_server_config.curve_preferences: CurveP521 is not supported by rustls".to_owned()),
            other => Err(format!("tls_server_config.curve_preferences: unknown curve {other:?}")),
        })
        .collect()
}

fn headers(configured: BTreeMap<String, String>) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    configured
        .into_iter()
        .map(|(name, value)| {
            let Some((_, allowed)) = SETTABLE_HEADERS.iter().find(|(n, _)| *n == name) else {
                return Err(format!("http_server_config.headers: HTTP header {name:?} can not be configured"));
            };
            if let Some(allowed) = allowed.filter(|a| !a.iter().any(|a| a.eq_ignore_ascii_case(&value))) {
                return Err(format!(
                    "http_server_config.headers: invalid value for {name}: expected one of {allowed:?}, got {value:?}"
                ));
            }
            let value = HeaderValue::from_str(&value)
                .map_err(|_| format!("http_server_config.headers: bad value for {name}"))?;
            Ok((HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?, value))
        })
        .collect()
}

/// The server configuration for `settings`, serving what `certificates` resolves.
fn server_config(
    settings: &TlsSettings,
    http2: bool,
    certificates: Arc<dyn ResolvesServerCert>,
) -> Result<ServerConfig, String> {
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
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ClientCertVerifier> = match &settings.client_auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert => Arc::new(AnyClientCert { algorithms, mandatory: false }),
        ClientAuth::RequireAnyClientCert => Arc::new(AnyClientCert { algorithms, mandatory: true }),
        ClientAuth::VerifyClientCertIfGiven(roots) => {
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?
        }
        ClientAuth::RequireAndVerifyClientCert(roots) => {
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?
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
        .map_err(|reason| WebConfigError::Invalid { path: settings.cert_file.clone(), reason })?;
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

/// Wraps every route with the file's headers and, when it names users, basic auth.
pub fn protect(app: Router, config: &WebConfig) -> Router {
    if config.users.is_empty() && config.headers.is_empty() {
        return app;
    }
    let guard = Arc::new(Guard {
        users: config.users.clone(),
        headers: config.headers.clone(),
        verified: Mutex::new(HashSet::new()),
    });
    app.layer(axum::middleware::from_fn_with_state(guard, guard_request))
}

struct Guard {
    users: BTreeMap<String, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// SHA-256 of user, hash and password of the credentials bcrypt accepted: bcrypt costs tens
    /// of milliseconds (far more on a Pi), too much for every scrape. Bounded by clearing.
    verified: Mutex<HashSet<Vec<u8>>>,
}

/// Checked against when the user is unknown, so that the answer takes as long as for a known
/// user (the toolkit's constant).
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
const MAX_VERIFIED: usize = 100;

impl Guard {
    async fn allows(self: &Arc<Self>, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(basic_credentials) else { return false };
        let known = self.users.get(&user);
        let hash = known.map_or(DUMMY_HASH, String::as_str).to_owned();
        let key = cache_key(&user, &hash, &password);
        if known.is_some() && self.verified.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
            return true;
        }
        // bcrypt is slow on purpose: off the async threads.
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if matches && known.is_some() {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
            verified.insert(key);
        }
        matches && known.is_some()
    }
}

/// `Basic base64(user:password)`, as Go's `Request.BasicAuth` reads it.
fn basic_credentials(value: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let value = value.as_bytes();
    let encoded = value.get(..6).filter(|p| p.eq_ignore_ascii_case(b"Basic ")).map(|_| &value[6..])?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

fn cache_key(user: &str, hash: &str, password: &[u8]) -> Vec<u8> {
    let data = [user.as_bytes(), b":", hash.as_bytes(), b":", password].concat();
    // SHA-256 from the TLS provider already linked in, so the cache holds no password.
    match rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13() {
        Some(suite) => suite.common.hash_provider.hash(&data).as_ref().to_vec(),
        None => data,
    }
}

async fn guard_request(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let allowed = guard.users.is_empty() || guard.allows(request.headers().get(header::AUTHORIZATION)).await;
    let mut response = if allowed { next.run(request).await } else { unauthorized() };
    for (name, value) in &guard.headers {
        response.headers_mut().entry(name.clone()).or_insert_with(|| value.clone());
    }
    response
}

/// Go's `http.Error(w, "Unauthorized", 401)` after `WWW-Authenticate: Basic`.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Basic"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Body::from("Unauthorized\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<WebConfig, String> {
        parse(text, Path::new("/etc/cronpush"))
    }

    #[test]
    fn an_empty_file_is_plain_http_without_auth() {
        let config = parsed("# nothing\n").unwrap();
        assert!(config.tls.is_none() && config.users.is_empty() && config.http2);
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let error = parsed("tls_server_config:\n  cert_fle: a.crt\n").unwrap_err();
        assert!(error.contains("cert_fle"), "{error}");
        let error = parsed("basic_auth:\n  a: b\n").unwrap_err();
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
        assert!(tls("  min_version: TLS10\n").unwrap_err().contains("TLS10"));
        assert!(tls("  max_version: TLS11\n").unwrap_err().contains("TLS11"));
        assert!(tls("  curve_preferences: [CurveP521]\n").unwrap_err().contains("CurveP521"));
        let cbc = tls("  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n").unwrap_err();
        assert!(cbc.contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"), "{cbc}");
        assert!(tls("  client_auth_type: RequireAndVerifyClientCert\n").unwrap_err().contains("client_ca_file"));
        assert!(tls("  client_auth_type: Sometimes\n").unwrap_err().contains("Sometimes"));
        let only12 = tls("  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n");
        let only12 = only12.unwrap().tls.unwrap();
        assert_eq!(only12.versions.len(), 1);
        assert_eq!(only12.cipher_suites.unwrap().len(), 4);
        assert!(parsed("tls_server_config:\n  key_file: b\n").unwrap_err().contains("cert_file"));
    }

    #[test]
    fn password_hashes_must_be_bcrypt_and_headers_the_settable_ones() {
        assert!(parsed("basic_auth_users:\n  alice: plaintext\n").unwrap_err().contains("alice"));
        let error = parsed("http_server_config:\n  headers:\n    Server: x\n").unwrap_err();
        assert!(error.contains("Server"), "{error}");
        assert!(parsed("http_server_config:\n  headers:\n    X-Frame-Options: allow\n").is_err());
        let ok = parsed("http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: DENY\n").unwrap();
        assert!(!ok.http2 && ok.headers.len() == 1);
    }

    #[test]
    fn credentials_are_read_as_go_reads_them() {
        let header = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(basic_credentials(&header("basic YTpiOmM=")), Some(("a".to_owned(), b"b:c".to_vec())));
        assert_eq!(basic_credentials(&header("Bearer YTpi")), None);
        assert_eq!(basic_credentials(&header("Basic !!")), None);
    }

    #[tokio::test]
    async fn a_verified_password_is_remembered_and_a_wrong_one_is_not() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let guard = Arc::new(Guard {
            users: BTreeMap::from([("alice".to_owned(), hash)]),
            headers: Vec::new(),
            verified: Mutex::new(HashSet::new()),
        });
        let basic =
            |s: &str| HeaderValue::from_str(&format!("Basic {}", base64::prelude::BASE64_STANDARD.encode(s))).unwrap();
        assert!(guard.allows(Some(&basic("alice:secret"))).await);
        assert!(guard.allows(Some(&basic("alice:secret"))).await);
        assert_eq!(guard.verified.lock().unwrap().len(), 1);
        assert!(!guard.allows(Some(&basic("alice:wrong"))).await);
        assert!(!guard.allows(Some(&basic("bob:secret"))).await);
        assert!(!guard.allows(None).await);
    }
}
