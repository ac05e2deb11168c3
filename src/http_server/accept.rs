//! Accepting connections when accepting fails.
//!
//! Out of file descriptors (`EMFILE`, `ENFILE`) or kernel memory, `accept` fails at once and the
//! waiting connection stays in the listen queue, so the listener is readable again straight
//! away: retrying at once spins a core while nothing frees a descriptor. As Go's net/http does
//! (`Server.Serve`, its `tempDelay`), the server waits 5 ms after the first failure, twice as
//! long after each next one up to 1 s, and accepts again as soon as one succeeds, since
//! connections that end (the timeouts close the idle ones) free descriptors.
//!
//! The log says it at most every [`LOG_EVERY`], with how many attempts failed since it last said
//! it, and says when accepting works again after a failure it logged: a flood that exhausts the
//! descriptors every second or so, each time until the timeouts free them, makes a few lines a
//! minute, not one per attempt or per episode.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(10);

/// A listener's record of its failing accepts.
#[derive(Debug, Default)]
pub(super) struct AcceptErrors {
    /// The pause after the last failure; `None` once an accept has worked.
    pause: Option<Duration>,
    /// Failures since the last line in the log.
    unlogged: u64,
    last_logged: Option<Instant>,
    /// Whether the failures since accepting last worked were in the log.
    told: bool,
}

impl AcceptErrors {
    /// A connection was accepted: pauses start short again.
    pub(super) fn accepted(&mut self) {
        if self.told {
            tracing::info!("accepting connections again");
            self.told = false;
        }
        self.pause = None;
    }

    /// `error` failed an accept: waits as long as it should before the next.
    pub(super) async fn failed(&mut self, error: &io::Error) {
        if is_about_one_connection(error) {
            // That client is gone; the next one may be fine.
            return tracing::debug!(%error, "a connection was lost before it was accepted");
        }
        self.unlogged += 1;
        let now = Instant::now();
        if self.last_logged.is_none_or(|logged| now >= logged + LOG_EVERY) {
            tracing::error!(
                %error,
                failed_attempts = self.unlogged,
                "cannot accept connections; retrying with pauses of up to 1s (out of file descriptors? see LimitNOFILE)"
            );
            self.last_logged = Some(now);
            self.unlogged = 0;
            self.told = true;
        }
        let pause = self.pause.map_or(FIRST_PAUSE, |pause| (pause * 2).min(LONGEST_PAUSE));
        self.pause = Some(pause);
        tokio::time::sleep(pause).await;
    }
}

/// Errors of the one connection being accepted, which the listener itself does not suffer.
fn is_about_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out_of_descriptors() -> io::Error {
        // EMFILE, as accept(2) reports it on Linux.
        io::Error::from_raw_os_error(24)
    }

    #[tokio::test]
    async fn pauses_double_up_to_a_second_and_start_short_after_a_success() {
        let mut errors = AcceptErrors::default();
        let mut pauses = Vec::new();
        for _ in 0..4 {
            errors.failed(&out_of_descriptors()).await;
            pauses.push(errors.pause.unwrap());
        }
        let ms = Duration::from_millis;
        assert_eq!(pauses, [ms(5), ms(10), ms(20), ms(40)]);
        errors.pause = Some(ms(800));
        errors.failed(&out_of_descriptors()).await;
        assert_eq!(errors.pause, Some(LONGEST_PAUSE));
        assert_eq!(errors.unlogged, 4, "one line for the first failure, none for the next within 10 s");
        assert!(errors.told);
        errors.accepted();
        assert_eq!((errors.pause, errors.told), (None, false));
        errors.failed(&out_of_descriptors()).await;
        assert_eq!(errors.pause, Some(FIRST_PAUSE));
        assert_eq!(errors.unlogged, 5, "the next episode within 10 s is not logged either");
        assert!(!errors.told, "so its end is not logged");
    }

    #[tokio::test]
    async fn a_connection_lost_before_accept_is_not_a_pause() {
        let mut errors = AcceptErrors::default();
        errors.failed(&io::Error::from(io::ErrorKind::ConnectionAborted)).await;
        assert_eq!((errors.pause, errors.unlogged), (None, 0));
    }
}
