//! `cronpush certs`: the webhook's CA and serving certificate.
//!
//! kube-apiserver calls the webhook over TLS and trusts only the `caBundle` of the webhook
//! configuration, so the webhook needs a serving certificate for its Service's DNS names and
//! the CA that signed it. The CA lives ten years and the serving certificate one: `--renew`
//! re-issues the serving certificate from the kept CA (`ca.key`), so a yearly renewal touches
//! only the Secret, which the webhook reloads without a restart, and never the `caBundle`.
//! A stale `caBundle` with `failurePolicy: Ignore` silently stops injection (flyte#2871,
//! linkerd2#5888); a kept CA is what makes renewal a one-step operation.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// File names inside `--out`; `tls.crt`/`tls.key`/`ca.crt` are the keys of a
/// `kubernetes.io/tls` Secret, so the directory can become one as it is.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const SERVING_CERT: &str = "tls.crt";
pub const SERVING_KEY: &str = "tls.key";

const CA_COMMON_NAME: &str = "cronpush webhook CA";
const CA_VALIDITY: Duration = Duration::from_secs(3650 * 24 * 3600);
const SERVING_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates start an hour in the past: a control plane whose clock lags the machine that
/// ran `cronpush certs` would otherwise reject a certificate that is "not yet valid".
const CLOCK_SKEW: Duration = Duration::from_secs(3600);

const PRIVATE: u32 = 0o600;
const PUBLIC: u32 = 0o644;

#[derive(clap::Args, Debug, Clone)]
pub struct CertsArgs {
    /// Name of the webhook's Service.
    #[arg(long, env = "CRONPUSH_SERVICE", default_value = "cronpush-webhook")]
    pub service: String,
    /// Namespace of the webhook's Service.
    #[arg(long, env = "CRONPUSH_NAMESPACE", default_value = "cronpush")]
    pub namespace: String,
    /// Directory to write ca.crt, ca.key, tls.crt and tls.key into (created if missing).
    /// ca.key stays here: it is for --renew, never for the webhook's Secret.
    #[arg(long, env = "CRONPUSH_CERTS_OUT", default_value = "certs")]
    pub out: PathBuf,
    /// Replace existing files with a new CA and serving certificate. The caBundle changes:
    /// update the webhook configuration with the one printed.
    #[arg(long, conflicts_with = "renew")]
    pub force: bool,
    /// Re-issue only tls.crt and tls.key from the ca.crt and ca.key already in --out. The
    /// caBundle stays the same, so only the Secret needs updating.
    #[arg(long)]
    pub renew: bool,
    /// A further name the serving certificate is valid for, a DNS name or an IP address
    /// (repeatable): for a webhook or relay reached by another name, such as an address outside
    /// the cluster while developing.
    #[arg(long = "extra-name", value_name = "NAME")]
    pub extra_names: Vec<String>,
}

/// What `run` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The CA certificate, PEM, base64-encoded: the webhook configuration's `caBundle`.
    pub ca_bundle: String,
    /// Every file written, in the order written.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("invalid {flag} {value:?}: {rule}")]
    InvalidName { flag: &'static str, value: String, rule: &'static str },
    #[error(
        "refusing to overwrite {}: pass --force to make a new CA and serving certificate (then update \
         the caBundle), or --renew to re-issue the serving certificate from the existing CA",
        display_paths(.paths)
    )]
    WouldOverwrite { paths: Vec<PathBuf> },
    #[error("cannot create the directory {}: {source}", .path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {} (--renew needs the CA that a previous `cronpush certs` wrote): {source}", .path.display())]
    ReadCa { path: PathBuf, source: io::Error },
    #[error("cannot use the CA key {}: {source}", .path.display())]
    CaKey { path: PathBuf, source: rcgen::Error },
    #[error(
        "{} and {} do not make a CA that the new serving certificate verifies against ({reason}); \
         were they written by `cronpush certs`? Pass --force to make a new CA",
        .cert.display(), .key.display()
    )]
    CaMismatch { cert: PathBuf, key: PathBuf, reason: String },
    #[error("cannot generate the certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the freshly issued serving certificate does not verify for {name}: {reason}")]
    SelfCheck { name: String, reason: String },
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Writes the CA (unless renewing) and a serving certificate for the Service into `args.out`.
pub fn run(args: &CertsArgs) -> Result<Written, CertsError> {
    check_service_name(&args.service)?;
    check_namespace(&args.namespace)?;
    let mut names = service_dns_names(&args.service, &args.namespace);
    for name in &args.extra_names {
        check_extra_name(name)?;
        names.push(name.clone());
    }
    let subject = Subject { common_name: format!("{}.{}.svc", args.service, args.namespace), names };
    if args.renew { renew(args, &subject) } else { issue_new(args, &subject) }
}

/// Who the serving certificate is for.
struct Subject {
    common_name: String,
    names: Vec<String>,
}

/// The names kube-apiserver may use for `<service>.<namespace>`: it dials
/// `<service>.<namespace>.svc`, and the others serve in-cluster clients such as the relay.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Kubernetes names a Service with an RFC 1035 label: an RFC 1123 label that starts with a letter.
fn check_service_name(service: &str) -> Result<(), CertsError> {
    let starts_with_letter = service.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if is_dns_label(service) && starts_with_letter {
        return Ok(());
    }
    Err(CertsError::InvalidName {
        flag: "--service",
        value: service.to_owned(),
        rule: "a Service name must be a DNS-1035 label: at most 63 lower case alphanumeric characters or \
               '-', starting with a letter and ending with a letter or digit (e.g. 'cronpush-webhook')",
    })
}

fn check_namespace(namespace: &str) -> Result<(), CertsError> {
    if is_dns_label(namespace) {
        return Ok(());
    }
    Err(CertsError::InvalidName {
        flag: "--namespace",
        value: namespace.to_owned(),
        rule: "a namespace must be a DNS-1123 label: at most 63 lower case alphanumeric characters or '-', \
               starting and ending with a letter or digit (e.g. 'cronpush')",
    })
}

/// An IP address, or a DNS name made of DNS-1123 labels (a leading `*.` wildcard allowed).
fn check_extra_name(name: &str) -> Result<(), CertsError> {
    let dns = name.len() <= 253 && name.strip_prefix("*.").unwrap_or(name).split('.').all(is_dns_label);
    if name.parse::<std::net::IpAddr>().is_ok() || dns {
        return Ok(());
    }
    Err(CertsError::InvalidName {
        flag: "--extra-name",
        value: name.to_owned(),
        rule: "a further name must be an IP address or a DNS name of lower case labels (e.g. 'webhook.example.com')",
    })
}

fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let alphanumeric = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (1..=63).contains(&bytes.len())
        && bytes.iter().all(allowed)
        && alphanumeric(bytes.first())
        && alphanumeric(bytes.last())
}

fn issue_new(args: &CertsArgs, subject: &Subject) -> Result<Written, CertsError> {
    let files = [CA_CERT, CA_KEY, SERVING_CERT, SERVING_KEY].map(|name| args.out.join(name));
    if !args.force {
        refuse_overwrite(&files)?;
    }
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params(CA_VALIDITY).self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params(CA_VALIDITY), ca_key);
    let (serving_pem, serving_key) = issue_serving(&issuer, subject)?;
    self_check(ca_pem.as_bytes(), serving_pem.as_bytes(), &subject.names)
        .map_err(|(name, reason)| CertsError::SelfCheck { name, reason })?;
    let ca_key_pem = issuer.key().serialize_pem();
    create_out_dir(&args.out)?;
    let [ca_cert_path, ca_key_path, serving_cert_path, serving_key_path] = files;
    write_all(&[
        (ca_key_path, ca_key_pem.as_bytes(), PRIVATE),
        (ca_cert_path, ca_pem.as_bytes(), PUBLIC),
        (serving_key_path, serving_key.as_bytes(), PRIVATE),
        (serving_cert_path, serving_pem.as_bytes(), PUBLIC),
    ])?;
    Ok(Written { ca_bundle: STANDARD.encode(&ca_pem), files: files_written(&args.out, true) })
}

fn renew(args: &CertsArgs, subject: &Subject) -> Result<Written, CertsError> {
    let ca_cert_path = args.out.join(CA_CERT);
    let ca_key_path = args.out.join(CA_KEY);
    let ca_pem = read_ca_file(&ca_cert_path)?;
    let ca_key_pem = String::from_utf8_lossy(&read_ca_file(&ca_key_path)?).into_owned();
    let ca_key =
        KeyPair::from_pem(&ca_key_pem).map_err(|source| CertsError::CaKey { path: ca_key_path.clone(), source })?;
    // rcgen cannot parse a certificate without x509-parser: the issuer is rebuilt from the same
    // parameters that made the CA, and the self-check below proves it matches ca.crt.
    let issuer = Issuer::new(ca_params(CA_VALIDITY), ca_key);
    let (serving_pem, serving_key) = issue_serving(&issuer, subject)?;
    self_check(&ca_pem, serving_pem.as_bytes(), &subject.names).map_err(|(_, reason)| CertsError::CaMismatch {
        cert: ca_cert_path.clone(),
        key: ca_key_path.clone(),
        reason,
    })?;
    write_all(&[
        (args.out.join(SERVING_KEY), serving_key.as_bytes(), PRIVATE),
        (args.out.join(SERVING_CERT), serving_pem.as_bytes(), PUBLIC),
    ])?;
    Ok(Written { ca_bundle: STANDARD.encode(&ca_pem), files: files_written(&args.out, false) })
}

fn files_written(out: &Path, with_ca: bool) -> Vec<PathBuf> {
    let ca = [CA_KEY, CA_CERT].into_iter().filter(|_| with_ca);
    ca.chain([SERVING_KEY, SERVING_CERT]).map(|name| out.join(name)).collect()
}

fn read_ca_file(path: &Path) -> Result<Vec<u8>, CertsError> {
    fs::read(path).map_err(|source| CertsError::ReadCa { path: path.to_owned(), source })
}

fn ca_params(validity: Duration) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(CA_COMMON_NAME);
    // Path length 0: this CA signs serving certificates, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, validity);
    params
}

/// Returns the serving certificate and its freshly generated key, both PEM.
fn issue_serving(issuer: &Issuer<'_, KeyPair>, subject: &Subject) -> Result<(String, String), CertsError> {
    // Clients check the subjectAltName names; the common name is for people reading the certificate.
    let mut params = CertificateParams::new(subject.names.clone())?;
    params.distinguished_name = common_name(&subject.common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, SERVING_VALIDITY);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    // rcgen takes `time` values; the epoch from rcgen plus a std Duration avoids naming the crate.
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let start = now.saturating_sub(CLOCK_SKEW);
    params.not_before = epoch + start;
    params.not_after = epoch + start + validity;
}

/// Proves that the serving certificate chains to the CA for every name, as a TLS client would
/// check it; returns the first name that fails and why.
fn self_check(ca_pem: &[u8], serving_pem: &[u8], names: &[String]) -> Result<(), (String, String)> {
    let failure = |name: &str, reason: String| (name.to_owned(), reason);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| failure("the CA", e.to_string()))?;
        roots.add(cert).map_err(|e| failure("the CA", e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| failure("the CA", e.to_string()))?;
    let leaf = CertificateDer::from_pem_slice(serving_pem).map_err(|e| failure("tls.crt", e.to_string()))?;
    for name in names {
        let server_name = ServerName::try_from(name.as_str()).map_err(|e| failure(name, e.to_string()))?;
        verifier
            .verify_server_cert(&leaf, &[], &server_name, &[], UnixTime::now())
            .map_err(|e| failure(name, e.to_string()))?;
    }
    Ok(())
}

fn refuse_overwrite(files: &[PathBuf]) -> Result<(), CertsError> {
    let existing: Vec<PathBuf> = files.iter().filter(|p| p.symlink_metadata().is_ok()).cloned().collect();
    if existing.is_empty() { Ok(()) } else { Err(CertsError::WouldOverwrite { paths: existing }) }
}

fn create_out_dir(dir: &Path) -> Result<(), CertsError> {
    // Only the owner may list a directory that holds private keys.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| CertsError::CreateDir { path: dir.to_owned(), source })
}

/// Stages every file next to its destination, then renames them into place: a reader never sees
/// a half-written key, and a failure while staging leaves the directory as it was.
fn write_all(files: &[(PathBuf, &[u8], u32)]) -> Result<(), CertsError> {
    let mut staged = Vec::with_capacity(files.len());
    for (path, contents, mode) in files {
        match stage(path, contents, *mode) {
            Ok(temp) => staged.push((temp, path)),
            Err(source) => {
                staged.iter().for_each(|(temp, _)| remove_quietly(temp));
                return Err(CertsError::Write { path: path.clone(), source });
            }
        }
    }
    for (i, (temp, path)) in staged.iter().enumerate() {
        if let Err(source) = fs::rename(temp, path) {
            staged[i..].iter().for_each(|(temp, _)| remove_quietly(temp));
            return Err(CertsError::Write { path: (*path).clone(), source });
        }
    }
    if let Some(dir) = files.first().and_then(|(path, _, _)| path.parent()) {
        // The renames are durable only once the directory is synced; a failure here loses nothing
        // that is not already on disk, so it is not worth failing the command for.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

fn stage(path: &Path, contents: &[u8], mode: u32) -> io::Result<PathBuf> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    remove_quietly(&temp);
    // The mode is set when the file is created, so a key is never readable by others, not even
    // for the moment between create and chmod.
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&temp)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(e) = written {
        remove_quietly(&temp);
        return Err(e);
    }
    Ok(temp)
}

fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for good in ["a", "x", "cronpush", "a-b", "a1", "1a", &"a".repeat(63)] {
            assert!(is_dns_label(good), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "é", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }

    #[test]
    fn service_must_start_with_a_letter() {
        assert!(check_service_name("webhook").is_ok());
        assert!(check_service_name("1webhook").is_err());
        assert!(check_namespace("1ns").is_ok());
    }

    #[test]
    fn every_name_verifies_and_others_do_not() {
        let names = service_dns_names("x", "y");
        let subject = Subject { common_name: "x.y.svc".into(), names: names.clone() };
        let ca_key = KeyPair::generate().expect("key");
        let ca_pem = ca_params(CA_VALIDITY).self_signed(&ca_key).expect("CA").pem();
        let issuer = Issuer::new(ca_params(CA_VALIDITY), ca_key);
        let (serving, _) = issue_serving(&issuer, &subject).expect("serving certificate");
        assert_eq!(self_check(ca_pem.as_bytes(), serving.as_bytes(), &names), Ok(()));
        let other = vec!["z.y.svc".to_owned()];
        assert!(self_check(ca_pem.as_bytes(), serving.as_bytes(), &other).is_err());
    }
}
