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
/// the label values it asked for borrowed from the body for the duration of
/// the call.
pub trait VectorSink {
    /// One sample: the values of the wanted labels in the order they were
    /// asked for (`""` for a label the sample lacks, as in PromQL), and the
    /// sample value.
    fn sample(&mut self, labels: &[Cow<'_, str>], value: f64);
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
pub fn parse_vector_into<S: VectorSink>(
    status: u16,
    body: &[u8],
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

impl<'de, S: VectorSink> DeserializeSeed<'de> for EnvelopeSeed<'_, '_, S> {
    type Value = VectorEnvelope<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, S: VectorSink> Visitor<'de> for EnvelopeSeed<'_, '_, S> {
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

impl<'de, S: VectorSink> DeserializeSeed<'de> for DataSeed<'_, '_, S> {
    type Value = (Option<Cow<'de, str>>, usize);
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, S: VectorSink> Visitor<'de> for DataSeed<'_, '_, S> {
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

impl<'de, S: VectorSink> DeserializeSeed<'de> for ResultSeed<'_, '_, S> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, S: VectorSink> Visitor<'de> for ResultSeed<'_, '_, S> {
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

/// How every Prometheus-compatible server we know starts a successful
/// instant-vector answer. [`VectorStream`] decodes answers that start so
/// sample by sample as they arrive; any other start is decoded whole.
const VECTOR_PREFIX: &[u8] = br#"{"status":"success","data":{"resultType":"vector","result":["#;

/// The most bytes kept after the result array (the envelope's closing
/// braces, warnings and infos).
const MAX_TAIL_BYTES: usize = 1 << 20;

/// Decodes an instant-vector answer into a [`VectorSink`] as its body
/// arrives, holding only the sample being read: a grouped histogram answer
/// of 17 MB at 10,000 models never sits in memory whole.
///
/// Samples, warnings and errors are those of [`parse_vector_into`] on the
/// whole body, except that the position in a [`PromError::Decode`] message
/// counts from the sample it is in. An answer that does not start as
/// Prometheus writes a successful vector (an error, another result type,
/// keys in another order, pretty-printed JSON) is kept whole and handed to
/// [`parse_vector_into`] at the end, so it is decoded exactly as before.
pub struct VectorStream<'w> {
    wanted: &'w [&'w str],
    status: u16,
    phase: Phase,
    /// Bytes not yet decoded: the start of the answer, the sample being
    /// received, or the part after the result array.
    pending: Vec<u8>,
    /// Samples without a value (native histograms).
    skipped: usize,
    /// Samples decoded so far, for error messages.
    samples: usize,
}

enum Phase {
    /// Waiting for enough bytes to compare with [`VECTOR_PREFIX`].
    Start,
    /// Inside the result array: `scan` is the position reached in
    /// `pending` by the search for the end of the sample that starts at 0.
    Samples { scan: usize, within: Scan },
    /// After the result array.
    Tail,
    /// Not the usual start: keep everything, decode at the end.
    Whole,
}

/// Where the search for a sample's closing brace stands.
#[derive(Default, Clone, Copy)]
struct Scan {
    /// Objects open (0 before the sample's opening brace).
    depth: u32,
    in_string: bool,
    /// The previous byte was a backslash inside a string.
    escaped: bool,
}

impl Scan {
    /// The end (exclusive) of the object that starts at `buf[0]`, searching
    /// from `from`; `Err(n)` when `buf` ends first, having read up to `n`.
    fn object_end(&mut self, buf: &[u8], from: usize) -> Result<usize, usize> {
        let mut at = from;
        while at < buf.len() {
            if self.escaped {
                self.escaped = false;
                at += 1;
            } else if self.in_string {
                let Some(found) = memchr::memchr2(b'"', b'\\', &buf[at..]) else {
                    return Err(buf.len());
                };
                at += found;
                if buf[at] == b'\\' {
                    self.escaped = true;
                } else {
                    self.in_string = false;
                }
                at += 1;
            } else {
                let Some(found) = memchr::memchr3(b'"', b'{', b'}', &buf[at..]) else {
                    return Err(buf.len());
                };
                at += found;
                match buf[at] {
                    b'"' => self.in_string = true,
                    b'{' => self.depth += 1,
                    _ => {
                        self.depth = self.depth.saturating_sub(1);
                        if self.depth == 0 {
                            return Ok(at + 1);
                        }
                    }
                }
                at += 1;
            }
        }
        Err(buf.len())
    }
}

/// What [`compact_sample`] made of the bytes at a sample's start.
enum Compact {
    /// A whole sample of that many bytes, with its value (`None`: no
    /// `value`, a native histogram).
    Sample(usize, Option<f64>),
    /// The bytes end before the sample does.
    Incomplete,
    /// Not the compact form (escapes, spaces, other keys or order, bad
    /// JSON): decode it with serde, which also names any error.
    Other,
}

/// Reads one sample written exactly as Prometheus writes it,
/// `{"metric":{"name":"value",...},"value":[<number>,"<value>"]}` without
/// spaces or escapes, filling `labels` with the wanted values borrowed from
/// `buf`. Anything else is [`Compact::Other`], so serde decides it. This is
/// the hot loop of a cycle (880,000 samples at 10,000 models); serde's
/// general path costs several times more per sample.
fn compact_sample<'b>(buf: &'b [u8], wanted: &[&str], labels: &mut [Cow<'b, str>]) -> Compact {
    const METRIC: &[u8; 11] = br#"{"metric":{"#;
    const VALUE: &[u8; 10] = br#","value":["#;
    /// Compares `expected` with the bytes at `at`. Fixed-size comparisons
    /// compile to a few loads, not a `memcmp` call per literal.
    fn literal<const N: usize>(
        buf: &[u8],
        at: usize,
        expected: &[u8; N],
    ) -> Result<usize, Compact> {
        if let Some(found) = buf.get(at..at + N) {
            return if <&[u8; N]>::try_from(found).is_ok_and(|found| found == expected) {
                Ok(at + N)
            } else {
                Err(Compact::Other)
            };
        }
        let available = buf.len().saturating_sub(at);
        if same_bytes(&buf[at.min(buf.len())..], &expected[..available]) {
            Err(Compact::Incomplete)
        } else {
            Err(Compact::Other)
        }
    }
    /// A string without escapes starting after its opening quote: its text
    /// and the position after its closing quote.
    fn string(buf: &[u8], at: usize) -> Result<(&str, usize), Compact> {
        let Some(length) = memchr::memchr(b'"', &buf[at.min(buf.len())..]) else {
            return Err(Compact::Incomplete);
        };
        let bytes = &buf[at..at + length];
        if bytes.iter().any(|&b| b == b'\\' || b < 0x20) {
            return Err(Compact::Other);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| Compact::Other)?;
        Ok((text, at + length + 1))
    }
    let parse = |labels: &mut [Cow<'b, str>]| -> Result<(usize, Option<f64>), Compact> {
        for label in labels.iter_mut() {
            *label = Cow::Borrowed("");
        }
        let mut at = literal(buf, 0, METRIC)?;
        if buf.get(at) != Some(&b'}') {
            loop {
                at = literal(buf, at, b"\"")?;
                let (name, after) = string(buf, at)?;
                at = literal(buf, after, b":\"")?;
                let (value, after) = string(buf, at)?;
                if let Some(slot) = wanted
                    .iter()
                    .position(|w| same_bytes(w.as_bytes(), name.as_bytes()))
                {
                    labels[slot] = Cow::Borrowed(value);
                }
                at = after;
                match buf.get(at) {
                    None => return Err(Compact::Incomplete),
                    Some(b',') => at += 1,
                    Some(b'}') => break,
                    Some(_) => return Err(Compact::Other),
                }
            }
        }
        at = literal(buf, at + 1, VALUE)?;
        let number = buf[at.min(buf.len())..]
            .iter()
            .position(|&b| !matches!(b, b'0'..=b'9' | b'.' | b'-' | b'+' | b'e' | b'E'))
            .ok_or(Compact::Incomplete)?;
        if !is_json_number(&buf[at..at + number]) {
            return Err(Compact::Other);
        }
        at = literal(buf, at + number, b",\"")?;
        let (text, after) = string(buf, at)?;
        let value = parse_sample_value(text).ok_or(Compact::Other)?;
        let end = literal(buf, after, b"]}")?;
        Ok((end, Some(value)))
    };
    match parse(labels) {
        Ok((end, value)) => Compact::Sample(end, value),
        Err(outcome) => outcome,
    }
}

/// Byte equality of short strings (label names) without a `memcmp` call,
/// which costs more than the comparison for a handful of bytes.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut differ = 0u8;
    for (x, y) in a.iter().zip(b) {
        differ |= x ^ y;
    }
    differ == 0
}

/// Whether `bytes` is one JSON number (RFC 8259 grammar).
fn is_json_number(bytes: &[u8]) -> bool {
    let mut at = 0;
    let digits = |at: &mut usize| {
        let start = *at;
        while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at > start
    };
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    match bytes.get(at) {
        Some(b'0') => at += 1,
        Some(b'1'..=b'9') => {
            digits(&mut at);
        }
        _ => return false,
    }
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        if !digits(&mut at) {
            return false;
        }
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        if !digits(&mut at) {
            return false;
        }
    }
    at == bytes.len()
}

fn is_json_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'w> VectorStream<'w> {
    /// A decoder for an answer with HTTP `status`, keeping the labels named
    /// in `wanted`.
    pub fn new(status: u16, wanted: &'w [&'w str]) -> VectorStream<'w> {
        VectorStream {
            wanted,
            status,
            phase: if (200..300).contains(&status) {
                Phase::Start
            } else {
                Phase::Whole
            },
            pending: Vec::new(),
            skipped: 0,
            samples: 0,
        }
    }

    /// Decodes what `chunk` completes and keeps the rest for later.
    pub fn push<S: VectorSink>(&mut self, chunk: &[u8], sink: &mut S) -> Result<(), PromError> {
        self.pending.extend_from_slice(chunk);
        loop {
            match &mut self.phase {
                Phase::Whole => return Ok(()),
                Phase::Start => {
                    let compared = self.pending.len().min(VECTOR_PREFIX.len());
                    if self.pending[..compared] != VECTOR_PREFIX[..compared] {
                        self.phase = Phase::Whole;
                        return Ok(());
                    }
                    if compared < VECTOR_PREFIX.len() {
                        return Ok(());
                    }
                    self.pending.drain(..VECTOR_PREFIX.len());
                    self.phase = Phase::Samples {
                        scan: 0,
                        within: Scan::default(),
                    };
                }
                Phase::Samples { .. } => return self.decode_samples(sink),
                Phase::Tail => {
                    if self.pending.len() > MAX_TAIL_BYTES {
                        return Err(PromError::Decode(format!(
                            "more than {MAX_TAIL_BYTES} bytes after the result array"
                        )));
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Decodes every complete sample in `pending`, then drops them.
    fn decode_samples<S: VectorSink>(&mut self, sink: &mut S) -> Result<(), PromError> {
        let Phase::Samples { scan, within } = &mut self.phase else {
            return Ok(());
        };
        let buf = self.pending.as_slice();
        let mut start = 0;
        let mut labels: Vec<Cow<'_, str>> = vec![Cow::Borrowed(""); self.wanted.len()];
        let mut array_closed = false;
        loop {
            if within.depth == 0 && *scan == start {
                // Between samples: skip separators, find the next sample.
                while start < buf.len() && (is_json_space(buf[start]) || buf[start] == b',') {
                    start += 1;
                }
                *scan = start;
                match buf.get(start) {
                    None => break,
                    Some(b']') => {
                        start += 1;
                        array_closed = true;
                        break;
                    }
                    Some(b'{') => {}
                    Some(other) => {
                        return Err(PromError::Decode(format!(
                            "expected a sample object after sample {} of the result, found {:?}",
                            self.samples,
                            char::from(*other)
                        )));
                    }
                }
            }
            if within.depth == 0 && *scan == start {
                // Prometheus' own compact form, read without serde.
                match compact_sample(&buf[start..], self.wanted, &mut labels) {
                    Compact::Sample(end, value) => {
                        match value {
                            Some(value) => sink.sample(&labels, value),
                            None => self.skipped += 1,
                        }
                        self.samples += 1;
                        start += end;
                        *scan = start;
                        continue;
                    }
                    Compact::Incomplete => break,
                    Compact::Other => {}
                }
            }
            match within.object_end(&buf[start..], *scan - start) {
                Ok(end) => {
                    let object = &buf[start..start + end];
                    let mut deserializer = serde_json::Deserializer::from_slice(object);
                    let value = SampleSeed {
                        wanted: self.wanted,
                        labels: &mut labels,
                    }
                    .deserialize(&mut deserializer)
                    .map_err(|error| {
                        PromError::Decode(format!("sample {} of the result: {error}", self.samples))
                    })?;
                    match value {
                        Some(value) => sink.sample(&labels, value),
                        None => self.skipped += 1,
                    }
                    self.samples += 1;
                    start += end;
                    *scan = start;
                    *within = Scan::default();
                }
                Err(read) => {
                    *scan = start + read;
                    break;
                }
            }
        }
        drop(labels);
        if array_closed {
            self.phase = Phase::Tail;
        } else if let Phase::Samples { scan, .. } = &mut self.phase {
            *scan -= start;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Checks the end of the answer and returns its warnings; or, for an
    /// answer kept whole, decodes it with [`parse_vector_into`].
    pub fn finish<S: VectorSink>(self, sink: &mut S) -> Result<Vec<String>, PromError> {
        match self.phase {
            Phase::Start | Phase::Whole => {
                parse_vector_into(self.status, &self.pending, self.wanted, sink)
            }
            Phase::Samples { .. } => Err(PromError::Decode(format!(
                "the answer ended inside the result array, after {} samples",
                self.samples
            ))),
            Phase::Tail => {
                // The envelope around an empty result, with the real end:
                // decoded as a whole answer, so that warnings and a broken
                // end are read exactly as before.
                let mut envelope = VECTOR_PREFIX.to_vec();
                envelope.push(b']');
                envelope.extend_from_slice(&self.pending);
                struct Nothing;
                impl VectorSink for Nothing {
                    fn sample(&mut self, _: &[Cow<'_, str>], _: f64) {}
                }
                let mut warnings =
                    parse_vector_into(self.status, &envelope, self.wanted, &mut Nothing)?;
                if self.skipped > 0 {
                    warnings.push(skipped_native_histograms(self.skipped));
                }
                Ok(warnings)
            }
        }
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

    impl VectorSink for Collect {
        fn sample(&mut self, labels: &[Cow<'_, str>], value: f64) {
            self.0
                .push((labels.iter().map(|l| l.to_string()).collect(), value));
        }
    }

    /// Decodes `body` with a [`VectorStream`] fed `chunk` bytes at a time.
    fn stream(
        status: u16,
        body: &[u8],
        wanted: &[&str],
        chunk: usize,
    ) -> (Result<Vec<String>, PromError>, Collect) {
        let mut sink = Collect::default();
        let mut stream = VectorStream::new(status, wanted);
        for piece in body.chunks(chunk.max(1)) {
            if let Err(error) = stream.push(piece, &mut sink) {
                return (Err(error), sink);
            }
        }
        (stream.finish(&mut sink), sink)
    }

    /// Every answer decodes to the same samples, warnings and errors through
    /// the sink, whole or streamed in pieces of any size, as through
    /// [`parse_response`]. Streamed errors inside the result array are of
    /// the same kind, their position counted from the sample.
    #[test]
    fn vector_sink_sees_what_the_owned_decoding_sees() {
        let wanted = ["model", "le", "x"];
        let check = |status: u16, body: &str| {
            let owned = parse_response(status, body.as_bytes());
            let mut sink = Collect::default();
            let whole = parse_vector_into(status, body.as_bytes(), &wanted, &mut sink);
            let mut decodings = vec![("whole".to_owned(), whole, sink)];
            for chunk in [1, 2, 7, 64, body.len()] {
                let (result, sink) = stream(status, body.as_bytes(), &wanted, chunk);
                decodings.push((format!("streamed in {chunk}-byte pieces"), result, sink));
            }
            for (how, streamed, sink) in decodings {
                let body = format!("{how}: {body}");
                match (&owned, streamed) {
                    (Ok(owned), Ok(warnings)) => {
                        let QueryData::Vector(samples) = &owned.data else {
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
                    (Err(owned), Err(streamed)) if how == "whole" => {
                        assert_eq!(owned.to_string(), streamed.to_string(), "{body}");
                    }
                    (Err(owned), Err(streamed)) => {
                        assert_eq!(owned.reason(), streamed.reason(), "{body}: {streamed}");
                    }
                    (Err(owned), Ok(_)) => panic!("{body}: owned path failed with {owned:?}"),
                }
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
        // Prometheus' own compact form, decoded sample by sample.
        let prefix = r#"{"status":"success","data":{"resultType":"vector","result":["#;
        for rest in [
            r#"]}}"#,
            r#"{"metric":{"model":"a","le":"0.5"},"value":[1,"3"]},{"metric":{"model":"a","le":"+Inf"},"value":[1,"4"]}]}}"#,
            // Braces, quotes and backslashes inside strings, whitespace
            // between samples, keys in any order, a native histogram.
            r#" {"metric":{"x":"}{\"\\","model":"b{"},"value":[1,"1"]} ,
               {"value":[1,"2"],"metric":{"model":"\u00e9}"}},
               {"metric":{"model":"h"},"histogram":[1,{"count":"1","buckets":[[0,"1","2","3"]]}]}
            ]},"warnings":["w1"],"infos":["i"]}"#,
            r#"{"metric":{"model":"a"},"value":[1,"2"]}]},"warnings":["w"]}"#,
            // Timestamps and values in every form; empty label sets; raw
            // UTF-8; a label value with a control character (not JSON).
            r#"{"metric":{},"value":[0,"NaN"]},{"metric":{"model":"é"},"value":[-1.5e+3,"+Inf"]},{"metric":{"le":"1","le":"2"},"value":[17E2,"-2.5e-3"]}]}}"#,
            r#"{"metric":{"model":"a"},"value":[01,"2"]}]}}"#,
            r#"{"metric":{"model":"a"},"value":[1.,"2"]}]}}"#,
            r#"{"metric":{"model":"a"},"value":[1,2]}]}}"#,
            "{\"metric\":{\"model\":\"a\u{1}\"},\"value\":[1,\"2\"]}]}}",
            // Broken inside the array, after it, or cut short.
            r#"{"metric":{"model":"a"},"value":[1,"x"]}]}}"#,
            r#"{"metric":{"model":"a"},"value":[1,"2"]},3]}}"#,
            r#"{"metric":{"model":"a"},"value":[1,"2"]}]}} trailing"#,
            r#"{"metric":{"model":"a"},"value":[1,"2"]}]}"#,
            r#"{"metric":{"model":"a"},"value":[1,"2"]},{"metric":{"mod"#,
            r#"{"metric":{"model":"a"},"value":[1,"2"]}]"#,
            r#"{"metric":{"model":"a"},"value":[1,"2"]}"#,
            "",
        ] {
            check(200, &format!("{prefix}{rest}"));
        }
    }

    /// Samples as Prometheus writes them take the fast path; anything else
    /// is left to serde, and a cut sample waits for more bytes.
    #[test]
    fn compact_samples_are_read_without_serde() {
        let wanted = ["model", "le"];
        let mut labels = vec![Cow::Borrowed(""); 2];
        let sample = br#"{"metric":{"le":"0.5","model":"m-1","version":"v1"},"value":[1700000000.123,"12.5"]},"#;
        match compact_sample(sample, &wanted, &mut labels) {
            Compact::Sample(end, value) => {
                assert_eq!(end, sample.len() - 1);
                assert_eq!(value, Some(12.5));
                assert_eq!(labels, ["m-1", "0.5"]);
            }
            _ => panic!("not read as a compact sample"),
        }
        for cut in 1..sample.len() - 1 {
            assert!(
                matches!(
                    compact_sample(&sample[..cut], &wanted, &mut labels),
                    Compact::Incomplete
                ),
                "cut at {cut}"
            );
        }
        for other in [
            &br#"{"metric": {},"value":[1,"2"]}"#[..],
            br#"{"value":[1,"2"],"metric":{}}"#,
            br#"{"metric":{"model":"a\"b"},"value":[1,"2"]}"#,
            br#"{"metric":{},"histogram":[1,{}]}"#,
            br#"{"metric":{},"value":[1,"x"]}"#,
        ] {
            assert!(
                matches!(compact_sample(other, &wanted, &mut labels), Compact::Other),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    /// A streamed answer keeps only the sample being received, not the
    /// body.
    #[test]
    fn a_streamed_vector_holds_one_sample_at_a_time() {
        let mut body =
            String::from(r#"{"status":"success","data":{"resultType":"vector","result":["#);
        for model in 0..10_000 {
            if model > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                r#"{{"metric":{{"le":"+Inf","model":"model-{model}"}},"value":[1700000000,"{model}"]}}"#
            ));
        }
        body.push_str("]}}");
        let wanted = ["model", "le"];
        let mut sink = Collect::default();
        let mut stream = VectorStream::new(200, &wanted);
        let mut most_held = 0;
        for piece in body.as_bytes().chunks(1000) {
            stream.push(piece, &mut sink).unwrap();
            most_held = most_held.max(stream.pending.len());
        }
        assert!(stream.finish(&mut sink).unwrap().is_empty());
        assert_eq!(sink.0.len(), 10_000);
        assert_eq!(
            sink.0[9_999],
            (vec!["model-9999".to_owned(), "+Inf".to_owned()], 9_999.0)
        );
        assert!(body.len() > 700_000);
        assert!(most_held < 1100, "held {most_held} bytes at once");
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
