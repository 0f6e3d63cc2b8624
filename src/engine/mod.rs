//! The engine: the evaluation loop, its results and events, and the
//! [`ModelMonitor`] handle embedders hold.
//!
//! Every `interval` the loop asks each source for its observations at one
//! evaluation time, runs the detectors on them, steps the alert lifecycle,
//! publishes the results as an immutable [`Snapshot`] (what `/metrics` and
//! `/api/v1/status` show) and broadcasts [`MonitorEvent`]s.
//!
//! - `builder.rs`: [`MonitorBuilder`], from config or code to a running loop.
//! - `handle.rs`: [`ModelMonitor`], the handle.
//! - `evaluator.rs`: one evaluation, and the loop around it.
//! - `delay.rs`: the evaluation delay (`evaluation.query_offset`): the
//!   loop's first tick, and where a replay must end.
//! - `alerts.rs`: an evaluation's verdicts into the alert lifecycle, and its
//!   notices out to the [`AlertSink`](crate::alerting::AlertSink).
//! - `snapshot.rs`: [`Snapshot`], what an evaluation publishes.
//! - `events.rs`: [`MonitorEvent`], what it tells observers.
//! - `reload.rs`: a new config's sources swapped in between evaluations,
//!   the alert lifecycle kept.
//! - `replay.rs`: [`Replay`], the evaluation step at past times, for
//!   `backtest`.

mod alerts;
mod builder;
mod delay;
mod evaluator;
mod events;
mod explanations;
mod handle;
mod multi_window;
mod reload;
mod replay;
mod shared;
mod signals;
mod snapshot;
mod source;
mod summary;

pub use crate::duration::grid_floor;
pub use builder::{BuildError, DEFAULT_SAMPLING_INTERVAL, MonitorBuilder};
pub use delay::latest_evaluation_time;
pub use events::{EventReceiver, MonitorEvent};
pub use handle::ModelMonitor;
pub use reload::ReloadSummary;
pub use replay::{Replay, ReplayStep};
pub use signals::{AccuracyResult, ClassMix};
pub use snapshot::{
    DetectorOutcome, DetectorResult, ModelEntry, STATUS_ALERT_LIMIT, SignalResult, SignalResults,
    Snapshot, SourceStatus,
};
pub use summary::RejectedHistograms;
