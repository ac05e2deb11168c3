//! Protobuf types generated at build time from `proto/` (see build.rs).
//!
//! `client` is the Prometheus exposition model that pushes and scrapes speak; the gateway keeps
//! families in this very shape, as the reference Pushgateway does. `store` is the format of
//! the gateway's store file, built on the same types.

#![allow(clippy::all, missing_docs)]

pub mod io {
    pub mod prometheus {
        pub mod client {
            include!(concat!(env!("OUT_DIR"), "/io.prometheus.client.rs"));
        }
    }
}

pub mod cronpush {
    pub mod store {
        include!(concat!(env!("OUT_DIR"), "/cronpush.store.rs"));
    }
}

pub use cronpush::store;
pub use io::prometheus::client;
