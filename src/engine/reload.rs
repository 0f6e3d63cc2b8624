//! Live reload: a new config's monitors replace the running ones between
//! two evaluations.
//!
//! [`ModelMonitor::reload`] builds the sources of a config (every monitor
//! anew: a collector keeps nothing between evaluations) and hands them to
//! the loop, which swaps them in while it waits for its next tick; the
//! next evaluation runs them. What carries over is everything keyed by a
//! monitor's name: the alert lifecycle (pending and firing alerts, their
//! episodes and counters), the published snapshot (so a kept monitor's
//! series stay on `/metrics` until the next evaluation replaces them) and
//! the sink. A monitor that is gone loses its per-source self-metric
//! series at once and its drift series with the next snapshot; its alerts
//! end in the next evaluation (a firing one resolves, a pending one is
//! forgotten). Sources added in code (`with_collector`,
//! `with_prometheus_endpoint`) are kept, and the builder's detectors apply
//! to the new sources too.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::builder::{BuildError, config_sources, init_source_metrics};
use super::evaluator::{Evaluation, Evaluator};
use super::handle::ModelMonitor;
use super::shared::Reloaded;
use super::source::config_names;
use crate::config::Config;

/// What a reload changed, by name: of monitors here, of receivers in the
/// notifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub kept: Vec<String>,
}

impl ModelMonitor {
    /// Replaces the monitors built from a config with those of `config`
    /// (its PromQL source, monitors, interval and concurrency) from the
    /// next evaluation on. Nothing changes when a monitor cannot be built
    /// (an unreadable baseline file): the error says why.
    pub fn reload(&self, config: Config) -> Result<ReloadSummary, BuildError> {
        let shared = &self.shared;
        let permits = Arc::new(Semaphore::new(config.evaluation.concurrency.max(1)));
        let interval = config.evaluation.interval;
        let query_offset = config.query_offset();
        let mut sources = config_sources(config, &permits, &shared.metrics)?;
        for source in &mut sources {
            let global = shared.reload.global_detectors.iter().cloned();
            source.detectors.extend(global);
        }
        let new = config_names(&sources);
        let old = std::mem::replace(
            &mut *shared.reload.names.lock().expect("no panics while held"),
            new.clone(),
        );
        *shared.reload.next.lock().expect("no panics while held") = Some(Reloaded {
            sources,
            interval,
            query_offset,
        });
        shared.reload.ready.notify_one();
        Ok(ReloadSummary {
            added: new.difference(&old).cloned().collect(),
            removed: old.difference(&new).cloned().collect(),
            kept: new.intersection(&old).cloned().collect(),
        })
    }
}

impl Evaluator {
    /// Swaps in the sources of a reload, if one waits, and returns the next
    /// tick: on the grid of the new interval from the last evaluation's tick.
    pub(super) fn apply_reload(&mut self, next: tokio::time::Instant) -> tokio::time::Instant {
        let taken = self.shared.reload.next.lock().expect("no panics").take();
        let Some(Reloaded {
            sources,
            interval,
            query_offset,
        }) = taken
        else {
            return next;
        };
        let old: BTreeSet<String> = self
            .sources
            .iter()
            .map(|source| source.collector.name().to_owned())
            .collect();
        self.sources.retain(|source| !source.from_config);
        self.sources.extend(sources);
        let new: BTreeSet<String> = self
            .sources
            .iter()
            .map(|source| source.collector.name().to_owned())
            .collect();
        let metrics = &self.shared.metrics;
        for name in old.difference(&new) {
            metrics.forget_source(name);
            self.removed.push(name.clone());
        }
        for name in new.difference(&old) {
            init_source_metrics(metrics, name);
        }
        // A monitor removed and added back before an evaluation keeps its alerts.
        self.removed.retain(|name| !new.contains(name));
        let next = super::delay::reloaded_wake(
            next,
            (self.interval, self.query_offset),
            (interval, query_offset),
        );
        self.interval = interval;
        self.query_offset = query_offset;
        next
    }

    /// Ends the alerts of the monitors a reload removed, in this
    /// evaluation.
    pub(super) fn end_removed_alerts(&mut self, evaluation: &mut Evaluation) {
        for name in std::mem::take(&mut self.removed) {
            let notices = self.lifecycle.end_source(&name, evaluation.at);
            if !notices.is_empty() {
                tracing::info!(monitor = %name, resolved = notices.len(), "the monitor was removed by a reload: its firing alerts resolve");
            }
            evaluation.notices.extend(notices);
        }
    }
}
