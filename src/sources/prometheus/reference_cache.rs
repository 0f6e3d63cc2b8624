//! [`ReferenceCache`]: a monitor's reference windows kept between
//! evaluations, each queried anew only when its reference time moves.
//!
//! A reference's evaluation time is a pure function of the evaluation time
//! (`config::ReferenceRefresh::reference_time`: `grid_floor(at, refresh)`),
//! so an answer cached for one reference time is the answer any replica,
//! restart or `backtest` would get for it. The cache holds one answer per
//! signal (the reference histograms, or the class counts of a class
//! signal) with the time it was queried at; an evaluation whose reference
//! time is the cached one uses it without a query.
//!
//! A refresh that fails keeps serving the previous answer: the reference
//! is older than it should be, but its numbers are still those of the
//! PromQL at the time it shows, and the status API says how old it is and
//! why. Only when there is no previous answer does the signal fail, as any
//! failed query does.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::model::ModelKey;
use crate::sources::{ReferenceStatus, SignalFailure};
use crate::telemetry::SelfMetrics;

/// A query's answer grouped by model and its warnings, or the failure.
pub(super) type Answer<W> = Result<(BTreeMap<ModelKey, W>, Vec<String>), SignalFailure>;

/// A reference's windows by model, shared by the cache and the
/// evaluations that read them.
pub(super) type Windows<W> = Arc<BTreeMap<ModelKey, W>>;

/// A reference's windows by model, as the evaluation uses them.
pub(super) struct Reference<W> {
    pub(super) windows: Windows<W>,
    /// The warnings of the answer when it was queried by this evaluation.
    pub(super) warnings: Vec<String>,
    /// When it was evaluated; `None` for a baseline file.
    pub(super) status: Option<ReferenceStatus>,
}

/// A signal's reference, or why there is none.
pub(super) type ReferenceAnswer<W> = Result<Reference<W>, SignalFailure>;

/// One signal's cached answer.
struct Cached<W> {
    at: DateTime<Utc>,
    windows: Windows<W>,
}

/// The reference answers of one monitor's signals, by signal.
pub(super) struct ReferenceCache<W> {
    slots: Mutex<HashMap<String, Cached<W>>>,
}

impl<W> Default for ReferenceCache<W> {
    fn default() -> Self {
        ReferenceCache {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<W> ReferenceCache<W> {
    /// The signal's cached answer and its time, if any.
    fn cached(&self, signal: &str) -> Option<(DateTime<Utc>, Windows<W>)> {
        let slots = self.slots.lock().expect("no panics while held");
        slots
            .get(signal)
            .map(|cached| (cached.at, Arc::clone(&cached.windows)))
    }

    fn store(&self, signal: &str, at: DateTime<Utc>, windows: Windows<W>) {
        let mut slots = self.slots.lock().expect("no panics while held");
        slots.insert(signal.to_owned(), Cached { at, windows });
    }

    /// The signal's reference for an evaluation at `at` whose reference
    /// time is `reference_at`: the cached answer when it is for that time,
    /// else `query`'s (sent with `time=reference_at`), cached when `keep`.
    /// A failed query falls back on the cached answer of an earlier time.
    pub(super) async fn reference(
        &self,
        signal: &str,
        at: DateTime<Utc>,
        reference_at: DateTime<Utc>,
        keep: bool,
        query: impl Future<Output = Answer<W>>,
    ) -> ReferenceAnswer<W> {
        let cached = if keep { self.cached(signal) } else { None };
        if let Some((cached_at, windows)) = &cached
            && *cached_at == reference_at
        {
            return Ok(Reference {
                windows: Arc::clone(windows),
                warnings: Vec::new(),
                status: Some(ReferenceStatus::new(signal, at, *cached_at, false)),
            });
        }
        match query.await {
            Ok((windows, warnings)) => {
                let windows = Arc::new(windows);
                if keep {
                    self.store(signal, reference_at, Arc::clone(&windows));
                }
                Ok(Reference {
                    windows,
                    warnings,
                    status: Some(ReferenceStatus::new(signal, at, reference_at, true)),
                })
            }
            Err(failure) => match cached {
                Some((cached_at, windows)) => {
                    let mut status = ReferenceStatus::new(signal, at, cached_at, false);
                    status.refresh_error = Some(format!(
                        "the reference due at {} could not be queried ({}): the one of {} is used",
                        reference_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                        failure.message,
                        cached_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    ));
                    Ok(Reference {
                        windows,
                        warnings: Vec::new(),
                        status: Some(status),
                    })
                }
                None => Err(failure),
            },
        }
    }
}

/// Exports each signal's reference time, and logs and counts the
/// references used because a refresh failed.
pub(super) fn record_references(
    metrics: Option<&SelfMetrics>,
    monitor: &str,
    references: &[ReferenceStatus],
) {
    for reference in references {
        let signal = reference.signal.as_str();
        if let Some(metrics) = metrics {
            metrics
                .reference_evaluation
                .with_label_values(&[monitor, signal])
                .set(reference.evaluated_at.timestamp_millis() as f64 / 1000.0);
        }
        let Some(error) = &reference.refresh_error else {
            continue;
        };
        if let Some(metrics) = metrics {
            metrics
                .reference_refresh_failures
                .with_label_values(&[monitor, signal])
                .inc();
        }
        tracing::warn!(source = %monitor, signal, age_seconds = reference.age_seconds, "{error}");
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use super::*;
    use crate::config::ReferenceConfig;
    use crate::sources::WindowRole;

    fn time(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn model(name: &str) -> ModelKey {
        ModelKey(vec![("model".to_owned(), name.to_owned())])
    }

    /// An answer with one model whose window is `value`.
    fn answer(value: u32) -> Answer<u32> {
        Ok((
            BTreeMap::from([(model("a"), value)]),
            vec![format!("w{value}")],
        ))
    }

    fn failed() -> Answer<u32> {
        Err(SignalFailure {
            signal: "s".to_owned(),
            role: WindowRole::Reference,
            reason: "timeout",
            message: "query timed out after 1s".to_owned(),
        })
    }

    /// Runs one evaluation at `at` of a `window: 1d` reference refreshed
    /// hourly; `queries` counts the queries sent, each answering with their
    /// number.
    async fn evaluate(
        cache: &ReferenceCache<u32>,
        at: &str,
        queries: &Cell<u32>,
        fail: bool,
    ) -> ReferenceAnswer<u32> {
        let refresh = ReferenceConfig::Window(Duration::from_secs(86_400))
            .refresh(None, Duration::from_secs(30));
        let at = time(at);
        let reference_at = refresh.reference_time(at).unwrap();
        cache
            .reference("s", at, reference_at, refresh.caches(), async {
                queries.set(queries.get() + 1);
                if fail {
                    failed()
                } else {
                    answer(queries.get())
                }
            })
            .await
    }

    #[tokio::test]
    async fn queries_again_only_when_the_reference_time_moves() {
        let cache = ReferenceCache::default();
        let queries = Cell::new(0);
        let first = evaluate(&cache, "2026-12-01T20:00:30Z", &queries, false)
            .await
            .unwrap();
        let status = first.status.unwrap();
        assert_eq!(
            (status.evaluated_at, status.queried, status.age_seconds),
            (time("2026-12-01T20:00:00Z"), true, 30.0)
        );
        assert_eq!(first.warnings, vec!["w1"]);
        for at in ["2026-12-01T20:01:00Z", "2026-12-01T20:59:59.999Z"] {
            let later = evaluate(&cache, at, &queries, false).await.unwrap();
            assert_eq!(queries.get(), 1, "{at} is served from the cache");
            assert_eq!(later.windows[&model("a")], 1);
            assert!(later.warnings.is_empty(), "warnings are reported once");
            let status = later.status.unwrap();
            assert_eq!(
                (status.evaluated_at, status.queried),
                (time("2026-12-01T20:00:00Z"), false)
            );
        }
        let next = evaluate(&cache, "2026-12-01T21:00:00Z", &queries, false)
            .await
            .unwrap();
        assert_eq!(queries.get(), 2, "the grid point moved");
        assert_eq!(next.windows[&model("a")], 2);
        assert_eq!(
            next.status.unwrap().evaluated_at,
            time("2026-12-01T21:00:00Z")
        );
        // Time going back (a backtest after a live loop) is a different
        // reference time too: queried, not served from the later one.
        let back = evaluate(&cache, "2026-12-01T20:30:00Z", &queries, false)
            .await
            .unwrap();
        assert_eq!((queries.get(), back.windows[&model("a")]), (3, 3));
    }

    #[tokio::test]
    async fn a_failed_refresh_serves_the_previous_reference_and_says_so() {
        let cache = ReferenceCache::default();
        let queries = Cell::new(0);
        let failure = evaluate(&cache, "2026-12-01T19:10:00Z", &queries, true).await;
        assert!(failure.is_err(), "nothing to fall back on");
        evaluate(&cache, "2026-12-01T20:10:00Z", &queries, false)
            .await
            .unwrap();
        let stale = evaluate(&cache, "2026-12-01T21:10:00Z", &queries, true)
            .await
            .unwrap();
        assert_eq!(stale.windows[&model("a")], 2);
        let status = stale.status.unwrap();
        assert_eq!(status.evaluated_at, time("2026-12-01T20:00:00Z"));
        assert_eq!(status.age_seconds, 4200.0);
        assert_eq!(
            status.refresh_error.as_deref(),
            Some(
                "the reference due at 2026-12-01T21:00:00Z could not be queried (query timed out after 1s): the one of 2026-12-01T20:00:00Z is used"
            )
        );
        // The next evaluation tries again.
        let retried = evaluate(&cache, "2026-12-01T21:10:30Z", &queries, false)
            .await
            .unwrap();
        assert_eq!(queries.get(), 4);
        assert_eq!(
            retried.status.unwrap().evaluated_at,
            time("2026-12-01T21:00:00Z")
        );
    }

    #[tokio::test]
    async fn a_reference_of_every_evaluation_is_neither_kept_nor_served_stale() {
        let cache = ReferenceCache::default();
        let at = time("2026-12-01T20:00:30Z");
        for _ in 0..2 {
            let fresh = cache.reference("s", at, at, false, async { answer(1) });
            assert!(fresh.await.unwrap().status.unwrap().queried);
        }
        let failed = cache.reference("s", at, at, false, async { failed() });
        assert!(failed.await.is_err());
    }
}
