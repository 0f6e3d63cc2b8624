//! The `exceedance` detector's settings: which reference quantile's bucket
//! it watches, its defaults and how its keys decode (the row in
//! `detectors::TYPES` points here).

use super::decode::{Decoder, Fields};
use super::detectors::DetectorKind;
use super::scalars::OPEN_UNIT;

/// Default `quantile` of `exceedance`: the reference p99's bucket.
pub const DEFAULT_EXCEEDANCE_QUANTILE: f64 = 0.99;
/// Default `min_effect` of `exceedance`: the current share above the bound
/// must be at least 1.5 times the reference's (`docs/statistics.md`,
/// section 4.10).
pub const DEFAULT_EXCEEDANCE_MIN_EFFECT: f64 = 0.5;

impl Decoder<'_> {
    /// `quantile` (in (0, 1), default 0.99) and the test rule's keys.
    pub(super) fn exceedance(&mut self, fields: &Fields<'_>) -> Option<DetectorKind> {
        let quantile = self.optional(
            fields,
            "quantile",
            DEFAULT_EXCEEDANCE_QUANTILE,
            |d, n, p| d.number_where(n, p, OPEN_UNIT),
        );
        let rule = self.test_rule(fields, DEFAULT_EXCEEDANCE_MIN_EFFECT);
        Some(DetectorKind::Exceedance {
            quantile: quantile?,
            rule: rule?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{DetectorKind, TestRule, parse_str};

    /// A config whose latency signal has `detector`, parsed.
    fn parse(detector: &str) -> Result<DetectorKind, Vec<String>> {
        let text = format!(
            "prometheus:\n  url: http://prom:9090\nmonitors:\n  - name: m\n    signals:\n      latency:\n        histogram: h\n        detectors: [{detector}]\n"
        );
        parse_str(&text, "c.yml")
            .map(|config| {
                config.monitors[0].signals["latency"].detectors[0]
                    .kind
                    .clone()
            })
            .map_err(|error| {
                error
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect()
            })
    }

    #[test]
    fn defaults_to_the_p99_bucket_and_a_ratio_of_one_and_a_half() {
        assert_eq!(
            parse("{type: exceedance}"),
            Ok(DetectorKind::Exceedance {
                quantile: 0.99,
                rule: TestRule {
                    threshold: None,
                    false_alarm_rate: 0.001,
                    min_effect: 0.5,
                },
            })
        );
    }

    #[test]
    fn reads_every_key_it_allows() {
        assert_eq!(
            parse(
                "{type: exceedance, quantile: 0.9, false_alarm_rate: 0.01, min_effect: 1, threshold: 0.05}"
            ),
            Ok(DetectorKind::Exceedance {
                quantile: 0.9,
                rule: TestRule {
                    threshold: Some(0.05),
                    false_alarm_rate: 0.01,
                    min_effect: 1.0,
                },
            })
        );
    }

    #[test]
    fn rejects_impossible_settings_by_name() {
        let d = "monitors[0].signals.latency.detectors[0]";
        assert_eq!(
            parse("{type: exceedance, quantile: 1}"),
            Err(vec![format!(
                "{d}.quantile: must be between 0 and 1 (exclusive), got 1"
            )])
        );
        assert_eq!(
            parse("{type: exceedance, max_ratio: 2}"),
            Err(vec![format!(
                "{d}.max_ratio: key \"max_ratio\" does not apply to detector type exceedance; allowed keys: type, name, quantile, threshold, false_alarm_rate, min_effect"
            )])
        );
    }
}
