//! The certificate every new handshake gets, replaceable while connections are open.

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Holds the current serving certificate. A handshake clones the `Arc` under a read lock held
/// for a few nanoseconds; connections already established keep the certificate they were
/// given, so replacing it affects only new handshakes.
#[derive(Debug)]
pub struct SwappableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl SwappableCert {
    pub fn new(certified: CertifiedKey) -> Self {
        Self { current: RwLock::new(Arc::new(certified)) }
    }

    /// The certificate the next handshake gets.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, certified: CertifiedKey) {
        let fresh = Arc::new(certified);
        // The old value is dropped after the lock is released, not while a handshake waits.
        let _old = std::mem::replace(&mut *self.current.write().unwrap_or_else(|e| e.into_inner()), fresh);
    }
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
