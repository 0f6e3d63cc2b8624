//! The Prometheus text exposition format (0.0.4) of the simulated models.
//!
//! Rendering appends to a caller's `String` with `push_str` and a small
//! integer formatter, so a scrape of ten thousand models costs one buffer and
//! no per-line allocation. Bucket bounds are printed from fixed strings, so
//! they read `0.15`, never `0.15000000000000002`.

use super::model::{CONFIDENCE_BUCKETS, LATENCY_BUCKETS, ModelState};
use std::fmt::Write;

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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

/// Bytes one model adds to the output, rounded up; used to reserve the
/// buffer once before rendering.
pub(crate) const BYTES_PER_MODEL_ESTIMATE: usize = 3_400;

/// Appends every metric family of `models` to `out`.
pub(crate) fn render(models: &[ModelState], out: &mut String) {
    out.reserve(512 + models.len() * BYTES_PER_MODEL_ESTIMATE);

    family_header(
        out,
        CONFIDENCE,
        "Top-class confidence of each prediction.",
        "histogram",
    );
    for (index, model) in models.iter().enumerate() {
        let labels = ModelLabels::new(index);
        let totals = &model.totals;
        let mut cumulative = 0;
        for (bound, count) in CONFIDENCE_LABELS.iter().zip(&totals.confidence_buckets) {
            cumulative += count;
            bucket(out, CONFIDENCE, &labels, bound, cumulative);
        }
        bucket(out, CONFIDENCE, &labels, "+Inf", totals.requests);
        sum_and_count(
            out,
            CONFIDENCE,
            &labels,
            totals.confidence_sum,
            totals.requests,
        );
    }

    family_header(
        out,
        LATENCY,
        "Duration of each prediction request in seconds.",
        "histogram",
    );
    for (index, model) in models.iter().enumerate() {
        let labels = ModelLabels::new(index);
        let totals = &model.totals;
        let mut cumulative = 0;
        for (bound, count) in LATENCY_LABELS.iter().zip(&totals.latency_buckets) {
            cumulative += count;
            bucket(out, LATENCY, &labels, bound, cumulative);
        }
        bucket(out, LATENCY, &labels, "+Inf", totals.requests);
        sum_and_count(out, LATENCY, &labels, totals.latency_sum, totals.requests);
    }

    family_header(out, REQUESTS, "Prediction requests served.", "counter");
    for (index, model) in models.iter().enumerate() {
        let labels = ModelLabels::new(index);
        out.push_str(REQUESTS);
        labels.push(out);
        out.push_str("} ");
        push_u64(out, model.totals.requests);
        out.push('\n');
    }
}

fn family_header(out: &mut String, name: &str, help: &str, kind: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    out.push_str(help);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

fn bucket(out: &mut String, name: &str, labels: &ModelLabels, bound: &str, count: u64) {
    out.push_str(name);
    out.push_str("_bucket");
    labels.push(out);
    out.push_str(",le=\"");
    out.push_str(bound);
    out.push_str("\"} ");
    push_u64(out, count);
    out.push('\n');
}

fn sum_and_count(out: &mut String, name: &str, labels: &ModelLabels, sum: f64, count: u64) {
    out.push_str(name);
    out.push_str("_sum");
    labels.push(out);
    out.push_str("} ");
    push_f64(out, sum);
    out.push('\n');
    out.push_str(name);
    out.push_str("_count");
    labels.push(out);
    out.push_str("} ");
    push_u64(out, count);
    out.push('\n');
}

/// The `{model="model-N",version="v1"` prefix of a series, without the
/// closing brace so a `le` label can follow. The index is formatted once per
/// model and reused for every line.
struct ModelLabels {
    digits: [u8; 20],
    start: usize,
}

impl ModelLabels {
    fn new(index: usize) -> ModelLabels {
        let mut digits = [0; 20];
        let start = format_u64(index as u64, &mut digits);
        ModelLabels { digits, start }
    }

    fn push(&self, out: &mut String) {
        out.push_str("{model=\"model-");
        out.push_str(digits_str(&self.digits, self.start));
        out.push_str("\",version=\"");
        out.push_str(MODEL_VERSION);
        out.push('"');
    }
}

/// Writes the decimal digits of `value` at the end of `buffer` and returns
/// where they start.
fn format_u64(mut value: u64, buffer: &mut [u8; 20]) -> usize {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return start;
        }
    }
}

fn digits_str(buffer: &[u8; 20], start: usize) -> &str {
    // Only ASCII digits are ever written, so the slice is valid UTF-8.
    std::str::from_utf8(&buffer[start..]).unwrap_or("0")
}

/// Appends `value` in decimal.
pub(crate) fn push_u64(out: &mut String, value: u64) {
    let mut buffer = [0; 20];
    let start = format_u64(value, &mut buffer);
    out.push_str(digits_str(&buffer, start));
}

/// Appends `value` as the shortest decimal that reads back to the same
/// `f64`; integral values print without a fraction.
pub(crate) fn push_f64(out: &mut String, value: f64) {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        push_u64(out, value as u64);
    } else {
        // Writing to a `String` cannot fail.
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_print_like_display() {
        for value in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, value);
            assert_eq!(out, value.to_string());
        }
    }

    #[test]
    fn sums_print_integral_values_bare_and_others_exactly() {
        let check = |value: f64, expected: &str| {
            let mut out = String::new();
            push_f64(&mut out, value);
            assert_eq!(out, expected);
            assert_eq!(out.parse::<f64>().unwrap().to_bits(), value.to_bits());
        };
        check(0.0, "0");
        check(42.0, "42");
        check(0.1 + 0.2, "0.30000000000000004");
        check(1234.5678, "1234.5678");
    }

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
        let mut model = ModelState::new(0, 123_456, 1.0);
        let totals = &mut model.totals;
        totals.requests = 1 << 40;
        totals.confidence_buckets = [1 << 40; CONFIDENCE_BUCKETS.len()];
        totals.latency_buckets = [1 << 40; LATENCY_BUCKETS.len() + 1];
        totals.confidence_sum = 123_456_789.123_456_78;
        totals.latency_sum = 987_654_321.987_654_3;
        let mut out = String::new();
        render(std::slice::from_ref(&model), &mut out);
        assert!(out.len() < 512 + BYTES_PER_MODEL_ESTIMATE, "{}", out.len());
    }
}
