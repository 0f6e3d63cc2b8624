//! Live reload of a running sidecar (the real process): SIGHUP and `POST
//! /-/reload` with a good file (monitors added and removed at the next
//! evaluation, a firing alert kept without a second notification), with a
//! bad file (the running config kept, the `check-config` lines logged, the
//! metric at 0), the lifecycle API without its flag, SIGUSR1 and SIGUSR2
//! ignored, and a receiver removed while it has pending notifications.
//! The models come from the fake PromQL API; the notifications go to the
//! real webhook receiver.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::exposition::sample;
use crate::support::process::{get, http_client, run_binary, wait_for};
use crate::support::promql::{FakePromql, drifting_models};
use crate::support::sidecar::{Sidecar, SidecarConfig};
use crate::support::webhook_receiver::{Behaviour, WebhookReceiver};

/// How long a reload, an evaluation or a delivery may take to be seen.
const WAIT: Duration = Duration::from_secs(30);

/// A config on the fake PromQL API at `prom`: one monitor per name (PSI on
/// the confidence histogram, firing at the first drifting evaluation) and
/// Alertmanager-format receivers `(name, url)` that want resolutions too.
fn config_text(prom: &str, monitors: &[&str], receivers: &[(&str, String)]) -> String {
    let mut text = format!(
        "prometheus:\n  url: {prom}\n  timeout: 5s\nevaluation:\n  interval: 1s\nmonitors:\n"
    );
    for name in monitors {
        text.push_str(&format!(
            "  - name: {name}\n    window: 5m\n    reference: {{offset: 1d}}\n    min_samples: 100\n    alerting: {{for: 1}}\n    signals:\n      confidence:\n        histogram: model_prediction_confidence\n        detectors:\n          - {{type: psi}}\n"
        ));
    }
    if !receivers.is_empty() {
        text.push_str("webhooks:\n");
        for (name, url) in receivers {
            text.push_str(&format!(
                "  - {{name: {name}, format: alertmanager, url: '{url}', send_resolved: true, min_backoff: 100ms, max_backoff: 200ms}}\n"
            ));
        }
    }
    text
}

/// Starts the sidecar on `text` (in `<dir>/sidecar.yml`) with `flags`, and
/// waits for its first evaluation.
async fn start(dir: &Path, text: &str, flags: &[&str]) -> Sidecar {
    let sidecar = Sidecar::start_with_flags(dir, &SidecarConfig::from_text(text), flags);
    sidecar.wait_ready(&http_client()).await;
    sidecar
}

/// Replaces the sidecar's config file (the one `run` was started with).
fn rewrite(dir: &Path, text: &str) {
    std::fs::write(dir.join("sidecar.yml"), text).unwrap();
}

async fn metrics(sidecar: &Sidecar) -> Option<String> {
    match get(&http_client(), &sidecar.url("/metrics")).await? {
        (200, body) => Some(body),
        _ => None,
    }
}

fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    sample(text, name, labels)
}

fn has_monitor(text: &str, monitor: &str) -> bool {
    value(text, "model_monitor_drift_score", &[("monitor", monitor)]).is_some()
        && value(text, "model_monitor_up", &[("source", monitor)]).is_some()
}

fn no_series_of(text: &str, monitor: &str) -> bool {
    !text.lines().any(|line| {
        !line.starts_with('#')
            && (line.contains(&format!("monitor=\"{monitor}\""))
                || line.contains(&format!("source=\"{monitor}\"")))
    })
}

/// Waits until the sidecar has completed `more` evaluations after now.
async fn wait_evaluations(sidecar: &Sidecar, more: f64) {
    let count = |text: &str| value(text, "model_monitor_evaluations_total", &[]).unwrap();
    let start = count(&metrics(sidecar).await.unwrap());
    wait_for("more evaluations", WAIT, || async {
        let text = metrics(sidecar).await?;
        (count(&text) >= start + more).then_some(())
    })
    .await;
}

/// What `model-monitor check-config` prints on stderr for `file` (it must
/// reject it).
fn check_config_lines(file: &Path) -> Vec<String> {
    let (code, _, stderr) = run_binary(&["check-config".to_owned(), file.display().to_string()]);
    assert_eq!(code, 1, "check-config rejects the file");
    let lines: Vec<String> = stderr.lines().map(str::to_owned).collect();
    assert!(lines.len() >= 3, "two problems and their count: {lines:?}");
    lines
}

/// A config with two problems: an unknown key and a duration without a unit.
fn bad_text(prom: &str) -> String {
    config_text(prom, &["alpha"], &[])
        .replace("window: 5m", "window: 5x")
        .replace("evaluation:\n", "evaluation:\n  jitter: 1s\n")
}

/// Each Alertmanager message `path` received: (monitor, status) of its alert.
fn notifications(receiver: &WebhookReceiver, path: &str) -> Vec<(String, String)> {
    receiver
        .received(path)
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            let alert = &body["alerts"][0];
            (
                alert["labels"]["monitor"].as_str().unwrap().to_owned(),
                alert["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn count(receiver: &WebhookReceiver, path: &str, monitor: &str, status: &str) -> usize {
    notifications(receiver, path)
        .iter()
        .filter(|(m, s)| m == monitor && s == status)
        .count()
}

/// Model `fraud` drifting on the fake PromQL API, the receiver with its
/// `hook` path configured as receiver `hook`, and a directory for the
/// sidecar.
async fn drifting_with_a_hook() -> (
    FakePromql,
    WebhookReceiver,
    [(&'static str, String); 1],
    tempfile::TempDir,
) {
    let fake = FakePromql::start(drifting_models(&["fraud"], &["fraud"])).await;
    let receiver = WebhookReceiver::start(&[], None).await;
    let hook = [("hook", format!("{}/hook", receiver.url))];
    (fake, receiver, hook, tempfile::tempdir().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_and_removes_monitors_and_keeps_a_firing_alert_without_a_second_notification() {
    let (fake, receiver, hook, dir) = drifting_with_a_hook().await;
    let sidecar = start(
        dir.path(),
        &config_text(&fake.url, &["alpha", "beta"], &hook),
        &[],
    )
    .await;
    receiver
        .wait_until("alpha and beta to fire", |r| {
            count(r, "hook", "alpha", "firing") == 1 && count(r, "hook", "beta", "firing") == 1
        })
        .await;
    let before = metrics(&sidecar).await.unwrap();
    let started_at = value(
        &before,
        "model_monitor_config_last_reload_success_timestamp_seconds",
        &[],
    )
    .expect("the success time is set at start");

    rewrite(
        dir.path(),
        &config_text(&fake.url, &["alpha", "gamma"], &hook),
    );
    sidecar.process.signal("HUP");
    wait_for("gamma to appear and beta to go", WAIT, || async {
        let text = metrics(&sidecar).await?;
        // The kept monitor's series never leave /metrics.
        assert!(has_monitor(&text, "alpha"), "alpha blinked:\n{text}");
        (has_monitor(&text, "gamma") && no_series_of(&text, "beta")).then_some(text)
    })
    .await;
    let after = metrics(&sidecar).await.unwrap();
    assert_eq!(
        value(&after, "model_monitor_config_last_reload_successful", &[]),
        Some(1.0)
    );
    let reloaded_at = value(
        &after,
        "model_monitor_config_last_reload_success_timestamp_seconds",
        &[],
    )
    .unwrap();
    assert!(reloaded_at > started_at, "{reloaded_at} > {started_at}");

    // The removed monitor's alert resolves; the added one fires.
    receiver
        .wait_until("gamma to fire and beta to resolve", |r| {
            count(r, "hook", "gamma", "firing") == 1 && count(r, "hook", "beta", "resolved") == 1
        })
        .await;
    wait_evaluations(&sidecar, 3.0).await;
    assert_eq!(
        notifications(&receiver, "hook")
            .iter()
            .filter(|(monitor, _)| monitor == "alpha")
            .count(),
        1,
        "the kept alert neither fires again nor resolves: {:?}",
        notifications(&receiver, "hook")
    );
    let status = get(&http_client(), &sidecar.url("/api/v1/status"))
        .await
        .unwrap()
        .1;
    let status: Value = serde_json::from_str(&status).unwrap();
    let monitors: Vec<&str> = status["data"]["config"]["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        monitors,
        ["alpha", "gamma"],
        "the status API shows the new config"
    );
    let log = sidecar.process.log_text();
    assert!(
        log.contains("received SIGHUP, reloading the configuration"),
        "{log}"
    );
    assert!(log.contains("configuration reloaded"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_bad_file_keeps_the_running_config_and_logs_the_check_config_lines() {
    let fake = FakePromql::start(drifting_models(&["fraud"], &[])).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sidecar = start(dir.path(), &config_text(&fake.url, &["alpha"], &[]), &[]).await;
    rewrite(dir.path(), &bad_text(&fake.url));
    let lines = check_config_lines(&dir.path().join("sidecar.yml"));

    sidecar.process.signal("HUP");
    wait_for("the reload to fail", WAIT, || async {
        let text = metrics(&sidecar).await?;
        (value(&text, "model_monitor_config_last_reload_successful", &[]) == Some(0.0))
            .then_some(())
    })
    .await;
    let log = sidecar.process.log_text();
    for line in &lines {
        let logged = format!("problem=\"{}\"", line.escape_debug());
        assert!(log.contains(&logged), "{logged} in\n{log}");
    }
    assert!(log.contains("the running configuration is kept"), "{log}");
    // The old config goes on being evaluated.
    wait_evaluations(&sidecar, 2.0).await;
    assert!(sidecar.process.is_running());
    assert!(has_monitor(&metrics(&sidecar).await.unwrap(), "alpha"));

    // A good file afterwards is taken, and the metric is back at 1.
    rewrite(dir.path(), &config_text(&fake.url, &["gamma"], &[]));
    sidecar.process.signal("HUP");
    wait_for("the good file to be taken", WAIT, || async {
        let text = metrics(&sidecar).await?;
        (value(&text, "model_monitor_config_last_reload_successful", &[]) == Some(1.0)
            && has_monitor(&text, "gamma")
            && no_series_of(&text, "alpha"))
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reload_endpoint_answers_200_or_500_with_the_problems_when_the_lifecycle_is_enabled() {
    let fake = FakePromql::start(drifting_models(&["fraud"], &[])).await;
    let dir = tempfile::tempdir().unwrap();
    let sidecar = start(
        dir.path(),
        &config_text(&fake.url, &["alpha"], &[]),
        &["--web.enable-lifecycle"],
    )
    .await;
    let client = http_client();
    let post = || async {
        let response = client.post(sidecar.url("/-/reload")).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };

    rewrite(dir.path(), &config_text(&fake.url, &["gamma"], &[]));
    let (status, body) = post().await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("configuration reloaded"), "{body}");
    wait_for("gamma to replace alpha", WAIT, || async {
        let text = metrics(&sidecar).await?;
        (has_monitor(&text, "gamma") && no_series_of(&text, "alpha")).then_some(())
    })
    .await;

    rewrite(dir.path(), &bad_text(&fake.url));
    let lines = check_config_lines(&dir.path().join("sidecar.yml"));
    let (status, body) = post().await;
    assert_eq!(status, 500, "{body}");
    for line in &lines {
        assert!(body.lines().any(|l| l == line), "{line} in\n{body}");
    }
    let text = metrics(&sidecar).await.unwrap();
    assert_eq!(
        value(&text, "model_monitor_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert!(has_monitor(&text, "gamma"), "the running config is kept");

    let (status, _) = get(&client, &sidecar.url("/-/reload")).await.unwrap();
    assert_eq!(status, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_lifecycle_flag_reload_is_forbidden_and_sigusr_signals_are_ignored() {
    let fake = FakePromql::start(drifting_models(&["fraud"], &[])).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sidecar = start(dir.path(), &config_text(&fake.url, &["alpha"], &[]), &[]).await;
    let client = http_client();
    let response = client.post(sidecar.url("/-/reload")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let body = response.text().await.unwrap();
    assert!(body.contains("lifecycle APIs are not enabled"), "{body}");
    let (status, _) = get(&client, &sidecar.url("/-/reload")).await.unwrap();
    assert_eq!(status, 405);

    sidecar.process.signal("USR1");
    sidecar.process.signal("USR2");
    wait_for("both signals to be logged", WAIT, || async {
        let log = sidecar.process.log_text();
        (log.contains("ignoring SIGUSR1") && log.contains("ignoring SIGUSR2")).then_some(())
    })
    .await;
    wait_evaluations(&sidecar, 1.0).await;
    assert!(
        sidecar.process.is_running(),
        "{}",
        sidecar.process.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_receiver_keeps_its_pending_notifications_until_it_is_configured_again() {
    let fake = FakePromql::start(drifting_models(&["fraud"], &["fraud"])).await;
    let receiver = WebhookReceiver::start(&[("gone", Behaviour::Down)], None).await;
    let keep = ("keep", format!("{}/keep", receiver.url));
    let gone = ("gone", format!("{}/gone", receiver.url));
    let dir = tempfile::tempdir().unwrap();
    let both = [keep.clone(), gone.clone()];
    let sidecar = start(dir.path(), &config_text(&fake.url, &["alpha"], &both), &[]).await;
    receiver
        .wait_until("alpha to reach keep, and gone to refuse it", |r| {
            count(r, "keep", "alpha", "firing") == 1 && !r.received("gone").is_empty()
        })
        .await;
    let refused: Vec<String> = receiver
        .received("gone")
        .iter()
        .map(|r| r.id.clone())
        .collect();

    // Removed: its task stops, its notification stays, counted.
    rewrite(
        dir.path(),
        &config_text(&fake.url, &["alpha", "beta"], std::slice::from_ref(&keep)),
    );
    sidecar.process.signal("HUP");
    wait_for("the orphaned notification to be counted", WAIT, || async {
        let text = metrics(&sidecar).await?;
        (value(
            &text,
            "model_monitor_webhook_orphaned_notifications",
            &[("receiver", "gone")],
        ) == Some(1.0)
            && value(
                &text,
                "model_monitor_webhook_queue_depth",
                &[("receiver", "gone")],
            )
            .is_none())
        .then_some(())
    })
    .await;
    receiver.set("gone", Behaviour::Accept);
    receiver
        .wait_until("beta to reach keep", |r| {
            count(r, "keep", "beta", "firing") == 1
        })
        .await;
    wait_evaluations(&sidecar, 2.0).await;
    assert!(
        receiver.delivered("gone").is_empty(),
        "nothing is delivered to a removed receiver"
    );
    assert!(
        sidecar
            .process
            .log_text()
            .contains("the receiver was removed by a reload"),
        "{}",
        sidecar.process.log_text()
    );

    // Configured again under the same name: the same notification resumes.
    rewrite(
        dir.path(),
        &config_text(&fake.url, &["alpha", "beta"], &both),
    );
    sidecar.process.signal("HUP");
    receiver
        .wait_until("the kept notification to reach gone", |r| {
            !r.delivered("gone").is_empty()
        })
        .await;
    let delivered: Vec<String> = receiver.delivered("gone").into_keys().collect();
    assert_eq!(
        delivered,
        refused[..1],
        "the same webhook-id, delivered once"
    );
    assert_eq!(
        count(&receiver, "gone", "beta", "firing"),
        0,
        "what happened while it was removed is not sent to it"
    );
    wait_for("the orphan gauge to go", WAIT, || async {
        let text = metrics(&sidecar).await?;
        value(
            &text,
            "model_monitor_webhook_orphaned_notifications",
            &[("receiver", "gone")],
        )
        .is_none()
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_of_a_detector_removed_by_a_reload_resolves() {
    let (fake, receiver, hook, dir) = drifting_with_a_hook().await;
    let text = config_text(&fake.url, &["alpha"], &hook);
    let sidecar = start(dir.path(), &text, &[]).await;
    receiver
        .wait_until("alpha to fire", |r| {
            count(r, "hook", "alpha", "firing") == 1
        })
        .await;
    let detector = |r: &WebhookReceiver, status: &str| {
        r.received("hook")
            .iter()
            .filter(|r| {
                let body: Value = serde_json::from_str(&r.body).unwrap();
                body["alerts"][0]["status"] == status
            })
            .map(|r| {
                let body: Value = serde_json::from_str(&r.body).unwrap();
                body["alerts"][0]["labels"]["detector"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };

    rewrite(dir.path(), &text.replace("{type: psi}", "{type: ks}"));
    sidecar.process.signal("HUP");
    receiver
        .wait_until("psi to resolve and ks to fire", |r| {
            detector(r, "resolved") == ["psi"] && detector(r, "firing") == ["psi", "ks"]
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_receivers_pending_notifications_are_listed_and_purged_offline() {
    let fake = FakePromql::start(drifting_models(&["fraud"], &["fraud"])).await;
    let receiver = WebhookReceiver::start(&[("gone", Behaviour::Down)], None).await;
    let gone = [("gone", format!("{}/gone", receiver.url))];
    let dir = tempfile::tempdir().unwrap();
    let mut sidecar = start(dir.path(), &config_text(&fake.url, &["alpha"], &gone), &[]).await;
    receiver
        .wait_until("gone to refuse alpha", |r| !r.received("gone").is_empty())
        .await;
    let id = receiver.received("gone")[0].id.clone();
    rewrite(dir.path(), &config_text(&fake.url, &["alpha"], &[]));
    sidecar.process.signal("HUP");
    wait_for("the orphaned notification to be counted", WAIT, || async {
        let text = metrics(&sidecar).await?;
        let orphaned = &[("receiver", "gone")];
        (value(
            &text,
            "model_monitor_webhook_orphaned_notifications",
            orphaned,
        ) == Some(1.0))
        .then_some(())
    })
    .await;
    let stopped = sidecar.process.signal_and_wait("TERM", WAIT);
    assert!(stopped.is_some_and(|status| status.success()));

    let data = format!("--storage.path={}", dir.path().join("data").display());
    let outbox = |args: &[&str]| {
        let mut all = vec!["outbox".to_owned(), data.clone()];
        all.extend(args.iter().map(|a| a.to_string()));
        run_binary(&all)
    };
    let (code, stdout, stderr) = outbox(&["list"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("pending\tgone\t{id}\t"))),
        "{stdout}"
    );
    let (code, _, stderr) = outbox(&["purge", "--pending", "--older-than=0s"]);
    assert_eq!(code, 2, "--pending needs --receiver: {stderr}");
    let (code, stdout, stderr) =
        outbox(&["purge", "--pending", "--receiver=gone", "--older-than=0s"]);
    assert_eq!(
        (code, stdout),
        (0, format!("purged\tgone\t{id}\n")),
        "{stderr}"
    );
    let (_, stdout, _) = outbox(&["list"]);
    assert!(!stdout.contains("\tgone\t"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reads_the_files_the_config_names_again() {
    let fake = FakePromql::start(drifting_models(&["fraud"], &["fraud"])).await;
    let receiver = WebhookReceiver::start(&[], None).await;
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("hook-url");
    std::fs::write(&url_file, format!("{}/first\n", receiver.url)).unwrap();
    let with_url_file = |monitors: &[&str]| {
        config_text(&fake.url, monitors, &[("hook", "URL".to_owned())])
            .replace("url: 'URL'", &format!("url_file: '{}'", url_file.display()))
    };
    let sidecar = start(dir.path(), &with_url_file(&["alpha"]), &[]).await;
    receiver
        .wait_until("alpha to reach the first url", |r| {
            count(r, "first", "alpha", "firing") == 1
        })
        .await;

    std::fs::write(&url_file, format!("{}/second\n", receiver.url)).unwrap();
    rewrite(dir.path(), &with_url_file(&["alpha", "beta"]));
    sidecar.process.signal("HUP");
    receiver
        .wait_until("beta to reach the second url", |r| {
            count(r, "second", "beta", "firing") == 1
        })
        .await;
    assert_eq!(count(&receiver, "first", "beta", "firing"), 0);
}
