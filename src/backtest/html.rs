//! The backtest's HTML report: one self-contained page (inline CSS and
//! SVG, no script, no external font or image). Per alerted model and
//! detector, the score over the range against its threshold with the
//! episodes shaded, and the reference and current windows at the first
//! episode's peak as bars; then the episode and detector tables.

use std::fmt::Write as _;
use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Chart, Episode, PeakWindows, Report};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const MARGIN: f64 = 48.0;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fff}\
h1{font-size:22px}h2{font-size:17px;margin:28px 0 6px}\
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccd;padding:3px 8px;text-align:left}\
th{background:#eef0f6}.charts{display:flex;flex-wrap:wrap;gap:16px}\
svg{background:#fafbfd;border:1px solid #dde}.legend span{margin-right:14px}\
.ref{color:#8c96a8}.cur{color:#2962c8}.thr{color:#c62828}";

/// `<`, `>`, `&` and quotes as entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Writes the whole page.
pub fn write_html(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>model-monitor backtest</title><style>{STYLE}</style></head><body>\n\
<h1>Backtest {} to {}</h1>\n<p>{} evaluations every {}s, {} episode(s).</p>\n",
        time(report.from),
        time(report.to),
        report.evaluations,
        report.step_seconds,
        report.episodes.len()
    );
    for chart in &report.charts {
        let episodes: Vec<&Episode> = report
            .episodes
            .iter()
            .filter(|e| super::chart_key(e) == chart.key)
            .collect();
        let labels: Vec<String> = chart
            .key
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = write!(
            page,
            "<section class=\"model\" data-model=\"{}\"><h2>{} {} / {} / {}</h2>\n\
<p class=\"legend\"><span class=\"cur\">&#9632; |score|</span><span class=\"thr\">- - threshold</span>\
<span>&#9632; episode</span></p><div class=\"charts\">",
            escape(&labels.join(",")),
            escape(&chart.key.monitor),
            escape(&labels.join(", ")),
            escape(&chart.key.signal),
            escape(&chart.key.detector),
        );
        score_chart(&mut page, report, chart, &episodes);
        if let Some(windows) = &chart.windows {
            bars(&mut page, windows, episodes.first().map(|e| e.peak_at));
        }
        page.push_str("</div></section>\n");
    }
    page.push_str("<h2>Episodes</h2>\n");
    table(
        &mut page,
        &[
            "monitor",
            "model",
            "signal",
            "detector",
            "start",
            "end",
            "peak",
            "threshold",
        ],
        report.episodes.iter().map(super::report::episode_cells),
    );
    page.push_str("<h2>Detectors</h2>\n");
    table(
        &mut page,
        &[
            "monitor",
            "signal",
            "detector",
            "decided",
            "undecided",
            "drifting",
            "episodes",
            "drifting/day",
        ],
        report.detectors.iter().map(super::report::detector_cells),
    );
    page.push_str("</body></html>\n");
    out.write_all(page.as_bytes())
}

/// A table with a header row, every cell escaped.
fn table(page: &mut String, header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    page.push_str("<table><tr>");
    for name in header {
        let _ = write!(page, "<th>{}</th>", escape(name));
    }
    page.push_str("</tr>\n");
    for row in rows {
        page.push_str("<tr>");
        for cell in row {
            let _ = write!(page, "<td>{}</td>", escape(&cell));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");
}

/// The score line, the threshold and the shaded episodes.
fn score_chart(page: &mut String, report: &Report, chart: &Chart, episodes: &[&Episode]) {
    let span = (report.to - report.from).num_milliseconds().max(1) as f64;
    let x = |at: DateTime<Utc>| {
        MARGIN + (at - report.from).num_milliseconds() as f64 / span * (WIDTH - 2.0 * MARGIN)
    };
    let threshold = episodes.first().map_or(f64::NAN, |e| e.threshold);
    let top = chart
        .points
        .iter()
        .map(|(_, score)| score.abs())
        .chain([threshold.abs()])
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        * 1.15;
    let top = if top > 0.0 { top } else { 1.0 };
    // Magnitudes: a signed score (z) drifts when |score| passes the
    // threshold.
    let y = |value: f64| HEIGHT - MARGIN - (value.abs().min(top) / top) * (HEIGHT - 2.0 * MARGIN);
    let _ = write!(
        page,
        "<svg class=\"score\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
xmlns=\"http://www.w3.org/2000/svg\" role=\"img\"><title>score over time</title>"
    );
    for episode in episodes {
        let start = x(episode.start);
        let end = x(episode.end.unwrap_or(report.to));
        let _ = write!(
            page,
            "<rect x=\"{start:.1}\" y=\"{MARGIN}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#f5c6c6\" opacity=\"0.7\"/>",
            (end - start).max(1.0),
            HEIGHT - 2.0 * MARGIN
        );
    }
    // Axes.
    let _ = write!(
        page,
        "<line x1=\"{MARGIN}\" y1=\"{b:.1}\" x2=\"{r:.1}\" y2=\"{b:.1}\" stroke=\"#667\"/>\
<line x1=\"{MARGIN}\" y1=\"{MARGIN}\" x2=\"{MARGIN}\" y2=\"{b:.1}\" stroke=\"#667\"/>\
<text x=\"{MARGIN}\" y=\"{t:.1}\" font-size=\"11\">{}</text>\
<text x=\"{r:.1}\" y=\"{t:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>\
<text x=\"{l:.1}\" y=\"{MARGIN}\" font-size=\"11\" text-anchor=\"end\">{}</text>\
<text x=\"{l:.1}\" y=\"{b:.1}\" font-size=\"11\" text-anchor=\"end\">0</text>",
        time(report.from),
        time(report.to),
        axis_label(top),
        b = HEIGHT - MARGIN,
        r = WIDTH - MARGIN,
        t = HEIGHT - MARGIN + 16.0,
        l = MARGIN - 4.0,
    );
    if threshold.is_finite() {
        let ty = y(threshold);
        let _ = write!(
            page,
            "<line x1=\"{MARGIN}\" y1=\"{ty:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\" stroke=\"#c62828\" stroke-dasharray=\"6 4\"/>",
            WIDTH - MARGIN
        );
    }
    let path: Vec<String> = chart
        .points
        .iter()
        .map(|(at, score)| format!("{:.1},{:.1}", x(*at), y(*score)))
        .collect();
    let _ = write!(
        page,
        "<polyline fill=\"none\" stroke=\"#2962c8\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        path.join(" ")
    );
}

/// An axis value short enough for the margin: three significant digits or
/// a whole number.
fn axis_label(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// The reference and current windows at the peak, bucket by bucket.
fn bars(page: &mut String, windows: &PeakWindows, at: Option<DateTime<Utc>>) {
    let buckets = windows.current.len().max(1);
    let slot = (WIDTH - 2.0 * MARGIN) / buckets as f64;
    let top = windows
        .reference
        .iter()
        .chain(&windows.current)
        .copied()
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE)
        * 1.1;
    let height = |share: f64| share / top * (HEIGHT - 2.0 * MARGIN);
    let _ = write!(
        page,
        "<svg class=\"windows\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
xmlns=\"http://www.w3.org/2000/svg\" role=\"img\"><title>reference and current window at the peak</title>\
<text x=\"{MARGIN}\" y=\"20\" font-size=\"12\"><tspan fill=\"#8c96a8\">&#9632; reference</tspan> \
<tspan fill=\"#2962c8\">&#9632; current</tspan> at the peak {}</text>",
        at.map(time).unwrap_or_default()
    );
    for (index, (reference, current)) in windows.reference.iter().zip(&windows.current).enumerate()
    {
        let left = MARGIN + index as f64 * slot;
        for (offset, share, color) in [(0.1, *reference, "#8c96a8"), (0.5, *current, "#2962c8")] {
            let h = height(share);
            let _ = write!(
                page,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{color}\"/>",
                left + slot * offset,
                HEIGHT - MARGIN - h,
                slot * 0.4
            );
        }
        let bound = windows
            .bounds
            .get(index)
            .map_or_else(|| "+Inf".to_owned(), |b| format!("{b}"));
        if buckets <= 12 || index % buckets.div_ceil(12) == 0 {
            let _ = write!(
                page,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                left + slot / 2.0,
                HEIGHT - MARGIN + 14.0,
                escape(&bound)
            );
        }
    }
    let _ = write!(
        page,
        "<line x1=\"{MARGIN}\" y1=\"{b:.1}\" x2=\"{:.1}\" y2=\"{b:.1}\" stroke=\"#667\"/></svg>",
        WIDTH - MARGIN,
        b = HEIGHT - MARGIN
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::ChartKey;

    #[test]
    fn the_page_is_self_contained_and_escapes_labels() {
        let at: DateTime<Utc> = "2026-03-01T00:10:00Z".parse().unwrap();
        let key = ChartKey {
            monitor: "m".to_owned(),
            labels: vec![("model".to_owned(), "<fraud>".to_owned())],
            signal: "confidence".to_owned(),
            detector: "psi".to_owned(),
        };
        let report = Report {
            from: "2026-03-01T00:00:00Z".parse().unwrap(),
            to: "2026-03-01T01:00:00Z".parse().unwrap(),
            step_seconds: 30.0,
            evaluations: 121,
            episodes: vec![Episode {
                monitor: "m".to_owned(),
                labels: [("model".to_owned(), "<fraud>".to_owned())].into(),
                signal: "confidence".to_owned(),
                detector: "psi".to_owned(),
                pending_since: at,
                start: at,
                end: None,
                peak_score: 0.5,
                peak_at: at,
                threshold: 0.2,
            }],
            detectors: Vec::new(),
            charts: vec![Chart {
                key,
                points: vec![(at, 0.5)],
                windows: Some(PeakWindows {
                    bounds: vec![0.5],
                    reference: vec![0.5, 0.5],
                    current: vec![0.1, 0.9],
                }),
            }],
        };
        let mut out = Vec::new();
        write_html(&report, &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.contains("&lt;fraud&gt;"), "{page}");
        assert!(!page.contains("<fraud>"));
        // No external resource: the only URL is the SVG namespace.
        assert!(
            !page
                .replace("http://www.w3.org/2000/svg", "")
                .contains("http")
        );
        assert!(!page.contains("<script"));
        assert!(!page.contains("<link"));
        assert_eq!(page.matches("<svg").count(), 2);
        assert!(page.contains("stroke-dasharray"), "a threshold line");
    }
}
