//! Admission while the relay carries the midnight burst: N sidecars (BENCH_RELAY_SIDECARS,
//! default 10,000; 0 skips it) of injected Pods, each with its own projected token, ask the relay
//! and wait; then the open loop runs at the target rate while their Pods' ends land over it, so
//! that the relay answers a few hundred sidecars a second beside the reviews. Admission must
//! keep its latency target meanwhile.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::kube_api::{FakeApi, TokenIdentity};
use crate::webhook::SERVICE_HOST;

const NAMESPACE: &str = "sidecars";

fn pod_name(index: usize) -> String {
    format!("nightly-{index}-29396160-x7k2p")
}

/// The labelled Pods and their tokens, as the webhook injected them and the kubelet runs them.
pub fn add_pods(api: &FakeApi, sidecars: usize) {
    for index in 0..sidecars {
        api.put(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(index), "namespace": NAMESPACE, "uid": format!("uid-{index}"),
                         "labels": {"job-name": format!("nightly-{index}-29396160"), "cronpush.io/injected": "true"}},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "main", "image": "busybox", "imageID": "", "ready": true, "restartCount": 0,
                 "state": {"running": {"startedAt": "2025-11-22T00:00:03Z"}}}]}}));
        let identity = TokenIdentity {
            namespace: NAMESPACE.into(),
            service_account: "default".into(),
            pod_name: pod_name(index),
            pod_uid: format!("uid-{index}"),
            audiences: vec!["cronpush".into()],
        };
        api.add_token(&format!("token-{index}"), identity);
    }
}

/// Every sidecar asks, spread over `spread`; each answer comes back through its handle.
pub async fn ask_all(
    address: std::net::SocketAddr,
    ca_pem: &[u8],
    sidecars: usize,
    spread: Duration,
) -> Result<Vec<JoinHandle<Result<(u16, String), String>>>, String> {
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).map_err(|e| e.to_string())?)
        .resolve(SERVICE_HOST, address)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(180))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("https://{SERVICE_HOST}:{}/v1/exit-status?wait=120", address.port());
    let started = Instant::now();
    let mut handles = Vec::with_capacity(sidecars);
    for index in 0..sidecars {
        let due = started + spread.mul_f64(index as f64 / sidecars as f64);
        tokio::time::sleep_until(due.into()).await;
        let request = client.get(&url).bearer_auth(format!("token-{index}"));
        handles.push(tokio::spawn(async move {
            let reply = request.send().await.map_err(|e| e.to_string())?;
            let status = reply.status().as_u16();
            Ok((status, reply.text().await.map_err(|e| e.to_string())?))
        }));
    }
    Ok(handles)
}

/// The kubelet reports each Pod's end, spread over `over`.
pub async fn land_ends(api: &FakeApi, sidecars: usize, over: Duration) {
    let started = Instant::now();
    for index in 0..sidecars {
        let due = started + over.mul_f64(index as f64 / sidecars as f64);
        tokio::time::sleep_until(due.into()).await;
        api.modify("pods", NAMESPACE, &pod_name(index), |pod| {
            pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": (index % 2) as i32,
                "reason": "Completed", "startedAt": "2025-11-22T00:00:03Z", "finishedAt": "2025-11-22T00:04:10Z"}});
        });
    }
}

/// How many sidecars got their own Pod's end.
pub async fn right_answers(handles: Vec<JoinHandle<Result<(u16, String), String>>>) -> (usize, Vec<String>) {
    let (mut right, mut wrong) = (0, Vec::new());
    for (index, handle) in handles.into_iter().enumerate() {
        match handle.await.map_err(|e| e.to_string()).and_then(|answer| answer) {
            Ok((200, body)) => {
                let report: Value = serde_json::from_str(&body).unwrap_or_default();
                if report["complete"] == true
                    && report["pod"] == pod_name(index)
                    && report["containers"][0]["terminated"]["exitCode"] == json!((index % 2) as i32)
                {
                    right += 1;
                } else if wrong.len() < 3 {
                    wrong.push(format!("sidecar {index}: {body}"));
                }
            }
            Ok((status, body)) if wrong.len() < 3 => wrong.push(format!("sidecar {index}: {status} {body}")),
            Err(e) if wrong.len() < 3 => wrong.push(format!("sidecar {index}: {e}")),
            _ => {}
        }
    }
    (right, wrong)
}
