//! Checks every statistic and detector against values computed
//! independently with numpy and scipy by `scripts/gen_stat_fixtures.py`
//! (stored in `tests/fixtures/statistics.json`).
//!
//! Scores, means, standard deviations and quantiles must agree to a relative
//! 1e-9, p-values and thresholds to a relative 1e-6; verdicts, errors,
//! correction counts and alert kinds exactly. Every failure names the case
//! and the field, and all failures are reported together.

use model_monitor::config::{DetectorConfig, DetectorKind, TestRule, ZScoreBaseline};
use model_monitor::detectors::{
    self, AlertKind, DEFAULT_FALSE_ALARM_RATE, DetectError, Verdict, Windows,
};
use model_monitor::stats::{Distribution, Histogram};
use serde_json::Value;

const SCORE_TOLERANCE: f64 = 1e-9;
const PROBABILITY_TOLERANCE: f64 = 1e-6;
/// Differences below this are equal whatever the relative error: p-values
/// that underflow in one implementation and not the other.
const ABSOLUTE_FLOOR: f64 = 1e-300;

fn fixtures() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/statistics.json"
    );
    let text = std::fs::read_to_string(path).expect("fixture file is readable");
    serde_json::from_str(&text).expect("fixture file is valid JSON")
}

/// A fixture number: JSON numbers, or "inf"/"-inf" for infinities.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) if text == "inf" => Some(f64::INFINITY),
        Value::String(text) if text == "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("an array of numbers")
        .iter()
        .map(|item| number(item).expect("a number"))
        .collect()
}

/// Collects mismatches so one run reports all of them.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
    checks: usize,
}

impl Report {
    fn close(&mut self, what: &str, actual: f64, expected: f64, tolerance: f64) {
        self.checks += 1;
        let equal = actual == expected
            || (actual - expected).abs() <= tolerance * actual.abs().max(expected.abs())
            || (actual - expected).abs() <= ABSOLUTE_FLOOR;
        if !equal {
            self.failures
                .push(format!("{what}: got {actual:e}, scipy says {expected:e}"));
        }
    }

    fn optional(&mut self, what: &str, actual: Option<f64>, expected: &Value, tolerance: f64) {
        match (actual, number(expected)) {
            (Some(actual), Some(expected)) => self.close(what, actual, expected, tolerance),
            (None, None) => self.checks += 1,
            (actual, _) => self
                .failures
                .push(format!("{what}: got {actual:?}, scipy says {expected}")),
        }
    }

    fn same(&mut self, what: &str, actual: &str, expected: &str) {
        self.checks += 1;
        if actual != expected {
            self.failures
                .push(format!("{what}: got {actual}, expected {expected}"));
        }
    }
}

fn distribution(bounds: &[f64], window: &Value) -> Distribution {
    let sum = number(&window["sum"]);
    if let Some(cumulative) = window.get("cumulative") {
        Distribution::from_histogram(&Histogram {
            bounds: bounds.to_vec(),
            cumulative: numbers(cumulative),
            sum,
        })
        .expect("fixture histogram is valid")
    } else {
        Distribution::from_bucket_counts(bounds.to_vec(), numbers(&window["counts"]), sum)
            .expect("fixture counts are valid")
    }
}

fn check_distribution(report: &mut Report, what: &str, actual: &Distribution, expected: &Value) {
    report.close(
        &format!("{what}.total"),
        actual.total(),
        number(&expected["total"]).unwrap(),
        SCORE_TOLERANCE,
    );
    report.same(
        &format!("{what}.corrections"),
        &actual.corrections().to_string(),
        &expected["corrections"].to_string(),
    );
    for (index, (actual, expected)) in actual
        .representatives()
        .iter()
        .zip(numbers(&expected["representatives"]))
        .enumerate()
    {
        report.close(
            &format!("{what}.representatives[{index}]"),
            *actual,
            expected,
            SCORE_TOLERANCE,
        );
    }
    let empty = actual.total() == 0.0;
    let statistics = [
        ("mean", actual.mean()),
        ("stddev", actual.stddev()),
        ("p50", actual.quantile(0.5)),
        ("p95", actual.quantile(0.95)),
        ("p99", actual.quantile(0.99)),
    ];
    for (field, value) in statistics {
        let path = format!("{what}.{field}");
        if empty {
            report.checks += 1;
            if !(value.is_nan() && expected[field].is_null()) {
                report.failures.push(format!(
                    "{path}: got {value} for an empty window, expected NaN"
                ));
            }
        } else {
            report.optional(&path, Some(value), &expected[field], SCORE_TOLERANCE);
        }
    }
}

/// The config entry a fixture detector describes, with the defaults of
/// `docs/statistics.md` (section 3.4) for settings it leaves out.
fn detector_config(kind: &str, settings: &Value) -> DetectorConfig {
    let rule = |min_effect: f64| TestRule {
        threshold: number(&settings["threshold"]),
        false_alarm_rate: number(&settings["false_alarm_rate"]).unwrap_or(DEFAULT_FALSE_ALARM_RATE),
        min_effect: number(&settings["min_effect"]).unwrap_or(min_effect),
    };
    let setting = |key: &str| number(&settings[key]).expect("setting is present");
    let kind = match kind {
        "psi" => DetectorKind::Psi(rule(0.1)),
        "ks" => DetectorKind::Ks(rule(0.1)),
        "chi_square" => DetectorKind::ChiSquare(rule(0.1)),
        "zscore" => DetectorKind::ZScore {
            rule: rule(0.2),
            baseline: settings.get("baseline").map(|baseline| ZScoreBaseline {
                mean: number(&baseline["mean"]).unwrap(),
                std: number(&baseline["std"]).unwrap(),
            }),
        },
        "jensen_shannon" => DetectorKind::JensenShannon {
            threshold: setting("threshold"),
        },
        "hellinger" => DetectorKind::Hellinger {
            threshold: setting("threshold"),
        },
        "wasserstein" => DetectorKind::Wasserstein {
            threshold: setting("threshold"),
        },
        "quantile_ratio" => DetectorKind::QuantileRatio {
            quantile: setting("quantile"),
            max_ratio: setting("max_ratio"),
        },
        "quantile_slo" => DetectorKind::QuantileSlo {
            quantile: setting("quantile"),
            max: setting("max"),
        },
        "exceedance" => DetectorKind::Exceedance {
            quantile: number(&settings["quantile"]).unwrap_or(0.99),
            rule: rule(0.5),
        },
        other => panic!("unknown detector type {other} in the fixtures"),
    };
    DetectorConfig {
        name: format!("fixture_{kind_name}", kind_name = kind.type_name()),
        kind,
    }
}

fn error_name(error: &DetectError) -> String {
    match error {
        DetectError::BucketMismatch => "bucket_mismatch".to_owned(),
        DetectError::EmptyWindow(which) => format!("empty_window:{which}"),
        DetectError::Undefined(_) => "undefined".to_owned(),
    }
}

fn verdict_name(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Drift => "drift",
        Verdict::NoDrift => "no_drift",
        Verdict::InsufficientSamples { .. } => "insufficient_samples",
        Verdict::YoungSeries { .. } => "young_series",
    }
}

#[test]
fn statistics_and_detectors_match_scipy() {
    let fixtures = fixtures();
    let cases = fixtures["cases"].as_array().expect("cases");
    assert!(cases.len() >= 12, "expected at least 12 fixture cases");
    let mut report = Report::default();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let bounds = numbers(&case["bounds"]);
        let current_bounds = if case["current_bounds"].is_null() {
            bounds.clone()
        } else {
            numbers(&case["current_bounds"])
        };
        let reference = distribution(&bounds, &case["reference"]);
        let current = distribution(&current_bounds, &case["current"]);
        check_distribution(
            &mut report,
            &format!("{name}: reference"),
            &reference,
            &case["expected"]["reference"],
        );
        check_distribution(
            &mut report,
            &format!("{name}: current"),
            &current,
            &case["expected"]["current"],
        );
        let min_samples = number(&case["min_samples"]).unwrap();
        let windows = Windows {
            reference: &reference,
            current: &current,
        };
        for (index, entry) in case["detectors"].as_array().unwrap().iter().enumerate() {
            let kind = entry["type"].as_str().unwrap();
            let what = format!("{name}: detectors[{index}] {kind}");
            let config = detector_config(kind, &entry["settings"]);
            let detector = detectors::from_config(&config, min_samples);
            let expected = &entry["expected"];
            report.same(&format!("{what}.name"), detector.name(), &config.name);
            let expected_kind = match expected["kind"].as_str().unwrap() {
                "performance" => AlertKind::Performance,
                _ => AlertKind::Drift,
            };
            report.same(
                &format!("{what}.kind"),
                detector.kind().as_str(),
                expected_kind.as_str(),
            );
            match (detector.detect(windows), expected["error"].as_str()) {
                (Ok(detection), None) => {
                    report.close(
                        &format!("{what}.score"),
                        detection.score,
                        number(&expected["score"]).unwrap(),
                        SCORE_TOLERANCE,
                    );
                    report.optional(
                        &format!("{what}.p_value"),
                        detection.p_value,
                        &expected["p_value"],
                        PROBABILITY_TOLERANCE,
                    );
                    report.close(
                        &format!("{what}.threshold"),
                        detection.threshold,
                        number(&expected["threshold"]).unwrap(),
                        PROBABILITY_TOLERANCE,
                    );
                    report.same(
                        &format!("{what}.verdict"),
                        verdict_name(&detection.verdict),
                        expected["verdict"].as_str().unwrap(),
                    );
                }
                (Err(error), Some(expected_error)) => {
                    report.same(
                        &format!("{what}.error"),
                        &error_name(&error),
                        expected_error,
                    );
                    let message = error.to_string();
                    report.checks += 1;
                    if message.starts_with(char::is_uppercase) || message.ends_with('.') {
                        report
                            .failures
                            .push(format!("{what}.error: badly formed message {message:?}"));
                    }
                }
                (Ok(detection), Some(expected_error)) => report.failures.push(format!(
                    "{what}: expected error {expected_error}, got {detection:?}"
                )),
                (Err(error), None) => report
                    .failures
                    .push(format!("{what}: unexpected error {error}")),
            }
        }
    }
    assert!(
        report.failures.is_empty(),
        "{} of {} checks failed:\n{}",
        report.failures.len(),
        report.checks,
        report.failures.join("\n")
    );
    assert!(report.checks > 500, "only {} checks ran", report.checks);
}
