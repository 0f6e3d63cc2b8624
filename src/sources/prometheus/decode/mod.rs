//! Decoding the answer to an instant query: the two faces of a decoder
//! (body bytes in, [`AnswerDecoder`]; samples out, [`VectorSink`]) and the
//! pieces the readers share (wanted-label slots, sample values,
//! `[timestamp, value]` pairs).
//!
//! - `stream.rs`: [`VectorStream`], the production path: a successful
//!   instant vector in Prometheus' own compact layout, decoded sample by
//!   sample as the body arrives;
//! - `fallback.rs`: [`parse_vector_into`], the whole body through serde,
//!   for answers in any other layout (other servers' spacing or key order,
//!   errors);
//! - `rejection.rs`: the exact error of an answer that is not a successful
//!   instant vector.
//!
//! Sample values and label values are read from the body without an
//! intermediate allocation, so answers with 100k+ series stay cheap.
//! Nothing here panics on any input: every malformed answer becomes a
//! [`PromError`].

mod fallback;
mod rejection;
mod stream;

pub use fallback::parse_vector_into;
pub use stream::VectorStream;

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::PromError;

/// Receives the samples of an instant-vector answer, one at a time, with
/// the label values it asked for borrowed from the body for the duration of
/// the call.
pub trait VectorSink {
    /// One sample: the values of the wanted labels in the order they were
    /// asked for (`""` for a label the sample lacks, as in PromQL), and the
    /// sample value.
    fn sample(&mut self, labels: &[Cow<'_, str>], value: f64);

    /// Why the rest of the answer is not wanted, once it is not: a limit
    /// the samples so far have passed. The decoder stops reading with this
    /// error. None by default.
    fn overflow(&self) -> Option<PromError> {
        None
    }
}

/// Discards every sample: for reading only an answer's warnings or error.
impl VectorSink for () {
    fn sample(&mut self, _: &[Cow<'_, str>], _: f64) {}
}

/// Reads an answer's body piece by piece as it arrives, as
/// [`super::PromClient::query_with`] hands it over.
pub trait AnswerDecoder {
    /// What a complete answer becomes.
    type Output;
    /// Takes the next piece of the body.
    fn push(&mut self, chunk: &[u8]) -> Result<(), PromError>;
    /// The body has ended: the answer, or what is wrong with it.
    fn finish(self) -> Result<Self::Output, PromError>;
}

/// Stores `value` in the slot of `labels` that `wanted` gives the label
/// `name`, if it is wanted.
fn keep_label<'a>(wanted: &[&str], labels: &mut [Cow<'a, str>], name: &str, value: Cow<'a, str>) {
    if let Some(slot) = wanted
        .iter()
        .position(|wanted| same_bytes(wanted.as_bytes(), name.as_bytes()))
    {
        labels[slot] = value;
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

/// The warning added to an answer whose samples without a value (native
/// histograms) were skipped.
fn skipped_native_histograms(count: usize) -> String {
    format!(
        "model-monitor skipped {count} native histogram series (only classic histograms are read)"
    )
}

/// Parses a sample value as Prometheus writes it: a decimal number, `NaN`,
/// `+Inf` or `-Inf`.
fn parse_sample_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// A `[<unix seconds>, <value>]` pair: its value. The timestamp is
/// checked, not kept: the evaluation time is the caller's.
struct Pair<V>(V);

/// A sample: `[<unix seconds>, "<value>"]`.
type Point = Pair<Number>;

/// What may stand second in a [`Pair`], and how errors name the pair.
trait PairValue<'de>: Deserialize<'de> {
    const PAIR: &'static str;
}

impl PairValue<'_> for Number {
    const PAIR: &'static str = "a [timestamp, value] pair";
}

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

impl<'de, V: PairValue<'de>> Deserialize<'de> for Pair<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairVisitor<V>(PhantomData<V>);
        impl<'de, V: PairValue<'de>> Visitor<'de> for PairVisitor<V> {
            type Value = Pair<V>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str(V::PAIR)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Pair<V>, A::Error> {
                let Number(_timestamp) = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let value = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(Pair(value))
            }
        }
        deserializer.deserialize_seq(PairVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
