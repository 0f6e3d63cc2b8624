//! The `webhooks` section: alert receivers, their payload formats, which
//! alerts they want, delivery settings and defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use super::decode::{Decoder, shown};
use super::prometheus::DEFAULT_TIMEOUT;
use super::secret::SecretSource;
use super::template::check_template;
use super::tree::Node;

/// Default `webhooks[].cooldown`.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(6 * 3600);
/// Default `webhooks[].max_age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Default `webhooks[].min_backoff`: the wait after the first failed attempt.
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Default `webhooks[].max_backoff`: the longest wait between attempts.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// Default `webhooks[].method`.
pub const DEFAULT_METHOD: &str = "POST";

const WEBHOOK_FORMATS: &[&str] = &["slack", "alertmanager", "template"];
/// The alert kinds, and the default of `webhooks[].on`.
const ALERT_KINDS: &[&str] = &["drift", "performance"];
const WEBHOOK_METHODS: &[&str] = &["POST", "PUT", "PATCH"];

/// Payload formats of webhook receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Slack,
    Alertmanager,
    Template,
}

/// Which alerts a receiver wants: every listed field must match (exact values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookMatch {
    pub model: Option<String>,
    pub version: Option<String>,
    pub signal: Option<String>,
    pub detector: Option<String>,
    /// `drift` or `performance`.
    pub kind: Option<String>,
}

/// One alert receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    pub name: String,
    pub format: WebhookFormat,
    /// Never logged or shown: it may embed a token (Slack URLs do).
    pub url: SecretSource,
    /// HTTP method; default POST.
    pub method: String,
    pub headers: BTreeMap<String, String>,
    /// Signing secret for Standard Webhooks headers.
    pub secret: Option<SecretSource>,
    pub send_resolved: bool,
    /// Alert kinds it wants: `drift`, `performance`. Default both.
    pub on: Vec<String>,
    pub matcher: WebhookMatch,
    /// One notification per model per cooldown (template receivers). Default 6h.
    pub cooldown: Duration,
    /// minijinja template of the body (template receivers).
    pub body: Option<String>,
    /// Per-attempt timeout. Default 10s.
    pub timeout: Duration,
    /// Give up on a notification this old. Default 24h.
    pub max_age: Duration,
    /// Wait after the first failed attempt; doubles per attempt. Default 1s.
    pub min_backoff: Duration,
    /// Longest wait between attempts; >= `min_backoff`. Default 5m.
    pub max_backoff: Duration,
}

impl Decoder<'_> {
    pub(super) fn webhooks(&mut self, node: &Node, path: &str) -> Option<Vec<WebhookConfig>> {
        let items = self.sequence(node, path)?;
        let unique = self.unique_names(items, path, "webhook");
        let webhooks = self.each(items, path, Self::webhook);
        webhooks.filter(|_| unique)
    }

    fn webhook(&mut self, node: &Node, path: &str) -> Option<WebhookConfig> {
        self.section(node, path, |d, fields| {
            let name = d.required(fields, "name", Self::non_empty);
            let format = d.required(fields, "format", |d, n, p| {
                d.choice(n, p, "format", WEBHOOK_FORMATS)
                    .map(|f| match f.as_str() {
                        "slack" => WebhookFormat::Slack,
                        "alertmanager" => WebhookFormat::Alertmanager,
                        _ => WebhookFormat::Template,
                    })
            });
            let url = d
                .inline_or_file(fields, ("url", "url_file"), true, |d, n, p| {
                    // The url is checked, then its text kept as written.
                    let url = d.url(n, p);
                    url.and(d.string(n, p))
                        .map(|text| SecretSource::Inline(text.trim().to_owned()))
                })
                .flatten();
            let method = d.optional(fields, "method", DEFAULT_METHOD.to_owned(), Self::method);
            let headers = d.optional(fields, "headers", BTreeMap::new(), Self::headers);
            let secret = d.secret(fields, "secret", "secret_file", false);
            let send_resolved = d.optional(fields, "send_resolved", false, Self::boolean);
            let on = d.optional(
                fields,
                "on",
                ALERT_KINDS.iter().map(|k| k.to_string()).collect(),
                Self::alert_kinds,
            );
            let matcher = d.optional(
                fields,
                "match",
                WebhookMatch::default(),
                Self::webhook_match,
            );
            let cooldown = d.optional(fields, "cooldown", DEFAULT_COOLDOWN, Self::duration);
            let body = d.optional(fields, "body", None, |d, n, p| {
                let body = d.non_empty(n, p)?;
                if let Err(message) = check_template(&body) {
                    d.report(n.line, p, format!("invalid template: {message}"));
                    return None;
                }
                Some(Some(body))
            });
            let timeout = d.optional(fields, "timeout", DEFAULT_TIMEOUT, Self::positive_duration);
            let max_age = d.optional(fields, "max_age", DEFAULT_MAX_AGE, Self::positive_duration);
            let min_backoff = d.optional(
                fields,
                "min_backoff",
                DEFAULT_MIN_BACKOFF,
                Self::positive_duration,
            );
            let max_backoff = d.optional(
                fields,
                "max_backoff",
                DEFAULT_MAX_BACKOFF,
                Self::positive_duration,
            );
            let (min_backoff, max_backoff) = (min_backoff?, max_backoff?);
            if max_backoff < min_backoff {
                let line = fields
                    .key_node("max_backoff")
                    .map_or(fields.line, |k| k.line);
                d.report(
                    line,
                    &fields.path("max_backoff"),
                    "must not be shorter than min_backoff",
                );
                return None;
            }
            let (format, body) = (format?, body?);
            match (format, &body) {
                (WebhookFormat::Template, None) => {
                    d.report(
                        fields.line,
                        &fields.path("body"),
                        "missing required key: format template needs a body",
                    );
                    return None;
                }
                (WebhookFormat::Slack | WebhookFormat::Alertmanager, Some(_)) => {
                    let line = fields.key_node("body").map_or(fields.line, |k| k.line);
                    d.report(
                        line,
                        &fields.path("body"),
                        "body only applies to format template",
                    );
                    return None;
                }
                _ => {}
            }
            Some(WebhookConfig {
                name: name?,
                format,
                url: url?,
                method: method?,
                headers: headers?,
                secret: secret?,
                send_resolved: send_resolved?,
                on: on?,
                matcher: matcher?,
                cooldown: cooldown?,
                body,
                timeout: timeout?,
                max_age: max_age?,
                min_backoff,
                max_backoff,
            })
        })
    }

    /// An HTTP method a receiver may use, upper-cased.
    fn method(&mut self, node: &Node, path: &str) -> Option<String> {
        let scalar = self.scalar(node, path, "an http method")?;
        let method = scalar.text.to_ascii_uppercase();
        if WEBHOOK_METHODS.contains(&method.as_str()) {
            return Some(method);
        }
        self.report(
            node.line,
            path,
            format!(
                "unsupported method {}; valid methods: {}",
                scalar.describe(),
                WEBHOOK_METHODS.join(", ")
            ),
        );
        None
    }

    fn alert_kinds(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let items = self.sequence(node, path)?;
        if items.is_empty() {
            self.report(
                node.line,
                path,
                format!("must not be empty; valid kinds: {}", ALERT_KINDS.join(", ")),
            );
            return None;
        }
        let mut kinds: Vec<String> = Vec::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            match self.choice(item, &item_path, "alert kind", ALERT_KINDS) {
                Some(kind) if kinds.contains(&kind) => {
                    self.report(
                        item.line,
                        &item_path,
                        format!("duplicate alert kind {}", shown(item)),
                    );
                    ok = false;
                }
                Some(kind) => kinds.push(kind),
                None => ok = false,
            }
        }
        ok.then_some(kinds)
    }

    fn webhook_match(&mut self, node: &Node, path: &str) -> Option<WebhookMatch> {
        self.section(node, path, |d, fields| {
            let text = |d: &mut Self, n: &Node, p: &str| d.string(n, p).map(Some);
            let model = d.optional(fields, "model", None, text);
            let version = d.optional(fields, "version", None, text);
            let signal = d.optional(fields, "signal", None, text);
            let detector = d.optional(fields, "detector", None, text);
            let kind = d.optional(fields, "kind", None, |d, n, p| {
                d.choice(n, p, "alert kind", ALERT_KINDS).map(Some)
            });
            Some(WebhookMatch {
                model: model?,
                version: version?,
                signal: signal?,
                detector: detector?,
                kind: kind?,
            })
        })
    }
}
