//! Reading the `cronjob_*` series that cronpush's pushers push (DESIGN.md "Grouping key and
//! metrics"): their values, their labels, and how each main container of a run ended. The board
//! reads a group's kept series with these.

use serde::Serialize;

use crate::exposition::text_write::single_value;
use crate::proto::client::{Metric, MetricType};

/// How one main container of a run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerEnd {
    pub container: String,
    /// -1 when the sidecar could not learn it.
    pub exit_code: f64,
    pub reason: String,
    pub signal: String,
}

/// A series' value, when it is a number: pushed times and codes are never NaN or infinite.
pub fn value(ty: MetricType, metric: &Metric) -> Option<f64> {
    single_value(ty, metric).filter(|v| v.is_finite())
}

pub fn label<'a>(metric: &'a Metric, name: &str) -> Option<&'a str> {
    metric.label.iter().find(|l| l.name() == name).map(|l| l.value())
}

/// Each main container of a run, from its `cronjob_last_exit_code` series (of type `ty`) and
/// its `cronjob_last_termination_info` series, which add the reason and the signal.
pub fn container_ends(ty: MetricType, codes: &[Metric], terminations: &[Metric]) -> Vec<ContainerEnd> {
    codes
        .iter()
        .filter_map(|code| {
            let container = label(code, "container").unwrap_or_default().to_string();
            let termination = terminations.iter().find(|t| label(t, "container").unwrap_or_default() == container);
            let detail = |name| termination.and_then(|t| label(t, name)).unwrap_or_default().to_string();
            Some(ContainerEnd {
                exit_code: value(ty, code)?,
                reason: detail("reason"),
                signal: detail("signal"),
                container,
            })
        })
        .collect()
}
