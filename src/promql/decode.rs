//! Decoding of PromQL API answers: the JSON envelope, the four result types
//! and the string-encoded sample values.
//!
//! The body is decoded in one pass with serde_json straight into typed
//! structs; sample values and timestamps are parsed from the borrowed JSON
//! text without an intermediate allocation, so answers with 100k+ series stay
//! cheap. Nothing here panics on any input: every malformed answer becomes a
//! [`PromError`].

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

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

/// Receives the samples of an instant-vector answer, one at a time, with
/// the label values it asked for borrowed from the body.
pub trait VectorSink<'a> {
    /// One sample: the values of the wanted labels in the order they were
    /// asked for (`""` for a label the sample lacks, as in PromQL), and the
    /// sample value.
    fn sample(&mut self, labels: &[Cow<'a, str>], value: f64);
}

/// Decodes an answer that must be an instant vector straight into `sink`,
/// keeping only the labels named in `wanted`, borrowed from `body` (owned
/// only where JSON escapes force a copy). No sample, label map or label
/// string is allocated, so a grouped histogram answer of hundreds of
/// thousands of samples costs its body and what the sink keeps.
///
/// Returns the answer's warnings. Every answer that is not a successful
/// vector yields the error [`parse_response`] gives for it, or
/// [`PromError::UnexpectedResultType`] for another result type; the sink
/// may then have seen some samples and should be discarded.
pub fn parse_vector_into<'a, S: VectorSink<'a>>(
    status: u16,
    body: &'a [u8],
    wanted: &[&str],
    sink: &mut S,
) -> Result<Vec<String>, PromError> {
    if (200..300).contains(&status) {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let decoded = EnvelopeSeed { wanted, sink }
            .deserialize(&mut deserializer)
            .and_then(|envelope| deserializer.end().map(|()| envelope));
        if let Ok(envelope) = decoded
            && envelope.status == "success"
            && envelope.result_type.as_deref() == Some("vector")
        {
            let mut warnings = envelope.warnings;
            if envelope.skipped > 0 {
                warnings.push(skipped_native_histograms(envelope.skipped));
            }
            return Ok(warnings);
        }
    }
    // Errors, other result types and malformed bodies: the general path
    // names them exactly.
    Err(match parse_response(status, body) {
        Ok(response) => PromError::UnexpectedResultType {
            expected: "vector",
            got: response.data.result_type(),
        },
        Err(error) => error,
    })
}

/// What the envelope held besides the samples.
struct VectorEnvelope<'a> {
    status: Cow<'a, str>,
    result_type: Option<Cow<'a, str>>,
    warnings: Vec<String>,
    /// Samples without a value (native histograms).
    skipped: usize,
}

struct EnvelopeSeed<'w, 's, S> {
    wanted: &'w [&'w str],
    sink: &'s mut S,
}

impl<'de, S: VectorSink<'de>> DeserializeSeed<'de> for EnvelopeSeed<'_, '_, S> {
    type Value = VectorEnvelope<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, S: VectorSink<'de>> Visitor<'de> for EnvelopeSeed<'_, '_, S> {
    type Value = VectorEnvelope<'de>;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a PromQL API answer")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = VectorEnvelope {
            status: Cow::Borrowed(""),
            result_type: None,
            warnings: Vec::new(),
            skipped: 0,
        };
        while let Some(key) = map.next_key::<BorrowedStr<'de>>()? {
            match key.0.as_ref() {
                "status" => envelope.status = map.next_value::<BorrowedStr<'de>>()?.0,
                "warnings" => {
                    envelope.warnings = map.next_value::<Option<Vec<String>>>()?.unwrap_or_default()
                }
                "data" => {
                    let (result_type, skipped) = map.next_value_seed(DataSeed {
                        wanted: self.wanted,
                        sink: &mut *self.sink,
                    })?;
                    envelope.result_type = result_type;
                    envelope.skipped = skipped;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

/// `{"resultType": ..., "result": [...]}`; yields the result type and the
/// number of samples without a value.
struct DataSeed<'w, 's, S> {
    wanted: &'w [&'w str],
    sink: &'s mut S,
}

impl<'de, S: VectorSink<'de>> DeserializeSeed<'de> for DataSeed<'_, '_, S> {
    type Value = (Option<Cow<'de, str>>, usize);
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, S: VectorSink<'de>> Visitor<'de> for DataSeed<'_, '_, S> {
    type Value = (Option<Cow<'de, str>>, usize);
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("the data of a PromQL answer")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut result_type = None;
        let mut skipped = 0;
        while let Some(key) = map.next_key::<BorrowedStr<'de>>()? {
            match key.0.as_ref() {
                "resultType" => result_type = Some(map.next_value::<BorrowedStr<'de>>()?.0),
                "result" => {
                    skipped = map.next_value_seed(ResultSeed {
                        wanted: self.wanted,
                        sink: &mut *self.sink,
                    })?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((result_type, skipped))
    }
}

/// The `result` array of samples; yields the number without a value.
struct ResultSeed<'w, 's, S> {
    wanted: &'w [&'w str],
    sink: &'s mut S,
}

impl<'de, S: VectorSink<'de>> DeserializeSeed<'de> for ResultSeed<'_, '_, S> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, S: VectorSink<'de>> Visitor<'de> for ResultSeed<'_, '_, S> {
    type Value = usize;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an array of samples")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // One label buffer for every sample.
        let mut labels = vec![Cow::Borrowed(""); self.wanted.len()];
        let mut skipped = 0;
        while let Some(value) = seq.next_element_seed(SampleSeed {
            wanted: self.wanted,
            labels: &mut labels,
        })? {
            match value {
                Some(value) => self.sink.sample(&labels, value),
                None => skipped += 1,
            }
        }
        Ok(skipped)
    }
}

/// One `{"metric": {...}, "value": [t, "v"]}`: fills `labels` and yields the
/// value, or `None` for a sample without one.
struct SampleSeed<'w, 'l, 'de> {
    wanted: &'w [&'w str],
    labels: &'l mut Vec<Cow<'de, str>>,
}

impl<'de> DeserializeSeed<'de> for SampleSeed<'_, '_, 'de> {
    type Value = Option<f64>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SampleSeed<'_, '_, 'de> {
    type Value = Option<f64>;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a sample")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        for label in self.labels.iter_mut() {
            *label = Cow::Borrowed("");
        }
        let mut value = None;
        while let Some(key) = map.next_key::<BorrowedStr<'de>>()? {
            match key.0.as_ref() {
                "metric" => map.next_value_seed(LabelsSeed {
                    wanted: self.wanted,
                    labels: &mut *self.labels,
                })?,
                "value" => value = Some(map.next_value::<Point>()?.1),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(value)
    }
}

/// A label object: keeps the values of the wanted names.
struct LabelsSeed<'w, 'l, 'de> {
    wanted: &'w [&'w str],
    labels: &'l mut Vec<Cow<'de, str>>,
}

impl<'de> DeserializeSeed<'de> for LabelsSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LabelsSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an object of label names to values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<BorrowedStr<'de>>()? {
            let value = map.next_value::<BorrowedStr<'de>>()?;
            if let Some(slot) = self.wanted.iter().position(|wanted| *wanted == name.0) {
                self.labels[slot] = value.0;
            }
        }
        Ok(())
    }
}

/// A string borrowed from the input when it has no escapes.
struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for StrVisitor<'a> {
            type Value = BorrowedStr<'a>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Borrowed(value)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(value.to_owned())))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(StrVisitor(std::marker::PhantomData))
    }
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

    /// Collects what [`parse_vector_into`] hands over, owned.
    #[derive(Default)]
    struct Collect(Vec<(Vec<String>, f64)>);

    impl<'a> VectorSink<'a> for Collect {
        fn sample(&mut self, labels: &[Cow<'a, str>], value: f64) {
            self.0
                .push((labels.iter().map(|l| l.to_string()).collect(), value));
        }
    }

    /// Every answer decodes to the same samples, warnings and errors through
    /// the streaming sink as through [`parse_response`].
    #[test]
    fn vector_sink_sees_what_the_owned_decoding_sees() {
        let wanted = ["model", "le", "x"];
        let check = |status: u16, body: &str| {
            let owned = parse_response(status, body.as_bytes());
            let mut sink = Collect::default();
            let streamed = parse_vector_into(status, body.as_bytes(), &wanted, &mut sink);
            match (owned, streamed) {
                (Ok(owned), Ok(warnings)) => {
                    let QueryData::Vector(samples) = owned.data else {
                        panic!("{body}: owned answer is not a vector")
                    };
                    assert_eq!(samples.len(), sink.0.len(), "{body}");
                    for (owned, (labels, value)) in samples.iter().zip(&sink.0) {
                        let expected: Vec<String> = wanted
                            .iter()
                            .map(|name| owned.labels.get(*name).cloned().unwrap_or_default())
                            .collect();
                        assert_eq!(&expected, labels, "{body}");
                        assert!(
                            owned.value == *value || (owned.value.is_nan() && value.is_nan()),
                            "{body}"
                        );
                    }
                    assert_eq!(owned.warnings, warnings, "{body}");
                }
                (Ok(owned), Err(error)) => {
                    assert!(
                        matches!(error, PromError::UnexpectedResultType { expected: "vector", got } if got == owned.data.result_type()),
                        "{body}: {error:?}"
                    );
                }
                (Err(owned), Err(streamed)) => {
                    assert_eq!(owned.to_string(), streamed.to_string(), "{body}");
                }
                (Err(owned), Ok(_)) => panic!("{body}: owned path failed with {owned:?}"),
            }
        };
        check(
            200,
            r#"{"status":"success","warnings":["w"],"data":{"resultType":"vector","result":[
                {"metric":{"model":"a","le":"+Inf","other":"o"},"value":[1700000000.5,"12"]},
                {"metric":{},"value":[1700000000,"NaN"]},
                {"value":[1700000000,"2"],"metric":{"x":"y\"z","model":"caf\u00e9"}},
                {"metric":{"model":"h"},"histogram":[1700000000,{"count":"1"}]}]}}"#,
        );
        check(
            200,
            r#"{"data":{"result":[{"metric":{"le":"1"},"value":[1,"5"]}],"resultType":"vector"},"status":"success"}"#,
        );
        check(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        );
        check(
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}"#,
        );
        check(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"]]}]}}"#,
        );
        check(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#,
        );
        check(
            200,
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
        );
        check(200, r#"{"status":"success"}"#);
        check(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}} trailing"#,
        );
        check(
            503,
            r#"{"status":"error","errorType":"unavailable","error":"down"}"#,
        );
        check(502, "<html>bad gateway</html>");
        check(200, "not json");
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
