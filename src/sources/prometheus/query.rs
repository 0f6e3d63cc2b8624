//! The PromQL of a monitor's signals: one grouped query per histogram and
//! window.
//!
//! One query returns every model at once: bucket counts grouped by the
//! monitor's `group_by` labels plus `le`, with the window's `_sum` joined in
//! under `le="sum"`. The number of queries per cycle therefore does not grow
//! with the number of models.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{MonitorConfig, ReferenceConfig};
use crate::duration::format_duration;
use crate::sources::WindowRole;

/// The grouped query for one histogram and window of a monitor, or `None`
/// for a reference that comes from a baseline file.
///
/// The answer holds, per model, one sample per bucket bound (`le`) and one
/// sample with `le="sum"` for the window's `_sum`:
///
/// ```text
/// sum by (model, version, le) (increase(h_bucket{sel}[5m] offset 7d))
///   or label_replace(sum by (model, version) (increase(h_sum{sel}[5m] offset 7d)), "le", "sum", "", "")
/// ```
///
/// The current window is `[window]` ending at the evaluation time. A
/// reference is `[window] offset d` for `Offset(d)`, `[w] offset <window>`
/// for `Window(w)` (the span just before the current window), and
/// `[end - start] @ <end>` for `Range`.
pub fn histogram_query(
    monitor: &MonitorConfig,
    histogram: &str,
    role: WindowRole,
) -> Option<String> {
    let (range, modifier) = match role {
        WindowRole::Current => (monitor.window, String::new()),
        WindowRole::Reference => match &monitor.reference {
            ReferenceConfig::Offset(offset) => (
                monitor.window,
                format!(" offset {}", format_duration(*offset)),
            ),
            ReferenceConfig::Window(window) => (
                *window,
                format!(" offset {}", format_duration(monitor.window)),
            ),
            ReferenceConfig::Range { start, end } => {
                let span = (*end - *start).to_std().unwrap_or(Duration::ZERO);
                (span, format!(" @ {}", format_unix_seconds(*end)))
            }
            ReferenceConfig::BaselineFile(_) => return None,
        },
    };
    let selector = monitor.selector.trim();
    let selector = selector
        .strip_prefix('{')
        .and_then(|inner| inner.strip_suffix('}'))
        .unwrap_or(selector)
        .trim();
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
    let range = format_duration(range);
    Some(format!(
        "sum by ({bucket_labels}) (increase({histogram}_bucket{matchers}[{range}]{modifier})) \
         or label_replace(sum by ({labels}) (increase({histogram}_sum{matchers}[{range}]{modifier})), \
         \"le\", \"{SUM_LE}\", \"\", \"\")"
    ))
}

/// The `le` value under which a histogram query returns the window's `_sum`.
pub const SUM_LE: &str = "sum";

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
            reference,
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
                    r#"sum by (model, version, le) (increase(h_bucket{namespace="ml"}[5m])) or label_replace(sum by (model, version) (increase(h_sum{namespace="ml"}[5m])), "le", "sum", "", "")"#,
                ),
            ),
            (
                r#"namespace="ml""#,
                ReferenceConfig::Offset(7 * day),
                WindowRole::Reference,
                Some(
                    r#"sum by (model, version, le) (increase(h_bucket{namespace="ml"}[5m] offset 7d)) or label_replace(sum by (model, version) (increase(h_sum{namespace="ml"}[5m] offset 7d)), "le", "sum", "", "")"#,
                ),
            ),
            (
                "",
                ReferenceConfig::Window(day),
                WindowRole::Reference,
                Some(
                    r#"sum by (model, version, le) (increase(h_bucket[1d] offset 5m)) or label_replace(sum by (model, version) (increase(h_sum[1d] offset 5m)), "le", "sum", "", "")"#,
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
                    r#"sum by (model, version, le) (increase(h_bucket{job="serving", model=~"fraud.*"}[1d] @ 1700000000)) or label_replace(sum by (model, version) (increase(h_sum{job="serving", model=~"fraud.*"}[1d] @ 1700000000)), "le", "sum", "", "")"#,
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
                    r#"sum by (model, version, le) (increase(h_bucket[3600750ms] @ 1700000000.250)) or label_replace(sum by (model, version) (increase(h_sum[3600750ms] @ 1700000000.250)), "le", "sum", "", "")"#,
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
                WindowRole::Current,
                Some(
                    r#"sum by (model, version, le) (increase(h_bucket[5m])) or label_replace(sum by (model, version) (increase(h_sum[5m])), "le", "sum", "", "")"#,
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
}
