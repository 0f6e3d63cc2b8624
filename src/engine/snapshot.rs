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

/// One model's signal results by signal name: a short list in name order.
/// A model has one to a few signals, and a snapshot holds one of these per
/// model (10,000 at a time, twice while the next evaluation is built): a
/// `BTreeMap` node has room for eleven results, about 2 KB per model
/// whatever its signals, where this holds only its own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalResults(Vec<(String, SignalResult)>);

/// An entry of [`SignalResults`] as its iterator yields it.
type SignalEntry<'a> = (&'a String, &'a SignalResult);

impl SignalResults {
    /// Empty, with room for `signals` results.
    pub fn with_capacity(signals: usize) -> SignalResults {
        SignalResults(Vec::with_capacity(signals))
    }

    /// The result of `signal`.
    pub fn get(&self, signal: &str) -> Option<&SignalResult> {
        self.position(signal).ok().map(|at| &self.0[at].1)
    }

    /// Whether there is a result for `signal`.
    pub fn contains_key(&self, signal: &str) -> bool {
        self.position(signal).is_ok()
    }

    /// Sets the result of `signal`, returning the one it replaces.
    pub fn insert(&mut self, signal: String, result: SignalResult) -> Option<SignalResult> {
        match self.position(&signal) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, result)),
            Err(at) => {
                self.0.insert(at, (signal, result));
                None
            }
        }
    }

    /// The results in signal-name order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = SignalEntry<'_>> + ExactSizeIterator {
        self.0.iter().map(|(signal, result)| (signal, result))
    }

    /// The signal names, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(signal, _)| signal)
    }

    /// The results, in signal-name order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &SignalResult> + ExactSizeIterator {
        self.0.iter().map(|(_, result)| result)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, signal: &str) -> Result<usize, usize> {
        self.0
            .binary_search_by(|(name, _)| name.as_str().cmp(signal))
    }
}

impl<'a> IntoIterator for &'a SignalResults {
    type Item = SignalEntry<'a>;
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, SignalResult)>,
        fn(&'a (String, SignalResult)) -> SignalEntry<'a>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(signal, result)| (signal, result))
    }
}

impl FromIterator<(String, SignalResult)> for SignalResults {
    fn from_iter<I: IntoIterator<Item = (String, SignalResult)>>(results: I) -> SignalResults {
        let mut map = SignalResults::default();
        for (signal, result) in results {
            map.insert(signal, result);
        }
        map
    }
}

impl<const N: usize> From<[(String, SignalResult); N]> for SignalResults {
    fn from(results: [(String, SignalResult); N]) -> SignalResults {
        results.into_iter().collect()
    }
}

/// As a JSON object by signal name, as the map it replaces was.
impl Serialize for SignalResults {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
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
    pub models: BTreeMap<ModelId, SignalResults>,
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
    models: &BTreeMap<ModelId, SignalResults>,
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
    signals: &'a SignalResults,
}

impl<'a> ModelEntry<'a> {
    pub fn new(id: &'a ModelId, signals: &'a SignalResults) -> ModelEntry<'a> {
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
