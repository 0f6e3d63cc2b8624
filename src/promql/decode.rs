//! Decoding of PromQL API answers: the JSON envelope, the four result types
//! and the string-encoded sample values.
//!
//! The body is decoded in one pass with serde_json straight into typed
//! structs; sample values and timestamps are parsed from the borrowed JSON
//! text without an intermediate allocation, so answers with 100k+ series stay
//! cheap. Nothing here panics on any input: every malformed answer becomes a
//! [`PromError`].

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::{Labels, PromError, QueryData, QueryResponse, Sample, Series};

/// How much of a non-JSON error body is kept in [`PromError::Http`].
const BODY_EXCERPT_CHARS: usize = 200;

/// Turns an HTTP status and the complete body into an answer or an error.
///
/// A non-2xx status yields [`PromError::Http`], carrying the error envelope's
/// `errorType` and `error` when the body has one (Prometheus answers 400, 422
/// and 503 with it), else the start of the body. A 2xx answer with
/// `"status":"error"` yields [`PromError::Api`]; JSON that does not decode
/// yields [`PromError::Decode`] with serde's message.
pub fn parse_response(status: u16, body: &[u8]) -> Result<QueryResponse, PromError> {
    if !(200..300).contains(&status) {
        return Err(http_error(status, body));
    }
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|error| PromError::Decode(error.to_string()))?;
    match envelope.status.as_str() {
        "success" => {}
        "error" => {
            return Err(PromError::Api {
                error_type: envelope.error_type.unwrap_or_else(|| "unknown".to_owned()),
                message: envelope.error.unwrap_or_default(),
            });
        }
        other => return Err(PromError::Decode(format!("unknown status {other:?}"))),
    }
    let Some(raw) = envelope.data else {
        return Err(PromError::Decode(
            "successful answer without data".to_owned(),
        ));
    };
    let mut warnings = envelope.warnings.unwrap_or_default();
    if let Some(infos) = envelope.infos.filter(|infos| !infos.is_empty()) {
        tracing::debug!(?infos, "query answer carried infos");
    }
    let data = match raw {
        RawData::Vector(raw_samples) => {
            let mut skipped = 0usize;
            let samples = raw_samples
                .into_iter()
                .filter_map(|raw_sample| match raw_sample.value {
                    Some(Point(timestamp, value)) => Some(Sample {
                        labels: raw_sample.metric,
                        timestamp,
                        value,
                    }),
                    None => {
                        skipped += 1;
                        None
                    }
                })
                .collect();
            if skipped > 0 {
                warnings.push(skipped_native_histograms(skipped));
            }
            QueryData::Vector(samples)
        }
        RawData::Matrix(raw_series) => {
            let mut skipped = 0usize;
            let series = raw_series
                .into_iter()
                .filter_map(|raw| {
                    if raw.values.is_empty() && raw.histograms.is_some() {
                        skipped += 1;
                        return None;
                    }
                    Some(Series {
                        labels: raw.metric,
                        values: raw.values.into_iter().map(|Point(t, v)| (t, v)).collect(),
                    })
                })
                .collect();
            if skipped > 0 {
                warnings.push(skipped_native_histograms(skipped));
            }
            QueryData::Matrix(series)
        }
        RawData::Scalar(Point(timestamp, value)) => QueryData::Scalar { timestamp, value },
        RawData::String(StringPoint(timestamp, value)) => QueryData::String { timestamp, value },
    };
    Ok(QueryResponse { data, warnings })
}

fn skipped_native_histograms(count: usize) -> String {
    format!(
        "model-monitor skipped {count} native histogram series (only classic histograms are read)"
    )
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

/// Parses a sample value as Prometheus writes it: a decimal number, `NaN`,
/// `+Inf` or `-Inf`.
pub(crate) fn parse_sample_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<RawData>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Option<Vec<String>>,
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
enum RawData {
    Vector(Vec<RawSample>),
    Matrix(Vec<RawSeries>),
    Scalar(Point),
    String(StringPoint),
}

#[derive(Deserialize)]
struct RawSample {
    #[serde(default)]
    metric: Labels,
    /// Absent for native histogram samples, which carry `histogram` instead.
    #[serde(default)]
    value: Option<Point>,
    #[serde(default, rename = "histogram")]
    _histogram: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: Labels,
    #[serde(default)]
    values: Vec<Point>,
    #[serde(default)]
    histograms: Option<IgnoredAny>,
}

/// `[<unix seconds>, "<value>"]`.
struct Point(f64, f64);

/// `[<unix seconds>, "<text>"]`.
struct StringPoint(f64, String);

/// A number written as a JSON number or as a string (`"1.5"`, `"NaN"`,
/// `"+Inf"`).
struct Number(f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl Visitor<'_> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a number or a string holding one")
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Number, E> {
                Ok(Number(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Number, E> {
                Ok(Number(value as f64))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Number, E> {
                Ok(Number(value as f64))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Number, E> {
                parse_sample_value(value)
                    .map(Number)
                    .ok_or_else(|| E::custom(format_args!("invalid sample value {value:?}")))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PointVisitor;
        impl<'de> Visitor<'de> for PointVisitor {
            type Value = Point;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a [timestamp, value] pair")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Point, A::Error> {
                let Number(timestamp) = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let Number(value) = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(Point(timestamp, value))
            }
        }
        deserializer.deserialize_seq(PointVisitor)
    }
}

impl<'de> Deserialize<'de> for StringPoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StringPointVisitor;
        impl<'de> Visitor<'de> for StringPointVisitor {
            type Value = StringPoint;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a [timestamp, string] pair")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringPoint, A::Error> {
                let Number(timestamp) = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let value: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(StringPoint(timestamp, value))
            }
        }
        deserializer.deserialize_seq(StringPointVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn decode(body: &str) -> Result<QueryResponse, PromError> {
        parse_response(200, body.as_bytes())
    }

    #[test]
    fn parses_sample_values_as_prometheus_writes_them() {
        let cases: &[(&str, Option<f64>)] = &[
            ("1", Some(1.0)),
            ("0.25", Some(0.25)),
            ("-3.5", Some(-3.5)),
            ("1e-3", Some(0.001)),
            ("+Inf", Some(f64::INFINITY)),
            ("-Inf", Some(f64::NEG_INFINITY)),
            ("", None),
            ("one", None),
            ("1,5", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_sample_value(text), *expected, "{text:?}");
        }
        assert!(parse_sample_value("NaN").is_some_and(f64::is_nan));
    }

    #[test]
    fn decodes_a_vector_with_labels_and_special_values() {
        let answer = decode(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"model":"a","le":"+Inf"},"value":[1700000000.5,"12"]},
                {"metric":{},"value":[1700000000,"NaN"]},
                {"metric":{"x":"y\"z"},"value":[1700000000,"-Inf"]}]}}"#,
        )
        .unwrap();
        let QueryData::Vector(samples) = answer.data else {
            panic!("not a vector: {answer:?}")
        };
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].labels, labels(&[("model", "a"), ("le", "+Inf")]));
        assert_eq!(samples[0].timestamp, 1_700_000_000.5);
        assert_eq!(samples[0].value, 12.0);
        assert!(samples[1].value.is_nan());
        assert_eq!(samples[2].labels, labels(&[("x", "y\"z")]));
        assert_eq!(samples[2].value, f64::NEG_INFINITY);
    }

    #[test]
    fn accepts_result_before_result_type() {
        let answer = decode(
            r#"{"data":{"result":[1700000000,"3"],"resultType":"scalar"},"status":"success"}"#,
        )
        .unwrap();
        assert_eq!(
            answer.data,
            QueryData::Scalar {
                timestamp: 1_700_000_000.0,
                value: 3.0
            }
        );
    }

    #[test]
    fn skips_native_histogram_samples_with_a_warning() {
        let answer = decode(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"a":"1"},"histogram":[1700000000,{"count":"1","sum":"1","buckets":[]}]},
                {"metric":{"a":"2"},"value":[1700000000,"1"]}]}}"#,
        )
        .unwrap();
        assert_eq!(answer.data.result_type(), "vector");
        assert_eq!(answer.warnings.len(), 1, "{:?}", answer.warnings);
        let QueryData::Vector(samples) = answer.data else {
            panic!("not a vector")
        };
        assert_eq!(samples.len(), 1);
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
            let result = decode(body);
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
        }) = parse_response(502, body.as_bytes())
        else {
            panic!("expected an http error")
        };
        assert_eq!(status, 502);
        assert_eq!(message.chars().count(), BODY_EXCERPT_CHARS);
        assert_eq!(
            parse_response(500, b"  ").unwrap_err().to_string(),
            "server answered HTTP 500: (empty body)"
        );
        // Invalid UTF-8 is replaced, never a panic.
        assert!(parse_response(500, &[0xff, 0xfe, b'x']).is_err());
    }
}
