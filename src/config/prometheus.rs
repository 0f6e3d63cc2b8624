//! The `prometheus` section: where and how to query PromQL, its defaults and
//! its decoding.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::decode::{Decoder, Fields};
use super::engine::Flavor;
use super::secret::SecretSource;
use super::tree::Node;

/// Default `prometheus.timeout` and `webhooks[].timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `prometheus.max_response_bytes`: 64 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// Default `prometheus.max_series`: the most series one answer may hold.
/// 250,000 series are 10,000 models of 24 buckets and a sum; answers that
/// size keep the sidecar inside the shipped manifest's 256 MiB (measured
/// in BENCHMARKS.md, "Hostile answers").
pub const DEFAULT_MAX_SERIES: usize = 250_000;
/// Default `prometheus.max_models`: the most models (distinct `group_by`
/// values) one answer may hold.
pub const DEFAULT_MAX_MODELS: usize = 10_000;
/// Default `prometheus.post_threshold_bytes`.
pub const DEFAULT_POST_THRESHOLD_BYTES: usize = 2048;

/// Where and how to query PromQL.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusConfig {
    /// Base URL of any PromQL HTTP API (`/api/v1/query` is appended).
    pub url: url::Url,
    /// Per-request timeout. Default 10s.
    pub timeout: Duration,
    /// Extra request headers, e.g. `X-Scope-OrgID` for Mimir or Cortex.
    pub headers: BTreeMap<String, String>,
    /// File holding a bearer token, read at every request so rotation works.
    pub bearer_token_file: Option<PathBuf>,
    pub basic_auth: Option<BasicAuth>,
    /// Largest response body accepted, in bytes. Default 64 MiB.
    pub max_response_bytes: u64,
    /// Most series one answer may hold; past it the query fails as
    /// `too_large`. Default 250,000.
    pub max_series: usize,
    /// Most models (distinct `group_by` values) one answer may hold; past
    /// it the query fails as `too_large`. Default 10,000.
    pub max_models: usize,
    /// Queries longer than this many bytes are sent as a POST form. Default 2048.
    pub post_threshold_bytes: usize,
    /// URL users reach Prometheus at, for links in alerts. Optional.
    pub external_url: Option<url::Url>,
    /// The engine behind `url`; sets the default evaluation delay
    /// (`super::engine`). Default `prometheus`.
    pub flavor: Flavor,
    /// Extra parameters sent with every query, on GET and POST alike (e.g.
    /// Thanos' `partial_response`, `dedup`, `max_source_resolution`).
    pub query_params: BTreeMap<String, String>,
}

impl PrometheusConfig {
    /// `url` with every other setting at its default.
    pub fn new(url: url::Url) -> PrometheusConfig {
        PrometheusConfig {
            url,
            timeout: DEFAULT_TIMEOUT,
            headers: BTreeMap::new(),
            bearer_token_file: None,
            basic_auth: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_series: DEFAULT_MAX_SERIES,
            max_models: DEFAULT_MAX_MODELS,
            post_threshold_bytes: DEFAULT_POST_THRESHOLD_BYTES,
            external_url: None,
            flavor: Flavor::default(),
            query_params: BTreeMap::new(),
        }
    }
}

/// HTTP basic authentication. The password comes from a file or inline
/// (inline values normally come from `${VAR}`); it is never logged.
#[derive(Clone, PartialEq)]
pub struct BasicAuth {
    pub username: String,
    pub password: SecretSource,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

impl Decoder<'_> {
    pub(super) fn prometheus(&mut self, node: &Node, path: &str) -> Option<PrometheusConfig> {
        self.section(node, path, |d, fields| {
            let url = d.required(fields, "url", Self::url);
            let timeout = d.optional(fields, "timeout", DEFAULT_TIMEOUT, Self::positive_duration);
            let headers = d.optional(fields, "headers", BTreeMap::new(), Self::headers);
            let (bearer_token_file, basic_auth) = d.credentials(fields);
            let max_response_bytes = d.optional(
                fields,
                "max_response_bytes",
                DEFAULT_MAX_RESPONSE_BYTES,
                |d, n, p| d.integer_at_least(n, p, 1).map(|v| v as u64),
            );
            let max_series = d.optional(fields, "max_series", DEFAULT_MAX_SERIES, |d, n, p| {
                d.integer_at_least(n, p, 1).map(|v| v as usize)
            });
            let max_models = d.optional(fields, "max_models", DEFAULT_MAX_MODELS, |d, n, p| {
                d.integer_at_least(n, p, 1).map(|v| v as usize)
            });
            let post_threshold_bytes = d.optional(
                fields,
                "post_threshold_bytes",
                DEFAULT_POST_THRESHOLD_BYTES,
                |d, n, p| d.integer_at_least(n, p, 0).map(|v| v as usize),
            );
            let external_url = d.optional(fields, "external_url", None, |d, n, p| {
                d.url(n, p).map(Some)
            });
            let flavor = d.optional(fields, "flavor", Flavor::default(), Self::flavor);
            let query_params =
                d.optional(fields, "query_params", BTreeMap::new(), Self::query_params);
            Some(PrometheusConfig {
                url: url?,
                timeout: timeout?,
                headers: headers?,
                bearer_token_file: bearer_token_file?,
                basic_auth: basic_auth?,
                max_response_bytes: max_response_bytes?,
                max_series: max_series?,
                max_models: max_models?,
                post_threshold_bytes: post_threshold_bytes?,
                external_url: external_url?,
                flavor: flavor?,
                query_params: query_params?,
            })
        })
    }

    /// `bearer_token_file` and `basic_auth`, at most one of them: the
    /// credentials of an HTTP client section (here, and `alertmanagers`).
    pub(super) fn credentials(
        &mut self,
        fields: &Fields<'_>,
    ) -> (Option<Option<PathBuf>>, Option<Option<BasicAuth>>) {
        let bearer_token_file = self.optional(fields, "bearer_token_file", None, |d, n, p| {
            d.file_path(n, p).map(Some)
        });
        let basic_auth = self.optional(fields, "basic_auth", None, |d, n, p| {
            d.basic_auth(n, p).map(Some)
        });
        if let (Some(_), Some(key)) = (
            fields.get("bearer_token_file"),
            fields.key_node("basic_auth"),
        ) {
            self.report(
                key.line,
                &fields.path("basic_auth"),
                "set at most one of bearer_token_file and basic_auth",
            );
        }
        (bearer_token_file, basic_auth)
    }

    fn basic_auth(&mut self, node: &Node, path: &str) -> Option<BasicAuth> {
        self.section(node, path, |d, fields| {
            let username = d.required(fields, "username", Self::non_empty);
            let password = d.secret(fields, "password", "password_file", true);
            Some(BasicAuth {
                username: username?,
                password: password??,
            })
        })
    }
}
