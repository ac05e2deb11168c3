//! A real Kubernetes control plane, one per test binary, as envtest starts one: `etcd`,
//! `kube-apiserver` and `kube-controller-manager` from the Kubernetes release that
//! `scripts/build-control-plane` builds (the versions pinned in scripts/control-plane/go.mod).
//! No scheduler and no kubelet: a test binds Pods to Nodes and writes their status itself, as
//! the kubelet emulation says.
//!
//! What runs is what a kubeadm cluster runs, less what needs a node:
//! - etcd on loopback (no TLS: nothing but this process reaches it);
//! - kube-apiserver with a serving certificate from a CA of the test's own, RBAC, the
//!   service-account token issuer and signing key (so `/openid/v1/jwks`, the TokenRequest API
//!   and TokenReview work as in a cluster), and the admission chain of a real cluster: the
//!   default plugins (NamespaceLifecycle, LimitRanger, ServiceAccount, ResourceQuota, PodSecurity,
//!   MutatingAdmissionWebhook, ValidatingAdmissionWebhook among them), named explicitly;
//! - kube-controller-manager with the CronJob, Job, garbage-collector, ResourceQuota, namespace
//!   and service-account controllers.
//!
//! A cluster admin is a static token in `system:masters` (kube-apiserver `--token-auth-file`),
//! which the tests use to apply manifests and play the kubelet. Everything is stopped by pid when
//! the test binary exits, however it exits (a panic, a failed assertion, a kill): a watcher
//! process polls the test process and then ends the control plane and removes its files.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{free_port, repo};

/// The admission plugins that matter to cronpush's Pods, enabled explicitly (kube-apiserver
/// enables them by default too, with the rest of its defaults, and orders them itself: the
/// mutating ones, webhooks last, then the validating ones).
const ADMISSION_PLUGINS: &str = "NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota,\
MutatingAdmissionWebhook,ValidatingAdmissionWebhook,PodSecurity";

/// The controllers cronpush's runs meet (names as `kube-controller-manager --help` lists them).
const CONTROLLERS: &str = "cronjob-controller,job-controller,garbage-collector-controller,\
resourcequota-controller,namespace-controller,serviceaccount-controller,root-ca-certificate-publisher-controller";

/// The service-account issuer, as kubeadm sets it.
const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

pub struct ControlPlane {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The CA (PEM) that signed the API server's serving certificate.
    pub ca: String,
    /// The Kubernetes version the API server reports, e.g. `v1.37.2`.
    pub version: String,
    admin_token: String,
    dir: PathBuf,
    client: reqwest::blocking::Client,
    /// etcd, kube-apiserver, kube-controller-manager and their watcher: never waited for here,
    /// since they outlive every test; the watcher ends them.
    _processes: Vec<Child>,
}

/// The control plane of this test binary, started by the first test that asks for it.
pub fn control_plane() -> &'static ControlPlane {
    static PLANE: OnceLock<ControlPlane> = OnceLock::new();
    PLANE.get_or_init(ControlPlane::start)
}

/// The versions scripts/control-plane/go.mod pins: (Kubernetes, etcd).
pub fn versions() -> (String, String) {
    let go_mod = std::fs::read_to_string(repo("scripts/control-plane/go.mod")).expect("scripts/control-plane/go.mod");
    let find = |prefix: &str| {
        go_mod
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.split_whitespace().next().unwrap().to_string()))
            .unwrap_or_else(|| panic!("go.mod names no {prefix}"))
    };
    (find("require k8s.io/kubernetes "), find("go.etcd.io/etcd/server/v3 "))
}

/// Where scripts/build-control-plane put a binary.
fn binary(component: &str, version: &str, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo("target"));
    let path = target.join("peers").join(format!("{component}-{version}")).join(name);
    assert!(
        path.is_file(),
        "{} is missing: run ./scripts/test (or scripts/build-control-plane), which builds the control plane",
        path.display()
    );
    path
}

impl ControlPlane {
    fn start() -> ControlPlane {
        let (kubernetes, etcd_version) = versions();
        // Kept until the watcher removes it: the plane outlives every test of the binary.
        let dir = tempfile::Builder::new().prefix("cronpush-control-plane-").tempdir().unwrap().keep();
        let ca = write_certificates(&dir);
        let admin_token = format!("admin-{}", std::process::id());
        std::fs::write(dir.join("tokens.csv"), format!("{admin_token},cluster-admin,admin-uid,system:masters\n"))
            .unwrap();

        let (etcd_port, peer_port, api_port) = (free_port(), free_port(), free_port());
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd = spawn(
            &dir,
            "etcd",
            Command::new(binary("etcd", &etcd_version, "etcd")).args([
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                // As envtest runs it: the tests' data need not survive a power cut.
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ]),
        );
        let file = |name: &str| dir.join(name).display().to_string();
        let apiserver = spawn(
            &dir,
            "kube-apiserver",
            Command::new(binary("kubernetes", &kubernetes, "kube-apiserver")).args([
                format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                // The `kubernetes` Service's endpoints may not be a loopback address, and no
                // Pod here needs to reach the API server through it.
                "--endpoint-reconciler-type=none".into(),
                format!("--secure-port={api_port}"),
                format!("--cert-dir={}", file("apiserver-certs")),
                format!("--tls-cert-file={}", file("apiserver.crt")),
                format!("--tls-private-key-file={}", file("apiserver.key")),
                format!("--client-ca-file={}", file("ca.crt")),
                format!("--token-auth-file={}", file("tokens.csv")),
                "--authorization-mode=RBAC".into(),
                format!("--service-account-issuer={ISSUER}"),
                format!("--service-account-key-file={}", file("service-account.pub")),
                format!("--service-account-signing-key-file={}", file("service-account.key")),
                "--service-cluster-ip-range=10.96.0.0/16".into(),
                format!("--enable-admission-plugins={ADMISSION_PLUGINS}"),
                "--allow-privileged=true".into(),
                "--profiling=false".into(),
            ]),
        );
        let admin_kubeconfig =
            kubeconfig_file(&dir, "admin", &format!("https://127.0.0.1:{api_port}"), &ca, &admin_token);
        let controller_manager = spawn(
            &dir,
            "kube-controller-manager",
            Command::new(binary("kubernetes", &kubernetes, "kube-controller-manager")).args([
                format!("--kubeconfig={}", admin_kubeconfig.display()),
                format!("--controllers={CONTROLLERS}"),
                "--leader-elect=false".into(),
                format!("--root-ca-file={}", file("ca.crt")),
                // Its own HTTPS port (health, metrics) on a free port: nothing here uses it.
                format!("--secure-port={}", free_port()),
                "--bind-address=127.0.0.1".into(),
            ]),
        );
        let watcher = watch_over(&dir, &[etcd.id(), apiserver.id(), controller_manager.id()]);

        cronpush::tls::install_crypto_provider();
        let client = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let plane = ControlPlane {
            url: format!("https://127.0.0.1:{api_port}"),
            ca,
            version: kubernetes,
            admin_token,
            dir,
            client,
            _processes: vec![etcd, apiserver, controller_manager, watcher],
        };
        plane.wait_until_ready();
        plane
    }

    /// Waits for `/readyz`, then for the `default` ServiceAccount that the service-account
    /// controller creates (Pods cannot be created in a namespace before it exists).
    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.request("GET", "/readyz", None).0 != 200 {
            assert!(Instant::now() < deadline, "kube-apiserver never became ready:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(200));
        }
        while self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default", None).0 != 200 {
            assert!(Instant::now() < deadline, "the controllers never came up:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of every component's log, for a failure message.
    pub fn logs(&self) -> String {
        ["etcd", "kube-apiserver", "kube-controller-manager"]
            .iter()
            .map(|name| {
                let log = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!("--- {name}\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A request as the cluster admin: (status, body as JSON, or as a JSON string when it is
    /// not JSON).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request =
            self.client.request(method.parse().unwrap(), format!("{}{path}", self.url)).bearer_auth(&self.admin_token);
        if let Some(body) = body {
            let content_type = if method == "PATCH" { "application/merge-patch+json" } else { "application/json" };
            request = request.header("Content-Type", content_type).body(body.to_string());
        }
        match request.send() {
            Ok(reply) => {
                let status = reply.status().as_u16();
                let text = reply.text().unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    /// GET as the admin; panics unless it is 200.
    pub fn get(&self, path: &str) -> Value {
        let (status, body) = self.request("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Creates an object as `kubectl create` does; panics unless the API server stores it.
    pub fn create(&self, object: &Value) -> Value {
        let (status, body) = self.try_create(object);
        assert!(status == 201 || status == 200, "creating {}: {status} {body}", describe(object));
        body
    }

    /// Creates an object and returns the API server's verdict as it is.
    pub fn try_create(&self, object: &Value) -> (u16, Value) {
        self.request("POST", &collection_path(object), Some(object))
    }

    /// Writes a subresource (`status`, `binding`, ...) of the object at `path` with `body`.
    pub fn post(&self, path: &str, body: &Value) -> Value {
        let (status, reply) = self.request("POST", path, Some(body));
        assert!(status == 201 || status == 200, "POST {path}: {status} {reply}");
        reply
    }

    /// A JSON merge patch, as `kubectl patch --type=merge` sends it.
    pub fn patch(&self, path: &str, patch: &Value) -> Value {
        let (status, reply) = self.request("PATCH", path, Some(patch));
        assert_eq!(status, 200, "PATCH {path}: {reply}");
        reply
    }

    pub fn delete(&self, path: &str) {
        let (status, reply) = self.request("DELETE", path, None);
        assert!(status == 200 || status == 202 || status == 404, "DELETE {path}: {status} {reply}");
    }

    /// A token of `namespace/service_account` from the TokenRequest API, for `audiences` (empty:
    /// the API server's own), optionally bound to a Pod (name, uid) as the kubelet asks for a
    /// projected token.
    pub fn token(
        &self,
        namespace: &str,
        service_account: &str,
        audiences: &[&str],
        pod: Option<(&str, &str)>,
    ) -> String {
        let mut spec = json!({"audiences": audiences, "expirationSeconds": 3600});
        if let Some((name, uid)) = pod {
            spec["boundObjectRef"] = json!({"kind": "Pod", "apiVersion": "v1", "name": name, "uid": uid});
        }
        let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec});
        let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token");
        self.post(&path, &request)["status"]["token"].as_str().expect("a token").to_string()
    }

    /// A kubeconfig for this API server with `token`, written into `dir` (as a Pod's in-cluster
    /// configuration would give it: the server, its CA, a bearer token).
    pub fn kubeconfig(&self, dir: &Path, token: &str) -> PathBuf {
        kubeconfig_file(dir, "kubeconfig", &self.url, &self.ca, token)
    }

    /// Polls `path` until `check` accepts it (or `within` passes) and returns the last answer.
    pub fn wait_for(&self, path: &str, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.request("GET", path, None);
            if status == 200 && check(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "GET {path} never became what was waited for: {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `kind namespace/name` of an object, for messages.
fn describe(object: &Value) -> String {
    let meta = &object["metadata"];
    format!("{} {}/{}", object["kind"], meta["namespace"].as_str().unwrap_or(""), meta["name"].as_str().unwrap_or(""))
}

/// The kinds cronpush's manifests and tests create that are not namespaced.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "ClusterRole",
    "ClusterRoleBinding",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "PriorityClass",
];

/// The REST path of an object's collection, from its apiVersion and kind (the plural of every
/// kind used here is the lower-cased kind plus `s`).
fn collection_path(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().expect("an object has an apiVersion");
    let kind = object["kind"].as_str().expect("an object has a kind");
    let group = if api_version.contains('/') { format!("/apis/{api_version}") } else { format!("/api/{api_version}") };
    let plural = format!("{}s", kind.to_lowercase());
    if CLUSTER_SCOPED.contains(&kind) {
        format!("{group}/{plural}")
    } else {
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("default");
        format!("{group}/namespaces/{namespace}/{plural}")
    }
}

/// The CA, the API server's serving certificate and the service-account signing key, written
/// into `dir`; returns the CA's PEM.
fn write_certificates(dir: &Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "cronpush test control plane CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().unwrap();
    let names = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "localhost"];
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params.subject_alt_names.push(SanType::IpAddress("10.96.0.1".parse().unwrap()));
    params.distinguished_name.push(rcgen::DnType::CommonName, "kube-apiserver");
    let cert = params.signed_by(&key, &issuer).unwrap();

    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("apiserver.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("apiserver.key"), key.serialize_pem()).unwrap();
    // ECDSA P-256: kube-apiserver signs service-account tokens with ES256 from such a key.
    let signing = KeyPair::generate().unwrap();
    std::fs::write(dir.join("service-account.key"), signing.serialize_pem()).unwrap();
    std::fs::write(dir.join("service-account.pub"), signing.public_key_pem()).unwrap();
    ca_cert.pem()
}

fn kubeconfig_file(dir: &Path, name: &str, server: &str, ca: &str, token: &str) -> PathBuf {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca);
    let path = dir.join(name);
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {ca}\nusers:\n- name: test\n  user:\n    token: {token}\ncontexts:\n- name: test\n  \
         context:\n    cluster: test\n    user: test\ncurrent-context: test\n"
    );
    std::fs::write(&path, config).unwrap();
    path
}

/// Starts a component with its output in `<dir>/<name>.log`.
fn spawn(dir: &Path, name: &str, command: &mut Command) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
}

/// A watcher that outlives nothing: once this test process is gone, it stops the components
/// (SIGTERM, then SIGKILL for what is left after 5 s) and removes their files.
fn watch_over(dir: &Path, pids: &[u32]) -> Child {
    let pids = pids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    let script = format!(
        "alive() {{ for p in {pids}; do kill -0 $p 2>/dev/null && return 0; done; return 1; }}; \
         while kill -0 {test} 2>/dev/null; do sleep 0.5; done; kill -TERM {pids} 2>/dev/null; \
         for _ in 1 2 3 4 5 6 7 8 9 10; do alive || break; sleep 0.5; done; \
         kill -KILL {pids} 2>/dev/null; rm -rf '{dir}'",
        test = std::process::id(),
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the control plane's watcher")
}
