//! [`Replay`]: the evaluations of the loop at past evaluation times, for
//! `backtest`. It runs the loop's own evaluation step (`evaluate_at` in
//! `evaluator.rs`: the same queries at time `at`, the same detectors, the
//! same alert lifecycle) on times the caller chooses, one at a time, and
//! hands back what each found. It publishes nothing, keeps no alert sink
//! and broadcasts no events: only the lifecycle and the last snapshot are
//! kept between evaluations.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::builder::{DEFAULT_SAMPLING_INTERVAL, MonitorBuilder, shared};
use super::evaluator::evaluate_at;
use super::shared::{Pending, Shared};
use super::snapshot::Snapshot;
use super::source::Source;
use crate::alerting::{AlertNotice, Lifecycle};
use crate::config::Config;
use crate::model::ModelKey;
use crate::sources::SignalObservation;

/// The loop's evaluation step, driven by the caller's clock.
pub struct Replay {
    sources: Vec<Source>,
    shared: Arc<Shared>,
    lifecycle: Lifecycle,
    interval: Duration,
}

/// What one replayed evaluation found.
pub struct ReplayStep {
    /// What the loop would have published at this time (the alerts listed
    /// in it are left empty: the lifecycle holds them).
    pub snapshot: Arc<Snapshot>,
    /// The alert notices the loop would have handed to its sink.
    pub notices: Vec<AlertNotice>,
}

impl Replay {
    /// The sources, detectors and alert policies of `config`, as `run`
    /// builds them, with an empty alert lifecycle.
    pub fn from_config(config: Config) -> Result<Replay, super::BuildError> {
        let interval = config.evaluation.interval;
        let (sources, metrics) = MonitorBuilder::default()
            .with_config(config)
            .build_sources()?;
        let reload = Pending::new(Vec::new(), &sources);
        let shared = shared(&sources, metrics, None, reload);
        Ok(Replay {
            sources,
            shared,
            lifecycle: Lifecycle::default(),
            interval: if interval.is_zero() {
                DEFAULT_SAMPLING_INTERVAL
            } else {
                interval
            },
        })
    }

    /// The config's evaluation interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Evaluates every source at `at`, after the evaluations replayed
    /// before it.
    pub async fn evaluate(&mut self, at: DateTime<Utc>) -> ReplayStep {
        let evaluation = evaluate_at(&self.sources, &self.shared, &mut self.lifecycle, at).await;
        // No store: nothing is owed to one, and the set of unstored keys
        // would otherwise grow with every alert the replay ends.
        self.lifecycle.mark_stored();
        let snapshot = Arc::new(evaluation.snapshot);
        self.shared.snapshot.store(Arc::clone(&snapshot));
        ReplayStep {
            snapshot,
            notices: evaluation.notices,
        }
    }

    /// Every pending and firing alert after the last evaluation.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// The windows of one model's signal at `at`, as the evaluation at `at`
    /// saw them (one more collection of the source; nothing is stepped).
    pub async fn observe(
        &self,
        source: &str,
        model: &ModelKey,
        signal: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Option<SignalObservation>> {
        let Some(source) = self.sources.iter().find(|s| s.collector.name() == source) else {
            return Ok(None);
        };
        let collection = source.collector.collect(at).await?;
        Ok(collection
            .observations
            .into_iter()
            .find(|o| &o.model == model && o.signal == signal))
    }
}
