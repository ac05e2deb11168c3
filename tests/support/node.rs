//! The kubelet's part of a run on the real control plane of `control_plane.rs`, which has no
//! kubelet: everything the API server and the controllers decide is real, and this module does
//! what a kubelet (and the scheduler's binding) would do, through the same API calls:
//! - [`register_node`]: a Node with its kubelet version and architecture (and taints), `Ready`
//!   (pkg/kubelet/kubelet_node_status.go registers the Node, then writes its status);
//! - [`NodeRun::bind`]: the scheduler's `pods/binding` to that Node
//!   (pkg/scheduler/framework/plugins/defaultbinder);
//! - the projected service-account token of each `serviceAccountToken` projection, from the
//!   TokenRequest API, bound to the Pod, as the kubelet's token manager asks for it
//!   (pkg/kubelet/token/token_manager.go, pkg/volume/projected);
//! - the containers as processes ([`PodContainers`]) with the environment and volumes the Pod
//!   spec gives them;
//! - status through the `pods/status` subresource in the kubelet's order (pkg/kubelet/status
//!   status_manager.go; the phase from kubelet_pods.go `getPhase`: Running while the native
//!   sidecar runs, then Succeeded or Failed from the main containers once it has stopped).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use serde_json::{Value, json};

use super::control_plane::ControlPlane;
use super::kubelet::{PodContainers, PodKilled, run_main, run_start, start_main, stop_pod, stop_sidecar};

/// Registers a Ready Node running a kubelet of `version` on `arch`, as a kubelet registers its
/// own Node. A Node that exists already is left as it is.
pub fn register_node(plane: &ControlPlane, name: &str, version: &str, arch: &str) {
    register_tainted_node(plane, name, version, arch, json!([]));
}

/// As `register_node`, the Node registered with `taints`, as a kubelet started with
/// `--register-with-taints` registers it (the taints are in the Node from its creation on).
pub fn register_tainted_node(plane: &ControlPlane, name: &str, version: &str, arch: &str, taints: Value) {
    let labels = json!({"kubernetes.io/arch": arch, "kubernetes.io/os": "linux", "kubernetes.io/hostname": name});
    let (status, reply) = plane.try_create(&json!({"apiVersion": "v1", "kind": "Node",
                                                   "metadata": {"name": name, "labels": labels},
                                                   "spec": {"taints": taints}}));
    assert!(status == 201 || status == 409, "registering Node {name}: {status} {reply}");
    let now = jiff::Timestamp::now().to_string();
    plane.patch(
        &format!("/api/v1/nodes/{name}/status"),
        &json!({"status": {
            "nodeInfo": {"kubeletVersion": version, "architecture": arch, "operatingSystem": "linux",
                         "containerRuntimeVersion": "containerd://2.1.0", "kernelVersion": "6.12.0",
                         "osImage": "Debian GNU/Linux 13", "machineID": "", "systemUUID": "", "bootID": "",
                         "kubeProxyVersion": ""},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                            "lastTransitionTime": now}]}}),
    );
}

/// A Pod that the real API server admitted, run by this module's kubelet.
pub struct NodeRun<'a> {
    plane: &'a ControlPlane,
    pub pod: Value,
    mounts: HashMap<String, PathBuf>,
    dir: tempfile::TempDir,
}

impl PodContainers for NodeRun<'_> {
    fn pod(&self) -> &Value {
        &self.pod
    }

    fn mounts(&self) -> &HashMap<String, PathBuf> {
        &self.mounts
    }

    fn logs(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl<'a> NodeRun<'a> {
    /// Binds `pod` to `node` and prepares its volumes: each projected service-account token is
    /// requested from the TokenRequest API for the Pod, as the kubelet does before it starts
    /// the containers.
    pub fn bind(plane: &'a ControlPlane, pod: Value, node: &str) -> NodeRun<'a> {
        let namespace = pod["metadata"]["namespace"].as_str().unwrap().to_string();
        let name = pod["metadata"]["name"].as_str().unwrap().to_string();
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                             "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
        plane.post(&format!("/api/v1/namespaces/{namespace}/pods/{name}/binding"), &binding);
        let pod = plane.get(&format!("/api/v1/namespaces/{namespace}/pods/{name}"));
        let dir = tempfile::tempdir().unwrap();
        let mut mounts = HashMap::new();
        let service_account = pod["spec"]["serviceAccountName"].as_str().unwrap_or("default");
        let uid = pod["metadata"]["uid"].as_str().unwrap();
        for volume in pod["spec"]["volumes"].as_array().into_iter().flatten() {
            let volume_name = volume["name"].as_str().unwrap();
            let host = dir.path().join(volume_name);
            std::fs::create_dir(&host).unwrap();
            for source in volume["projected"]["sources"].as_array().into_iter().flatten() {
                let projection = &source["serviceAccountToken"];
                if projection.is_null() {
                    continue;
                }
                let audiences: Vec<&str> = projection["audience"].as_str().into_iter().collect();
                let token = plane.token(&namespace, service_account, &audiences, Some((&name, uid)));
                std::fs::write(host.join(projection["path"].as_str().unwrap()), token).unwrap();
            }
            mounts.insert(volume_name.to_string(), host);
        }
        NodeRun { plane, pod, mounts, dir }
    }

    fn status_path(&self) -> String {
        let meta = &self.pod["metadata"];
        format!(
            "/api/v1/namespaces/{}/pods/{}/status",
            meta["namespace"].as_str().unwrap(),
            meta["name"].as_str().unwrap()
        )
    }

    /// Writes the Pod's status as the kubelet's status manager does, whole.
    fn report(&self, status: Value) {
        self.plane.patch(&self.status_path(), &json!({"status": status}));
    }

    /// A whole run as the kubelet runs it: `cronpush-start` to completion, the native sidecar
    /// started, the main command run, its end written into the Pod's status, the sidecar
    /// stopped with SIGTERM within the grace period, then the Pod's final phase. Returns the
    /// main container's terminated state.
    pub fn run_to_end(&self, command: &str) -> Value {
        let main = self.pod["spec"]["containers"][0]["name"].as_str().unwrap().to_string();
        let started = jiff::Timestamp::now().to_string();
        let now = || jiff::Timestamp::now().to_string();
        let completed =
            || json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now()}});
        let waiting = json!({"waiting": {"reason": "PodInitializing"}});
        self.report(json!({"phase": "Pending", "startTime": started,
            "initContainerStatuses": [status("cronpush-start", &waiting), status("cronpush-sidecar", &waiting)],
            "containerStatuses": [status(&main, &waiting)]}));
        run_start(self);
        let start_done = status("cronpush-start", &completed());
        let mut sidecar: Child = self.start_sidecar();
        let sidecar_running = status("cronpush-sidecar", &json!({"running": {"startedAt": now()}}));
        let main_running = status(&main, &json!({"running": {"startedAt": now()}}));
        self.report(json!({"phase": "Running", "startTime": started,
            "initContainerStatuses": [start_done, sidecar_running], "containerStatuses": [main_running]}));

        let terminated = run_main(command);
        let main_ended = status(&main, &json!({"terminated": terminated}));
        // Still Running: the sidecar has not stopped yet (kubelet_pods.go getPhase).
        self.report(json!({"phase": "Running", "startTime": started,
            "initContainerStatuses": [start_done, sidecar_running], "containerStatuses": [main_ended]}));
        let grace = self.pod["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
        stop_sidecar(self, &mut sidecar, Duration::from_secs(grace));
        let sidecar_ended = status("cronpush-sidecar", &completed());
        let phase = if terminated["exitCode"] == 0 { "Succeeded" } else { "Failed" };
        self.report(json!({"phase": phase, "startTime": started,
            "initContainerStatuses": [start_done, sidecar_ended], "containerStatuses": [main_ended]}));
        terminated
    }
}

impl NodeRun<'_> {
    /// A run that ends by the Pod's deletion (the Job controller's, at the Job's
    /// `activeDeadlineSeconds` or `backoffLimit`): `cronpush-start` to completion, the sidecar
    /// and `command` started, and the Pod watched until the API server marks it deleted. Then
    /// the kubelet's `SyncTerminatingPod`: a status with the containers as they stand, the
    /// containers stopped main first within `deletionGracePeriodSeconds` ([`stop_pod`]), a
    /// status with their ends, and the kubelet's final delete with grace 0 and the Pod's uid as
    /// precondition (pkg/kubelet/status/status_manager.go `syncPod`).
    pub fn run_until_deleted(&self, command: &str) -> PodKilled {
        let main = self.pod["spec"]["containers"][0]["name"].as_str().unwrap().to_string();
        let started = jiff::Timestamp::now().to_string();
        run_start(self);
        let start_done = status(
            "cronpush-start",
            &json!({"terminated": {"exitCode": 0, "reason": "Completed",
            "startedAt": started, "finishedAt": jiff::Timestamp::now().to_string()}}),
        );
        let mut sidecar = self.start_sidecar();
        let sidecar_running = status("cronpush-sidecar", &json!({"running": {"startedAt": started}}));
        let running = start_main(command);
        let main_running = status(&main, &json!({"running": {"startedAt": running.started.to_string()}}));
        self.report(json!({"phase": "Running", "startTime": started,
            "initContainerStatuses": [start_done, sidecar_running], "containerStatuses": [main_running]}));
        let path = self.status_path().trim_end_matches("/status").to_string();
        let deleted =
            self.plane.wait_for(&path, Duration::from_secs(60), |pod| pod["metadata"]["deletionTimestamp"].is_string());
        let grace = deleted["metadata"]["deletionGracePeriodSeconds"].as_u64().unwrap_or(30);
        let killed = stop_pod(running, &mut sidecar, Duration::from_secs(grace));
        let sidecar_end = match killed.sidecar_exit {
            Some(_) => json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                                             "finishedAt": jiff::Timestamp::now().to_string()}}),
            None => json!({"terminated": {"exitCode": 137, "reason": "Error", "startedAt": started,
                                          "finishedAt": jiff::Timestamp::now().to_string()}}),
        };
        self.report(json!({"phase": "Failed", "startTime": started,
            "initContainerStatuses": [start_done, status("cronpush-sidecar", &sidecar_end)],
            "containerStatuses": [status(&main, &json!({"terminated": killed.main}))]}));
        let uid = self.pod["metadata"]["uid"].as_str().unwrap();
        let (code, reply) = self.plane.request(
            "DELETE",
            &path,
            Some(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                         "preconditions": {"uid": uid}})),
        );
        assert!(code == 200 || code == 404, "the kubelet's final delete: {code} {reply}");
        killed
    }
}

/// A container's status as the kubelet reports it; `ready` and `started` follow from a running
/// state (pkg/kubelet/kuberuntime, convertToAPIContainerStatuses; no probes here).
fn status(name: &str, state: &Value) -> Value {
    let running = state.get("running").is_some();
    json!({"name": name, "image": "cronpush:test", "imageID": "", "ready": running, "started": running,
           "restartCount": 0, "state": state})
}
