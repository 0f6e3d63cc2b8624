//! Class signals: the counts of a counter with a class label (for example
//! `model_predictions_total{class}`) as a [`Distribution`] over categories,
//! so that the detectors that compare bucket proportions (`psi`,
//! `chi_square`, `jensen_shannon`, `hellinger`) read class shares
//! unchanged (`docs/statistics.md`, section 11).
//!
//! Both windows of a model are laid out on the union of their classes,
//! sorted by name, a class missing from one window counting zero there.
//! Class `i` of `k` becomes bucket `i`: the finite bounds are the positions
//! `1 .. k-1` and the last class is the `+Inf` bucket. The bounds carry no
//! meaning beyond the order, so no mean or quantile is taken of them.

use std::collections::{BTreeMap, BTreeSet};

use super::{Distribution, HistogramError};

/// The classes of both windows of a model: their union, sorted by name.
pub fn union_classes<'a>(
    windows: impl IntoIterator<Item = &'a BTreeMap<String, f64>>,
) -> Vec<String> {
    let names: BTreeSet<&String> = windows.into_iter().flat_map(BTreeMap::keys).collect();
    names.into_iter().cloned().collect()
}

/// Why a window of class counts makes no distribution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClassError {
    #[error("a class signal needs at least two classes, got {0}")]
    TooFewClasses(usize),
    #[error("class {class:?} has a non-finite count {count}")]
    NonFiniteCount { class: String, count: f64 },
}

impl ClassError {
    /// The kind of problem, without this model's details.
    pub fn reason(&self) -> &'static str {
        match self {
            ClassError::TooFewClasses(_) => "fewer than two classes",
            ClassError::NonFiniteCount { .. } => "a class has a non-finite count",
        }
    }
}

/// One window's counts laid out on `classes` (a class it lacks counts 0).
/// A negative count (a counter reset the query did not absorb) is clamped
/// to zero and counted as a correction, as for histogram buckets.
pub fn class_distribution(
    classes: &[String],
    counts: &BTreeMap<String, f64>,
) -> Result<Distribution, ClassError> {
    if classes.len() < 2 {
        return Err(ClassError::TooFewClasses(classes.len()));
    }
    if let Some((class, count)) = counts.iter().find(|(_, count)| !count.is_finite()) {
        return Err(ClassError::NonFiniteCount {
            class: class.clone(),
            count: *count,
        });
    }
    let bounds = (1..classes.len()).map(|position| position as f64).collect();
    let laid_out = classes
        .iter()
        .map(|class| counts.get(class).copied().unwrap_or(0.0))
        .collect();
    Distribution::from_bucket_counts(bounds, laid_out, None).map_err(|error| match error {
        // The bounds and counts are built here, valid by construction.
        HistogramError::NonFiniteCount { count, .. } => ClassError::NonFiniteCount {
            class: String::new(),
            count,
        },
        _ => ClassError::TooFewClasses(classes.len()),
    })
}

/// The share of each class in a window, in the order of its classes; empty
/// for an empty window.
pub fn shares(distribution: &Distribution) -> Vec<f64> {
    let total = distribution.total();
    if total <= 0.0 {
        return Vec::new();
    }
    distribution
        .counts()
        .iter()
        .map(|count| count / total)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn a_class_seen_in_one_window_counts_zero_in_the_other() {
        let reference = counts(&[("cat", 60.0), ("dog", 40.0)]);
        let current = counts(&[("bird", 10.0), ("cat", 50.0), ("dog", 40.0)]);
        let classes = union_classes([&reference, &current]);
        assert_eq!(classes, ["bird", "cat", "dog"]);
        let reference = class_distribution(&classes, &reference).unwrap();
        let current = class_distribution(&classes, &current).unwrap();
        assert_eq!(reference.counts(), [0.0, 60.0, 40.0]);
        assert_eq!(current.counts(), [10.0, 50.0, 40.0]);
        assert_eq!(reference.bounds(), current.bounds());
        assert_eq!(shares(&current), [0.1, 0.5, 0.4]);
    }

    #[test]
    fn one_class_or_a_nan_count_is_rejected_with_the_reason() {
        let one = counts(&[("cat", 5.0)]);
        let error = class_distribution(&union_classes([&one]), &one).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a class signal needs at least two classes, got 1"
        );
        let nan = counts(&[("cat", f64::NAN), ("dog", 1.0)]);
        let error = class_distribution(&union_classes([&nan]), &nan).unwrap_err();
        assert_eq!(error.reason(), "a class has a non-finite count");
        assert!(error.to_string().contains("\"cat\""), "{error}");
    }

    #[test]
    fn negative_counts_are_clamped_and_counted() {
        let window = counts(&[("a", -2.0), ("b", 4.0)]);
        let distribution = class_distribution(&union_classes([&window]), &window).unwrap();
        assert_eq!(distribution.counts(), [0.0, 4.0]);
        assert_eq!(distribution.corrections(), 1);
        assert!(
            shares(&class_distribution(&["a".into(), "b".into()], &counts(&[])).unwrap())
                .is_empty()
        );
    }
}
