//! Property-based fuzzing (proptest) of everything that reads or writes
//! text the sidecar does not control: the config parser, both PromQL answer
//! decoders, the `/metrics` renderer and webhook body templates.
//!
//! Each target gets both arbitrary input (any bytes, any string) and
//! structured input that is almost right (the example configs, valid
//! PromQL answers, token soups of the template language) and then mutated,
//! so that the cases reach past the first syntax check. The properties:
//!
//! - config: any text gives a config or a non-empty list of problems, each
//!   naming the file and a line inside it, never a panic;
//! - decoders: the streaming decoder fed any split of a body, and the
//!   fallback fed the whole body, give the same samples and warnings or
//!   fail with the same `PromError::reason()`;
//! - exposition: any snapshot the config can produce (label names the
//!   config accepts, any label values, any `f64`) renders to text that
//!   `promtool check metrics` accepts, many cases per promtool call;
//! - templates: any body checks and renders without a panic, and a body
//!   that passes `check_template` renders for the sample notice.
//!
//! The number of cases per target is proptest's: 256 unless
//! `PROPTEST_CASES` says otherwise (`scripts/fuzz-long.sh` runs 1,000,000
//! per target in release mode).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use model_monitor::alerting::Transition;
use model_monitor::config::{Template, TemplateContext, check_template, parse_str_with_env};
use model_monitor::detectors::{AlertKind, Detection, Verdict};
use model_monitor::engine::{DetectorOutcome, DetectorResult, SignalResult, Snapshot};
use model_monitor::model::{ModelId, ModelKey, SignalSummary};
use model_monitor::sinks::exporter::render::{render_snapshot, render_snapshot_in_pieces};
use model_monitor::sinks::webhooks::payload::{Links, sample_notice, template_context};
use model_monitor::sources::prometheus::{
    AnswerDecoder, PromError, VectorSink, VectorStream, parse_vector_into,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use crate::config_examples::example_env;
use crate::support::prometheus::promtool_check_metrics_report;

// ---------------------------------------------------------------------------
// Shared strategies.

/// Strings that break naive writers and readers: quotes, backslashes,
/// line ends, control characters, escapes spelled out, non-ASCII.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        1 => prop::collection::vec(
            prop::sample::select(vec![
                "\"", "\\", "\n", "\r", "\t", "\0", "\u{7f}", "\u{2028}", "\u{feff}", "é", "😀",
                "\\n", "\\u0041", "{", "}", "=", ",", " ", "a", "_", "0", "+Inf", "NaN",
            ]),
            0..12,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

/// Floats at the edges: NaN, infinities, zeros, subnormals, extremes, and
/// any other.
fn edge_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            9_007_199_254_740_992.0,
            -9_007_199_254_740_993.0,
            1e-30,
            0.1,
        ]),
        any::<f64>(),
    ]
}

/// Where to apply a mutation and what it does; positions are fractions of
/// the input's length, so they stay meaningful whatever the length.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index, usize),
    Insert(Index, &'static str),
    Duplicate(Index, usize),
    Swap(Index, Index, usize),
}

fn mutations(tokens: &'static [&'static str]) -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        (any::<Index>(), 1..8usize).prop_map(|(at, length)| Mutation::Delete(at, length)),
        (any::<Index>(), prop::sample::select(tokens))
            .prop_map(|(at, token)| Mutation::Insert(at, token)),
        (any::<Index>(), 1..40usize).prop_map(|(at, length)| Mutation::Duplicate(at, length)),
        (any::<Index>(), any::<Index>(), 1..20usize)
            .prop_map(|(a, b, length)| Mutation::Swap(a, b, length)),
    ];
    prop::collection::vec(one, 0..4)
}

/// Applies `mutations` to a sequence of units (bytes, or characters so that
/// text stays text).
fn mutate<T: Clone>(
    mut units: Vec<T>,
    mutations: &[Mutation],
    token: impl Fn(&str) -> Vec<T>,
) -> Vec<T> {
    for mutation in mutations {
        let at = |index: &Index| index.index(units.len() + 1);
        match mutation {
            Mutation::Delete(start, length) => {
                let start = at(start).min(units.len());
                let end = (start + length).min(units.len());
                units.drain(start..end);
            }
            Mutation::Insert(start, text) => {
                let start = at(start).min(units.len());
                units.splice(start..start, token(text));
            }
            Mutation::Duplicate(start, length) => {
                let start = at(start).min(units.len());
                let end = (start + length).min(units.len());
                let copy = units[start..end].to_vec();
                units.splice(end..end, copy);
            }
            Mutation::Swap(a, b, length) => {
                let (a, b) = (at(a).min(units.len()), at(b).min(units.len()));
                let (first, second) = (a.min(b), a.max(b));
                let length = (*length).min(second - first).min(units.len() - second);
                for offset in 0..length {
                    units.swap(first + offset, second + offset);
                }
            }
        }
    }
    units
}

// ---------------------------------------------------------------------------
// Config.

/// Pieces of YAML and of this config's vocabulary, for mutations.
const YAML_TOKENS: &[&str] = &[
    ": ",
    "- ",
    "\n",
    "  ",
    "\t",
    "[",
    "]",
    "{",
    "}",
    ",",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "!!int ",
    "!!binary ",
    "? ",
    "|\n",
    ">-\n",
    "'",
    "\"",
    "\\",
    "${MODEL_MONITOR_PROMETHEUS_URL}",
    "${UNSET}",
    "${WEIRD}",
    "${",
    "$$",
    "~",
    "null",
    "1e999",
    "-1",
    "0x10",
    ".inf",
    ".nan",
    "2h30m",
    "99999999999999999999d",
    "0s",
    "<<: *a\n",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\u{feff}",
    "\r",
    "\0",
    "é",
    "😀",
    "type: ",
    "name: ",
    "threshold: ",
    "window: ",
    "group_by: ",
    "detectors:\n",
    "webhooks:\n",
    "monitors:\n",
    "signals:\n",
    "url: ",
    "body: ",
    "{{ alert.model }}",
    "le",
    "__name__",
    "monitor",
    "true",
    "-0.0",
    "1.5",
    "[]",
    "{}",
];

/// The examples' environment, plus a variable whose value looks like YAML
/// (it must stay one scalar).
fn fuzz_env(name: &str) -> Option<String> {
    match name {
        "WEIRD" => Some("a: [b\n- c: ${X}\n\"".to_owned()),
        _ => example_env(name),
    }
}

/// The example configs, with the paths they are parsed under (relative
/// paths in them resolve against their directory); read once.
fn example_configs() -> &'static [(String, String)] {
    static CONFIGS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    CONFIGS.get_or_init(read_example_configs)
}

fn read_example_configs() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut configs: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("examples/ is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("an example is readable");
            (path.display().to_string(), text)
        })
        .collect();
    configs.sort();
    assert!(configs.len() >= 3, "expected the example configs");
    configs
}

/// A config or problems: never a panic, never an empty problem list, each
/// problem in this file and on one of its lines (as YAML counts them: a
/// line ends at `\r\n`, `\r` or `\n`).
fn check_config_text(text: &str, file: &str) -> Result<(), TestCaseError> {
    let lines = text.replace("\r\n", "\n").split(['\r', '\n']).count();
    if let Err(error) = parse_str_with_env(text, file, &fuzz_env) {
        prop_assert!(!error.problems.is_empty(), "an error without problems");
        for problem in &error.problems {
            prop_assert_eq!(&problem.file, file);
            prop_assert!(!problem.message.is_empty(), "an empty message: {}", problem);
            if let Some(line) = problem.line {
                prop_assert!(
                    (1..=lines).contains(&line),
                    "line {} outside the file's {} lines: {}",
                    line,
                    lines,
                    problem
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn any_bytes_give_a_config_or_problems_on_lines_of_the_file(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        check_config_text(&String::from_utf8_lossy(&bytes), "fuzz.yml")?;
    }

    #[test]
    fn yaml_token_soup_gives_a_config_or_problems_on_lines_of_the_file(
        tokens in prop::collection::vec(prop::sample::select(YAML_TOKENS), 0..60),
    ) {
        check_config_text(&tokens.concat(), "fuzz.yml")?;
    }

    #[test]
    fn mutated_examples_give_a_config_or_problems_on_lines_of_the_file(
        example in any::<Index>(),
        changes in mutations(YAML_TOKENS),
    ) {
        let configs = example_configs();
        let (file, text) = example.get(configs);
        let chars = mutate(text.chars().collect(), &changes, |token| token.chars().collect());
        let text: String = chars.into_iter().collect();
        check_config_text(&text, file)?;
    }
}

// ---------------------------------------------------------------------------
// PromQL answer decoders.

/// How Prometheus starts a successful vector: the streamed path's fast
/// start, so arbitrary bytes after it reach the sample scanner.
const VECTOR_START: &str = r#"{"status":"success","data":{"resultType":"vector","result":["#;

/// What a decoder made of an answer: samples (wanted label values, value
/// bits) and warnings, or the reason of its error.
type Decoded = Result<(Vec<(Vec<String>, u64)>, Vec<String>), &'static str>;

#[derive(Default)]
struct Collect(Vec<(Vec<String>, u64)>);

impl VectorSink for Collect {
    fn sample(&mut self, labels: &[Cow<'_, str>], value: f64) {
        let labels = labels.iter().map(|label| label.to_string()).collect();
        self.0.push((labels, value.to_bits()));
    }
}

/// The fallback on the whole body.
fn decode_whole(status: u16, body: &[u8], wanted: &[&str]) -> Decoded {
    let mut sink = Collect::default();
    let warnings =
        parse_vector_into(status, body, wanted, &mut sink).map_err(|error| error.reason())?;
    Ok((sink.0, warnings))
}

/// The streamed path, fed `chunks` in order.
fn decode_streamed(status: u16, chunks: &[&[u8]], wanted: &[&str]) -> Decoded {
    let mut sink = Collect::default();
    let mut stream = VectorStream::new(status, wanted, &mut sink);
    for chunk in chunks {
        stream.push(chunk).map_err(|error| error.reason())?;
    }
    let warnings = stream.finish().map_err(|error: PromError| error.reason())?;
    Ok((sink.0, warnings))
}

/// How a body is cut into the pieces the network delivers.
#[derive(Debug, Clone)]
enum Split {
    /// At these points.
    Cuts(Vec<Index>),
    /// Into pieces of this many bytes.
    Every(usize),
}

fn split() -> impl Strategy<Value = Split> {
    prop_oneof![
        3 => prop::collection::vec(any::<Index>(), 0..12).prop_map(Split::Cuts),
        1 => (1..9usize).prop_map(Split::Every),
    ]
}

fn pieces<'b>(body: &'b [u8], split: &Split) -> Vec<&'b [u8]> {
    match split {
        Split::Every(size) => body.chunks(*size).collect(),
        Split::Cuts(cuts) => {
            let mut at: Vec<usize> = cuts.iter().map(|cut| cut.index(body.len() + 1)).collect();
            at.push(0);
            at.push(body.len());
            at.sort_unstable();
            at.windows(2).map(|pair| &body[pair[0]..pair[1]]).collect()
        }
    }
}

/// Label names a query asks for, in some order.
fn wanted() -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(vec!["model", "le", "version", "mödel", "a\"b", ""], 0..=4)
        .prop_shuffle()
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![8 => Just(200u16), 1 => prop::sample::select(vec![204u16, 299, 400, 422, 503])]
}

/// Both decoders agree: same samples and warnings, or the same reason.
fn check_decoders_agree(
    status: u16,
    body: &[u8],
    split: &Split,
    wanted: &[&str],
) -> Result<(), TestCaseError> {
    let whole = decode_whole(status, body, wanted);
    let streamed = decode_streamed(status, &pieces(body, split), wanted);
    prop_assert_eq!(
        &streamed,
        &whole,
        "streamed (left) and whole (right) disagree on {:?}",
        String::from_utf8_lossy(body)
    );
    Ok(())
}

/// One sample of a generated answer.
#[derive(Debug, Clone)]
struct SampleSpec {
    labels: Vec<(String, String)>,
    value: ValueSpec,
    /// An extra key holding arrays nested this deep.
    nested: Option<usize>,
}

#[derive(Debug, Clone)]
enum ValueSpec {
    /// `"value":[<timestamp JSON>,"<text>"]`.
    Pair(&'static str, String),
    /// `"value":[<timestamp JSON>,<number JSON>]`.
    Number(&'static str, &'static str),
    /// A native histogram sample, without `value`.
    Histogram,
}

/// A whole answer, and the layout it is written in.
#[derive(Debug, Clone)]
struct AnswerSpec {
    status: &'static str,
    result_type: Option<&'static str>,
    samples: Vec<SampleSpec>,
    warnings: Option<Vec<String>>,
    /// An extra envelope key holding arrays nested this deep.
    nested: Option<usize>,
    /// Layout choices, read in turn (cycling): all zeros is Prometheus'
    /// compact layout.
    style: Vec<u8>,
}

const TIMESTAMPS: &[&str] = &[
    "1700000000",
    "1700000000.123",
    "\"1700000000\"",
    "0",
    "-0",
    "1E+2",
    "1.5e-7",
    "1e999",
    "-1e999",
    "1e-400",
    "01",
    "1.",
    "null",
    "true",
    "\"x\"",
    "[]",
];
const VALUE_TEXTS: &[&str] = &[
    "NaN", "+Inf", "-Inf", "Inf", "inf", "-nan", "infinity", "1", "0.25", "-3.5e-3", "1e400", "",
    "x", "+1", ".5", "5.", "1_0", " 1", "0x10", "1e-400",
];
const NUMBERS: &[&str] = &["1", "-0", "2.5", "1e999", "1e-400", "\"1\"", "null"];

fn sample_spec() -> impl Strategy<Value = SampleSpec> {
    let label_name = prop_oneof![
        3 => prop::sample::select(vec!["model", "le", "version", "__name__", "job", "mödel", "a\"b", ""])
            .prop_map(str::to_owned),
        1 => nasty_string(),
    ];
    let label_value = prop_oneof![
        2 => nasty_string(),
        1 => prop::sample::select(vec!["+Inf", "0.5", "m-1", "v1"]).prop_map(str::to_owned),
    ];
    let value = prop_oneof![
        6 => (prop::sample::select(TIMESTAMPS), prop_oneof![
            prop::sample::select(VALUE_TEXTS).prop_map(str::to_owned),
            edge_f64().prop_map(|v| v.to_string()),
            edge_f64().prop_map(|v| format!("{v:e}")),
        ])
            .prop_map(|(t, v)| ValueSpec::Pair(t, v)),
        1 => (prop::sample::select(TIMESTAMPS), prop::sample::select(NUMBERS))
            .prop_map(|(t, n)| ValueSpec::Number(t, n)),
        1 => Just(ValueSpec::Histogram),
    ];
    let nested = prop_oneof![8 => Just(None), 1 => (0..140usize).prop_map(Some)];
    (
        prop::collection::vec((label_name, label_value), 0..4),
        value,
        nested,
    )
        .prop_map(|(labels, value, nested)| SampleSpec {
            labels,
            value,
            nested,
        })
}

fn answer_spec() -> impl Strategy<Value = AnswerSpec> {
    (
        prop_oneof![8 => Just("success"), 1 => Just("error"), 1 => Just("weird")],
        prop_oneof![
            8 => Just(Some("vector")),
            1 => prop::sample::select(vec![None, Some("matrix"), Some("scalar"), Some("string")]),
        ],
        prop::collection::vec(sample_spec(), 0..6),
        prop_oneof![3 => Just(None), 1 => prop::collection::vec(nasty_string(), 0..3).prop_map(Some)],
        prop_oneof![8 => Just(None), 1 => (0..140usize).prop_map(Some)],
        prop::collection::vec(prop_oneof![3 => Just(0u8), 1 => any::<u8>()], 0..24),
    )
        .prop_map(|(status, result_type, samples, warnings, nested, style)| AnswerSpec {
            status,
            result_type,
            samples,
            warnings,
            nested,
            style,
        })
}

/// Writes an [`AnswerSpec`] as JSON, choosing spacing, key order and
/// escapes from its style bytes.
struct Writer<'s> {
    out: String,
    style: &'s [u8],
    next: usize,
}

/// One entry of an object: its key, and what writes its value.
type Entry<'e, 's> = (&'e str, Box<dyn Fn(&mut Writer<'s>) + 'e>);

impl<'s> Writer<'s> {
    /// The next layout choice, below `n`; 0 is the compact one.
    fn pick(&mut self, n: u8) -> u8 {
        if self.style.is_empty() {
            return 0;
        }
        let byte = self.style[self.next % self.style.len()];
        self.next += 1;
        byte % n
    }

    fn space(&mut self) {
        let spaces = ["", " ", "\n  ", "\t", "\r\n"];
        let choice = self.pick(8) as usize;
        self.out.push_str(spaces.get(choice).copied().unwrap_or(""));
    }

    fn string(&mut self, text: &str) {
        self.out.push('"');
        for c in text.chars() {
            let spelled = self.pick(8) == 7;
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '/' if spelled => self.out.push_str("\\/"),
                '\n' if !spelled => self.out.push_str("\\n"),
                c if (c as u32) < 0x20 || spelled => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        self.out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    fn nested(&mut self, depth: usize) {
        self.out.push_str(&"[".repeat(depth));
        self.out.push_str(&"]".repeat(depth));
    }

    /// `{"k":v,...}` with the entries in an order the style picks.
    fn object(&mut self, mut entries: Vec<Entry<'_, 's>>) {
        let rotate = self.pick(4) as usize % entries.len().max(1);
        entries.rotate_left(rotate);
        self.out.push('{');
        for (index, (key, value)) in entries.iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            self.space();
            self.string(key);
            self.out.push(':');
            self.space();
            value(self);
        }
        self.space();
        self.out.push('}');
    }

    fn sample(&mut self, sample: &SampleSpec) {
        let mut entries: Vec<Entry<'_, 's>> = vec![(
            "metric",
            Box::new(|w: &mut Self| {
                w.out.push('{');
                for (index, (name, value)) in sample.labels.iter().enumerate() {
                    if index > 0 {
                        w.out.push(',');
                    }
                    w.string(name);
                    w.out.push(':');
                    w.string(value);
                }
                w.out.push('}');
            }),
        )];
        match &sample.value {
            ValueSpec::Pair(timestamp, text) => entries.push((
                "value",
                Box::new(move |w: &mut Self| {
                    w.out.push('[');
                    w.out.push_str(timestamp);
                    w.out.push(',');
                    w.string(text);
                    w.out.push(']');
                }),
            )),
            ValueSpec::Number(timestamp, number) => entries.push((
                "value",
                Box::new(move |w: &mut Self| w.out.push_str(&format!("[{timestamp},{number}]"))),
            )),
            ValueSpec::Histogram => entries.push((
                "histogram",
                Box::new(|w: &mut Self| {
                    w.out
                        .push_str(r#"[1700000000,{"count":"1","sum":"2","buckets":[]}]"#)
                }),
            )),
        }
        if let Some(depth) = sample.nested {
            entries.push(("extra", Box::new(move |w: &mut Self| w.nested(depth))));
        }
        self.object(entries);
    }

    fn answer(spec: &AnswerSpec) -> String {
        let mut writer = Writer {
            out: String::new(),
            style: &spec.style,
            next: 0,
        };
        let data = |w: &mut Writer<'_>| {
            let mut entries: Vec<Entry<'_, '_>> = Vec::new();
            if let Some(result_type) = spec.result_type {
                entries.push((
                    "resultType",
                    Box::new(move |w: &mut Writer<'_>| w.string(result_type)),
                ));
            }
            entries.push((
                "result",
                Box::new(|w: &mut Writer<'_>| {
                    w.out.push('[');
                    for (index, sample) in spec.samples.iter().enumerate() {
                        if index > 0 {
                            w.out.push(',');
                        }
                        w.space();
                        w.sample(sample);
                    }
                    w.out.push(']');
                }),
            ));
            w.object(entries);
        };
        let mut entries: Vec<Entry<'_, '_>> = vec![
            (
                "status",
                Box::new(|w: &mut Writer<'_>| w.string(spec.status)),
            ),
            ("data", Box::new(data)),
        ];
        if spec.status == "error" {
            entries.push((
                "errorType",
                Box::new(|w: &mut Writer<'_>| w.string("bad_data")),
            ));
            entries.push((
                "error",
                Box::new(|w: &mut Writer<'_>| w.string("parse error")),
            ));
        }
        if let Some(warnings) = &spec.warnings {
            entries.push((
                "warnings",
                Box::new(move |w: &mut Writer<'_>| {
                    w.out.push('[');
                    for (index, warning) in warnings.iter().enumerate() {
                        if index > 0 {
                            w.out.push(',');
                        }
                        w.string(warning);
                    }
                    w.out.push(']');
                }),
            ));
        }
        if let Some(depth) = spec.nested {
            entries.push(("infos", Box::new(move |w: &mut Writer<'_>| w.nested(depth))));
        }
        writer.object(entries);
        writer.out
    }
}

/// Pieces of JSON, for mutations of answers.
const JSON_TOKENS: &[&str] = &[
    ",",
    "]",
    "[",
    "{",
    "}",
    "\"",
    ":",
    "\\",
    " ",
    "\n",
    "null",
    "1e999",
    "-",
    "\0",
    "\u{ff}",
    "\"value\":[1,\"2\"]",
    "{\"metric\":{},\"value\":[1,\"2\"]}",
    ",,",
    "\\u0000",
    "\\ud800",
    "\"status\":\"error\"",
    "]}}",
    "true",
];

proptest! {
    #[test]
    fn decoders_agree_on_any_bytes_in_any_pieces(
        status in status(),
        start in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        split in split(),
        wanted in wanted(),
    ) {
        let mut body = if start { VECTOR_START.as_bytes().to_vec() } else { Vec::new() };
        body.extend_from_slice(&bytes);
        check_decoders_agree(status, &body, &split, &wanted)?;
    }

    #[test]
    fn decoders_agree_on_near_valid_answers_in_any_pieces(
        status in status(),
        spec in answer_spec(),
        changes in mutations(JSON_TOKENS),
        split in split(),
        wanted in wanted(),
    ) {
        let body = mutate(Writer::answer(&spec).into_bytes(), &changes, |token| token.as_bytes().to_vec());
        check_decoders_agree(status, &body, &split, &wanted)?;
    }
}

// ---------------------------------------------------------------------------
// Exposition.

/// Label names: Prometheus' grammar, the names that matter to it, and names
/// the config reserves (dropped by [`config_accepts_group_by`] before use).
fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z_][a-zA-Z0-9_]{0,10}",
        1 => prop::sample::select(vec![
            "model", "version", "__name__", "__meta", "_", "le", "monitor", "signal", "detector",
            "q", "job", "camelCase",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Whether the config accepts `name` in a monitor's `group_by`: the
/// renderer is only ever handed names the config let through.
fn config_accepts_group_by(name: &str) -> bool {
    let text = format!(
        "prometheus:\n  url: http://localhost:9090\nmonitors:\n  - name: m\n    group_by: [{name}]\n    signals:\n      confidence:\n        histogram: c\n        detectors: [{{type: psi}}]\n"
    );
    parse_str_with_env(&text, "group_by.yml", &|_| None).is_ok()
}

fn detection() -> impl Strategy<Value = DetectorResult> {
    let verdict = prop_oneof![
        Just(Verdict::Drift),
        Just(Verdict::NoDrift),
        (edge_f64(), edge_f64(), edge_f64()).prop_map(|(current, reference, min_samples)| {
            Verdict::InsufficientSamples {
                current,
                reference,
                min_samples,
            }
        }),
    ];
    prop_oneof![
        4 => (edge_f64(), edge_f64(), prop::option::of(edge_f64()), verdict).prop_map(
            |(score, threshold, p_value, verdict)| DetectorResult::Detection(Detection {
                score,
                threshold,
                p_value,
                verdict,
            })
        ),
        1 => nasty_string().prop_map(|error| DetectorResult::Error { error }),
    ]
}

fn signal_result() -> impl Strategy<Value = SignalResult> {
    let summary =
        prop::array::uniform6(edge_f64()).prop_map(|[samples, mean, stddev, p50, p95, p99]| {
            SignalSummary {
                samples,
                mean,
                stddev,
                p50,
                p95,
                p99,
            }
        });
    (
        prop::option::of(summary),
        prop::option::of(edge_f64()),
        prop::collection::btree_map(nasty_string(), detection(), 0..4),
    )
        .prop_map(|(current, reference_samples, detectors)| SignalResult {
            current,
            reference_samples,
            error: None,
            detectors: detectors
                .into_iter()
                .map(|(name, result)| DetectorOutcome {
                    detector: Arc::from(name),
                    kind: AlertKind::Drift,
                    result,
                    explanation: None,
                })
                .collect(),
            evaluated_at: DateTime::<Utc>::from_timestamp(1_767_225_600, 0).expect("a valid time"),
            class_mix: None,
            accuracy: None,
        })
}

/// One monitor: its name, `group_by` names, and models (label values and
/// signals).
type MonitorCase = (
    String,
    Vec<String>,
    Vec<(Vec<String>, BTreeMap<String, SignalResult>)>,
);

fn monitor_case() -> impl Strategy<Value = MonitorCase> {
    (
        nasty_string(),
        prop::collection::btree_set(label_name(), 1..4),
        prop::collection::vec(
            (
                prop::collection::vec(nasty_string(), 3),
                prop::collection::btree_map(nasty_string(), signal_result(), 1..3),
            ),
            1..3,
        ),
    )
        .prop_map(|(monitor, names, models)| (monitor, names.into_iter().collect(), models))
}

/// The snapshot of one case; `case` is put in front of monitor names so
/// that the snapshots of a batch merge without collisions.
fn add_to_snapshot(snapshot: &mut Snapshot, case: usize, monitors: &[MonitorCase]) {
    for (monitor, names, models) in monitors {
        let names: Vec<&String> = names
            .iter()
            .filter(|name| config_accepts_group_by(name))
            .collect();
        for (values, signals) in models {
            let model = names
                .iter()
                .zip(values)
                .map(|(name, value)| ((*name).clone(), value.clone()))
                .collect();
            let id = ModelId {
                source: format!("{case}:{monitor}"),
                model: ModelKey(model),
            };
            snapshot
                .models
                .insert(id, signals.clone().into_iter().collect());
        }
    }
}

/// promtool's verdict, allowing only its advice on camelCase label names:
/// those are the names of the user's own metrics, which `group_by` keeps.
fn promtool_accepts(text: &str) -> Result<(), String> {
    let (status, report) = promtool_check_metrics_report(text);
    let problems: Vec<&str> = report
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter(|line| {
            !line.ends_with("label names should be written in 'snake_case' not 'camelCase'")
        })
        .collect();
    let lint_only = status.success() || status.code() == Some(3);
    if lint_only && problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics ({status}): {}",
            problems.join("\n")
        ))
    }
}

/// Renders one batch of cases as one snapshot; also checks that the
/// streamed pieces add up to the whole text.
fn render_batch(cases: &[Vec<MonitorCase>], first: usize) -> String {
    let mut snapshot = Snapshot::default();
    for (offset, monitors) in cases.iter().enumerate() {
        add_to_snapshot(&mut snapshot, first + offset, monitors);
    }
    let whole = render_snapshot(&snapshot);
    let mut streamed = String::new();
    render_snapshot_in_pieces(&snapshot, 4096, &mut |piece| {
        streamed.push_str(&piece);
        true
    });
    assert_eq!(streamed, whole, "pieces differ from the whole render");
    whole
}

/// Cases per promtool call.
const BATCH: usize = 500;

#[test]
fn rendered_snapshots_with_any_labels_and_values_pass_promtool() {
    assert!(config_accepts_group_by("model") && config_accepts_group_by("camelCase"));
    assert!(!config_accepts_group_by("le") && !config_accepts_group_by("monitor"));
    let config = ProptestConfig::default();
    let cases = config.cases as usize;
    let mut runner = TestRunner::new(config);
    let strategy = prop::collection::vec(monitor_case(), 1..3);
    let mut done = 0;
    while done < cases {
        let size = BATCH.min(cases - done);
        let mut trees = Vec::with_capacity(size);
        for _ in 0..size {
            trees.push(strategy.new_tree(&mut runner).expect("a generated case"));
        }
        let batch: Vec<_> = trees.iter().map(ValueTree::current).collect();
        if let Err(problem) = promtool_accepts(&render_batch(&batch, done)) {
            // Find a failing case on its own and shrink it, as proptest would.
            let check = |case: &Vec<MonitorCase>| {
                promtool_accepts(&render_batch(std::slice::from_ref(case), 0))
            };
            let Some(mut tree) = trees
                .into_iter()
                .find(|tree| check(&tree.current()).is_err())
            else {
                panic!("a batch fails but none of its cases alone: {problem}");
            };
            let mut minimal = tree.current();
            let mut steps = 0;
            while steps < 2000 && tree.simplify() {
                steps += 1;
                while check(&tree.current()).is_ok() {
                    if !tree.complicate() {
                        break;
                    }
                }
                if check(&tree.current()).is_err() {
                    minimal = tree.current();
                }
            }
            let text = render_batch(std::slice::from_ref(&minimal), 0);
            panic!(
                "promtool rejects the render of {minimal:#?}:\n{}\n--- text ---\n{text}",
                check(&minimal).unwrap_err()
            );
        }
        done += size;
    }
}

// ---------------------------------------------------------------------------
// Templates.

/// Pieces of the template language and of the body's variables.
const TEMPLATE_TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{{-",
    "-}}",
    " ",
    "\n",
    "if ",
    "elif ",
    "else",
    "endif",
    "for ",
    " in ",
    "endfor",
    "set ",
    "=",
    "alert",
    ".",
    "alert.model",
    "alert.labels",
    "alert.score",
    "alert.p_value",
    "alert.ends_at",
    "alert.modle",
    "id",
    "receiver",
    "x",
    "loop.index",
    "|",
    "tojson",
    "upper",
    "items",
    "length",
    "default(",
    "round",
    "int",
    "float",
    "string",
    "join(",
    "urlencode",
    "(",
    ")",
    "[",
    "]",
    ",",
    "~",
    "+",
    "-",
    "*",
    "**",
    "/",
    "//",
    "%",
    "==",
    "<",
    "not ",
    "and ",
    "or ",
    "is ",
    "defined",
    "none",
    "true",
    "1",
    "0",
    "-1",
    "99999999999999999999",
    "1e308",
    "\"",
    "'",
    "\\",
    "range(",
    "range(3)",
    "dict(",
    "namespace()",
    "cycler(",
    "joiner()",
    "macro m()",
    "endmacro",
    "m()",
    "call ",
    "endcall",
    "caller()",
    "raw",
    "endraw",
    "filter ",
    "endfilter",
    "include ",
    "import ",
    "extends ",
    "block b",
    "endblock",
    "super()",
    "recursive",
    "loop(",
    "with ",
    "endwith",
    "autoescape ",
    "endautoescape",
    "debug()",
    "😀",
    "\0",
];

/// A notice unlike the sample: other labels, a resolved alert, missing
/// p-value, edge scores.
fn other_notice() -> impl Strategy<Value = model_monitor::alerting::AlertNotice> {
    (
        prop::collection::vec((label_name(), nasty_string()), 0..3),
        nasty_string(),
        edge_f64(),
        prop::option::of(edge_f64()),
        any::<bool>(),
    )
        .prop_map(|(labels, monitor, score, p_value, resolved)| {
            let mut notice = sample_notice();
            notice.key.labels = labels.into();
            notice.key.source = monitor.into();
            notice.detection.score = score;
            notice.detection.p_value = p_value;
            if resolved {
                notice.transition = Transition::Resolved;
                notice.ended_at = Some(notice.at);
            }
            notice
        })
}

fn template_body() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<String>(),
        3 => prop::collection::vec(prop::sample::select(TEMPLATE_TOKENS), 0..30).prop_map(|t| t.concat()),
    ]
}

proptest! {
    #[test]
    fn any_template_body_checks_and_renders_without_a_panic(
        body in template_body(),
        notice in other_notice(),
    ) {
        let checked = check_template(&body);
        if let Ok(template) = Template::compile(&body) {
            let sample = template_context("check", "msg_check", &sample_notice(), &Links::default());
            prop_assert_eq!(&sample, &TemplateContext::sample().to_value());
            let rendered = template.render(&sample);
            if checked.is_ok() {
                prop_assert!(rendered.is_ok(), "checked but does not render: {:?}", rendered);
            }
            let other = template_context("fuzz", "msg_fuzz", &notice, &Links::default());
            let _ = template.render(&other);
        } else {
            prop_assert!(checked.is_err(), "a body that does not compile passed the check");
        }
    }
}
