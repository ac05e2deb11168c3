//! How every role stops: SIGTERM (the kubelet, systemd) or SIGINT (a terminal) asks it to finish
//! what it is doing and exit; SIGHUP, which Debian's units send on reload and a closing terminal
//! sends too, changes nothing (there is no configuration to reload) and is said in the log.
//!
//! The handlers are installed first, before a store is opened or a port bound: a role that could
//! not hear SIGTERM would be killed mid-write by it (the default action) instead of draining, so
//! a server that cannot install them does not start, and says why.

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// How long a server lets in-flight requests finish once asked to stop, on plain HTTP and TLS
/// alike; connections still busy after that are closed. It fits in Kubernetes' default 30 s
/// terminationGracePeriodSeconds and systemd's default 90 s TimeoutStopSec.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(25);

#[derive(Debug, thiserror::Error)]
#[error("cannot install the signal handlers: {0}")]
pub struct SignalsError(#[source] std::io::Error);

/// The installed handlers.
pub struct Shutdown {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

/// Why a role was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Terminate,
    Interrupt,
}

impl StopSignal {
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Interrupt => "SIGINT",
        }
    }
}

impl Shutdown {
    /// Installs the handlers; from now on these signals no longer end the process by themselves.
    pub fn install() -> Result<Shutdown, SignalsError> {
        Ok(Shutdown {
            terminate: signal(SignalKind::terminate()).map_err(SignalsError)?,
            interrupt: signal(SignalKind::interrupt()).map_err(SignalsError)?,
            hangup: signal(SignalKind::hangup()).map_err(SignalsError)?,
        })
    }

    /// Completes when the role is asked to stop, and says by which signal.
    pub async fn requested(mut self) -> StopSignal {
        loop {
            tokio::select! {
                _ = self.terminate.recv() => return StopSignal::Terminate,
                _ = self.interrupt.recv() => return StopSignal::Interrupt,
                _ = self.hangup.recv() => tracing::info!("received SIGHUP; there is no configuration to reload"),
            }
        }
    }
}
