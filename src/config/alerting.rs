//! The `monitors[].alerting` section: when alerts of a monitor's models
//! fire, repeat and resolve.

use std::time::Duration;

use super::decode::Decoder;
use super::tree::Node;

/// Default `monitors[].alerting.for`: an alert fires on the first drifting evaluation.
pub const DEFAULT_FOR_EVALUATIONS: u32 = 1;
/// Default `monitors[].alerting.resolve_after`: clean evaluations that resolve an alert.
pub const DEFAULT_RESOLVE_AFTER: u32 = 3;
/// Default `monitors[].alerting.repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// The alert lifecycle settings of a monitor (`monitors[].alerting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertingConfig {
    /// Consecutive drifting evaluations before an alert fires (`for`); >= 1, default 1.
    pub for_evaluations: u32,
    /// Consecutive clean evaluations (or evaluations where the model is
    /// absent) before a firing alert resolves; >= 1, default 3.
    pub resolve_after: u32,
    /// Time between repeat notifications while an alert fires; > 0, default 4h.
    pub repeat_interval: Duration,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            for_evaluations: DEFAULT_FOR_EVALUATIONS,
            resolve_after: DEFAULT_RESOLVE_AFTER,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
        }
    }
}

impl Decoder<'_> {
    pub(super) fn alerting(&mut self, node: &Node, path: &str) -> Option<AlertingConfig> {
        self.section(node, path, |d, fields| {
            let for_evaluations = d.optional(fields, "for", DEFAULT_FOR_EVALUATIONS, Self::count);
            let resolve_after =
                d.optional(fields, "resolve_after", DEFAULT_RESOLVE_AFTER, Self::count);
            let repeat_interval = d.optional(
                fields,
                "repeat_interval",
                DEFAULT_REPEAT_INTERVAL,
                Self::positive_duration,
            );
            Some(AlertingConfig {
                for_evaluations: for_evaluations?,
                resolve_after: resolve_after?,
                repeat_interval: repeat_interval?,
            })
        })
    }

    /// A count of evaluations: at least 1, at most `u32::MAX`.
    fn count(&mut self, node: &Node, path: &str) -> Option<u32> {
        let value = self.integer_at_least(node, path, 1)?;
        u32::try_from(value).ok().or_else(|| {
            self.report(
                node.line,
                path,
                format!("must be at most {}, got {value}", u32::MAX),
            );
            None
        })
    }
}
