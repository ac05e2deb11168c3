//! Running load: the closed loop, the open loop with its pacing thread, and the latency samples
//! each client task gathers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::check::check_answer;
use crate::client::Connection;
use crate::fixtures::{Bodies, uid};

/// One answer in this many, per connection, is applied to its Pod and read back.
const DEEP_CHECK_EVERY: u64 = 1024;
/// How long the open loop may take to answer what was queued when its schedule ended.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// What one client task saw.
#[derive(Default)]
pub struct Samples {
    /// Latencies in nanoseconds.
    pub latencies: Vec<u64>,
    pub errors: u64,
    pub first_errors: Vec<String>,
}

impl Samples {
    pub fn error(&mut self, error: String) {
        self.errors += 1;
        if self.first_errors.len() < 3 {
            self.first_errors.push(error);
        }
    }

    fn merge(all: Vec<Samples>) -> Samples {
        let mut merged = Samples::default();
        for s in all {
            merged.latencies.extend(s.latencies);
            merged.errors += s.errors;
            merged.first_errors.extend(s.first_errors);
        }
        merged.latencies.sort_unstable();
        merged
    }

    /// The latency at quantile `q` (nearest rank), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[rank - 1] as f64 / 1e6
    }
}

/// Sends reviews and checks their answers; shared by both loops.
pub struct Reviewer {
    pub bodies: Bodies,
    /// Reviews the webhook answered with 200, over the whole run (the metrics check).
    pub answered: AtomicU64,
    /// The size of an answer, for the notes.
    pub answer_bytes: AtomicU64,
}

impl Reviewer {
    /// Sends review `seq` of client task `task` and checks the answer; the latency runs from
    /// `started`. Each task goes through every Job in turn, from its own starting point.
    async fn one(&self, connection: &mut Connection, task: usize, seq: u64, samples: &mut Samples, started: Instant) {
        let job = (task * 31 + seq as usize) % self.bodies.parts.len();
        let uid = uid(task, seq);
        let outcome = connection.review(self.bodies.body(job, &uid)).await;
        let took = started.elapsed();
        let checked = outcome.and_then(|(status, body)| {
            if status == 200 {
                self.answered.fetch_add(1, Ordering::Relaxed);
                self.answer_bytes.store(body.len() as u64, Ordering::Relaxed);
            }
            let deep = seq.is_multiple_of(DEEP_CHECK_EVERY).then(|| (&self.bodies.pods[job], job));
            check_answer(status, &body, &uid, deep)
        });
        match checked {
            Ok(()) => samples.latencies.push(took.as_nanos() as u64),
            Err(e) => samples.error(e),
        }
    }
}

/// Each connection sends its next review as soon as the last is answered, until `duration`
/// has passed. The connections are handed back for the next phase.
pub async fn closed_loop(
    reviewer: &Arc<Reviewer>,
    connections: Vec<Connection>,
    duration: Duration,
) -> (Vec<Connection>, Samples, Duration) {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(task, mut connection)| {
            let reviewer = reviewer.clone();
            tokio::spawn(async move {
                let mut samples = Samples::default();
                let mut seq = 0;
                while Instant::now() < deadline {
                    reviewer.one(&mut connection, task, seq, &mut samples, Instant::now()).await;
                    seq += 1;
                }
                (connection, samples)
            })
        })
        .collect();
    let mut connections = Vec::new();
    let mut all = Vec::new();
    for task in tasks {
        let (connection, samples) = task.await.expect("a client task");
        connections.push(connection);
        all.push(samples);
    }
    (connections, Samples::merge(all), started.elapsed())
}

/// Reviews scheduled at `rate` per second, round robin over the connections, for `duration`;
/// each latency runs from the review's scheduled send time. A pacing thread keeps the schedule
/// (tokio's timer has a 1 ms resolution, coarser than the 200 µs between reviews at 5,000/s);
/// how late it dispatched each review is returned too (nanoseconds, sorted): the client's own
/// share of the latencies.
pub async fn open_loop(
    reviewer: &Arc<Reviewer>,
    connections: Vec<Connection>,
    rate: u64,
    duration: Duration,
) -> (Vec<u64>, Samples, Duration) {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        connections.iter().map(|_| mpsc::unbounded_channel::<(u64, Instant)>()).unzip();
    let tasks = connections.into_iter().zip(receivers).enumerate().map(|(task, (connection, scheduled))| {
        tokio::spawn(follow_schedule(reviewer.clone(), connection, task, scheduled))
    });
    let tasks: Vec<_> = tasks.collect();
    let started = Instant::now();
    // The senders go with the pacer: when it is done, the connections finish their queues.
    let lag = tokio::task::spawn_blocking(move || pace(&senders, rate, duration)).await.expect("the pacing thread");
    let all = match tokio::time::timeout(DRAIN_LIMIT, futures::future::join_all(tasks)).await {
        Ok(results) => results.into_iter().map(|r| r.expect("a client task")).collect(),
        Err(_) => {
            let mut stuck = Samples::default();
            stuck.error(format!("reviews still unanswered {DRAIN_LIMIT:?} after the schedule ended"));
            vec![stuck]
        }
    };
    (lag, Samples::merge(all), started.elapsed())
}

/// Sends each review when its time comes. An HTTP/1.1 connection carries one at a time, so a
/// slow answer delays the reviews queued behind it; over HTTP/2 each review is a stream of its
/// own, as kube-apiserver sends them, and none waits for another.
async fn follow_schedule(
    reviewer: Arc<Reviewer>,
    mut connection: Connection,
    task: usize,
    mut scheduled: mpsc::UnboundedReceiver<(u64, Instant)>,
) -> Samples {
    let mut samples = Samples::default();
    let mut streams = tokio::task::JoinSet::new();
    while let Some((seq, at)) = scheduled.recv().await {
        if let Some(mut stream) = connection.stream() {
            let reviewer = reviewer.clone();
            streams.spawn(async move {
                let mut samples = Samples::default();
                reviewer.one(&mut stream, task, seq, &mut samples, at).await;
                samples
            });
        } else {
            reviewer.one(&mut connection, task, seq, &mut samples, at).await;
        }
    }
    let mut all = vec![samples];
    while let Some(stream) = streams.join_next().await {
        all.push(stream.expect("a review task"));
    }
    Samples::merge(all)
}

/// Hands out scheduled send times until `duration` has passed; returns how late each went out.
fn pace(senders: &[mpsc::UnboundedSender<(u64, Instant)>], rate: u64, duration: Duration) -> Vec<u64> {
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let start = Instant::now();
    let mut lag = Vec::with_capacity(total as usize);
    for n in 0..total {
        let at = start + period.mul_f64(n as f64);
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        lag.push(Instant::now().saturating_duration_since(at).as_nanos() as u64);
        let connection = n as usize % senders.len();
        let _ = senders[connection].send((n / senders.len() as u64, at));
    }
    lag.sort_unstable();
    lag
}
