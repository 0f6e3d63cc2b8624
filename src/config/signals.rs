//! The kinds of signal besides a plain histogram: a class counter
//! (`counter` and `label` instead of `histogram`) and a confidence histogram
//! with the histogram of its correct predictions (`correct_histogram`,
//! `labels_delay`). Also which detector types each kind of signal takes:
//! a class signal only the ones that compare category shares, and
//! `accuracy_drop` only a top-class confidence signal.

use std::time::Duration;

use super::decode::{Decoder, Fields, shown};
use super::detectors::{DetectorConfig, DetectorKind};
use super::promql::is_label_name;
use super::tree::{Kind, Node};

/// One signal of a model and the detectors run on it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalConfig {
    /// Metric name of the histogram, without `_bucket` (of the counter, for
    /// a class signal).
    pub histogram: String,
    /// Detectors; their names are unique within the signal.
    pub detectors: Vec<DetectorConfig>,
    /// A plain histogram, a confidence histogram with its correct
    /// predictions, or a class counter ([`SignalKind`]).
    pub kind: SignalKind,
}

/// Default `labels_delay`: correctness is known as soon as the prediction.
pub const DEFAULT_LABELS_DELAY: Duration = Duration::ZERO;

/// The name of the signal that is top-class confidence without saying so.
pub const CONFIDENCE_SIGNAL: &str = "confidence";

/// The detector types a class signal takes: those that compare the shares
/// of categories, where the order of the classes does not matter.
pub const CLASS_DETECTOR_TYPES: [&str; 4] = ["chi_square", "psi", "jensen_shannon", "hellinger"];

/// What a signal's metric is.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SignalKind {
    /// A histogram, `SignalConfig::histogram` its base name.
    #[default]
    Histogram,
    /// A top-class confidence histogram with the histogram of the
    /// predictions that turned out correct.
    Labelled(CorrectHistogram),
    /// A counter with a class label, `SignalConfig::histogram` its name:
    /// `increase()` per class is the window's class mix.
    Classes {
        /// The label that names the class, e.g. `class`.
        label: String,
    },
}

/// The histogram of the correct predictions of a confidence signal.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrectHistogram {
    /// Base name, same buckets as the confidence histogram.
    pub histogram: String,
    /// How long after a prediction its correctness is counted: the
    /// labelled window is the current window moved back by this much.
    pub labels_delay: Duration,
}

impl SignalConfig {
    /// Whether the signal is a top-class confidence: named `confidence`,
    /// or with a correct-predictions histogram. Its mean is an estimated
    /// accuracy.
    pub fn is_confidence(&self, name: &str) -> bool {
        matches!(self.kind, SignalKind::Labelled(_))
            || (name == CONFIDENCE_SIGNAL && self.kind == SignalKind::Histogram)
    }
}

impl Decoder<'_> {
    /// A class signal: `counter`, `label` and `detectors`.
    pub(super) fn class_signal(&mut self, node: &Node, path: &str) -> Option<SignalConfig> {
        self.section(node, path, |d, fields| {
            let counter = d.required(fields, "counter", Self::metric_name);
            let label = d.required(fields, "label", Self::class_label);
            let detectors = d.signal_detectors(fields, &|kind| {
                (!CLASS_DETECTOR_TYPES.contains(&kind.type_name())).then(|| {
                    format!(
                        "detector type {} does not apply to a class signal: it needs ordered values; use one of {}",
                        kind.type_name(),
                        CLASS_DETECTOR_TYPES.join(", ")
                    )
                })
            });
            Some(SignalConfig {
                histogram: counter?,
                detectors: detectors?,
                kind: SignalKind::Classes { label: label? },
            })
        })
    }

    /// The `correct_histogram` and `labels_delay` keys of a histogram
    /// signal.
    pub(super) fn signal_kind(&mut self, fields: &Fields<'_>) -> Option<SignalKind> {
        let correct = self.optional(fields, "correct_histogram", None, |d, n, p| {
            d.histogram(n, p).map(Some)
        });
        let delay_node = fields.get("labels_delay");
        let delay = self.optional(fields, "labels_delay", DEFAULT_LABELS_DELAY, Self::duration);
        match (correct?, delay?) {
            (Some(histogram), labels_delay) => Some(SignalKind::Labelled(CorrectHistogram {
                histogram,
                labels_delay,
            })),
            (None, _) if delay_node.is_some() => {
                let line = delay_node.map_or(fields.line, |n| n.line);
                self.report(
                    line,
                    &fields.path("labels_delay"),
                    "labels_delay needs correct_histogram: it delays the correctness query",
                );
                None
            }
            (None, _) => Some(SignalKind::Histogram),
        }
    }

    /// The `detectors` of a signal, each checked by `refuse` (a message
    /// when the type does not apply to the signal).
    pub(super) fn signal_detectors(
        &mut self,
        fields: &Fields<'_>,
        refuse: &dyn Fn(&DetectorKind) -> Option<String>,
    ) -> Option<Vec<DetectorConfig>> {
        let node = fields.get("detectors");
        let detectors = self.required(fields, "detectors", Self::detectors)?;
        let items = match node.map(|n| &n.kind) {
            Some(Kind::Sequence(items)) => items.as_slice(),
            _ => &[],
        };
        let mut ok = true;
        for (index, detector) in detectors.iter().enumerate() {
            if let Some(message) = refuse(&detector.kind) {
                let line = items.get(index).map_or(fields.line, |item| item.line);
                self.report(
                    line,
                    &format!("{}[{index}].type", fields.path("detectors")),
                    message,
                );
                ok = false;
            }
        }
        ok.then_some(detectors)
    }

    /// `accuracy_drop` reads top-class confidence: a message for it on any
    /// other signal.
    pub(super) fn accuracy_only_on_confidence(
        name: &str,
        kind: &SignalKind,
    ) -> impl Fn(&DetectorKind) -> Option<String> + use<> {
        let confidence = matches!(kind, SignalKind::Labelled(_)) || name == CONFIDENCE_SIGNAL;
        move |detector| {
            (!confidence && matches!(detector, DetectorKind::AccuracyDrop(_))).then(|| {
                format!(
                    "accuracy_drop reads top-class confidence: use it on the signal named {CONFIDENCE_SIGNAL} or on one with correct_histogram"
                )
            })
        }
    }

    /// Reports a class signal whose class label is also a `group_by`
    /// label: each class would be a model of one class. False if any.
    pub(super) fn class_labels_apart(
        &mut self,
        fields: &Fields<'_>,
        group_by: &[String],
        signals: &std::collections::BTreeMap<String, SignalConfig>,
    ) -> bool {
        let mut ok = true;
        for (name, signal) in signals {
            if let SignalKind::Classes { label } = &signal.kind
                && group_by.contains(label)
            {
                let line = fields.get("signals").map_or(fields.line, |n| n.line);
                self.report(
                    line,
                    &format!("{}.{name}.label", fields.path("signals")),
                    format!("the class label {label} is also in group_by: each class would count as a model of one class"),
                );
                ok = false;
            }
        }
        ok
    }

    /// The label that names a class: a label name, not `le` and not one
    /// the sidecar exports.
    fn class_label(&mut self, node: &Node, path: &str) -> Option<String> {
        let label = self.string(node, path)?;
        let problem = if !is_label_name(&label) || label == "__name__" {
            Some(format!("invalid label name {}", shown(node)))
        } else if ["le", "monitor", "signal", "detector", "q", "window"].contains(&label.as_str()) {
            Some(format!(
                "{label} cannot be the class label: model-monitor uses a {label} label itself"
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            self.report(node.line, path, message);
            return None;
        }
        Some(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, parse_str_with_env};

    /// A config with one monitor whose `signals:` section is `signals`,
    /// indented by six spaces.
    fn config(signals: &str) -> String {
        format!(
            "prometheus: {{url: 'http://prom:9090'}}\nmonitors:\n  - name: m\n    signals:\n{signals}"
        )
    }

    fn parse(signals: &str) -> Result<Config, Vec<String>> {
        parse_str_with_env(&config(signals), "c.yml", &|_| None).map_err(|error| error.lines())
    }

    #[test]
    fn a_class_signal_reads_counter_label_and_category_detectors() {
        let config = parse(
            "      classes:\n        counter: model_predictions_total\n        label: class\n        detectors: [{type: chi_square}, {type: psi}, {type: jensen_shannon}]\n",
        )
        .unwrap();
        let signal = &config.monitors[0].signals["classes"];
        assert_eq!(signal.histogram, "model_predictions_total");
        assert_eq!(
            signal.kind,
            SignalKind::Classes {
                label: "class".to_owned()
            }
        );
        assert_eq!(signal.detectors.len(), 3);
        assert!(!signal.is_confidence("classes"));
    }

    #[test]
    fn ordered_value_detectors_on_a_class_signal_are_named_and_refused() {
        let problems = parse(
            "      classes:\n        counter: model_predictions_total\n        label: class\n        detectors:\n          - {type: psi}\n          - {type: ks}\n          - {type: wasserstein}\n",
        )
        .unwrap_err();
        assert_eq!(
            problems,
            [
                "10: monitors[0].signals.classes.detectors[1].type: detector type ks does not apply to a class signal: it needs ordered values; use one of chi_square, psi, jensen_shannon, hellinger",
                "11: monitors[0].signals.classes.detectors[2].type: detector type wasserstein does not apply to a class signal: it needs ordered values; use one of chi_square, psi, jensen_shannon, hellinger",
            ]
        );
        let problems = parse(
            "      classes:\n        counter: model_predictions_total\n        label: le\n        detectors: [{type: psi}]\n",
        )
        .unwrap_err();
        assert_eq!(
            problems,
            [
                "7: monitors[0].signals.classes.label: le cannot be the class label: model-monitor uses a le label itself"
            ]
        );
    }

    #[test]
    fn a_confidence_signal_reads_its_correct_histogram_and_labels_delay() {
        let config = parse(
            "      scores:\n        histogram: model_prediction_confidence\n        correct_histogram: model_prediction_confidence_correct\n        labels_delay: 1h\n        detectors: [{type: accuracy_drop}]\n",
        )
        .unwrap();
        let signal = &config.monitors[0].signals["scores"];
        assert_eq!(
            signal.kind,
            SignalKind::Labelled(CorrectHistogram {
                histogram: "model_prediction_confidence_correct".to_owned(),
                labels_delay: Duration::from_secs(3600),
            })
        );
        assert!(signal.is_confidence("scores"));
        let DetectorKind::AccuracyDrop(rule) = signal.detectors[0].kind else {
            panic!("{:?}", signal.detectors[0]);
        };
        assert_eq!(rule.min_effect, 0.02);
        assert_eq!(rule.false_alarm_rate, 0.001);
    }

    #[test]
    fn accuracy_drop_off_confidence_and_a_delay_without_labels_are_refused() {
        let problems = parse(
            "      latency:\n        histogram: model_request_duration_seconds\n        labels_delay: 1h\n        detectors: [{type: accuracy_drop}]\n",
        )
        .unwrap_err();
        assert_eq!(
            problems,
            [
                "7: monitors[0].signals.latency.labels_delay: labels_delay needs correct_histogram: it delays the correctness query",
                "8: monitors[0].signals.latency.detectors[0].type: accuracy_drop reads top-class confidence: use it on the signal named confidence or on one with correct_histogram",
            ]
        );
        let ok = parse(
            "      confidence:\n        histogram: model_prediction_confidence\n        detectors: [{type: accuracy_drop, min_effect: 0.05}]\n",
        )
        .unwrap();
        let text = config(
            "      classes:\n        counter: model_predictions_total\n        label: version\n        detectors: [{type: psi}]\n",
        );
        let problems = parse_str_with_env(&text, "c.yml", &|_| None)
            .unwrap_err()
            .problems;
        assert_eq!(
            problems[0].message,
            "the class label version is also in group_by: each class would count as a model of one class"
        );
        assert_eq!(problems[0].path, "monitors[0].signals.classes.label");
        assert!(ok.monitors[0].signals["confidence"].is_confidence("confidence"));
    }
}
