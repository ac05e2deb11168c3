//! A family as a group keeps it: compact, and already in the two forms a scrape sends.
//!
//! A decoded protobuf `Metric` costs about a kilobyte (every optional sub-message sits inline)
//! plus an allocation per label string. A group's family instead keeps its sample lines as
//! text and its metrics as encoded protobuf `metric` records, one allocation each, about
//! 130 bytes a series. A text scrape copies the text, a protobuf scrape the records; the rare
//! readers that need the model (the JSON API, saving, a duplicate check's confirmation) decode.

use prost::Message;

use super::clock::Nanos;
use crate::exposition::{escaping, text_write};
use crate::proto::client::{Metric, MetricFamily, MetricType};

// The two families every group has, which the gateway writes itself from the group's push times
// rather than keeping them: a pushed family of either name is dropped (prepared_push.rs). Here,
// beside the families a group keeps, so that preparing a push does not reach into the store for
// them.
pub const PUSH_TIME: &str = "push_time_seconds";
pub const PUSH_FAILURE_TIME: &str = "push_failure_time_seconds";
pub const PUSH_TIME_HELP: &str = "Last Unix time when changing this group in the Pushgateway succeeded.";
pub const PUSH_FAILURE_TIME_HELP: &str = "Last Unix time when changing this group in the Pushgateway failed.";

pub struct StoredFamily {
    ty: MetricType,
    help: String,
    /// `MetricFamily.unit`, which only the protobuf scrape carries.
    unit: String,
    /// When the write that set this family happened.
    pub written: Nanos,
    text: String,
    /// The metrics as `repeated Metric metric = 4` records of a `MetricFamily` message.
    records: Vec<u8>,
    /// The series' hashes in the store's series index, to take them out again.
    hashes: Box<[u64]>,
    /// Whether a name in it is one the legacy rules refuse, which a scrape may have to write
    /// escaped rather than as kept (exposition/escaping.rs).
    needs_escaping: bool,
}

impl StoredFamily {
    /// Keeps a pushed family that has passed the store's checks; `hashes` are its series'.
    pub fn new(family: &MetricFamily, hashes: Vec<u64>, written: Nanos) -> StoredFamily {
        // Sized for a typical series up front, so that the buffers do not grow step by step.
        let mut text = String::with_capacity(96 * family.metric.len());
        let mut records = Vec::with_capacity(96 * family.metric.len());
        for metric in &family.metric {
            text_write::write_metric(&mut text, family.name(), family.r#type(), metric);
            prost::encoding::message::encode(4, metric, &mut records);
        }
        text.shrink_to_fit();
        records.shrink_to_fit();
        StoredFamily {
            ty: family.r#type(),
            help: family.help().to_string(),
            unit: family.unit().to_string(),
            written,
            text,
            records,
            hashes: hashes.into_boxed_slice(),
            needs_escaping: escaping::needs_escaping(family),
        }
    }

    pub fn needs_escaping(&self) -> bool {
        self.needs_escaping
    }

    pub fn ty(&self) -> MetricType {
        self.ty
    }

    pub fn help(&self) -> &str {
        &self.help
    }

    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// The sample lines in text format 0.0.4.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The metrics as encoded `MetricFamily.metric` records.
    pub fn records(&self) -> &[u8] {
        &self.records
    }

    pub fn hashes(&self) -> &[u64] {
        &self.hashes
    }

    pub fn series_count(&self) -> usize {
        self.hashes.len()
    }

    /// The metrics, decoded.
    pub fn metrics(&self) -> Vec<Metric> {
        MetricFamily::decode(&self.records[..]).map(|f| f.metric).unwrap_or_default()
    }

    /// The whole family, encoded as a `MetricFamily` message, without decoding its metrics.
    pub fn encode(&self, name: &str) -> Vec<u8> {
        let header = MetricFamily {
            name: Some(name.to_string()),
            help: (!self.help.is_empty()).then(|| self.help.clone()),
            r#type: Some(self.ty as i32),
            metric: Vec::new(),
            unit: (!self.unit.is_empty()).then(|| self.unit.clone()),
        };
        let mut bytes = header.encode_to_vec();
        bytes.extend_from_slice(&self.records);
        bytes
    }

    /// The whole family, decoded.
    pub fn to_family(&self, name: &str) -> MetricFamily {
        MetricFamily {
            name: Some(name.to_string()),
            help: (!self.help.is_empty()).then(|| self.help.clone()),
            r#type: Some(self.ty as i32),
            metric: self.metrics(),
            unit: (!self.unit.is_empty()).then(|| self.unit.clone()),
        }
    }
}
