//! Reloading the serving certificate when its files change.
//!
//! Two triggers feed one reloading thread: directory events from notify (a Secret volume update
//! is a rename of the `..data` symlink in the directory, invisible to a watch on the file), and
//! a poll of the files' identity and modification time, for filesystems that send no events and
//! for the case where the watcher cannot start (inotify limits). A reload reads both files and
//! replaces the served certificate only if they parse and belong together; otherwise the old
//! certificate keeps being served and the error is logged once per change on disk.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use rustls::ServerConfig;
use rustls::sign::CertifiedKey;

use super::keypair::{PairBytes, parse_pair, read_pair};
use super::{SwappableCert, TlsError, server_config};

#[derive(Debug, Clone)]
pub struct ReloadOptions {
    /// How often the files are checked when no event arrives.
    pub poll_interval: Duration,
    /// How long the directory must stay quiet after an event before the files are read: a
    /// writer replacing two files one after the other would otherwise be caught half-way.
    pub settle: Duration,
    /// Whether to watch the directories for events at all; polling alone still reloads.
    pub watch_events: bool,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        Self { poll_interval: Duration::from_secs(5), settle: Duration::from_millis(200), watch_events: true }
    }
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// New handshakes now get the certificate on disk.
    Replaced,
    /// The files hold what is already served.
    Unchanged,
}

/// A serving certificate kept in step with its files by a background thread.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    certificates: Arc<SwappableCert>,
    options: ReloadOptions,
    /// What was on disk when the files were last read, so that polling reads them again only
    /// after they change, and a broken pair is reported once, not at every poll.
    seen: Stamp,
    /// The bytes currently served, so that an event that changed nothing replaces nothing.
    served: PairBytes,
}

enum Signal {
    Changed,
    ReloadNow(Sender<Result<Reload, TlsError>>),
    Stop,
}

/// Keeps the reloading going; dropping it stops the watcher and the thread. The server
/// configuration stays usable with the last certificate loaded.
pub struct ReloadHandle {
    certificates: Arc<SwappableCert>,
    signals: Sender<Signal>,
    _watcher: Option<RecommendedWatcher>,
}

impl ReloadingCert {
    /// Loads the pair (an error here is fatal: there is nothing to serve yet), and starts
    /// reloading it with the default options.
    pub fn spawn(cert_path: &Path, key_path: &Path) -> Result<(Arc<ServerConfig>, ReloadHandle), TlsError> {
        Self::spawn_with(cert_path, key_path, ReloadOptions::default())
    }

    pub fn spawn_with(
        cert_path: &Path,
        key_path: &Path,
        options: ReloadOptions,
    ) -> Result<(Arc<ServerConfig>, ReloadHandle), TlsError> {
        let seen = Stamp::of(cert_path, key_path);
        let served = read_pair(cert_path, key_path)?;
        let certificates = Arc::new(SwappableCert::new(parse_pair(&served, cert_path, key_path)?));
        let config = Arc::new(server_config(certificates.clone())?);
        let (signals, received) = mpsc::channel();
        let watcher = if options.watch_events { watch_directories(cert_path, key_path, signals.clone()) } else { None };
        let reloading = ReloadingCert {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            certificates: certificates.clone(),
            options,
            seen,
            served,
        };
        std::thread::Builder::new()
            .name("cronpush-cert-reload".to_owned())
            .spawn(move || reloading.run(&received))
            .map_err(TlsError::Spawn)?;
        Ok((config, ReloadHandle { certificates, signals, _watcher: watcher }))
    }

    fn run(mut self, signals: &Receiver<Signal>) {
        loop {
            match signals.recv_timeout(self.options.poll_interval) {
                Ok(Signal::Changed) => {
                    if !self.settle(signals) {
                        return;
                    }
                    self.reload_and_log();
                }
                Ok(Signal::ReloadNow(reply)) => {
                    let _ = reply.send(self.reload());
                }
                Err(RecvTimeoutError::Timeout) => {
                    if Stamp::of(&self.cert_path, &self.key_path) != self.seen {
                        self.reload_and_log();
                    }
                }
                Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Waits until no event has arrived for `settle`, but no longer than a few settle periods
    /// in all: a directory that never goes quiet must not stop reloading. False means stop.
    fn settle(&mut self, signals: &Receiver<Signal>) -> bool {
        let deadline = Instant::now() + self.options.settle * 10;
        while Instant::now() < deadline {
            match signals.recv_timeout(self.options.settle) {
                Ok(Signal::Changed) => {}
                Ok(Signal::ReloadNow(reply)) => {
                    let _ = reply.send(self.reload());
                }
                Err(RecvTimeoutError::Timeout) => return true,
                Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
        true
    }

    fn reload_and_log(&mut self) {
        let outcome = self.reload();
        let (cert, key) = (self.cert_path.display(), self.key_path.display());
        match outcome {
            Ok(Reload::Replaced) => tracing::info!(%cert, %key, "serving certificate reloaded"),
            Ok(Reload::Unchanged) => tracing::debug!(%cert, %key, "serving certificate unchanged"),
            Err(error) => tracing::error!(%error, "keeping the current serving certificate"),
        }
    }

    fn reload(&mut self) -> Result<Reload, TlsError> {
        // The stamp is taken before reading: a change that lands during the read shows at the
        // next poll instead of being taken for what was read.
        self.seen = Stamp::of(&self.cert_path, &self.key_path);
        let pair = read_pair(&self.cert_path, &self.key_path)?;
        if pair == self.served {
            return Ok(Reload::Unchanged);
        }
        self.certificates.replace(parse_pair(&pair, &self.cert_path, &self.key_path)?);
        self.served = pair;
        Ok(Reload::Replaced)
    }
}

impl ReloadHandle {
    /// The certificate new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.certificates.current()
    }

    /// Reads the files now (for a SIGHUP, say) and says what changed. Blocks until the
    /// reloading thread has read them: call it from a blocking context.
    pub fn reload_now(&self) -> Result<Reload, TlsError> {
        let (reply, answer) = mpsc::channel();
        self.signals.send(Signal::ReloadNow(reply)).map_err(|_| TlsError::ReloaderStopped)?;
        answer.recv().map_err(|_| TlsError::ReloaderStopped)?
    }
}

impl Drop for ReloadHandle {
    fn drop(&mut self) {
        let _ = self.signals.send(Signal::Stop);
    }
}

/// Watches the directories holding the files; `None` (logged) when the platform refuses, in
/// which case polling alone keeps the certificate fresh.
fn watch_directories(cert_path: &Path, key_path: &Path, signals: Sender<Signal>) -> Option<RecommendedWatcher> {
    let names: Vec<_> = [cert_path, key_path].iter().filter_map(|p| p.file_name()).map(|n| n.to_owned()).collect();
    let handler = move |event: notify::Result<Event>| {
        // An error (a queue overflow, say) may hide a change: look at the files anyway.
        if event.as_ref().map_or(true, |event| is_relevant(event, &names)) {
            let _ = signals.send(Signal::Changed);
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "cannot watch the certificate files; polling them instead");
            return None;
        }
    };
    let mut directories = vec![directory_of(cert_path), directory_of(key_path)];
    directories.dedup();
    for directory in directories {
        if let Err(error) = watcher.watch(&directory, RecursiveMode::NonRecursive) {
            tracing::warn!(%error, directory = %directory.display(), "cannot watch; polling instead");
        }
    }
    Some(watcher)
}

fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// An event that may have changed the pair: anything touching the files themselves, or the
/// `..data` symlink and the `..<timestamp>` directories of a Secret volume. Opening and reading,
/// which the reload itself does, are not changes.
fn is_relevant(event: &Event, names: &[std::ffi::OsString]) -> bool {
    if matches!(event.kind, EventKind::Access(kind) if kind != AccessKind::Close(AccessMode::Write)) {
        return false;
    }
    event.paths.is_empty()
        || event
            .paths
            .iter()
            .filter_map(|p| p.file_name())
            .any(|name| names.iter().any(|watched| watched == name) || name.to_string_lossy().starts_with(".."))
}

/// What the two paths lead to: the file each resolves to (a Secret volume update changes the
/// target of the `..data` symlink), its inode, size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp([Option<FileStamp>; 2]);

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    target: PathBuf,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(cert_path: &Path, key_path: &Path) -> Self {
        Self([FileStamp::of(cert_path), FileStamp::of(key_path)])
    }
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            target: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()),
            inode: metadata.ino(),
            len: metadata.len(),
            modified: metadata.modified().ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RenameMode};

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn secret_volume_swaps_and_file_writes_are_changes_but_reads_are_not() {
        let names = vec!["tls.crt".into(), "tls.key".into()];
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(is_relevant(&event(renamed, "/etc/certs/..data"), &names));
        assert!(is_relevant(&event(EventKind::Create(CreateKind::Folder), "/etc/certs/..2026_11_25"), &names));
        assert!(is_relevant(&event(EventKind::Access(AccessKind::Close(AccessMode::Write)), "/c/tls.key"), &names));
        assert!(!is_relevant(&event(EventKind::Access(AccessKind::Open(AccessMode::Any)), "/c/tls.crt"), &names));
        assert!(!is_relevant(&event(EventKind::Create(CreateKind::File), "/c/unrelated.log"), &names));
    }

    #[test]
    fn a_file_in_the_current_directory_is_watched_there() {
        assert_eq!(directory_of(Path::new("tls.crt")), PathBuf::from("."));
        assert_eq!(directory_of(Path::new("/etc/certs/tls.crt")), PathBuf::from("/etc/certs"));
    }
}
