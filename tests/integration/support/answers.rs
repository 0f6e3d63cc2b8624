//! A whole-body reading of PromQL answers of every result type, with all
//! labels and timestamps, for tests: [`parse_response`], and
//! [`WholeAnswers::query`] to run it behind a real [`PromClient`].
//!
//! The sidecar itself reads only instant vectors, into a sink
//! ([`model_monitor::sources::prometheus::VectorStream`] and
//! [`parse_vector_into`]). Its fallback judges every answer first, so the
//! errors here are the sidecar's own; this reading only copies out what it
//! accepted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use model_monitor::sources::prometheus::{AnswerDecoder, PromClient, PromError, parse_vector_into};
use serde_json::Value;

/// Labels of one series.
pub type Labels = BTreeMap<String, String>;

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    /// Unix seconds.
    pub timestamp: f64,
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

impl QueryData {
    /// The `resultType` as the API names it.
    pub fn result_type(&self) -> &'static str {
        match self {
            QueryData::Vector(_) => "vector",
            QueryData::Matrix(_) => "matrix",
            QueryData::Scalar { .. } => "scalar",
            QueryData::String { .. } => "string",
        }
    }

    /// The samples of an instant vector, or
    /// [`PromError::UnexpectedResultType`] for any other result.
    pub fn into_vector(self) -> Result<Vec<Sample>, PromError> {
        match self {
            QueryData::Vector(samples) => Ok(samples),
            other => Err(PromError::UnexpectedResultType {
                expected: "vector",
                got: other.result_type(),
            }),
        }
    }
}

/// A successful answer with its warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse {
    pub data: QueryData,
    pub warnings: Vec<String>,
}

impl QueryResponse {
    /// The samples of an instant vector; see [`QueryData::into_vector`].
    pub fn into_vector(self) -> Result<Vec<Sample>, PromError> {
        self.data.into_vector()
    }
}

/// Reads a complete answer. Errors are those of the sidecar's fallback
/// decoder. A vector's samples without a value (native histograms) are
/// left out and its warnings are the sidecar's (the server's, and a note on
/// the skipped samples); other results are read as they are, with the
/// server's warnings.
pub fn parse_response(status: u16, body: &[u8]) -> Result<QueryResponse, PromError> {
    let vector_warnings = match parse_vector_into(status, body, &[], &mut ()) {
        Ok(warnings) => Some(warnings),
        Err(PromError::UnexpectedResultType { .. }) => None,
        Err(error) => return Err(error),
    };
    let answer: Value = serde_json::from_slice(body).expect("the sidecar accepted the answer");
    let data = &answer["data"];
    let result = &data["result"];
    let data = match data["resultType"].as_str() {
        Some("vector") => QueryData::Vector(
            items(result)
                .filter_map(|sample| {
                    let (timestamp, value) = point(sample.get("value")?);
                    let labels = labels(&sample["metric"]);
                    Some(Sample {
                        labels,
                        timestamp,
                        value,
                    })
                })
                .collect(),
        ),
        Some("matrix") => QueryData::Matrix(
            items(result)
                .map(|series| Series {
                    labels: labels(&series["metric"]),
                    values: items(&series["values"]).map(point).collect(),
                })
                .collect(),
        ),
        Some("scalar") => {
            let (timestamp, value) = point(result);
            QueryData::Scalar { timestamp, value }
        }
        Some("string") => QueryData::String {
            timestamp: number(&result[0]),
            value: result[1].as_str().expect("a string result").to_owned(),
        },
        other => panic!("the sidecar accepted a result of type {other:?}"),
    };
    let warnings = vector_warnings.unwrap_or_else(|| {
        items(&answer["warnings"])
            .map(|warning| warning.as_str().expect("a warning").to_owned())
            .collect()
    });
    Ok(QueryResponse { data, warnings })
}

/// The elements of an array; none for anything else.
fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

fn labels(metric: &Value) -> Labels {
    metric
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.clone(), value.as_str().expect("a label").to_owned()))
        .collect()
}

/// `[<unix seconds>, "<value>"]`.
fn point(pair: &Value) -> (f64, f64) {
    (number(&pair[0]), number(&pair[1]))
}

/// A JSON number, or a string holding one (`"NaN"` and `"+Inf"` included).
fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .or_else(|| value.as_str()?.parse().ok())
        .expect("a number")
}

/// Keeps an answer's whole body, then reads it with [`parse_response`].
pub struct WholeAnswer {
    status: u16,
    body: Vec<u8>,
}

impl AnswerDecoder for WholeAnswer {
    type Output = QueryResponse;
    fn push(&mut self, chunk: &[u8]) -> Result<(), PromError> {
        self.body.extend_from_slice(chunk);
        Ok(())
    }
    fn finish(self) -> Result<QueryResponse, PromError> {
        parse_response(self.status, &self.body)
    }
}

/// Whole answers from a [`PromClient`].
#[allow(async_fn_in_trait)]
pub trait WholeAnswers {
    /// Runs an instant query evaluated at `time` and reads the whole
    /// answer, within the client's timeout and size cap.
    async fn query(&self, query: &str, time: DateTime<Utc>) -> Result<QueryResponse, PromError>;
}

impl WholeAnswers for PromClient {
    async fn query(&self, query: &str, time: DateTime<Utc>) -> Result<QueryResponse, PromError> {
        self.query_with(query, time, |status| WholeAnswer {
            status,
            body: Vec::new(),
        })
        .await
    }
}
