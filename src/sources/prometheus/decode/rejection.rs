//! The error of an answer that is not a successful instant vector.
//!
//! [`reject`] reads the whole answer into typed structs for every result
//! type, so it says exactly what is wrong: the error envelope of a non-2xx
//! status, an API error, serde's message (with line and column) for JSON
//! that is malformed or of the wrong shape, or the result type that came
//! instead of a vector. It runs only once the readers of a vector have
//! given up on an answer, so the owned copies it makes cost nothing while
//! answers are good.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Pair, PairValue, Point, PromError};

/// How much of a non-JSON error body is kept in [`PromError::Http`].
const BODY_EXCERPT_CHARS: usize = 200;

/// What is wrong with an answer with HTTP `status` and the complete `body`.
///
/// A non-2xx status yields [`PromError::Http`], carrying the error
/// envelope's `errorType` and `error` when the body has one (Prometheus
/// answers 400, 422 and 503 with it), else the start of the body. A 2xx
/// answer with `"status":"error"` yields [`PromError::Api`]; JSON that does
/// not decode (a result of any type of the wrong shape included) yields
/// [`PromError::Decode`] with serde's message; a well-formed answer yields
/// [`PromError::UnexpectedResultType`] naming its result type.
pub(super) fn reject(status: u16, body: &[u8]) -> PromError {
    if !(200..300).contains(&status) {
        return http_error(status, body);
    }
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(error) => return PromError::Decode(error.to_string()),
    };
    match envelope.status.as_str() {
        "success" => {}
        "error" => {
            return PromError::Api {
                error_type: envelope.error_type.unwrap_or_else(|| "unknown".to_owned()),
                message: envelope.error.unwrap_or_default(),
            };
        }
        other => return PromError::Decode(format!("unknown status {other:?}")),
    }
    let Some(data) = envelope.data else {
        return PromError::Decode("successful answer without data".to_owned());
    };
    if let Some(infos) = envelope.infos.filter(|infos| !infos.is_empty()) {
        tracing::debug!(?infos, "query answer carried infos");
    }
    PromError::UnexpectedResultType {
        expected: "vector",
        got: data.result_type(),
    }
}

/// The error of a non-2xx answer: the envelope's fields when there is one,
/// else the start of the body.
fn http_error(status: u16, body: &[u8]) -> PromError {
    if let Ok(envelope) = serde_json::from_slice::<ErrorEnvelope>(body)
        && (envelope.error.is_some() || envelope.error_type.is_some())
    {
        return PromError::Http {
            status,
            error_type: envelope.error_type,
            message: envelope.error.unwrap_or_default(),
        };
    }
    PromError::Http {
        status,
        error_type: None,
        message: body_excerpt(body),
    }
}

/// The first [`BODY_EXCERPT_CHARS`] characters of a body, lossily decoded.
fn body_excerpt(body: &[u8]) -> String {
    // Four bytes per character at most, so this prefix holds enough characters.
    let prefix = &body[..body.len().min(BODY_EXCERPT_CHARS * 4)];
    let text = String::from_utf8_lossy(prefix);
    let excerpt: String = text.trim().chars().take(BODY_EXCERPT_CHARS).collect();
    if excerpt.is_empty() {
        "(empty body)".to_owned()
    } else {
        excerpt
    }
}

// The types below are read only for the errors their decoding raises: the
// values in them are never used, hence the underscores. Their names are
// part of serde's messages (`expected struct RawSample`), so they stay as
// they are.

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<RawData>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(rename = "warnings", default)]
    _warnings: Option<Vec<String>>,
    #[serde(default)]
    infos: Option<Vec<String>>,
}

/// The fields of an error envelope; everything else is ignored.
#[derive(Deserialize)]
struct ErrorEnvelope {
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
#[expect(
    dead_code,
    reason = "the results are decoded only to check their shape"
)]
enum RawData {
    Vector(Vec<RawSample>),
    Matrix(Vec<RawSeries>),
    Scalar(Point),
    /// `[<unix seconds>, "<text>"]`.
    String(Pair<String>),
}

impl RawData {
    /// The `resultType` as the API names it.
    fn result_type(&self) -> &'static str {
        match self {
            RawData::Vector(_) => "vector",
            RawData::Matrix(_) => "matrix",
            RawData::Scalar(_) => "scalar",
            RawData::String(_) => "string",
        }
    }
}

#[derive(Deserialize)]
struct RawSample {
    #[serde(default, rename = "metric")]
    _metric: Labels,
    /// Absent for native histogram samples, which carry `histogram` instead.
    #[serde(default, rename = "value")]
    _value: Option<Point>,
    #[serde(default, rename = "histogram")]
    _histogram: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default, rename = "metric")]
    _metric: Labels,
    #[serde(default, rename = "values")]
    _values: Vec<Point>,
    #[serde(default, rename = "histograms")]
    _histograms: Option<IgnoredAny>,
}

/// Label names to values.
type Labels = std::collections::BTreeMap<String, String>;

impl PairValue<'_> for String {
    const PAIR: &'static str = "a [timestamp, string] pair";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::prometheus::parse_vector_into;

    /// Decodes `body` as the sidecar does, keeping only the outcome.
    fn decode(status: u16, body: &[u8]) -> Result<Vec<String>, PromError> {
        parse_vector_into(status, body, &[], &mut ())
    }

    #[test]
    fn rejects_malformed_answers_as_decode_errors() {
        let cases = [
            "",
            "{",
            "null",
            "[]",
            r#"{"status":"success"}"#,
            r#"{"status":"maybe","data":{"resultType":"vector","result":[]}}"#,
            r#"{"status":"success","data":{"resultType":"histogram","result":[]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":{}}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2",3]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":1},"value":[1,"1"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"scalar","result":"1"}}"#,
        ];
        for body in cases {
            let result = decode(200, body.as_bytes());
            assert!(
                matches!(result, Err(PromError::Decode(_))),
                "{body}: {result:?}"
            );
        }
    }

    #[test]
    fn keeps_the_start_of_a_long_non_json_error_body() {
        let body = "é".repeat(1000);
        let Err(PromError::Http {
            status, message, ..
        }) = decode(502, body.as_bytes())
        else {
            panic!("expected an http error")
        };
        assert_eq!(status, 502);
        assert_eq!(message.chars().count(), BODY_EXCERPT_CHARS);
        assert_eq!(
            decode(500, b"  ").unwrap_err().to_string(),
            "server answered HTTP 500: (empty body)"
        );
        // Invalid UTF-8 is replaced, never a panic.
        assert!(decode(500, &[0xff, 0xfe, b'x']).is_err());
    }
}
