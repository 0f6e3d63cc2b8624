//! The language of `webhooks[].body`: minijinja with undefined variables as
//! errors, the variables a body sees ([`TemplateContext`]), and the check
//! config loading runs on every body ([`check_template`]).
//!
//! The variables are defined here, in the config layer, and filled in by the
//! webhook sink (`sinks::webhooks::payload::template_context`), so that a
//! body is checked against exactly what it will see without the config
//! depending on the sink.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// What a body template sees: `id`, `receiver` and `alert`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateContext {
    /// The notification's `webhook-id`.
    pub id: String,
    /// The receiver's name.
    pub receiver: String,
    pub alert: TemplateAlert,
}

/// The `alert` variable of a body template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Whether this is a repeat notification of a firing alert.
    pub repeat: bool,
    /// `drift` or `performance`.
    pub kind: String,
    /// The `model` label, empty when the monitor has none.
    pub model: String,
    /// The `version` label, empty when the monitor has none.
    pub version: String,
    /// Every `group_by` label of the model.
    pub labels: BTreeMap<String, String>,
    pub monitor: String,
    pub signal: String,
    pub detector: String,
    pub score: f64,
    pub threshold: f64,
    pub p_value: Option<f64>,
    pub current_samples: f64,
    pub reference_samples: f64,
    /// RFC 3339 with milliseconds, as every time here.
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub evaluated_at: String,
    /// The one-line summary Slack and Alertmanager payloads carry.
    pub summary: String,
    /// Alertmanager's fingerprint of the alert's labels.
    pub fingerprint: String,
    /// A Prometheus graph of the score, when `prometheus.external_url` is set.
    pub prometheus_url: Option<String>,
    /// The Grafana dashboard, when `grafana_url` is set.
    pub grafana_url: Option<String>,
    pub confidence_mean: Option<f64>,
    pub p99_latency_ms: Option<f64>,
    /// What moved, in one line (`docs/statistics.md`, section 10); `None`
    /// when the detection has no explanation.
    pub explanation: Option<String>,
    /// The same explanation as an object: `method`, `buckets` (`range`,
    /// `lower`, `upper`, `reference_share`, `current_share`,
    /// `contribution`), `cdf_gap` (KS), `mean`, `p50`, `p95`, `p99`
    /// (`reference`, `current`, `change`, `direction`) and `summary`.
    pub explanation_detail: Option<Value>,
}

impl TemplateContext {
    /// The context of a firing drift alert, which config loading renders
    /// every body for (`payload::sample_notice` as the sink fills it in).
    pub fn sample() -> TemplateContext {
        let labels = BTreeMap::from([
            ("model".to_owned(), "fraud".to_owned()),
            ("version".to_owned(), "v3".to_owned()),
        ]);
        let at = "2026-01-01T00:00:00.000Z".to_owned();
        TemplateContext {
            id: "msg_check".to_owned(),
            receiver: "check".to_owned(),
            alert: TemplateAlert {
                status: "firing".to_owned(),
                repeat: false,
                kind: "drift".to_owned(),
                model: "fraud".to_owned(),
                version: "v3".to_owned(),
                labels,
                monitor: "classifiers".to_owned(),
                signal: "confidence".to_owned(),
                detector: "psi".to_owned(),
                score: 0.42,
                threshold: 0.1,
                p_value: Some(1.5e-9),
                current_samples: 1200.0,
                reference_samples: 9800.0,
                starts_at: at.clone(),
                ends_at: None,
                evaluated_at: at,
                summary:
                    "[FIRING] drift on fraud v3: confidence psi score 0.4200 >= threshold 0.1000"
                        .to_owned(),
                fingerprint: "6318e34549645939".to_owned(),
                prometheus_url: None,
                grafana_url: None,
                confidence_mean: Some(0.71),
                p99_latency_ms: Some(85.0),
                explanation: Some(SAMPLE_EXPLANATION.to_owned()),
                explanation_detail: Some(sample_explanation_detail()),
            },
        }
    }

    /// The context as the JSON value templates are rendered with.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("strings, numbers and string-keyed maps serialize")
    }
}

/// The sample's one-line explanation.
const SAMPLE_EXPLANATION: &str =
    "confidence mass moved from 0.90-1.00 (62% -> 41%) to 0.70-0.80 (5% -> 19%); p50 0.93 -> 0.81";

/// The sample's explanation object.
fn sample_explanation_detail() -> Value {
    let bucket = |range: &str, lower: f64, upper: f64, before: f64, after: f64, term: f64| {
        serde_json::json!({"range": range, "lower": lower, "upper": upper,
            "reference_share": before, "current_share": after, "contribution": term})
    };
    let shift = |reference: f64, current: f64, direction: &str| {
        serde_json::json!({"reference": reference, "current": current,
            "change": current - reference, "direction": direction})
    };
    serde_json::json!({
        "method": "psi",
        "buckets": [
            bucket("0.70-0.80", 0.7, 0.8, 0.05, 0.19, 0.1869),
            bucket("0.90-1.00", 0.9, 1.0, 0.62, 0.41, 0.0868),
        ],
        "mean": shift(0.88, 0.71, "down"),
        "p50": shift(0.93, 0.81, "down"),
        "p95": shift(0.99, 0.98, "down"),
        "p99": shift(1.0, 1.0, "unchanged"),
        "summary": SAMPLE_EXPLANATION,
    })
}

/// A compiled body template. Undefined variables are errors, so a typo such
/// as `alert.modle` fails at config load, not at 3 am.
pub struct Template {
    environment: minijinja::Environment<'static>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Template")
    }
}

impl Template {
    /// Compiles `body`; the error names the line and the problem.
    pub fn compile(body: &str) -> Result<Template, String> {
        let mut environment = minijinja::Environment::new();
        environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        environment
            .add_template_owned("body", body.to_owned())
            .map_err(template_error)?;
        Ok(Template { environment })
    }

    /// Renders the body for one notification.
    pub fn render(&self, context: &Value) -> Result<String, String> {
        self.environment
            .get_template("body")
            .and_then(|template| template.render(minijinja::value::Serde(context)))
            .map_err(template_error)
    }
}

fn template_error(error: minijinja::Error) -> String {
    let mut message = error.kind().to_string();
    if let Some(detail) = error.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    if let Some(line) = error.line() {
        message.push_str(&format!(" (template line {line})"));
    }
    message.to_lowercase()
}

/// Compiles `body`, checks every variable it reads against the context
/// (`alert.modle` is an error even where strict undefined lets it pass,
/// such as in a filter), and renders it for [`TemplateContext::sample`]:
/// what config loading checks.
pub fn check_template(body: &str) -> Result<(), String> {
    let template = Template::compile(body)?;
    let sample = TemplateContext::sample().to_value();
    let compiled = template
        .environment
        .get_template("body")
        .map_err(template_error)?;
    let mut variables: Vec<String> = compiled.undeclared_variables(true).into_iter().collect();
    variables.sort();
    for variable in variables {
        let mut parts = variable.split('.');
        let top = parts.next().unwrap_or_default();
        const GLOBALS: [&str; 5] = ["range", "dict", "namespace", "debug", "cycler"];
        let known = match sample.get(top) {
            Some(value) => parts
                .next()
                .is_none_or(|field| !value.is_object() || value.get(field).is_some()),
            None => GLOBALS.contains(&top) || top == "joiner",
        };
        if !known {
            return Err(format!(
                "unknown variable {variable}; known: id, receiver, alert.{{{}}}",
                sample["alert"]
                    .as_object()
                    .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            ));
        }
    }
    template.render(&sample).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_problems_are_found_at_compile_or_sample_render() {
        #[rustfmt::skip]
        let cases: Vec<(&str, Result<(), &str>)> = vec![
            (r#"{"model": {{ alert.model | tojson }}}"#, Ok(())),
            ("{{ alert.model ", Err("syntax error")),
            ("{{ alert.modle }}", Err("unknown variable alert.modle")),
            ("{{ alert.modle | tojson }}", Err("unknown variable alert.modle")),
            ("{{ allert.model }}", Err("unknown variable allert")),
            ("{% for k, v in alert.labels | items %}{{ k }}={{ v }}{% endfor %}", Ok(())),
            ("{% if alert.score > 1 %}x", Err("syntax error")),
            ("{{ alert.model | nosuchfilter }}", Err("unknown filter")),
            ("{{ id }} {{ receiver }} {{ alert.labels.version }}", Ok(())),
        ];
        for (body, expected) in cases {
            match (check_template(body), expected) {
                (Ok(()), Ok(())) => {}
                (Err(message), Err(part)) => assert!(message.contains(part), "{body}: {message}"),
                (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
            }
        }
    }
}
