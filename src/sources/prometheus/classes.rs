//! Class signals from PromQL: one grouped query per counter and window,
//! and [`ClassGrouper`], which folds its answer into class counts per
//! model.
//!
//! The query sums the counter's increase per model and class and adds,
//! without a class label, how many of the model's series existed when the
//! window began (the same start probe as a histogram's, which tells a
//! young window):
//!
//! ```text
//! sum by (model, version, class) (increase(c{sel, class!=""}[5m] offset 7d))
//!   or count by (model, version) (c{sel} offset 7d5m)
//! ```
//!
//! Series without a class are left out of the sum, so the one sample of a
//! model without a class label is the probe.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use super::group::{AnswerBudget, AnswerLimits};
use super::query::{pooled, selector_matchers, window_span};
use super::{PromError, VectorSink};
use crate::config::MonitorConfig;
use crate::duration::format_duration;
use crate::model::ModelKey;
use crate::sources::WindowRole;

/// The grouped query of a class counter for one window, or `None` for a
/// reference from a baseline file (which holds no class counts).
pub fn class_query(
    monitor: &MonitorConfig,
    counter: &str,
    label: &str,
    role: WindowRole,
) -> Option<String> {
    let span = window_span(monitor, role)?;
    let selector = selector_matchers(monitor);
    let (counted, probed) = if selector.is_empty() {
        (format!("{{{label}!=\"\"}}"), String::new())
    } else {
        (
            format!("{{{selector}, {label}!=\"\"}}"),
            format!("{{{selector}}}"),
        )
    };
    let labels = monitor.group_by.join(", ");
    let class_labels = if labels.is_empty() {
        label.to_owned()
    } else {
        format!("{labels}, {label}")
    };
    let range = format_duration(span.range);
    let counts = pooled(&span.modifiers, |modifier| {
        format!("sum by ({class_labels}) (increase({counter}{counted}[{range}]{modifier}))")
    });
    let at_start = span.at_start;
    Some(format!(
        "{counts} or count by ({labels}) ({counter}{probed}{at_start})"
    ))
}

/// The label names a [`ClassGrouper`] reads: the `group_by` labels, then
/// the class label.
pub fn class_grouper_labels<'a>(group_by: &'a [String], label: &'a str) -> Vec<&'a str> {
    group_by.iter().map(String::as_str).chain([label]).collect()
}

/// One model's window of a class signal as a query answered it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassWindow {
    /// The increase of each class over the window.
    pub counts: BTreeMap<String, f64>,
    /// How many of the model's series existed at the window's start; 0
    /// when none did (a young window).
    pub series_at_start: f64,
}

/// Groups the samples of a [`class_query`] answer by model, within the
/// answer limits (`prometheus.max_series`, `prometheus.max_models`).
#[derive(Default)]
pub struct ClassGrouper {
    budget: AnswerBudget,
    models: HashMap<Vec<String>, ClassWindow>,
}

impl ClassGrouper {
    /// A grouper that takes at most `limits` from an answer.
    pub fn with_limits(limits: AnswerLimits) -> ClassGrouper {
        ClassGrouper {
            budget: AnswerBudget::new(limits),
            ..ClassGrouper::default()
        }
    }

    /// The windows by model; a model with only the start probe (no class
    /// counted in the window) is left out, as a histogram's would be.
    pub fn finish(self, group_by: &[String]) -> BTreeMap<ModelKey, ClassWindow> {
        self.models
            .into_iter()
            .filter(|(_, window)| !window.counts.is_empty())
            .map(|(values, window)| {
                let key = group_by.iter().cloned().zip(values).collect();
                (ModelKey(key), window)
            })
            .collect()
    }
}

impl VectorSink for ClassGrouper {
    /// `labels` holds the `group_by` values, then the class.
    fn sample(&mut self, labels: &[Cow<'_, str>], value: f64) {
        if !self.budget.take_series() {
            return;
        }
        let Some((class, key)) = labels.split_last() else {
            return;
        };
        let key: Vec<String> = key.iter().map(|value| value.to_string()).collect();
        if !self.models.contains_key(&key) && !self.budget.take_model(self.models.len()) {
            return;
        }
        let window = self.models.entry(key).or_default();
        if class.is_empty() {
            window.series_at_start += value;
        } else {
            *window.counts.entry(class.to_string()).or_insert(0.0) += value;
        }
    }

    fn overflow(&self) -> Option<PromError> {
        self.budget.overflow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReferenceConfig;
    use std::time::Duration;

    fn monitor(selector: &str) -> MonitorConfig {
        let mut monitor = MonitorConfig::new("m", BTreeMap::new());
        monitor.selector = selector.to_owned();
        monitor.reference = ReferenceConfig::Offset(Duration::from_secs(7 * 86_400));
        monitor
    }

    #[test]
    fn one_grouped_query_per_window_with_the_start_probe_unclassed() {
        assert_eq!(
            class_query(
                &monitor(r#"job="serving""#),
                "model_predictions_total",
                "class",
                WindowRole::Reference
            )
            .unwrap(),
            r#"sum by (model, version, class) (increase(model_predictions_total{job="serving", class!=""}[5m] offset 7d)) or count by (model, version) (model_predictions_total{job="serving"} offset 10085m)"#
        );
        assert_eq!(
            class_query(&monitor(""), "c", "kind", WindowRole::Current).unwrap(),
            r#"sum by (model, version, kind) (increase(c{kind!=""}[5m])) or count by (model, version) (c offset 5m)"#
        );
        let mut baseline = monitor("");
        baseline.reference = ReferenceConfig::BaselineFile("b.json".into());
        assert_eq!(
            class_query(&baseline, "c", "class", WindowRole::Reference),
            None
        );
    }

    fn labels<'a>(values: &[&'a str]) -> Vec<Cow<'a, str>> {
        values.iter().map(|v| Cow::Borrowed(*v)).collect()
    }

    #[test]
    fn groups_classes_by_model_and_reads_the_probe() {
        let group_by = vec!["model".to_owned(), "version".to_owned()];
        let mut grouper = ClassGrouper::default();
        grouper.sample(&labels(&["a", "v1", "cat"]), 30.0);
        grouper.sample(&labels(&["a", "v1", "dog"]), 10.0);
        grouper.sample(&labels(&["a", "v1", ""]), 2.0);
        grouper.sample(&labels(&["b", "v1", ""]), 1.0);
        let windows = grouper.finish(&group_by);
        assert_eq!(windows.len(), 1, "a model with only the probe is left out");
        let (key, window) = windows.iter().next().unwrap();
        assert_eq!(key.get("model"), Some("a"));
        assert_eq!(window.counts.get("cat"), Some(&30.0));
        assert_eq!(window.counts.get("dog"), Some(&10.0));
        assert_eq!(window.series_at_start, 2.0);
    }

    #[test]
    fn stops_at_the_answer_limits() {
        let mut grouper = ClassGrouper::with_limits(AnswerLimits {
            series: 10,
            models: 1,
        });
        grouper.sample(&labels(&["a", "cat"]), 1.0);
        grouper.sample(&labels(&["b", "cat"]), 1.0);
        assert_eq!(
            grouper.overflow().map(|e| e.to_string()),
            Some("answer exceeds the limit of 1 models (prometheus.max_models)".to_owned())
        );
    }
}
