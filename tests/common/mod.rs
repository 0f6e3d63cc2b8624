//! Helpers for tests that run real processes: free ports, child processes
//! that are killed when dropped, and waiting for HTTP conditions; and
//! ([`promql`]) a whole-body reading of PromQL answers.
#![allow(dead_code)]

pub mod promql;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("binding an ephemeral loopback port")
}

/// Finds a program on PATH or in /usr/bin.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    from_path.or_else(|| Some(Path::new("/usr/bin").join(name)).filter(|p| p.is_file()))
}

/// Finds a program on PATH or in /usr/bin and fails the test with an
/// install hint when it is missing.
pub fn program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| {
        panic!("{name} is not installed: run scripts/test.sh, which installs prometheus and alertmanager with apt-get")
    })
}

/// The model-monitor binary cargo built for this test run.
pub fn model_monitor_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_model-monitor"))
}

/// A child process killed (SIGKILL) and reaped when dropped. Its output goes
/// to a log file so a failing test can show it.
pub struct Process {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Process {
    pub fn start(name: &str, program: &Path, args: &[String], log_dir: &Path) -> Process {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("creating a log file");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("cloning a file handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", program.display()));
        Process {
            name: name.to_owned(),
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("process is running").id()
    }

    /// Sends SIGKILL and waits for the process to end.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal (e.g. "TERM") and waits up to `deadline` for the exit
    /// status; past the deadline the process is killed and `None` returned.
    pub fn signal_and_wait(
        &mut self,
        signal: &str,
        deadline: Duration,
    ) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let pid = child.id();
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(child.wait());
        });
        match receiver.recv_timeout(deadline) {
            Ok(status) => status.ok(),
            Err(_) => {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
                None
            }
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 250 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        ticker.tick().await;
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
    }
}

/// GETs a URL and returns (status, body), or None when unreachable.
pub async fn get(client: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let response = client.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// One sample of an exposition-format text: (name, labels, value).
pub type ExposedSample = (String, Vec<(String, String)>, f64);

/// Samples of an exposition-format text.
pub fn parse_exposition(text: &str) -> Vec<ExposedSample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().ok()?,
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (k, v) = pair.split_once("=\"")?;
                    Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
                })
                .collect();
            Some((name.to_owned(), labels, value))
        })
        .collect()
}

/// The value of the one sample of `name` whose labels include all of `want`.
pub fn sample(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    parse_exposition(text)
        .into_iter()
        .find(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, value)| value)
}

/// A Prometheus server scraping `targets` every second.
pub struct PrometheusServer {
    pub process: Process,
    pub port: u16,
    pub data: PathBuf,
    pub config: PathBuf,
    dir: PathBuf,
}

impl PrometheusServer {
    pub fn start(dir: &Path, targets: &[String], extra_config: &str) -> PrometheusServer {
        let targets = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        Self::start_with_config(
            dir,
            &format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{extra_config}scrape_configs:\n  - job_name: simulate\n    static_configs:\n      - targets: [{targets}]\n"
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
        wait_for(
            "prometheus to be ready",
            Duration::from_secs(60),
            || async { matches!(get(client, &url).await, Some((200, _))).then_some(()) },
        )
        .await;
    }
}

/// Runs `promtool check metrics` on an exposition text: `Ok` when promtool
/// exits 0 and prints nothing, else `Err` with what it printed.
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new(program("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting promtool");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("writing to promtool");
    let output = child.wait_with_output().expect("waiting for promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && report.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics ({}): {report}",
            output.status
        ))
    }
}

/// `model-monitor simulate` with the tests' standard traffic: three models
/// at 25 requests per second, seed 7, and `model-1` drifting after
/// `drift_after`. Returns the process and the port it serves on.
pub fn start_drifting_simulation(dir: &Path, drift_after: Duration) -> (Process, u16) {
    let port = free_port();
    let process = Process::start(
        "simulate",
        &model_monitor_binary(),
        &[
            "simulate".into(),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--models=3".into(),
            "--seed=7".into(),
            "--drift-model=model-1".into(),
            format!("--drift-after={}s", drift_after.as_secs()),
            "--rate=25".into(),
        ],
        dir,
    );
    (process, port)
}
