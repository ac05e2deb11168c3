//! The CA bundle handed to each injected sidecar so that it can verify the relay: the contents
//! of `--tls-ca-file`, kept in step with the file. When the webhook's certificate moves to a new
//! CA (a Secret-volume swap, cert-manager renewing its CA), Pods admitted afterwards must get the
//! new bundle, or their sidecars could not verify the relay until the webhook restarted.
//!
//! The file is looked at again at most once a second, when a Pod is admitted: one `stat` per
//! second at worst, and no watcher thread of its own.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RECHECK: Duration = Duration::from_secs(1);

/// Inode, modification time (seconds, nanoseconds) and length.
type Stamp = (u64, i64, i64, u64);

#[derive(Debug, Clone)]
pub struct RelayCa(Arc<Inner>);

/// Why the CA bundle cannot be read from its file.
#[derive(Debug, thiserror::Error)]
pub enum RelayCaError {
    #[error("cannot read the CA file {}: {source}", .path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("the CA file {} holds no PEM certificate", .path.display())]
    NoCertificate { path: PathBuf },
}

#[derive(Debug)]
struct Inner {
    /// `None`: a fixed bundle, never reread.
    path: Option<PathBuf>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    checked: Instant,
    /// Identity of what was last read: a Secret-volume swap changes the inode, an overwrite
    /// the modification time or the length.
    stamp: Option<Stamp>,
    pem: Arc<str>,
}

impl RelayCa {
    /// Reads the bundle; a file that cannot be read or holds no certificate is an error here,
    /// at start, and later only keeps the bundle already known.
    pub fn load(path: &Path) -> Result<RelayCa, RelayCaError> {
        let (stamp, pem) = read(path)?;
        let state = State { checked: Instant::now(), stamp: Some(stamp), pem };
        Ok(RelayCa(Arc::new(Inner { path: Some(path.to_owned()), state: Mutex::new(state) })))
    }

    /// The bundle as the file holds it now (as of at most a second ago).
    pub fn current(&self) -> Arc<str> {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(path) = &self.0.path else { return state.pem.clone() };
        if state.checked.elapsed() < RECHECK {
            return state.pem.clone();
        }
        state.checked = Instant::now();
        if stamp(path).ok() != state.stamp {
            match read(path) {
                Ok((stamp, pem)) => {
                    if pem != state.pem {
                        tracing::info!(path = %path.display(), "the relay's CA bundle changed; new Pods get the new one");
                    }
                    state.stamp = Some(stamp);
                    state.pem = pem;
                }
                Err(why) => tracing::warn!("keeping the relay's CA bundle: {why}"),
            }
        }
        state.pem.clone()
    }
}

impl From<&str> for RelayCa {
    fn from(pem: &str) -> RelayCa {
        let state = State { checked: Instant::now(), stamp: None, pem: pem.into() };
        RelayCa(Arc::new(Inner { path: None, state: Mutex::new(state) }))
    }
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let metadata = std::fs::metadata(path)?;
    Ok((metadata.ino(), metadata.mtime(), metadata.mtime_nsec(), metadata.len()))
}

fn read(path: &Path) -> Result<(Stamp, Arc<str>), RelayCaError> {
    let unreadable = |source| RelayCaError::Unreadable { path: path.to_owned(), source };
    let stamp = stamp(path).map_err(unreadable)?;
    let pem = std::fs::read_to_string(path).map_err(unreadable)?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(RelayCaError::NoCertificate { path: path.to_owned() });
    }
    Ok((stamp, pem.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM_A: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    const PEM_B: &str = "-----BEGIN CERTIFICATE-----\nBBBBBBBB\n-----END CERTIFICATE-----\n";

    #[test]
    fn follows_the_file_and_keeps_the_last_good_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, PEM_A).unwrap();
        let ca = RelayCa::load(&path).unwrap();
        assert_eq!(&*ca.current(), PEM_A);
        std::fs::write(&path, PEM_B).unwrap();
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert_eq!(&*ca.current(), PEM_B);
        std::fs::write(&path, "garbage").unwrap();
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert_eq!(&*ca.current(), PEM_B, "a broken file keeps the last good bundle");
        assert!(RelayCa::load(&dir.path().join("missing")).is_err());
    }
}
