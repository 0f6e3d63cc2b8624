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
    /// Every bucket sample as received: (model slot, `le` spelling, count).
    /// One growing list rather than one per model: an answer lists every
    /// model's first bucket before any model's second, so per-model lists
    /// would each grow (and move) several times.
    samples: Vec<(u32, u32, f64)>,
    /// The slot of the previous sample: answers often list a model's
    /// buckets together.
    last: Option<usize>,
    /// Every `le` spelling met, read once.
    les: Vec<(Box<str>, Le)>,
    le_index: hashbrown::HashTable<usize>,
    /// The `le` spelling of the previous sample.
    last_le: Option<usize>,
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
        // Prometheus sorts an answer's series by `le` before the model
        // labels, so a model's next sample usually follows every other
        // model's: the slot after the previous one (wrapping) is tried
        // before hashing, and the previous one for answers in model order.
        let next = self.last.map_or(0, |slot| slot + 1);
        let next = if next < self.models.len() { next } else { 0 };
        let slot = match self.last {
            Some(slot) if same_key(&self.models[slot].0, key) => slot,
            _ if self
                .models
                .get(next)
                .is_some_and(|(stored, _)| same_key(stored, key)) =>
            {
                next
            }
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
                        self.models.push((owned, ModelBuckets::default()));
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
        let model = &mut self.models[slot].1;
        if model.add(&self.les[le], value) {
            // Slots and spellings are far below 2^32: each costs an answer
            // line of tens of bytes, and answers are capped.
            self.samples.push((slot as u32, le as u32, value));
        }
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
        // Consecutive samples mostly share their `le` (the answer's order).
        if let Some(last) = self.last_le
            && *self.les[last].0 == *le
        {
            return last;
        }
        let index = self.le_slot(le);
        self.last_le = Some(index);
        index
    }

    /// [`HistogramGrouper::le`] by hash.
    fn le_slot(&mut self, le: &str) -> usize {
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
        // Each model's bucket samples together, in the order received (a
        // counting sort by slot): (bound, count, spelling).
        let mut next = Vec::with_capacity(self.models.len());
        let mut total = 0;
        for (_, model) in &self.models {
            next.push(total);
            total += model.buckets;
        }
        let mut ordered = vec![(0.0, 0.0, 0); total];
        for (slot, spelling, count) in self.samples {
            let (slot, spelling) = (slot as usize, spelling as usize);
            let Le::Bound(bound) = self.les[spelling].1 else {
                continue;
            };
            ordered[next[slot]] = (bound, count, spelling);
            next[slot] += 1;
        }
        let mut windows = Vec::with_capacity(self.models.len());
        let mut rest = ordered.as_mut_slice();
        for (values, model) in self.models {
            let (buckets, after) = rest.split_at_mut(model.buckets);
            rest = after;
            if model.only_start() {
                continue;
            }
            let key = ModelKey(
                group_by
                    .iter()
                    .zip(values)
                    .map(|(name, value)| (name.clone(), value.into_string()))
                    .collect(),
            );
            windows.push((key, model.finish(buckets, &self.les)));
        }
        windows.into_iter().collect()
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

/// One model's samples while they are being collected; its bucket samples
/// are in the grouper's list.
#[derive(Default)]
struct ModelBuckets {
    /// How many bucket samples it has in the grouper's list.
    buckets: usize,
    sum: Option<f64>,
    /// The `le="start"` sample.
    start: Option<f64>,
    /// The first problem met; later samples of the model are ignored.
    error: Option<SignalError>,
}

impl ModelBuckets {
    /// Takes a sample: true for a bucket sample, which the grouper keeps
    /// in its list.
    fn add(&mut self, (le, kind): &(Box<str>, Le), value: f64) -> bool {
        if self.error.is_some() {
            return false;
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
            Le::Bound(_) => {
                self.buckets += 1;
                return true;
            }
            Le::Bad => self.error = Some(SignalError::BadLe(le.to_string())),
        }
        false
    }

    /// Whether the model's only sample is `le="start"`.
    fn only_start(&self) -> bool {
        self.start.is_some() && self.buckets == 0 && self.sum.is_none() && self.error.is_none()
    }

    /// The model's window from its `buckets` (bound, count, spelling);
    /// `les` names the spellings.
    fn finish(self, buckets: &mut [(f64, f64, usize)], les: &[(Box<str>, Le)]) -> GroupedWindow {
        let series_at_start = self.start.unwrap_or(0.0);
        GroupedWindow {
            histogram: self.histogram(buckets, les),
            series_at_start,
        }
    }

    /// The model's histogram from its `buckets`; `les` names the spellings.
    fn histogram(
        self,
        buckets: &mut [(f64, f64, usize)],
        les: &[(Box<str>, Le)],
    ) -> Result<Histogram, SignalError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        // By bound, then spelling: the same text twice ends up adjacent.
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
        if let Some(pair) = buckets.windows(2).find(|pair| pair[0].2 == pair[1].2) {
            return Err(SignalError::DuplicateLe(les[pair[0].2].0.to_string()));
        }
        // One bound spelt two ways (`le="1"` and `le="1.0"`, as client
        // libraries of different ages write it) is one bucket: pods of both
        // kinds counted into it, so the counts add up.
        let mut bounds: Vec<f64> = Vec::with_capacity(buckets.len());
        let mut cumulative: Vec<f64> = Vec::with_capacity(buckets.len());
        for &(bound, count, _) in buckets.iter() {
            match (bounds.last(), cumulative.last_mut()) {
                (Some(last), Some(total)) if *last == bound => *total += count,
                _ => {
                    bounds.push(bound);
                    cumulative.push(count);
                }
            }
        }
        // The `+Inf` bucket is the last, and has no bound in a histogram.
        if bounds.pop() != Some(f64::INFINITY) {
            return Err(SignalError::Histogram(HistogramError::MissingInfBucket));
        }
        Ok(Histogram {
            bounds,
            cumulative,
            sum: self.sum,
        })
    }
}

#[cfg(test)]
mod tests;
