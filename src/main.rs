//! The `cronpush` command: one binary, one subcommand per role.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cronpush::certs::CertsArgs;
use cronpush::gateway::config::GatewayArgs;
use cronpush::gateway::server;
use cronpush::webhook::config::WebhookArgs;

#[derive(Parser)]
#[command(
    name = "cronpush",
    version,
    about = "Know whether your Kubernetes CronJobs ran, when, and how they ended.",
    long_about = "Know whether your Kubernetes CronJobs ran, when, and how they ended.\n\n\
cronpush is one binary with several roles. The gateway is a drop-in replacement for the \
Prometheus Pushgateway that the other roles push to; Prometheus scrapes it."
)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Run the Pushgateway-compatible gateway: accepts pushes on /metrics/job/..., serves
    /// them to Prometheus on /metrics, and keeps them across restarts with --persistence.file.
    Gateway(GatewayArgs),
    /// Generate the webhook's certificates: a CA and a serving certificate for the webhook's
    /// Service DNS names, written as ca.crt, tls.crt and tls.key; prints the base64 caBundle.
    Certs(CertsArgs),
    /// Run the mutating admission webhook (HTTPS only): adds the start pusher and the
    /// exit-status sidecar to the Pods of Jobs that CronJobs create.
    Webhook(Box<WebhookArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.role {
        Role::Certs(args) => match cronpush::certs::run(&args) {
            Ok(written) => {
                // stdout carries only the caBundle, so `$(cronpush certs)` can be pasted as is.
                for file in &written.files {
                    eprintln!("cronpush certs: wrote {}", file.display());
                }
                println!("{}", written.ca_bundle);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cronpush certs: {e}");
                ExitCode::FAILURE
            }
        },
        Role::Webhook(args) => {
            cronpush::logging::init(&args.log_level, &args.log_format);
            block_on("webhook", cronpush::webhook::server::run(*args))
        }
        Role::Gateway(args) => {
            cronpush::logging::init(&args.log_level, &args.log_format);
            // Every flag is checked before anything is bound or read.
            let config = match args.validate() {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("cronpush gateway: {e}");
                    return ExitCode::from(2);
                }
            };
            block_on("gateway", server::run(config))
        }
    }
}

/// Runs a role's server to its end on a multi-threaded runtime; its error becomes the exit code.
fn block_on<E: std::fmt::Display>(role: &str, server: impl std::future::Future<Output = Result<(), E>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cronpush {role}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cannot run the {role}");
            eprintln!("cronpush {role}: {e}");
            ExitCode::FAILURE
        }
    }
}
