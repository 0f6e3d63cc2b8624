//! Baseline files: reference bucket counts recorded once and kept, for
//! `reference: {baseline_file: PATH}`.
//!
//! # Format
//!
//! YAML (or JSON, which YAML reads too), read with `serde_yaml_ng`:
//!
//! ```yaml
//! signals:
//!   confidence:                       # a signal name of the monitor
//!     - labels: {model: fraud, version: v3}
//!       buckets:                      # cumulative counts by upper bound (le)
//!         "0.5": 20
//!         "0.75": 55
//!         "1": 100
//!         "+Inf": 100
//!       sum: 80.5                     # optional: sum of the observations
//! ```
//!
//! - `labels` holds the monitor's `group_by` labels; a label left out is the
//!   empty string (as in PromQL), a label not in `group_by` is an error.
//! - `buckets` maps each finite upper bound, written as a number or a string,
//!   and `+Inf` to the cumulative count of observations at or below it, as
//!   `<name>_bucket` counts them. Counts are finite and not negative; small
//!   decreases are clamped later, as for query answers (docs/statistics.md,
//!   section 1.4).
//! - `sum` is optional; without it the mean comes from the bucket midpoints.
//! - One entry per model and signal.
//!
//! Every problem of the file is reported at once, each naming the signal and
//! the model it is about.
//!
//! [`write`] writes the format (`model-monitor baseline capture`, in
//! `app/baseline.rs`, fills it from a fixed range of a PromQL API).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

use super::parse_le;
use crate::model::ModelKey;
use crate::stats::Histogram;

/// Reference histograms by signal name and model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Baseline {
    pub signals: BTreeMap<String, BTreeMap<ModelKey, Histogram>>,
    /// The range the counts were taken over, when the file says (a
    /// `# range: START to END` comment, which `write` adds).
    pub range: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// Why a baseline file was rejected.
#[derive(Debug, thiserror::Error)]
#[error("baseline file {path}: {message}")]
pub struct BaselineError {
    pub path: String,
    pub message: String,
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineFile {
    signals: BTreeMap<String, Vec<BaselineEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineEntry {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    buckets: BTreeMap<String, f64>,
    #[serde(default)]
    sum: Option<f64>,
}

/// Reads a baseline file; `group_by` gives the label order of model keys.
pub fn load(path: &Path, group_by: &[String]) -> Result<Baseline, BaselineError> {
    let error = |message: String| BaselineError {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))?;
    parse(&text, group_by).map_err(error)
}

/// Parses the text of a baseline file; the error lists every problem.
pub fn parse(text: &str, group_by: &[String]) -> Result<Baseline, String> {
    let file: BaselineFile = serde_yaml_ng::from_str(text).map_err(|e| {
        let message = e.to_string();
        let message = message.strip_suffix('.').unwrap_or(&message);
        format!("invalid baseline: {message}")
    })?;
    if file.signals.is_empty() {
        return Err("no signals".to_owned());
    }
    let mut problems = Vec::new();
    let mut baseline = Baseline {
        range: range_comment(text),
        ..Baseline::default()
    };
    for (signal, entries) in file.signals {
        let models = baseline.signals.entry(signal.clone()).or_default();
        for (index, entry) in entries.into_iter().enumerate() {
            let key = model_key(&entry.labels, group_by);
            let context = format!("signal {signal}, model {key}");
            for label in entry.labels.keys() {
                if !group_by.contains(label) {
                    problems.push(format!(
                        "{context}: label {label:?} is not in group_by [{}]",
                        group_by.join(", ")
                    ));
                }
            }
            match histogram(&entry) {
                Ok(histogram) => {
                    if models.insert(key, histogram).is_some() {
                        problems.push(format!("{context}: entry {index} repeats this model"));
                    }
                }
                Err(message) => problems.push(format!("{context}: {message}")),
            }
        }
    }
    if problems.is_empty() {
        Ok(baseline)
    } else {
        Err(problems.join("; "))
    }
}

/// The comment line that opens with `RANGE_COMMENT`.
const RANGE_COMMENT: &str = "# range: ";

/// The range a `# range: START to END` comment names, among the comment
/// lines that open the file.
fn range_comment(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let line = text
        .lines()
        .take_while(|line| line.starts_with('#'))
        .find_map(|line| line.strip_prefix(RANGE_COMMENT))?;
    let (start, end) = line.split_once(" to ")?;
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?))
}

/// The model key in `group_by` order; missing labels are empty.
fn model_key(labels: &BTreeMap<String, String>, group_by: &[String]) -> ModelKey {
    ModelKey(
        group_by
            .iter()
            .map(|name| (name.clone(), labels.get(name).cloned().unwrap_or_default()))
            .collect(),
    )
}

fn histogram(entry: &BaselineEntry) -> Result<Histogram, String> {
    let mut finite: Vec<(f64, f64)> = Vec::new();
    let mut inf_count = None;
    for (le, &count) in &entry.buckets {
        if !count.is_finite() || count < 0.0 {
            return Err(format!(
                "bucket le={le:?} has count {count}; counts are finite and not negative"
            ));
        }
        match parse_le(le) {
            Some(f64::INFINITY) => inf_count = Some(count),
            Some(bound) => finite.push((bound, count)),
            None => return Err(format!("bucket bound {le:?} is not a number or +Inf")),
        }
    }
    let Some(inf_count) = inf_count else {
        return Err("no +Inf bucket".to_owned());
    };
    if finite.is_empty() {
        return Err("no finite bucket".to_owned());
    }
    finite.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(pair) = finite.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(format!("bucket bound {} appears twice", pair[0].0));
    }
    if let Some(sum) = entry.sum
        && !sum.is_finite()
    {
        return Err(format!("sum {sum} is not finite"));
    }
    let bounds = finite.iter().map(|(bound, _)| *bound).collect();
    let mut cumulative: Vec<f64> = finite.iter().map(|(_, count)| *count).collect();
    cumulative.push(inf_count);
    Ok(Histogram {
        bounds,
        cumulative,
        sum: entry.sum,
    })
}

/// Writes `baseline` in the format [`parse`] reads: `header` lines as
/// comments first, then each signal's models with their cumulative counts
/// in bound order. Numbers are written in their shortest exact form, so
/// reading the file back gives the same histograms, bit for bit.
pub fn write(baseline: &Baseline, header: &[String]) -> String {
    let mut out = String::new();
    for line in header {
        out.push_str(&format!("# {line}\n"));
    }
    if let Some((start, end)) = baseline.range {
        let time = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        out.push_str(&format!(
            "{RANGE_COMMENT}{} to {}\n",
            time(start),
            time(end)
        ));
    }
    out.push_str("signals:\n");
    // JSON strings are YAML double-quoted scalars.
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    for (signal, models) in &baseline.signals {
        out.push_str(&format!("  {}:", quoted(signal)));
        out.push_str(if models.is_empty() { " []\n" } else { "\n" });
        for (model, histogram) in models {
            let labels: Vec<String> = model
                .0
                .iter()
                .map(|(name, value)| format!("{}: {}", quoted(name), quoted(value)))
                .collect();
            out.push_str(&format!(
                "    - labels: {{{}}}\n      buckets:\n",
                labels.join(", ")
            ));
            let bounds = histogram.bounds.iter().map(|b| b.to_string());
            for (bound, count) in bounds.chain(["+Inf".to_owned()]).zip(&histogram.cumulative) {
                out.push_str(&format!("        \"{bound}\": {count}\n"));
            }
            if let Some(sum) = histogram.sum.filter(|sum| sum.is_finite()) {
                out.push_str(&format!("      sum: {sum}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_baseline_reads_back_the_same() {
        let histogram = |bounds: Vec<f64>, cumulative: Vec<f64>, sum| Histogram {
            bounds,
            cumulative,
            sum,
        };
        let mut baseline = Baseline {
            range: Some((
                "2026-03-01T00:00:00Z".parse().unwrap(),
                "2026-03-08T00:00:00.250Z".parse().unwrap(),
            )),
            ..Baseline::default()
        };
        baseline.signals.insert(
            "confidence".to_owned(),
            [
                (
                    key("fraud \"eu\"", "v: 3"),
                    histogram(
                        vec![0.1, 0.25, 1.0],
                        vec![1.5, 7.000000000000001, 20.0, 20.0],
                        Some(9.1),
                    ),
                ),
                (
                    key("b", ""),
                    histogram(vec![1e-5, 1e20], vec![0.0, 3.0, 3.0], None),
                ),
            ]
            .into(),
        );
        let text = write(&baseline, &["taken by a test".to_owned()]);
        assert!(
            text.starts_with("# taken by a test\n# range: 2026-03-01T00:00:00Z to 2026-03-08T00:00:00.250Z\nsignals:\n"),
            "{text}"
        );
        assert_eq!(parse(&text, &group_by()), Ok(baseline), "{text}");
    }

    fn group_by() -> Vec<String> {
        vec!["model".to_owned(), "version".to_owned()]
    }

    fn key(model: &str, version: &str) -> ModelKey {
        ModelKey(vec![
            ("model".to_owned(), model.to_owned()),
            ("version".to_owned(), version.to_owned()),
        ])
    }

    #[test]
    fn reads_cumulative_buckets_in_bound_order() {
        let text = r#"
signals:
  confidence:
    - labels: {version: v1, model: a}
      buckets: {"0.5": 20, "+Inf": 100, "0.25": 5, "1": 100, "0.75": 55}
      sum: 80.5
    - labels: {model: b}
      buckets: {0.5: 1, +Inf: 2}
"#;
        let baseline = parse(text, &group_by()).unwrap();
        let models = &baseline.signals["confidence"];
        assert_eq!(
            models[&key("a", "v1")],
            Histogram {
                bounds: vec![0.25, 0.5, 0.75, 1.0],
                cumulative: vec![5.0, 20.0, 55.0, 100.0, 100.0],
                sum: Some(80.5),
            }
        );
        assert_eq!(
            models[&key("b", "")],
            Histogram {
                bounds: vec![0.5],
                cumulative: vec![1.0, 2.0],
                sum: None,
            }
        );
    }

    #[test]
    fn reads_json_too() {
        let text = r#"{"signals": {"latency": [{"labels": {"model": "a", "version": "1"},
            "buckets": {"0.1": 3, "+Inf": 4}}]}}"#;
        let baseline = parse(text, &group_by()).unwrap();
        assert_eq!(
            baseline.signals["latency"][&key("a", "1")].cumulative,
            vec![3.0, 4.0]
        );
    }

    #[test]
    fn reports_every_problem_with_signal_and_model() {
        let check = |text: &str, expected: &str| {
            assert_eq!(parse(text, &group_by()).unwrap_err(), expected, "{text}");
        };
        check(
            "signals:\n  confidence:\n    - labels: {model: a}\n      buckets: {\"0.5\": 1}\n",
            "signal confidence, model {model=\"a\", version=\"\"}: no +Inf bucket",
        );
        check(
            "signals:\n  c:\n    - labels: {model: a, team: x}\n      buckets: {\"0.5\": 1, +Inf: 2}\n    - labels: {model: b}\n      buckets: {\"x\": 1, +Inf: 2}\n",
            "signal c, model {model=\"a\", version=\"\"}: label \"team\" is not in group_by [model, version]; \
             signal c, model {model=\"b\", version=\"\"}: bucket bound \"x\" is not a number or +Inf",
        );
        check(
            "signals:\n  c:\n    - labels: {model: a}\n      buckets: {\"+Inf\": 2}\n",
            "signal c, model {model=\"a\", version=\"\"}: no finite bucket",
        );
        check(
            "signals:\n  c:\n    - labels: {model: a}\n      buckets: {\"1\": -1, +Inf: 2}\n",
            "signal c, model {model=\"a\", version=\"\"}: bucket le=\"1\" has count -1; counts are finite and not negative",
        );
        check(
            "signals:\n  c:\n    - labels: {model: a}\n      buckets: {\"1\": 1, \"1.0\": 1, +Inf: 2}\n",
            "signal c, model {model=\"a\", version=\"\"}: bucket bound 1 appears twice",
        );
        check(
            "signals:\n  c:\n    - labels: {model: a}\n      buckets: {\"1\": 1, +Inf: 2}\n    - labels: {model: a}\n      buckets: {\"1\": 1, +Inf: 2}\n",
            "signal c, model {model=\"a\", version=\"\"}: entry 1 repeats this model",
        );
        check("signals: {}\n", "no signals");
        assert!(
            parse("signal: {}\n", &group_by())
                .unwrap_err()
                .starts_with("invalid baseline: unknown field `signal`")
        );
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.yml");
        std::fs::write(&path, "signals: {}\n").unwrap();
        let error = load(&path, &group_by()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("baseline file {}: no signals", path.display())
        );
        assert!(load(&dir.path().join("missing.yml"), &group_by()).is_err());
    }
}
