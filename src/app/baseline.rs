//! `model-monitor baseline capture`: a monitor's per-model bucket counts
//! over a fixed range of its PromQL API, written as a baseline file (the
//! format `reference: {baseline_file: ...}` reads, `sources::baseline`).
//! The counts are those of `reference: {range: {start, end}}` over the same
//! range: the same query, kept in a file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::config::ReferenceConfig;
use crate::sources::WindowRole;
use crate::sources::baseline::{self, Baseline};
use crate::sources::prometheus::{HistogramGrouper, PromClient, grouper_labels, histogram_query};

/// What `baseline capture` was asked for, flags parsed.
pub struct CaptureCommand {
    pub config_file: PathBuf,
    pub monitor: String,
    /// One signal; every signal of the monitor when `None`.
    pub signal: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The baseline file; stdout when `None`.
    pub output: Option<PathBuf>,
}

/// Runs the command; returns the exit code (1 with the reason on stderr).
pub async fn capture(command: CaptureCommand) -> i32 {
    match capture_text(&command).await {
        Ok(text) => {
            let written = match &command.output {
                Some(path) => std::fs::write(path, &text)
                    .map_err(|error| format!("cannot write {}: {error}", path.display())),
                None => {
                    print!("{text}");
                    Ok(())
                }
            };
            match written {
                Ok(()) => 0,
                Err(message) => {
                    eprintln!("model-monitor baseline capture: {message}");
                    1
                }
            }
        }
        Err(error) => {
            eprintln!("model-monitor baseline capture: {error:#}");
            1
        }
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The baseline file's text.
async fn capture_text(command: &CaptureCommand) -> anyhow::Result<String> {
    let config = super::backtest::load_config(&command.config_file)?;
    // As the live loop and `backtest`: no later than the engine has all data.
    let to = super::backtest::no_later_than_live("baseline capture", command.to, &config);
    if command.from >= to {
        anyhow::bail!(
            "--from ({}) must be before --to ({})",
            time(command.from),
            time(to)
        );
    }
    let names: Vec<&str> = config.monitors.iter().map(|m| m.name.as_str()).collect();
    let Some(monitor) = config.monitors.iter().find(|m| m.name == command.monitor) else {
        anyhow::bail!(
            "no monitor named {:?} in {} (monitors: {})",
            command.monitor,
            command.config_file.display(),
            names.join(", ")
        );
    };
    if let Some(signal) = &command.signal
        && !monitor.signals.contains_key(signal)
    {
        anyhow::bail!(
            "monitor {:?} has no signal {signal:?} (signals: {})",
            monitor.name,
            monitor
                .signals
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut range = monitor.clone();
    range.reference = ReferenceConfig::Range {
        start: command.from,
        end: to,
    };
    let client = PromClient::new(&config.prometheus)?;
    let taken = Utc::now();
    let mut header = vec![
        format!(
            "model-monitor baseline capture: monitor {}, taken {}",
            monitor.name,
            time(taken)
        ),
        format!(
            "use as: reference: {{baseline_file: FILE}} (group_by: [{}])",
            monitor.group_by.join(", ")
        ),
    ];
    let mut captured = Baseline {
        range: Some((command.from, to)),
        ..Baseline::default()
    };
    let wanted = grouper_labels(&monitor.group_by);
    for (signal, signal_config) in &monitor.signals {
        if command.signal.as_ref().is_some_and(|only| only != signal) {
            continue;
        }
        let query = histogram_query(&range, &signal_config.histogram, WindowRole::Reference)
            .expect("a range reference has a query");
        header.push(format!("query ({signal}): {query}"));
        let mut grouper = HistogramGrouper::with_limits(client.answer_limits());
        let warnings = client
            .query_vector_into(&query, to, &wanted, &mut grouper)
            .await
            .map_err(|error| anyhow::anyhow!("signal {signal}: query failed: {error}"))?;
        for warning in warnings {
            eprintln!("signal {signal}: promql warning: {warning}");
        }
        let mut models = BTreeMap::new();
        for (model, window) in grouper.finish(&monitor.group_by) {
            match window.histogram {
                Ok(histogram) => {
                    if window.series_at_start < 1.0 {
                        eprintln!(
                            "signal {signal}, model {model}: its series begin after --from, so the counts cover only part of the range"
                        );
                    }
                    models.insert(model, histogram);
                }
                Err(error) => eprintln!("signal {signal}, model {model}: left out: {error}"),
            }
        }
        captured.signals.insert(signal.clone(), models);
    }
    if captured.signals.values().all(BTreeMap::is_empty) {
        anyhow::bail!(
            "the range {} to {} holds no histogram of monitor {:?}'s models",
            time(command.from),
            time(to),
            monitor.name
        );
    }
    Ok(baseline::write(&captured, &header))
}
