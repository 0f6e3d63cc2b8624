//! Unit tests of the replay loop: the grid, episodes and per-detector counts.

use super::*;

fn time(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

#[test]
fn the_grid_holds_the_multiples_of_the_step_inside_the_range() {
    let step = Duration::from_secs(30);
    let times = grid(
        time("2026-01-01T00:00:10Z"),
        time("2026-01-01T00:01:30Z"),
        step,
    );
    assert_eq!(
        times,
        vec![
            time("2026-01-01T00:00:30Z"),
            time("2026-01-01T00:01:00Z"),
            time("2026-01-01T00:01:30Z"),
        ]
    );
    let on_grid = grid(
        time("2026-01-01T00:00:00Z"),
        time("2026-01-01T00:00:00Z"),
        step,
    );
    assert_eq!(on_grid, vec![time("2026-01-01T00:00:00Z")]);
}

/// A snapshot at `at` where model `m`'s z-score detector scored `score`.
fn scored(at: DateTime<Utc>, score: f64, verdict: Verdict) -> Snapshot {
    use crate::engine::{DetectorOutcome, SignalResult};
    let result = SignalResult {
        current: None,
        reference_samples: Some(100.0),
        error: None,
        detectors: vec![DetectorOutcome {
            detector: Arc::from("zscore"),
            kind: crate::detectors::AlertKind::Drift,
            result: DetectorResult::Detection(crate::detectors::Detection {
                score,
                threshold: 3.0,
                p_value: None,
                verdict,
            }),
            explanation: None,
        }],
        evaluated_at: at,
        class_mix: None,
        accuracy: None,
    };
    let id = crate::model::ModelId {
        source: "mon".to_owned(),
        model: crate::model::ModelKey(vec![("model".to_owned(), "m".to_owned())]),
    };
    Snapshot {
        timestamp: Some(at),
        models: [(id, [("confidence".to_owned(), result)].into())].into(),
        ..Snapshot::default()
    }
}

fn notice(transition: Transition, at: DateTime<Utc>, score: f64) -> crate::alerting::AlertNotice {
    let metrics = crate::model::InferenceMetrics {
        model_name: "m".to_owned(),
        ..crate::model::InferenceMetrics::identity("mon", &[], at)
    };
    crate::alerting::AlertNotice {
        transition,
        key: AlertKey {
            source: Arc::from("mon"),
            labels: Arc::from(vec![("model".to_owned(), "m".to_owned())]),
            signal: Arc::from("confidence"),
            detector: Arc::from("zscore"),
        },
        kind: crate::detectors::AlertKind::Drift,
        started_at: at,
        ended_at: (transition == Transition::Resolved).then_some(at),
        at,
        repeat: 0,
        detection: crate::model::DetectionRecord {
            score,
            threshold: 3.0,
            p_value: None,
            current_samples: 100.0,
            reference_samples: 100.0,
            explanation: None,
        },
        metrics: Arc::new(metrics),
    }
}

#[test]
fn an_episode_runs_from_firing_to_resolution_with_its_peak_by_magnitude() {
    let t = |s: i64| time("2026-01-01T00:00:00Z") + chrono::Duration::seconds(s);
    let mut tally = Tally::new(0);
    let steps = [
        (0, 0.5, Verdict::NoDrift, None),
        (30, -4.0, Verdict::Drift, Some(Transition::Fired)),
        (60, -9.0, Verdict::Drift, None),
        (90, -5.0, Verdict::Drift, None),
        (120, 1.0, Verdict::NoDrift, Some(Transition::Resolved)),
    ];
    for (index, (at, score, verdict, transition)) in steps.into_iter().enumerate() {
        let notices: Vec<_> = transition
            .map(|tr| notice(tr, t(at), score))
            .into_iter()
            .collect();
        tally.notices(&notices);
        tally.snapshot(&scored(t(at), score, verdict), index as u64);
    }
    let options = Options {
        from: t(0),
        to: t(86_400),
        step: None,
        charts: false,
    };
    let report = tally.finish(&options, Duration::from_secs(30), 5, 1.0, &[]);
    assert_eq!(report.episodes.len(), 1);
    let episode = &report.episodes[0];
    assert_eq!((episode.start, episode.end), (t(30), Some(t(120))));
    assert_eq!((episode.peak_score, episode.peak_at), (-9.0, t(60)));
    let stats = &report.detectors[0];
    assert_eq!(
        (
            stats.decided,
            stats.undecided,
            stats.drifting,
            stats.episodes
        ),
        (5, 0, 3, 1)
    );
    assert_eq!(stats.drifting_per_day, 3.0);
}

#[test]
fn chart_points_keep_the_largest_score_per_stretch() {
    let times: Vec<DateTime<Utc>> = (0..(CHART_POINTS as i64 * 2))
        .map(|i| time("2026-01-01T00:00:00Z") + chrono::Duration::seconds(i))
        .collect();
    let mut buckets = vec![f64::NAN; CHART_POINTS];
    buckets[0] = 1.0;
    buckets[1] = 2.0;
    let points = chart_points(&buckets, &times);
    assert_eq!(points, vec![(times[0], 1.0), (times[2], 2.0)]);
}
