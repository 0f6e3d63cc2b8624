//! The `monitors[].reference` section: what a monitor's current window is
//! compared with.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::decode::Decoder;
use super::tree::Node;

/// Default `monitors[].reference`: `{offset: 7d}`.
pub const DEFAULT_REFERENCE_OFFSET: Duration = Duration::from_secs(7 * 24 * 3600);

/// The ways to give a reference, one of which a `reference` mapping holds.
const REFERENCE_KINDS: [&str; 5] = ["offset", "offsets", "window", "range", "baseline_file"];

/// What the current window is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum ReferenceConfig {
    /// The same window length, this long ago (PromQL `offset`).
    Offset(Duration),
    /// The same window length at each of these times ago, pooled: bucket
    /// counts and sums added up (a seasonal reference such as
    /// `[7d, 14d, 21d]`). At least one, distinct, each positive.
    Offsets(Vec<Duration>),
    /// The span of this length just before the current window.
    Window(Duration),
    /// A fixed span (PromQL `@ end` over `end - start`); `start < end`.
    Range {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// Bucket counts recorded in a file (see `crate::sources::baseline`).
    BaselineFile(PathBuf),
}

impl ReferenceConfig {
    /// The kind's key in the file: `offset`, `offsets`, `window`, `range`
    /// or `baseline_file`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReferenceConfig::Offset(_) => REFERENCE_KINDS[0],
            ReferenceConfig::Offsets(_) => REFERENCE_KINDS[1],
            ReferenceConfig::Window(_) => REFERENCE_KINDS[2],
            ReferenceConfig::Range { .. } => REFERENCE_KINDS[3],
            ReferenceConfig::BaselineFile(_) => REFERENCE_KINDS[4],
        }
    }
}

impl Default for ReferenceConfig {
    /// The same window a week earlier.
    fn default() -> Self {
        ReferenceConfig::Offset(DEFAULT_REFERENCE_OFFSET)
    }
}

impl Decoder<'_> {
    pub(super) fn reference(&mut self, node: &Node, path: &str) -> Option<ReferenceConfig> {
        self.section(node, path, |d, fields| {
            let given: Vec<&str> = REFERENCE_KINDS
                .into_iter()
                .filter(|key| fields.get(key).is_some())
                .collect();
            match given.as_slice() {
                [] => {
                    d.report(
                        fields.line,
                        path,
                        format!("give exactly one of {}", REFERENCE_KINDS.join(", ")),
                    );
                    None
                }
                ["offset"] => d
                    .required(fields, "offset", Self::positive_duration)
                    .map(ReferenceConfig::Offset),
                ["offsets"] => d
                    .required(fields, "offsets", Self::offsets)
                    .map(ReferenceConfig::Offsets),
                ["window"] => d
                    .required(fields, "window", Self::positive_duration)
                    .map(ReferenceConfig::Window),
                ["range"] => d.required(fields, "range", Self::range),
                ["baseline_file"] => d
                    .required(fields, "baseline_file", Self::file_path)
                    .map(ReferenceConfig::BaselineFile),
                several => {
                    d.report(
                        fields.line,
                        path,
                        format!(
                            "give exactly one of {}, found {}",
                            REFERENCE_KINDS.join(", "),
                            several.join(" and ")
                        ),
                    );
                    None
                }
            }
        })
    }

    /// `short_window`: a positive duration shorter than `window` (when the
    /// window itself was read).
    pub(super) fn short_window(
        &mut self,
        node: &Node,
        path: &str,
        window: Option<Duration>,
    ) -> Option<Option<Duration>> {
        let short = self.positive_duration(node, path)?;
        if let Some(window) = window
            && short >= window
        {
            self.report(
                node.line,
                path,
                format!(
                    "must be shorter than window ({})",
                    crate::duration::format_duration(window)
                ),
            );
            return None;
        }
        Some(Some(short))
    }

    /// A non-empty list of distinct positive durations.
    fn offsets(&mut self, node: &Node, path: &str) -> Option<Vec<Duration>> {
        let items = self.sequence(node, path)?;
        if items.is_empty() {
            self.report(node.line, path, "at least one offset is required");
            return None;
        }
        let offsets = self.each(items, path, Self::positive_duration)?;
        for (index, offset) in offsets.iter().enumerate() {
            if let Some(first) = offsets[..index].iter().position(|o| o == offset) {
                self.report(
                    items[index].line,
                    &format!("{path}[{index}]"),
                    format!(
                        "duplicate offset {} (also {path}[{first}])",
                        crate::duration::format_duration(*offset)
                    ),
                );
                return None;
            }
        }
        Some(offsets)
    }

    fn range(&mut self, node: &Node, path: &str) -> Option<ReferenceConfig> {
        self.section(node, path, |d, fields| {
            let start = d.required(fields, "start", Self::timestamp);
            let end = d.required(fields, "end", Self::timestamp);
            let (start, end) = (start?, end?);
            if start >= end {
                d.report(node.line, path, "start must be before end");
                return None;
            }
            Some(ReferenceConfig::Range { start, end })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{ReferenceConfig, parse_str};

    const DAY: Duration = Duration::from_secs(86_400);

    /// A config with this `reference` mapping, parsed.
    fn parse(reference: &str) -> Result<ReferenceConfig, Vec<String>> {
        let text = format!(
            "prometheus:\n  url: http://prom:9090\nmonitors:\n  - name: m\n    reference: {reference}\n    signals:\n      c:\n        histogram: h\n        detectors: [{{type: ks}}]\n"
        );
        parse_str(&text, "c.yml")
            .map(|config| config.monitors[0].reference.clone())
            .map_err(|error| {
                error
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}: {}", p.line.unwrap_or(0), p.path, p.message))
                    .collect()
            })
    }

    #[test]
    fn offsets_are_read_in_order() {
        assert_eq!(
            parse("{offsets: [7d, 14d, 21d]}"),
            Ok(ReferenceConfig::Offsets(vec![7 * DAY, 14 * DAY, 21 * DAY]))
        );
    }

    #[test]
    fn offsets_must_be_a_non_empty_list_of_distinct_positive_durations() {
        let path = "monitors[0].reference.offsets";
        let cases = [
            ("{offsets: []}", format!("5: {path}: at least one offset is required")),
            ("{offsets: 7d}", format!("5: {path}: expected a list, got a string")),
            (
                "{offsets: [7d, 0s]}",
                format!("5: {path}[1]: must be greater than 0"),
            ),
            (
                "{offsets: [7d, 14d, 7d]}",
                format!("5: {path}[2]: duplicate offset 7d (also {path}[0])"),
            ),
            (
                "{offset: 7d, offsets: [14d]}",
                "5: monitors[0].reference: give exactly one of offset, offsets, window, range, baseline_file, found offset and offsets".to_owned(),
            ),
        ];
        for (reference, expected) in cases {
            assert_eq!(parse(reference), Err(vec![expected]), "{reference}");
        }
    }
}
