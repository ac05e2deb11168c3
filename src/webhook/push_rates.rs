//! How often each Pod may push through the relay: a token bucket per Pod (by uid), as nginx's
//! `limit_req` keeps one per key. A Job that loops on its pushes, or a pusher retrying against a
//! gateway that is away, then costs the gateway at most the bucket's rate, and the other Pods
//! keep theirs.
//!
//! A run pushes four times at most (its start, its end, its metrics file, its failed containers'
//! log lines), so the default of 30 a minute leaves room for the retries of a gateway restart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Pods remembered at most; beyond them a full bucket (a Pod quiet for a minute) is forgotten,
/// and when none is, the push goes unmetered rather than refused.
const PODS: usize = 100_000;

pub struct PushRates {
    /// Pushes a Pod may make in a burst, and per minute after it.
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    /// Pushes the Pod may make right now, fractions included.
    tokens: f64,
    at: Instant,
}

impl PushRates {
    pub fn new(per_minute: u32) -> PushRates {
        PushRates { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one push from the Pod's bucket, or says how long until it holds one.
    pub fn take(&self, pod_uid: &str) -> Result<(), Duration> {
        self.take_at(pod_uid, Instant::now())
    }

    fn take_at(&self, pod_uid: &str, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(pod_uid) && buckets.len() >= PODS {
            buckets.retain(|_, bucket| bucket.refilled(now, per_second) < capacity);
            if buckets.len() >= PODS {
                return Ok(());
            }
        }
        let bucket = buckets.entry(pod_uid.to_string()).or_insert(Bucket { tokens: capacity, at: now });
        bucket.tokens = bucket.refilled(now, per_second).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        if per_second <= 0.0 {
            return Err(Duration::from_secs(60));
        }
        Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
    }
}

impl Bucket {
    fn refilled(&self, now: Instant, per_second: f64) -> f64 {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_gets_its_burst_then_its_rate_and_others_keep_theirs() {
        let rates = PushRates::new(6);
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        for _ in 0..6 {
            assert_eq!(rates.take_at("pod-a", at(0)), Ok(()));
        }
        // The wait, to the millisecond.
        let wait = |taken: Result<(), Duration>| taken.err().map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0);
        assert_eq!(wait(rates.take_at("pod-a", at(0))), Some(10.0), "one push every 10 s");
        assert_eq!(rates.take_at("pod-b", at(0)), Ok(()), "another Pod's bucket is its own");
        assert_eq!(rates.take_at("pod-a", at(10)), Ok(()));
        assert_eq!(wait(rates.take_at("pod-a", at(14))), Some(6.0));
        for _ in 0..6 {
            assert_eq!(rates.take_at("pod-a", at(3600)), Ok(()), "a quiet Pod gets its burst back");
        }
        assert!(rates.take_at("pod-a", at(3600)).is_err(), "and no more than its burst");
    }
}
