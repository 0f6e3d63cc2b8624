//! The `alertmanagers` section: the Alertmanagers the sidecar pushes its own
//! alerts to (API v2), as Prometheus does, with their defaults and decoding.
//!
//! Every listed Alertmanager gets every alert; an HA pair deduplicates them
//! (and the alerts of a second sidecar) by their labels, so the section
//! offers `external_labels` for labels every alert carries but no way to add
//! a label that differs between replicas.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::decode::Decoder;
use super::prometheus::{BasicAuth, DEFAULT_TIMEOUT};
use super::promql::is_label_name;
use super::tree::Node;

/// Default `alertmanagers.resend_interval`: Prometheus' `--rules.alert.resend-delay`.
pub const DEFAULT_RESEND_INTERVAL: Duration = Duration::from_secs(60);
/// Default `alertmanagers.queue_capacity`: Prometheus'
/// `--alertmanager.notification-queue-capacity`.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Default `alertmanagers.path_prefix`.
pub const DEFAULT_PATH_PREFIX: &str = "/";

/// The labels the sidecar sets on every alert itself; `external_labels`
/// may not name them.
pub const ALERTMANAGER_ALERT_LABELS: &[&str] = &[
    "alertname",
    "monitor",
    "signal",
    "detector",
    "severity",
    "kind",
];

/// Where and how the sidecar pushes its alerts to Alertmanager.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagersConfig {
    /// Base URLs of the Alertmanagers; at least one, no repeats. Every one
    /// gets every alert.
    pub urls: Vec<url::Url>,
    /// Per-request timeout. Default 10s.
    pub timeout: Duration,
    /// How often firing alerts are sent again; > 0, default 1m.
    pub resend_interval: Duration,
    /// Put before `/api/v2/alerts`; starts with `/`. Default `/`.
    pub path_prefix: String,
    /// Extra request headers, e.g. a tenant header of a multi-tenant
    /// Alertmanager (Mimir, Cortex).
    pub headers: BTreeMap<String, String>,
    /// File holding a bearer token, read at every request.
    pub bearer_token_file: Option<PathBuf>,
    pub basic_auth: Option<BasicAuth>,
    /// Labels added to every alert (an alert's own labels win). Valid label
    /// names, none of [`ALERTMANAGER_ALERT_LABELS`].
    pub external_labels: BTreeMap<String, String>,
    /// Most alerts waiting per Alertmanager; past it the oldest are dropped.
    /// Default 10,000.
    pub queue_capacity: usize,
}

impl AlertmanagersConfig {
    /// `urls` with every other setting at its default.
    pub fn new(urls: Vec<url::Url>) -> AlertmanagersConfig {
        AlertmanagersConfig {
            urls,
            timeout: DEFAULT_TIMEOUT,
            resend_interval: DEFAULT_RESEND_INTERVAL,
            path_prefix: DEFAULT_PATH_PREFIX.to_owned(),
            headers: BTreeMap::new(),
            bearer_token_file: None,
            basic_auth: None,
            external_labels: BTreeMap::new(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

impl Decoder<'_> {
    pub(super) fn alertmanagers(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<Option<AlertmanagersConfig>> {
        self.section(node, path, |d, fields| {
            let urls = d.required(fields, "urls", Self::alertmanager_urls);
            let timeout = d.optional(fields, "timeout", DEFAULT_TIMEOUT, Self::positive_duration);
            let resend_interval = d.optional(
                fields,
                "resend_interval",
                DEFAULT_RESEND_INTERVAL,
                Self::positive_duration,
            );
            let path_prefix = d.optional(
                fields,
                "path_prefix",
                DEFAULT_PATH_PREFIX.to_owned(),
                |d, n, p| {
                    let prefix = d.non_empty(n, p)?;
                    if !prefix.starts_with('/') {
                        d.report(n.line, p, "must start with /");
                        return None;
                    }
                    Some(prefix)
                },
            );
            let headers = d.optional(fields, "headers", BTreeMap::new(), Self::headers);
            let (bearer_token_file, basic_auth) = d.credentials(fields);
            let external_labels = d.optional(
                fields,
                "external_labels",
                BTreeMap::new(),
                Self::external_labels,
            );
            let queue_capacity = d.optional(
                fields,
                "queue_capacity",
                DEFAULT_QUEUE_CAPACITY,
                |d, n, p| d.integer_at_least(n, p, 1).map(|v| v as usize),
            );
            Some(Some(AlertmanagersConfig {
                urls: urls?,
                timeout: timeout?,
                resend_interval: resend_interval?,
                path_prefix: path_prefix?,
                headers: headers?,
                bearer_token_file: bearer_token_file?,
                basic_auth: basic_auth?,
                external_labels: external_labels?,
                queue_capacity: queue_capacity?,
            }))
        })
    }

    /// At least one http(s) URL, none twice. URLs are never shown.
    fn alertmanager_urls(&mut self, node: &Node, path: &str) -> Option<Vec<url::Url>> {
        let items = self.sequence(node, path)?;
        if items.is_empty() {
            self.report(node.line, path, "must list at least one alertmanager url");
            return None;
        }
        let urls = self.each(items, path, Self::url)?;
        let mut ok = true;
        for (index, url) in urls.iter().enumerate() {
            if let Some(first) = urls[..index].iter().position(|u| u == url) {
                self.report(
                    items[index].line,
                    &format!("{path}[{index}]"),
                    format!("duplicate alertmanager url (the same as item {first})"),
                );
                ok = false;
            }
        }
        ok.then_some(urls)
    }

    fn external_labels(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let entries = self.entries(node, path)?;
        let mut labels = BTreeMap::new();
        let mut ok = true;
        for (key, key_node, value_node) in entries {
            let label_path = super::tree::join(path, &key.raw);
            if !is_label_name(&key.text) {
                self.report(
                    key_node.line,
                    &label_path,
                    format!("invalid label name {}", key.describe()),
                );
                ok = false;
            } else if ALERTMANAGER_ALERT_LABELS.contains(&key.text.as_str()) {
                self.report(
                    key_node.line,
                    &label_path,
                    format!(
                        "label {} is set by the sidecar on every alert; external labels may not set {}",
                        key.describe(),
                        ALERTMANAGER_ALERT_LABELS.join(", ")
                    ),
                );
                ok = false;
            }
            match self.string(value_node, &label_path) {
                Some(value) => {
                    labels.insert(key.text.clone(), value);
                }
                None => ok = false,
            }
        }
        ok.then_some(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    const HEAD: &str = "prometheus: {url: http://prom:9090}\nmonitors:\n  - name: m\n    signals:\n      confidence: {histogram: h, detectors: [{type: psi}]}\n";

    /// Every problem of `section` under the head, as `line: path: message`.
    fn problems(section: &str) -> Vec<String> {
        match parse_str(&format!("{HEAD}{section}"), "/etc/mm.yml") {
            Ok(_) => Vec::new(),
            Err(error) => error.lines(),
        }
    }

    #[test]
    fn a_full_section_decodes_and_defaults_apply_to_a_short_one() {
        let config = parse_str(
            &format!(
                "{HEAD}alertmanagers:\n  urls: [http://am-0:9093, 'https://am-1:9093/']\n  timeout: 3s\n  resend_interval: 30s\n  path_prefix: /alertmanager\n  headers: {{X-Scope-OrgID: team-a}}\n  bearer_token_file: token\n  external_labels: {{cluster: eu-1}}\n  queue_capacity: 50\n"
            ),
            "/etc/mm.yml",
        )
        .unwrap();
        let section = config.alertmanagers.unwrap();
        assert_eq!(section.urls.len(), 2);
        assert_eq!(section.timeout, Duration::from_secs(3));
        assert_eq!(section.resend_interval, Duration::from_secs(30));
        assert_eq!(section.path_prefix, "/alertmanager");
        assert_eq!(section.headers["X-Scope-OrgID"], "team-a");
        assert_eq!(
            section.bearer_token_file.as_deref(),
            Some(std::path::Path::new("/etc/token"))
        );
        assert_eq!(section.external_labels["cluster"], "eu-1");
        assert_eq!(section.queue_capacity, 50);

        let short = parse_str(
            &format!("{HEAD}alertmanagers: {{urls: [http://am:9093]}}\n"),
            "/etc/mm.yml",
        )
        .unwrap()
        .alertmanagers
        .unwrap();
        assert_eq!(
            short,
            AlertmanagersConfig::new(vec!["http://am:9093".parse().unwrap()])
        );
        assert_eq!(short.resend_interval, DEFAULT_RESEND_INTERVAL);
        let none = parse_str(HEAD, "/etc/mm.yml").unwrap();
        assert_eq!(none.alertmanagers, None);
    }

    #[test]
    fn every_problem_is_named_with_its_line_and_key() {
        let got = problems(
            "alertmanagers:\n  urls: [http://am:9093, 'ftp://x', http://am:9093]\n  resend_interval: 0s\n  path_prefix: api\n  external_labels: {severity: x, 1bad: y, cluster: eu}\n  bearer_token_file: t\n  basic_auth: {username: u, password: p}\n  tls: {}\n",
        );
        assert_eq!(
            got,
            vec![
                "7: alertmanagers.urls[1]: invalid url: expected an http or https url with a host",
                "8: alertmanagers.resend_interval: must be greater than 0",
                "9: alertmanagers.path_prefix: must start with /",
                "10: alertmanagers.external_labels.severity: label \"severity\" is set by the sidecar on every alert; external labels may not set alertname, monitor, signal, detector, severity, kind",
                "10: alertmanagers.external_labels.1bad: invalid label name \"1bad\"",
                "12: alertmanagers.basic_auth: set at most one of bearer_token_file and basic_auth",
                "13: alertmanagers.tls: unknown key \"tls\"; allowed keys: urls, timeout, resend_interval, path_prefix, headers, bearer_token_file, basic_auth, external_labels, queue_capacity",
            ],
            "{got:#?}"
        );
        assert_eq!(
            problems("alertmanagers: {urls: []}\n"),
            vec!["6: alertmanagers.urls: must list at least one alertmanager url"]
        );
        assert_eq!(
            problems("alertmanagers: {urls: [http://a:1, http://b:2, http://a:1]}\n"),
            vec!["6: alertmanagers.urls[2]: duplicate alertmanager url (the same as item 0)"]
        );
        assert_eq!(
            problems("alertmanagers: {timeout: 1s}\n"),
            vec!["6: alertmanagers.urls: missing required key"]
        );
    }
}
