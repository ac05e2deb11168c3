//! The real `cronpush webhook` binary, started as its Deployment runs it: certificates from the
//! real `cronpush certs`, a kubeconfig naming a (fake or unreachable) API server, and clients
//! that reach it as kube-apiserver reaches the Service, verifying the certificate against the
//! generated CA for the Service's DNS name.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::NotReady;
use super::kube_api::kubeconfig;

pub const SERVICE: &str = "cronpush-webhook";
pub const NAMESPACE: &str = "cronpush";
pub const HOST: &str = "cronpush-webhook.cronpush.svc";

/// A handle on a running webhook; its clones are the same process (several runs of a test
/// admitted by one webhook), which is killed when the last handle goes.
#[derive(Clone)]
pub struct Webhook {
    process: Arc<Process>,
    pub address: SocketAddr,
    /// The generated CA (PEM): the caBundle.
    pub ca: Vec<u8>,
}

struct Process {
    child: Mutex<Child>,
    /// The webhook's log and files; removed with the process.
    dir: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Webhook {
    /// Generates certificates with `cronpush certs` and starts `cronpush webhook` with a
    /// kubeconfig naming `api_server`.
    pub fn start(api_server: &str) -> Webhook {
        Webhook::start_with(api_server, "http://pi:8080/pushgateway")
    }

    /// As `start`, injecting pushes to `gateway_url`. The relay URL handed to the sidecars is
    /// the loopback address the webhook listens on (the certificate also names it), since a
    /// test process cannot resolve the Service's DNS name.
    pub fn start_with(api_server: &str, gateway_url: &str) -> Webhook {
        Webhook::start_with_flags(api_server, gateway_url, &[])
    }

    /// As `start_with`, with more flags.
    pub fn start_with_flags(api_server: &str, gateway_url: &str, flags: &[&str]) -> Webhook {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = kubeconfig(dir.path(), api_server);
        Webhook::start_in(dir, &kubeconfig, gateway_url, flags)
    }

    /// As `start_with_flags`, reaching the API server as `kubeconfig` says (a real one, with the
    /// webhook's own ServiceAccount token).
    pub fn start_with_kubeconfig(kubeconfig: &std::path::Path, gateway_url: &str, flags: &[&str]) -> Webhook {
        Webhook::start_in(tempfile::tempdir().unwrap(), kubeconfig, gateway_url, flags)
    }

    fn start_in(dir: tempfile::TempDir, kubeconfig: &std::path::Path, gateway_url: &str, flags: &[&str]) -> Webhook {
        let certs = dir.path().join("certs");
        super::issue_certs(&certs, &["--service", SERVICE, "--namespace", NAMESPACE, "--extra-name", "127.0.0.1"]);
        let log = dir.path().join("webhook.log");
        let ca = std::fs::read(certs.join("ca.crt")).unwrap();
        // The relay URL names the port, so it is chosen before the webhook starts.
        let (child, address) = super::on_free_port("the webhook", |port| {
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            let mut child = Command::new(super::cronpush_binary())
                .arg("webhook")
                .arg(format!("--tls-cert-file={}", certs.join("tls.crt").display()))
                .arg(format!("--tls-key-file={}", certs.join("tls.key").display()))
                .arg(format!("--tls-ca-file={}", certs.join("ca.crt").display()))
                .arg(format!("--listen-address={address}"))
                .arg(format!("--gateway-url={gateway_url}"))
                .arg(format!("--relay-url=https://{address}/v1/exit-status"))
                .args(["--image=cronpush:test", "--resolve-timeout=1s"])
                .args(flags)
                .env("KUBECONFIG", kubeconfig)
                .env("POD_NAMESPACE", NAMESPACE)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let client = client_trusting(&ca, HOST, address);
            let answers = || client.get(format!("https://{HOST}:{port}/healthz")).send().is_ok();
            match super::wait_ready(&mut child, Duration::from_secs(20), answers) {
                Ok(()) => Ok((child, address)),
                Err(NotReady::Exited(status)) => Err(format!("exit status {status}\n{}", super::read_log(&log))),
                Err(NotReady::TimedOut) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the webhook did not come up")
                }
            }
        });
        Webhook { process: Arc::new(Process { child: Mutex::new(child), dir }), address, ca }
    }

    /// What the webhook has logged so far.
    pub fn log(&self) -> String {
        super::read_log(&self.process.dir.path().join("webhook.log"))
    }

    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    /// Kills the webhook: its port then refuses connections.
    pub fn stop(&mut self) {
        let mut child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.process.child.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A client that trusts only the caBundle and reaches the webhook under `host`, as the API
    /// server reaches the Service.
    pub fn client(&self, host: &str) -> reqwest::blocking::Client {
        client_trusting(&self.ca, host, self.address)
    }

    /// The webhook's own `/metrics` text.
    pub fn metrics(&self) -> String {
        let reply = self.client(HOST).get(self.url("/metrics")).send().unwrap();
        assert_eq!(reply.status(), 200);
        reply.text().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{HOST}:{}{path}", self.address.port())
    }

    /// POSTs a review as kube-apiserver does (with its `?timeout=` query) and returns the
    /// response object.
    pub fn review(&self, body: &Value) -> Value {
        let reply = self
            .client(HOST)
            .post(self.url("/mutate?timeout=5s"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(reply.status(), 200);
        let review: Value = serde_json::from_slice(&reply.bytes().unwrap()).unwrap();
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["response"]["uid"], body["request"]["uid"], "the uid is echoed");
        assert_eq!(review["response"]["allowed"], true, "cronpush never denies a Pod");
        review["response"].clone()
    }
}

// ---- Fixtures: the article's CronJob and the Pod its Job controller creates ----------------

pub fn job(name: &str, owner: Option<Value>, annotations: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": name, "namespace": "batch", "uid": "job-uid", "annotations": annotations,
                        "ownerReferences": owner.into_iter().collect::<Vec<_>>()},
           // The article's Job retries nothing (backoffLimit 0), so that a failed Pod is a failed run.
           "spec": {"backoffLimit": 0, "template": {"spec": {"containers": [{"name": "main-batch", "image": "busybox"}]}}}})
}

pub fn cronjob_owner(controller: bool) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob", "name": "sample-cronjob", "uid": "cj-uid", "controller": controller})
}

pub fn sample_cronjob() -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob",
           "metadata": {"name": "sample-cronjob", "namespace": "batch", "uid": "cj-uid"},
           "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": "Allow", "startingDeadlineSeconds": 30,
                    "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "main-batch", "image": "busybox"}]}}}}}})
}

/// A Ready Node as its kubelet registers it (pkg/kubelet/kubelet_node_status.go): the
/// `kubernetes.io/os` and `kubernetes.io/arch` labels, and what the kubelet reports of itself in
/// `status.nodeInfo`.
pub fn node(name: &str, kubelet_version: &str, arch: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": name, "uid": format!("uid-{name}"),
                        "labels": {"kubernetes.io/arch": arch, "kubernetes.io/os": "linux", "kubernetes.io/hostname": name}},
           "spec": {"podCIDR": "10.244.1.0/24"},
           "status": {"nodeInfo": {"kubeletVersion": kubelet_version, "kubeProxyVersion": "", "architecture": arch,
                                   "operatingSystem": "linux", "osImage": "Debian GNU/Linux 13",
                                   "containerRuntimeVersion": "containerd://2.1.0", "kernelVersion": "6.12.0",
                                   "machineID": "", "systemUUID": "", "bootID": ""},
                      "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}})
}

pub fn pod_review(job: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{job}"),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "", "namespace": "batch", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:job-controller"},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": format!("{job}-"), "labels": {"batch.kubernetes.io/job-name": job, "job-name": job},
                             "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": "job-uid",
                                                  "controller": true, "blockOwnerDeletion": true}],
                             "finalizers": ["batch.kubernetes.io/job-tracking"]},
                "spec": {"containers": [{"name": "main-batch", "image": "busybox"}], "restartPolicy": "Never"}
            },
            "oldObject": null, "dryRun": false
        }
    })
}

/// The review of the Pod the Job controller creates from the article's cronjob.yaml (an init
/// container `push-metrics` that pushes to the Pi, a busybox main container), as the webhook
/// receives it: after defaulting and the ServiceAccount admission plugin, which mounts the
/// `kube-api-access` token into every container unless the Pod sets
/// `automountServiceAccountToken: false`.
pub fn article_pod_review(job: &str, automount: bool) -> Value {
    let mut review = pod_review(job);
    let pod = &mut review["request"]["object"];
    let api_access = json!({"name": "kube-api-access-7x2kq", "readOnly": true,
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"});
    let container = |name: &str, image: &str, args: Value, pull: &str| {
        let mut c = json!({"name": name, "image": image, "args": args, "resources": {},
                           "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                           "imagePullPolicy": pull});
        if automount {
            c["volumeMounts"] = json!([api_access]);
        }
        c
    };
    pod["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] = json!("job-uid");
    pod["metadata"]["labels"]["controller-uid"] = json!("job-uid");
    pod["spec"] = json!({
        "initContainers": [container("push-metrics", "uzimihsr/golang-sample-job:latest",
                                     json!(["--endpoint=192.168.3.200:9091"]), "IfNotPresent")],
        "containers": [container("main-batch", "busybox",
                                 json!(["/bin/sh", "-c", "date; echo Hello from the Kubernetes cluster"]), "Always")],
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {},
        "schedulerName": "default-scheduler", "priority": 0, "enableServiceLinks": true,
        "preemptionPolicy": "PreemptLowerPriority"
    });
    if automount {
        let namespace_field = json!({"apiVersion": "v1", "fieldPath": "metadata.namespace"});
        pod["spec"]["volumes"] = json!([{"name": "kube-api-access-7x2kq", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": namespace_field}]}}]}}]);
    } else {
        pod["spec"]["automountServiceAccountToken"] = json!(false);
    }
    review
}

/// The Pod after the response's patch, decoded from base64 and applied with json-patch.
pub fn patched(review: &Value, response: &Value) -> Pod {
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let bytes = base64::engine::general_purpose::STANDARD.decode(response["patch"].as_str().unwrap()).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).unwrap();
    serde_json::from_value(pod).unwrap()
}

pub fn env_of(pod: &Pod, container: &str, name: &str) -> Option<String> {
    let c = pod.spec.as_ref()?.init_containers.as_ref()?.iter().find(|c| c.name == container)?;
    c.env.as_ref()?.iter().find(|e| e.name == name)?.value.clone()
}

pub fn status_annotation(pod: &Pod) -> Value {
    serde_json::from_str(&pod.metadata.annotations.as_ref().unwrap()["cronpush.io/status"]).unwrap()
}

/// The injection settings the webhook's flag defaults give, for tests that call the injection
/// directly. The gateway URL is what the tests' Pods push to unless a test replaces it.
pub fn injection_config() -> cronpush::webhook::injection::InjectionConfig {
    cronpush::webhook::injection::InjectionConfig {
        image: "cronpush:test".into(),
        image_pull_policy: None,
        gateway_url: "http://cronpush-gateway.cronpush.svc:9091".into(),
        job_label: "cronpush".into(),
        cluster_name: None,
        relay_url: "https://cronpush-webhook.cronpush.svc/v1/exit-status".into(),
        relay_ca_pem: "PEM".into(),
        token_audience: "cronpush".into(),
        token_expiration_seconds: 3600,
        cpu_request: "10m".into(),
        memory_request: "16Mi".into(),
        cpu_limit: None,
        memory_limit: "32Mi".into(),
        start_timeout_seconds: 5,
        failed_run_logs: false,
        gateway_ca_pem: None,
        gateway_credentials_secret: None,
        push_mode: cronpush::webhook::injection::PushMode::Direct,
    }
}

/// A client that trusts only `ca` and reaches `address` under `host`.
fn client_trusting(ca: &[u8], host: &str, address: SocketAddr) -> reqwest::blocking::Client {
    cronpush::tls::install_crypto_provider();
    reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca).unwrap())
        .resolve(host, address)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}
