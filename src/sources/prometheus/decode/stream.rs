//! [`VectorStream`]: the production decoder. A successful instant-vector
//! answer in Prometheus' own compact layout is decoded sample by sample as
//! its body arrives, by a hand-written scanner without serde; only the
//! sample being received is held. Samples in another form are handed to
//! the fallback's serde reader one at a time, and answers that do not start
//! as Prometheus writes them are kept whole for [`parse_vector_into`].

use std::borrow::Cow;

use super::fallback::decode_sample;
use super::{
    AnswerDecoder, PromError, VectorSink, keep_label, parse_sample_value, parse_vector_into,
    same_bytes, skipped_native_histograms,
};

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
/// [`parse_vector_into`] at the end, so it is decoded exactly as a whole
/// body would be.
///
/// The body goes in through [`AnswerDecoder`]; `finish` returns the
/// answer's warnings.
pub struct VectorStream<'w, 's, S> {
    wanted: &'w [&'w str],
    sink: &'s mut S,
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
    /// `pending` by the search for the end of the sample that starts at 0;
    /// `next` is what may come between samples.
    Samples {
        scan: usize,
        within: Scan,
        next: Next,
    },
    /// After the result array.
    Tail,
    /// Not the usual start: keep everything, decode at the end.
    Whole,
}

/// What may come next between the samples of the result array, as JSON
/// allows it (found by fuzzing: `[,]`, `[{..},,{..}]` and `[{..}{..}]`
/// were read here and refused by serde).
#[derive(Clone, Copy)]
enum Next {
    /// After `[`: a sample or `]`.
    First,
    /// After a sample: `,` or `]`.
    Separator,
    /// After `,`: a sample.
    Sample,
}

impl Next {
    fn expected(self) -> &'static str {
        match self {
            Next::First => "a sample object or ']'",
            Next::Separator => "',' or ']'",
            Next::Sample => "a sample object",
        }
    }
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

/// What a byte inside a JSON string is to [`compact_sample`]: part of the
/// text, the closing quote, or something only serde reads (a backslash
/// starting an escape, a control character JSON forbids).
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const SPECIAL: u8 = 2;
const STRING_BYTE: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = SPECIAL;
        byte += 1;
    }
    table[b'"' as usize] = QUOTE;
    table[b'\\' as usize] = SPECIAL;
    table
};

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
        let rest = &buf[at.min(buf.len())..];
        // One pass over the string (label values and sample values are a
        // few bytes: a table lookup per byte beats a `memchr` setup and a
        // second pass for escapes and control characters).
        let mut length = 0;
        loop {
            let Some(&byte) = rest.get(length) else {
                return Err(Compact::Incomplete);
            };
            match STRING_BYTE[usize::from(byte)] {
                PLAIN => length += 1,
                QUOTE => break,
                _ => return Err(Compact::Other),
            }
        }
        let text = std::str::from_utf8(&rest[..length]).map_err(|_| Compact::Other)?;
        Ok((text, at + length + 1))
    }
    let parse = |labels: &mut [Cow<'b, str>]| -> Result<(usize, Option<f64>), Compact> {
        labels.fill(Cow::Borrowed(""));
        let mut at = literal(buf, 0, METRIC)?;
        if buf.get(at) != Some(&b'}') {
            loop {
                at = literal(buf, at, b"\"")?;
                let (name, after) = string(buf, at)?;
                at = literal(buf, after, b":\"")?;
                let (value, after) = string(buf, at)?;
                keep_label(wanted, labels, name, Cow::Borrowed(value));
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

/// Whether `bytes` is one JSON number (RFC 8259 grammar) that serde_json
/// reads: one beyond the range of `f64` (`1e999`) is an error there.
fn is_json_number(bytes: &[u8]) -> bool {
    // Found by fuzzing: `[1e999,"1"]` was read here and refused by serde.
    // Short numbers without an exponent, as Prometheus writes timestamps,
    // cannot overflow and skip the parse.
    let in_range = || {
        (bytes.len() <= 20 && !bytes.iter().any(|&b| b == b'e' || b == b'E'))
            || std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .is_some_and(f64::is_finite)
    };
    is_json_grammar(bytes) && in_range()
}

/// Whether `bytes` follows the grammar of one JSON number (RFC 8259).
fn is_json_grammar(bytes: &[u8]) -> bool {
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

impl<'w, 's, S: VectorSink> VectorStream<'w, 's, S> {
    /// A decoder for an answer with HTTP `status`, handing `sink` the
    /// labels named in `wanted`.
    pub fn new(status: u16, wanted: &'w [&'w str], sink: &'s mut S) -> Self {
        VectorStream {
            wanted,
            sink,
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

    /// Decodes every complete sample in `pending`, then drops them.
    fn decode_samples(&mut self) -> Result<(), PromError> {
        let Phase::Samples { scan, within, next } = &mut self.phase else {
            return Ok(());
        };
        let buf = self.pending.as_slice();
        let mut start = 0;
        let mut labels: Vec<Cow<'_, str>> = vec![Cow::Borrowed(""); self.wanted.len()];
        let mut array_closed = false;
        loop {
            let compact = if within.depth == 0 && *scan == start {
                // Between samples: skip spaces and one comma, find the
                // next sample.
                loop {
                    while start < buf.len() && is_json_space(buf[start]) {
                        start += 1;
                    }
                    if buf.get(start) == Some(&b',') && matches!(next, Next::Separator) {
                        start += 1;
                        *next = Next::Sample;
                    } else {
                        break;
                    }
                }
                *scan = start;
                match (buf.get(start), *next) {
                    (None, _) => break,
                    (Some(b']'), Next::First | Next::Separator) => {
                        start += 1;
                        array_closed = true;
                        break;
                    }
                    (Some(b'{'), Next::First | Next::Sample) => {}
                    (Some(other), _) => {
                        return Err(PromError::Decode(format!(
                            "expected {} after sample {} of the result, found {:?}",
                            next.expected(),
                            self.samples,
                            char::from(*other)
                        )));
                    }
                }
                // Prometheus' own compact form, read without serde.
                compact_sample(&buf[start..], self.wanted, &mut labels)
            } else {
                // Partway through a sample in another form: look for its end.
                Compact::Other
            };
            let (end, value) = match compact {
                Compact::Sample(end, value) => (end, value),
                Compact::Incomplete => break,
                Compact::Other => match within.object_end(&buf[start..], *scan - start) {
                    Ok(end) => {
                        *within = Scan::default();
                        let object = &buf[start..start + end];
                        let value =
                            decode_sample(object, self.wanted, &mut labels).map_err(|error| {
                                PromError::Decode(format!(
                                    "sample {} of the result: {error}",
                                    self.samples
                                ))
                            })?;
                        (end, value)
                    }
                    Err(read) => {
                        *scan = start + read;
                        break;
                    }
                },
            };
            match value {
                Some(value) => self.sink.sample(&labels, value),
                None => self.skipped += 1,
            }
            self.samples += 1;
            *next = Next::Separator;
            start += end;
            *scan = start;
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
}

impl<S: VectorSink> AnswerDecoder for VectorStream<'_, '_, S> {
    type Output = Vec<String>;

    /// Decodes what `chunk` completes and keeps the rest for later.
    fn push(&mut self, chunk: &[u8]) -> Result<(), PromError> {
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
                        next: Next::First,
                    };
                }
                Phase::Samples { .. } => {
                    self.decode_samples()?;
                    // A sink past its limits wants no more: stop reading.
                    return self.sink.overflow().map_or(Ok(()), Err);
                }
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

    /// Checks the end of the answer and returns its warnings; or, for an
    /// answer kept whole, decodes it with [`parse_vector_into`].
    fn finish(self) -> Result<Vec<String>, PromError> {
        match self.phase {
            Phase::Start | Phase::Whole => {
                let warnings =
                    parse_vector_into(self.status, &self.pending, self.wanted, self.sink)?;
                self.sink.overflow().map_or(Ok(warnings), Err)
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
                let mut warnings = parse_vector_into(self.status, &envelope, self.wanted, &mut ())?;
                if self.skipped > 0 {
                    warnings.push(skipped_native_histograms(self.skipped));
                }
                Ok(warnings)
            }
        }
    }
}

#[cfg(test)]
mod tests;
