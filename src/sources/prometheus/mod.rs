//! The PromQL source: any server of the PromQL HTTP API (`/api/v1/query`),
//! such as Prometheus, VictoriaMetrics, Thanos, Mimir and Cortex, and
//! [`PromError`], everything that can go wrong with one query.
//!
//! - `query.rs` writes one grouped query per histogram and window;
//! - `client.rs` ([`PromClient`]) sends it at an explicit evaluation time,
//!   authenticates (bearer token file, basic auth, extra headers), caps
//!   response sizes and hands the body to a decoder as it arrives;
//! - `decode/` decodes the answer: `stream.rs` ([`VectorStream`]) sample by
//!   sample as it arrives, `fallback.rs` ([`parse_vector_into`]) whole
//!   through serde for other layouts, `rejection.rs` names what is wrong
//!   with any other answer;
//! - `classes.rs` writes a class counter's query and ([`ClassGrouper`])
//!   folds its answer into class counts per model;
//! - `group.rs` ([`HistogramGrouper`]) folds the samples into one
//!   cumulative histogram per model;
//! - `reference_cache.rs` keeps each signal's reference answer until its
//!   reference time (`grid_floor(at, refresh)`) moves;
//! - `pairing.rs` pairs a signal's windows into observations;
//! - `collector.rs` ([`PrometheusCollector`]) runs a monitor's queries as a
//!   [`crate::MetricCollector`];
//! - `limits.rs` tells an engine's query limits from its other errors.

mod classes;
mod client;
mod collector;
mod decode;
mod group;
mod limits;
mod pairing;
mod query;
mod reference_cache;

pub use classes::{ClassGrouper, ClassWindow, class_grouper_labels, class_query};
pub use client::{PromClient, read_bearer_token, resolve_password};
pub use collector::PrometheusCollector;
pub use decode::{AnswerDecoder, VectorSink, VectorStream, parse_vector_into};
pub use group::{AnswerLimits, GroupedWindow, HistogramGrouper, SignalError, grouper_labels};
pub use query::{START_LE, SUM_LE, histogram_query, labelled_query};

/// Everything that can go wrong with one query. `Display` carries context
/// but never credentials.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("query timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("cannot reach {url}: {message}")]
    Connect { url: String, message: String },
    #[error("server answered HTTP {status}{}: {message}", error_type.as_deref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Http {
        status: u16,
        /// `errorType` of an error envelope, when the body had one.
        error_type: Option<String>,
        /// `error` of an error envelope, else the start of the body.
        message: String,
    },
    #[error("query failed ({error_type}): {message}")]
    Api { error_type: String, message: String },
    #[error("response body exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// More series or models than `prometheus.max_series` or
    /// `prometheus.max_models` allow.
    #[error("answer exceeds the limit of {limit} {what} (prometheus.max_{what})")]
    TooMany { what: &'static str, limit: usize },
    #[error("cannot decode response: {0}")]
    Decode(String),
    #[error("expected a {expected} result, got {got}")]
    UnexpectedResultType {
        expected: &'static str,
        got: &'static str,
    },
    #[error("cannot read credentials: {0}")]
    Credentials(String),
    #[error("request failed: {0}")]
    Request(String),
}

impl PromError {
    /// Every value [`PromError::reason`] returns, so the failure counter of a
    /// source can be exported at 0 for each reason before the first failure.
    pub const REASONS: [&'static str; 10] = [
        "timeout",
        "connect",
        "limit",
        "http",
        "api",
        "too_large",
        "decode",
        "result_type",
        "credentials",
        "request",
    ];

    /// A short, fixed word for the `reason` label of
    /// `model_monitor_query_failures_total`: `limit` when the engine
    /// refused the query for one of its limits (`limits.rs`).
    pub fn reason(&self) -> &'static str {
        match self {
            PromError::Timeout(_) => "timeout",
            PromError::Connect { .. } => "connect",
            PromError::Http { message, .. } | PromError::Api { message, .. }
                if limits::is_limit_message(message) =>
            {
                "limit"
            }
            PromError::Http { .. } => "http",
            PromError::Api { .. } => "api",
            PromError::TooLarge { .. } | PromError::TooMany { .. } => "too_large",
            PromError::Decode(_) => "decode",
            PromError::UnexpectedResultType { .. } => "result_type",
            PromError::Credentials(_) => "credentials",
            PromError::Request(_) => "request",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reason_is_a_fixed_word_per_error_kind() {
        let cases = [
            (PromError::Timeout(Duration::from_secs(1)), "timeout"),
            (
                PromError::Connect {
                    url: "http://x/".to_owned(),
                    message: "refused".to_owned(),
                },
                "connect",
            ),
            (
                PromError::Http {
                    status: 422,
                    error_type: Some("execution".to_owned()),
                    message: "the query exceeded the maximum number of series (limit: 1 series) (err-mimir-max-series-per-query)".to_owned(),
                },
                "limit",
            ),
            (
                PromError::Http {
                    status: 503,
                    error_type: None,
                    message: "down".to_owned(),
                },
                "http",
            ),
            (
                PromError::Api {
                    error_type: "bad_data".to_owned(),
                    message: "parse error".to_owned(),
                },
                "api",
            ),
            (PromError::TooLarge { limit: 1 }, "too_large"),
            (
                PromError::TooMany {
                    what: "models",
                    limit: 1,
                },
                "too_large",
            ),
            (PromError::Decode("eof".to_owned()), "decode"),
            (
                PromError::UnexpectedResultType {
                    expected: "vector",
                    got: "scalar",
                },
                "result_type",
            ),
            (PromError::Credentials("missing".to_owned()), "credentials"),
            (PromError::Request("builder".to_owned()), "request"),
        ];
        for (error, reason) in &cases {
            assert_eq!(error.reason(), *reason, "{error}");
        }
        let mut listed: Vec<&str> = cases.iter().map(|(_, reason)| *reason).collect();
        listed.dedup();
        assert_eq!(listed, PromError::REASONS, "REASONS lists every reason");
    }

    #[test]
    fn http_error_names_the_error_type_when_known() {
        let with_type = PromError::Http {
            status: 422,
            error_type: Some("execution".to_owned()),
            message: "too many samples".to_owned(),
        };
        assert_eq!(
            with_type.to_string(),
            "server answered HTTP 422 (execution): too many samples"
        );
        let without_type = PromError::Http {
            status: 500,
            error_type: None,
            message: "oops".to_owned(),
        };
        assert_eq!(without_type.to_string(), "server answered HTTP 500: oops");
    }
}
