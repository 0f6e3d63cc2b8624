//! `/metrics` rendering: `render_snapshot` on a snapshot of 100, 1,000 and
//! 10,000 models, each with a confidence signal (7 detectors) and a latency
//! signal (2 detectors), as `scripts/bench-scale.py` configures the sidecar.
//!
//! Two ways: `render_snapshot` (one string, as tests use it) and
//! `render_snapshot_in_pieces` with the 256 KB pieces a scrape streams out,
//! each dropped as a sent piece would be. The scale script times whole
//! scrapes from outside; this bench times the render alone.

mod common;

use std::hint::black_box;

use chrono::Utc;
use common::Numbers;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use model_monitor::detectors::{AlertKind, Detection, Verdict};
use model_monitor::engine::{
    DetectorOutcome, DetectorResult, SignalResult, SignalResults, Snapshot,
};
use model_monitor::model::{ModelId, ModelKey, SignalSummary};
use model_monitor::sinks::exporter::render::{render_snapshot, render_snapshot_in_pieces};

fn signal(numbers: &mut Numbers, detectors: &[(&str, bool)]) -> SignalResult {
    SignalResult {
        current: Some(SignalSummary {
            samples: 600.0 * numbers.next(),
            mean: numbers.next(),
            stddev: numbers.next(),
            p50: numbers.next(),
            p95: numbers.next(),
            p99: numbers.next(),
        }),
        reference_samples: Some(600.0 * numbers.next()),
        error: None,
        detectors: detectors
            .iter()
            .map(|(name, has_p_value)| DetectorOutcome {
                detector: std::sync::Arc::from(*name),
                kind: AlertKind::Drift,
                result: DetectorResult::Detection(Detection {
                    score: numbers.next(),
                    threshold: numbers.next(),
                    p_value: has_p_value.then(|| numbers.next()),
                    verdict: Verdict::NoDrift,
                }),
                explanation: None,
            })
            .collect(),
        evaluated_at: Utc::now(),
        class_mix: None,
        accuracy: None,
    }
}

fn snapshot(models: usize) -> Snapshot {
    let mut numbers = Numbers(7);
    let confidence = [
        ("psi", true),
        ("ks", true),
        ("chi_square", true),
        ("zscore", true),
        ("jensen_shannon", false),
        ("hellinger", false),
        ("wasserstein", false),
    ];
    let latency = [("quantile_ratio", false), ("quantile_slo", false)];
    let mut snapshot = Snapshot::default();
    for index in 0..models {
        let id = ModelId {
            source: "scale".to_owned(),
            model: ModelKey(vec![
                ("model".to_owned(), format!("model-{index}")),
                ("version".to_owned(), "v1".to_owned()),
            ]),
        };
        let mut signals = SignalResults::default();
        signals.insert("confidence".to_owned(), signal(&mut numbers, &confidence));
        signals.insert("latency".to_owned(), signal(&mut numbers, &latency));
        snapshot.models.insert(id, signals);
    }
    snapshot
}

/// A way to render a snapshot, returning the bytes written.
type Render = dyn Fn(&Snapshot) -> usize;

fn bench_render(criterion: &mut Criterion) {
    // One string (as tests use it), and 256 KB pieces each dropped as a
    // sent piece would be (as a scrape does it).
    let whole = |snapshot: &Snapshot| render_snapshot(snapshot).len();
    let pieces = |snapshot: &Snapshot| {
        let mut sent = 0;
        render_snapshot_in_pieces(snapshot, 256 * 1024, &mut |piece| {
            sent += piece.len();
            true
        });
        sent
    };
    let ways: [(&str, &Render); 2] = [
        ("render_snapshot", &whole),
        ("render_snapshot_in_pieces", &pieces),
    ];
    for (name, render) in ways {
        let mut group = criterion.benchmark_group(name);
        group.sample_size(10);
        for models in [100, 1_000, 10_000] {
            let snapshot = snapshot(models);
            let bytes = render_snapshot(&snapshot).len();
            group.throughput(Throughput::Bytes(bytes as u64));
            group.bench_with_input(
                BenchmarkId::from_parameter(models),
                &snapshot,
                |bencher, snapshot| bencher.iter(|| render(black_box(snapshot))),
            );
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench_render
}
criterion_main!(benches);
