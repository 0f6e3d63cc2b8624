//! The binary's commands as a user runs them.

use std::process::Command;

use crate::support::exposition::sample;
use crate::support::process::{get, model_monitor_binary, wait_for};
use crate::support::prometheus::promtool_check_metrics;
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_simulation};

fn check_config(path: &std::path::Path) -> (i32, String, String) {
    let output = Command::new(model_monitor_binary())
        .arg("check-config")
        .arg(path)
        .env(
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T000/B000/XXXX",
        )
        .env("MODEL_MONITOR_PROMETHEUS_URL", "http://127.0.0.1:9090")
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
        if path.extension().is_some_and(|e| e == "yml") {
            let (code, stdout, stderr) = check_config(&path);
            assert_eq!(code, 0, "{}: {stdout}{stderr}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 3, "examples found: {checked}");
}

#[test]
fn run_refuses_an_invalid_config_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yml");
    std::fs::write(&file, "prometheus: {url: 'not a url'}\nmonitors: []\n").unwrap();
    let output = Command::new(model_monitor_binary())
        .args(["run", "--web.listen-address=127.0.0.1:0"])
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--config.file={}", file.display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("problem(s) in"), "{stderr}");
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
