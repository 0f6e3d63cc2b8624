//! The sidecar against a real VictoriaMetrics: VictoriaMetrics scrapes
//! `model-monitor simulate` itself (three models, one drifting), and two
//! sidecars read its query API, one with an evaluation delay
//! (`evaluation.query_offset`) past VictoriaMetrics' `-search.latencyOffset`
//! and one without.
//!
//! Every number the delayed sidecar exports must be VictoriaMetrics' own
//! answer: after the fact, the test sends the sidecar's exact queries (from
//! the library's query builder) to VictoriaMetrics at the exported
//! evaluation time and recomputes each number from the raw answer, in a few
//! obviously right lines (counts as sums, KS's D as the largest gap between
//! cumulative shares, PSI as `docs/statistics.md` 4.1 writes it, quantiles
//! as 1.7 does). Without the delay VictoriaMetrics answers an instant query
//! closer than `-search.latencyOffset` to its clock for `now - offset`
//! instead, so the undelayed sidecar's numbers are measured against the
//! same recomputation and printed, not asserted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use model_monitor::config::MonitorConfig;
use model_monitor::sources::WindowRole;
use model_monitor::sources::prometheus::histogram_query;
use serde_json::Value;

use crate::support::exposition::sample;
use crate::support::process::{free_port, get, http_client};
use crate::support::sidecar::{
    Sidecar, SidecarConfig, start_drifting_simulation, status_detectors,
};
use crate::support::victoriametrics::VictoriaMetrics;

/// VictoriaMetrics' `-search.latencyOffset` here (30s by default; shorter
/// keeps the test short).
const LATENCY_OFFSET: &str = "5s";
/// The delayed sidecar's `query_offset`: the latency offset, a 1s scrape
/// interval and VictoriaMetrics' flush of new samples, with room to spare.
const QUERY_OFFSET: &str = "10s";
/// Evaluations compared, one after the other.
const EVALUATIONS: usize = 5;
const MODELS: [&str; 3] = ["model-0", "model-1", "model-2"];
const CONFIDENCE: &str = "model_prediction_confidence";
const LATENCY: &str = "model_request_duration_seconds";

fn sidecar_config(url: &str, name: &str, query_offset: &str) -> SidecarConfig {
    SidecarConfig::simulated(url, name)
        .set("WINDOW", "10s")
        .set("REFERENCE_WINDOW", "10s")
        .set("EVALUATION_INTERVAL", "2s")
        .without_detectors(&[
            "chi_square",
            "zscore",
            "jensen_shannon",
            "hellinger",
            "wasserstein",
            "quantile_ratio",
        ])
        .with_prometheus("flavor", "victoriametrics")
        .with_evaluation("query_offset", query_offset)
}

/// One evaluation as the sidecar exported it: its time and `/metrics`.
struct Exported {
    /// Milliseconds since the epoch.
    millis: i64,
    metrics: String,
}

impl Exported {
    /// The evaluation time as the sidecar sends it (`1700000000.250`).
    fn time_param(&self) -> String {
        format!(
            "{}.{:03}",
            self.millis.div_euclid(1000),
            self.millis.rem_euclid(1000)
        )
    }
}

async fn status(client: &reqwest::Client, sidecar: &Sidecar) -> Option<Value> {
    match get(client, &sidecar.url("/api/v1/status")).await? {
        (200, text) => serde_json::from_str(&text).ok(),
        _ => None,
    }
}

fn status_millis(status: &Value) -> Option<i64> {
    let text = status["data"]["evaluation"]["timestamp"].as_str()?;
    let time: chrono::DateTime<chrono::Utc> = text.parse().ok()?;
    Some(time.timestamp_millis())
}

/// `/metrics` of one evaluation, read between two status answers of that
/// same evaluation (so the scrape cannot mix two of them), when every model
/// has a KS score on its confidence; and whether any model's KS verdict
/// was young (`docs/statistics.md` 2.1).
async fn capture(client: &reqwest::Client, sidecar: &Sidecar) -> Option<(Exported, bool)> {
    let before = status(client, sidecar).await?;
    let (200, metrics) = get(client, &sidecar.url("/metrics")).await? else {
        return None;
    };
    let after = status(client, sidecar).await?;
    let millis = status_millis(&before)?;
    let exported = sample(
        &metrics,
        "model_monitor_last_evaluation_timestamp_seconds",
        &[],
    )?;
    if status_millis(&after) != Some(millis) || (exported * 1000.0).round() as i64 != millis {
        return None;
    }
    let scored = MODELS.iter().all(|model| {
        sample(
            &metrics,
            "model_monitor_drift_score",
            &[
                ("model", model),
                ("signal", "confidence"),
                ("detector", "ks"),
            ],
        )
        .is_some()
    });
    let young = MODELS.iter().any(|model| {
        status_detectors(&before, model, "confidence")
            .iter()
            .any(|d| d["detector"] == "ks" && d["verdict"]["verdict"] == "young_series")
    });
    scored.then_some((Exported { millis, metrics }, young))
}

/// The evaluations of one sidecar once its series are older than both
/// windows, each captured once, in order: every one is compared, none is
/// picked. (The poll catches each 2 s evaluation unless the machine is
/// very busy; a missed one leaves a gap of a grid step, not a choice.)
#[derive(Default)]
struct Run {
    captured: Vec<Exported>,
    young_seen: bool,
}

impl Run {
    fn add(&mut self, (exported, young): (Exported, bool)) {
        self.young_seen |= young;
        if young {
            self.captured.clear();
            return;
        }
        if self
            .captured
            .last()
            .is_none_or(|last| exported.millis > last.millis)
        {
            self.captured.push(exported);
        }
    }

    fn done(&self) -> bool {
        self.captured.len() >= EVALUATIONS
    }
}

/// Cumulative bucket counts per model (`le` bound, count), bounds sorted,
/// one bound spelt two ways added up; `le="sum"` and `le="start"` left out.
fn cumulative_per_model(answer: &Value) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut models: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for series in answer["data"]["result"].as_array().expect("a vector") {
        let le = series["metric"]["le"].as_str().expect("an le label");
        let Ok(bound) = le.parse::<f64>() else {
            assert!(le == "sum" || le == "start", "unexpected le {le:?}");
            continue;
        };
        let model = series["metric"]["model"].as_str().expect("a model label");
        let value: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
        models
            .entry(model.to_owned())
            .or_default()
            .push((bound, value));
    }
    for buckets in models.values_mut() {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 += later.1;
            }
            same
        });
        // The running maximum (1.4): cumulative counts never go down.
        let mut highest: f64 = 0.0;
        for bucket in buckets.iter_mut() {
            highest = highest.max(bucket.1);
            bucket.1 = highest;
        }
    }
    models
}

fn total(cumulative: &[(f64, f64)]) -> f64 {
    cumulative.last().map_or(0.0, |last| last.1)
}

/// `histogram_query`'s rule (`docs/statistics.md` 1.7).
fn quantile(cumulative: &[(f64, f64)], q: f64) -> f64 {
    let rank = q * total(cumulative);
    let finite = &cumulative[..cumulative.len() - 1];
    for (k, &(bound, count)) in finite.iter().enumerate() {
        if count >= rank {
            if k == 0 && bound <= 0.0 {
                return bound;
            }
            let (start, below) = if k == 0 { (0.0, 0.0) } else { finite[k - 1] };
            return start + (bound - start) * (rank - below) / (count - below);
        }
    }
    finite.last().unwrap().0
}

/// KS's D: the largest gap between the cumulative shares at finite bounds.
fn ks(current: &[(f64, f64)], reference: &[(f64, f64)]) -> f64 {
    let (n, m) = (total(current), total(reference));
    let finite = current.len() - 1;
    (0..finite)
        .map(|k| (current[k].1 / n - reference[k].1 / m).abs())
        .fold(0.0, f64::max)
}

/// PSI over the buckets occupied in either window, each share smoothed by
/// half an observation (4.1).
fn psi(current: &[(f64, f64)], reference: &[(f64, f64)]) -> f64 {
    let counts = |cumulative: &[(f64, f64)]| -> Vec<f64> {
        let mut below = 0.0;
        cumulative
            .iter()
            .map(|&(_, count)| {
                let bucket = count - below;
                below = count;
                bucket
            })
            .collect()
    };
    let (b, a) = (counts(current), counts(reference));
    let occupied: Vec<usize> = (0..a.len()).filter(|&i| a[i] > 0.0 || b[i] > 0.0).collect();
    let half_k = 0.5 * occupied.len() as f64;
    let (n, m) = (total(current), total(reference));
    occupied
        .into_iter()
        .map(|i| {
            let p = (a[i] + 0.5) / (m + half_k);
            let q = (b[i] + 0.5) / (n + half_k);
            (q - p) * (q / p).ln()
        })
        .sum()
}

/// The exported numbers that differ from the recomputation, as lines.
async fn mismatches(
    client: &reqwest::Client,
    vm: &VictoriaMetrics,
    monitor: &MonitorConfig,
    exported: &Exported,
) -> Vec<String> {
    let time = exported.time_param();
    let answer = |histogram: &str, role: WindowRole| {
        let query = histogram_query(monitor, histogram, role).expect("a PromQL window");
        let time = time.clone();
        async move { cumulative_per_model(&vm.query(client, &query, &time).await) }
    };
    let current = answer(CONFIDENCE, WindowRole::Current).await;
    let reference = answer(CONFIDENCE, WindowRole::Reference).await;
    let latency = answer(LATENCY, WindowRole::Current).await;
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    let mut check = |name: &str, labels: &[(&str, &str)], expected: f64| {
        let got = sample(&exported.metrics, name, labels);
        let close = got.is_some_and(|got| {
            (got - expected).abs() <= 1e-9 * got.abs().max(expected.abs()).max(1.0)
        });
        if !close {
            wrong.push(format!(
                "{name}{labels:?}: exported {got:?}, VictoriaMetrics {expected}"
            ));
        }
    };
    for model in MODELS {
        let (Some(cur), Some(refer), Some(lat)) =
            (current.get(model), reference.get(model), latency.get(model))
        else {
            missing.push(format!("{model} missing from VictoriaMetrics' answers"));
            continue;
        };
        let confidence = [("model", model), ("signal", "confidence")];
        check("model_monitor_signal_samples", &confidence, total(cur));
        check("model_monitor_reference_samples", &confidence, total(refer));
        let detector = |name| {
            [
                ("model", model),
                ("signal", "confidence"),
                ("detector", name),
            ]
        };
        check("model_monitor_drift_score", &detector("ks"), ks(cur, refer));
        check(
            "model_monitor_drift_score",
            &detector("psi"),
            psi(cur, refer),
        );
        for (q, value) in [("0.5", 0.5), ("0.95", 0.95), ("0.99", 0.99)] {
            let labels = [("model", model), ("signal", "confidence"), ("q", q)];
            check(
                "model_monitor_signal_quantile",
                &labels,
                quantile(cur, value),
            );
            let labels = [("model", model), ("signal", "latency"), ("q", q)];
            check(
                "model_monitor_signal_quantile",
                &labels,
                quantile(lat, value),
            );
        }
        let latency = [("model", model), ("signal", "latency")];
        check("model_monitor_signal_samples", &latency, total(lat));
    }
    missing.extend(wrong);
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exported_number_is_victoriametrics_own_answer_at_the_exported_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = http_client();
    let (_simulate, simulate_port) = start_drifting_simulation(dir.path(), Duration::from_secs(30));
    let vm = VictoriaMetrics::start(
        dir.path(),
        &[format!("127.0.0.1:{simulate_port}")],
        LATENCY_OFFSET,
    );
    vm.wait_ready(&client).await;
    let delayed_config = sidecar_config(&vm.url(), "delayed", QUERY_OFFSET);
    let start = |name: &str, config: &SidecarConfig| {
        Sidecar::start_as(
            name,
            dir.path(),
            config,
            free_port(),
            &dir.path().join(name),
        )
    };
    let delayed = start("delayed", &delayed_config);
    let undelayed = start("undelayed", &sidecar_config(&vm.url(), "undelayed", "0s"));

    let (mut with_delay, mut without_delay) = (Run::default(), Run::default());
    let deadline = Instant::now() + Duration::from_secs(150);
    while !(with_delay.done() && without_delay.done()) {
        assert!(
            Instant::now() < deadline,
            "no {EVALUATIONS} scored evaluations after the young period within 150 s (delayed: {}, undelayed: {}); delayed sidecar log:\n{}\nvictoria-metrics log:\n{}",
            with_delay.captured.len(),
            without_delay.captured.len(),
            delayed.process.log_text(),
            vm.process.log_text()
        );
        if !with_delay.done()
            && let Some(captured) = capture(&client, &delayed).await
        {
            with_delay.add(captured);
        }
        if !without_delay.done()
            && let Some(captured) = capture(&client, &undelayed).await
        {
            without_delay.add(captured);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The start probe tells young windows on VictoriaMetrics too: the
    // series began with the test, so the first scored evaluations were young.
    assert!(
        with_delay.young_seen,
        "no young verdict before the series grew older than both windows"
    );

    let monitor = delayed_config.parse().monitors.remove(0);
    for exported in &with_delay.captured {
        let wrong = mismatches(&client, &vm, &monitor, exported).await;
        assert!(
            wrong.is_empty(),
            "evaluation at {}: {} exported numbers differ from VictoriaMetrics' answer:\n{}",
            exported.time_param(),
            wrong.len(),
            wrong.join("\n")
        );
    }
    let mut matched = 0;
    for exported in &without_delay.captured {
        if mismatches(&client, &vm, &monitor, exported)
            .await
            .is_empty()
        {
            matched += 1;
        }
    }
    eprintln!(
        "victoriametrics: with query_offset {QUERY_OFFSET}: {EVALUATIONS} of {EVALUATIONS} evaluations matched; with 0s: {matched} of {}",
        without_delay.captured.len()
    );
}
