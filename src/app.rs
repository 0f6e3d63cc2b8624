//! The commands of the binary, as library functions: `run`, `check-config`
//! and `simulate`, the operator's `outbox` tools (`app/outbox.rs`) and
//! `check-web-config` (`app/web.rs`);
//! `backtest` (`app/backtest.rs`) and `baseline capture`
//! (`app/baseline.rs`).
//! `src/main.rs` only parses flags and calls in here.

pub mod backtest;
pub mod baseline;
pub mod outbox;
pub mod reload;
pub mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::alerting::FanOut;
use crate::config;
use crate::engine::MonitorBuilder;
use crate::sinks::alertmanager::AlertmanagerSink;
use crate::sinks::exporter::security::WebSecurity;
use crate::sinks::exporter::server::HttpLimits;
use crate::sinks::exporter::{self, AppState};
use crate::sinks::webhooks::{Notifier, NotifierError};
use crate::store::ErrorKind;
use crate::telemetry::SelfMetrics;

/// How long in-flight HTTP requests get after a shutdown signal.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Parses a listen address: `host:port`, `[v6]:port`, or `:port` for every
/// interface, as Prometheus exporters accept.
pub fn parse_listen_address(text: &str) -> Result<SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    if let Ok(address) = full.parse() {
        return Ok(address);
    }
    std::net::ToSocketAddrs::to_socket_addrs(&full)
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| format!("invalid listen address {text:?}: expected host:port or :port"))
}

/// A token cancelled on SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing a SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => tracing::info!("received SIGINT, shutting down"),
                _ = terminate.recv() => tracing::info!("received SIGTERM, shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        cancel.cancel();
    });
    token
}

/// `model-monitor check-config FILE`: every problem on stderr, one a line,
/// including the files the config names that cannot be read; "ok" on stdout
/// means `run` starts with this config. Files read only at request time
/// (`bearer_token_file`, `password_file`) that cannot be read are warnings:
/// printed, exit 0. Returns the exit code.
pub fn check_config(path: &Path) -> i32 {
    let checked = check_file(path);
    for warning in &checked.warnings {
        eprintln!("{warning}");
    }
    for problem in &checked.problems {
        eprintln!("{problem}");
    }
    match checked.config {
        Some(config) => {
            println!(
                "{}: ok ({} monitor(s), {} webhook(s))",
                path.display(),
                config.monitors.len(),
                config.webhooks.len()
            );
            0
        }
        None => 1,
    }
}

/// What `check-config` finds in a file.
pub struct Checked {
    /// The configuration, when it has no problem.
    pub config: Option<config::Config>,
    pub warnings: Vec<String>,
    /// Each problem, then their count: the lines `check-config` prints.
    pub problems: Vec<String>,
}

/// Loads `path` and checks the files it names and its baseline files, as
/// `check-config` and a reload do.
pub fn check_file(path: &Path) -> Checked {
    let failed = |warnings, problems: Vec<String>| {
        let count = format!("{}: {} problem(s) found", path.display(), problems.len());
        Checked {
            config: None,
            warnings,
            problems: problems.into_iter().chain([count]).collect(),
        }
    };
    let lines =
        |problems: &[config::ConfigProblem]| problems.iter().map(|p| p.to_string()).collect();
    let config = match config::load_file(path) {
        Ok(config) => config,
        Err(error) => return failed(Vec::new(), lines(&error.problems)),
    };
    let files = config::check_files(&config);
    let warnings: Vec<String> = files.warnings.iter().map(|w| w.to_string()).collect();
    if !files.problems.is_empty() {
        return failed(warnings, lines(&files.problems));
    }
    let baseline_errors: Vec<String> = config
        .monitors
        .iter()
        .filter_map(|monitor| match &monitor.reference {
            config::ReferenceConfig::BaselineFile(file) => {
                crate::sources::baseline::load(file, &monitor.group_by)
                    .err()
                    .map(|error| {
                        format!("{}: monitors {:?}: {error}", path.display(), monitor.name)
                    })
            }
            _ => None,
        })
        .collect();
    if !baseline_errors.is_empty() {
        return failed(warnings, baseline_errors);
    }
    Checked {
        config: Some(config),
        warnings,
        problems: Vec::new(),
    }
}

/// Where and how the durable state is kept.
#[derive(Debug, Clone)]
pub struct Storage {
    /// The directory of the store file (`--storage.path`).
    pub path: PathBuf,
    /// Move a corrupt store file aside and start empty
    /// (`--storage.quarantine-corrupt`), rather than exit.
    pub quarantine_corrupt: bool,
}

/// The runbook section about a corrupt store, named by the errors.
pub const CORRUPT_STORE_RUNBOOK: &str = "docs/runbooks.md#modelmonitorstorequarantined";

/// How many store files were moved aside as corrupt in `dir`
/// (`outbox.redb.corrupt-*`).
fn quarantined_files(dir: &Path) -> usize {
    let prefix = format!("{}.corrupt-", crate::store::FILE_NAME);
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
            .count()
    })
}

/// `model-monitor run`: loads and checks the config as `check-config`
/// does (and the web config, when given), starts the evaluation loop and the HTTP server, and runs until
/// `shutdown` is cancelled. SIGHUP, and `POST /-/reload` when `lifecycle`
/// is set (`--web.enable-lifecycle`), read the config again
/// (`app/reload.rs`).
pub async fn run(
    config_path: &Path,
    listen: SocketAddr,
    limits: HttpLimits,
    web_config: Option<&Path>,
    storage: &Storage,
    lifecycle: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let signals = reload::Signals::install()?;
    // Checked as `check-config` and a reload check it: the files it names
    // and its baseline files too, every problem logged.
    let checked = check_file(config_path);
    for warning in &checked.warnings {
        tracing::warn!(warning = %warning, "configuration");
    }
    let Some(config) = checked.config else {
        let (count, problems) = checked.problems.split_last().expect("a count line");
        for problem in problems {
            tracing::error!(problem = %problem, "invalid configuration");
        }
        anyhow::bail!("{count}");
    };
    let security = web::open(web_config)?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {listen}: {error}"))?;
    let reloading = Reloading {
        config_path: config_path.to_owned(),
        lifecycle,
        signals: Some(signals),
    };
    serve(
        config, listener, limits, security, storage, reloading, shutdown,
    )
    .await
}

/// How `serve` reloads its configuration.
pub struct Reloading {
    /// The file read again on a reload.
    pub config_path: PathBuf,
    /// Whether `POST /-/reload` reloads (`--web.enable-lifecycle`).
    pub lifecycle: bool,
    /// The handlers of SIGHUP, SIGUSR1 and SIGUSR2, when `serve` handles them.
    pub signals: Option<reload::Signals>,
}

/// Runs the monitor for `config` and serves its HTTP endpoints on `listener`
/// within `limits` (and behind the web config `security`, when given) until
/// `shutdown` is cancelled. Webhook notifications and the alert state
/// are kept in `storage` (created when missing).
pub async fn serve(
    config: config::Config,
    listener: TcpListener,
    limits: HttpLimits,
    security: Option<std::sync::Arc<WebSecurity>>,
    storage: &Storage,
    reloading: Reloading,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = std::sync::Arc::new(SelfMetrics::new());
    metrics.config_loaded(reload::unix_now());
    let summary = exporter::ConfigSummary::from(exporter::config_summary(&config));
    let notifier = Notifier::open_with(
        &config,
        &storage.path,
        storage.quarantine_corrupt,
        metrics.clone(),
    )
    .map_err(|error| match error {
        NotifierError::Store(error) if error.kind() == ErrorKind::Corrupt => anyhow::anyhow!(
            "{error}: the store file is corrupt; start with --storage.quarantine-corrupt to move it aside and start with an empty store (see {CORRUPT_STORE_RUNBOOK})"
        ),
        error => error.into(),
    })?;
    metrics
        .storage_quarantined_files
        .set(quarantined_files(&storage.path) as i64);
    let notifier = std::sync::Arc::new(notifier);
    notifier.start()?;
    let alertmanagers = AlertmanagerSink::new(&config, &metrics)?;
    alertmanagers.start().await;
    let sink = FanOut::new(
        notifier.clone(),
        vec![std::sync::Arc::new(alertmanagers.clone())],
    );
    let monitor = MonitorBuilder::default()
        .with_config(config)
        .with_self_metrics(metrics)
        .with_alert_sink(std::sync::Arc::new(sink))
        .spawn()?;
    let mut reloader = reload::Reloader::new(
        reloading.config_path,
        monitor.clone(),
        notifier.clone(),
        summary.clone(),
        monitor.self_metrics().clone(),
    );
    reloader.alertmanagers = Some(alertmanagers.clone());
    let reloader = std::sync::Arc::new(reloader);
    if let Some(signals) = reloading.signals {
        signals.spawn(reloader.clone(), shutdown.clone());
    }
    let lifecycle = reloading
        .lifecycle
        .then_some(reloader as std::sync::Arc<dyn exporter::lifecycle::Reload>);
    let address = listener.local_addr()?;
    tracing::info!(%address, "listening");
    let router = exporter::app(AppState {
        monitor: monitor.clone(),
        config_summary: summary,
    })
    .merge(exporter::lifecycle::routes(lifecycle));
    let http_shutdown = shutdown.clone();
    let server = tokio::spawn(exporter::server::serve(
        listener,
        router,
        limits,
        security,
        http_shutdown,
    ));
    shutdown.cancelled().await;
    monitor.stop().await;
    notifier.stop().await;
    alertmanagers.stop().await;
    match tokio::time::timeout(SHUTDOWN_DEADLINE, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => tracing::warn!(%error, "http server ended with an error"),
        Ok(Err(error)) => tracing::warn!(%error, "http server task failed"),
        Err(_) => tracing::warn!("http server did not stop within the deadline"),
    }
    tracing::info!("stopped");
    Ok(())
}
