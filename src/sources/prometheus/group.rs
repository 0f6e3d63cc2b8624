//! [`HistogramGrouper`]: grouping a query's answer into one cumulative
//! histogram per model.
//!
//! The grouper is fed sample by sample as the answer's body arrives (it is
//! a [`VectorSink`]): a model's key is copied once, each `le` spelling
//! parsed once.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::BuildHasher;

use super::query::{START_LE, SUM_LE};
use super::{PromError, VectorSink};
use crate::model::ModelKey;
use crate::sources::parse_le;
use crate::stats::{Histogram, HistogramError};

/// One model's window as a query answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedWindow {
    /// The histogram, or why the answer makes none.
    pub histogram: Result<Histogram, SignalError>,
    /// How many of the model's bucket series had a sample at or before the
    /// window's start (the `le="start"` sample); 0 when none had: the
    /// series are younger than the window.
    pub series_at_start: f64,
}

/// Why one model's answer could not become a histogram.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignalError {
    #[error("series without a valid le label: {0:?}")]
    BadLe(String),
    /// Two series of one model with the very same `le` text: Prometheus
    /// never answers so, so the answer is not what the query asked for.
    #[error("duplicate le label {0:?}")]
    DuplicateLe(String),
    #[error(transparent)]
    Histogram(#[from] HistogramError),
}

impl SignalError {
    /// The kind of problem, without this model's details: what logs and
    /// the status API count rejected models by.
    pub fn reason(&self) -> &'static str {
        match self {
            SignalError::BadLe(_) => "series without a valid le label",
            SignalError::DuplicateLe(_) => "duplicate le label",
            SignalError::Histogram(error) => error.reason(),
        }
    }
}

/// The most series and models a [`HistogramGrouper`] takes from one answer
/// (`prometheus.max_series` and `prometheus.max_models`). The default has
/// no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerLimits {
    pub series: usize,
    pub models: usize,
}

impl Default for AnswerLimits {
    fn default() -> Self {
        AnswerLimits {
            series: usize::MAX,
            models: usize::MAX,
        }
    }
}

/// The label names a [`HistogramGrouper`] reads from each sample: the
/// `group_by` labels, then `le`.
pub fn grouper_labels(group_by: &[String]) -> Vec<&str> {
    group_by.iter().map(String::as_str).chain(["le"]).collect()
}

/// Groups the samples of a histogram query by model as they are decoded
/// ([`super::VectorStream`] or [`super::parse_vector_into`] with
/// [`grouper_labels`]).
///
/// A model is identified by its `group_by` label values; a missing label
/// counts as the empty string, as in Prometheus. Each model's buckets are
/// sorted by bound, the `+Inf` bucket last, and the `le="sum"` sample becomes
/// [`Histogram::sum`]. A problem with one model (no `+Inf` bucket, an
/// unparsable `le`, the same `le` text twice) is that model's error only;
/// one bound spelt two ways (`1` and `1.0`) is one bucket. Non-finite
/// counts are passed through: [`crate::stats::Distribution`] rejects them.
///
/// A model's key is copied once, when its first sample arrives; every `le`
/// spelling is parsed once per answer.
///
/// Past its [`AnswerLimits`] the grouper keeps nothing more and reports the
/// answer as too large through [`VectorSink::overflow`], so the decoder
/// stops reading: memory never grows past the limits.
#[derive(Default)]
pub struct HistogramGrouper {
    budget: AnswerBudget,
    /// Hashes the `group_by` values of a sample (not SipHash: the keys come
    /// from our own Prometheus, and this runs once per sample).
    hasher: hashbrown::DefaultHashBuilder,
    /// Slots in `models`, found by the hash of their key.
    index: hashbrown::HashTable<usize>,
    models: Vec<(Box<[Box<str>]>, ModelBuckets)>,
    /// The slot of the previous sample: answers often list a model's
    /// buckets together.
    last: Option<usize>,
    /// Every `le` spelling met, read once.
    les: Vec<(Box<str>, Le)>,
    le_index: hashbrown::HashTable<usize>,
    /// The most buckets a model has had so far, to size the next one's.
    widest: usize,
}

impl VectorSink for HistogramGrouper {
    /// `labels` holds the `group_by` values, then `le`.
    fn sample(&mut self, labels: &[Cow<'_, str>], value: f64) {
        if !self.budget.take_series() {
            return;
        }
        let Some((le, key)) = labels.split_last() else {
            return;
        };
        let slot = match self.last {
            Some(slot) if same_key(&self.models[slot].0, key) => slot,
            _ => {
                let hash = self.hasher.hash_one(key);
                let models = &self.models;
                match self
                    .index
                    .find(hash, |&slot| same_key(&models[slot].0, key))
                {
                    Some(&slot) => slot,
                    None if !self.budget.take_model(self.models.len()) => return,
                    None => {
                        let slot = self.models.len();
                        let owned = key.iter().map(|value| Box::from(value.as_ref())).collect();
                        self.models
                            .push((owned, ModelBuckets::with_capacity(self.widest)));
                        let (models, hasher) = (&self.models, &self.hasher);
                        self.index
                            .insert_unique(hash, slot, |&slot| hasher.hash_one(&models[slot].0));
                        slot
                    }
                }
            }
        };
        self.last = Some(slot);
        let le = self.le(le);
        let buckets = &mut self.models[slot].1;
        buckets.add(le, &self.les[le], value);
        self.widest = self.widest.max(buckets.buckets.len());
    }

    fn overflow(&self) -> Option<PromError> {
        self.budget.overflow()
    }
}

/// What a grouper has taken of its [`AnswerLimits`], and the limit it
/// passed, once it has.
#[derive(Debug, Default)]
pub(super) struct AnswerBudget {
    limits: AnswerLimits,
    /// Samples received so far.
    series: usize,
    exceeded: Option<(&'static str, usize)>,
}

impl AnswerBudget {
    pub(super) fn new(limits: AnswerLimits) -> AnswerBudget {
        AnswerBudget {
            limits,
            ..AnswerBudget::default()
        }
    }

    /// Counts one more sample: false once a limit is passed, when the
    /// sample must be dropped.
    pub(super) fn take_series(&mut self) -> bool {
        if self.exceeded.is_some() {
            return false;
        }
        self.series += 1;
        if self.series > self.limits.series {
            self.exceeded = Some(("series", self.limits.series));
            return false;
        }
        true
    }

    /// Whether a new model fits beside the `models` already kept; records
    /// the overflow when it does not.
    pub(super) fn take_model(&mut self, models: usize) -> bool {
        if models >= self.limits.models {
            self.exceeded = Some(("models", self.limits.models));
            return false;
        }
        true
    }

    /// The answer's error once a limit is passed.
    pub(super) fn overflow(&self) -> Option<PromError> {
        self.exceeded
            .map(|(what, limit)| PromError::TooMany { what, limit })
    }
}

/// Whether a stored key holds the sample's `group_by` values.
fn same_key(stored: &[Box<str>], sample: &[Cow<'_, str>]) -> bool {
    stored.len() == sample.len() && stored.iter().zip(sample).all(|(a, b)| **a == **b)
}

impl HistogramGrouper {
    /// A grouper that takes at most `limits` from an answer.
    pub fn with_limits(limits: AnswerLimits) -> HistogramGrouper {
        HistogramGrouper {
            budget: AnswerBudget::new(limits),
            ..HistogramGrouper::default()
        }
    }

    /// The index of an `le` spelling in `les`, parsed the first time.
    fn le(&mut self, le: &str) -> usize {
        let hash = self.hasher.hash_one(le);
        let les = &self.les;
        if let Some(&index) = self.le_index.find(hash, |&index| *les[index].0 == *le) {
            return index;
        }
        let index = self.les.len();
        let kind = if le == SUM_LE {
            Le::Sum
        } else if le == START_LE {
            Le::Start
        } else {
            parse_le(le).map_or(Le::Bad, Le::Bound)
        };
        self.les.push((Box::from(le), kind));
        let (les, hasher) = (&self.les, &self.hasher);
        self.le_index
            .insert_unique(hash, index, |&index| hasher.hash_one(&*les[index].0));
        index
    }

    /// Every model's window, keyed by `group_by` values.
    pub fn finish(self, group_by: &[String]) -> BTreeMap<ModelKey, GroupedWindow> {
        self.models
            .into_iter()
            .filter(|(_, buckets)| !buckets.only_start())
            .map(|(values, buckets)| {
                let key = ModelKey(
                    group_by
                        .iter()
                        .zip(values)
                        .map(|(name, value)| (name.clone(), value.into_string()))
                        .collect(),
                );
                (key, buckets.finish(&self.les))
            })
            .collect()
    }
}

/// What an `le` label value says.
#[derive(Clone, Copy)]
enum Le {
    /// `le="sum"`: the window's `_sum`, joined in by the query.
    Sum,
    /// `le="start"`: the model's series at the window's start.
    Start,
    Bound(f64),
    /// Neither a number, `+Inf` nor `sum`.
    Bad,
}

/// One model's samples while they are being collected.
#[derive(Default)]
struct ModelBuckets {
    /// (bound, count, index of the `le` spelling) of each bucket sample.
    buckets: Vec<(f64, f64, usize)>,
    sum: Option<f64>,
    /// The `le="start"` sample.
    start: Option<f64>,
    /// The first problem met; later samples of the model are ignored.
    error: Option<SignalError>,
}

impl ModelBuckets {
    fn with_capacity(buckets: usize) -> ModelBuckets {
        ModelBuckets {
            buckets: Vec::with_capacity(buckets),
            ..ModelBuckets::default()
        }
    }

    fn add(&mut self, spelling: usize, (le, kind): &(Box<str>, Le), value: f64) {
        if self.error.is_some() {
            return;
        }
        match kind {
            Le::Sum => {
                if self.sum.is_some() {
                    self.error = Some(SignalError::DuplicateLe(le.to_string()));
                }
                self.sum = Some(value);
            }
            Le::Start => {
                if self.start.is_some() {
                    self.error = Some(SignalError::DuplicateLe(le.to_string()));
                }
                self.start = Some(value);
            }
            Le::Bound(bound) => self.buckets.push((*bound, value, spelling)),
            Le::Bad => self.error = Some(SignalError::BadLe(le.to_string())),
        }
    }

    /// Whether the model's only sample is `le="start"`.
    fn only_start(&self) -> bool {
        self.start.is_some()
            && self.buckets.is_empty()
            && self.sum.is_none()
            && self.error.is_none()
    }

    /// The model's window; `les` names the spellings of its buckets.
    fn finish(self, les: &[(Box<str>, Le)]) -> GroupedWindow {
        let series_at_start = self.start.unwrap_or(0.0);
        GroupedWindow {
            histogram: self.histogram(les),
            series_at_start,
        }
    }

    /// The model's histogram; `les` names the spellings of its buckets.
    fn histogram(mut self, les: &[(Box<str>, Le)]) -> Result<Histogram, SignalError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        // By bound, then spelling: the same text twice ends up adjacent.
        self.buckets
            .sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
        if let Some(pair) = self.buckets.windows(2).find(|pair| pair[0].2 == pair[1].2) {
            return Err(SignalError::DuplicateLe(les[pair[0].2].0.to_string()));
        }
        // One bound spelt two ways (`le="1"` and `le="1.0"`, as client
        // libraries of different ages write it) is one bucket: pods of both
        // kinds counted into it, so the counts add up.
        self.buckets.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 += later.1;
            }
            same
        });
        match self.buckets.last() {
            Some((bound, _, _)) if *bound == f64::INFINITY => {}
            _ => return Err(SignalError::Histogram(HistogramError::MissingInfBucket)),
        }
        let bounds = self.buckets[..self.buckets.len() - 1]
            .iter()
            .map(|(bound, _, _)| *bound)
            .collect();
        let cumulative = self.buckets.iter().map(|(_, count, _)| *count).collect();
        Ok(Histogram {
            bounds,
            cumulative,
            sum: self.sum,
        })
    }
}

#[cfg(test)]
mod tests;
