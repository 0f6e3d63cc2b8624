//! The binary's commands as a user runs them.

use std::path::Path;
use std::process::Command;

use crate::config_examples::example_env_with;
use crate::support::exposition::sample;
use crate::support::process::{free_port, get, model_monitor_binary, wait_for};
use crate::support::prometheus::promtool_check_metrics;
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_simulation};

fn check_config(path: &std::path::Path) -> (i32, String, String) {
    check_config_with_env(path, &example_env_with("http://127.0.0.1:9090"))
}

/// `model-monitor check-config PATH` with `env` added: exit code, stdout, stderr.
pub(crate) fn check_config_with_env(
    path: &std::path::Path,
    env: &[(String, String)],
) -> (i32, String, String) {
    let output = Command::new(model_monitor_binary())
        .arg("check-config")
        .arg(path)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .output()
        .expect("running model-monitor");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_config_reports_every_mistake_with_its_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yml");
    std::fs::write(
        &file,
        "prometheus:\n  url: http://localhost:9090\n  timeout: 10 seconds\nevaluation:\n  interval: 30s\nmonitors:\n  - name: m\n    window: 5m\n    signals:\n      confidence:\n        histogram: model_prediction_confidence\n        detectors:\n          - {type: psi, threshold: -1}\n          - {type: kolmogorov}\n",
    )
    .unwrap();
    let (code, _stdout, stderr) = check_config(&file);
    assert_eq!(code, 1, "{stderr}");
    let name = file.display().to_string();
    for (line, path) in [
        (3, "prometheus.timeout"),
        (13, "monitors[0].signals.confidence.detectors[0].threshold"),
        (14, "monitors[0].signals.confidence.detectors[1].type"),
    ] {
        let prefix = format!("{name}:{line}: {path}: ");
        assert!(
            stderr.lines().any(|l| l.starts_with(&prefix)),
            "missing {prefix:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("3 problem(s) found"), "{stderr}");
}

#[test]
fn check_config_accepts_the_shipped_examples() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        // web-config.yml is a web config: `web_security.rs` checks it.
        if path.extension().is_some_and(|e| e == "yml") && !path.ends_with("web-config.yml") {
            let (code, stdout, stderr) = check_config(&path);
            assert_eq!(code, 0, "{}: {stdout}{stderr}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 3, "examples found: {checked}");
}

/// Runs `model-monitor run` on `config` with its store under `dir`, which
/// must refuse to start (exit 1); returns its stderr.
fn run_refused(dir: &Path, config: &Path) -> String {
    let output = Command::new(model_monitor_binary())
        .args(["run", "--web.listen-address=127.0.0.1:0"])
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--config.file={}", config.display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn run_refuses_an_invalid_config_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yml");
    std::fs::write(&file, "prometheus: {url: 'not a url'}\nmonitors: []\n").unwrap();
    let stderr = run_refused(dir.path(), &file);
    assert!(stderr.contains("2 problem(s) found"), "{stderr}");
    assert!(stderr.contains("prometheus.url: invalid url"), "{stderr}");
}

#[test]
fn run_refuses_a_config_whose_baseline_file_is_missing_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yml");
    let missing = dir.path().join("no-such-baseline.yml");
    std::fs::write(
        &file,
        format!(
            "prometheus: {{url: 'http://127.0.0.1:9'}}\nmonitors:\n  - name: m\n    reference: {{baseline_file: '{}'}}\n    signals:\n      confidence:\n        histogram: model_prediction_confidence\n        detectors: [{{type: psi}}]\n",
            missing.display()
        ),
    )
    .unwrap();
    let stderr = run_refused(dir.path(), &file);
    assert!(stderr.contains("no-such-baseline.yml"), "{stderr}");
    assert!(stderr.contains("1 problem(s) found"), "{stderr}");
    // Nothing was started: no store was created.
    assert!(!dir.path().join("data").exists(), "{stderr}");
}

#[test]
fn sigterm_stops_the_sidecar_gracefully_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of loopback: evaluations fail, serving goes on.
    let config = SidecarConfig::from_text(
        "prometheus: {url: 'http://127.0.0.1:9', timeout: 1s}\nevaluation: {interval: 1s}\nmonitors:\n  - name: m\n    signals:\n      confidence:\n        histogram: model_prediction_confidence\n        detectors: [{type: psi}]\n",
    );
    let mut sidecar = Sidecar::start(dir.path(), &config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(sidecar.wait_ready(&reqwest::Client::new()));
    let status = sidecar
        .process
        .signal_and_wait("TERM", std::time::Duration::from_secs(15))
        .expect("the sidecar exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", sidecar.process.log_text());
    let log = sidecar.process.log_text();
    assert!(log.contains("received SIGTERM"), "{log}");
    assert!(log.contains("message=stopped"), "{log}");
}

#[tokio::test]
async fn promtool_accepts_the_simulated_exposition_before_and_after_drift() {
    let dir = tempfile::tempdir().unwrap();
    let (_simulate, port) =
        start_drifting_simulation(dir.path(), std::time::Duration::from_secs(1));
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let first = wait_for("the simulator", std::time::Duration::from_secs(20), || {
        get(&client, &url)
    })
    .await;
    let drifted = wait_for(
        "the drift to start",
        std::time::Duration::from_secs(20),
        || async {
            let (status, text) = get(&client, &url).await?;
            (status == 200
                && sample(&text, "model_requests_total", &[("model", "model-1")])? > 60.0)
                .then_some(text)
        },
    )
    .await;
    for (when, (status, text)) in [("at start", first), ("after drift", (200, drifted))] {
        assert_eq!(status, 200, "{when}");
        if let Err(report) = promtool_check_metrics(&text) {
            panic!("{when}: {report}");
        }
    }
}

#[test]
fn an_unknown_log_level_is_a_usage_error_listing_the_valid_ones() {
    for command in ["run", "simulate"] {
        for level in ["warning", "trace", "INFO", "verbose"] {
            let output = Command::new(model_monitor_binary())
                .arg(command)
                .args((command == "run").then_some("--config.file=unused.yml"))
                .arg(format!("--log.level={level}"))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{command} {level}: {stderr}");
            assert!(
                stderr.contains(&format!("invalid value '{level}' for '--log.level"))
                    && stderr.contains("[possible values: debug, info, warn, error]"),
                "{command} {level}: {stderr}"
            );
            assert!(output.stdout.is_empty(), "{command} {level}");
        }
    }
}

/// Runs the sidecar against a source that refuses connections, with
/// `--log.format=format --log.level=level`, until its stderr shows a failed
/// query; returns (stdout, stderr).
async fn run_against_a_dead_source(
    dir: &std::path::Path,
    format: &str,
    level: &str,
) -> (String, String) {
    let config = dir.join(format!("{format}-{level}.yml"));
    // Nothing listens on port 9 of loopback: every query fails at once.
    std::fs::write(
        &config,
        "prometheus: {url: 'http://127.0.0.1:9', timeout: 1s}\nevaluation: {interval: 1s}\nmonitors:\n  - name: m\n    signals:\n      confidence:\n        histogram: model_prediction_confidence\n        detectors: [{type: psi}]\n",
    )
    .unwrap();
    let stdout_file = dir.join(format!("{format}-{level}.stdout"));
    let stderr_file = dir.join(format!("{format}-{level}.stderr"));
    let mut child = Command::new(model_monitor_binary())
        .arg("run")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .arg(format!(
            "--storage.path={}",
            dir.join(format!("data-{format}-{level}")).display()
        ))
        .arg(format!("--log.format={format}"))
        .arg(format!("--log.level={level}"))
        .stdout(std::fs::File::create(&stdout_file).unwrap())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    wait_for(
        "a failed query in the log",
        std::time::Duration::from_secs(20),
        || async { read(&stderr_file).contains("query failed").then_some(()) },
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    (read(&stdout_file), read(&stderr_file))
}

#[tokio::test]
async fn every_log_line_goes_to_stderr_in_both_formats_at_the_chosen_level() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["logfmt", "json"] {
        let (stdout, stderr) = run_against_a_dead_source(dir.path(), format, "info").await;
        assert_eq!(
            stdout, "",
            "{format}: stdout must stay empty; stderr:\n{stderr}"
        );
        for line in stderr.lines() {
            match format {
                "logfmt" => assert!(line.starts_with("ts="), "not logfmt: {line}"),
                _ => {
                    serde_json::from_str::<serde_json::Value>(line)
                        .unwrap_or_else(|error| panic!("not json ({error}): {line}"));
                }
            }
        }
        assert!(
            stderr.contains("listening"),
            "{format}: info lines missing:\n{stderr}"
        );
    }
    // At warn, the failed queries are logged and the info lines are not.
    let (stdout, stderr) = run_against_a_dead_source(dir.path(), "logfmt", "warn").await;
    assert_eq!(stdout, "");
    assert!(stderr.contains("level=warn"), "{stderr}");
    assert!(!stderr.contains("level=info"), "{stderr}");
}
