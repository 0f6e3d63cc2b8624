//! Every config under `examples/` must parse, every baseline file they name
//! must load, and a file with several mistakes must report each of them with
//! its line. `check-config` says "ok" exactly for the configs `run` starts
//! with.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use model_monitor::config::{ReferenceConfig, load_file_with_env, parse_str_with_env};
use model_monitor::sources::baseline;

use crate::cli::check_config_with_env;
use crate::support::process::{
    Process, free_port, get, http_client, model_monitor_binary, wait_for,
};

/// The environment the examples expect; nothing else is set.
pub(crate) fn example_env(name: &str) -> Option<String> {
    match name {
        "MODEL_MONITOR_PROMETHEUS_URL" => Some("http://localhost:9090".to_owned()),
        "SLACK_WEBHOOK_URL" => Some("https://hooks.slack.com/services/T000/B000/XXXX".to_owned()),
        _ => None,
    }
}

/// [`example_env`] as a process environment, with the PromQL API at
/// `prometheus_url`.
pub(crate) fn example_env_with(prometheus_url: &str) -> Vec<(String, String)> {
    ["MODEL_MONITOR_PROMETHEUS_URL", "SLACK_WEBHOOK_URL"]
        .into_iter()
        .map(|name| {
            let value = match name {
                "MODEL_MONITOR_PROMETHEUS_URL" => prometheus_url.to_owned(),
                _ => example_env(name).expect("an example variable"),
            };
            (name.to_owned(), value)
        })
        .collect()
}

fn yml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("examples/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            yml_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml")
        {
            out.push(path);
        }
    }
}

#[test]
fn every_example_config_parses_and_its_baselines_load() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files = Vec::new();
    yml_files(&examples, &mut files);
    files.sort();
    let baselines_dir = examples.join("baselines");
    let (baseline_files, configs): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|path| path.starts_with(&baselines_dir));
    assert!(
        configs.len() >= 3,
        "expected the example configs, found {configs:?}"
    );

    let mut failures = Vec::new();
    let mut referenced = BTreeSet::new();
    // `web-config.yml` is a web config (`--web.config.file`), checked by
    // `web_security.rs`.
    for path in configs
        .iter()
        .filter(|path| !path.ends_with("web-config.yml"))
    {
        match load_file_with_env(path, &example_env) {
            Ok(config) => {
                for monitor in &config.monitors {
                    if let ReferenceConfig::BaselineFile(file) = &monitor.reference {
                        referenced.insert(file.clone());
                        if let Err(error) = baseline::load(file, &monitor.group_by) {
                            failures.push(error.to_string());
                        }
                    }
                }
            }
            Err(error) => failures.extend(error.problems.iter().map(ToString::to_string)),
        }
    }
    assert!(
        failures.is_empty(),
        "examples do not parse:\n{}",
        failures.join("\n")
    );
    for file in baseline_files {
        assert!(
            referenced.contains(&file),
            "{} is not used by any example config",
            file.display()
        );
    }
}

#[test]
fn the_demo_config_is_what_the_demo_needs() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yml");
    let config = load_file_with_env(&path, &example_env).unwrap();
    assert_eq!(config.prometheus.url.as_str(), "http://localhost:9090/");
    assert_eq!(config.evaluation.interval.as_secs(), 5);
    let monitor = &config.monitors[0];
    assert_eq!(monitor.window.as_secs(), 60);
    assert_eq!(
        monitor.reference,
        ReferenceConfig::Window(std::time::Duration::from_secs(180))
    );
    assert_eq!(monitor.min_samples, 300.0);
    let names = |signal: &str| -> Vec<String> {
        monitor.signals[signal]
            .detectors
            .iter()
            .map(|d| d.kind.type_name().to_owned())
            .collect()
    };
    assert_eq!(names("confidence"), ["psi", "ks", "chi_square", "zscore"]);
    assert_eq!(names("latency"), ["quantile_ratio", "quantile_slo"]);
}

/// The file of the "three mistakes" check: a misspelt key (line 5), a
/// detector type that does not exist (line 14) and a quantile above 1 (line 18).
const THREE_MISTAKES: &str = "\
prometheus:
  url: http://localhost:9090
evaluation:
  interval: 30s
  concurency: 4
monitors:
  - name: classifiers
    selector: '{namespace=\"ml\"}'
    signals:
      confidence:
        histogram: model_prediction_confidence
        detectors:
          - {type: psi}
          - {type: kolmogorov}
      latency:
        histogram: model_request_duration_seconds
        detectors:
          - {type: quantile_slo, quantile: 99, max: 250ms}
";

#[test]
fn three_mistakes_are_all_reported_with_their_lines() {
    let error = parse_str_with_env(THREE_MISTAKES, "three-mistakes.yml", &example_env).unwrap_err();
    let shown: Vec<String> = error.problems.iter().map(ToString::to_string).collect();
    // What `check-config` prints, one problem per line.
    println!("{}", shown.join("\n"));
    assert_eq!(
        shown,
        [
            "three-mistakes.yml:5: evaluation.concurency: unknown key \"concurency\"; allowed keys: interval, concurrency, query_offset",
            "three-mistakes.yml:14: monitors[0].signals.confidence.detectors[1].type: unknown detector type \"kolmogorov\"; valid detector types: psi, ks, chi_square, zscore, jensen_shannon, hellinger, wasserstein, quantile_ratio, quantile_slo, exceedance, accuracy_drop",
            "three-mistakes.yml:18: monitors[0].signals.latency.detectors[0].quantile: must be between 0 and 1 (exclusive), got 99",
        ]
    );
    let lines: Vec<Option<usize>> = error.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [Some(5), Some(14), Some(18)]);
}

/// What `run` did with a config: served `/-/healthy`, or exited (with its
/// code and log).
#[derive(Debug)]
enum RunOutcome {
    Serving,
    Exited(Option<i32>, String),
}

/// Starts `model-monitor run` with `config` and `env`, storage in `dir`,
/// until it serves `/-/healthy` or exits.
async fn run_outcome(dir: &Path, config: &Path, env: &[(String, String)]) -> RunOutcome {
    let port = free_port();
    let name = config.file_stem().unwrap().to_string_lossy().into_owned();
    let process = std::cell::RefCell::new(Process::start_with_env(
        &format!("run-{name}"),
        &model_monitor_binary(),
        &[
            "run".into(),
            format!("--config.file={}", config.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!(
                "--storage.path={}",
                dir.join(format!("data-{name}")).display()
            ),
        ],
        env,
        dir,
    ));
    let client = http_client();
    let url = format!("http://127.0.0.1:{port}/-/healthy");
    let what = format!("{} to serve /-/healthy or exit", config.display());
    wait_for(&what, Duration::from_secs(30), || async {
        if matches!(get(&client, &url).await, Some((200, _))) {
            return Some(RunOutcome::Serving);
        }
        let mut process = process.borrow_mut();
        let status = process.exit_status()?;
        Some(RunOutcome::Exited(status.code(), process.log_text()))
    })
    .await
}

#[tokio::test]
async fn check_config_says_ok_exactly_for_the_configs_run_starts_with() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: `run` must start anyway and serve /-/healthy.
    let env = example_env_with(&format!("http://127.0.0.1:{}", free_port()));
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut configs = Vec::new();
    yml_files(&examples, &mut configs);
    configs.retain(|path| {
        !path.starts_with(examples.join("baselines")) && !path.ends_with("web-config.yml")
    });
    configs.sort();
    // Two configs check-config must refuse: a webhook URL file that does not
    // exist (the one `run` used to refuse after check-config said ok), and
    // a misspelt key.
    let valid = "prometheus: {url: 'http://127.0.0.1:9'}\nmonitors:\n  - name: m\n    signals:\n      c:\n        histogram: h\n        detectors: [{type: psi}]\n";
    let missing_url_file = dir.path().join("missing-url-file.yml");
    std::fs::write(
        &missing_url_file,
        format!("{valid}webhooks:\n  - {{name: w, format: slack, url_file: no-such-url}}\n"),
    )
    .unwrap();
    let misspelt = dir.path().join("misspelt.yml");
    std::fs::write(&misspelt, valid.replace("histogram", "histogramm")).unwrap();
    configs.extend([missing_url_file.clone(), misspelt.clone()]);

    let mut verdicts = Vec::new();
    for config in &configs {
        let (code, stdout, stderr) = check_config_with_env(config, &env);
        let outcome = run_outcome(dir.path(), config, &env).await;
        let ok = code == 0;
        match &outcome {
            RunOutcome::Serving => assert!(
                ok,
                "{}: run started, check-config said:\n{stdout}{stderr}",
                config.display()
            ),
            RunOutcome::Exited(run_code, log) => {
                assert!(
                    !ok,
                    "{}: check-config said ok, run exited:\n{log}",
                    config.display()
                );
                assert_eq!(*run_code, Some(1), "{}: {log}", config.display());
            }
        }
        verdicts.push((
            config.file_name().unwrap().to_string_lossy().into_owned(),
            ok,
        ));
    }
    // The examples all start; the two broken configs are refused by both.
    let refused: Vec<&str> = verdicts
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        refused,
        ["missing-url-file.yml", "misspelt.yml"],
        "{verdicts:?}"
    );
    let (_, _, stderr) = check_config_with_env(&missing_url_file, &env);
    let expected = format!(
        "{}:9: webhooks[0].url_file: cannot read {}: ",
        missing_url_file.display(),
        dir.path().join("no-such-url").display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
}
