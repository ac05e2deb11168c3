//! One shared watch of every Pod the webhook injected, selected by the `cronpush.io/injected`
//! label that admission adds, and kept by every webhook replica. The relay answers waiting
//! sidecars from it: at the top of the hour thousands of runs end together, and a watch per
//! waiting sidecar would grow the API server's load with them (one list and one watch here,
//! whatever the number of sidecars). Only what the relay reads is kept of each Pod.
//!
//! The watch is kube-runtime's watcher (list, then watch from the list's resourceVersion,
//! re-listing after a 410 Gone or a broken connection, with backoff), as client-go's informers
//! do (tools/cache/reflector.go). After a re-list, a Pod that the new list no longer holds was
//! deleted meanwhile: its waiters hear that it is gone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::contract::{INJECTED_LABEL, SIDECAR_CONTAINER, env};
use crate::exit_status::ExitReport;

/// What the relay knows of one injected Pod.
#[derive(Debug, Clone)]
pub struct WatchedPod {
    pub uid: String,
    /// How its main containers stand.
    pub report: ExitReport,
    /// The Job that controls it, if one does.
    pub job: Option<String>,
    /// That Job's uid, as the Pod's owner reference names it.
    pub job_uid: Option<String>,
    /// The CronJob it was injected for (the sidecar's `CRONPUSH_CRONJOB`).
    pub cronjob: Option<String>,
    /// `restartPolicy` other than `Never`: a failed container is restarted in place.
    pub restarted_in_place: bool,
    /// Deleted: the report is the last state the API server had.
    pub gone: bool,
}

impl WatchedPod {
    pub fn of(pod: &Pod) -> WatchedPod {
        WatchedPod {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            report: ExitReport::from_pod(pod),
            job: owner_job(pod).map(|(name, _)| name),
            job_uid: owner_job(pod).map(|(_, uid)| uid),
            cronjob: injected_cronjob(pod),
            restarted_in_place: pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) != Some("Never"),
            gone: false,
        }
    }
}

type PodKey = (String, String);

#[derive(Clone)]
pub struct InjectedPods {
    pods: Arc<Mutex<HashMap<PodKey, watch::Sender<Arc<WatchedPod>>>>>,
    listed: watch::Receiver<bool>,
}

impl InjectedPods {
    /// Starts the watch of every injected Pod in every namespace, in the background.
    pub fn start(client: Client) -> InjectedPods {
        let pods = Arc::new(Mutex::new(HashMap::new()));
        let (listed_tx, listed) = watch::channel(false);
        tokio::spawn(keep(Api::<Pod>::all(client), pods.clone(), listed_tx));
        InjectedPods { pods, listed }
    }

    /// The Pod as the watch last saw it, and every change after, or `None` when the watch holds
    /// no such Pod (not injected with the label, or not listed before `by`).
    pub async fn follow(&self, namespace: &str, name: &str, by: Instant) -> Option<watch::Receiver<Arc<WatchedPod>>> {
        let key = (namespace.to_string(), name.to_string());
        if let Some(pod) = self.subscribe(&key) {
            return Some(pod);
        }
        // A Pod the first list has not reached yet (the webhook just started) is worth the wait.
        let mut listed = self.listed.clone();
        let _ = tokio::time::timeout_at(by, listed.wait_for(|listed| *listed)).await;
        self.subscribe(&key)
    }

    /// How many Pods the watch holds.
    pub fn len(&self) -> usize {
        self.pods.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn subscribe(&self, key: &PodKey) -> Option<watch::Receiver<Arc<WatchedPod>>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner()).get(key).map(|pod| pod.subscribe())
    }
}

/// Keeps `pods` equal to the API server's injected Pods, forever.
async fn keep(
    api: Api<Pod>,
    pods: Arc<Mutex<HashMap<PodKey, watch::Sender<Arc<WatchedPod>>>>>,
    listed_tx: watch::Sender<bool>,
) {
    let config = watcher::Config::default().labels(INJECTED_LABEL);
    let mut events = watcher(api, config).default_backoff().boxed();
    // The Pods of a list in progress: the ones it does not name are gone once it is done.
    let mut relisted: HashSet<PodKey> = HashSet::new();
    while let Some(event) = events.next().await {
        let mut pods = pods.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Ok(watcher::Event::Init) => relisted.clear(),
            Ok(watcher::Event::InitApply(pod)) => {
                let key = key_of(&pod);
                relisted.insert(key.clone());
                seen(&mut pods, key, WatchedPod::of(&pod));
            }
            Ok(watcher::Event::InitDone) => {
                let deleted: Vec<PodKey> = pods.keys().filter(|key| !relisted.contains(*key)).cloned().collect();
                for key in deleted {
                    if let Some(pod) = pods.remove(&key) {
                        let last = WatchedPod { gone: true, ..WatchedPod::clone(&pod.borrow()) };
                        pod.send_replace(Arc::new(last));
                    }
                }
                relisted = HashSet::new();
                listed_tx.send_replace(true);
            }
            Ok(watcher::Event::Apply(pod)) => seen(&mut pods, key_of(&pod), WatchedPod::of(&pod)),
            Ok(watcher::Event::Delete(pod)) => {
                if let Some(waiters) = pods.remove(&key_of(&pod)) {
                    waiters.send_replace(Arc::new(WatchedPod { gone: true, ..WatchedPod::of(&pod) }));
                }
            }
            Err(e) => tracing::warn!(error = %e, "watching the injected Pods failed; retrying"),
        }
    }
}

fn seen(pods: &mut HashMap<PodKey, watch::Sender<Arc<WatchedPod>>>, key: PodKey, pod: WatchedPod) {
    match pods.get(&key) {
        Some(waiters) => {
            waiters.send_replace(Arc::new(pod));
        }
        None => {
            pods.insert(key, watch::Sender::new(Arc::new(pod)));
        }
    }
}

fn key_of(pod: &Pod) -> PodKey {
    (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default())
}

/// The CronJob the webhook injected the Pod for: its sidecar's `CRONPUSH_CRONJOB`. The Job that
/// would tell it too may already be gone when its CronJob was deleted.
fn injected_cronjob(pod: &Pod) -> Option<String> {
    let sidecar = pod.spec.as_ref()?.init_containers.as_ref()?.iter().find(|c| c.name == SIDECAR_CONTAINER)?;
    let variable = sidecar.env.as_ref()?.iter().find(|e| e.name == env::CRONJOB)?;
    variable.value.clone().filter(|v| !v.is_empty())
}

/// The name and uid of the Job that controls the Pod, if one does.
fn owner_job(pod: &Pod) -> Option<(String, String)> {
    controller(&pod.metadata, "Job")
}

/// The name and uid of the object's controller of `kind` in `batch/v1`, if it has one.
pub fn controller(
    metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    kind: &str,
) -> Option<(String, String)> {
    metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == kind && o.api_version == "batch/v1" && o.controller == Some(true))
        .map(|o| (o.name.clone(), o.uid.clone()))
}
