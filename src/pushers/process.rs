//! A pusher as a process: one small thread, and an end that never fails the Pod, whatever
//! happened inside (a failed init container fails a Job's Pod, kubernetes.md §3).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// How long the process waits at its end for work it no longer needs, such as a DNS lookup
/// still running on a blocking thread after its deadline: not at all.
const NO_WAIT: Duration = Duration::ZERO;

/// Runs a pusher to its end on a current-thread runtime and returns, even when the runtime
/// cannot start or the pusher panics; the caller exits 0.
pub fn run_contained(role: &str, pusher: impl Future<Output = ()>) {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the runtime; the Job goes on");
                return;
            }
        };
        runtime.block_on(pusher);
        // Dropping the runtime would wait for its blocking threads, which the deadline no
        // longer bounds.
        runtime.shutdown_timeout(NO_WAIT);
    }));
    if outcome.is_err() {
        tracing::error!("cronpush {role} failed unexpectedly; the Job goes on");
    }
}
