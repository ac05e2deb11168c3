//! When the webhook injects the Pod of a scheduled run, the CronJob controller has created the
//! run's Job (the Job controller creates the Pod right after): the slot was not missed, whatever
//! the Pod does next (pull a large image for minutes, wait for a node). The webhook pushes that
//! slot into the run's group, off the admission path, so that CronJobNotScheduled does not call
//! a slot missed whose Pod is only slow to start; it gives such a Pod up to the maximum run time
//! to start (rules.yml).
//!
//! The push never delays or fails an admission: the slots go through a bounded queue to one
//! task, and when the queue is full (a burst of thousands of runs) a slot is dropped with a
//! line in the log; its start push, when the Pod starts, says the same.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::gateway_groups::GatewayGroups;
use crate::exposition::families::gauge_family;
use crate::exposition::text_write;
use crate::pushers::group::Group;

pub const CREATED: &str = "cronjob_last_created_scheduled_timestamp_seconds";
const CREATED_HELP: &str = "The schedule slot of the CronJob's last scheduled run whose Pod was created (pushed by the cronpush webhook when it injected it), in Unix seconds.";
/// Short: slots queue behind a push that hangs.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How many slots may wait for their push.
const QUEUE: usize = 1024;

/// The run of `slot` (Unix seconds) in `group` has its Pod.
struct Created {
    group: Group,
    slot: i64,
}

/// Tells the gateway of runs whose Pod the webhook injected.
#[derive(Clone)]
pub struct CreatedRuns {
    queue: mpsc::Sender<Created>,
    /// Slots not pushed for want of room, for the log: a burst must not flood it.
    dropped: Arc<AtomicU64>,
}

impl CreatedRuns {
    /// Starts the task that pushes, in the background.
    pub fn start(gateway: GatewayGroups) -> CreatedRuns {
        let (queue, mut slots) = mpsc::channel::<Created>(QUEUE);
        tokio::spawn(async move {
            while let Some(created) = slots.recv().await {
                push(&gateway, &created).await;
            }
        });
        CreatedRuns { queue, dropped: Arc::default() }
    }

    /// Queues the push of `slot` into `group`; never waits.
    pub fn created(&self, group: Group, slot: i64) {
        if self.queue.try_send(Created { group, slot }).is_err() {
            // The 1st, 10th, 100th, ... drop is logged.
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if 10u64.pow(dropped.ilog10()) == dropped {
                tracing::warn!(dropped, "not pushing that runs' Pods were created: the gateway cannot keep up");
            }
        }
    }
}

/// The push body: the slot, as the gateway stores it.
pub fn push_body(slot: i64) -> String {
    text_write::to_text(&[gauge_family(CREATED, CREATED_HELP, Vec::new(), slot as f64)])
}

async fn push(gateway: &GatewayGroups, created: &Created) {
    let group = &created.group;
    match gateway.push(group, push_body(created.slot), PUSH_TIMEOUT).await {
        Ok(()) => tracing::debug!(%group, slot = created.slot, "pushed the created run's slot"),
        Err(e) => tracing::warn!(%group, error = %e, "cannot push the created run's slot"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_slot() {
        assert!(push_body(1_796_637_900).lines().any(|l| l == format!("{CREATED} 1.7966379e+09")));
    }
}
