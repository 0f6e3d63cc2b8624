//! The PromQL of a monitor's signals: one grouped query per histogram and
//! window.
//!
//! One query returns every model at once: bucket counts grouped by the
//! monitor's `group_by` labels plus `le`, with the window's `_sum` joined in
//! under `le="sum"` and, under `le="start"`, how many of the model's bucket
//! series already existed when the window began. The number of queries per
//! cycle therefore does not grow with the number of models.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{MonitorConfig, ReferenceConfig};
use crate::duration::format_duration;
use crate::sources::WindowRole;

/// The grouped query for one histogram and window of a monitor, or `None`
/// for a reference that comes from a baseline file (and for the short
/// window of a monitor without one).
///
/// The answer holds, per model, one sample per bucket bound (`le`), one
/// sample with `le="sum"` for the window's `_sum`, and one with
/// `le="start"` counting the model's bucket series that had a sample at or
/// before the window's start (an instant selector at the start):
///
/// ```text
/// sum by (model, version, le) (increase(h_bucket{sel}[5m] offset 7d))
///   or label_replace(sum by (model, version) (increase(h_sum{sel}[5m] offset 7d)), "le", "sum", "", "")
///   or label_replace(count by (model, version) (h_bucket{sel} offset 7d5m), "le", "start", "", "")
/// ```
///
/// The current window is `[window]` ending at the evaluation time, the
/// short window `[short_window]` ending then too. A
/// reference is `[window] offset d` for `Offset(d)`, `[w] offset <window>`
/// for `Window(w)` (the span just before the current window), and
/// `[end - start] @ <end>` for `Range`. `Offsets(d1, d2, ...)` pools the
/// same window at each offset: each of the bucket and `_sum` terms becomes
/// `(term offset d1 + term offset d2 + ...)`, still one query, and a model
/// is in the answer only when every offset has it. The start probe is the same
/// selector at the window's first instant: `offset <window>` for the
/// current window, `offset <d + window>`, `offset <window + w>` and
/// `@ <start>` for the references (for `Offsets`, at the oldest offset's
/// start: `offset <max(d) + window>`).
pub fn histogram_query(
    monitor: &MonitorConfig,
    histogram: &str,
    role: WindowRole,
) -> Option<String> {
    let span = window_span(monitor, role)?;
    Some(bucket_query(monitor, histogram, &span))
}

/// The grouped query of a histogram over the labelled window of a
/// confidence signal: the current window moved back by `labels_delay`
/// (`[window] offset <delay>`, no offset when the delay is zero), so that
/// the predictions it counts have had their correctness counted too.
pub fn labelled_query(monitor: &MonitorConfig, histogram: &str, labels_delay: Duration) -> String {
    let span = if labels_delay.is_zero() {
        WindowSpan {
            range: monitor.window,
            modifiers: vec![String::new()],
            at_start: offset(monitor.window),
        }
    } else {
        WindowSpan {
            range: monitor.window,
            modifiers: vec![offset(labels_delay)],
            at_start: offset(labels_delay + monitor.window),
        }
    };
    bucket_query(monitor, histogram, &span)
}

/// Where a window lies: its range, the modifiers of its range selectors
/// (one per pooled span; one for every window but pooled offsets) and the
/// modifier that moves an instant selector to the (earliest) window's start.
pub(super) struct WindowSpan {
    pub(super) range: Duration,
    pub(super) modifiers: Vec<String>,
    pub(super) at_start: String,
}

fn offset(duration: Duration) -> String {
    format!(" offset {}", format_duration(duration))
}

/// The span of a monitor's window, or `None` for a reference from a
/// baseline file.
pub(super) fn window_span(monitor: &MonitorConfig, role: WindowRole) -> Option<WindowSpan> {
    let (range, modifiers, at_start) = match role {
        WindowRole::Current => (monitor.window, vec![String::new()], offset(monitor.window)),
        WindowRole::Short => {
            let short = monitor.short_window?;
            (short, vec![String::new()], offset(short))
        }
        WindowRole::Reference => match &monitor.reference {
            ReferenceConfig::Offset(d) => (
                monitor.window,
                vec![offset(*d)],
                offset(*d + monitor.window),
            ),
            ReferenceConfig::Offsets(offsets) => {
                let oldest = offsets.iter().max().copied().unwrap_or(Duration::ZERO);
                (
                    monitor.window,
                    offsets.iter().map(|d| offset(*d)).collect(),
                    offset(oldest + monitor.window),
                )
            }
            ReferenceConfig::Window(window) => (
                *window,
                vec![offset(monitor.window)],
                offset(monitor.window + *window),
            ),
            ReferenceConfig::Range { start, end } => {
                let span = (*end - *start).to_std().unwrap_or(Duration::ZERO);
                (
                    span,
                    vec![format!(" @ {}", format_unix_seconds(*end))],
                    format!(" @ {}", format_unix_seconds(*start)),
                )
            }
            ReferenceConfig::BaselineFile(_) => return None,
        },
    };
    Some(WindowSpan {
        range,
        modifiers,
        at_start,
    })
}

/// The monitor's selector as the matchers inside braces, without braces.
pub(super) fn selector_matchers(monitor: &MonitorConfig) -> &str {
    let selector = monitor.selector.trim();
    selector
        .strip_prefix('{')
        .and_then(|inner| inner.strip_suffix('}'))
        .unwrap_or(selector)
        .trim()
}

/// The bucket, `_sum` and start-probe query of a histogram over `span`.
fn bucket_query(monitor: &MonitorConfig, histogram: &str, span: &WindowSpan) -> String {
    let WindowSpan {
        range,
        modifiers,
        at_start,
    } = span;
    let selector = selector_matchers(monitor);
    let matchers = if selector.is_empty() {
        String::new()
    } else {
        format!("{{{selector}}}")
    };
    let labels = monitor.group_by.join(", ");
    let bucket_labels = if labels.is_empty() {
        "le".to_owned()
    } else {
        format!("{labels}, le")
    };
    let range = format_duration(*range);
    let buckets = pooled(modifiers, |modifier| {
        format!(
            "sum by ({bucket_labels}) (increase({histogram}_bucket{matchers}[{range}]{modifier}))"
        )
    });
    let sums = pooled(modifiers, |modifier| {
        format!("sum by ({labels}) (increase({histogram}_sum{matchers}[{range}]{modifier}))")
    });
    format!(
        "{buckets} \
         or label_replace({sums}, \"le\", \"{SUM_LE}\", \"\", \"\") \
         or label_replace(count by ({labels}) ({histogram}_bucket{matchers}{at_start}), \
         \"le\", \"{START_LE}\", \"\", \"\")"
    )
}

/// One term per modifier, added up with `+` in parentheses when there are
/// several (a pooled reference): `+` matches the terms' identical label
/// sets one to one, so a model appears only when every span has it.
pub(super) fn pooled(modifiers: &[String], term: impl Fn(&str) -> String) -> String {
    match modifiers {
        [one] => term(one),
        several => format!(
            "({})",
            several
                .iter()
                .map(|modifier| term(modifier))
                .collect::<Vec<_>>()
                .join(" + ")
        ),
    }
}

/// The `le` value under which a histogram query returns the window's `_sum`.
pub const SUM_LE: &str = "sum";

/// The `le` value under which a histogram query returns how many of a
/// model's bucket series had a sample at or before the window's start.
pub const START_LE: &str = "start";

/// A time as PromQL's `@` modifier takes it: unix seconds, with
/// milliseconds only when there are some.
fn format_unix_seconds(time: DateTime<Utc>) -> String {
    let millis = time.timestamp_millis();
    let (seconds, rest) = (millis.div_euclid(1000), millis.rem_euclid(1000));
    if rest == 0 {
        seconds.to_string()
    } else {
        format!("{seconds}.{rest:03}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn monitor(selector: &str, reference: ReferenceConfig) -> MonitorConfig {
        MonitorConfig {
            name: "classifiers".to_owned(),
            selector: selector.to_owned(),
            group_by: vec!["model".to_owned(), "version".to_owned()],
            window: Duration::from_secs(300),
            short_window: Some(Duration::from_secs(60)),
            reference,
            reference_refresh: None,
            min_samples: 100.0,
            signals: BTreeMap::new(),
            alerting: crate::config::AlertingConfig::default(),
        }
    }

    fn time(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn builds_one_grouped_query_per_window() {
        let day = Duration::from_secs(86_400);
        let cases: Vec<(&str, ReferenceConfig, WindowRole, Option<&str>)> = vec![
            (
                r#"namespace="ml""#,
                ReferenceConfig::Offset(7 * day),
                WindowRole::Current,
                Some(
                    r#"sum by (model, version, le) (increase(h_bucket{namespace="ml"}[5m])) or label_replace(sum by (model, version) (increase(h_sum{namespace="ml"}[5m])), "le", "sum", "", "") or label_replace(count by (model, version) (h_bucket{namespace="ml"} offset 5m), "le", "start", "", "")"#,
                ),
            ),
            (
                r#"namespace="ml""#,
                ReferenceConfig::Offset(7 * day),
                WindowRole::Reference,
                Some(
                    r#"sum by (model, version, le) (increase(h_bucket{namespace="ml"}[5m] offset 7d)) or label_replace(sum by (model, version) (increase(h_sum{namespace="ml"}[5m] offset 7d)), "le", "sum", "", "") or label_replace(count by (model, version) (h_bucket{namespace="ml"} offset 10085m), "le", "start", "", "")"#,
                ),
            ),
            (
                "",
                ReferenceConfig::Offsets(vec![7 * day, 14 * day, day]),
                WindowRole::Reference,
                Some(
                    r#"(sum by (model, version, le) (increase(h_bucket[5m] offset 7d)) + sum by (model, version, le) (increase(h_bucket[5m] offset 14d)) + sum by (model, version, le) (increase(h_bucket[5m] offset 1d))) or label_replace((sum by (model, version) (increase(h_sum[5m] offset 7d)) + sum by (model, version) (increase(h_sum[5m] offset 14d)) + sum by (model, version) (increase(h_sum[5m] offset 1d))), "le", "sum", "", "") or label_replace(count by (model, version) (h_bucket offset 20165m), "le", "start", "", "")"#,
                ),
            ),
            (
                "",
                ReferenceConfig::Window(day),
                WindowRole::Reference,
                Some(
                    r#"sum by (model, version, le) (increase(h_bucket[1d] offset 5m)) or label_replace(sum by (model, version) (increase(h_sum[1d] offset 5m)), "le", "sum", "", "") or label_replace(count by (model, version) (h_bucket offset 1445m), "le", "start", "", "")"#,
                ),
            ),
            (
                r#"{job="serving", model=~"fraud.*"}"#,
                ReferenceConfig::Range {
                    start: time("2023-11-13T22:13:20Z"),
                    end: time("2023-11-14T22:13:20Z"),
                },
                WindowRole::Reference,
                Some(
                    r#"sum by (model, version, le) (increase(h_bucket{job="serving", model=~"fraud.*"}[1d] @ 1700000000)) or label_replace(sum by (model, version) (increase(h_sum{job="serving", model=~"fraud.*"}[1d] @ 1700000000)), "le", "sum", "", "") or label_replace(count by (model, version) (h_bucket{job="serving", model=~"fraud.*"} @ 1699913600), "le", "start", "", "")"#,
                ),
            ),
            (
                "",
                ReferenceConfig::Range {
                    start: time("2023-11-14T21:13:19.500Z"),
                    end: time("2023-11-14T22:13:20.250Z"),
                },
                WindowRole::Reference,
                Some(
                    r#"sum by (model, version, le) (increase(h_bucket[3600750ms] @ 1700000000.250)) or label_replace(sum by (model, version) (increase(h_sum[3600750ms] @ 1700000000.250)), "le", "sum", "", "") or label_replace(count by (model, version) (h_bucket @ 1699996399.500), "le", "start", "", "")"#,
                ),
            ),
            (
                "",
                ReferenceConfig::BaselineFile("baseline.json".into()),
                WindowRole::Reference,
                None,
            ),
            (
                "",
                ReferenceConfig::BaselineFile("baseline.json".into()),
                WindowRole::Short,
                Some(
                    r#"sum by (model, version, le) (increase(h_bucket[1m])) or label_replace(sum by (model, version) (increase(h_sum[1m])), "le", "sum", "", "") or label_replace(count by (model, version) (h_bucket offset 1m), "le", "start", "", "")"#,
                ),
            ),
            (
                "",
                ReferenceConfig::BaselineFile("baseline.json".into()),
                WindowRole::Current,
                Some(
                    r#"sum by (model, version, le) (increase(h_bucket[5m])) or label_replace(sum by (model, version) (increase(h_sum[5m])), "le", "sum", "", "") or label_replace(count by (model, version) (h_bucket offset 5m), "le", "start", "", "")"#,
                ),
            ),
        ];
        for (selector, reference, role, expected) in cases {
            let monitor = monitor(selector, reference.clone());
            assert_eq!(
                histogram_query(&monitor, "h", role).as_deref(),
                expected,
                "{reference:?} {role:?}"
            );
        }
    }

    #[test]
    fn the_labelled_window_is_the_current_one_moved_back_by_the_labels_delay() {
        let monitor = monitor("", ReferenceConfig::Offset(Duration::from_secs(86_400)));
        assert_eq!(
            labelled_query(&monitor, "h", Duration::ZERO),
            histogram_query(&monitor, "h", WindowRole::Current).unwrap()
        );
        assert_eq!(
            labelled_query(&monitor, "c", Duration::from_secs(3600)),
            r#"sum by (model, version, le) (increase(c_bucket[5m] offset 1h)) or label_replace(sum by (model, version) (increase(c_sum[5m] offset 1h)), "le", "sum", "", "") or label_replace(count by (model, version) (c_bucket offset 65m), "le", "start", "", "")"#
        );
    }
}
