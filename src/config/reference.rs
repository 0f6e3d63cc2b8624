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
const REFERENCE_KINDS: [&str; 4] = ["offset", "window", "range", "baseline_file"];

/// What the current window is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum ReferenceConfig {
    /// The same window length, this long ago (PromQL `offset`).
    Offset(Duration),
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
    /// The kind's key in the file: `offset`, `window`, `range` or
    /// `baseline_file`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReferenceConfig::Offset(_) => REFERENCE_KINDS[0],
            ReferenceConfig::Window(_) => REFERENCE_KINDS[1],
            ReferenceConfig::Range { .. } => REFERENCE_KINDS[2],
            ReferenceConfig::BaselineFile(_) => REFERENCE_KINDS[3],
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
