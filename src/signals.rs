//! The PromQL of a monitor's signals, and turning query answers into
//! per-model histograms.
//!
//! One query per histogram and window returns every model at once: bucket
//! counts grouped by the monitor's `group_by` labels plus `le`, with the
//! window's `_sum` joined in under `le="sum"`. The number of queries per
//! cycle therefore does not grow with the number of models.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::{MonitorConfig, ReferenceConfig};
use crate::promql::Sample;
use crate::stats::{Histogram, HistogramError};

/// Identifies a model: the values of the monitor's `group_by` labels, in
/// `group_by` order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ModelKey(pub Vec<(String, String)>);

impl ModelKey {
    /// The value of one label, if it is part of the key.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Which window a query is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowRole {
    Current,
    Reference,
}

impl WindowRole {
    pub fn as_str(self) -> &'static str {
        match self {
            WindowRole::Current => "current",
            WindowRole::Reference => "reference",
        }
    }
}

/// The grouped query for one histogram and window of a monitor, or `None`
/// for a reference that comes from a baseline file.
pub fn histogram_query(
    monitor: &MonitorConfig,
    histogram: &str,
    role: WindowRole,
) -> Option<String> {
    todo!("{monitor:?} {histogram} {role:?}")
}

/// Why one model's answer could not become a histogram.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignalError {
    #[error("series without a valid le label: {0:?}")]
    BadLe(String),
    #[error(transparent)]
    Histogram(#[from] HistogramError),
}

/// Groups the samples of a histogram query by model.
pub fn group_histograms(
    samples: Vec<Sample>,
    group_by: &[String],
) -> BTreeMap<ModelKey, Result<Histogram, SignalError>> {
    todo!("{samples:?} {group_by:?}")
}

#[allow(dead_code)]
fn _uses(_: &ReferenceConfig, _: DateTime<Utc>) {}
