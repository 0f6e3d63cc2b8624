//! A receiver configured under `webhooks:`: its URL, headers, signer and
//! template resolved once at start, and which alert notices it wants.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::payload::{self, Links, Template};
use crate::alerting::{AlertNotice, Transition};
use crate::config::{SecretSource, WebhookConfig, WebhookFormat, WebhookMatch};

/// Why a receiver could not be resolved. The message names the problem,
/// never a URL or a secret.
#[derive(Debug, thiserror::Error)]
#[error("webhooks {receiver:?}: {message}")]
pub struct ReceiverError {
    pub receiver: String,
    pub message: String,
}

/// A receiver with its URL, headers, signer and template resolved.
pub struct Receiver {
    pub config: WebhookConfig,
    /// Never logged: it may embed a token.
    pub(super) url: reqwest::Url,
    pub(super) method: reqwest::Method,
    pub(super) headers: HeaderMap,
    pub(super) signer: Option<standardwebhooks::Webhook>,
    template: Option<Template>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// The signer of a secret: `whsec_<base64>` as Standard Webhooks writes
/// secrets, any other text as raw key bytes.
pub fn signer(secret: &str) -> Result<standardwebhooks::Webhook, String> {
    if secret.starts_with("whsec_") {
        standardwebhooks::Webhook::new(secret)
            .map_err(|_| "invalid secret: whsec_ must be followed by base64".to_owned())
    } else if secret.is_empty() {
        Err("the signing secret is empty".to_owned())
    } else {
        standardwebhooks::Webhook::from_bytes(secret.as_bytes().to_vec())
            .map_err(|_| "invalid secret".to_owned())
    }
}

impl Receiver {
    /// Resolves a receiver's URL, headers, secret and template.
    pub fn new(config: WebhookConfig) -> Result<Receiver, ReceiverError> {
        let fail = |message: String| ReceiverError {
            receiver: config.name.clone(),
            message,
        };
        let resolve = |source: &SecretSource, what: &str| {
            source.resolve().map_err(|error| match source {
                SecretSource::File(path) => fail(format!(
                    "cannot read the {what} file {}: {error}",
                    path.display()
                )),
                SecretSource::Inline(_) => fail(format!("cannot read the {what}")),
            })
        };
        let url_text = resolve(&config.url, "url")?;
        let url = reqwest::Url::parse(url_text.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                fail("invalid url: expected an http or https url with a host".to_owned())
            })?;
        let method = reqwest::Method::from_bytes(config.method.as_bytes())
            .map_err(|_| fail("invalid method".to_owned()))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| fail(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| fail(format!("invalid value of header {name}")))?;
            headers.insert(name, value);
        }
        let signer = match &config.secret {
            Some(secret) => Some(signer(&resolve(secret, "secret")?).map_err(fail)?),
            None => None,
        };
        let template = match &config.body {
            Some(body) => {
                Some(Template::compile(body).map_err(|e| fail(format!("invalid template: {e}")))?)
            }
            None => None,
        };
        Ok(Receiver {
            config,
            url,
            method,
            headers,
            signer,
            template,
        })
    }

    /// Whether this receiver wants a notice: its kind is in `on`, every
    /// `match` field equals the alert's, and resolutions only with
    /// `send_resolved`.
    pub fn wants(&self, notice: &AlertNotice) -> bool {
        (notice.transition != Transition::Resolved || self.config.send_resolved)
            && self.config.on.iter().any(|k| k == notice.kind.as_str())
            && matches(&self.config.matcher, notice)
    }

    /// The body of one notification.
    pub fn render(&self, id: &str, notice: &AlertNotice, links: &Links) -> Result<String, String> {
        match self.config.format {
            WebhookFormat::Slack => Ok(payload::slack(notice, links).to_string()),
            WebhookFormat::Alertmanager => {
                Ok(payload::alertmanager(&self.config.name, notice, links).to_string())
            }
            WebhookFormat::Template => {
                let context = payload::template_context(&self.config.name, id, notice, links);
                self.template
                    .as_ref()
                    .expect("template receivers have a template")
                    .render(&context)
            }
        }
    }
}

/// Whether every given field of `matcher` equals the notice's.
pub fn matches(matcher: &WebhookMatch, notice: &AlertNotice) -> bool {
    let key = &notice.key;
    let same = |want: &Option<String>, have: Option<&str>| {
        want.as_deref().is_none_or(|want| have == Some(want))
    };
    same(&matcher.model, key.label("model"))
        && same(&matcher.version, key.label("version"))
        && same(&matcher.signal, Some(&key.signal))
        && same(&matcher.detector, Some(&key.detector))
        && same(&matcher.kind, Some(notice.kind.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_needs_every_given_field_and_the_kind() {
        let notice = payload::sample_notice();
        let matcher =
            |model: Option<&str>, signal: Option<&str>, kind: Option<&str>| WebhookMatch {
                model: model.map(str::to_owned),
                signal: signal.map(str::to_owned),
                kind: kind.map(str::to_owned),
                ..WebhookMatch::default()
            };
        #[rustfmt::skip]
        let cases = [
            (matcher(None, None, None), true),
            (matcher(Some("fraud"), None, None), true),
            (matcher(Some("churn"), None, None), false),
            (matcher(Some("fraud"), Some("confidence"), Some("drift")), true),
            (matcher(Some("fraud"), Some("latency"), None), false),
            (matcher(None, None, Some("performance")), false),
            (WebhookMatch { version: Some("v3".into()), detector: Some("psi".into()), ..WebhookMatch::default() }, true),
            (WebhookMatch { version: Some("v2".into()), ..WebhookMatch::default() }, false),
        ];
        for (matcher, expected) in cases {
            assert_eq!(matches(&matcher, &notice), expected, "{matcher:?}");
        }
    }

    fn receiver(extra: &str) -> Receiver {
        let text = format!(
            "prometheus: {{url: 'http://p:9090'}}\nmonitors: [{{name: m, signals: {{confidence: {{histogram: h, detectors: [{{type: psi}}]}}}}}}]\nwebhooks:\n  - {{name: r, format: slack, url: 'https://hooks.example/x'{extra}}}\n"
        );
        let config = crate::config::parse_str(&text, "t.yml").unwrap();
        Receiver::new(config.webhooks[0].clone()).unwrap()
    }

    #[test]
    fn receivers_filter_on_kinds_and_resolutions() {
        let firing = payload::sample_notice();
        let resolved = AlertNotice {
            transition: Transition::Resolved,
            ..payload::sample_notice()
        };
        assert!(receiver("").wants(&firing));
        assert!(!receiver("").wants(&resolved));
        assert!(receiver(", send_resolved: true").wants(&resolved));
        assert!(!receiver(", on: [performance]").wants(&firing));
        assert!(receiver(", match: {model: fraud}").wants(&firing));
    }

    #[test]
    fn secrets_are_base64_after_whsec_or_raw_bytes() {
        let raw = signer("plain-secret").unwrap();
        let encoded = signer("whsec_cGxhaW4tc2VjcmV0").unwrap(); // base64("plain-secret")
        assert_eq!(
            raw.sign("msg_1", 1, b"{}").unwrap(),
            encoded.sign("msg_1", 1, b"{}").unwrap()
        );
        assert!(signer("whsec_***").is_err());
        assert!(signer("").is_err());
    }
}
