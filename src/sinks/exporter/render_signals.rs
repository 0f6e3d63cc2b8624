//! The gauges of class and confidence signals: class shares, estimated and
//! realized accuracy, calibration error and the accuracy gap
//! (`docs/statistics.md`, sections 11 and 12), written after the drift and
//! signal gauges of `render.rs`, in the same pieces.

use super::render::{Family, Pieces, Series, write_sample};
use crate::engine::SignalResult;
use crate::exposition::write_header;

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
pub(super) fn write_signal_families(pieces: &mut Pieces<'_>, series: &[Series<'_>]) {
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
