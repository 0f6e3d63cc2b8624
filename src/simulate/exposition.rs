//! The Prometheus text exposition format (0.0.4) of the simulated models.
//!
//! Written with the library's exposition writer (`model_monitor::exposition`)
//! into one caller's `String`, so a scrape of ten thousand models costs one
//! buffer and no per-line allocation. Bucket bounds are printed from fixed
//! strings, so they read `0.15`, never `0.15000000000000002`.

use model_monitor::exposition::{Digits, write_header, write_u64, write_value};

use super::buckets::{CONFIDENCE_BUCKETS, LATENCY_BUCKETS};
use super::model::ModelState;
use super::outcomes::class_name;

pub use model_monitor::exposition::CONTENT_TYPE;

/// The `version` label of every simulated model.
pub const MODEL_VERSION: &str = "v1";

/// The `le` labels of the confidence buckets, in [`CONFIDENCE_BUCKETS`] order.
const CONFIDENCE_LABELS: [&str; CONFIDENCE_BUCKETS.len()] = [
    "0.05", "0.1", "0.15", "0.2", "0.25", "0.3", "0.35", "0.4", "0.45", "0.5", "0.55", "0.6",
    "0.65", "0.7", "0.75", "0.8", "0.85", "0.9", "0.95", "1",
];

/// The `le` labels of the latency buckets, in [`LATENCY_BUCKETS`] order.
const LATENCY_LABELS: [&str; LATENCY_BUCKETS.len()] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
];

const CONFIDENCE: &str = "model_prediction_confidence";
const LATENCY: &str = "model_request_duration_seconds";
const REQUESTS: &str = "model_requests_total";
const CORRECT: &str = "model_prediction_confidence_correct";
const PREDICTIONS: &str = "model_predictions_total";

/// Bytes one model adds to the output, rounded up; used to reserve the
/// buffer once before rendering.
pub(crate) const BYTES_PER_MODEL_ESTIMATE: usize = 6_400;

/// Appends every metric family of `models` to `out`.
pub(crate) fn render(models: &[ModelState], out: &mut String) {
    out.reserve(512 + models.len() * BYTES_PER_MODEL_ESTIMATE);

    histogram(
        out,
        models,
        CONFIDENCE,
        "Top-class confidence of each prediction.",
        &CONFIDENCE_LABELS,
        |model| {
            let totals = &model.totals;
            (
                &totals.confidence_buckets,
                totals.requests,
                totals.confidence_sum,
            )
        },
    );
    histogram(
        out,
        models,
        LATENCY,
        "Duration of each prediction request in seconds.",
        &LATENCY_LABELS,
        |model| {
            let totals = &model.totals;
            (&totals.latency_buckets, totals.requests, totals.latency_sum)
        },
    );

    write_header(out, REQUESTS, "Prediction requests served.", "counter");
    for (index, model) in models.iter().enumerate() {
        let labels = ModelLabels::new(index);
        out.push_str(REQUESTS);
        labels.push(out);
        out.push_str("} ");
        write_u64(out, model.totals.requests);
        out.push('\n');
    }

    histogram(
        out,
        models,
        CORRECT,
        "Top-class confidence of each prediction that turned out correct.",
        &CONFIDENCE_LABELS,
        |model| {
            let outcomes = &model.outcomes;
            (
                &outcomes.correct_buckets,
                outcomes.correct,
                outcomes.correct_sum,
            )
        },
    );

    write_header(
        out,
        PREDICTIONS,
        "Predictions by predicted class.",
        "counter",
    );
    for (index, model) in models.iter().enumerate() {
        let labels = ModelLabels::new(index);
        for (class, count) in model.outcomes.classes.iter().enumerate() {
            out.push_str(PREDICTIONS);
            labels.push(out);
            out.push_str(",class=\"");
            out.push_str(&class_name(class));
            out.push_str("\"} ");
            write_u64(out, *count);
            out.push('\n');
        }
    }
}

/// One histogram family: for each model, its per-bucket counts (one per
/// bound in `bounds`; an extra last slot is left to `+Inf`), its count and
/// its sum, as `read` gives them.
fn histogram<'m>(
    out: &mut String,
    models: &'m [ModelState],
    name: &str,
    help: &str,
    bounds: &[&str],
    read: impl Fn(&'m ModelState) -> (&'m [u64], u64, f64),
) {
    write_header(out, name, help, "histogram");
    for (index, model) in models.iter().enumerate() {
        let labels = ModelLabels::new(index);
        let (buckets, count, sum) = read(model);
        let mut cumulative = 0;
        for (bound, bucket_count) in bounds.iter().zip(buckets) {
            cumulative += bucket_count;
            bucket(out, name, &labels, bound, cumulative);
        }
        bucket(out, name, &labels, "+Inf", count);
        sum_and_count(out, name, &labels, sum, count);
    }
}

fn bucket(out: &mut String, name: &str, labels: &ModelLabels, bound: &str, count: u64) {
    out.push_str(name);
    out.push_str("_bucket");
    labels.push(out);
    out.push_str(",le=\"");
    out.push_str(bound);
    out.push_str("\"} ");
    write_u64(out, count);
    out.push('\n');
}

fn sum_and_count(out: &mut String, name: &str, labels: &ModelLabels, sum: f64, count: u64) {
    out.push_str(name);
    out.push_str("_sum");
    labels.push(out);
    out.push_str("} ");
    write_value(out, sum);
    out.push('\n');
    out.push_str(name);
    out.push_str("_count");
    labels.push(out);
    out.push_str("} ");
    write_u64(out, count);
    out.push('\n');
}

/// The `{model="model-N",version="v1"` prefix of a series, without the
/// closing brace so a `le` label can follow. The index is formatted once per
/// model and reused for every line.
struct ModelLabels {
    index: Digits,
}

impl ModelLabels {
    fn new(index: usize) -> ModelLabels {
        let mut digits = Digits::new();
        digits.format(index as u64);
        ModelLabels { index: digits }
    }

    fn push(&self, out: &mut String) {
        out.push_str("{model=\"model-");
        out.push_str(self.index.as_str());
        out.push_str("\",version=\"");
        out.push_str(MODEL_VERSION);
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_labels_read_back_as_the_bounds() {
        for (label, bound) in CONFIDENCE_LABELS.iter().zip(CONFIDENCE_BUCKETS) {
            assert_eq!(label.parse::<f64>().unwrap(), bound);
        }
        for (label, bound) in LATENCY_LABELS.iter().zip(LATENCY_BUCKETS) {
            assert_eq!(label.parse::<f64>().unwrap(), bound);
        }
    }

    #[test]
    fn the_estimate_covers_a_busy_model() {
        let outcome_model =
            super::super::outcomes::OutcomeModel::new(&super::super::DEFAULT_CLASS_MIX, 1.0);
        let mut model = ModelState::new(0, 123_456, 1.0, &outcome_model);
        let totals = &mut model.totals;
        totals.requests = 1 << 40;
        totals.confidence_buckets = [1 << 40; CONFIDENCE_BUCKETS.len()];
        totals.latency_buckets = [1 << 40; LATENCY_BUCKETS.len() + 1];
        totals.confidence_sum = 123_456_789.123_456_78;
        totals.latency_sum = 987_654_321.987_654_3;
        let outcomes = &mut model.outcomes;
        outcomes.classes = vec![1 << 40; 4];
        outcomes.correct_buckets = [1 << 40; CONFIDENCE_BUCKETS.len()];
        outcomes.correct = 1 << 40;
        outcomes.correct_sum = 123_456_789.123_456_78;
        let mut out = String::new();
        render(std::slice::from_ref(&model), &mut out);
        assert!(out.len() < 512 + BYTES_PER_MODEL_ESTIMATE, "{}", out.len());
    }
}
