//! The store file under the worst a Raspberry Pi sees: the process killed (`kill -9`, which is
//! what power loss looks like to the file, minus the disk cache that fsync covers) at a random
//! moment of a load of concurrent pushes, deletes and refused pushes from several clients, and,
//! every other time, stopped with SIGTERM under that load.
//! After every restart, every change that was acknowledged is there, nothing a refusal kept
//! out is, and the gateway starts cleanly. A change in flight at the kill may or may not be
//! there: it was never acknowledged.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use support::Server;

const CLIENTS: usize = 6;
const GROUPS_PER_CLIENT: usize = 4;
const ROUNDS: usize = 6;

/// What a group holds: the value of its last acknowledged push, or nothing after a delete.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Holds {
    Value(u64),
    Nothing,
}

/// One group as its only client knows it.
#[derive(Clone, Copy, Debug)]
struct Known {
    acknowledged: Holds,
    /// A change sent whose answer never came (the kill): it may or may not have happened.
    in_flight: Option<Holds>,
}

/// A client's groups, by slot, and the number it pushes next.
struct Client {
    id: usize,
    groups: Vec<Known>,
    next: u64,
}

fn group_path(client: usize, slot: usize) -> String {
    format!("/metrics/job/durable/client/{client}/slot/{slot}")
}

impl Client {
    fn new(id: usize) -> Client {
        Client { id, groups: vec![Known { acknowledged: Holds::Nothing, in_flight: None }; GROUPS_PER_CLIENT], next: 1 }
    }

    /// Pushes, deletes and sends refused pushes until the gateway stops answering, counting
    /// the acknowledged changes.
    fn run(&mut self, base: &str, acknowledged: &AtomicU64) {
        let http = support::client();
        loop {
            let n = self.next;
            self.next += 1;
            let slot = (n as usize) % GROUPS_PER_CLIENT;
            let url = format!("{base}{}", group_path(self.id, slot));
            // Mostly pushes; every 7th change a delete; every 5th a push the gateway must refuse
            // (a sample with a timestamp), whose value must never be seen.
            let (request, becomes, refused) = if n.is_multiple_of(7) {
                (http.delete(&url), Holds::Nothing, false)
            } else if n.is_multiple_of(5) {
                (http.put(&url).body(format!("durable_refused{{n=\"{n}\"}} 1 1234\n")), Holds::Nothing, true)
            } else {
                let method = if n.is_multiple_of(2) { reqwest::Method::PUT } else { reqwest::Method::POST };
                (http.request(method, &url).body(format!("durable_value {n}\n")), Holds::Value(n), false)
            };
            if !refused {
                self.groups[slot].in_flight = Some(becomes);
            }
            let Ok(response) = request.send() else { return };
            let status = response.status().as_u16();
            match (refused, status) {
                (true, 400) => {}
                (false, 200 | 202) => {
                    self.groups[slot] = Known { acknowledged: becomes, in_flight: None };
                    acknowledged.fetch_add(1, Ordering::Relaxed);
                }
                _ => panic!("{url}: unexpected answer {status} (refused push: {refused})"),
            }
        }
    }
}

/// Every `durable_*` series the gateway exposes, by (client, slot).
fn stored_values(server: &Server) -> (HashMap<(usize, usize), u64>, Vec<String>) {
    let mut values = HashMap::new();
    let mut refused = Vec::new();
    for line in server.pushed_series() {
        if line.starts_with("durable_refused") {
            refused.push(line);
            continue;
        }
        let Some(rest) = line.strip_prefix("durable_value{") else { continue };
        let label = |name: &str| -> usize {
            let start = rest.find(&format!("{name}=\"")).expect("label") + name.len() + 2;
            rest[start..].split('"').next().unwrap().parse().expect("number")
        };
        let value: u64 = line.rsplit(' ').next().unwrap().parse().expect("value");
        values.insert((label("client"), label("slot")), value);
    }
    (values, refused)
}

/// A small random number generator, seeded from the clock and printed, so that a failing
/// schedule of kills can be replayed with CRONPUSH_KILL_SEED.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn every_acknowledged_change_survives_kill_9_and_sigterm_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.redb");
    let flag = format!("--persistence.file={}", file.display());
    let mut seed = std::env::var("CRONPUSH_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    println!("CRONPUSH_KILL_SEED={seed}");
    let mut clients: Vec<Client> = (0..CLIENTS).map(Client::new).collect();
    let mut total = 0;
    for round in 0..ROUNDS {
        let started = Instant::now();
        let mut server = Server::cronpush(&[&flag]);
        let restart = started.elapsed();
        if round > 0 {
            check(&server, &mut clients, round);
        }
        let acknowledged = Arc::new(AtomicU64::new(0));
        let base = server.base.clone();
        let running: Vec<_> = clients
            .drain(..)
            .map(|mut client| {
                let (base, acknowledged) = (base.clone(), acknowledged.clone());
                std::thread::spawn(move || {
                    client.run(&base, &acknowledged);
                    client
                })
            })
            .collect();
        let kill_after = Duration::from_millis(300 + next_random(&mut seed) % 1200);
        std::thread::sleep(kill_after);
        // Every other round a clean stop instead: SIGTERM under the same load, which must drain
        // (answer what is in flight, each once written) and exit 0 promptly.
        let signal = if round % 2 == 0 { "KILL" } else { "TERM" };
        server.signal(signal);
        let exit = server.wait_exit(Duration::from_secs(15));
        if signal == "KILL" {
            assert!(exit.is_none(), "killed, not exited");
        } else {
            assert_eq!(exit, Some(0), "round {round}: SIGTERM under load:\n{}", server.stderr());
        }
        clients = running.into_iter().map(|t| t.join().expect("client thread")).collect();
        let acknowledged = acknowledged.load(Ordering::Relaxed);
        println!(
            "round {round}: restart took {restart:?}, {acknowledged} changes acknowledged, SIG{signal} after {kill_after:?}"
        );
        assert!(acknowledged > 10, "round {round}: too few changes before the kill to prove anything");
        total += acknowledged;
    }
    let server = Server::cronpush(&[&flag]);
    check(&server, &mut clients, ROUNDS);
    println!("{total} acknowledged changes over {ROUNDS} stops (SIGKILL, SIGTERM), none lost");
}

/// Checks what the restarted gateway holds against what each client knows, then takes what
/// it holds as acknowledged: a change in flight at the kill is now either there or not.
fn check(server: &Server, clients: &mut [Client], round: usize) {
    let (values, refused) = stored_values(server);
    assert!(refused.is_empty(), "after kill {round}: refused pushes are stored: {refused:?}");
    for client in clients {
        for (slot, known) in client.groups.iter_mut().enumerate() {
            let stored = match values.get(&(client.id, slot)) {
                Some(v) => Holds::Value(*v),
                None => Holds::Nothing,
            };
            assert!(
                stored == known.acknowledged || Some(stored) == known.in_flight,
                "after kill {round}: client {} slot {slot} holds {stored:?}, acknowledged {:?}, in flight {:?}",
                client.id,
                known.acknowledged,
                known.in_flight
            );
            *known = Known { acknowledged: stored, in_flight: None };
        }
    }
}
