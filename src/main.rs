//! The `cronpush` command: one binary, one subcommand per role.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cronpush::certs::CertsArgs;
use cronpush::gateway::config::GatewayArgs;
use cronpush::gateway::server;
use cronpush::pushers::run::RunArgs;
use cronpush::pushers::sidecar::SidecarArgs;
use cronpush::webhook::config::WebhookArgs;

#[derive(Parser)]
#[command(
    name = "cronpush",
    version,
    // `cronpush gateway --version` too: the Pushgateway takes --version beside its flags and
    // prints it to stdout (since 1.9).
    propagate_version = true,
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
    Gateway(Box<GatewayArgs>),
    /// Generate the webhook's certificates: a CA and a serving certificate for the webhook's
    /// Service DNS names, written as ca.crt, tls.crt and tls.key; prints the base64 caBundle.
    Certs(CertsArgs),
    /// Run the mutating admission webhook (HTTPS only): adds the start pusher and the
    /// exit-status sidecar to the Pods of Jobs that CronJobs create.
    Webhook(Box<WebhookArgs>),
    /// Push the start metrics of a CronJob's run (the injected init container). Always exits
    /// 0, within --timeout-seconds: nothing here may fail the Job.
    #[command(args_override_self = true)]
    Start(Box<RunArgs>),
    /// Push how a CronJob's run ended (the injected native sidecar): idles until SIGTERM, learns
    /// the main containers' exit states from the relay (or the API), pushes, and exits 0.
    #[command(args_override_self = true)]
    Sidecar(Box<SidecarArgs>),
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
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
        Role::Start(args) => {
            cronpush::pushers::start::main(*args);
            ExitCode::SUCCESS
        }
        Role::Sidecar(args) => {
            cronpush::pushers::sidecar::main(*args);
            ExitCode::SUCCESS
        }
    }
}

/// The command line, as clap reads it, except for the pushers: they run inside the user's Pod,
/// where exiting non-zero fails the Job, so their command-line errors are printed and the
/// environment alone (what the webhook sets) is used instead.
fn parse() -> Result<Cli, ExitCode> {
    let error = match Cli::try_parse() {
        Ok(cli) => return Ok(cli),
        Err(error) => error,
    };
    let role = std::env::args_os().nth(1).and_then(|role| role.into_string().ok());
    let role = role.filter(|role| matches!(role.as_str(), "start" | "sidecar"));
    match role {
        Some(role) if error.use_stderr() => {
            let _ = error.print();
            eprintln!("cronpush {role}: ignoring the command line; reading the environment only");
            Cli::try_parse_from(["cronpush", role.as_str()]).map_err(|error| {
                let _ = error.print();
                ExitCode::SUCCESS
            })
        }
        _ => error.exit(),
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
