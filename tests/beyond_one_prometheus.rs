//! Beyond one Prometheus (README): each cluster's gateway is scraped by a Prometheus agent with
//! the cluster as external label, which remote-writes to a central store where the shipped rules
//! run. Here with real binaries: two cronpush gateways standing for clusters east and west, two
//! of Debian's Prometheus in agent mode (`--enable-feature=agent`) configured from the shipped
//! manifests/prometheus/agent.yml, and a central Prometheus with
//! `--web.enable-remote-write-receiver` (the API a Mimir, Thanos Receive or VictoriaMetrics
//! offers too) evaluating the shipped rules.yml. The runs go through the real webhook, `start`
//! and `sidecar` of each cluster (the kubelet emulation of tests/support/kubelet.rs); east's
//! webhook names its cluster (`--cluster-name`), west's does not and its agent's label does.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Server;
use support::kubelet::{CronJobRun, Run, run_to_end};
use support::prometheus::Prometheus;

/// Remote write sends within its 5 s batch deadline; the central evaluates every second; the
/// gateway-down alert waits its `for: 1m`.
const WAIT: Duration = Duration::from_secs(120);

fn manifest(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/prometheus").join(path)
}

/// The shipped agent configuration, pointed at this cluster's gateway and the central store,
/// scraping every second.
fn agent(cluster: &str, gateway: &Server, central: &Prometheus) -> Prometheus {
    let text = std::fs::read_to_string(manifest("agent.yml")).unwrap();
    let mut config: Value = serde_saphyr::from_str(&text).unwrap();
    config["global"]["scrape_interval"] = json!("1s");
    config["global"]["external_labels"]["cluster"] = json!(cluster);
    config["scrape_configs"][0]["static_configs"][0]["targets"] = json!([format!("127.0.0.1:{}", gateway.port)]);
    config["remote_write"][0]["url"] = json!(format!("{}/api/v1/write", central.base));
    config["remote_write"][0]["queue_config"] = json!({"batch_send_deadline": "1s"});
    Prometheus::start_config(&config.to_string(), &[], &[], true)
}

/// The central store: the shipped rules, fed only by remote write.
fn central() -> Prometheus {
    let config = "global:\n  evaluation_interval: 1s\nrule_files:\n  - rules.yml\n";
    Prometheus::start_config(
        config,
        &[("rules.yml", &manifest("rules.yml"))],
        &["--web.enable-remote-write-receiver"],
        false,
    )
}

fn firing(central: &Prometheus, alert: &str) -> Vec<Value> {
    let (_, json) = central.get("/api/v1/alerts", &[]);
    let alerts = json["data"]["alerts"].as_array().cloned().unwrap_or_default();
    alerts.into_iter().filter(|a| a["labels"]["alertname"] == alert && a["state"] == "firing").collect()
}

/// Waits until `alert` fires exactly for the clusters `clusters`, and returns those alerts.
fn wait_firing(central: &Prometheus, alert: &str, clusters: &[&str]) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let alerts = firing(central, alert);
        let mut seen: Vec<&str> = alerts.iter().filter_map(|a| a["labels"]["cluster"].as_str()).collect();
        seen.sort_unstable();
        if seen == clusters {
            return alerts;
        }
        assert!(started.elapsed() < WAIT, "{alert} fires for {seen:?}, not {clusters:?}:\n{}", central.log());
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn two_clusters_through_their_agents_alert_in_the_central_store_each_for_itself() {
    let central = central();
    let (east, mut west) = (Server::cronpush(&[]), Server::cronpush(&[]));
    let _east_agent = agent("east", &east, &central);
    let _west_agent = agent("west", &west, &central);

    // The same CronJob in both clusters: it fails in east and succeeds in west.
    let named = CronJobRun { webhook_flags: vec!["--cluster-name=east"], ..CronJobRun::article() };
    run_to_end(&Run::admit_run(named, &east.base, |_| {}), "exit 3");
    run_to_end(&Run::admit_run(CronJobRun::article(), &west.base, |_| {}), "exit 0");

    let failed = wait_firing(&central, "CronJobFailed", &["east"]);
    let labels = &failed[0]["labels"];
    assert_eq!((labels["namespace"].as_str(), labels["cronjob"].as_str()), (Some("batch"), Some("sample-cronjob")));
    assert_eq!(failed[0]["annotations"]["summary"], "CronJob batch/sample-cronjob in cluster east failed");
    // West's run is in the store, under its agent's label, and did not page.
    let (_, results) = central.get("/api/v1/query", &[("query", "cronjob_last_result == 1")]);
    let mut results: Vec<String> = results["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["metric"]["cluster"].as_str().unwrap_or("-"),
                r["metric"]["result"].as_str().unwrap_or("-")
            )
        })
        .collect();
    results.sort();
    assert_eq!(results, ["east:failure", "west:success"]);

    // East's next run succeeds: the alert resolves.
    let named = CronJobRun { webhook_flags: vec!["--cluster-name=east"], ..CronJobRun::article() };
    run_to_end(&Run::admit_run(named, &east.base, |_| {}), "exit 0");
    let started = Instant::now();
    while !firing(&central, "CronJobFailed").is_empty() {
        assert!(started.elapsed() < WAIT, "CronJobFailed did not resolve:\n{}", central.log());
        std::thread::sleep(Duration::from_millis(500));
    }

    // West's gateway goes down: its agent scrapes `up` 0, and the central store names west.
    west.signal("KILL");
    west.wait_exit(Duration::from_secs(10));
    let down = wait_firing(&central, "CronpushGatewayDown", &["west"]);
    assert_eq!(down[0]["annotations"]["summary"], "The cronpush gateway of cluster west cannot be scraped");
    assert!(firing(&central, "CronpushGatewayDown").iter().all(|a| a["labels"]["cluster"] == "west"));
}
