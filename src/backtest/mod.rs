//! `model-monitor backtest`: the evaluations `run` would have made between
//! two past times, replayed through the loop's own evaluation step
//! ([`Replay`]): the same grid (multiples of the interval since the epoch),
//! the same instant queries at each evaluation time, the same detectors and
//! the same alert lifecycle (`for`, `resolve_after`). It sends no webhooks,
//! writes no outbox and opens no store.
//!
//! Memory is bounded: one evaluation time is processed at a time, and only
//! the lifecycle, the episode summaries and the per-detector counters are
//! kept. The HTML report adds a fixed number of score points per alerted
//! key ([`CHART_POINTS`], the largest score of each stretch of evaluations),
//! whatever the length of the range. Every evaluation's scores can be
//! streamed to a file (JSON lines) as they are made.
//!
//! - `time.rs`: the `--from`/`--to` forms (RFC 3339, `now`, `now-7d`);
//! - `report.rs`: the table, CSV and JSON outputs;
//! - `html.rs`: the self-contained HTML report.

mod html;
mod report;
mod time;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alerting::{AlertKey, Transition};
use crate::config::Config;
use crate::detectors::Verdict;
use crate::engine::{DetectorResult, Replay, Snapshot, grid_floor};

pub use html::write_html;
pub use report::{Format, write_report};
pub use time::parse_time;

/// How many score points the HTML report keeps per alerted key.
pub const CHART_POINTS: usize = 240;

/// What to replay.
#[derive(Debug, Clone)]
pub struct Options {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The grid's step; the config's evaluation interval when `None`.
    pub step: Option<Duration>,
    /// Keep score charts and fetch the windows at each episode's peak
    /// (for the HTML report).
    pub charts: bool,
}

/// One alert episode: from the evaluation it fired at to the one that
/// resolved it (`end` is `None` while it is still open at `to`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Episode {
    pub monitor: String,
    pub labels: BTreeMap<String, String>,
    pub signal: String,
    pub detector: String,
    /// The first drifting evaluation of the episode.
    pub pending_since: DateTime<Utc>,
    /// The evaluation it fired at.
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub peak_score: f64,
    pub peak_at: DateTime<Utc>,
    /// The threshold at the peak.
    pub threshold: f64,
}

/// One detector of one monitor's signal over the whole range.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DetectorStats {
    pub monitor: String,
    pub signal: String,
    pub detector: String,
    /// Model evaluations with a decision (drift or no drift).
    pub decided: u64,
    /// Model evaluations without one (too few samples, young series, a
    /// rejected window, a detector error).
    pub undecided: u64,
    /// Model evaluations that decided drift.
    pub drifting: u64,
    pub episodes: u64,
    /// `drifting` per day of the range.
    pub drifting_per_day: f64,
}

/// A score chart of one alerted key: the score largest in magnitude of each
/// stretch of evaluations, and the windows at the peak of its first episode.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub key: ChartKey,
    /// (evaluation time, score) points, in time order.
    pub points: Vec<(DateTime<Utc>, f64)>,
    pub windows: Option<PeakWindows>,
}

/// The alert key a chart is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ChartKey {
    pub monitor: String,
    pub labels: Vec<(String, String)>,
    pub signal: String,
    pub detector: String,
}

/// The reference and current windows at an episode's peak: the bucket
/// bounds (`+Inf` last) and each window's share of observations per bucket.
#[derive(Debug, Clone, Serialize)]
pub struct PeakWindows {
    pub bounds: Vec<f64>,
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
}

/// Everything a backtest found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub step_seconds: f64,
    pub evaluations: u64,
    pub episodes: Vec<Episode>,
    pub detectors: Vec<DetectorStats>,
    #[serde(skip)]
    pub charts: Vec<Chart>,
}

/// The evaluation times of the range: the grid points of `step` since the
/// epoch from `from` (rounded up) to `to`.
pub fn grid(from: DateTime<Utc>, to: DateTime<Utc>, step: Duration) -> Vec<DateTime<Utc>> {
    let mut at = grid_floor(from, step);
    if at < from {
        at += step;
    }
    let mut times = Vec::new();
    while at <= to && !step.is_zero() {
        times.push(at);
        at += step;
    }
    times
}

/// Replays `config`'s evaluations over `options`' range. `progress` is told
/// after each evaluation how many of how many are done; `scores`, when
/// given, receives one JSON line per evaluation with every score.
pub async fn backtest(
    config: Config,
    options: &Options,
    mut progress: impl FnMut(u64, u64),
    mut scores: Option<&mut dyn Write>,
) -> anyhow::Result<Report> {
    if options.from > options.to {
        anyhow::bail!(
            "--from ({}) is after --to ({})",
            options.from.to_rfc3339(),
            options.to.to_rfc3339()
        );
    }
    let mut replay = Replay::from_config(config)?;
    let step = options.step.unwrap_or(replay.interval());
    let times = grid(options.from, options.to, step);
    let total = times.len() as u64;
    let mut tally = Tally::new(if options.charts { total } else { 0 });
    for (index, at) in times.iter().enumerate() {
        let step_result = replay.evaluate(*at).await;
        // A failed query would replay as the previous results: not what
        // `run` saw, so the backtest stops and says why.
        if let Some((name, status)) = step_result.snapshot.sources.iter().find(|(_, s)| !s.up) {
            anyhow::bail!(
                "evaluation at {}: monitor {name}: {}",
                at.to_rfc3339(),
                status.errors.join("; ")
            );
        }
        tally.notices(&step_result.notices);
        tally.snapshot(&step_result.snapshot, index as u64);
        if let Some(out) = scores.as_deref_mut() {
            write_scores(out, &step_result.snapshot)?;
        }
        progress(index as u64 + 1, total);
    }
    let days = (options.to - options.from).num_milliseconds() as f64 / 86_400_000.0;
    let mut report = tally.finish(options, step, total, days, &times);
    if options.charts {
        for chart in &mut report.charts {
            chart.windows = peak_windows(&replay, chart, &report.episodes).await;
        }
    }
    Ok(report)
}

/// One JSON line: the evaluation time and every decided or undecided score.
fn write_scores(out: &mut dyn Write, snapshot: &Snapshot) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        at: Option<DateTime<Utc>>,
        scores: Vec<Score<'a>>,
    }
    #[derive(Serialize)]
    struct Score<'a> {
        monitor: &'a str,
        labels: BTreeMap<&'a str, &'a str>,
        signal: &'a str,
        detector: &'a str,
        score: f64,
        threshold: f64,
        verdict: &'a Verdict,
    }
    let mut line = Line {
        at: snapshot.timestamp,
        scores: Vec::new(),
    };
    for (id, signals) in &snapshot.models {
        for (signal, result) in signals {
            for outcome in &result.detectors {
                if let DetectorResult::Detection(detection) = &outcome.result {
                    line.scores.push(Score {
                        monitor: &id.source,
                        labels: id
                            .model
                            .0
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect(),
                        signal,
                        detector: &outcome.detector,
                        score: detection.score,
                        threshold: detection.threshold,
                        verdict: &detection.verdict,
                    });
                }
            }
        }
    }
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// What the replay keeps between evaluations besides the lifecycle.
struct Tally {
    /// Open episodes, by alert key.
    open: HashMap<AlertKey, Episode>,
    closed: Vec<Episode>,
    stats: BTreeMap<(String, String, String), DetectorStats>,
    /// The detectors seen per (monitor, signal): a signal whose window was
    /// rejected counts as undecided for each of them.
    detectors: BTreeMap<(String, String), Vec<Arc<str>>>,
    /// Score buckets per key (charts only), `CHART_POINTS` long.
    series: HashMap<ChartKey, Vec<f64>>,
    total: u64,
}

impl Tally {
    fn new(total: u64) -> Tally {
        Tally {
            open: HashMap::new(),
            closed: Vec::new(),
            stats: BTreeMap::new(),
            detectors: BTreeMap::new(),
            series: HashMap::new(),
            total,
        }
    }

    fn notices(&mut self, notices: &[crate::alerting::AlertNotice]) {
        for notice in notices {
            match notice.transition {
                Transition::Fired => {
                    let key = &notice.key;
                    let episode = Episode {
                        monitor: key.source.to_string(),
                        labels: key.labels.iter().cloned().collect(),
                        signal: key.signal.to_string(),
                        detector: key.detector.to_string(),
                        pending_since: notice.started_at,
                        start: notice.at,
                        end: None,
                        peak_score: notice.detection.score,
                        peak_at: notice.at,
                        threshold: notice.detection.threshold,
                    };
                    self.open.insert(key.clone(), episode);
                }
                Transition::Resolved => {
                    if let Some(mut episode) = self.open.remove(&notice.key) {
                        episode.end = Some(notice.at);
                        self.closed.push(episode);
                    }
                }
                Transition::Repeated => {}
            }
        }
    }

    fn snapshot(&mut self, snapshot: &Snapshot, index: u64) {
        let Some(at) = snapshot.timestamp else {
            return;
        };
        let bucket =
            (self.total > 0).then(|| (index * CHART_POINTS as u64 / self.total.max(1)) as usize);
        for (id, signals) in &snapshot.models {
            for (signal, result) in signals {
                // Results kept from an earlier evaluation decide nothing now.
                if result.evaluated_at != at {
                    continue;
                }
                let group = (id.source.clone(), signal.clone());
                if result.detectors.is_empty() {
                    for detector in self.detectors.get(&group).into_iter().flatten() {
                        let key = (group.0.clone(), group.1.clone(), detector.to_string());
                        self.stats.entry(key).or_default().undecided += 1;
                    }
                    continue;
                }
                let known = self.detectors.entry(group).or_default();
                for outcome in &result.detectors {
                    if !known.contains(&outcome.detector) {
                        known.push(Arc::clone(&outcome.detector));
                    }
                    let key = (
                        id.source.clone(),
                        signal.clone(),
                        outcome.detector.to_string(),
                    );
                    let stats = self.stats.entry(key).or_default();
                    let DetectorResult::Detection(detection) = &outcome.result else {
                        stats.undecided += 1;
                        continue;
                    };
                    match detection.verdict {
                        Verdict::Drift => {
                            stats.decided += 1;
                            stats.drifting += 1;
                        }
                        Verdict::NoDrift => stats.decided += 1,
                        _ => stats.undecided += 1,
                    }
                    if let Some(bucket) = bucket {
                        let chart_key = ChartKey {
                            monitor: id.source.clone(),
                            labels: id.model.0.clone(),
                            signal: signal.clone(),
                            detector: outcome.detector.to_string(),
                        };
                        let points = self
                            .series
                            .entry(chart_key)
                            .or_insert_with(|| vec![f64::NAN; CHART_POINTS]);
                        let point = &mut points[bucket.min(CHART_POINTS - 1)];
                        if point.is_nan() || detection.score.abs() > point.abs() {
                            *point = detection.score;
                        }
                    }
                }
            }
        }
        // The peak of each open episode.
        for (key, episode) in &mut self.open {
            let id = crate::model::ModelId {
                source: key.source.to_string(),
                model: crate::model::ModelKey(key.labels.to_vec()),
            };
            let detection = snapshot
                .models
                .get(&id)
                .and_then(|signals| signals.get(&key.signal))
                .filter(|result| result.evaluated_at == at)
                .and_then(|result| {
                    result
                        .detectors
                        .iter()
                        .find(|outcome| outcome.detector == key.detector)
                })
                .and_then(|outcome| match &outcome.result {
                    DetectorResult::Detection(detection) => Some(detection),
                    DetectorResult::Error { .. } => None,
                });
            // Signed scores (z) drift both ways: the peak is the largest
            // in magnitude.
            if let Some(detection) = detection
                && detection.score.abs() > episode.peak_score.abs()
            {
                episode.peak_score = detection.score;
                episode.peak_at = at;
                episode.threshold = detection.threshold;
            }
        }
    }

    fn finish(
        mut self,
        options: &Options,
        step: Duration,
        total: u64,
        days: f64,
        times: &[DateTime<Utc>],
    ) -> Report {
        let mut episodes = self.closed;
        episodes.extend(self.open.into_values());
        episodes.sort_by(|a, b| {
            (a.start, &a.monitor, &a.labels, &a.signal, &a.detector).cmp(&(
                b.start,
                &b.monitor,
                &b.labels,
                &b.signal,
                &b.detector,
            ))
        });
        for episode in &episodes {
            let key = (
                episode.monitor.clone(),
                episode.signal.clone(),
                episode.detector.clone(),
            );
            self.stats.entry(key).or_default().episodes += 1;
        }
        let detectors = self
            .stats
            .into_iter()
            .map(|((monitor, signal, detector), stats)| DetectorStats {
                monitor,
                signal,
                detector,
                drifting_per_day: if days > 0.0 {
                    stats.drifting as f64 / days
                } else {
                    0.0
                },
                ..stats
            })
            .collect();
        let mut charts: Vec<Chart> = self
            .series
            .into_iter()
            .filter(|(key, _)| episodes.iter().any(|e| chart_key(e) == *key))
            .map(|(key, buckets)| Chart {
                key,
                points: chart_points(&buckets, times),
                windows: None,
            })
            .collect();
        charts.sort_by(|a, b| a.key.cmp(&b.key));
        Report {
            from: options.from,
            to: options.to,
            step_seconds: step.as_secs_f64(),
            evaluations: total,
            episodes,
            detectors,
            charts,
        }
    }
}

/// The chart key of an episode's alert.
fn chart_key(episode: &Episode) -> ChartKey {
    ChartKey {
        monitor: episode.monitor.clone(),
        labels: episode
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        signal: episode.signal.clone(),
        detector: episode.detector.clone(),
    }
}

/// Each bucket's score (largest in magnitude) at the time of the bucket's
/// first evaluation; empty buckets are left out.
fn chart_points(buckets: &[f64], times: &[DateTime<Utc>]) -> Vec<(DateTime<Utc>, f64)> {
    let total = times.len();
    buckets
        .iter()
        .enumerate()
        .filter(|(_, score)| !score.is_nan())
        .filter_map(|(bucket, score)| {
            let first = (bucket * total).div_ceil(CHART_POINTS);
            times.get(first).map(|at| (*at, *score))
        })
        .collect()
}

/// The windows at the peak of the chart's first episode, as shares of
/// each window's observations.
async fn peak_windows(replay: &Replay, chart: &Chart, episodes: &[Episode]) -> Option<PeakWindows> {
    let episode = episodes.iter().find(|e| chart_key(e) == chart.key)?;
    let model = crate::model::ModelKey(chart.key.labels.clone());
    let observation = match replay
        .observe(
            &chart.key.monitor,
            &model,
            &chart.key.signal,
            episode.peak_at,
        )
        .await
    {
        Ok(observation) => observation?,
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot read the windows at an episode's peak"
            );
            return None;
        }
    };
    let (Ok(current), Ok(reference)) = (&observation.current, &observation.reference) else {
        return None;
    };
    let shares = |d: &crate::stats::Distribution| -> Vec<f64> {
        let total = d.total().max(f64::MIN_POSITIVE);
        d.counts().iter().map(|c| c / total).collect()
    };
    Some(PeakWindows {
        bounds: current.bounds().to_vec(),
        reference: shares(reference),
        current: shares(current),
    })
}

#[cfg(test)]
mod tests;
