//! The drift and signal gauges of a [`Snapshot`] in the Prometheus text
//! exposition format (version 0.0.4).
//!
//! Rendered per scrape from the published snapshot, in pieces of a few
//! hundred kilobytes that go out as they are written, so that neither the
//! evaluation loop nor a scrape holds the whole text (55 MB at 10,000
//! models). Only what the snapshot holds is written: a model or signal that
//! vanished from Prometheus vanishes from `/metrics` with it.
//!
//! After the drift and signal gauges come those of class and confidence
//! signals: class shares, estimated and realized accuracy, calibration
//! error and the accuracy gap (`docs/statistics.md`, sections 11 and 12).

use crate::detectors::Verdict;
use crate::engine::{DetectorResult, SignalResult, Snapshot};
use crate::exposition::{write_header, write_label_value, write_value};
use crate::model::ModelId;

/// One gauge family: name, help, and how to read its values from a result.
pub(super) struct Family {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
}

const DRIFT_SCORE: Family = Family {
    name: "model_monitor_drift_score",
    help: "The detector's statistic for the current window against the reference (PSI, KS D, JS distance, z, ratio, ...).",
};
const DRIFT_THRESHOLD: Family = Family {
    name: "model_monitor_drift_threshold",
    help: "The threshold in force for the drift score in the last evaluation.",
};
const DRIFT_P_VALUE: Family = Family {
    name: "model_monitor_drift_p_value",
    help: "The p-value of the drift score, for detectors with a null distribution.",
};
const DRIFT_DETECTED: Family = Family {
    name: "model_monitor_drift_detected",
    help: "1 when the detector reports drift or a breach, 0 when not; absent with too few samples.",
};
const SIGNAL_MEAN: Family = Family {
    name: "model_monitor_signal_mean",
    help: "Mean of the signal in the current window, in the signal's unit.",
};
const SIGNAL_STDDEV: Family = Family {
    name: "model_monitor_signal_stddev",
    help: "Standard deviation of the signal in the current window, from bucket midpoints.",
};
const SIGNAL_QUANTILE: Family = Family {
    name: "model_monitor_signal_quantile",
    help: "Quantiles of the signal in the current window, as histogram_quantile computes them.",
};
const SIGNAL_SAMPLES: Family = Family {
    name: "model_monitor_signal_samples",
    help: "Observations in the current window.",
};
const REFERENCE_SAMPLES: Family = Family {
    name: "model_monitor_reference_samples",
    help: "Observations in the reference window.",
};

/// Writes `{model="a",version="v1",monitor="m",signal="s"` (no closing brace).
fn write_model_labels(out: &mut String, id: &ModelId, signal: &str) {
    out.push('{');
    for (name, value) in &id.model.0 {
        out.push_str(name);
        out.push_str("=\"");
        write_label_value(out, value);
        out.push_str("\",");
    }
    out.push_str("monitor=\"");
    write_label_value(out, &id.source);
    out.push_str("\",signal=\"");
    write_label_value(out, signal);
    out.push('"');
}

/// One (model, signal) of the snapshot with its label set written out once:
/// every family repeats the same labels, so escaping them once per render
/// rather than once per sample saves most of the work at 10,000 models.
pub(super) struct Series<'a> {
    /// `{model="a",...,signal="s"` without the closing brace.
    pub(super) labels: String,
    pub(super) result: &'a SignalResult,
}

/// Every (model, signal) of the snapshot in its order, labels pre-rendered.
fn series(snapshot: &Snapshot) -> Vec<Series<'_>> {
    let mut series = Vec::new();
    for (id, signals) in &snapshot.models {
        for (signal, result) in signals {
            let mut labels = String::with_capacity(96);
            write_model_labels(&mut labels, id, signal);
            series.push(Series { labels, result });
        }
    }
    series
}

/// Where the text goes: a buffer handed to `sink` whenever it holds at
/// least `chunk` bytes.
pub(super) struct Pieces<'s> {
    pub(super) out: String,
    chunk: usize,
    sink: &'s mut dyn FnMut(String) -> bool,
    /// The sink refused a piece (the client went away): stop writing.
    pub(super) stopped: bool,
}

impl Pieces<'_> {
    pub(super) fn hand_over_if_full(&mut self) {
        if self.out.len() >= self.chunk && !self.stopped {
            let full = std::mem::replace(&mut self.out, String::with_capacity(self.chunk + 4096));
            self.stopped = !(self.sink)(full);
        }
    }
}

/// Writes one sample line: the family's name, the series' labels (without
/// the closing brace), the extra labels and the value.
pub(super) fn write_sample(
    out: &mut String,
    name: &str,
    labels: &str,
    extra: &[(&str, &str)],
    number: f64,
) {
    out.push_str(name);
    out.push_str(labels);
    for (name, label) in extra {
        out.push(',');
        out.push_str(name);
        out.push_str("=\"");
        write_label_value(out, label);
        out.push('"');
    }
    out.push_str("} ");
    write_value(out, number);
    out.push('\n');
}

/// Writes one family with a sample per (model, signal, extra) that `value`
/// yields.
fn write_family<'a, F>(
    pieces: &mut Pieces<'_>,
    series: &[Series<'a>],
    family: &Family,
    mut value: F,
) where
    F: FnMut(&'a SignalResult, &mut dyn FnMut(Option<(&str, &str)>, f64)),
{
    if pieces.stopped {
        return;
    }
    write_header(&mut pieces.out, family.name, family.help, "gauge");
    for one in series {
        let out = &mut pieces.out;
        value(one.result, &mut |extra, number| {
            write_sample(out, family.name, &one.labels, extra.as_slice(), number);
        });
        pieces.hand_over_if_full();
        if pieces.stopped {
            return;
        }
    }
}

/// The drift and signal gauges of a snapshot, as one string.
pub fn render_snapshot(snapshot: &Snapshot) -> String {
    // With no piece size there is one piece (or none, for no models).
    let mut whole = String::new();
    render_snapshot_in_pieces(snapshot, usize::MAX, &mut |piece| {
        whole = piece;
        true
    });
    whole
}

/// The drift and signal gauges of a snapshot, handed to `sink` in pieces of
/// at least `chunk` bytes (one sample line over at most, and the last piece
/// shorter), in order. Stops early when `sink` returns false. Returns
/// whether every piece was taken.
pub fn render_snapshot_in_pieces(
    snapshot: &Snapshot,
    chunk: usize,
    sink: &mut dyn FnMut(String) -> bool,
) -> bool {
    let series = series(snapshot);
    let series = series.as_slice();
    let capacity = if chunk == usize::MAX {
        // One string: reserve about what will be written (four lines per
        // detector and seven per signal, each about 80 bytes besides the
        // labels), so it does not grow and copy.
        series
            .iter()
            .map(|one| (4 * one.result.detectors.len() + 7) * (one.labels.len() + 80))
            .sum::<usize>()
            + 4096
    } else {
        chunk + 4096
    };
    let mut pieces = Pieces {
        out: String::with_capacity(capacity),
        chunk,
        sink,
        stopped: false,
    };
    let out = &mut pieces;
    write_family(out, series, &DRIFT_SCORE, |result, emit| {
        for outcome in &result.detectors {
            if let DetectorResult::Detection(detection) = &outcome.result {
                emit(Some(("detector", &outcome.detector)), detection.score);
            }
        }
    });
    write_family(out, series, &DRIFT_THRESHOLD, |result, emit| {
        for outcome in &result.detectors {
            if let DetectorResult::Detection(detection) = &outcome.result {
                emit(Some(("detector", &outcome.detector)), detection.threshold);
            }
        }
    });
    write_family(out, series, &DRIFT_P_VALUE, |result, emit| {
        for outcome in &result.detectors {
            if let DetectorResult::Detection(detection) = &outcome.result
                && let Some(p_value) = detection.p_value
            {
                emit(Some(("detector", &outcome.detector)), p_value);
            }
        }
    });
    write_family(out, series, &DRIFT_DETECTED, |result, emit| {
        for outcome in &result.detectors {
            if let DetectorResult::Detection(detection) = &outcome.result {
                match detection.verdict {
                    Verdict::Drift => emit(Some(("detector", &outcome.detector)), 1.0),
                    Verdict::NoDrift => emit(Some(("detector", &outcome.detector)), 0.0),
                    Verdict::InsufficientSamples { .. } | Verdict::YoungSeries { .. } => {}
                }
            }
        }
    });
    let finite = |value: f64| value.is_finite().then_some(value);
    write_family(out, series, &SIGNAL_MEAN, |result, emit| {
        if let Some(mean) = result.current.as_ref().and_then(|c| finite(c.mean)) {
            emit(None, mean);
        }
    });
    write_family(out, series, &SIGNAL_STDDEV, |result, emit| {
        if let Some(stddev) = result.current.as_ref().and_then(|c| finite(c.stddev)) {
            emit(None, stddev);
        }
    });
    write_family(out, series, &SIGNAL_QUANTILE, |result, emit| {
        if let Some(current) = &result.current {
            for (label, value) in [
                ("0.5", current.p50),
                ("0.95", current.p95),
                ("0.99", current.p99),
            ] {
                if value.is_finite() {
                    emit(Some(("q", label)), value);
                }
            }
        }
    });
    write_family(out, series, &SIGNAL_SAMPLES, |result, emit| {
        if let Some(current) = &result.current {
            emit(None, current.samples);
        }
    });
    write_family(out, series, &REFERENCE_SAMPLES, |result, emit| {
        if let Some(samples) = result.reference_samples {
            emit(None, samples);
        }
    });
    write_signal_families(&mut pieces, series);
    if !pieces.stopped && !pieces.out.is_empty() {
        let last = std::mem::take(&mut pieces.out);
        pieces.stopped = !(pieces.sink)(last);
    }
    !pieces.stopped
}

const CLASS_SHARE: Family = Family {
    name: "model_monitor_class_share",
    help: "Share of each class among the predictions of a class signal's window (window=\"current\" or \"reference\").",
};
const ESTIMATED_ACCURACY: Family = Family {
    name: "model_monitor_estimated_accuracy",
    help: "Mean top-class confidence of the window: the accuracy a calibrated classifier would have (window=\"current\" or \"reference\").",
};
const REALIZED_ACCURACY: Family = Family {
    name: "model_monitor_realized_accuracy",
    help: "Share of correct predictions in the labelled window (the current window moved back by labels_delay).",
};
const CALIBRATION_ERROR: Family = Family {
    name: "model_monitor_calibration_error",
    help: "Expected calibration error of the labelled window, from the reliability histogram.",
};
const ACCURACY_GAP: Family = Family {
    name: "model_monitor_accuracy_gap",
    help: "Estimated minus realized accuracy of the labelled window; positive when the model is overconfident.",
};

/// Writes one family, each sample with the extra labels `value` gives.
/// Nothing, not even the header, when no series has a value.
fn write_labelled_family<'a, F>(
    pieces: &mut Pieces<'_>,
    series: &[Series<'a>],
    family: &Family,
    mut value: F,
) where
    F: FnMut(&'a SignalResult, &mut dyn FnMut(&[(&str, &str)], f64)),
{
    let mut header = false;
    for one in series {
        if pieces.stopped {
            return;
        }
        let out = &mut pieces.out;
        value(one.result, &mut |extra, number| {
            if !header {
                write_header(out, family.name, family.help, "gauge");
                header = true;
            }
            write_sample(out, family.name, &one.labels, extra, number);
        });
        pieces.hand_over_if_full();
    }
}

/// The class-share and accuracy families of every series that has them.
fn write_signal_families(pieces: &mut Pieces<'_>, series: &[Series<'_>]) {
    write_labelled_family(pieces, series, &CLASS_SHARE, |result, emit| {
        let Some(mix) = &result.class_mix else {
            return;
        };
        for (window, shares) in [("current", &mix.current), ("reference", &mix.reference)] {
            for (class, share) in mix.classes.iter().zip(shares) {
                emit(&[("class", class), ("window", window)], *share);
            }
        }
    });
    write_labelled_family(pieces, series, &ESTIMATED_ACCURACY, |result, emit| {
        let Some(accuracy) = &result.accuracy else {
            return;
        };
        for (window, value) in [
            ("current", accuracy.estimated_current),
            ("reference", accuracy.estimated_reference),
        ] {
            if let Some(value) = value {
                emit(&[("window", window)], value);
            }
        }
    });
    let labelled = |result: &SignalResult| result.accuracy.as_ref().and_then(|a| a.labelled);
    write_labelled_family(pieces, series, &REALIZED_ACCURACY, |result, emit| {
        if let Some(labelled) = labelled(result) {
            emit(&[], labelled.realized);
        }
    });
    write_labelled_family(pieces, series, &CALIBRATION_ERROR, |result, emit| {
        if let Some(labelled) = labelled(result) {
            emit(&[], labelled.calibration_error);
        }
    });
    write_labelled_family(pieces, series, &ACCURACY_GAP, |result, emit| {
        if let Some(labelled) = labelled(result).filter(|l| l.gap.is_finite()) {
            emit(&[], labelled.gap);
        }
    });
}
