//! Prometheus' own programs: a real Prometheus server, and `promtool check
//! metrics` on an exposition text.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::{Process, free_port, program, wait_until_ok};

/// A Prometheus server on a free loopback port, its data in the test's
/// directory.
pub struct PrometheusServer {
    pub process: Process,
    port: u16,
    data: PathBuf,
    config: PathBuf,
    dir: PathBuf,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `targets` (as job `simulate`) every second.
    pub fn start(dir: &Path, targets: &[String]) -> PrometheusServer {
        let targets = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        Self::start_with_config(
            dir,
            &format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: simulate\n    static_configs:\n      - targets: [{targets}]\n"
            ),
        )
    }

    /// Starts Prometheus with a complete configuration file's text.
    pub fn start_with_config(dir: &Path, config_text: &str) -> PrometheusServer {
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, config_text).expect("writing prometheus.yml");
        let data = dir.join("prometheus-data");
        let port = free_port();
        let process = Self::launch(dir, &config, &data, port);
        PrometheusServer {
            process,
            port,
            data,
            config,
            dir: dir.to_owned(),
        }
    }

    /// Starts Prometheus scraping `simulate` on `simulate_port` every
    /// second and logging every query it answers to `queries.log` in `dir`
    /// (one JSON object per line: `params.query`, `params.end` the
    /// evaluation time, `stats.timings`); returns the log's path too.
    pub fn start_with_query_log(dir: &Path, simulate_port: u16) -> (PrometheusServer, PathBuf) {
        let query_log = dir.join("queries.log");
        let server = Self::start_with_config(
            dir,
            &format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  query_log_file: {}\nscrape_configs:\n  - job_name: simulate\n    static_configs:\n      - targets: ['127.0.0.1:{simulate_port}']\n",
                query_log.display()
            ),
        );
        (server, query_log)
    }

    fn launch(dir: &Path, config: &Path, data: &Path, port: u16) -> Process {
        Process::start(
            "prometheus",
            &program("prometheus"),
            &[
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", data.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--web.enable-lifecycle".to_owned(),
                "--log.level=warn".to_owned(),
            ],
            dir,
        )
    }

    /// Starts Prometheus again on the same port and data directory.
    pub fn restart(&mut self) {
        self.process.kill();
        self.process = Self::launch(&self.dir, &self.config, &self.data, self.port);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn wait_ready(&self, client: &reqwest::Client) {
        let url = format!("{}/-/ready", self.url());
        wait_until_ok(
            client,
            "prometheus to be ready",
            &url,
            Duration::from_secs(60),
        )
        .await;
    }
}

/// Runs `promtool check metrics` on an exposition text: `Ok` when promtool
/// exits 0 and prints nothing, else `Err` with what it printed.
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    let (status, report) = promtool_check_metrics_report(text);
    if status.success() && report.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool check metrics ({status}): {report}"))
    }
}

/// Runs `promtool check metrics` on an exposition text: how it exited, and
/// what it printed (parse errors and lint problems, one a line).
pub fn promtool_check_metrics_report(text: &str) -> (std::process::ExitStatus, String) {
    use std::io::Write;
    let mut child = Command::new(program("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting promtool");
    // promtool stops reading at the first parse error: a closed pipe is
    // then its verdict, read below.
    let written = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes());
    if let Err(error) = written
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        panic!("writing to promtool: {error}");
    }
    let output = child.wait_with_output().expect("waiting for promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, report)
}
