//! Which PromQL engine answers, and what that changes: `prometheus.flavor`
//! (Prometheus, VictoriaMetrics, Thanos, Mimir, Cortex), the default
//! evaluation delay each engine needs (`evaluation.query_offset`), and
//! `prometheus.query_params`, extra parameters sent with every query
//! (Thanos' `partial_response`, `dedup`, `max_source_resolution`).
//!
//! The delay exists because an engine may answer for a recent instant before
//! it has every sample of that instant: VictoriaMetrics hides the last
//! `-search.latencyOffset` (30s by default) from instant queries, and
//! Thanos Receive, Mimir and Cortex ingest asynchronously. Queries at
//! `t - delay` see the same data whenever they are asked again, so an
//! exported number can be reproduced from the engine afterwards.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Config;
use super::decode::Decoder;
use super::tree::{Node, join};

/// The PromQL engine behind `prometheus.url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    #[default]
    Prometheus,
    VictoriaMetrics,
    Thanos,
    Mimir,
    Cortex,
}

/// Every value `prometheus.flavor` takes, in the order of [`Flavor`].
pub const FLAVORS: [&str; 5] = ["prometheus", "victoriametrics", "thanos", "mimir", "cortex"];

/// Default `evaluation.query_offset` with VictoriaMetrics: its
/// `-search.latencyOffset` default (30s) plus a 30s scrape interval.
pub const VICTORIAMETRICS_QUERY_OFFSET: Duration = Duration::from_secs(60);
/// Default `evaluation.query_offset` with Thanos, Mimir and Cortex: their
/// ingestion (Receive, distributors and ingesters) is asynchronous, and a
/// minute covers a scrape interval and the usual remote-write batching.
pub const REMOTE_WRITE_QUERY_OFFSET: Duration = Duration::from_secs(60);

/// Query parameters the sidecar sets itself; `query_params` may not.
const RESERVED_PARAMS: [&str; 2] = ["query", "time"];

impl Flavor {
    /// The flavor's word in the config file.
    pub fn as_str(self) -> &'static str {
        FLAVORS[self as usize]
    }

    /// The evaluation delay used when `evaluation.query_offset` is not set.
    /// Prometheus appends a scrape's samples atomically, so an instant query
    /// at `now` already sees everything it will ever see about `now`.
    pub fn default_query_offset(self) -> Duration {
        match self {
            Flavor::Prometheus => Duration::ZERO,
            Flavor::VictoriaMetrics => VICTORIAMETRICS_QUERY_OFFSET,
            Flavor::Thanos | Flavor::Mimir | Flavor::Cortex => REMOTE_WRITE_QUERY_OFFSET,
        }
    }

    fn from_word(word: &str) -> Option<Flavor> {
        let all = [
            Flavor::Prometheus,
            Flavor::VictoriaMetrics,
            Flavor::Thanos,
            Flavor::Mimir,
            Flavor::Cortex,
        ];
        all.into_iter().find(|flavor| flavor.as_str() == word)
    }
}

impl Config {
    /// How far behind the evaluation grid the queries run:
    /// `evaluation.query_offset`, else the flavor's default. The loop wakes
    /// at `grid time + offset` and queries at the grid time.
    pub fn query_offset(&self) -> Duration {
        self.evaluation
            .query_offset
            .unwrap_or_else(|| self.prometheus.flavor.default_query_offset())
    }
}

impl Decoder<'_> {
    /// `prometheus.flavor`: one of [`FLAVORS`].
    pub(super) fn flavor(&mut self, node: &Node, path: &str) -> Option<Flavor> {
        let word = self.choice(node, path, "flavor", &FLAVORS)?;
        Flavor::from_word(&word)
    }

    /// `prometheus.query_params`: a mapping of parameter names to string
    /// values, none of them `query` or `time`.
    pub(super) fn query_params(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<BTreeMap<String, String>> {
        let entries = self.entries(node, path)?;
        let mut params = BTreeMap::new();
        let mut ok = true;
        for (key, key_node, value_node) in entries {
            let value_path = join(path, &key.raw);
            if key.text.trim().is_empty() {
                self.report(
                    key_node.line,
                    &value_path,
                    "a parameter name cannot be empty",
                );
                ok = false;
            } else if RESERVED_PARAMS.contains(&key.text.as_str()) {
                self.report(
                    key_node.line,
                    &value_path,
                    format!(
                        "{} is set by the sidecar itself; reserved parameters: {}",
                        key.describe(),
                        RESERVED_PARAMS.join(", ")
                    ),
                );
                ok = false;
            }
            let Some(value) = self.string(value_node, &value_path) else {
                ok = false;
                continue;
            };
            params.insert(key.text.clone(), value);
        }
        ok.then_some(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flavor_reads_back_from_its_word() {
        for word in FLAVORS {
            let flavor = Flavor::from_word(word).expect("a known word");
            assert_eq!(flavor.as_str(), word);
        }
        assert_eq!(Flavor::from_word("influxdb"), None);
    }

    #[test]
    fn only_prometheus_queries_without_a_delay_by_default() {
        assert_eq!(Flavor::Prometheus.default_query_offset(), Duration::ZERO);
        for flavor in [
            Flavor::VictoriaMetrics,
            Flavor::Thanos,
            Flavor::Mimir,
            Flavor::Cortex,
        ] {
            assert!(
                flavor.default_query_offset() >= Duration::from_secs(30),
                "{flavor:?}"
            );
        }
    }
}
