//! model-monitor as the tests run it: the sidecar's configs, `model-monitor
//! run` as a real process with a config file and a storage directory, and
//! `model-monitor simulate` serving models to scrape.

use std::path::Path;
use std::time::Duration;

use model_monitor::config::Config;

use super::process::{Process, free_port, model_monitor_binary, wait_until_ok};
use super::prometheus::PrometheusServer;

/// `tests/fixtures/sidecar.yml`: the config for simulated models behind a
/// real Prometheus, shared with `scripts/bench-scale.py`.
const SIMULATED_TEMPLATE: &str = include_str!("../../fixtures/sidecar.yml");

/// A sidecar config: YAML text, and the environment its `${VAR}`s expand
/// from.
#[derive(Clone)]
pub struct SidecarConfig {
    text: String,
    env: Vec<(String, String)>,
}

impl SidecarConfig {
    /// `tests/fixtures/sidecar.yml` with the tests' values: monitor `name`
    /// over both histograms of the models of job `simulate`, queried from
    /// `prometheus_url` every 2 s (4 at a time, 5 s timeout), a 20 s window
    /// against the 30 s before it, 100 samples needed; latency regressions
    /// at the 0.95 quantile, the SLO at 2 s. The Wasserstein threshold is
    /// left to the test that keeps that detector.
    pub fn simulated(prometheus_url: &str, name: &str) -> SidecarConfig {
        let config = SidecarConfig {
            text: SIMULATED_TEMPLATE.to_owned(),
            env: Vec::new(),
        };
        config
            .set("PROMETHEUS_URL", prometheus_url)
            .set("MONITOR_NAME", name)
            .set("QUERY_TIMEOUT", "5s")
            .set("EVALUATION_INTERVAL", "2s")
            .set("CONCURRENCY", "4")
            .set("WINDOW", "20s")
            .set("REFERENCE_WINDOW", "30s")
            .set("MIN_SAMPLES", "100")
            .set("LATENCY_RATIO_QUANTILE", "0.95")
            .set("LATENCY_SLO_MAX", "2s")
    }

    /// Monitor `fake` on the PromQL API at `url` (a fake): PSI and KS on the
    /// confidence histogram, a 5 m window against the same window a day
    /// earlier, 100 samples needed, evaluated every second.
    pub fn fake_source(url: &str, timeout: &str) -> SidecarConfig {
        Self::fake(url, timeout, None)
    }

    /// [`SidecarConfig::fake_source`] with a 5 s timeout, the monitor's
    /// `alerting` (YAML, e.g. `{for: 1}`) and links to Prometheus and
    /// Grafana for the notifications.
    pub fn fake_source_alerting(url: &str, alerting: &str) -> SidecarConfig {
        Self::fake(url, "5s", Some(alerting))
    }

    fn fake(url: &str, timeout: &str, alerting: Option<&str>) -> SidecarConfig {
        let (links, alerting) = match alerting {
            Some(alerting) => (
                "  external_url: https://prometheus.example\ngrafana_url: https://grafana.example/d/models\n",
                format!("    alerting: {alerting}\n"),
            ),
            None => ("", String::new()),
        };
        SidecarConfig {
            text: format!(
                r#"prometheus:
  url: {url}
  timeout: {timeout}
{links}evaluation:
  interval: 1s
monitors:
  - name: fake
    window: 5m
    reference: {{offset: 1d}}
    min_samples: 100
{alerting}    signals:
      confidence:
        histogram: model_prediction_confidence
        detectors:
          - {{type: psi}}
          - {{type: ks}}
"#
            ),
            env: Vec::new(),
        }
    }

    /// Adds `key: value` to the `prometheus:` section.
    pub fn with_prometheus(mut self, key: &str, value: &str) -> SidecarConfig {
        self.text = self.text.replacen(
            "prometheus:\n",
            &format!("prometheus:\n  {key}: {value}\n"),
            1,
        );
        self
    }

    /// Adds `key: value` to the `evaluation:` section.
    pub fn with_evaluation(mut self, key: &str, value: &str) -> SidecarConfig {
        self.text = self.text.replacen(
            "evaluation:\n",
            &format!("evaluation:\n  {key}: {value}\n"),
            1,
        );
        self
    }

    /// A config written out in full.
    pub fn from_text(text: &str) -> SidecarConfig {
        SidecarConfig {
            text: text.to_owned(),
            env: Vec::new(),
        }
    }

    /// Sets `${name}` to `value`.
    pub fn set(mut self, name: &str, value: &str) -> SidecarConfig {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Leaves out the detectors of these types: their lines
    /// `- {type: NAME...}`.
    pub fn without_detectors(mut self, types: &[&str]) -> SidecarConfig {
        let kept: Vec<&str> = self
            .text
            .lines()
            .filter(|line| {
                let detector = line
                    .trim_start()
                    .strip_prefix("- {type: ")
                    .and_then(|rest| rest.split([',', '}']).next());
                !detector.is_some_and(|kind| types.contains(&kind))
            })
            .collect();
        self.text = kept.join("\n") + "\n";
        self
    }

    /// Adds signals (YAML entries indented by six spaces) to the one
    /// monitor's `signals:`.
    pub fn with_signals(mut self, signals: &str) -> SidecarConfig {
        let at = self
            .text
            .find("    signals:\n")
            .expect("the config has a signals section")
            + "    signals:\n".len();
        self.text.insert_str(at, signals);
        self
    }

    /// Replaces the monitor's `reference:` with this one (YAML flow, e.g.
    /// `{baseline_file: /tmp/b.yml}`).
    pub fn with_reference(mut self, reference: &str) -> SidecarConfig {
        self.text = self
            .text
            .lines()
            .map(|line| match line.strip_prefix("    reference: ") {
                Some(_) => format!("    reference: {reference}"),
                None => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        self
    }

    /// Gives the one monitor this `alerting:` (YAML flow, e.g.
    /// `{for: 1, repeat_interval: 10s}`).
    pub fn with_alerting(mut self, alerting: &str) -> SidecarConfig {
        let at = self
            .text
            .find("    signals:\n")
            .expect("the config has a signals section");
        self.text
            .insert_str(at, &format!("    alerting: {alerting}\n"));
        self
    }

    /// Adds `webhooks:` with these receivers (YAML list items).
    pub fn with_webhooks(mut self, receivers: &str) -> SidecarConfig {
        self.text.push_str("webhooks:\n");
        self.text.push_str(receivers);
        self
    }

    /// Adds a top-level section written out in full (YAML starting with its
    /// key, e.g. `alertmanagers:\n  urls: [...]\n`).
    pub fn with_section(mut self, section: &str) -> SidecarConfig {
        self.text.push_str(section);
        self
    }

    /// Writes the config's text to `file`; returns the environment its
    /// `${VAR}`s expand from, for commands other than `run` that read it.
    pub fn write(&self, file: &Path) -> Vec<(String, String)> {
        std::fs::write(file, &self.text).expect("writing the config");
        self.env.clone()
    }

    /// The environment its `${VAR}`s expand from.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The validated config, for a monitor run in the test's process.
    pub fn parse(&self) -> Config {
        let env = |name: &str| {
            self.env
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.clone())
        };
        model_monitor::config::parse_str_with_env(&self.text, "test.yml", &env)
            .expect("valid test config")
    }
}

/// `model-monitor run` as a real process, killed when dropped.
pub struct Sidecar {
    pub process: Process,
    pub port: u16,
}

impl Sidecar {
    /// Starts a sidecar named `sidecar` on a free port, its config file,
    /// log and storage (`data/`) in `dir`.
    pub fn start(dir: &Path, config: &SidecarConfig) -> Sidecar {
        Self::start_as("sidecar", dir, config, free_port(), &dir.join("data"))
    }

    /// [`Sidecar::start`] with more flags for `model-monitor run`.
    pub fn start_with_flags(dir: &Path, config: &SidecarConfig, flags: &[&str]) -> Sidecar {
        Self::start_full(
            "sidecar",
            dir,
            config,
            free_port(),
            &dir.join("data"),
            flags,
        )
    }

    /// Starts a sidecar with its config in `<dir>/<name>.yml`, its log in
    /// `<dir>/<name>.log`, serving on `port` and storing into `storage`.
    pub fn start_as(
        name: &str,
        dir: &Path,
        config: &SidecarConfig,
        port: u16,
        storage: &Path,
    ) -> Sidecar {
        Self::start_full(name, dir, config, port, storage, &[])
    }

    fn start_full(
        name: &str,
        dir: &Path,
        config: &SidecarConfig,
        port: u16,
        storage: &Path,
        flags: &[&str],
    ) -> Sidecar {
        let file = dir.join(format!("{name}.yml"));
        config.write(&file);
        let mut args = vec![
            "run".into(),
            format!("--config.file={}", file.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--storage.path={}", storage.display()),
        ];
        args.extend(flags.iter().map(|flag| (*flag).to_owned()));
        let process =
            Process::start_with_env(name, &model_monitor_binary(), &args, &config.env, dir);
        Sidecar { process, port }
    }

    /// Its `/metrics` text; panics with its log when it does not serve it.
    pub async fn metrics(&self, client: &reqwest::Client) -> String {
        match super::process::get(client, &self.url("/metrics")).await {
            Some((200, text)) => text,
            answer => panic!(
                "/metrics not served ({answer:?}); sidecar log:\n{}",
                self.process.log_text()
            ),
        }
    }

    /// The URL of `path` on the sidecar.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until `/-/ready` answers 200: the first evaluation is done.
    pub async fn wait_ready(&self, client: &reqwest::Client) {
        wait_until_ok(
            client,
            "the sidecar to be ready",
            &self.url("/-/ready"),
            Duration::from_secs(30),
        )
        .await;
    }
}

/// `model-monitor simulate` with the tests' standard traffic: three models
/// at 25 requests per second, seed 7, and `model-1` drifting after
/// `drift_after`. Returns the process and the port it serves on.
pub fn start_drifting_simulation(dir: &Path, drift_after: Duration) -> (Process, u16) {
    start_drifting_simulation_with(dir, drift_after, &[])
}

/// [`start_drifting_simulation`] with more flags (`--class-mix`,
/// `--calibration`, ...).
pub fn start_drifting_simulation_with(
    dir: &Path,
    drift_after: Duration,
    flags: &[&str],
) -> (Process, u16) {
    let port = free_port();
    let mut args = vec![
        "simulate".into(),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--models=3".into(),
        "--seed=7".into(),
        "--drift-model=model-1".into(),
        format!("--drift-after={}s", drift_after.as_secs()),
        "--rate=25".into(),
    ];
    args.extend(flags.iter().map(|flag| (*flag).to_owned()));
    let process = Process::start("simulate", &model_monitor_binary(), &args, dir);
    (process, port)
}

/// [`start_drifting_simulation`] scraped every second by a real
/// Prometheus, returned once Prometheus is ready.
pub async fn start_drifting_stack(
    dir: &Path,
    drift_after: Duration,
    client: &reqwest::Client,
) -> (Process, PrometheusServer) {
    let (simulate, port) = start_drifting_simulation(dir, drift_after);
    let prometheus = PrometheusServer::start(dir, &[format!("127.0.0.1:{port}")]);
    prometheus.wait_ready(client).await;
    (simulate, prometheus)
}

/// The detector entries of one model signal in a `/api/v1/status` answer,
/// the model found by its `model` label.
pub fn status_detectors(
    status: &serde_json::Value,
    model: &str,
    signal: &str,
) -> Vec<serde_json::Value> {
    status["data"]["evaluation"]["models"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["labels"]["model"] == model)
        .flat_map(|m| m["signals"][signal]["detectors"].as_array().cloned())
        .flatten()
        .collect()
}
