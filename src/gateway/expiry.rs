//! Opt-in expiry (`--push.expire-after`): groups whose last successful push is older than the
//! limit are deleted, as a `DELETE` of each would. The reference keeps a group until someone
//! deletes it, and that stays the default; a Pi whose CronJobs come and go may prefer the
//! series of a vanished job to disappear on their own.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::MissedTickBehavior;

use super::Gateway;
use super::store::Nanos;
use super::store::clock::nanos_since_epoch;
use crate::go_duration;

/// How often to look for stale groups: a tenth of the limit, so a group outlives it by at most
/// that much, but at least every minute and at most every second.
pub fn sweep_interval(expire_after: Duration) -> Duration {
    (expire_after / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Sweeps until aborted. Started only once the store is restored.
pub async fn expire_periodically(gateway: Arc<Gateway>, expire_after: Duration) {
    let mut ticker = tokio::time::interval(sweep_interval(expire_after));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        sweep(&gateway, expire_after, SystemTime::now()).await;
    }
}

/// Deletes every group not pushed successfully within `expire_after` of `now`, as a DELETE of
/// each would, and returns how many once the removals are on disk (or could not be written).
pub async fn sweep(gateway: &Gateway, expire_after: Duration, now: SystemTime) -> usize {
    let limit = Nanos::try_from(expire_after.as_nanos()).unwrap_or(Nanos::MAX);
    let cutoff = nanos_since_epoch(now).saturating_sub(limit);
    let mut expired = Vec::new();
    let written = gateway
        .change(|store| {
            expired = store.expire(cutoff);
            Ok::<(), Infallible>(())
        })
        .await;
    // No client waits on a sweep: a failed write is logged by the journal's writer and retried.
    drop(written);
    for key in &expired {
        tracing::info!(group = %key, expire_after = %go_duration::format(expire_after), "expired a group not pushed within --push.expire-after");
    }
    expired.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_interval_is_a_tenth_between_a_second_and_a_minute() {
        let s = Duration::from_secs;
        assert_eq!(sweep_interval(Duration::from_millis(500)), s(1));
        assert_eq!(sweep_interval(s(2)), s(1));
        assert_eq!(sweep_interval(s(300)), s(30));
        assert_eq!(sweep_interval(s(7 * 86_400)), s(60));
    }
}
