//! The evaluation delay (`evaluation.query_offset`): the loop keeps the
//! grid of `interval` since the epoch for the times its queries use, and
//! wakes `offset` after each grid point. An evaluation woken at
//! `grid time + offset` queries at the grid time, which is also the time it
//! exports (`model_monitor_last_evaluation_timestamp_seconds`, the status
//! API, notifications): the number can be reproduced afterwards from the
//! engine with the same PromQL at that time.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::duration::grid_floor;

/// The first evaluation of a loop started at wall-clock time `now`: the last
/// grid point whose wake-up time (`grid point + offset`) is at or before
/// `now`, and how long ago that wake-up time was (the loop evaluates it at
/// once). Later evaluations follow every `interval`.
pub(super) fn first_tick(
    now: DateTime<Utc>,
    interval: Duration,
    offset: Duration,
) -> (DateTime<Utc>, Duration) {
    let latest = latest_evaluation_time(now, offset);
    let at = grid_floor(latest, interval);
    let overdue = (latest - at).to_std().unwrap_or_default();
    (at, overdue)
}

/// The loop's next wake-up after a reload from `(interval, offset)` `old`
/// to `new`, where `next` was the wake-up planned under `old`: on the grid
/// of the new interval from the last evaluation's tick, moved by the
/// change of offset (an offset moves the wake-ups, not the grid of query
/// times). A wake-up that falls in the past is evaluated at once, and the
/// loop then skips to the next one ahead.
pub(super) fn reloaded_wake(
    next: tokio::time::Instant,
    old: (Duration, Duration),
    new: (Duration, Duration),
) -> tokio::time::Instant {
    let (old_interval, old_offset) = old;
    let (new_interval, new_offset) = new;
    let last = next.checked_sub(old_interval).unwrap_or(next);
    let last = (last + new_offset).checked_sub(old_offset).unwrap_or(last);
    last + new_interval
}

/// The latest evaluation time a replay may use at wall-clock time `now`:
/// `now - offset`, the time the live loop would be querying. A `backtest`
/// ending later would ask the engine about data it may not have yet.
pub fn latest_evaluation_time(now: DateTime<Utc>, offset: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(offset)
        .ok()
        .and_then(|offset| now.checked_sub_signed(offset))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::engine::{MonitorBuilder, MonitorEvent};
    use crate::sources::{Collection, MetricCollector};

    fn time(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_first_tick_is_the_last_grid_point_whose_wake_up_has_passed() {
        let ten = Duration::from_secs(10);
        let cases = [
            // now, offset, evaluation time, overdue
            ("2026-03-01T00:00:07Z", 0, "2026-03-01T00:00:00Z", 7_000),
            ("2026-03-01T00:00:07Z", 5, "2026-03-01T00:00:00Z", 2_000),
            ("2026-03-01T00:00:07Z", 7, "2026-03-01T00:00:00Z", 0),
            ("2026-03-01T00:00:07Z", 8, "2026-02-28T23:59:50Z", 9_000),
            (
                "2026-03-01T00:00:07.250Z",
                45,
                "2026-02-28T23:59:20Z",
                2_250,
            ),
            ("2026-03-01T00:01:00Z", 60, "2026-03-01T00:00:00Z", 0),
        ];
        for (now, offset, at, overdue_ms) in cases {
            let (first, overdue) = first_tick(time(now), ten, Duration::from_secs(offset));
            assert_eq!(
                (first, overdue),
                (time(at), Duration::from_millis(overdue_ms)),
                "now {now}, offset {offset}s"
            );
        }
    }

    #[test]
    fn a_replay_ends_where_the_live_loop_queries() {
        let now = time("2026-03-01T12:00:00Z");
        assert_eq!(latest_evaluation_time(now, Duration::ZERO), now);
        assert_eq!(
            latest_evaluation_time(now, Duration::from_secs(90)),
            time("2026-03-01T11:58:30Z")
        );
    }

    #[test]
    fn a_reload_moves_the_next_wake_up_by_the_change_of_offset() {
        let now = tokio::time::Instant::now();
        let next = now + Duration::from_secs(100);
        let s = Duration::from_secs;
        // (old interval, old offset), (new interval, new offset), seconds
        // from now to the new wake-up.
        let cases = [
            ((10, 0), (10, 0), 100),
            ((10, 0), (10, 25), 125),
            ((10, 60), (10, 0), 40),
            ((10, 0), (30, 0), 120),
            ((10, 30), (20, 60), 140),
        ];
        for ((oi, oo), (ni, no), expected) in cases {
            let wake = reloaded_wake(next, (s(oi), s(oo)), (s(ni), s(no)));
            assert_eq!(
                wake - now,
                s(expected),
                "from every {oi}s {oo}s behind to every {ni}s {no}s behind"
            );
        }
    }

    /// When (on tokio's clock) a collection was asked for, and for which
    /// evaluation time.
    type Calls = Arc<Mutex<Vec<(tokio::time::Instant, DateTime<Utc>)>>>;

    /// Records every collection it is asked for.
    struct Recorder {
        calls: Calls,
    }

    #[async_trait]
    impl MetricCollector for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }

        async fn collect(&self, at: DateTime<Utc>) -> anyhow::Result<Collection> {
            let called = tokio::time::Instant::now();
            self.calls.lock().unwrap().push((called, at));
            Ok(Collection::default())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_wakes_an_offset_after_each_grid_point_and_queries_at_the_grid_point() {
        let interval = Duration::from_secs(10);
        let offset = Duration::from_secs(25);
        let calls: Calls = Arc::default();
        let wall_start = Utc::now();
        let clock_start = tokio::time::Instant::now();
        let monitor = MonitorBuilder::default()
            .with_collector(Recorder {
                calls: calls.clone(),
            })
            .with_sampling_interval(interval)
            .with_query_offset(offset)
            .spawn()
            .unwrap();
        let mut events = monitor.subscribe();
        let mut completed = Vec::new();
        while completed.len() < 4 {
            if let MonitorEvent::EvaluationCompleted { timestamp, .. } =
                events.recv().await.unwrap()
            {
                completed.push(timestamp);
            }
        }
        monitor.stop().await;
        let calls = calls.lock().unwrap().clone();
        let step = chrono::Duration::from_std(interval).unwrap();
        let offset_chrono = chrono::Duration::from_std(offset).unwrap();
        // The first evaluation is the last grid point at or before
        // `start - offset`, evaluated at once.
        let (first_at, first_called) = (calls[0].1, calls[0].0);
        assert_eq!(first_at, grid_floor(wall_start - offset_chrono, interval));
        assert_eq!(first_called, clock_start);
        for (k, (called, at)) in calls.iter().enumerate().take(4) {
            // Every query time is on the grid, one interval after the last.
            assert_eq!(*at, first_at + step * k as i32, "evaluation {k}");
            assert_eq!(at.timestamp_millis() % 10_000, 0, "evaluation {k}");
            if k == 0 {
                continue;
            }
            // It woke at its grid time plus the offset (the wall clock at
            // the start plus the paused clock's advance since), within the
            // real milliseconds between this test's and the loop's
            // readings of the wall clock.
            let woke = wall_start + chrono::Duration::from_std(*called - clock_start).unwrap();
            let lag = (woke - (*at + offset_chrono)).num_milliseconds();
            assert!(lag.abs() <= 50, "evaluation {k} woke {lag} ms off");
        }
        // What the loop reports is the time its queries used.
        assert_eq!(
            completed,
            calls.iter().take(4).map(|c| c.1).collect::<Vec<_>>()
        );
    }
}
