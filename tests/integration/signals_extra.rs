//! Class mix, estimated and realized accuracy and calibration end to end:
//! `model-monitor simulate` serves three models whose predictions are right
//! with probability 0.9 times their confidence (`--calibration=0.9`), a real
//! Prometheus scrapes it, and `model-monitor run` reads the class counter
//! and the correct-predictions histogram from that Prometheus. After the
//! shift only `model-1`'s class mix and accuracy move.

use std::time::{Duration, Instant};

use crate::support::exposition::sample;
use crate::support::process::{get, http_client, wait_for};
use crate::support::prometheus::PrometheusServer;
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_simulation_with};

const DRIFT_AFTER_SECS: u64 = 45;

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
        let Some((200, text)) = get(&client, &metrics_url).await else {
            panic!(
                "/metrics not served; sidecar log:\n{}",
                sidecar.process.log_text()
            );
        };
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
