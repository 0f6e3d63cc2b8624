//! `model-monitor backtest` against the live sidecar it replays, with real
//! processes: `simulate` serves three models (`model-1` drifts after
//! [`DRIFT_AFTER_SECS`]), a real Prometheus scrapes them every second and
//! `model-monitor run` evaluates them every 2 s while the test records, from
//! its status API, every evaluation's scores with their evaluation time and
//! every alert that fired. Then `backtest` replays the same span from the
//! same Prometheus: its scores at those evaluation times equal the live ones
//! and its episodes are the alerts the sidecar fired. The HTML report of the
//! same span is rendered by a real headless Chromium.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::support::browser::{png_size, render};
use crate::support::process::{get, http_client, model_monitor_binary};
use crate::support::prometheus::PrometheusServer;
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_simulation};

/// Counted from simulate's start; the series are older than both windows
/// (40 s) by then.
const DRIFT_AFTER_SECS: u64 = 50;

/// (model, signal, detector).
pub(crate) type Key = (String, String, String);

pub(crate) fn sidecar_config(prometheus_url: &str) -> SidecarConfig {
    SidecarConfig::simulated(prometheus_url, "replayed")
        .set("WINDOW", "10s")
        .set("REFERENCE_WINDOW", "30s")
        .set("EVALUATION_INTERVAL", "2s")
        .set("MIN_SAMPLES", "150")
        // Fixed distance thresholds false-alarm on small windows and
        // chi-square needs a few hundred observations per bucket set; the
        // tests that keep them run longer windows.
        .without_detectors(&[
            "chi_square",
            "jensen_shannon",
            "hellinger",
            "wasserstein",
            "quantile_ratio",
        ])
}

/// `model-monitor ARGS` with `env`, run to its end: exit code, stdout,
/// stderr.
fn run_model_monitor(args: &[String], env: &[(String, String)]) -> (i32, String, String) {
    let output = Command::new(model_monitor_binary())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("running model-monitor");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// [`run_model_monitor`] that must succeed, and, with its output piped,
/// print nothing on stderr (no progress bar off a terminal, no warning).
pub(crate) fn model_monitor(args: &[String], env: &[(String, String)]) -> String {
    let (code, stdout, stderr) = run_model_monitor(args, env);
    assert_eq!(code, 0, "model-monitor {args:?} failed: {stderr}");
    assert_eq!(stderr, "", "model-monitor {args:?} wrote to stderr");
    stdout
}

#[test]
fn bad_times_and_names_are_refused_with_what_was_wrong() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config =
        SidecarConfig::simulated("http://127.0.0.1:9", "named").set("WASSERSTEIN_THRESHOLD", "0.5");
    let file = dir.path().join("config.yml");
    let env = config.write(&file);
    let config_flag = format!("--config.file={}", file.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["backtest", &config_flag, "--from=yesterday"],
            "--from: invalid time \"yesterday\": expected RFC 3339",
        ),
        (
            vec!["backtest", &config_flag, "--from=now-1h", "--to=now-7x"],
            "--to: invalid time \"now-7x\"",
        ),
        (
            vec!["backtest", &config_flag, "--from=now", "--to=now-1h"],
            "is after --to",
        ),
        (
            vec![
                "baseline",
                "capture",
                &config_flag,
                "--monitor=other",
                "--from=now-1h",
                "--to=now",
            ],
            "no monitor named \"other\"",
        ),
        (
            vec![
                "baseline",
                "capture",
                &config_flag,
                "--monitor=named",
                "--signal=accuracy",
                "--from=now-1h",
                "--to=now",
            ],
            "monitor \"named\" has no signal \"accuracy\" (signals: confidence, latency)",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let (code, stdout, stderr) = run_model_monitor(&args, &env);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stdout, "", "{args:?}");
    }
}

pub(crate) fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("a time, not {value}"))
}

/// Every detection's score of one evaluation (the status API's `models`,
/// or a line of `--scores-output`'s `scores`).
pub(crate) fn live_scores(models: &Value) -> BTreeMap<Key, f64> {
    let mut scores = BTreeMap::new();
    for model in models.as_array().into_iter().flatten() {
        let name = model["labels"]["model"].as_str().unwrap_or_default();
        let signals = model["signals"].as_object().into_iter().flatten();
        for (signal, result) in signals {
            for outcome in result["detectors"].as_array().into_iter().flatten() {
                if let Some(score) = outcome["score"].as_f64() {
                    let detector = outcome["detector"].as_str().unwrap_or_default();
                    scores.insert(
                        (name.to_owned(), signal.clone(), detector.to_owned()),
                        score,
                    );
                }
            }
        }
    }
    scores
}

/// What the test saw of the live sidecar.
#[derive(Default)]
struct Live {
    /// Scores by evaluation time.
    evaluations: BTreeMap<DateTime<Utc>, BTreeMap<Key, f64>>,
    /// Every alert seen firing, with the evaluation it fired at.
    fired: BTreeSet<(Key, DateTime<Utc>)>,
}

impl Live {
    fn record(&mut self, status: &Value) {
        let evaluation = &status["data"]["evaluation"];
        if evaluation["timestamp"].is_null() {
            return;
        }
        let at = time(&evaluation["timestamp"]);
        self.evaluations
            .entry(at)
            .or_insert_with(|| live_scores(&evaluation["models"]));
        for alert in status["data"]["alerts"].as_array().into_iter().flatten() {
            if alert["state"] == "firing" {
                let key = (
                    alert["labels"]["model"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    alert["signal"].as_str().unwrap_or_default().to_owned(),
                    alert["detector"].as_str().unwrap_or_default().to_owned(),
                );
                self.fired.insert((key, time(&alert["fired_at"])));
            }
        }
    }

    fn model_1_fired(&self) -> bool {
        self.fired
            .iter()
            .any(|((model, signal, _), _)| model == "model-1" && signal == "confidence")
    }
}

/// Records the live sidecar until model-1's drift has fired and three more
/// evaluations ran.
async fn record_live(sidecar: &Sidecar, deadline: Instant) -> Live {
    let client = http_client();
    let status_url = sidecar.url("/api/v1/status");
    let mut live = Live::default();
    let mut fired_by: Option<usize> = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        ticker.tick().await;
        if let Some((200, text)) = get(&client, &status_url).await {
            let status: Value = serde_json::from_str(&text).expect("status JSON");
            live.record(&status);
        }
        if live.model_1_fired() {
            let count = *fired_by.get_or_insert(live.evaluations.len());
            if live.evaluations.len() >= count + 3 {
                return live;
            }
        }
        assert!(
            Instant::now() < deadline,
            "model-1's drift did not fire in time; evaluations seen: {}\nsidecar log:\n{}",
            live.evaluations.len(),
            sidecar.process.log_text()
        );
    }
}

/// A `--scores-output` file: every detection's score by evaluation time.
pub(crate) fn read_scores(file: &Path) -> BTreeMap<DateTime<Utc>, BTreeMap<Key, f64>> {
    std::fs::read_to_string(file)
        .expect("the scores file")
        .lines()
        .map(|line| {
            let line: Value = serde_json::from_str(line).expect("a JSON line");
            let mut scores = BTreeMap::new();
            for score in line["scores"].as_array().expect("scores") {
                let key = (
                    score["labels"]["model"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    score["signal"].as_str().unwrap_or_default().to_owned(),
                    score["detector"].as_str().unwrap_or_default().to_owned(),
                );
                scores.insert(key, score["score"].as_f64().expect("a score"));
            }
            (time(&line["at"]), scores)
        })
        .collect()
}

/// Asserts that every live evaluation is on the replayed grid with the
/// same detections and numbers; returns how many scores were compared
/// (asserted to be some).
pub(crate) fn assert_same_scores(
    live: &BTreeMap<DateTime<Utc>, BTreeMap<Key, f64>>,
    replayed: &BTreeMap<DateTime<Utc>, BTreeMap<Key, f64>>,
) -> usize {
    let mut compared = 0;
    for (at, scores) in live {
        let Some(replayed) = replayed.get(at) else {
            panic!(
                "the live evaluation at {at} is not on the replayed grid {:?}",
                replayed.keys().collect::<Vec<_>>()
            );
        };
        assert_eq!(
            scores.keys().collect::<Vec<_>>(),
            replayed.keys().collect::<Vec<_>>(),
            "the detections at {at}"
        );
        for (key, score) in scores {
            let again = replayed[key];
            assert!(
                (score - again).abs() <= 1e-9 * score.abs().max(1.0),
                "{key:?} at {at}: live {score}, replayed {again}"
            );
            compared += 1;
        }
    }
    assert!(compared > 0, "some scores were decided and compared");
    compared
}

fn backtest_args(config: &Path, live: &Live, format: &str, output: &Path) -> Vec<String> {
    let from = live.evaluations.keys().next().expect("evaluations");
    let to = live.evaluations.keys().next_back().expect("evaluations");
    vec![
        "backtest".to_owned(),
        format!("--config.file={}", config.display()),
        format!("--from={}", from.to_rfc3339()),
        format!("--to={}", to.to_rfc3339()),
        format!("--format={format}"),
        format!("--output={}", output.display()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtest_replays_the_live_scores_and_episodes_and_its_report_renders_in_a_browser() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = http_client();
    let (_simulate, simulate_port) =
        start_drifting_simulation(dir.path(), Duration::from_secs(DRIFT_AFTER_SECS));
    let deadline = Instant::now() + Duration::from_secs(DRIFT_AFTER_SECS + 40);
    let prometheus = PrometheusServer::start(dir.path(), &[format!("127.0.0.1:{simulate_port}")]);
    prometheus.wait_ready(&client).await;
    let config = sidecar_config(&prometheus.url());
    let sidecar = Sidecar::start(dir.path(), &config);
    sidecar.wait_ready(&client).await;
    let live = record_live(&sidecar, deadline).await;
    drop(sidecar);

    let config_file = dir.path().join("backtest.yml");
    let env = config.write(&config_file);
    let report_file = dir.path().join("report.json");
    let scores_file = dir.path().join("scores.jsonl");
    let mut args = backtest_args(&config_file, &live, "json", &report_file);
    args.push(format!("--scores-output={}", scores_file.display()));
    model_monitor(&args, &env);

    // Scores: every live evaluation is on the replayed grid, with the same
    // detections and the same numbers.
    let replayed = read_scores(&scores_file);
    let compared = assert_same_scores(&live.evaluations, &replayed);
    eprintln!(
        "compared {compared} scores of {} live evaluations",
        live.evaluations.len()
    );

    // Episodes: the alerts the sidecar fired, at the same evaluations.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).expect("the report"))
            .expect("report JSON");
    let episodes: BTreeSet<(Key, DateTime<Utc>)> = report["episodes"]
        .as_array()
        .expect("episodes")
        .iter()
        .map(|episode| {
            let key = (
                episode["labels"]["model"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                episode["signal"].as_str().unwrap_or_default().to_owned(),
                episode["detector"].as_str().unwrap_or_default().to_owned(),
            );
            (key, time(&episode["start"]))
        })
        .collect();
    assert_eq!(
        episodes, live.fired,
        "replayed episodes against the live alerts"
    );
    assert!(
        episodes.iter().all(|((model, _, _), _)| model == "model-1"),
        "only the drifting model has episodes: {episodes:?}"
    );
    assert_eq!(
        report["evaluations"].as_u64(),
        Some(replayed.len() as u64),
        "one scores line per evaluation"
    );

    // The HTML report of the same span, in a real browser.
    let page = dir.path().join("report.html");
    model_monitor(&backtest_args(&config_file, &live, "html", &page), &env);
    let rendered = render(&page, dir.path());
    let (width, height) = png_size(&rendered.png).expect("a PNG screenshot");
    assert_eq!((width, height), (1200, 2000));
    assert!(
        rendered.png.len() > 20_000,
        "a screenshot with content, not {} bytes",
        rendered.png.len()
    );
    for error in ["Uncaught", ":CONSOLE("] {
        assert!(
            !rendered.log.contains(error),
            "console errors while rendering:\n{}",
            rendered.log
        );
    }
    assert!(
        rendered.dom.contains("data-model=\"model=model-1,"),
        "the drifting model has its charts:\n{}",
        rendered.dom
    );
    for quiet in ["model-0", "model-2"] {
        assert!(
            !rendered
                .dom
                .contains(&format!("data-model=\"model={quiet},")),
            "{quiet} has no episode and no chart"
        );
    }
    assert_eq!(
        rendered.dom.matches("<svg").count(),
        2 * rendered.dom.matches("class=\"model\"").count(),
        "a score chart and a window chart per alerted key"
    );
}
