//! The exposition formats: how metric families are read from a push and written to a scrape.
//! The model itself is the protobuf `MetricFamily` (see `crate::proto`), as in the reference.

pub mod escaping;
pub mod families;
pub mod float;
pub mod names;
pub mod protobuf;
pub mod text_parse;
pub mod text_write;
