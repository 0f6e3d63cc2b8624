//! The alerting stack shipped in `alerts/`, `grafana/` and `deploy/`, proven
//! against the real programs: promtool and amtool check the files, and one
//! shared stack of real processes (`model-monitor simulate`, Prometheus
//! loading `alerts/`, the sidecar, Alertmanager loading a test variant of
//! `alerts/alertmanager.yml`) delivers the drift alert to a webhook receiver
//! run by the test, and evaluates every PromQL expression of `alerts/` and
//! `grafana/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use crate::support::alertmanager::{
    ALERTMANAGER_CONFIG, SendResolved, alertmanager_program, alertmanager_test_config,
};
use crate::support::process::{
    Process, find_program, free_port, get, http_client, model_monitor_binary, program, wait_for,
    wait_until_ok,
};
use crate::support::prometheus::PrometheusServer;
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_simulation};
use crate::support::webhook_receiver::WebhookReceiver;

const RULES: &str = "alerts/model-monitor.rules.yml";
const DASHBOARD: &str = "grafana/dashboards/model-monitor.json";
const RUNBOOKS: &str = "docs/runbooks.md";
/// The alerts about one model's scores; their descriptions must name the
/// model, version, signal, detector, score and threshold.
const MODEL_ALERTS: [&str; 5] = [
    "ModelDriftDetected",
    "ModelLatencyRegression",
    "ModelLatencyTailRegression",
    "ModelLatencySLOBreach",
    "ModelAccuracyDrop",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn yaml(path: &str) -> Yaml {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

/// Runs a program in the repository root; returns (success, stdout, stderr).
fn run(program: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(program)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn str_of<'a>(value: &'a Yaml, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Yaml::as_str)
}

/// Every rule of a rules file (the `rules:` entries of every group).
fn rules(file: &Yaml) -> Vec<&Yaml> {
    file["groups"]
        .as_sequence()
        .expect("groups is a list")
        .iter()
        .flat_map(|group| group["rules"].as_sequence().expect("rules is a list"))
        .collect()
}

fn alert_rules(file: &Yaml) -> Vec<&Yaml> {
    rules(file)
        .into_iter()
        .filter(|rule| rule.get("alert").is_some())
        .collect()
}

/// The anchors GitHub gives the headings of a Markdown file.
fn heading_anchors(markdown: &str) -> BTreeMap<String, String> {
    let mut anchors = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            let anchor: String = heading
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect();
            anchors.insert(anchor.clone(), String::new());
            current = Some(anchor);
        } else if line.starts_with('#') {
            current = None;
        } else if let Some(anchor) = &current {
            let body = anchors.get_mut(anchor).expect("inserted above");
            body.push_str(line);
            body.push('\n');
        }
    }
    anchors
}

#[test]
fn promtool_accepts_the_rules() {
    let (ok, stdout, stderr) = run(&program("promtool"), &["check", "rules", RULES]);
    assert!(ok, "promtool check rules {RULES}:\n{stdout}{stderr}");
}

#[test]
fn the_promtool_unit_tests_of_the_rules_pass() {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("alerts/tests"))
        .expect("alerts/tests exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .map(|path| path.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "alerts/tests holds promtool test files");
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let (ok, stdout, stderr) = run(&program("promtool"), &args);
    assert!(ok, "promtool test rules {files:?}:\n{stdout}{stderr}");
}

#[test]
fn every_alert_has_a_unit_test_where_it_fires_and_one_where_it_must_not() {
    let rules_file = yaml(RULES);
    let alerts: BTreeSet<String> = alert_rules(&rules_file)
        .iter()
        .map(|rule| str_of(rule, "alert").unwrap().to_owned())
        .collect();
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("alerts/tests")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let file: Yaml = serde_yaml_ng::from_str(&text).unwrap();
        for test in file["tests"].as_sequence().into_iter().flatten() {
            for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
                let name = str_of(case, "alertname").expect("alertname").to_owned();
                let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
                if expected > 0 {
                    fires.insert(name);
                } else {
                    quiet.insert(name);
                }
            }
        }
    }
    let never_fires: Vec<_> = alerts.difference(&fires).collect();
    let never_quiet: Vec<_> = alerts.difference(&quiet).collect();
    assert!(
        never_fires.is_empty(),
        "alerts without a firing test case: {never_fires:?}"
    );
    assert!(
        never_quiet.is_empty(),
        "alerts without a case where they must not fire: {never_quiet:?}"
    );
}

#[test]
fn every_alert_has_a_severity_summary_description_and_a_runbook_section() {
    let rules_file = yaml(RULES);
    let anchors = heading_anchors(&read(RUNBOOKS));
    let alerts = alert_rules(&rules_file);
    assert!(alerts.len() >= 10, "the alerts of issue 4 are all there");
    for rule in alerts {
        let name = str_of(rule, "alert").unwrap();
        let severity = rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("critical" | "warning")),
            "{name}: severity critical or warning, got {severity:?}"
        );
        assert!(str_of(rule, "for").is_some(), "{name} has a `for`");
        let annotations = &rule["annotations"];
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                str_of(annotations, key).is_some_and(|v| !v.trim().is_empty()),
                "{name}: annotation {key}"
            );
        }
        let runbook = str_of(annotations, "runbook_url").unwrap();
        let (page, anchor) = runbook
            .split_once('#')
            .unwrap_or_else(|| panic!("{name}: runbook_url {runbook} has no #anchor"));
        assert!(
            page.ends_with(RUNBOOKS),
            "{name}: runbook_url {runbook} points into {RUNBOOKS}"
        );
        let section = anchors.get(anchor).unwrap_or_else(|| {
            panic!(
                "{name}: {RUNBOOKS} has no section #{anchor}; it has {:?}",
                anchors.keys()
            )
        });
        assert!(
            section.to_lowercase().contains("act.**") && section.len() > 200,
            "{name}: the runbook section #{anchor} says what to do:\n{section}"
        );
        if MODEL_ALERTS.contains(&name) {
            let description = str_of(annotations, "description").unwrap();
            for needed in [
                "$labels.model",
                "$labels.version",
                "$labels.signal",
                "$labels.detector",
                "$value",
                "model_monitor_drift_threshold",
            ] {
                assert!(
                    description.contains(needed),
                    "{name}: the description names {needed}: {description}"
                );
            }
        }
    }
}

/// The receivers amtool routes an alert with these labels to.
fn routes(config: &str, labels: &[&str]) -> String {
    let mut args = vec!["config", "routes", "test", "--config.file", config];
    args.extend(labels);
    let (_, stdout, stderr) = run(&program("amtool"), &args);
    assert!(!stdout.trim().is_empty(), "amtool routes test: {stderr}");
    stdout.trim().to_owned()
}

#[test]
fn amtool_accepts_the_alertmanager_config_and_it_routes_by_severity() {
    let (ok, stdout, stderr) = run(&program("amtool"), &["check-config", ALERTMANAGER_CONFIG]);
    assert!(
        ok,
        "amtool check-config {ALERTMANAGER_CONFIG}:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("templates"), "the templates load: {stdout}");
    for (labels, receivers) in [
        (
            &[
                "alertname=ModelLatencySLOBreach",
                "severity=critical",
                "model=a",
            ][..],
            "pager",
        ),
        (
            &["alertname=ModelMonitorDown", "severity=critical"][..],
            "pager",
        ),
        (
            &[
                "alertname=ModelDriftDetected",
                "severity=warning",
                "model=a",
            ][..],
            "ml-platform-webhook,slack-ml",
        ),
        (
            &["alertname=ModelLatencyRegression", "severity=warning"][..],
            "slack-ml",
        ),
        (
            &[
                "alertname=ModelMonitorWebhookDeadLetters",
                "severity=warning",
            ][..],
            "slack-ml",
        ),
    ] {
        assert_eq!(
            routes(ALERTMANAGER_CONFIG, labels),
            receivers,
            "route of {labels:?}"
        );
    }
    let config = yaml(ALERTMANAGER_CONFIG);
    let group_by: Vec<&str> = config["route"]["group_by"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        group_by.contains(&"model"),
        "grouped by model: {group_by:?}"
    );
}

/// Every panel of a dashboard, rows' nested panels included.
fn panels(dashboard: &Json) -> Vec<&Json> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        out.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// (where, expression) for every query of the dashboard: panel targets and
/// query variables.
fn dashboard_expressions(dashboard: &Json) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((
                    format!("panel {:?}", panel["title"].as_str().unwrap_or_default()),
                    expr.to_owned(),
                ));
            }
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            let query = variable["query"]["query"]
                .as_str()
                .or(variable["query"].as_str())
                .expect("query variable has a query");
            out.push((
                format!(
                    "variable {:?}",
                    variable["name"].as_str().unwrap_or_default()
                ),
                query.to_owned(),
            ));
        }
    }
    out
}

fn dashboard() -> Json {
    serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON")
}

#[test]
fn the_dashboard_has_the_variables_panels_and_rate_intervals() {
    let dashboard = dashboard();
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for needed in ["datasource", "model", "version"] {
        assert!(variables.contains(&needed), "variable {needed}");
    }
    for panel in panels(&dashboard) {
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {} uses the datasource variable",
            panel["title"]
        );
    }
    let expressions = dashboard_expressions(&dashboard);
    for (place, expr) in &expressions {
        // Every range selector of a panel is $__rate_interval.
        let mut rest = expr.as_str();
        while let Some(start) = rest.find('[') {
            let end = rest[start..].find(']').expect("closing ]") + start;
            assert_eq!(
                &rest[start + 1..end],
                "$__rate_interval",
                "{place}: `{expr}` uses $__rate_interval"
            );
            rest = &rest[end + 1..];
        }
        if expr.contains("model_monitor_drift") || expr.contains("model_monitor_signal") {
            assert!(
                place.starts_with("variable")
                    || (expr.contains("$model") && expr.contains("$version")),
                "{place}: `{expr}` follows the model and version variables"
            );
        }
    }
    let all: String = expressions.iter().map(|(_, e)| e.as_str()).collect();
    for metric in [
        "model_monitor_drift_score",
        "model_monitor_drift_threshold",
        "model_monitor_drift_detected",
        "model_monitor_signal_mean",
        "model_monitor_signal_stddev",
        "model_monitor_signal_quantile",
        "up{job=\"model-monitor\"}",
        "model_monitor_up",
        "model_monitor_query_duration_seconds_bucket",
        "model_monitor_query_failures_total",
        "model_monitor:evaluation_age:seconds",
        "model_monitor_webhook_queue_depth",
        "model_monitor_class_share",
        "model_monitor_estimated_accuracy",
        "model_monitor_realized_accuracy",
        "model_monitor_calibration_error",
        "model_monitor_accuracy_gap",
    ] {
        assert!(all.contains(metric), "a panel shows {metric}");
    }
    for file in [
        "grafana/provisioning/datasources/prometheus.yml",
        "grafana/provisioning/dashboards/model-monitor.yml",
    ] {
        assert_eq!(yaml(file)["apiVersion"].as_u64(), Some(1), "{file}");
    }
}

/// Grafana's variables replaced by values a plain PromQL query accepts.
fn substitute_grafana_variables(expr: &str) -> String {
    let expr = expr
        .replace("${__rate_interval}", "1m")
        .replace("$__rate_interval", "1m")
        .replace("${__interval}", "15s")
        .replace("$__interval", "15s")
        .replace("${__range}", "5m")
        .replace("$__range", "5m");
    let mut out = String::with_capacity(expr.len());
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'{') {
            for c in chars.by_ref() {
                if c == '}' {
                    break;
                }
            }
        } else {
            while chars
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
            {
                chars.next();
            }
        }
        // The dashboard's "All" value.
        out.push_str(".*");
    }
    out
}

/// `label_values(selector, label)` as a PromQL query returning the values.
fn label_values_as_promql(expr: &str) -> Option<String> {
    let inner = expr
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some(format!("count by ({}) ({})", label.trim(), selector.trim()))
}

/// The metric names a PromQL expression reads: identifiers outside label
/// matchers, strings, ranges and label lists that are not functions or
/// keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    /// Keywords besides the label list keywords below.
    const KEYWORDS: [&str; 19] = [
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "inf",
        "nan", // Aggregations, which may be followed by `by (...)`.
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_to = |i: usize, close: char| -> usize {
        let mut j = i + 1;
        let mut quote: Option<char> = None;
        while j < chars.len() {
            match (quote, chars[j]) {
                (Some(_), '\\') => j += 1,
                (Some(q), c) if c == q => quote = None,
                (None, '"' | '\'' | '`') => quote = Some(chars[j]),
                (None, c) if c == close => return j + 1,
                _ => {}
            }
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' => i = skip_to(i, '}'),
            '[' => i = skip_to(i, ']'),
            '"' | '\'' | '`' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != c {
                    if chars[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                i = j + 1;
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let call = next < chars.len() && chars[next] == '(';
                if LABEL_LISTS.contains(&word.as_str()) && call {
                    i = skip_to(next, ')');
                } else if !call
                    && ![KEYWORDS.as_slice(), LABEL_LISTS.as_slice()]
                        .concat()
                        .contains(&word.to_lowercase().as_str())
                {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn metric_names_are_read_from_promql() {
    let check = |expr: &str, expected: &[&str]| {
        let got: Vec<String> = metric_names(expr).into_iter().collect();
        assert_eq!(got, expected, "{expr}");
    };
    check(
        r#"sum without (reason) (rate(a_total{x="y,z"}[5m])) / on (job) group_left (le) b:rec:ratio > 0.1"#,
        &["a_total", "b:rec:ratio"],
    );
    check(
        r#"label_replace(m == 0, "monitor", "$1", "source", "(.*)")"#,
        &["m"],
    );
    check(
        "time() - ts > 300 and absent(up{job=\"x\"}) offset 5m",
        &["ts", "up"],
    );
    check(
        "histogram_quantile(0.99, sum by (le, source) (rate(h_bucket[1m]))) * 1e3",
        &["h_bucket"],
    );
}

#[test]
fn grafana_variables_become_promql() {
    assert_eq!(
        substitute_grafana_variables(
            r#"rate(x{model=~"$model", version=~"${version}"}[$__rate_interval])"#
        ),
        r#"rate(x{model=~".*", version=~".*"}[1m])"#
    );
    assert_eq!(
        label_values_as_promql(r#"label_values(m{model=~".*"}, version)"#).as_deref(),
        Some(r#"count by (version) (m{model=~".*"})"#)
    );
}

/// Prometheus scraping and evaluating every second, loading the rules of
/// `alerts/` with every `for` shortened to `short_for` (so alerts fire
/// within seconds); `rest` is the rest of its configuration (alerting,
/// scrape configs).
pub(crate) fn start_prometheus_with_rules(
    dir: &Path,
    short_for: &str,
    rest: &str,
) -> PrometheusServer {
    let rules = dir.join("model-monitor.rules.yml");
    std::fs::write(&rules, rules_with_short_for(short_for)).unwrap();
    PrometheusServer::start_with_config(
        dir,
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\n{rest}",
            rules.display()
        ),
    )
}

/// The rules with every `for` shortened.
fn rules_with_short_for(short: &str) -> String {
    let mut file = yaml(RULES);
    for group in file["groups"].as_sequence_mut().unwrap() {
        for rule in group["rules"].as_sequence_mut().unwrap() {
            if let Some(map) = rule.as_mapping_mut()
                && map.contains_key("for")
            {
                map.insert("for".into(), short.into());
            }
        }
    }
    serde_yaml_ng::to_string(&file).unwrap()
}

/// Alertmanager's webhook payload (version 4), the parts the test reads.
#[derive(Debug, Clone, serde::Deserialize)]
struct WebhookPayload {
    receiver: String,
    status: String,
    alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct WebhookAlert {
    status: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// (receiver path, arrival, alert) for every alert Alertmanager delivered
/// to `receiver`.
fn delivered_alerts(receiver: &WebhookReceiver) -> Vec<(String, Instant, WebhookAlert)> {
    let mut out = Vec::new();
    for delivery in receiver.all() {
        // The sidecar's own webhook and Alertmanager API requests.
        if delivery.path.starts_with("sidecar") {
            continue;
        }
        let payload: WebhookPayload = serde_json::from_str(&delivery.body)
            .unwrap_or_else(|e| panic!("Alertmanager's payload parses: {e}: {}", delivery.body));
        assert_eq!(payload.receiver, delivery.path, "receiver named in payload");
        assert!(matches!(payload.status.as_str(), "firing" | "resolved"));
        for alert in payload.alerts {
            out.push((delivery.path.clone(), delivery.at, alert));
        }
    }
    out
}

const DRIFT_AFTER_SECS: u64 = 45;

fn sidecar_config(prometheus_url: &str, webhook_url: &str) -> SidecarConfig {
    SidecarConfig::simulated(prometheus_url, "stack")
        .without_detectors(&["jensen_shannon", "hellinger", "wasserstein"])
        // The class-mix and accuracy panels need a class signal and a
        // correct-predictions histogram.
        .with_signals(
            "      classes:
        counter: model_predictions_total
        label: class
        detectors:
          - {type: chi_square}
      labelled:
        histogram: model_prediction_confidence
        correct_histogram: model_prediction_confidence_correct
        detectors:
          - {type: accuracy_drop}
",
        )
        .with_webhooks(&format!(
            r#"  # Makes the sidecar export its webhook delivery metrics for this receiver.
  - name: loopback
    format: alertmanager
    url: {webhook_url}
    send_resolved: true
"#
        ))
        // Makes it export its Alertmanager API metrics.
        .with_section(&format!("alertmanagers: {{urls: ['{webhook_url}']}}\n"))
}

/// Queries Prometheus; Ok(result list) or Err(the error).
async fn instant_query(
    client: &reqwest::Client,
    prometheus: &str,
    expr: &str,
) -> Result<Vec<Json>, String> {
    let response = client
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: Json = response.json().await.map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(format!("{}: {}", body["errorType"], body["error"]));
    }
    match &body["data"]["result"] {
        Json::Array(result) => Ok(result.clone()),
        // Scalars and strings are data too.
        other => Ok(vec![other.clone()]),
    }
}

/// Checks every expression of alerts/ and grafana/ against a Prometheus
/// that scrapes the sidecar; returns one line per problem.
async fn check_expressions(client: &reqwest::Client, prometheus: &str) -> Vec<String> {
    let (_, names) = get(
        client,
        &format!("{prometheus}/api/v1/label/__name__/values"),
    )
    .await
    .expect("metric names");
    let names: Json = serde_json::from_str(&names).unwrap();
    let known: BTreeSet<String> = names["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    // (where, PromQL, must return data)
    let mut expressions = Vec::new();
    for rule in rules(&yaml(RULES)) {
        let name = str_of(rule, "alert").or(str_of(rule, "record")).unwrap();
        let expr = str_of(rule, "expr").unwrap().to_owned();
        // Alerts are quiet when all is well; recording rules feed panels.
        let must_return_data = rule.get("record").is_some();
        expressions.push((format!("{RULES} rule {name}"), expr, must_return_data));
    }
    for (place, expr) in dashboard_expressions(&dashboard()) {
        let promql = substitute_grafana_variables(&expr);
        let promql = label_values_as_promql(&promql).unwrap_or(promql);
        expressions.push((format!("{DASHBOARD} {place}"), promql, true));
    }
    let mut problems = Vec::new();
    let mut all_missing = BTreeSet::new();
    for (place, expr, must_return_data) in expressions {
        let missing: Vec<String> = metric_names(&expr)
            .into_iter()
            .filter(|name| !known.contains(name))
            .collect();
        all_missing.extend(missing.iter().cloned());
        for metric in &missing {
            let hint = if metric.starts_with("model_monitor_webhook_") {
                " (a webhook delivery metric: the sidecar exports it for each configured webhook receiver once the webhook delivery branch is merged)"
            } else {
                ""
            };
            problems.push(format!(
                "{place}: metric {metric} does not exist in a Prometheus that scrapes the sidecar{hint}\n    expression: {expr}"
            ));
        }
        match instant_query(client, prometheus, &expr).await {
            Err(error) => problems.push(format!(
                "{place}: Prometheus rejects the expression: {error}\n    expression: {expr}"
            )),
            Ok(result) if result.is_empty() && must_return_data && missing.is_empty() => problems
                .push(format!(
                    "{place}: the expression returns no data\n    expression: {expr}"
                )),
            Ok(_) => {}
        }
    }
    if !all_missing.is_empty() {
        problems.insert(
            0,
            format!("metrics referenced but not exported: {all_missing:?}"),
        );
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drift_alert_reaches_a_webhook_through_alertmanager_and_every_expression_evaluates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = http_client();
    let receiver = WebhookReceiver::start(&[], None).await;

    let (_simulate, simulate_port) =
        start_drifting_simulation(dir.path(), Duration::from_secs(DRIFT_AFTER_SECS));
    let drift_at = Instant::now() + Duration::from_secs(DRIFT_AFTER_SECS);
    let sidecar_port = free_port();
    let alertmanager_port = free_port();

    // Alertmanager with the routes and inhibitions of alerts/alertmanager.yml.
    let alertmanager_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &alertmanager_config,
        alertmanager_test_config(&receiver.url, "1s", "1s", SendResolved::Never),
    )
    .unwrap();
    let (ok, stdout, stderr) = run(
        &program("amtool"),
        &["check-config", alertmanager_config.to_str().unwrap()],
    );
    assert!(
        ok,
        "the test variant of {ALERTMANAGER_CONFIG}:\n{stdout}{stderr}"
    );
    let alertmanager = Process::start(
        "alertmanager",
        &alertmanager_program(),
        &[
            format!("--config.file={}", alertmanager_config.display()),
            format!("--storage.path={}", dir.path().join("am-data").display()),
            format!("--web.listen-address=127.0.0.1:{alertmanager_port}"),
            "--cluster.listen-address=".into(),
            "--log.level=warn".into(),
        ],
        dir.path(),
    );
    let alertmanager_url = format!("http://127.0.0.1:{alertmanager_port}");

    // Prometheus loading alerts/ (with `for` shortened to 10s: long enough to ride out the
    // brief score swings while the windows still hold the series' first samples).
    let prometheus = start_prometheus_with_rules(
        dir.path(),
        "10s",
        &format!(
            r#"alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:{alertmanager_port}']
scrape_configs:
  - job_name: simulate
    static_configs:
      - targets: ['127.0.0.1:{simulate_port}']
  - job_name: model-monitor
    static_configs:
      - targets: ['127.0.0.1:{sidecar_port}']
"#
        ),
    );
    prometheus.wait_ready(&client).await;
    wait_until_ok(
        &client,
        "alertmanager to be ready",
        &format!("{alertmanager_url}/-/ready"),
        Duration::from_secs(30),
    )
    .await;

    let sidecar = Sidecar::start_as(
        "sidecar",
        dir.path(),
        &sidecar_config(&prometheus.url(), &format!("{}/sidecar", receiver.url)),
        sidecar_port,
        &dir.path().join("data"),
    );

    // The drift alert of model-1 arrives, routed to Slack and the ML
    // platform's webhook as alerts/alertmanager.yml says.
    let is_drift_of = |alert: &WebhookAlert, model: &str| {
        alert.labels.get("alertname").map(String::as_str) == Some("ModelDriftDetected")
            && alert.labels.get("model").map(String::as_str) == Some(model)
            && alert.status == "firing"
    };
    let logs = || {
        format!(
            "sidecar log:\n{}\nalertmanager log:\n{}\nprometheus log:\n{}",
            sidecar.process.log_text(),
            alertmanager.log_text(),
            prometheus.process.log_text()
        )
    };
    let arrival = wait_for(
        "the ModelDriftDetected alert of model-1 at the webhook receiver",
        Duration::from_secs(DRIFT_AFTER_SECS + 90),
        || async {
            let alerts = delivered_alerts(&receiver);
            let at = |path: &str| {
                alerts
                    .iter()
                    .find(|(p, _, alert)| p == path && is_drift_of(alert, "model-1"))
                    .map(|(_, at, alert)| (*at, alert.clone()))
            };
            at("slack-ml").zip(at("ml-platform-webhook"))
        },
    )
    .await;
    let ((arrived_at, alert), _) = arrival;
    eprintln!(
        "ModelDriftDetected for model-1 arrived {:.1}s after the shift: {:?}",
        arrived_at.saturating_duration_since(drift_at).as_secs_f64(),
        alert
    );
    assert!(arrived_at > drift_at, "no drift alert before the shift");
    assert_eq!(alert.labels["version"], "v1");
    assert_eq!(alert.labels["severity"], "warning");
    let description = &alert.annotations["description"];
    assert!(
        description.contains("model model-1 version v1")
            && description.contains("signal confidence")
            && description.contains("score ")
            && description.contains("threshold of ")
            && !description.contains("(unknown)"),
        "the description names model, version, signal, score and threshold: {description}"
    );
    assert!(
        alert.annotations["runbook_url"].contains("docs/runbooks.md#modeldriftdetected"),
        "{:?}",
        alert.annotations
    );

    // Inhibition: while a monitor's source is down on a replica, its drift
    // alerts (which carry no replica label) are suppressed; another
    // monitor's are not.
    let synthetic = serde_json::json!([
        {"labels": {"alertname": "ModelMonitorSourceDown", "severity": "critical", "instance": "synthetic:9847", "monitor": "blind", "source": "blind"}},
        {"labels": {"alertname": "ModelDriftDetected", "severity": "warning", "monitor": "blind", "model": "inhibited", "version": "v1"}},
        {"labels": {"alertname": "ModelDriftDetected", "severity": "warning", "monitor": "seeing", "model": "delivered", "version": "v1"}}
    ]);
    let posted = client
        .post(format!("{alertmanager_url}/api/v2/alerts"))
        .json(&synthetic)
        .send()
        .await
        .unwrap();
    assert!(posted.status().is_success(), "{posted:?}");
    wait_for(
        "the synthetic drift alert of the inhibited monitor to be suppressed",
        Duration::from_secs(30),
        || async {
            let (_, body) = get(
                &client,
                &format!("{alertmanager_url}/api/v2/alerts?filter=monitor%3D~%22blind%7Cseeing%22"),
            )
            .await?;
            let alerts: Json = serde_json::from_str(&body).ok()?;
            let state = |model: &str| {
                alerts.as_array()?.iter().find_map(|a| {
                    (a["labels"]["model"] == model).then(|| a["status"]["state"].clone())
                })
            };
            (state("inhibited")? == "suppressed" && state("delivered")? == "active").then_some(())
        },
    )
    .await;
    wait_for(
        "the synthetic alerts that are not inhibited at their receivers",
        Duration::from_secs(30),
        || async {
            let alerts = delivered_alerts(&receiver);
            let arrived = |path: &str, model: Option<&str>, alertname: &str| {
                alerts.iter().any(|(p, _, a)| {
                    p == path
                        && a.labels["alertname"] == alertname
                        && a.labels.get("model").map(String::as_str) == model
                })
            };
            (arrived("pager", None, "ModelMonitorSourceDown")
                && arrived("slack-ml", Some("delivered"), "ModelDriftDetected"))
            .then_some(())
        },
    )
    .await;

    // Every expression of alerts/ and grafana/ against this Prometheus.
    let problems = check_expressions(&client, &prometheus.url()).await;

    // No model alert at all for the stationary models, delivered or pending.
    let model_alerts_of_stationary: Vec<_> = delivered_alerts(&receiver)
        .into_iter()
        .filter(|(_, _, a)| {
            MODEL_ALERTS.contains(&a.labels["alertname"].as_str())
                && matches!(
                    a.labels.get("model").map(String::as_str),
                    Some("model-0" | "model-2" | "inhibited")
                )
        })
        .collect();
    assert!(
        model_alerts_of_stationary.is_empty(),
        "alerts for models that did not drift (or were inhibited): {model_alerts_of_stationary:#?}"
    );
    let (_, rule_alerts) = get(&client, &format!("{}/api/v1/alerts", prometheus.url()))
        .await
        .unwrap();
    let rule_alerts: Json = serde_json::from_str(&rule_alerts).unwrap();
    for alert in rule_alerts["data"]["alerts"].as_array().unwrap() {
        let name = alert["labels"]["alertname"].as_str().unwrap_or_default();
        let model = alert["labels"]["model"].as_str().unwrap_or_default();
        assert!(
            !(MODEL_ALERTS.contains(&name) && (model == "model-0" || model == "model-2")),
            "Prometheus has a {} {name} alert for {model}",
            alert["state"]
        );
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with the expressions of alerts/ and grafana/:\n{}\n\n{}",
        problems.len(),
        problems.join("\n"),
        if problems.iter().any(|p| p.contains("not exist")) {
            logs()
        } else {
            String::new()
        }
    );
}

#[test]
fn the_prometheusrule_is_generated_from_the_rules_and_up_to_date() {
    let (ok, generated, stderr) = run(&program("bash"), &["scripts/gen-prometheusrule.sh", "-"]);
    assert!(ok, "scripts/gen-prometheusrule.sh: {stderr}");
    let committed = read("deploy/kubernetes/prometheusrule.yaml");
    assert!(
        generated == committed,
        "deploy/kubernetes/prometheusrule.yaml is out of date with {RULES}: run scripts/gen-prometheusrule.sh and commit the result"
    );
    let resource: Yaml = serde_yaml_ng::from_str(&committed).unwrap();
    assert_eq!(resource["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(
        resource["spec"],
        yaml(RULES),
        "the PrometheusRule's spec holds exactly the rules of {RULES}"
    );
}

#[test]
fn the_kubernetes_manifests_validate_offline_and_carry_a_valid_config() {
    find_program("python3").unwrap_or_else(|| {
        panic!("python3 is not installed: install python3 and python3-venv (apt-get install python3 python3-venv)")
    });
    let (ok, stdout, stderr) = run(&program("bash"), &["scripts/validate-kubernetes.sh"]);
    assert!(
        ok,
        "scripts/validate-kubernetes.sh (needs python3-venv and PyPI on first run):\n{stdout}{stderr}"
    );

    // model-monitor reads the ConfigMap's file where its StatefulSet mounts
    // it, and accepts it.
    let config_map = yaml("deploy/kubernetes/configmap.yaml");
    let config_name = config_map["metadata"]["name"].as_str().unwrap();
    let (key, config_text) = config_map["data"]
        .as_mapping()
        .unwrap()
        .iter()
        .next()
        .map(|(k, v)| (k.as_str().unwrap(), v.as_str().unwrap()))
        .unwrap();
    let statefulset = yaml("deploy/kubernetes/statefulset.yaml");
    let pod = &statefulset["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"].as_str() == Some(config_name))
        .expect("a volume from the ConfigMap");
    let sidecar = pod["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some("model-monitor"))
        .expect("the model-monitor container");
    let mount = sidecar["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the config volume is mounted");
    let expected_flag = format!(
        "--config.file={}/{key}",
        mount["mountPath"].as_str().unwrap()
    );
    assert!(
        sidecar["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|a| a.as_str() == Some(&expected_flag)),
        "the sidecar is started with {expected_flag}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(key);
    std::fs::write(&path, config_text).unwrap();
    let (ok, stdout, stderr) = run(
        &model_monitor_binary(),
        &["check-config", path.to_str().unwrap()],
    );
    assert!(ok, "the ConfigMap's config:\n{stdout}{stderr}");
}
