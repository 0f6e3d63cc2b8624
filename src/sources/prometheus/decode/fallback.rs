//! [`parse_vector_into`]: the fallback decoder, for an instant-vector
//! answer in any layout. The whole body goes through serde's general
//! parser in one pass, straight into a [`VectorSink`]; the streamed path
//! ([`super::VectorStream`]) hands it every answer that does not start as
//! Prometheus writes one, and borrows its sample reader for samples in
//! another form.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::rejection::reject;
use super::{Number, Pair, Point, PromError, VectorSink, keep_label, skipped_native_histograms};

/// Decodes an answer that must be an instant vector straight into `sink`,
/// keeping only the labels named in `wanted`, borrowed from `body` (owned
/// only where JSON escapes force a copy). No sample, label map or label
/// string is allocated, so a grouped histogram answer of hundreds of
/// thousands of samples costs its body and what the sink keeps.
///
/// Returns the answer's warnings. Every answer that is not a successful
/// vector yields its error: [`PromError::Http`] for a non-2xx status,
/// [`PromError::Api`] for `"status":"error"`, [`PromError::Decode`] with
/// serde's message for JSON that does not decode, and
/// [`PromError::UnexpectedResultType`] for another result type. The sink
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
    // Errors, other result types and malformed bodies: a typed reading of
    // the whole answer names them exactly.
    Err(reject(status, body))
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

/// Decodes one sample object, `{"metric": {...}, "value": [t, "v"]}` in
/// any layout, into `labels` (the values of the `wanted` labels); yields
/// its value, or `None` for a sample without one (a native histogram).
pub(super) fn decode_sample<'b>(
    object: &'b [u8],
    wanted: &[&str],
    labels: &mut [Cow<'b, str>],
) -> Result<Option<f64>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(object);
    SampleSeed { wanted, labels }.deserialize(&mut deserializer)
}

/// One `{"metric": {...}, "value": [t, "v"]}`: fills `labels` and yields the
/// value, or `None` for a sample without one.
struct SampleSeed<'w, 'l, 'de> {
    wanted: &'w [&'w str],
    labels: &'l mut [Cow<'de, str>],
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
        self.labels.fill(Cow::Borrowed(""));
        let mut value = None;
        while let Some(key) = map.next_key::<BorrowedStr<'de>>()? {
            match key.0.as_ref() {
                "metric" => map.next_value_seed(LabelsSeed {
                    wanted: self.wanted,
                    labels: &mut *self.labels,
                })?,
                "value" => {
                    let Pair(Number(sample)) = map.next_value::<Point>()?;
                    value = Some(sample);
                }
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
    labels: &'l mut [Cow<'de, str>],
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
            keep_label(self.wanted, self.labels, &name.0, value.0);
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
