//! The `evaluation` section: how often and how widely the evaluation loop
//! runs.

use std::time::Duration;

use super::decode::Decoder;
use super::tree::Node;

/// Default `evaluation.interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Default `evaluation.concurrency`.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// How often and how widely the evaluation loop runs.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationConfig {
    /// Time between evaluations. Default 30s; at least 1s.
    pub interval: Duration,
    /// Queries in flight at once within a cycle. Default 8; at least 1.
    pub concurrency: usize,
    /// How far behind the evaluation grid queries run (`query_offset`);
    /// `None` takes the default of `prometheus.flavor`
    /// ([`super::Config::query_offset`]).
    pub query_offset: Option<Duration>,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        EvaluationConfig {
            interval: DEFAULT_INTERVAL,
            concurrency: DEFAULT_CONCURRENCY,
            query_offset: None,
        }
    }
}

impl Decoder<'_> {
    pub(super) fn evaluation(&mut self, node: &Node, path: &str) -> Option<EvaluationConfig> {
        self.section(node, path, |d, fields| {
            let interval = d.optional(fields, "interval", DEFAULT_INTERVAL, |d, n, p| {
                let interval = d.duration(n, p)?;
                if interval < Duration::from_secs(1) {
                    d.report(n.line, p, "must be at least 1s");
                    return None;
                }
                Some(interval)
            });
            let concurrency = d.optional(fields, "concurrency", DEFAULT_CONCURRENCY, |d, n, p| {
                d.integer_at_least(n, p, 1).map(|v| v as usize)
            });
            let query_offset = d.optional(fields, "query_offset", None, |d, n, p| {
                d.duration(n, p).map(Some)
            });
            Some(EvaluationConfig {
                interval: interval?,
                concurrency: concurrency?,
                query_offset: query_offset?,
            })
        })
    }
}
