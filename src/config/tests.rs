//! The config file's behaviours, end to end: each problem's line, key path
//! and message, the defaults filled in, every setting read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const SECRET: &str = "xoxb-SECRET-VALUE";

fn env(name: &str) -> Option<String> {
    match name {
        "PROM_URL" => Some("http://prom:9090".to_owned()),
        "CONCURRENCY" => Some("4".to_owned()),
        "SLACK_WEBHOOK_URL" => Some(format!("https://hooks.slack.com/services/{SECRET}")),
        "BAD_SECRET_URL" => Some(format!("hooks.slack.com/{SECRET}")),
        "PASSWORD" => Some(SECRET.to_owned()),
        "SECRET_DURATION" => Some(SECRET.to_owned()),
        "INJECT" => Some("x\n  injected: true".to_owned()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_str_with_env(text, "/etc/model-monitor/config.yml", &env)
}

/// Problems as `line: path: message`.
fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(error) => error
            .problems
            .iter()
            .map(|p| {
                assert_eq!(p.file, "/etc/model-monitor/config.yml");
                assert!(!p.message.ends_with('.'), "trailing period: {p}");
                assert!(
                    !p.message.starts_with(|c: char| c.is_ascii_uppercase()),
                    "capitalised: {p}"
                );
                let line = p.line.map_or("-".to_owned(), |l| l.to_string());
                if p.path.is_empty() {
                    format!("{line}: {}", p.message)
                } else {
                    format!("{line}: {}: {}", p.path, p.message)
                }
            })
            .collect(),
    }
}

fn v(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|line| line.to_string()).collect()
}

fn check(cases: &[(&str, String, Vec<String>)]) {
    for (name, text, expected) in cases {
        let actual = problems(text);
        assert_eq!(actual, *expected, "case {name}:\n{text}");
    }
}

/// The smallest valid config, with `extra` lines placed under
/// `prometheus` (line 3 onwards).
fn prom(extra: &str) -> String {
    format!(
        "prometheus:\n  url: http://prom:9090\n{}monitors:\n  - name: m\n    signals:\n      c:\n        histogram: h\n        detectors: [{{type: psi}}]\n",
        indent(extra, 2)
    )
}

/// A config whose monitor has `extra` lines from line 5 on.
fn mon(extra: &str) -> String {
    format!(
        "prometheus:\n  url: http://prom:9090\nmonitors:\n  - name: m\n{}    signals:\n      c:\n        histogram: h\n        detectors: [{{type: psi}}]\n",
        indent(extra, 4)
    )
}

/// A config whose only detector (line 8) is `detector`.
fn det(detector: &str) -> String {
    format!(
        "prometheus:\n  url: http://prom:9090\nmonitors:\n  - name: m\n    signals:\n      c:\n        histogram: h\n        detectors: [{detector}]\n"
    )
}

/// A config with a slack webhook `w` (lines 10-12) and `extra` lines from line 13.
fn hook(extra: &str) -> String {
    format!(
        "{}webhooks:\n  - name: w\n    format: slack\n    url: https://hooks.example/x\n{}",
        det("{type: psi}"),
        indent(extra, 4)
    )
}

fn indent(lines: &str, by: usize) -> String {
    lines
        .lines()
        .map(|line| format!("{}{line}\n", " ".repeat(by)))
        .collect()
}

#[test]
fn the_helpers_build_valid_configs() {
    for text in [prom(""), mon(""), det("{type: psi}"), hook("")] {
        assert_eq!(problems(&text), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn structure_problems() {
    let types = DETECTOR_TYPES.join(", ");
    let d = "monitors[0].signals.c.detectors";
    check(&[
        (
            "yaml syntax error",
            "prometheus:\n  url: [http://x\nmonitors: 3\n".to_owned(),
            v(&["3: invalid yaml: illegal placement of ':' indicator"]),
        ),
        (
            "two documents",
            format!("{}---\na: 1\n", det("{type: psi}")),
            v(&["10: invalid yaml: expected one YAML document, found several"]),
        ),
        (
            "empty file",
            "\n".to_owned(),
            v(&["1: the file is empty: prometheus and monitors are required"]),
        ),
        (
            "not a mapping",
            "- a\n".to_owned(),
            v(
                &[
                    "1: expected a mapping of prometheus, evaluation, monitors, webhooks, got a list",
                ],
            ),
        ),
        (
            "unknown top-level key",
            format!("{}alerting: {{}}\n", det("{type: psi}")),
            v(&[
                "9: alerting: unknown key \"alerting\"; allowed keys: prometheus, evaluation, monitors, webhooks, grafana_url, alertmanagers",
            ]),
        ),
        (
            "unknown nested key",
            prom("timeot: 5s"),
            v(&[
                "3: prometheus.timeot: unknown key \"timeot\"; allowed keys: url, timeout, headers, bearer_token_file, basic_auth, max_response_bytes, max_series, max_models, post_threshold_bytes, external_url, flavor, query_params",
            ]),
        ),
        (
            "duplicate key",
            prom("url: http://other"),
            v(&["3: prometheus.url: duplicate key \"url\" (first on line 2)"]),
        ),
        (
            "missing required keys",
            "prometheus: {timeout: 5s}\n".to_owned(),
            v(&[
                "1: prometheus.url: missing required key",
                "1: monitors: missing required key",
            ]),
        ),
        (
            "required key without value",
            "prometheus:\n  url:\nmonitors:\n".to_owned(),
            v(&[
                "2: prometheus.url: missing value",
                "3: monitors: missing value",
            ]),
        ),
        (
            "no monitors",
            "prometheus: {url: http://p}\nmonitors: []\n".to_owned(),
            v(&["2: monitors: at least one monitor is required"]),
        ),
        (
            "no signals",
            "prometheus: {url: http://p}\nmonitors:\n  - name: m\n    signals: {}\n".to_owned(),
            v(&["4: monitors[0].signals: at least one signal is required"]),
        ),
        (
            "no detectors",
            det(""),
            v(&["8: monitors[0].signals.c.detectors: at least one detector is required"]),
        ),
        (
            "wrong types",
            prom("timeout: [1]\nmax_response_bytes: lots\nheaders: [a]"),
            v(&[
                "3: prometheus.timeout: expected a duration such as 30s, got a list",
                "4: prometheus.max_response_bytes: expected an integer, got a string",
                "5: prometheus.headers: expected a mapping, got a list",
            ]),
        ),
        (
            "integer where a duration is expected",
            prom("timeout: 10"),
            v(&[
                "3: prometheus.timeout: expected a duration such as 30s, got an integer (add a unit: ms, s, m, h, d, w, y)",
            ]),
        ),
        (
            "bad duration",
            prom("timeout: 10x"),
            v(&[
                "3: prometheus.timeout: invalid duration \"10x\": expected a number followed by a unit (ms, s, m, h, d, w, y), e.g. 30s or 1h30m",
            ]),
        ),
        (
            "duration units out of order",
            mon("window: 5m1h"),
            v(&[
                "5: monitors[0].window: invalid duration \"5m1h\": units must go from largest to smallest, each once",
            ]),
        ),
        (
            "unknown detector type",
            det("{type: kss}"),
            vec![format!(
                "8: {d}[0].type: unknown detector type \"kss\"; valid detector types: {types}"
            )],
        ),
        (
            "missing detector type",
            det("{name: x}"),
            vec![format!(
                "8: {d}[0].type: missing required key; valid types: {types}"
            )],
        ),
        (
            "detector that is not a mapping",
            det("psi"),
            vec![format!(
                "8: {d}[0]: expected a mapping such as {{type: psi}}, got a string"
            )],
        ),
        (
            "key that does not apply to the type",
            det("{type: psi, quantile: 0.5}"),
            vec![format!(
                "8: {d}[0].quantile: key \"quantile\" does not apply to detector type psi; allowed keys: type, name, threshold, false_alarm_rate, min_effect"
            )],
        ),
        (
            "key no detector type knows",
            det("{type: ks, foo: 1}"),
            vec![format!(
                "8: {d}[0].foo: unknown key \"foo\"; allowed keys for detector type ks: type, name, threshold, false_alarm_rate, min_effect"
            )],
        ),
        (
            "baseline only for zscore",
            det("{type: ks, baseline: {mean: 1, std: 1}}"),
            vec![format!(
                "8: {d}[0].baseline: key \"baseline\" does not apply to detector type ks; allowed keys: type, name, threshold, false_alarm_rate, min_effect"
            )],
        ),
        (
            "threshold does not apply to quantile detectors",
            det("{type: quantile_ratio, quantile: 0.9, max_ratio: 2, threshold: 1}"),
            vec![format!(
                "8: {d}[0].threshold: key \"threshold\" does not apply to detector type quantile_ratio; allowed keys: type, name, quantile, max_ratio"
            )],
        ),
    ]);
}

#[test]
fn each_detector_type_allows_the_keys_its_decoder_reads() {
    let test = "type, name, threshold, false_alarm_rate, min_effect";
    for (detector, allowed) in [
        ("{type: psi", test.to_owned()),
        ("{type: ks", test.to_owned()),
        ("{type: chi_square", test.to_owned()),
        ("{type: zscore", format!("{test}, baseline")),
        ("{type: jensen_shannon", "type, name, threshold".to_owned()),
        ("{type: hellinger", "type, name, threshold".to_owned()),
        ("{type: wasserstein", "type, name, threshold".to_owned()),
        (
            "{type: quantile_ratio, quantile: 0.9, max_ratio: 2",
            "type, name, quantile, max_ratio".to_owned(),
        ),
        (
            "{type: quantile_slo, quantile: 0.9, max: 1",
            "type, name, quantile, max".to_owned(),
        ),
    ] {
        let type_name = detector["{type: ".len()..].split(',').next().unwrap();
        assert_eq!(
            problems(&det(&format!("{detector}, nope: 1}}"))),
            vec![format!(
                "8: monitors[0].signals.c.detectors[0].nope: unknown key \"nope\"; allowed keys for detector type {type_name}: {allowed}"
            )],
        );
    }
}

#[test]
fn impossible_values() {
    let d = "monitors[0].signals.c.detectors";
    let cases = [
            ("negative threshold", det("{type: psi, threshold: -0.1}"), vec![format!("8: {d}[0].threshold: must not be negative, got -0.1")]),
            ("negative wasserstein threshold", det("{type: wasserstein, threshold: -1}"), vec![format!("8: {d}[0].threshold: must not be negative, got -1")]),
            ("js threshold above 1", det("{type: jensen_shannon, threshold: 1.5}"), vec![format!("8: {d}[0].threshold: must be between 0 and 1, got 1.5")]),
            ("quantile 0", det("{type: quantile_ratio, quantile: 0, max_ratio: 2}"), vec![format!("8: {d}[0].quantile: must be between 0 and 1 (exclusive), got 0")]),
            ("quantile 1", det("{type: quantile_slo, quantile: 1, max: 1}"), vec![format!("8: {d}[0].quantile: must be between 0 and 1 (exclusive), got 1")]),
            ("quantile missing", det("{type: quantile_slo, max: 1}"), vec![format!("8: {d}[0].quantile: missing required key")]),
            ("max_ratio 0", det("{type: quantile_ratio, quantile: 0.5, max_ratio: 0}"), vec![format!("8: {d}[0].max_ratio: must be greater than 0, got 0")]),
            ("slo max negative", det("{type: quantile_slo, quantile: 0.5, max: -2}"), vec![format!("8: {d}[0].max: must be greater than 0, got -2")]),
            ("slo max bad duration", det("{type: quantile_slo, quantile: 0.5, max: fast}"), vec![format!("8: {d}[0].max: invalid duration \"fast\": expected a number followed by a unit (ms, s, m, h, d, w, y), e.g. 30s or 1h30m")]),
            ("false_alarm_rate 0", det("{type: ks, false_alarm_rate: 0}"), vec![format!("8: {d}[0].false_alarm_rate: must be between 0 and 1 (exclusive), got 0")]),
            ("false_alarm_rate 1", det("{type: chi_square, false_alarm_rate: 1}"), vec![format!("8: {d}[0].false_alarm_rate: must be between 0 and 1 (exclusive), got 1")]),
            ("negative min_effect", det("{type: zscore, min_effect: -1}"), vec![format!("8: {d}[0].min_effect: must not be negative, got -1")]),
            ("non-finite number", det("{type: psi, threshold: .inf}"), vec![format!("8: {d}[0].threshold: must be a finite number")]),
            ("zscore std 0", det("{type: zscore, baseline: {mean: 0.8, std: 0}}"), vec![format!("8: {d}[0].baseline.std: must be greater than 0, got 0")]),
            ("zscore baseline mean missing", det("{type: zscore, baseline: {std: 1}}"), vec![format!("8: {d}[0].baseline.mean: missing required key")]),
            (
                "duplicate detector type without names",
                det("{type: psi}, {type: psi}"),
                vec![format!("8: {d}[1]: duplicate detector name \"psi\" (also {d}[0]); set a distinct name on each detector of the same type")],
            ),
            (
                "duplicate detector names",
                det("{type: psi, name: a}, {type: ks, name: a}"),
                vec![format!("8: {d}[1].name: duplicate detector name \"a\" (also {d}[0])")],
            ),
            ("alerting for 0", mon("alerting: {for: 0, resolve_after: x, repeat_interval: 0s, every: 1}"), vec![
                "5: monitors[0].alerting.every: unknown key \"every\"; allowed keys: for, resolve_after, repeat_interval".to_owned(),
                "5: monitors[0].alerting.for: must be at least 1, got 0".to_owned(),
                "5: monitors[0].alerting.resolve_after: expected an integer, got a string".to_owned(),
                "5: monitors[0].alerting.repeat_interval: must be greater than 0".to_owned(),
            ]),
            ("empty group_by", mon("group_by: []"), vec!["5: monitors[0].group_by: must not be empty: give the labels that identify a model".to_owned()]),
            (
                "duplicate group_by entries",
                mon("group_by: [model, model]"),
                vec!["5: monitors[0].group_by[1]: duplicate label \"model\"".to_owned()],
            ),
            ("le in group_by", mon("group_by: [model, le]"), vec!["5: monitors[0].group_by[1]: le cannot be in group_by: it is the bucket label".to_owned()]),
            ("metric name in group_by", mon("group_by: [model, __name__]"), vec!["5: monitors[0].group_by[1]: __name__ cannot be in group_by: it is the metric name, not a label /metrics can carry".to_owned()]),
            ("exported label in group_by", mon("group_by: [model, signal]"), vec!["5: monitors[0].group_by[1]: signal cannot be in group_by: model-monitor exports its own signal label".to_owned()]),
            ("invalid label", mon("group_by: [model-name]"), vec!["5: monitors[0].group_by[0]: invalid label name \"model-name\"".to_owned()]),
            ("window 0", mon("window: 0s"), vec!["5: monitors[0].window: must be greater than 0".to_owned()]),
            ("negative min_samples", mon("min_samples: -1"), vec!["5: monitors[0].min_samples: must not be negative, got -1".to_owned()]),
            ("interval below 1s", format!("{}evaluation: {{interval: 500ms}}\n", det("{type: psi}")), vec!["9: evaluation.interval: must be at least 1s".to_owned()]),
            ("concurrency 0", format!("{}evaluation:\n  concurrency: 0\n", det("{type: psi}")), vec!["10: evaluation.concurrency: must be at least 1, got 0".to_owned()]),
            ("max_response_bytes 0", prom("max_response_bytes: 0"), vec!["3: prometheus.max_response_bytes: must be at least 1, got 0".to_owned()]),
            ("max_series 0", prom("max_series: 0"), vec!["3: prometheus.max_series: must be at least 1, got 0".to_owned()]),
            ("max_models 0", prom("max_models: 0"), vec!["3: prometheus.max_models: must be at least 1, got 0".to_owned()]),
            (
                "duplicate monitor names",
                format!("{}  - name: m\n    signals: {{c: {{histogram: h, detectors: [{{type: ks}}]}}}}\n", det("{type: psi}")),
                vec!["9: monitors[1].name: duplicate monitor name \"m\" (first on line 4)".to_owned()],
            ),
            (
                "duplicate webhook names even when one has other problems",
                format!("{}  - name: w\n    format: teams\n    url: https://x\n", hook("")),
                vec![
                    "13: webhooks[1].name: duplicate webhook name \"w\" (first on line 10)".to_owned(),
                    "14: webhooks[1].format: unknown format \"teams\"; valid formats: slack, alertmanager, template".to_owned(),
                ],
            ),
            ("reference without a kind", mon("reference: {}"), vec!["5: monitors[0].reference: give exactly one of offset, offsets, window, range, baseline_file".to_owned()]),
            (
                "reference with several kinds",
                mon("reference: {offset: 1d, baseline_file: b.yml}"),
                vec!["5: monitors[0].reference: give exactly one of offset, offsets, window, range, baseline_file, found offset and baseline_file".to_owned()],
            ),
            ("reference offset 0", mon("reference: {offset: 0s}"), vec!["5: monitors[0].reference.offset: must be greater than 0".to_owned()]),
            (
                "range start after end",
                mon("reference:\n  range: {start: 2024-05-02T00:00:00Z, end: 2024-05-01T00:00:00Z}"),
                vec!["6: monitors[0].reference.range: start must be before end".to_owned()],
            ),
            (
                "bad timestamp",
                mon("reference:\n  range:\n    start: 2024-05-01\n    end: 2024-05-02T00:00:00Z"),
                vec!["7: monitors[0].reference.range.start: invalid RFC 3339 timestamp \"2024-05-01\": premature end of input (e.g. 2024-05-01T00:00:00Z)".to_owned()],
            ),
            ("invalid prometheus url", det("{type: psi}").replace("http://prom:9090", "'localhost:9090'"), vec!["2: prometheus.url: invalid url: expected an http or https url with a host".to_owned()]),
            ("invalid external url", prom("external_url: ://x"), vec!["3: prometheus.external_url: invalid url: relative URL without a base".to_owned()]),
            ("invalid selector", mon("selector: '{namespace=ml}'"), vec!["5: monitors[0].selector: invalid selector: matcher 1: expected a quoted value after namespace".to_owned()]),
            ("unbalanced selector", mon("selector: '{a=\"b\"'"), vec!["5: monitors[0].selector: invalid selector: unbalanced braces".to_owned()]),
            ("histogram with suffix", det("{type: psi}").replace("histogram: h", "histogram: h_bucket"), vec!["7: monitors[0].signals.c.histogram: give the histogram's base name, without the _bucket suffix".to_owned()]),
            ("invalid metric name", det("{type: psi}").replace("histogram: h", "histogram: my-metric"), vec!["7: monitors[0].signals.c.histogram: invalid metric name \"my-metric\"".to_owned()]),
            ("bearer and basic auth", prom("bearer_token_file: t\nbasic_auth: {username: u, password_file: p}"), vec!["4: prometheus.basic_auth: set at most one of bearer_token_file and basic_auth".to_owned()]),
            ("password twice", prom("basic_auth: {username: u, password: x, password_file: p}"), vec!["3: prometheus.basic_auth.password_file: set only one of password and password_file".to_owned()]),
            ("password missing", prom("basic_auth: {username: u}"), vec!["3: prometheus.basic_auth.password: missing required key: give one of password and password_file".to_owned()]),
            ("invalid header name", prom("headers: {\"X Bad\": a}"), vec!["3: prometheus.headers.X Bad: invalid header name \"X Bad\"".to_owned()]),
            ("url and url_file", hook("url_file: /run/url"), vec!["13: webhooks[0].url_file: set only one of url and url_file".to_owned()]),
            ("neither url nor url_file", hook("").replace("    url: https://hooks.example/x\n", ""), vec!["10: webhooks[0].url: missing required key: give one of url and url_file".to_owned()]),
            ("secret twice", hook("secret: a\nsecret_file: b"), vec!["14: webhooks[0].secret_file: set only one of secret and secret_file".to_owned()]),
            ("body on slack", hook("body: hi"), vec!["13: webhooks[0].body: body only applies to format template".to_owned()]),
            ("template without body", hook("").replace("format: slack", "format: template"), vec!["10: webhooks[0].body: missing required key: format template needs a body".to_owned()]),
            ("unclosed template", hook("body: '{{ alert.model '").replace("format: slack", "format: template"), vec!["13: webhooks[0].body: invalid template: syntax error: unexpected end of input, expected end of variable block (template line 1)".to_owned()]),
            ("template with a misspelt variable", hook("body: '{\"m\": {{ alert.modle | tojson }}}'").replace("format: slack", "format: template"), vec!["13: webhooks[0].body: invalid template: unknown variable alert.modle; known: id, receiver, alert.{confidence_mean, current_samples, detector, ends_at, evaluated_at, explanation, explanation_detail, fingerprint, grafana_url, kind, labels, model, monitor, p99_latency_ms, p_value, prometheus_url, reference_samples, repeat, score, signal, starts_at, status, summary, threshold, version}".to_owned()]),
            ("backoffs out of order", hook("min_backoff: 1m\nmax_backoff: 10s"), vec!["14: webhooks[0].max_backoff: must not be shorter than min_backoff".to_owned()]),
            ("zero backoff", hook("min_backoff: 0s"), vec!["13: webhooks[0].min_backoff: must be greater than 0".to_owned()]),
            ("bad on", hook("on: [drift, drift, retrain]"), vec!["13: webhooks[0].on[1]: duplicate alert kind \"drift\"".to_owned(), "13: webhooks[0].on[2]: unknown alert kind \"retrain\"; valid alert kinds: drift, performance".to_owned()]),
            ("empty on", hook("on: []"), vec!["13: webhooks[0].on: must not be empty; valid kinds: drift, performance".to_owned()]),
            ("bad match", hook("match: {kind: x, team: y}"), vec!["13: webhooks[0].match.team: unknown key \"team\"; allowed keys: model, version, signal, detector, kind".to_owned(), "13: webhooks[0].match.kind: unknown alert kind \"x\"; valid alert kinds: drift, performance".to_owned()]),
            ("bad method", hook("method: DELETE"), vec!["13: webhooks[0].method: unsupported method \"DELETE\"; valid methods: POST, PUT, PATCH".to_owned()]),
            ("send_resolved not a bool", hook("send_resolved: yes"), vec!["13: webhooks[0].send_resolved: expected true or false, got a string".to_owned()]),
            ("webhook timeout 0", hook("timeout: 0s"), vec!["13: webhooks[0].timeout: must be greater than 0".to_owned()]),
        ];
    check(&cases);
}

#[test]
fn fills_in_defaults() {
    let config = parse(&det("{type: psi}, {type: ks}, {type: chi_square}, {type: zscore}, {type: jensen_shannon}, {type: hellinger}, {type: wasserstein}")).unwrap();
    assert_eq!(
        config.prometheus,
        PrometheusConfig::new(url::Url::parse("http://prom:9090").unwrap())
    );
    assert_eq!(
        config.evaluation,
        EvaluationConfig {
            interval: Duration::from_secs(30),
            concurrency: 8,
            query_offset: None,
        }
    );
    assert!(config.webhooks.is_empty());
    let monitor = &config.monitors[0];
    assert_eq!(monitor.selector, "");
    assert_eq!(monitor.group_by, ["model", "version"]);
    assert_eq!(monitor.window, Duration::from_secs(300));
    assert_eq!(
        monitor.reference,
        ReferenceConfig::Offset(Duration::from_secs(7 * 86_400))
    );
    assert_eq!(monitor.min_samples, 100.0);
    let rule = |min_effect| TestRule {
        threshold: None,
        false_alarm_rate: 0.001,
        min_effect,
    };
    let detectors: Vec<(String, DetectorKind)> = monitor.signals["c"]
        .detectors
        .iter()
        .map(|d| (d.name.clone(), d.kind.clone()))
        .collect();
    assert_eq!(
        detectors,
        vec![
            ("psi".to_owned(), DetectorKind::Psi(rule(0.1))),
            ("ks".to_owned(), DetectorKind::Ks(rule(0.1))),
            ("chi_square".to_owned(), DetectorKind::ChiSquare(rule(0.1))),
            (
                "zscore".to_owned(),
                DetectorKind::ZScore {
                    rule: rule(0.1),
                    baseline: None
                }
            ),
            (
                "jensen_shannon".to_owned(),
                DetectorKind::JensenShannon { threshold: 0.1 }
            ),
            (
                "hellinger".to_owned(),
                DetectorKind::Hellinger { threshold: 0.1 }
            ),
            (
                "wasserstein".to_owned(),
                DetectorKind::Wasserstein { threshold: 0.1 }
            ),
        ]
    );
    let webhook = &parse(&hook("")).unwrap().webhooks[0];
    assert_eq!(webhook.format, WebhookFormat::Slack);
    assert_eq!(
        webhook.url,
        SecretSource::Inline("https://hooks.example/x".to_owned())
    );
    assert_eq!(webhook.method, "POST");
    assert_eq!(webhook.on, ["drift", "performance"]);
    assert_eq!(webhook.matcher, WebhookMatch::default());
    assert!(!webhook.send_resolved);
    assert_eq!(webhook.secret, None);
    assert_eq!(webhook.body, None);
    assert_eq!(webhook.cooldown, Duration::from_secs(6 * 3600));
    assert_eq!(webhook.timeout, Duration::from_secs(10));
    assert_eq!(webhook.max_age, Duration::from_secs(24 * 3600));
}

#[test]
fn reads_every_setting() {
    let text = r#"
prometheus:
  url: ${PROM_URL}
  timeout: 3s
  headers: {X-Scope-OrgID: team-a}
  basic_auth: {username: u, password: "${PASSWORD}"}
  max_response_bytes: 1000
  max_series: 300
  max_models: 20
  post_threshold_bytes: 0
  external_url: https://prom.example
evaluation: {interval: 1s, concurrency: "${CONCURRENCY}"}
monitors:
  - name: m
    selector: ' {namespace="ml", job=~"api.*$"} '
    group_by: [model]
    window: 1m
    reference: {baseline_file: baselines/m.yml}
    min_samples: 0
    signals:
      latency:
        histogram: model_request_duration_seconds
        detectors:
          - {type: quantile_ratio, quantile: 0.99, max_ratio: 1.5}
          - {type: quantile_slo, quantile: 0.99, max: 250ms}
          - {type: quantile_slo, name: p50, quantile: 0.5, max: 2}
          - {type: zscore, threshold: 3, baseline: {mean: 0.1, std: 0.02}}
          - {type: psi, threshold: auto, false_alarm_rate: 0.01, min_effect: 0.2}
  - name: n
    selector: job="x"
    reference: {range: {start: "2024-05-01T00:00:00Z", end: "2024-05-02T00:00:00+02:00"}}
    signals: {c: {histogram: h, detectors: [{type: ks}]}}
webhooks:
  - name: retrain
    format: template
    url_file: secrets/url
    method: put
    headers: {Authorization: "Bearer ${PASSWORD}"}
    secret_file: /run/secret
    send_resolved: true
    on: [drift]
    match: {model: fraud, kind: drift}
    cooldown: 0s
    body: '{"model": "{{ alert.model }}"}'
    timeout: 1s
    max_age: 1h
"#;
    let config = parse(text).unwrap();
    assert_eq!(config.prometheus.url.as_str(), "http://prom:9090/");
    assert_eq!(config.prometheus.timeout, Duration::from_secs(3));
    assert_eq!(config.prometheus.headers["X-Scope-OrgID"], "team-a");
    assert_eq!(
        config.prometheus.basic_auth,
        Some(BasicAuth {
            username: "u".to_owned(),
            password: SecretSource::Inline(SECRET.to_owned())
        })
    );
    assert_eq!(config.prometheus.max_response_bytes, 1000);
    assert_eq!(
        (config.prometheus.max_series, config.prometheus.max_models),
        (300, 20)
    );
    assert_eq!(config.prometheus.post_threshold_bytes, 0);
    assert_eq!(
        config
            .prometheus
            .external_url
            .as_ref()
            .map(url::Url::as_str),
        Some("https://prom.example/")
    );
    assert_eq!(
        config.evaluation,
        EvaluationConfig {
            interval: Duration::from_secs(1),
            concurrency: 4,
            query_offset: None,
        }
    );
    let m = &config.monitors[0];
    assert_eq!(m.selector, r#"namespace="ml", job=~"api.*$""#);
    assert_eq!(m.group_by, ["model"]);
    assert_eq!(m.window, Duration::from_secs(60));
    assert_eq!(
        m.reference,
        ReferenceConfig::BaselineFile(PathBuf::from("/etc/model-monitor/baselines/m.yml"))
    );
    assert_eq!(m.min_samples, 0.0);
    let kinds: Vec<&DetectorKind> = m.signals["latency"]
        .detectors
        .iter()
        .map(|d| &d.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            &DetectorKind::QuantileRatio {
                quantile: 0.99,
                max_ratio: 1.5
            },
            &DetectorKind::QuantileSlo {
                quantile: 0.99,
                max: 0.25
            },
            &DetectorKind::QuantileSlo {
                quantile: 0.5,
                max: 2.0
            },
            &DetectorKind::ZScore {
                rule: TestRule {
                    threshold: Some(3.0),
                    false_alarm_rate: 0.001,
                    min_effect: 0.1
                },
                baseline: Some(ZScoreBaseline {
                    mean: 0.1,
                    std: 0.02
                })
            },
            &DetectorKind::Psi(TestRule {
                threshold: None,
                false_alarm_rate: 0.01,
                min_effect: 0.2
            }),
        ]
    );
    assert_eq!(m.signals["latency"].detectors[2].name, "p50");
    let n = &config.monitors[1];
    assert_eq!(n.selector, r#"job="x""#);
    assert_eq!(
        n.reference,
        ReferenceConfig::Range {
            start: "2024-05-01T00:00:00Z".parse().unwrap(),
            end: "2024-05-01T22:00:00Z".parse().unwrap(),
        }
    );
    let w = &config.webhooks[0];
    assert_eq!(w.format, WebhookFormat::Template);
    assert_eq!(
        w.url,
        SecretSource::File(PathBuf::from("/etc/model-monitor/secrets/url"))
    );
    assert_eq!(w.method, "PUT");
    assert_eq!(w.headers["Authorization"], format!("Bearer {SECRET}"));
    assert_eq!(
        w.secret,
        Some(SecretSource::File(PathBuf::from("/run/secret")))
    );
    assert!(w.send_resolved);
    assert_eq!(w.on, ["drift"]);
    assert_eq!(
        w.matcher,
        WebhookMatch {
            model: Some("fraud".to_owned()),
            kind: Some("drift".to_owned()),
            ..WebhookMatch::default()
        }
    );
    assert_eq!(w.cooldown, Duration::ZERO);
    assert_eq!(w.body.as_deref(), Some(r#"{"model": "{{ alert.model }}"}"#));
    assert_eq!(w.timeout, Duration::from_secs(1));
    assert_eq!(w.max_age, Duration::from_secs(3600));
}

#[test]
fn expands_environment_variables() {
    // Numbers and booleans from the environment are typed after expansion.
    let config = parse(&format!(
        "{}evaluation: {{concurrency: \"${{CONCURRENCY}}\"}}\n",
        det("{type: psi}").replace("http://prom:9090", "${PROM_URL}")
    ))
    .unwrap();
    assert_eq!(config.evaluation.concurrency, 4);
    assert_eq!(config.prometheus.url.as_str(), "http://prom:9090/");
    // `$$` is a literal `$`; a lone `$` stays as it is.
    let config = parse(&mon(r#"selector: 'a=~"x$$", b=~"y$"'"#)).unwrap();
    assert_eq!(config.monitors[0].selector, r#"a=~"x$", b=~"y$""#);
    // An environment value is one scalar, whatever it contains.
    let config = parse(&mon("name: ${INJECT}").replace("  - name: m\n", "  -\n")).unwrap();
    assert_eq!(config.monitors[0].name, "x\n  injected: true");
    check(&[
        (
            "missing variable",
            prom("timeout: ${TIMEOUT}\nheaders: {A: '${A_VAR}-${B_VAR}'}"),
            v(&[
                "3: prometheus.timeout: environment variable TIMEOUT is not set",
                "4: prometheus.headers.A: environment variable A_VAR is not set",
                "4: prometheus.headers.A: environment variable B_VAR is not set",
            ]),
        ),
        (
            "unterminated reference",
            mon("selector: ${OOPS"),
            v(&["5: monitors[0].selector: unterminated ${ (write $$ for a literal $)"]),
        ),
        (
            "missing variable in a key",
            prom("${KEY}: 1"),
            v(&["3: prometheus.${KEY}: environment variable KEY is not set"]),
        ),
    ]);
}

#[test]
fn problems_never_show_secret_values() {
    let text = format!(
        "{}webhooks:\n  - {{name: a, format: slack, url: '${{BAD_SECRET_URL}}'}}\n  - {{name: b, format: slack, url: '${{SLACK_WEBHOOK_URL}}', headers: {{X: \"${{PASSWORD}}\\n\"}}}}\n  - {{name: c, format: slack, url: 'https://x', timeout: '${{SECRET_DURATION}}'}}\n",
        prom("basic_auth: {username: u, password: '${PASSWORD}', password_file: f}")
    );
    let error = parse(&text).unwrap_err();
    let shown = error.to_string();
    assert!(!shown.contains(SECRET), "{shown}");
    assert_eq!(
        problems(&text),
        v(&[
            "3: prometheus.basic_auth.password_file: set only one of password and password_file",
            "11: webhooks[0].url: invalid url: relative URL without a base",
            "12: webhooks[1].headers.X: invalid header value",
            "13: webhooks[2].timeout: invalid duration \"${SECRET_DURATION}\" (after expansion): expected a number followed by a unit (ms, s, m, h, d, w, y), e.g. 30s or 1h30m",
        ])
    );
    // Names and labels from the environment are shown as written too.
    assert_eq!(
        problems(&mon("group_by: ['${PASSWORD}']")),
        v(&["5: monitors[0].group_by[0]: invalid label name \"${PASSWORD}\" (after expansion)"])
    );
    // Debug output of a valid config redacts inline secrets too.
    let config = parse(&format!(
            "{}webhooks:\n  - {{name: a, format: slack, url: '${{SLACK_WEBHOOK_URL}}', secret: '${{PASSWORD}}'}}\n",
            prom("basic_auth: {username: u, password: '${PASSWORD}'}")
        ))
        .unwrap();
    assert!(!format!("{config:?}").contains(SECRET));
}

#[test]
fn lists_every_problem_in_line_order() {
    let text = "prometheus:\n  url: http://p\n  timeout: 5\nevaluation: {concurrency: 0}\nmonitors:\n  - name: m\n    window: 0s\n    signals:\n      c: {histogram: h, detectors: [{type: psi, threshold: -1}]}\n";
    assert_eq!(
        problems(text),
        v(&[
            "3: prometheus.timeout: expected a duration such as 30s, got an integer (add a unit: ms, s, m, h, d, w, y)",
            "4: evaluation.concurrency: must be at least 1, got 0",
            "7: monitors[0].window: must be greater than 0",
            "9: monitors[0].signals.c.detectors[0].threshold: must not be negative, got -1",
        ])
    );
}

#[test]
fn selectors_are_stored_without_braces() {
    for (written, stored) in [
        (r#"'{namespace="ml"}'"#, r#"namespace="ml""#),
        (r#"'namespace="ml"'"#, r#"namespace="ml""#),
        (
            r#"'{a!="1", b!~`x\d`, c=~''y'',}'"#,
            r#"a!="1", b!~`x\d`, c=~'y',"#,
        ),
        ("'{}'", ""),
    ] {
        let config = parse(&mon(&format!("selector: {written}"))).unwrap();
        assert_eq!(config.monitors[0].selector, stored, "{written}");
    }
}

#[test]
fn file_problems_have_no_line() {
    let error = load_file(Path::new("/nonexistent/model-monitor.yml")).unwrap_err();
    assert_eq!(error.problems.len(), 1);
    assert_eq!(error.problems[0].line, None);
    assert!(
        error.problems[0]
            .to_string()
            .starts_with("/nonexistent/model-monitor.yml: cannot read the file: "),
        "{}",
        error.problems[0]
    );
}

#[test]
fn an_unquoted_variable_in_a_flow_mapping_gets_a_hint_to_quote_it() {
    let hint = "(an unquoted ${VAR} inside {...} or [...] is read as a nested mapping: quote it, e.g. {url: \"${VAR}\"})";
    for text in [
        "prometheus: {url: ${PROM_URL}}\nmonitors: []\n".to_owned(),
        prom("headers: {A: ${PASSWORD}, B: b}"),
        det("{type: psi, threshold: ${CONCURRENCY}}"),
    ] {
        let shown = problems(&text);
        assert_eq!(shown.len(), 1, "{text}\n{shown:?}");
        assert!(
            shown[0].contains("invalid yaml") && shown[0].ends_with(hint),
            "{text}\n{shown:?}"
        );
        assert!(!shown[0].contains(SECRET), "{shown:?}");
    }
    // Quoted, the same values parse; a syntax error elsewhere gets no hint,
    // nor does a `${` inside quotes or a comment on the failing line.
    assert_eq!(
        problems(&prom("headers: {A: \"${PASSWORD}\", B: b}")),
        Vec::<String>::new()
    );
    for text in [
        "prometheus:\n  url: [http://x\nmonitors: 3\n",
        "prometheus: {url: '${PROM_URL}' x: 1}\nmonitors: []\n",
        "prometheus: {url: a b: c}  # ${PROM_URL}\nmonitors: []\n",
    ] {
        let shown = problems(text);
        assert!(
            shown.len() == 1 && shown[0].contains("invalid yaml") && !shown[0].contains("unquoted"),
            "{text}\n{shown:?}"
        );
    }
}

#[test]
fn unreadable_files_are_problems_with_their_lines_and_request_time_files_warnings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("present-url"), "https://hooks.example/x\n").unwrap();
    std::fs::create_dir(dir.path().join("a-directory")).unwrap();
    let file = dir.path().join("config.yml");
    let text = "\
prometheus:
  url: http://prom:9090
  basic_auth: {username: u, password_file: missing-password}
monitors:
  - name: m
    reference: {baseline_file: missing-baseline.yml}
    signals:
      c:
        histogram: h
        detectors: [{type: psi}]
webhooks:
  - name: a
    format: slack
    url_file: present-url
    secret_file: missing-secret
  - name: b
    format: slack
    url_file: a-directory
";
    let name = file.display().to_string();
    // Decoding records every file with its line, and reads none of them.
    let config = parse_str_with_env(text, &name, &env).unwrap();
    let recorded: Vec<(usize, &str, FileRead)> = config
        .files
        .iter()
        .map(|f| (f.line, f.key.as_str(), f.read))
        .collect();
    assert_eq!(
        recorded,
        [
            (
                3,
                "prometheus.basic_auth.password_file",
                FileRead::AtEachRequest
            ),
            (6, "monitors[0].reference.baseline_file", FileRead::AtStart),
            (14, "webhooks[0].url_file", FileRead::AtStart),
            (15, "webhooks[0].secret_file", FileRead::AtStart),
            (18, "webhooks[1].url_file", FileRead::AtStart),
        ]
    );
    assert!(config.files.iter().all(|f| f.config_file == name));
    assert_eq!(config.files[2].path, dir.path().join("present-url"));

    let check = check_files(&config);
    let shown = |problems: &[ConfigProblem]| -> Vec<String> {
        problems
            .iter()
            .map(|p| format!("{}: {}", p.line.unwrap(), p.path))
            .collect()
    };
    assert_eq!(
        shown(&check.problems),
        [
            "6: monitors[0].reference.baseline_file",
            "15: webhooks[0].secret_file",
            "18: webhooks[1].url_file",
        ]
    );
    assert_eq!(
        shown(&check.warnings),
        ["3: prometheus.basic_auth.password_file"]
    );
    let missing = dir.path().join("missing-secret");
    assert!(
        check.problems[1].to_string().starts_with(&format!(
            "{name}:15: webhooks[0].secret_file: cannot read {}: ",
            missing.display()
        )),
        "{}",
        check.problems[1]
    );
    assert!(
        check.problems[2].message.contains("it is a directory"),
        "{}",
        check.problems[2]
    );
    assert!(
        check.warnings[0]
            .message
            .starts_with("warning: cannot read ")
            && check.warnings[0]
                .message
                .ends_with("(read at each request: requests fail until it can be read)"),
        "{}",
        check.warnings[0]
    );

    // Once the files exist, nothing is reported.
    for missing in ["missing-password", "missing-baseline.yml", "missing-secret"] {
        std::fs::write(dir.path().join(missing), "x\n").unwrap();
    }
    std::fs::remove_dir(dir.path().join("a-directory")).unwrap();
    std::fs::write(dir.path().join("a-directory"), "https://hooks.example/y\n").unwrap();
    assert_eq!(check_files(&config), FileCheck::default());
}

#[test]
fn engine_keys_set_the_flavor_params_and_delay() {
    let base = "prometheus:\n  url: http://mimir:8080/prometheus\n  flavor: mimir\n  query_params: {dedup: 'true', max_source_resolution: 5m}\nmonitors:\n  - name: m\n    signals:\n      c:\n        histogram: h\n        detectors: [{type: psi}]\n";
    let config = parse(base).unwrap();
    assert_eq!(config.prometheus.flavor, crate::config::Flavor::Mimir);
    assert_eq!(config.query_offset(), Duration::from_secs(60));
    assert_eq!(config.prometheus.query_params["dedup"], "true");
    assert_eq!(
        config.prometheus.query_params["max_source_resolution"],
        "5m"
    );
    let explicit = parse(&format!("{base}evaluation:\n  query_offset: 15s\n")).unwrap();
    assert_eq!(explicit.query_offset(), Duration::from_secs(15));
    let prometheus = parse(&base.replace("  flavor: mimir\n", "")).unwrap();
    assert_eq!(prometheus.query_offset(), Duration::ZERO);

    assert_eq!(
        problems(&base.replace("flavor: mimir", "flavor: influxdb")),
        [
            "3: prometheus.flavor: unknown flavor \"influxdb\"; valid flavors: prometheus, victoriametrics, thanos, mimir, cortex"
        ]
    );
    assert_eq!(
        problems(&base.replace("dedup: 'true'", "time: '1'")),
        [
            "4: prometheus.query_params.time: \"time\" is set by the sidecar itself; reserved parameters: query, time"
        ]
    );
    assert_eq!(
        problems(&format!("{base}evaluation:\n  query_offset: 10\n")),
        [
            "12: evaluation.query_offset: expected a duration such as 30s, got an integer (add a unit: ms, s, m, h, d, w, y)"
        ]
    );
}
