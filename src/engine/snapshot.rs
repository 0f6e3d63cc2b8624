//! [`Snapshot`]: everything one evaluation found, published whole and
//! immutable for `/metrics` and the status API.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::signals::{AccuracyResult, ClassMix};
use super::summary::RejectedHistograms;
use crate::alerting::AlertSummary;
use crate::detectors::{AlertKind, Detection, Explanation};
use crate::model::{ModelId, SignalSummary};

/// The most alerts a [`Snapshot`] lists (the counts cover all of them).
pub const STATUS_ALERT_LIMIT: usize = 1000;

/// One detector's outcome for one model signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectorOutcome {
    /// Shared by every outcome of the detector.
    pub detector: Arc<str>,
    pub kind: AlertKind,
    /// The detection, or why none could be made.
    #[serde(flatten)]
    pub result: DetectorResult,
    /// What moved: only for a drift verdict or a detector with an alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Arc<Explanation>>,
}

/// A detection or the reason there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DetectorResult {
    Detection(Detection),
    Error { error: String },
}

/// One signal of one model in one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalResult {
    /// Statistics of the current window, when it could be read.
    pub current: Option<SignalSummary>,
    pub reference_samples: Option<f64>,
    /// Why a window could not be used, if one could not.
    pub error: Option<String>,
    pub detectors: Vec<DetectorOutcome>,
    /// When these results were computed (older than the snapshot when the
    /// signal's query failed and the previous results were kept).
    pub evaluated_at: DateTime<Utc>,
    /// A class signal's shares. Boxed, as `accuracy`: a snapshot holds one
    /// map of signals per model, whose nodes have room for eleven results
    /// each, so every byte of a result counts eleven times per model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_mix: Option<Box<ClassMix>>,
    /// A confidence signal's estimated (and realized) accuracy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<Box<AccuracyResult>>,
}

/// How a source fared in the last evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceStatus {
    pub up: bool,
    /// The failures of the last evaluation (empty when up).
    pub errors: Vec<String>,
    pub last_success: Option<DateTime<Utc>>,
    /// The model histograms the last evaluation rejected, one entry per
    /// reason with its count and first case (each model's own message is
    /// in its signal's `error`).
    pub rejected: Vec<RejectedHistograms>,
    /// How many PromQL warnings the last evaluation's answers carried.
    pub warnings_total: usize,
    /// The first of them (at most [`crate::sources::LISTED_WARNINGS`]).
    pub warnings: Vec<String>,
    /// Each signal's reference: its evaluation time and age, and why it is
    /// older than due when a refresh failed.
    pub references: Vec<crate::sources::ReferenceStatus>,
}

/// Everything the last evaluation found: what `/metrics` and the status API
/// serve. Immutable once published.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// The evaluation time used by every query of the evaluation.
    pub timestamp: Option<DateTime<Utc>>,
    pub duration_seconds: f64,
    pub evaluations: u64,
    #[serde(serialize_with = "serialize_models")]
    pub models: BTreeMap<ModelId, BTreeMap<String, SignalResult>>,
    pub sources: BTreeMap<String, SourceStatus>,
    /// Pending and firing alerts after this evaluation, firing first; at
    /// most [`STATUS_ALERT_LIMIT`] of them.
    pub alerts: Vec<AlertSummary>,
    /// How many alerts are pending and firing (all of them, listed or not).
    pub alerts_pending: usize,
    pub alerts_firing: usize,
    /// Label names of each source's model keys, in order.
    #[serde(skip)]
    pub group_by: BTreeMap<String, Vec<String>>,
}

fn serialize_models<S: serde::Serializer>(
    models: &BTreeMap<ModelId, BTreeMap<String, SignalResult>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(
        models
            .iter()
            .map(|(id, signals)| ModelEntry::new(id, signals)),
    )
}

/// One model as the status API lists it: its source, its labels and its
/// signals' results.
#[derive(Serialize)]
pub struct ModelEntry<'a> {
    source: &'a str,
    labels: BTreeMap<&'a str, &'a str>,
    signals: &'a BTreeMap<String, SignalResult>,
}

impl<'a> ModelEntry<'a> {
    pub fn new(id: &'a ModelId, signals: &'a BTreeMap<String, SignalResult>) -> ModelEntry<'a> {
        ModelEntry {
            source: &id.source,
            labels: id
                .model
                .0
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            signals,
        }
    }
}
