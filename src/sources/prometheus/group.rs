//! [`HistogramGrouper`]: grouping a query's answer into one cumulative
//! histogram per model.
//!
//! The grouper is fed sample by sample as the answer's body arrives (it is
//! a [`VectorSink`]): a model's key is copied once, each `le` spelling
//! parsed once.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::BuildHasher;

use super::VectorSink;
use super::query::{START_LE, SUM_LE};
use crate::model::ModelKey;
use crate::sources::parse_le;
use crate::stats::{Histogram, HistogramError};

/// Why one model's answer could not become a histogram.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignalError {
    #[error("series without a valid le label: {0:?}")]
    BadLe(String),
    #[error("two series of one model have le={0:?}")]
    DuplicateLe(String),
    #[error(transparent)]
    Histogram(#[from] HistogramError),
}

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
/// sorted by bound, the `+Inf` bucket last, the `le="sum"` sample becomes
/// [`Histogram::sum`] and the `le="start"` sample
/// [`GroupedWindow::series_at_start`]. A model with only a `le="start"`
/// sample had series at the window's start but no increase in it: it is
/// not in the window's answer. A problem with one model (no `+Inf` bucket, an
/// unparsable or repeated `le`) is that model's error only. Non-finite
/// counts are passed through: [`crate::stats::Distribution`] rejects them.
///
/// A model's key is copied once, when its first sample arrives; every `le`
/// spelling is parsed once per answer.
#[derive(Default)]
pub struct HistogramGrouper {
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
        buckets.add(&self.les[le], value);
        self.widest = self.widest.max(buckets.buckets.len());
    }
}

/// Whether a stored key holds the sample's `group_by` values.
fn same_key(stored: &[Box<str>], sample: &[Cow<'_, str>]) -> bool {
    stored.len() == sample.len() && stored.iter().zip(sample).all(|(a, b)| **a == **b)
}

impl HistogramGrouper {
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
                (key, buckets.finish())
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
    /// (bound, count) of each bucket sample.
    buckets: Vec<(f64, f64)>,
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

    fn add(&mut self, (le, kind): &(Box<str>, Le), value: f64) {
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
            Le::Bound(bound) => self.buckets.push((*bound, value)),
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

    fn finish(self) -> GroupedWindow {
        let series_at_start = self.start.unwrap_or(0.0);
        GroupedWindow {
            histogram: self.histogram(),
            series_at_start,
        }
    }

    fn histogram(mut self) -> Result<Histogram, SignalError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
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
            Some((bound, _)) if *bound == f64::INFINITY => {}
            _ => return Err(SignalError::Histogram(HistogramError::MissingInfBucket)),
        }
        let bounds = self.buckets[..self.buckets.len() - 1]
            .iter()
            .map(|(bound, _)| *bound)
            .collect();
        let cumulative = self.buckets.iter().map(|(_, count)| *count).collect();
        Ok(Histogram {
            bounds,
            cumulative,
            sum: self.sum,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Labels = BTreeMap<String, String>;

    /// One sample of an answer, with all its labels.
    struct Sample {
        labels: Labels,
        value: f64,
    }

    /// Feeds the samples to a [`HistogramGrouper`] as the decoders do: the
    /// `group_by` values, then `le`, a missing label as `""`.
    fn group_windows(
        samples: Vec<Sample>,
        group_by: &[String],
    ) -> BTreeMap<ModelKey, GroupedWindow> {
        let mut grouper = HistogramGrouper::default();
        for sample in &samples {
            let labels: Vec<Cow<'_, str>> = grouper_labels(group_by)
                .into_iter()
                .map(|name| Cow::Borrowed(sample.labels.get(name).map_or("", String::as_str)))
                .collect();
            grouper.sample(&labels, sample.value);
        }
        grouper.finish(group_by)
    }

    /// [`group_windows`]' histograms.
    fn group_histograms(
        samples: Vec<Sample>,
        group_by: &[String],
    ) -> BTreeMap<ModelKey, Result<Histogram, SignalError>> {
        group_windows(samples, group_by)
            .into_iter()
            .map(|(key, window)| (key, window.histogram))
            .collect()
    }

    fn sample(model: &str, le: Option<&str>, value: f64) -> Sample {
        let mut labels = Labels::new();
        labels.insert("model".to_owned(), model.to_owned());
        labels.insert("version".to_owned(), "v1".to_owned());
        if let Some(le) = le {
            labels.insert("le".to_owned(), le.to_owned());
        }
        Sample { labels, value }
    }

    fn key(model: &str) -> ModelKey {
        ModelKey(vec![
            ("model".to_owned(), model.to_owned()),
            ("version".to_owned(), "v1".to_owned()),
        ])
    }

    fn histogram(bounds: &[f64], cumulative: &[f64], sum: Option<f64>) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            cumulative: cumulative.to_vec(),
            sum,
        }
    }

    fn group_by() -> Vec<String> {
        vec!["model".to_owned(), "version".to_owned()]
    }

    fn check(samples: &[(&str, Option<&str>, f64)], expected: Result<Histogram, SignalError>) {
        let samples = samples
            .iter()
            .map(|(model, le, value)| sample(model, *le, *value))
            .collect();
        let grouped = group_histograms(samples, &group_by());
        assert_eq!(grouped.len(), 1, "{grouped:?}");
        assert_eq!(grouped.get(&key("a")), Some(&expected));
    }

    #[test]
    fn builds_cumulative_buckets_sorted_by_bound() {
        check(
            &[
                ("a", Some("+Inf"), 10.0),
                ("a", Some("1"), 8.0),
                ("a", Some("0.05"), 1.0),
                ("a", Some("sum"), 4.5),
                ("a", Some("0.5"), 5.0),
            ],
            Ok(histogram(
                &[0.05, 0.5, 1.0],
                &[1.0, 5.0, 8.0, 10.0],
                Some(4.5),
            )),
        );
        check(
            &[
                ("a", Some("1e-3"), 1.0),
                ("a", Some("5"), 2.0),
                ("a", Some("-1"), 0.0),
                ("a", Some("+Inf"), 3.0),
            ],
            Ok(histogram(&[-1.0, 0.001, 5.0], &[0.0, 1.0, 2.0, 3.0], None)),
        );
        check(
            &[("a", Some("+Inf"), 0.0)],
            Ok(histogram(&[], &[0.0], None)),
        );
    }

    #[test]
    fn passes_non_finite_counts_through() {
        let grouped = group_histograms(
            vec![
                sample("a", Some("1"), f64::NAN),
                sample("a", Some("+Inf"), f64::INFINITY),
            ],
            &group_by(),
        );
        let histogram = grouped[&key("a")].as_ref().unwrap();
        assert!(histogram.cumulative[0].is_nan());
        assert_eq!(histogram.cumulative[1], f64::INFINITY);
    }

    #[test]
    fn rejects_broken_models_one_by_one() {
        let missing_inf = Err(SignalError::Histogram(HistogramError::MissingInfBucket));
        check(&[("a", Some("1"), 1.0)], missing_inf.clone());
        check(&[("a", Some("sum"), 1.0)], missing_inf);
        check(
            &[("a", Some("fast"), 1.0), ("a", Some("+Inf"), 1.0)],
            Err(SignalError::BadLe("fast".to_owned())),
        );
        check(
            &[("a", None, 1.0), ("a", Some("+Inf"), 1.0)],
            Err(SignalError::BadLe(String::new())),
        );
        check(
            &[("a", Some("NaN"), 1.0), ("a", Some("+Inf"), 1.0)],
            Err(SignalError::BadLe("NaN".to_owned())),
        );
        check(
            &[("a", Some("-Inf"), 1.0), ("a", Some("+Inf"), 1.0)],
            Err(SignalError::BadLe("-Inf".to_owned())),
        );
        check(
            &[
                ("a", Some("1"), 1.0),
                ("a", Some("1.0"), 2.0),
                ("a", Some("+Inf"), 4.0),
            ],
            Ok(Histogram {
                bounds: vec![1.0],
                cumulative: vec![3.0, 4.0],
                sum: None,
            }),
        );
        check(
            &[
                ("a", Some("sum"), 1.0),
                ("a", Some("sum"), 2.0),
                ("a", Some("+Inf"), 1.0),
            ],
            Err(SignalError::DuplicateLe("sum".to_owned())),
        );
    }

    #[test]
    fn counts_the_series_at_the_window_start_and_drops_models_with_nothing_else() {
        let grouped = group_windows(
            vec![
                sample("a", Some("1"), 1.0),
                sample("a", Some("start"), 4.0),
                sample("a", Some("+Inf"), 2.0),
                sample("young", Some("+Inf"), 2.0),
                sample("gone", Some("start"), 2.0),
            ],
            &group_by(),
        );
        assert_eq!(
            grouped.keys().collect::<Vec<_>>(),
            vec![&key("a"), &key("young")]
        );
        assert_eq!(grouped[&key("a")].series_at_start, 4.0);
        assert_eq!(
            grouped[&key("a")].histogram,
            Ok(histogram(&[1.0], &[1.0, 2.0], None))
        );
        assert_eq!(grouped[&key("young")].series_at_start, 0.0);
        check(
            &[
                ("a", Some("start"), 1.0),
                ("a", Some("start"), 1.0),
                ("a", Some("+Inf"), 1.0),
            ],
            Err(SignalError::DuplicateLe("start".to_owned())),
        );
    }

    #[test]
    fn one_broken_model_leaves_the_others_alone() {
        let grouped = group_histograms(
            vec![
                sample("a", Some("1"), 1.0),
                sample("b", Some("1"), 1.0),
                sample("b", Some("+Inf"), 2.0),
            ],
            &group_by(),
        );
        assert_eq!(
            grouped[&key("a")],
            Err(SignalError::Histogram(HistogramError::MissingInfBucket))
        );
        assert_eq!(grouped[&key("b")], Ok(histogram(&[1.0], &[1.0, 2.0], None)));
    }

    #[test]
    fn groups_by_label_values_with_missing_labels_as_empty() {
        let mut unversioned = sample("c", Some("+Inf"), 1.0);
        unversioned.labels.remove("version");
        let grouped = group_histograms(
            vec![
                sample("a", Some("+Inf"), 1.0),
                unversioned,
                sample("a", Some("2"), 1.0),
            ],
            &group_by(),
        );
        let keys: Vec<&ModelKey> = grouped.keys().collect();
        let unversioned_key = ModelKey(vec![
            ("model".to_owned(), "c".to_owned()),
            ("version".to_owned(), String::new()),
        ]);
        assert_eq!(keys, vec![&key("a"), &unversioned_key]);
        assert_eq!(unversioned_key.get("version"), Some(""));
        assert_eq!(unversioned_key.get("le"), None);
        assert_eq!(grouped[&key("a")], Ok(histogram(&[2.0], &[1.0, 1.0], None)));
    }
}
