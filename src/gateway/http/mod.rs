//! The HTTP edge: the only room that speaks HTTP (with server.rs, which binds the ports, and
//! web/, which wraps every route in the web configuration's basic auth and headers).
//!
//! - `router.rs`: which handler a request reaches, a pure function of method and path;
//! - `handlers.rs`: the handlers: push, delete and wipe change the store and wait for the store
//!   file; scrape, API and pages answer with a view;
//! - `responses.rs`: how answers look: errors, JSON, pages, redirects;
//! - `body.rs`: a push body read within the limit and decoded (gzip, snappy);
//! - `error.rs`: why a request is not done, typed until the edge, each with its status and text.
//!
//! Requests come in here and answers go out with the reference's status codes, headers and
//! bodies; the store, the views and the store file know nothing of HTTP.

// The route table is pure, and needed without the `roles` feature (the fuzz targets).
pub mod router;

#[cfg(feature = "roles")]
mod body;
#[cfg(feature = "roles")]
mod error;
#[cfg(feature = "roles")]
pub mod handlers;
#[cfg(feature = "roles")]
mod responses;

#[cfg(feature = "roles")]
pub use handlers::app;

#[cfg(test)]
mod tests;
