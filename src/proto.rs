//! Protobuf types generated at build time from `proto/` (see build.rs).
//!
//! `client` is the Prometheus exposition model that pushes and scrapes speak; the gateway keeps
//! families in this very shape, as the reference Pushgateway does. `snapshot` is our own
//! persistence format, built on the same types.

#![allow(clippy::all, missing_docs)]

pub mod io {
    pub mod prometheus {
        pub mod client {
            include!(concat!(env!("OUT_DIR"), "/io.prometheus.client.rs"));
        }
    }
}

pub mod cronpush {
    pub mod snapshot {
        include!(concat!(env!("OUT_DIR"), "/cronpush.snapshot.rs"));
    }
}

pub use cronpush::snapshot;
pub use io::prometheus::client;
