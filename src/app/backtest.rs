//! `model-monitor backtest`: loads the config, replays the range
//! ([`crate::backtest`]) with a progress bar on a terminal, and writes the
//! report to stdout or `--output`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::backtest::{self, Format, Options};
use crate::config;

/// What `backtest` was asked for, flags parsed.
pub struct BacktestCommand {
    pub config_file: PathBuf,
    pub options: Options,
    pub format: Format,
    /// The report's file; stdout when `None`.
    pub output: Option<PathBuf>,
    /// Every evaluation's scores as JSON lines, when given.
    pub scores_output: Option<PathBuf>,
}

/// Runs the command; returns the exit code (1 with the reason on stderr).
pub async fn run(command: BacktestCommand) -> i32 {
    match backtest_to_files(command).await {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("model-monitor backtest: {error:#}");
            1
        }
    }
}

fn create(path: &Path, what: &str) -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
    std::fs::File::create(path)
        .map(std::io::BufWriter::new)
        .map_err(|error| {
            anyhow::anyhow!("cannot create the {what} file {}: {error}", path.display())
        })
}

/// The config file, or every problem with it on stderr and their count as
/// the error (for the offline commands).
pub(super) fn load_config(path: &Path) -> anyhow::Result<config::Config> {
    config::load_file(path).map_err(|error| {
        for problem in &error.problems {
            eprintln!("{problem}");
        }
        anyhow::anyhow!("{} problem(s) in {}", error.problems.len(), path.display())
    })
}

/// `to`, or, when it is later, the latest time the live loop would query
/// now: `evaluation.query_offset` behind the clock, where the engine may
/// not have all data yet. A move is noted on stderr, for `command`.
pub(super) fn no_later_than_live(
    command: &str,
    to: chrono::DateTime<chrono::Utc>,
    config: &config::Config,
) -> chrono::DateTime<chrono::Utc> {
    let offset = config.query_offset();
    let latest = crate::engine::latest_evaluation_time(chrono::Utc::now(), offset);
    if to <= latest {
        return to;
    }
    eprintln!(
        "model-monitor {command}: --to moved back to {} (now minus evaluation.query_offset {})",
        latest.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        crate::duration::format_duration(offset)
    );
    latest
}

async fn backtest_to_files(mut command: BacktestCommand) -> anyhow::Result<()> {
    let config = load_config(&command.config_file)?;
    command.options.to = no_later_than_live("backtest", command.options.to, &config);
    let mut scores = command
        .scores_output
        .as_deref()
        .map(|path| create(path, "scores"))
        .transpose()?;
    // Created before the replay, so a path that cannot be written fails at
    // once rather than after a long run.
    let mut output = command
        .output
        .as_deref()
        .map(|path| create(path, "output"))
        .transpose()?;
    let bar = progress_bar();
    let report = backtest::backtest(
        config,
        &command.options,
        |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
        scores.as_mut().map(|s| s as &mut dyn Write),
    )
    .await?;
    bar.finish_and_clear();
    if let Some(mut scores) = scores {
        scores.flush()?;
    }
    match &mut output {
        Some(file) => {
            backtest::write_report(&report, command.format, file)?;
            file.flush()?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            backtest::write_report(&report, command.format, &mut stdout)?;
            stdout.flush()?;
        }
    }
    Ok(())
}

/// A bar with an ETA on stderr when both stdout and stderr are terminals;
/// hidden otherwise (pipes, files, CI logs).
fn progress_bar() -> ProgressBar {
    if !(std::io::stderr().is_terminal() && std::io::stdout().is_terminal()) {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} evaluations, eta {eta}",
        )
        .expect("a valid template"),
    );
    bar
}
