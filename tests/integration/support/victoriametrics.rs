//! A real single-node VictoriaMetrics (`victoria-metrics`, installed by
//! scripts/test.sh) on a free loopback port: it scrapes its targets itself
//! from a Prometheus-format scrape config, keeps its data in the test's
//! directory, serves the Prometheus query API at its root, and is killed
//! when dropped.

use std::path::Path;
use std::time::Duration;

use super::process::{Process, free_port, program, wait_until_ok};

/// A VictoriaMetrics server scraping job `simulate`.
pub struct VictoriaMetrics {
    pub process: Process,
    port: u16,
}

impl VictoriaMetrics {
    /// Starts VictoriaMetrics scraping `targets` (as job `simulate`) every
    /// second. Instant queries closer than `latency_offset` to its clock are
    /// moved back to `now - latency_offset` (its `-search.latencyOffset`).
    pub fn start(dir: &Path, targets: &[String], latency_offset: &str) -> VictoriaMetrics {
        let targets = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = dir.join("victoriametrics-scrape.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: simulate\n    static_configs:\n      - targets: [{targets}]\n"
            ),
        )
        .expect("writing the scrape config");
        let port = free_port();
        let process = Process::start(
            "victoria-metrics",
            &program("victoria-metrics"),
            &[
                format!("-httpListenAddr=127.0.0.1:{port}"),
                format!("-storageDataPath={}", dir.join("vm-data").display()),
                format!("-promscrape.config={}", config.display()),
                format!("-search.latencyOffset={latency_offset}"),
                "-loggerLevel=WARN".to_owned(),
            ],
            dir,
        );
        VictoriaMetrics { process, port }
    }

    /// The base URL of its Prometheus query API (`/api/v1/query` below it).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn wait_ready(&self, client: &reqwest::Client) {
        wait_until_ok(
            client,
            "victoria-metrics to be ready",
            &format!("{}/health", self.url()),
            Duration::from_secs(60),
        )
        .await;
    }

    /// Its answer to an instant query at unix time `time` (seconds with
    /// milliseconds, as the sidecar sends it); panics unless it succeeds.
    pub async fn query(
        &self,
        client: &reqwest::Client,
        query: &str,
        time: &str,
    ) -> serde_json::Value {
        let response = client
            .get(format!("{}/api/v1/query", self.url()))
            .query(&[("query", query), ("time", time)])
            .send()
            .await
            .expect("querying victoria-metrics");
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("a JSON answer");
        assert!(
            status.is_success() && body["status"] == "success",
            "victoria-metrics answered {status}: {body}"
        );
        body
    }
}
