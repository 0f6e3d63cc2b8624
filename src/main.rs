//! The `model-monitor` binary: flag parsing and exit codes; the work is in
//! the library (`model_monitor::app`). `simulate`, the synthetic model
//! server for demos, tests and benchmarks, is a module of the binary only
//! (`src/simulate/`), so embedders of the library do not compile it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use model_monitor::{app, duration};

mod simulate;

use simulate::SimulateOptions;

/// mimalloc rather than glibc's malloc: a cycle at 10,000 models makes
/// millions of small allocations across the runtime's threads, where glibc
/// spent a fifth of the CPU and kept freed memory in per-thread arenas
/// (see BENCHMARKS.md, section 3).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "model-monitor",
    version,
    about = "Watches ML models in production through Prometheus: drift scores as metrics, alerts to webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Logfmt,
    Json,
}

/// The least severe log lines written; any other word is a usage error
/// (exit 2) listing these.
#[derive(Clone, Copy, ValueEnum)]
enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    fn filter(self) -> tracing_subscriber::filter::LevelFilter {
        use tracing_subscriber::filter::LevelFilter;
        match self {
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Error => LevelFilter::ERROR,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Runs the sidecar: evaluates monitors and serves /metrics.
    Run {
        /// The configuration file.
        #[arg(long = "config.file", value_name = "FILE")]
        config_file: PathBuf,
        /// Address of /metrics and the status API.
        #[arg(
            long = "web.listen-address",
            value_name = "ADDR",
            default_value = ":9847"
        )]
        listen_address: String,
        /// How long a client has to send a request's headers (for HTTP/1.1
        /// also how long a kept-alive connection waits for its next request).
        #[arg(long = "web.read-header-timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
        read_header_timeout: std::time::Duration,
        /// How long a connection may move no bytes before it is closed.
        #[arg(long = "web.idle-timeout", value_name = "DURATION", default_value = "2m", value_parser = parse_positive_duration)]
        idle_timeout: std::time::Duration,
        /// How many HTTP connections are served at once; more wait to be
        /// accepted until one closes.
        #[arg(long = "web.max-connections", value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
        max_connections: u32,
        /// TLS, basic auth and headers of the endpoints, in Prometheus'
        /// web config format (exporter-toolkit); re-read when it changes.
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config_file: Option<PathBuf>,
        /// Enables `POST /-/reload`, which reloads the configuration file as
        /// SIGHUP does.
        #[arg(long = "web.enable-lifecycle")]
        enable_lifecycle: bool,
        /// Directory for durable state (the webhook outbox).
        #[arg(long = "storage.path", value_name = "DIR", default_value = "data")]
        storage_path: PathBuf,
        /// When the store file is corrupt, move it aside (timestamped name)
        /// and start with an empty store, rather than exit.
        #[arg(long = "storage.quarantine-corrupt")]
        quarantine_corrupt: bool,
        /// Log lines go to stderr in either format.
        #[arg(long = "log.format", value_enum, default_value = "logfmt")]
        log_format: LogFormat,
        #[arg(long = "log.level", value_enum, default_value = "info")]
        log_level: LogLevel,
    },
    /// Lists, replays and purges a stopped sidecar's outbox (offline).
    Outbox {
        /// The sidecar's --storage.path.
        #[arg(
            long = "storage.path",
            value_name = "DIR",
            default_value = "data",
            global = true
        )]
        storage_path: PathBuf,
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Replays the evaluations `run` would have made over a past range:
    /// alert episodes and per-detector counts, without sending anything.
    Backtest {
        #[arg(long = "config.file", value_name = "FILE")]
        config_file: PathBuf,
        /// RFC 3339, `now` or `now-DURATION` (e.g. now-7d).
        #[arg(long, value_name = "TIME")]
        from: String,
        #[arg(long, value_name = "TIME", default_value = "now")]
        to: String,
        /// The evaluation grid's step (default: evaluation.interval).
        #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
        step: Option<std::time::Duration>,
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
        /// The report's file (default: stdout).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Every evaluation's scores, one JSON line per evaluation time.
        #[arg(long = "scores-output", value_name = "FILE")]
        scores_output: Option<PathBuf>,
    },
    /// Reference histograms kept in files.
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },
    /// Validates a configuration file: exit 0 when valid, 1 with every problem listed.
    CheckConfig {
        file: PathBuf,
        /// Checks this web config file too (as check-web-config does).
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config_file: Option<PathBuf>,
    },
    /// Validates a web config file (--web.config.file): exit 0 when valid, 1 with every problem listed.
    CheckWebConfig { file: PathBuf },
    /// Serves a synthetic model server's /metrics for demos and tests.
    Simulate {
        #[arg(
            long = "web.listen-address",
            value_name = "ADDR",
            default_value = ":9848"
        )]
        listen_address: String,
        /// Number of models, named model-0 .. model-{N-1}.
        #[arg(long, default_value_t = 3)]
        models: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The model that drifts after --drift-after.
        #[arg(long = "drift-model")]
        drift_model: Option<String>,
        #[arg(long = "drift-after", default_value = "5m", value_parser = parse_duration)]
        drift_after: std::time::Duration,
        /// Requests per second per model.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Weights of the predicted classes class-0, class-1, ...; the
        /// drift model's last class doubles its weight after --drift-after.
        #[arg(
            long = "class-mix",
            value_delimiter = ',',
            default_value = "0.4,0.3,0.2,0.1"
        )]
        class_mix: Vec<f64>,
        /// A prediction is correct with probability min(1, calibration * confidence); 1 is calibrated.
        #[arg(long, default_value_t = 1.0)]
        calibration: f64,
        /// Log lines go to stderr in either format.
        #[arg(long = "log.format", value_enum, default_value = "logfmt")]
        log_format: LogFormat,
        #[arg(long = "log.level", value_enum, default_value = "info")]
        log_level: LogLevel,
    },
}

#[derive(Clone, Subcommand)]
enum BaselineCommand {
    /// Writes a monitor's per-model bucket counts over a fixed range as a
    /// baseline file (for `reference: {baseline_file: FILE}`).
    Capture {
        #[arg(long = "config.file", value_name = "FILE")]
        config_file: PathBuf,
        /// The monitor whose queries, selector and group_by are used.
        #[arg(long, value_name = "NAME")]
        monitor: String,
        /// Only this signal (default: every signal of the monitor).
        #[arg(long, value_name = "NAME")]
        signal: Option<String>,
        /// RFC 3339, `now` or `now-DURATION` (e.g. now-7d).
        #[arg(long, value_name = "TIME")]
        from: String,
        #[arg(long, value_name = "TIME")]
        to: String,
        /// The baseline file (default: stdout).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Table,
    Csv,
    Json,
    Html,
}

impl ReportFormat {
    fn into_app(self) -> model_monitor::backtest::Format {
        use model_monitor::backtest::Format;
        match self {
            ReportFormat::Table => Format::Table,
            ReportFormat::Csv => Format::Csv,
            ReportFormat::Json => Format::Json,
            ReportFormat::Html => Format::Html,
        }
    }
}

#[derive(Clone, Subcommand)]
enum OutboxCommand {
    /// Every pending notification and dead letter, one a line (tab-separated).
    List,
    /// Puts dead letters back into the outbox, sent when the sidecar next starts.
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["all", "receiver", "id"])))]
    Replay {
        /// Every dead letter.
        #[arg(long, conflicts_with_all = ["receiver", "id"])]
        all: bool,
        /// Only this receiver's.
        #[arg(long)]
        receiver: Option<String>,
        /// Only the one with this webhook-id.
        #[arg(long)]
        id: Option<String>,
    },
    /// Deletes dead letters older than a duration.
    Purge {
        /// Dead for longer than this (e.g. 7d).
        #[arg(long = "older-than", value_parser = parse_duration)]
        older_than: std::time::Duration,
        /// Only this receiver's.
        #[arg(long)]
        receiver: Option<String>,
        /// Deletes the receiver's pending notifications (created longer ago
        /// than --older-than) instead: those of a receiver no longer
        /// configured. Needs --receiver.
        #[arg(long, requires = "receiver")]
        pending: bool,
    },
}

impl OutboxCommand {
    fn into_app(self) -> Result<app::outbox::OutboxCommand, String> {
        use model_monitor::store::Selection;
        Ok(match self {
            OutboxCommand::List => app::outbox::OutboxCommand::List,
            OutboxCommand::Replay { receiver, id, .. } => {
                app::outbox::OutboxCommand::Replay(Selection { receiver, id })
            }
            OutboxCommand::Purge {
                older_than,
                receiver,
                pending,
            } => {
                let age = chrono::Duration::from_std(older_than)
                    .map_err(|_| "--older-than is too long".to_owned())?;
                let before = chrono::Utc::now() - age;
                match (pending, receiver) {
                    (true, Some(receiver)) => {
                        app::outbox::OutboxCommand::PurgePending { receiver, before }
                    }
                    (_, receiver) => app::outbox::OutboxCommand::Purge {
                        selection: Selection { receiver, id: None },
                        before,
                    },
                }
            }
        })
    }
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    duration::parse_duration(text).map_err(|error| error.to_string())
}

fn parse_positive_duration(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration(text)? {
        zero if zero.is_zero() => Err("must be longer than 0s".to_owned()),
        positive => Ok(positive),
    }
}

/// `--from` and `--to` (RFC 3339, `now`, `now-DURATION`), both against
/// one reading of the clock.
fn parse_range(
    from: &str,
    to: &str,
) -> anyhow::Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    let now = chrono::Utc::now();
    let parse = |flag: &str, text: &str| {
        model_monitor::backtest::parse_time(text, now)
            .map_err(|error| anyhow::anyhow!("--{flag}: {error}"))
    };
    Ok((parse("from", from)?, parse("to", to)?))
}

/// An offline command's exit code: 0 goes on, anything else ends the
/// process with it (the command printed why).
fn exit_unless_ok(code: i32) -> anyhow::Result<()> {
    match code {
        0 => Ok(()),
        code => std::process::exit(code),
    }
}

/// Every log line goes to stderr, whatever the format: stdout is left to
/// the commands' own output.
fn init_logging(format: LogFormat, level: LogLevel) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let registry = tracing_subscriber::registry().with(level.filter());
    match format {
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

fn main() -> ExitCode {
    // mimalloc reserves its memory in large aligned regions; where the
    // kernel's transparent huge pages are `always` (common), every 2 MB of
    // them that is touched at all becomes resident whole. At 10,000 models
    // that was a third of the peak RSS for nothing (BENCHMARKS.md, section
    // 3); turning them off for this process cost no CPU there. It only
    // fails on kernels without the setting, where there is nothing to undo.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let cli = Cli::parse();
    let (log_format, log_level) = match &cli.command {
        Command::Run {
            log_format,
            log_level,
            ..
        }
        | Command::Simulate {
            log_format,
            log_level,
            ..
        } => (*log_format, *log_level),
        Command::CheckConfig {
            file,
            web_config_file,
        } => {
            let web = web_config_file
                .as_deref()
                .map_or(0, app::web::check_web_config);
            return ExitCode::from(app::check_config(file).max(web) as u8);
        }
        Command::CheckWebConfig { file } => {
            return ExitCode::from(app::web::check_web_config(file) as u8);
        }
        Command::Backtest { .. } | Command::Baseline { .. } => (LogFormat::Logfmt, LogLevel::Warn),
        Command::Outbox {
            storage_path,
            command,
        } => {
            let code = match command.clone().into_app() {
                Ok(command) => app::outbox::run(storage_path, &command, &mut std::io::stdout()),
                Err(message) => {
                    eprintln!("model-monitor outbox: {message}");
                    2
                }
            };
            return ExitCode::from(code as u8);
        }
    };
    init_logging(log_format, log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("model-monitor: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = app::shutdown_on_signals();
        match cli.command {
            Command::Run {
                config_file,
                listen_address,
                read_header_timeout,
                idle_timeout,
                max_connections,
                web_config_file,
                storage_path,
                quarantine_corrupt,
                enable_lifecycle,
                ..
            } => {
                let listen =
                    app::parse_listen_address(&listen_address).map_err(anyhow::Error::msg)?;
                let storage = app::Storage {
                    path: storage_path,
                    quarantine_corrupt,
                };
                let limits = model_monitor::sinks::exporter::server::HttpLimits {
                    read_header_timeout,
                    idle_timeout,
                    max_connections: max_connections as usize,
                };
                app::run(
                    &config_file,
                    listen,
                    limits,
                    web_config_file.as_deref(),
                    &storage,
                    enable_lifecycle,
                    shutdown,
                )
                .await
            }
            Command::Simulate {
                listen_address,
                models,
                seed,
                drift_model,
                drift_after,
                rate,
                class_mix,
                calibration,
                ..
            } => {
                let listen =
                    app::parse_listen_address(&listen_address).map_err(anyhow::Error::msg)?;
                if models == 0 {
                    anyhow::bail!("--models must be at least 1");
                }
                if !(rate.is_finite() && rate > 0.0) {
                    anyhow::bail!("--rate must be a positive number of requests per second");
                }
                let options = SimulateOptions {
                    models,
                    seed,
                    drift_model,
                    drift_after,
                    rate,
                    class_mix,
                    calibration,
                };
                simulate::run(options, listen, shutdown).await
            }
            Command::Backtest {
                config_file,
                from,
                to,
                step,
                format,
                output,
                scores_output,
            } => {
                let (from, to) = parse_range(&from, &to)?;
                let options = model_monitor::backtest::Options {
                    from,
                    to,
                    step,
                    charts: matches!(format, ReportFormat::Html),
                };
                let command = app::backtest::BacktestCommand {
                    config_file,
                    options,
                    format: format.into_app(),
                    output,
                    scores_output,
                };
                exit_unless_ok(app::backtest::run(command).await)
            }
            Command::Baseline {
                command:
                    BaselineCommand::Capture {
                        config_file,
                        monitor,
                        signal,
                        from,
                        to,
                        output,
                    },
            } => {
                let (from, to) = parse_range(&from, &to)?;
                let command = app::baseline::CaptureCommand {
                    config_file,
                    monitor,
                    signal,
                    from,
                    to,
                    output,
                };
                exit_unless_ok(app::baseline::capture(command).await)
            }
            Command::CheckConfig { .. }
            | Command::CheckWebConfig { .. }
            | Command::Outbox { .. } => {
                unreachable!("handled before the runtime starts")
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "exiting");
            eprintln!("model-monitor: {error:#}");
            ExitCode::from(1)
        }
    }
}
