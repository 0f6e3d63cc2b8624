//! A client for the PromQL HTTP API (`/api/v1/query`), as served by
//! Prometheus, VictoriaMetrics, Thanos, Mimir and Cortex.
//!
//! It sends instant queries at an explicit evaluation time, authenticates
//! (bearer token file, basic auth, extra headers), caps response sizes and
//! turns every way a server can answer badly into a typed [`PromError`].

mod client;

pub use client::PromClient;

use std::collections::BTreeMap;

/// Labels of one series.
pub type Labels = BTreeMap<String, String>;

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    /// Unix seconds.
    pub timestamp: f64,
    /// May be NaN or infinite: the caller decides what that means.
    pub value: f64,
}

/// One series of a range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    /// (unix seconds, value) pairs.
    pub values: Vec<(f64, f64)>,
}

/// The `data` of a successful answer.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryData {
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
    Scalar { timestamp: f64, value: f64 },
    String { timestamp: f64, value: String },
}

/// A successful answer with the server's warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse {
    pub data: QueryData,
    pub warnings: Vec<String>,
}

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
    /// A short, fixed word for the `reason` label of
    /// `model_monitor_query_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            PromError::Timeout(_) => "timeout",
            PromError::Connect { .. } => "connect",
            PromError::Http { .. } => "http",
            PromError::Api { .. } => "api",
            PromError::TooLarge { .. } => "too_large",
            PromError::Decode(_) => "decode",
            PromError::UnexpectedResultType { .. } => "result_type",
            PromError::Credentials(_) => "credentials",
            PromError::Request(_) => "request",
        }
    }
}
