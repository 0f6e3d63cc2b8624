//! Sources: where observations come from. The [`MetricCollector`] trait
//! is the face of every source; [`prometheus`] is the PromQL one
//! ([`PrometheusCollector`]) and [`baseline`] reads reference histograms
//! kept in a file. This file holds the trait, what it returns, and the
//! reading of a bucket bound (`le`) both sources share.
//!
//! A collector answers one question per evaluation: for every model it
//! watches, what did each signal's current window and reference look like at
//! time `at`? It does not decide anything about drift; the engine runs the
//! detectors on what it returns.

pub mod baseline;
mod details;
pub mod prometheus;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::ModelKey;
use crate::stats::Distribution;

pub use details::{LabelledWindow, SignalDetails};
pub use prometheus::PrometheusCollector;

/// Which window a query is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowRole {
    Current,
    Reference,
    /// The monitor's `short_window`, ending with the current window.
    Short,
}

impl WindowRole {
    pub fn as_str(self) -> &'static str {
        match self {
            WindowRole::Current => "current",
            WindowRole::Reference => "reference",
            WindowRole::Short => "short",
        }
    }
}

/// One model's signal at one evaluation: its two windows, each either a
/// distribution or the reason there is none.
#[derive(Debug, Clone)]
pub struct SignalObservation {
    pub model: ModelKey,
    pub signal: String,
    pub current: Result<Distribution, Rejection>,
    pub reference: Result<Distribution, Rejection>,
    /// The short window, when the monitor has one (`short_window`): tested
    /// beside `current` by the hypothesis-test detectors.
    pub short: Option<Result<Distribution, Rejection>>,
    /// The windows that began before any of the model's series existed
    /// (empty when both are covered). Their counts cover only the part of
    /// the window since the series appeared, extrapolated by `increase()`
    /// bucket by bucket, so no detector that reads such a window decides.
    pub young: Vec<WindowRole>,
    /// Class names or a labelled window, for the signals that have them.
    pub details: SignalDetails,
}

/// Why one window of one model cannot be used. `Display` is the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The kind of problem, a fixed phrase shared by every model with it
    /// (`series without a valid le label`): what logs and the status API
    /// count rejections by.
    pub reason: &'static str,
    /// The whole message, with this model's details.
    pub message: String,
}

impl Rejection {
    /// The reason of a reference window that has no data for the model (a
    /// new model), which is not counted as an error.
    pub const NO_REFERENCE: &'static str = "no reference data";

    pub fn new(reason: &'static str, message: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A signal whose query failed for every model at once. The loop keeps that
/// signal's previous results rather than dropping them.
#[derive(Debug, Clone)]
pub struct SignalFailure {
    pub signal: String,
    pub role: WindowRole,
    /// A fixed word for metrics (`timeout`, `http`, ...).
    pub reason: &'static str,
    pub message: String,
}

/// Everything a collector saw in one evaluation.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    pub observations: Vec<SignalObservation>,
    pub failures: Vec<SignalFailure>,
    /// The first [`LISTED_WARNINGS`] warnings of the source's answers
    /// (PromQL warnings), each prefixed with its signal and window.
    pub warnings: Vec<String>,
    /// How many warnings the answers carried, listed or not.
    pub warnings_total: usize,
    /// The evaluation time of each signal's reference, for the signals
    /// whose reference is queried (not those of a baseline file).
    pub references: Vec<ReferenceStatus>,
}

/// Which reference one signal's observations were compared with: the
/// evaluation time its queries were sent with (`docs/statistics.md`,
/// section 2), and whether this evaluation sent them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReferenceStatus {
    pub signal: String,
    /// The `time=` of the reference's queries.
    pub evaluated_at: DateTime<Utc>,
    /// How long before the evaluation time that is, in seconds.
    pub age_seconds: f64,
    /// Whether this evaluation queried it (false: the cached answer).
    pub queried: bool,
    /// Why the reference due at this evaluation could not be queried, when
    /// an older cached one was used instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_error: Option<String>,
}

impl ReferenceStatus {
    /// The reference of `signal` evaluated at `evaluated_at`, used by the
    /// evaluation at `at`.
    pub fn new(
        signal: &str,
        at: DateTime<Utc>,
        evaluated_at: DateTime<Utc>,
        queried: bool,
    ) -> ReferenceStatus {
        ReferenceStatus {
            signal: signal.to_owned(),
            evaluated_at,
            age_seconds: (at - evaluated_at).num_milliseconds() as f64 / 1000.0,
            queried,
            refresh_error: None,
        }
    }
}

/// The most warnings a [`Collection`] lists.
pub const LISTED_WARNINGS: usize = 10;

impl Collection {
    /// Adds the warnings of one answer, listing only the first
    /// [`LISTED_WARNINGS`] of the collection.
    pub fn add_warnings(&mut self, context: &str, warnings: Vec<String>) {
        self.warnings_total += warnings.len();
        let room = LISTED_WARNINGS.saturating_sub(self.warnings.len());
        self.warnings.extend(
            warnings
                .into_iter()
                .take(room)
                .map(|warning| format!("{context}: {warning}")),
        );
    }
}

/// A source of model observations (the original sketch's collector).
#[async_trait]
pub trait MetricCollector: Send + Sync {
    /// Names the source in metrics (`source` label), logs and status.
    fn name(&self) -> &str;
    /// The signals it reports and the names of their detectors, if it
    /// configures its own (see [`PrometheusCollector`]); empty otherwise.
    fn signals(&self) -> Vec<String> {
        Vec::new()
    }
    /// Observes every model at evaluation time `at`.
    async fn collect(&self, at: DateTime<Utc>) -> anyhow::Result<Collection>;
}

/// Parses a bucket bound (an `le` label value) as Prometheus and client
/// libraries write it: a finite number or `+Inf` (any spelling Rust reads
/// as infinity). NaN and `-Inf` are not bounds.
pub(crate) fn parse_le(text: &str) -> Option<f64> {
    let bound = text.trim().parse::<f64>().ok()?;
    (bound.is_finite() || bound == f64::INFINITY).then_some(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_bounds_as_prometheus_writes_them() {
        let cases: &[(&str, Option<f64>)] = &[
            ("+Inf", Some(f64::INFINITY)),
            ("Inf", Some(f64::INFINITY)),
            ("0.05", Some(0.05)),
            ("1e-3", Some(0.001)),
            ("5", Some(5.0)),
            ("-0.5", Some(-0.5)),
            ("NaN", None),
            ("-Inf", None),
            ("", None),
            ("0.05s", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_le(text), *expected, "{text:?}");
        }
    }
}
