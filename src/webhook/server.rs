//! Running the webhook: check the flags, load the certificate (reloaded on change), connect to
//! Kubernetes when a configuration exists, and serve HTTPS until SIGTERM or SIGINT (see
//! `crate::shutdown`, installed first).

use std::sync::Arc;

use tokio::net::TcpListener;

use super::cleanup::Cleanup;
use super::config::{WebhookArgs, WebhookConfigError};
use super::created_runs::CreatedRuns;
use super::cronjob_changes::CronJobChanges;
use super::decision::Admitter;
use super::gateway_groups::GatewayGroups;
use super::http::{WebhookState, app};
use super::injected_pods::InjectedPods;
use super::injection::PushMode;
use super::job_caches::JobCaches;
use super::kube_resolver::KubeResolver;
use super::metrics::WebhookMetrics;
use super::namespace_policies::{NamespacePolicies, NoPolicies, PolicyCache};
use super::node_cache::{NoNodes, NodeCache, Nodes};
use super::relay::Relay;
use super::relay_push::RelayPush;
use super::resolve::{NoApi, Resolve};
use crate::http_server;
use crate::shutdown::{Shutdown, SignalsError};
use crate::tls::{self, ReloadingCert, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Config(#[from] WebhookConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
    #[error("serving failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot make the HTTP client that talks to the gateway: {0}")]
    GatewayClient(#[source] reqwest::Error),
    #[error(transparent)]
    Signals(#[from] SignalsError),
}

pub async fn run(args: WebhookArgs) -> Result<(), WebhookError> {
    let shutdown = Shutdown::install()?;
    tls::install_crypto_provider();
    let image_platforms = args.image_platforms()?;
    let injection = args.injection()?;
    let serve_options = args.serve_options()?;
    let (tls_config, _reloading) = ReloadingCert::spawn(&args.tls_cert_file, &args.tls_key_file)?;
    let client = match kube::Client::try_default().await {
        Ok(client) => Some(client),
        Err(e) => {
            tracing::warn!(
                error = %e,
                "no Kubernetes configuration: the nodes cannot be known, so nothing is injected; the relay is off"
            );
            None
        }
    };
    let caches = client.as_ref().map(|client| JobCaches::start(client.clone()));
    let resolver: Box<dyn Resolve> = match (&client, &caches) {
        (Some(client), Some(caches)) => Box::new(KubeResolver::start(client.clone(), caches.clone())),
        _ => Box::new(NoApi("no Kubernetes configuration".into())),
    };
    let nodes: Box<dyn Nodes> = match &client {
        Some(client) => Box::new(NodeCache::start(client.clone())),
        None => Box::new(NoNodes),
    };
    let policies: Box<dyn NamespacePolicies> = match &client {
        Some(client) => Box::new(PolicyCache::start(client.clone())),
        None => Box::new(NoPolicies),
    };
    let gateway = GatewayGroups {
        gateway_url: args.gateway_url.clone(),
        job_label: args.job_label.clone(),
        cluster: injection.cluster_name.clone(),
        http: GatewayGroups::http_client(&args.gateway_access()?).map_err(WebhookError::GatewayClient)?,
    };
    if let Some(client) = &client {
        tokio::spawn(CronJobChanges { gateway: gateway.clone() }.run(client.clone()));
    }
    let created_runs = CreatedRuns::start(gateway.clone());
    let relay_push = match injection.push_mode {
        PushMode::Direct => None,
        PushMode::Relay { .. } => Some(RelayPush::new(gateway.clone(), args.push_limits())),
    };
    if let (true, Some(client)) = (args.delete_groups_of_deleted_cronjobs, &client) {
        tokio::spawn(Cleanup { gateway }.run(client.clone()));
    }
    let mut relay =
        Relay::new(client.clone(), args.token_audience.clone(), args.relay_max_wait, args.relay_max_waiting)
            .deleting_groups_of_deleted_cronjobs(args.delete_groups_of_deleted_cronjobs)
            .fetching_failed_run_logs(args.failed_run_logs);
    if let (Some(client), Some(caches)) = (&client, caches) {
        relay = relay.watching(InjectedPods::start(client.clone()), caches);
    }
    let state = Arc::new(WebhookState {
        admitter: Admitter {
            injection,
            excluded_namespaces: args.excluded_namespaces(),
            resolver,
            nodes,
            policies,
            image_platforms,
            resolve_timeout: args.resolve_timeout,
            created_runs: Some(created_runs),
        },
        relay,
        relay_push,
        metrics: WebhookMetrics::default(),
    });
    let listener = TcpListener::bind(&args.listen_address)
        .await
        .map_err(|source| WebhookError::Listen { address: args.listen_address.clone(), source })?;
    let address = listener.local_addr().map_or_else(|_| args.listen_address.clone(), |a| a.to_string());
    tracing::info!(address = %address, "serving admission over HTTPS");
    let stop = async {
        let signal = shutdown.requested().await;
        tracing::info!("received {}, draining", signal.name());
    };
    http_server::serve_with(listener, Some(tls_config), app(state), stop, serve_options)
        .await
        .map_err(WebhookError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}
