//! Class mix, estimated and realized accuracy and calibration: first every
//! number against the values `scripts/gen_signal_fixtures.py` computes
//! with scipy and scikit-learn (`tests/fixtures/signals.json`), then end to end:
//! `model-monitor simulate` serves three models whose predictions are right
//! with probability 0.9 times their confidence (`--calibration=0.9`), a real
//! Prometheus scrapes it, and `model-monitor run` reads the class counter
//! and the correct-predictions histogram from that Prometheus. After the
//! shift only `model-1`'s class mix and accuracy move.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use model_monitor::config::{DetectorConfig, DetectorKind, TestRule};
use model_monitor::detectors::{self, Detection, Windows};
use model_monitor::stats::Distribution;
use model_monitor::stats::calibration::labelled_accuracy;
use model_monitor::stats::classes::{class_distribution, shares, union_classes};
use serde_json::Value;

use crate::support::exposition::sample;
use crate::support::process::{get, http_client, wait_for};
use crate::support::prometheus::PrometheusServer;
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_simulation_with};

const DRIFT_AFTER_SECS: u64 = 45;

fn fixtures() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/signals.json");
    let text = std::fs::read_to_string(path).expect("fixture file is readable");
    serde_json::from_str(&text).expect("fixture file is valid JSON")
}

fn number(value: &Value) -> f64 {
    match value {
        Value::String(text) if text == "inf" => f64::INFINITY,
        value => value
            .as_f64()
            .unwrap_or_else(|| panic!("a number: {value}")),
    }
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(number)
        .collect()
}

/// Agreement to a relative 1e-9 (1e-6 for probabilities), or both tiny.
fn assert_close(what: &str, actual: f64, expected: f64, tolerance: f64) {
    let equal = actual == expected
        || (actual - expected).abs() <= tolerance * actual.abs().max(expected.abs())
        || (actual - expected).abs() <= 1e-300;
    assert!(
        equal,
        "{what}: got {actual:e}, the fixture says {expected:e}"
    );
}

fn assert_detection(what: &str, detection: &Detection, expected: &Value) {
    assert_close(
        &format!("{what} score"),
        detection.score,
        number(&expected["score"]),
        1e-9,
    );
    assert_close(
        &format!("{what} threshold"),
        detection.threshold,
        number(&expected["threshold"]),
        1e-6,
    );
    if let Some(p_value) = detection.p_value {
        assert_close(
            &format!("{what} p-value"),
            p_value,
            number(&expected["p_value"]),
            1e-6,
        );
    }
    // The verdict's name as the status API writes it.
    let verdict = serde_json::to_value(&detection.verdict).unwrap();
    assert_eq!(verdict["verdict"], expected["verdict"], "{what} verdict");
}

/// A fixture detector with the defaults of `docs/statistics.md`.
fn detector(kind: &str, settings: &Value, min_samples: f64) -> Box<dyn detectors::DriftDetector> {
    let rule = |min_effect: f64| TestRule {
        threshold: settings.get("threshold").map(number),
        false_alarm_rate: settings.get("false_alarm_rate").map_or(0.001, number),
        min_effect: settings.get("min_effect").map_or(min_effect, number),
    };
    let threshold = || number(&settings["threshold"]);
    let kind = match kind {
        "psi" => DetectorKind::Psi(rule(0.1)),
        "chi_square" => DetectorKind::ChiSquare(rule(0.1)),
        "jensen_shannon" => DetectorKind::JensenShannon {
            threshold: threshold(),
        },
        "hellinger" => DetectorKind::Hellinger {
            threshold: threshold(),
        },
        "accuracy_drop" => DetectorKind::AccuracyDrop(rule(0.02)),
        other => panic!("unknown detector type {other} in the fixtures"),
    };
    detectors::from_config(&DetectorConfig::new(kind), min_samples)
}

fn class_counts(value: &Value) -> BTreeMap<String, f64> {
    value
        .as_object()
        .expect("class counts")
        .iter()
        .map(|(class, count)| (class.clone(), number(count)))
        .collect()
}

#[test]
fn class_windows_agree_with_scipy_on_the_union_of_their_classes() {
    let fixtures = fixtures();
    let cases = fixtures["classes"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (reference, current) = (
            class_counts(&case["reference"]),
            class_counts(&case["current"]),
        );
        let classes = union_classes([&reference, &current]);
        let expected_classes: Vec<&str> = case["expected"]["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|class| class.as_str().unwrap())
            .collect();
        assert_eq!(classes, expected_classes, "{name} classes");
        let reference = class_distribution(&classes, &reference).unwrap();
        let current = class_distribution(&classes, &current).unwrap();
        for (window, distribution) in [("reference", &reference), ("current", &current)] {
            let expected = numbers(&case["expected"][format!("{window}_shares")]);
            for (index, (actual, expected)) in
                shares(distribution).iter().zip(&expected).enumerate()
            {
                assert_close(
                    &format!("{name} {window} share {index}"),
                    *actual,
                    *expected,
                    1e-12,
                );
            }
        }
        for fixture in case["detectors"].as_array().unwrap() {
            let kind = fixture["type"].as_str().unwrap();
            let detection = detector(kind, &fixture["settings"], number(&case["min_samples"]))
                .detect(Windows {
                    reference: &reference,
                    current: &current,
                })
                .unwrap_or_else(|error| panic!("{name} {kind}: {error}"));
            assert_detection(&format!("{name} {kind}"), &detection, &fixture["expected"]);
        }
    }
}

fn confidence_window(bounds: &[f64], window: &Value) -> Distribution {
    let sum = window.get("sum").filter(|s| !s.is_null()).map(number);
    Distribution::from_bucket_counts(bounds.to_vec(), numbers(&window["counts"]), sum).unwrap()
}

#[test]
fn accuracy_drop_agrees_with_scipy() {
    let fixtures = fixtures();
    for case in fixtures["accuracy_drop"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let bounds = numbers(&case["bounds"]);
        let reference = confidence_window(&bounds, &case["reference"]);
        let current = confidence_window(&bounds, &case["current"]);
        let detection = detector(
            "accuracy_drop",
            &case["settings"],
            number(&case["min_samples"]),
        )
        .detect(Windows {
            reference: &reference,
            current: &current,
        })
        .unwrap();
        assert_detection(name, &detection, &case["expected"]);
    }
}

#[test]
fn realized_accuracy_and_calibration_error_agree_with_scikit_learn() {
    let fixtures = fixtures();
    for case in fixtures["labelled"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let bounds = numbers(&case["bounds"]);
        let result = labelled_accuracy(
            &confidence_window(&bounds, &case["predictions"]),
            &confidence_window(&bounds, &case["correct"]),
        )
        .unwrap();
        let expected = &case["expected"];
        for (field, actual) in [
            ("samples", result.samples),
            ("estimated", result.estimated),
            ("realized", result.realized),
            ("gap", result.gap),
            ("calibration_error", result.calibration_error),
        ] {
            // scikit-learn sums per-sample floats: agreement to 1e-9.
            assert_close(
                &format!("{name} {field}"),
                actual,
                number(&expected[field]),
                1e-9,
            );
        }
    }
}

/// The sidecar's config: a class signal and a confidence signal with its
/// correct predictions, counted 4 s after the predictions.
const CONFIG: &str = r#"prometheus:
  url: ${PROMETHEUS_URL}
  timeout: 5s
evaluation:
  interval: 2s
monitors:
  - name: signals
    selector: '{job="simulate"}'
    window: 20s
    reference: {window: 30s}
    min_samples: 300
    signals:
      confidence:
        histogram: model_prediction_confidence
        correct_histogram: model_prediction_confidence_correct
        labels_delay: 4s
        detectors:
          - {type: accuracy_drop}
      classes:
        counter: model_predictions_total
        label: class
        detectors:
          - {type: chi_square}
          - {type: psi}
          - {type: jensen_shannon}
"#;

fn gauge(text: &str, name: &str, model: &str, extra: &[(&str, &str)]) -> Option<f64> {
    let mut labels = vec![("model", model)];
    labels.extend_from_slice(extra);
    sample(text, name, &labels)
}

fn drifting(text: &str, model: &str, signal: &str, detector: &str) -> Option<f64> {
    gauge(
        text,
        "model_monitor_drift_detected",
        model,
        &[("signal", signal), ("detector", detector)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_mix_drift_and_accuracy_are_seen_on_the_drifted_model_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = http_client();
    // Three classes, the last one's weight doubling at the shift: shares
    // 0.4, 0.3, 0.3 become 0.31, 0.23, 0.46.
    let (_simulate, simulate_port) = start_drifting_simulation_with(
        dir.path(),
        Duration::from_secs(DRIFT_AFTER_SECS),
        &["--class-mix=0.4,0.3,0.3", "--calibration=0.9"],
    );
    let drift_at = Instant::now() + Duration::from_secs(DRIFT_AFTER_SECS);
    let prometheus = PrometheusServer::start(dir.path(), &[format!("127.0.0.1:{simulate_port}")]);
    prometheus.wait_ready(&client).await;
    let config = SidecarConfig::from_text(CONFIG).set("PROMETHEUS_URL", &prometheus.url());
    let sidecar = Sidecar::start(dir.path(), &config);
    let metrics_url = sidecar.url("/metrics");

    // Before the shift, every model's accuracy numbers are those of the
    // simulation: estimated accuracy is the mean confidence, in the range
    // the simulator draws it from (0.80 to 0.90); realized accuracy 0.9
    // times it; the calibration error and the gap about 0.1 times it.
    let text = wait_for(
        "accuracy gauges of all three models",
        Duration::from_secs(40),
        || async {
            let (_, text) = get(&client, &metrics_url).await?;
            ["model-0", "model-1", "model-2"]
                .iter()
                .all(|model| {
                    gauge(&text, "model_monitor_realized_accuracy", model, &[]).is_some()
                        && gauge(
                            &text,
                            "model_monitor_estimated_accuracy",
                            model,
                            &[("window", "reference")],
                        )
                        .is_some()
                })
                .then_some(text)
        },
    )
    .await;
    assert!(
        Instant::now() < drift_at,
        "the accuracy gauges came before the shift"
    );
    for model in ["model-0", "model-1", "model-2"] {
        let estimated = gauge(
            &text,
            "model_monitor_estimated_accuracy",
            model,
            &[("window", "current")],
        )
        .unwrap();
        let realized = gauge(&text, "model_monitor_realized_accuracy", model, &[]).unwrap();
        let error = gauge(&text, "model_monitor_calibration_error", model, &[]).unwrap();
        let gap = gauge(&text, "model_monitor_accuracy_gap", model, &[]).unwrap();
        let context = format!(
            "{model}: estimated {estimated}, realized {realized}, calibration error {error}, gap {gap}"
        );
        assert!((0.77..0.93).contains(&estimated), "{context}");
        // About 500 labelled predictions: a binomial sd of 0.02.
        assert!((realized - 0.9 * estimated).abs() < 0.07, "{context}");
        assert!((0.02..0.2).contains(&error), "{context}");
        assert!((0.0..0.2).contains(&gap), "{context}");
        for class in ["class-0", "class-1", "class-2"] {
            let share = gauge(
                &text,
                "model_monitor_class_share",
                model,
                &[("class", class), ("window", "current")],
            )
            .unwrap_or_else(|| panic!("{model} {class} share:\n{text}"));
            assert!((0.15..0.55).contains(&share), "{model} {class}: {share}");
        }
    }
    // A class signal has no mean or quantile.
    assert_eq!(
        gauge(
            &text,
            "model_monitor_signal_mean",
            "model-0",
            &[("signal", "classes")]
        ),
        None
    );

    // The class mix of model-1 drifts; the others never do. Its accuracy
    // drops too (the drift lowers its confidence by 0.18).
    let stationary = ["model-0", "model-2"];
    let bound = Duration::from_secs(45);
    let mut classes_seen = None;
    let mut accuracy_seen = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    loop {
        ticker.tick().await;
        let text = sidecar.metrics(&client).await;
        for model in stationary {
            for (signal, detector) in [
                ("classes", "chi_square"),
                ("classes", "psi"),
                ("confidence", "accuracy_drop"),
            ] {
                assert_ne!(
                    drifting(&text, model, signal, detector),
                    Some(1.0),
                    "false alarm for {model} {signal} by {detector}:\n{text}"
                );
            }
        }
        let now = Instant::now();
        if now < drift_at {
            assert_ne!(
                drifting(&text, "model-1", "classes", "chi_square"),
                Some(1.0)
            );
            continue;
        }
        if classes_seen.is_none()
            && drifting(&text, "model-1", "classes", "chi_square") == Some(1.0)
        {
            classes_seen = Some(now - drift_at);
        }
        if accuracy_seen.is_none()
            && drifting(&text, "model-1", "confidence", "accuracy_drop") == Some(1.0)
        {
            accuracy_seen = Some(now - drift_at);
        }
        if classes_seen.is_some() && accuracy_seen.is_some() {
            let share = gauge(
                &text,
                "model_monitor_class_share",
                "model-1",
                &[("class", "class-2"), ("window", "current")],
            )
            .unwrap();
            assert!(share > 0.36, "the drifted class's share grew: {share}");
            break;
        }
        assert!(
            now - drift_at < bound,
            "model-1 drift not detected within {bound:?} of the shift (classes: {classes_seen:?}, accuracy: {accuracy_seen:?}):\n{text}"
        );
    }
    eprintln!("detected after: classes {classes_seen:?}, accuracy {accuracy_seen:?}");
}
