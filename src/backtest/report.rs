//! A backtest [`Report`] as text: a table for people, CSV for
//! spreadsheets, JSON for scripts. The HTML report is `html.rs`.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Episode, Report};

/// The output formats of `backtest --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Html,
}

/// Writes `report` in `format`.
pub fn write_report(report: &Report, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Table => write_table(report, out),
        Format::Csv => write_csv(report, out),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n")
        }
        Format::Html => super::write_html(report, out),
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `model=fraud,version=v3`.
pub(super) fn labels(episode: &Episode) -> String {
    episode
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn end(episode: &Episode) -> String {
    episode.end.map_or_else(|| "open".to_owned(), time)
}

/// An episode as the table and the HTML report show it.
pub(super) fn episode_cells(episode: &Episode) -> Vec<String> {
    vec![
        episode.monitor.clone(),
        labels(episode),
        episode.signal.clone(),
        episode.detector.clone(),
        time(episode.start),
        end(episode),
        format!("{:.4}", episode.peak_score),
        format!("{:.4}", episode.threshold),
    ]
}

/// A detector's counts as the table and the HTML report show them.
pub(super) fn detector_cells(stats: &super::DetectorStats) -> Vec<String> {
    vec![
        stats.monitor.clone(),
        stats.signal.clone(),
        stats.detector.clone(),
        stats.decided.to_string(),
        stats.undecided.to_string(),
        stats.drifting.to_string(),
        stats.episodes.to_string(),
        format!("{:.1}", stats.drifting_per_day),
    ]
}

/// Rows of cells as columns padded to their widest cell.
fn columns(rows: &[Vec<String>], out: &mut dyn Write) -> std::io::Result<()> {
    let width = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..width)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

fn write_table(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "backtest {} to {}, every {}s: {} evaluations, {} episodes",
        time(report.from),
        time(report.to),
        report.step_seconds,
        report.evaluations,
        report.episodes.len()
    )?;
    writeln!(out)?;
    let mut rows = vec![
        [
            "MONITOR",
            "MODEL",
            "SIGNAL",
            "DETECTOR",
            "START",
            "END",
            "PEAK",
            "THRESHOLD",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    rows.extend(report.episodes.iter().map(episode_cells));
    columns(&rows, out)?;
    writeln!(out)?;
    let mut rows = vec![
        [
            "MONITOR",
            "SIGNAL",
            "DETECTOR",
            "DECIDED",
            "UNDECIDED",
            "DRIFTING",
            "EPISODES",
            "DRIFTING/DAY",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    rows.extend(report.detectors.iter().map(detector_cells));
    columns(&rows, out)
}

/// A CSV field, quoted when it must be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The episodes, one a row; then, after a blank line, the detectors.
fn write_csv(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "monitor,labels,signal,detector,pending_since,start,end,peak_score,peak_at,threshold"
    )?;
    for e in &report.episodes {
        let cells = [
            e.monitor.clone(),
            labels(e),
            e.signal.clone(),
            e.detector.clone(),
            time(e.pending_since),
            time(e.start),
            end(e),
            e.peak_score.to_string(),
            time(e.peak_at),
            e.threshold.to_string(),
        ];
        let cells: Vec<String> = cells.iter().map(|c| field(c)).collect();
        writeln!(out, "{}", cells.join(","))?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "monitor,signal,detector,decided,undecided,drifting,episodes,drifting_per_day"
    )?;
    for s in &report.detectors {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            field(&s.monitor),
            field(&s.signal),
            field(&s.detector),
            s.decided,
            s.undecided,
            s.drifting,
            s.episodes,
            s.drifting_per_day
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::DetectorStats;

    fn report() -> Report {
        let at: DateTime<Utc> = "2026-03-01T00:10:00Z".parse().unwrap();
        Report {
            from: "2026-03-01T00:00:00Z".parse().unwrap(),
            to: "2026-03-02T00:00:00Z".parse().unwrap(),
            step_seconds: 30.0,
            evaluations: 2881,
            episodes: vec![Episode {
                monitor: "classifiers".to_owned(),
                labels: [("model".to_owned(), "fraud, eu".to_owned())].into(),
                signal: "confidence".to_owned(),
                detector: "psi".to_owned(),
                pending_since: at,
                start: at,
                end: None,
                peak_score: 0.41234,
                peak_at: at,
                threshold: 0.2,
            }],
            detectors: vec![DetectorStats {
                monitor: "classifiers".to_owned(),
                signal: "confidence".to_owned(),
                detector: "psi".to_owned(),
                decided: 2800,
                undecided: 81,
                drifting: 12,
                episodes: 1,
                drifting_per_day: 12.0,
            }],
            charts: Vec::new(),
        }
    }

    fn text(format: Format) -> String {
        let mut out = Vec::new();
        write_report(&report(), format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_table_lists_open_episodes_and_detector_counts() {
        let table = text(Format::Table);
        assert!(table.contains("2881 evaluations, 1 episodes"), "{table}");
        let row = table
            .lines()
            .find(|l| l.starts_with("classifiers  model=fraud"))
            .expect(&table);
        assert!(row.contains("2026-03-01T00:10:00Z  open"), "{row}");
        assert!(row.contains("0.4123"), "{row}");
        assert!(table.contains("2800"), "{table}");
    }

    #[test]
    fn csv_quotes_fields_with_commas() {
        let csv = text(Format::Csv);
        let row = csv.lines().nth(1).unwrap();
        assert!(
            row.starts_with("classifiers,\"model=fraud, eu\",confidence,psi"),
            "{row}"
        );
        assert!(row.contains(",open,"), "{row}");
    }

    #[test]
    fn json_has_null_for_an_open_end() {
        let json: serde_json::Value = serde_json::from_str(&text(Format::Json)).unwrap();
        assert_eq!(json["episodes"][0]["end"], serde_json::Value::Null);
        assert_eq!(json["detectors"][0]["decided"], 2800);
    }
}
