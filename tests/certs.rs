//! `cronpush certs` as an operator runs it: the real binary, the files it leaves, and the
//! certificate checked the way a TLS client (kube-apiserver) checks it, with rustls' webpki.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

const NAMES: [&str; 4] = ["x", "x.y", "x.y.svc", "x.y.svc.cluster.local"];

fn certs(out: &Path, extra: &[&str]) -> Output {
    certs_for("x", "y", out, extra)
}

fn certs_for(service: &str, namespace: &str, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cronpush"))
        // `--flag=value`, so that a value starting with '-' is a value.
        .args(["certs", &format!("--service={service}"), &format!("--namespace={namespace}"), "--out"])
        .arg(out)
        .args(extra)
        .env_remove("CRONPUSH_SERVICE")
        .env_remove("CRONPUSH_NAMESPACE")
        .env_remove("CRONPUSH_CERTS_OUT")
        .output()
        .expect("run cronpush certs")
}

fn succeeded(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cronpush certs failed: {stderr}");
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

fn failed(output: &Output) -> String {
    assert!(!output.status.success(), "cronpush certs should have failed");
    assert!(output.stdout.is_empty(), "nothing on stdout when failing");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).expect("read")
}

/// A verifier that trusts only the CA in `ca_pem`, like a webhook configuration's caBundle.
fn verifier(ca_pem: &[u8]) -> Arc<WebPkiServerVerifier> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("CA PEM")).expect("CA usable as a root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().expect("verifier")
}

fn verify(ca_pem: &[u8], leaf_pem: &[u8], name: &str, at: UnixTime) -> Result<(), rustls::Error> {
    let leaf = CertificateDer::from_pem_slice(leaf_pem).expect("leaf PEM");
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    verifier(ca_pem).verify_server_cert(&leaf, &[], &name, &[], at).map(|_| ())
}

fn days_from_now(days: i64) -> UnixTime {
    let now = UnixTime::now().as_secs() as i64;
    UnixTime::since_unix_epoch(Duration::from_secs((now + days * 86_400) as u64))
}

#[test]
fn writes_the_pair_and_the_ca_with_private_keys_private() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("certs");
    let output = certs(&out, &[]);
    let stdout = succeeded(&output);
    for (name, expected) in [("ca.crt", 0o644), ("tls.crt", 0o644), ("ca.key", 0o600), ("tls.key", 0o600)] {
        assert_eq!(mode(&out.join(name)), expected, "{name}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(&out.join(name).display().to_string()));
    }
    assert_eq!(mode(&out), 0o700, "the directory holding keys is the owner's");
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&out).expect("list").map(|e| e.expect("entry").path()).collect();
    assert_eq!(leftovers.len(), 4, "no temporary files left behind: {leftovers:?}");
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(read(&out, "ca.crt"));
    assert_eq!(stdout, format!("{ca_bundle}\n"), "stdout is exactly the caBundle");
}

#[test]
fn the_serving_certificate_verifies_for_every_service_name_and_no_other() {
    let tmp = tempfile::tempdir().expect("tempdir");
    succeeded(&certs(tmp.path(), &[]));
    let (ca, leaf) = (read(tmp.path(), "ca.crt"), read(tmp.path(), "tls.crt"));
    for name in NAMES {
        verify(&ca, &leaf, name, UnixTime::now()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for name in ["y", "x.z.svc", "y.x.svc", "x.y.svc.cluster", "other.y.svc"] {
        assert!(verify(&ca, &leaf, name, UnixTime::now()).is_err(), "{name} must not verify");
    }
    // About one year, starting a little in the past for a control plane whose clock lags.
    assert!(verify(&ca, &leaf, "x.y.svc", days_from_now(360)).is_ok());
    assert!(verify(&ca, &leaf, "x.y.svc", days_from_now(370)).is_err());
    let half_an_hour_ago = UnixTime::since_unix_epoch(Duration::from_secs(UnixTime::now().as_secs() - 1800));
    assert!(verify(&ca, &leaf, "x.y.svc", half_an_hour_ago).is_ok());
    assert!(verify(&ca, &leaf, "x.y.svc", days_from_now(-1)).is_err());
}

#[test]
fn the_key_belongs_to_the_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    succeeded(&certs(tmp.path(), &[]));
    cronpush::tls::load_certified_key(&tmp.path().join("tls.crt"), &tmp.path().join("tls.key")).expect("tls pair");
    cronpush::tls::load_certified_key(&tmp.path().join("ca.crt"), &tmp.path().join("ca.key")).expect("CA pair");
    let crossed = cronpush::tls::load_certified_key(&tmp.path().join("tls.crt"), &tmp.path().join("ca.key"));
    assert!(matches!(crossed, Err(cronpush::tls::TlsError::KeyMismatch { .. })));
}

/// The CA's own fields, read by openssl (webpki reads them only while building a chain, and
/// cannot show the CA's lifetime). scripts/test installs Debian's openssl.
#[test]
fn the_ca_is_a_ten_year_ca_that_signs_only_leaves() {
    let tmp = tempfile::tempdir().expect("tempdir");
    succeeded(&certs(tmp.path(), &[]));
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-checkend", &(9 * 365 * 86_400).to_string(), "-in"])
        .arg(tmp.path().join("ca.crt"))
        .output()
        .expect("openssl is not installed; run ./scripts/test, which installs it");
    assert!(text.status.success(), "the CA outlives nine years");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Subject: CN = cronpush webhook CA"), "{text}");
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
}

#[test]
fn refuses_to_overwrite_without_force_and_replaces_everything_with_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = succeeded(&certs(tmp.path(), &[]));
    let before: Vec<Vec<u8>> = ["ca.crt", "ca.key", "tls.crt", "tls.key"].map(|n| read(tmp.path(), n)).into();
    let stderr = failed(&certs(tmp.path(), &[]));
    assert!(stderr.contains("refusing to overwrite"), "{stderr}");
    assert!(stderr.contains(&tmp.path().join("ca.crt").display().to_string()), "names the path: {stderr}");
    assert!(stderr.contains("--force") && stderr.contains("--renew"), "says how: {stderr}");
    let after: Vec<Vec<u8>> = ["ca.crt", "ca.key", "tls.crt", "tls.key"].map(|n| read(tmp.path(), n)).into();
    assert_eq!(before, after, "nothing changed");

    // One existing file is enough to refuse, and nothing else is written.
    let partial = tempfile::tempdir().expect("tempdir");
    std::fs::write(partial.path().join("tls.key"), "mine").expect("write");
    failed(&certs(partial.path(), &[]));
    assert_eq!(std::fs::read_dir(partial.path()).expect("list").count(), 1);

    let forced = succeeded(&certs(tmp.path(), &["--force"]));
    assert_ne!(forced, first, "a new CA, so a new caBundle");
    assert_ne!(read(tmp.path(), "ca.crt"), before[0]);
    assert_eq!(mode(&tmp.path().join("tls.key")), 0o600);
    verify(&read(tmp.path(), "ca.crt"), &read(tmp.path(), "tls.crt"), "x.y.svc", UnixTime::now()).expect("verifies");
}

#[test]
fn renew_reissues_the_serving_certificate_from_the_same_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bundle = succeeded(&certs(tmp.path(), &[]));
    let (ca, old_leaf) = (read(tmp.path(), "ca.crt"), read(tmp.path(), "tls.crt"));
    let output = certs(tmp.path(), &["--renew"]);
    assert_eq!(succeeded(&output), bundle, "the caBundle does not change");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("ca.crt") && stderr.contains("tls.crt"), "only the pair is written: {stderr}");
    assert_eq!(read(tmp.path(), "ca.crt"), ca);
    let new_leaf = read(tmp.path(), "tls.crt");
    assert_ne!(new_leaf, old_leaf);
    for name in NAMES {
        verify(&ca, &new_leaf, name, UnixTime::now()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert_eq!(mode(&tmp.path().join("tls.key")), 0o600);
    cronpush::tls::load_certified_key(&tmp.path().join("tls.crt"), &tmp.path().join("tls.key")).expect("pair");
}

#[test]
fn renew_needs_a_ca_and_says_which_file_is_missing_or_wrong() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let stderr = failed(&certs(tmp.path(), &["--renew"]));
    assert!(stderr.contains(&tmp.path().join("ca.crt").display().to_string()), "{stderr}");
    assert_eq!(std::fs::read_dir(tmp.path()).expect("list").count(), 0);

    // A CA key that is not the CA's: the self-check refuses before anything is written.
    succeeded(&certs(tmp.path(), &[]));
    let other = tempfile::tempdir().expect("tempdir");
    succeeded(&certs(other.path(), &[]));
    std::fs::copy(other.path().join("ca.key"), tmp.path().join("ca.key")).expect("copy");
    let leaf = read(tmp.path(), "tls.crt");
    let stderr = failed(&certs(tmp.path(), &["--renew"]));
    assert!(stderr.contains("ca.key") && stderr.contains("--force"), "{stderr}");
    assert_eq!(read(tmp.path(), "tls.crt"), leaf, "the old pair stays");
}

#[test]
fn force_and_renew_do_not_go_together() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let stderr = failed(&certs(tmp.path(), &["--force", "--renew"]));
    assert!(stderr.contains("--force") && stderr.contains("--renew"), "{stderr}");
}

#[test]
fn extra_names_and_addresses_are_added_and_bad_ones_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    succeeded(&certs(tmp.path(), &["--extra-name", "127.0.0.1", "--extra-name", "webhook.dev.example.com"]));
    let (ca, leaf) = (read(tmp.path(), "ca.crt"), read(tmp.path(), "tls.crt"));
    for name in ["127.0.0.1", "webhook.dev.example.com", "x.y.svc"] {
        verify(&ca, &leaf, name, UnixTime::now()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(verify(&ca, &leaf, "127.0.0.2", UnixTime::now()).is_err());
    let out = tmp.path().join("never");
    for bad in ["", "Upper.example.com", "under_score.example", "a..b"] {
        let stderr = failed(&certs(&out, &["--extra-name", bad]));
        assert!(stderr.contains("invalid --extra-name"), "{bad:?}: {stderr}");
        assert!(!out.exists(), "{bad:?} wrote nothing");
    }
}

#[test]
fn bad_names_are_refused_with_the_rule_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("never");
    let long = "n".repeat(64);
    let cases = [
        ("Webhook", "y", "--service"),
        ("web_hook", "y", "--service"),
        ("1webhook", "y", "--service"),
        ("webhook-", "y", "--service"),
        ("", "y", "--service"),
        ("a.b", "y", "--service"),
        ("x", "-ns", "--namespace"),
        ("x", "ns.with.dots", "--namespace"),
        ("x", "Ns", "--namespace"),
        ("x", &long, "--namespace"),
    ];
    for (service, namespace, flag) in cases {
        let stderr = failed(&certs_for(service, namespace, &out, &[]));
        assert!(stderr.contains(&format!("invalid {flag}")), "{service:?} {namespace:?}: {stderr}");
        assert!(stderr.contains("DNS-1"), "{service:?} {namespace:?} gives the rule: {stderr}");
        assert!(!out.exists(), "{service:?} {namespace:?} wrote nothing");
    }
}

#[test]
fn an_out_path_that_is_a_file_is_named_in_the_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").expect("write");
    let stderr = failed(&certs(&file, &[]));
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
}
