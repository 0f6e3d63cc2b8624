//! The `monitors[].reference` section: what a monitor's current window is
//! compared with, and how often it is queried anew (`refresh`).
//!
//! A reference is evaluated at its own time, a pure function of the
//! evaluation time: `grid_floor(at, refresh)`, the last multiple of
//! `refresh` since the Unix epoch at or before `at` ([`ReferenceRefresh`]).
//! Replicas and `backtest` therefore query the same reference at the same
//! time, and a reference queried once serves every evaluation until that
//! time moves.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::decode::{Decoder, Fields};
use super::tree::Node;

/// Default `monitors[].reference`: `{offset: 7d}`.
pub const DEFAULT_REFERENCE_OFFSET: Duration = Duration::from_secs(7 * 24 * 3600);

/// Default `reference.refresh` of a `window: w` reference: `w` divided by
/// this, at most [`MAX_DEFAULT_REFRESH`], rounded down to a whole number of
/// evaluation intervals (at least one). A day's
/// window moves by a twenty-fourth of itself between refreshes, so its
/// counts change by about 4% at the most.
pub const DEFAULT_WINDOW_REFRESH_DIVISOR: u32 = 24;
/// The longest default `reference.refresh`.
pub const MAX_DEFAULT_REFRESH: Duration = Duration::from_secs(3600);

/// The ways to give a reference, one of which a `reference` mapping holds.
const REFERENCE_KINDS: [&str; 5] = ["offset", "offsets", "window", "range", "baseline_file"];

/// What the current window is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum ReferenceConfig {
    /// The same window length, this long ago (PromQL `offset`).
    Offset(Duration),
    /// The same window length at each of these times ago, pooled: bucket
    /// counts and sums added up (a seasonal reference such as
    /// `[7d, 14d, 21d]`). At least one, distinct, each positive.
    Offsets(Vec<Duration>),
    /// The span of this length just before the current window.
    Window(Duration),
    /// A fixed span (PromQL `@ end` over `end - start`); `start < end`.
    Range {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// Bucket counts recorded in a file (see `crate::sources::baseline`).
    BaselineFile(PathBuf),
}

impl ReferenceConfig {
    /// The kind's key in the file: `offset`, `offsets`, `window`, `range`
    /// or `baseline_file`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReferenceConfig::Offset(_) => REFERENCE_KINDS[0],
            ReferenceConfig::Offsets(_) => REFERENCE_KINDS[1],
            ReferenceConfig::Window(_) => REFERENCE_KINDS[2],
            ReferenceConfig::Range { .. } => REFERENCE_KINDS[3],
            ReferenceConfig::BaselineFile(_) => REFERENCE_KINDS[4],
        }
    }
}

impl ReferenceConfig {
    /// When the reference is queried, given the `refresh` the file sets
    /// (`None`: the kind's default) and the evaluation interval.
    ///
    /// - `offset` and `offsets` line the reference up with the current
    ///   window (the same hours a week ago): by default they are queried
    ///   at every evaluation, since an older reference time shifts that
    ///   alignment by as much. A `refresh` trades it for fewer queries.
    /// - `window: w`, the span just before the current window, moves little
    ///   between evaluations: by default `min(w / 24, 1h)` rounded down to
    ///   a whole number of intervals, at least one.
    /// - `range` is fixed: queried once, at its end, and again only after a
    ///   reload.
    /// - `baseline_file` is read once, and again by a reload.
    pub fn refresh(&self, given: Option<Duration>, interval: Duration) -> ReferenceRefresh {
        match (self, given) {
            (ReferenceConfig::Range { end, .. }, _) => ReferenceRefresh::Fixed(*end),
            (ReferenceConfig::BaselineFile(_), _) => ReferenceRefresh::File,
            (_, Some(refresh)) => ReferenceRefresh::Every(refresh),
            (ReferenceConfig::Window(window), None) => {
                // A whole number of intervals, so that refreshes fall on
                // evaluation times.
                let wanted = (*window / DEFAULT_WINDOW_REFRESH_DIVISOR).min(MAX_DEFAULT_REFRESH);
                let steps = wanted.as_millis() / interval.as_millis().max(1);
                ReferenceRefresh::Every(interval * u32::try_from(steps.max(1)).unwrap_or(1))
            }
            (ReferenceConfig::Offset(_) | ReferenceConfig::Offsets(_), None) => {
                ReferenceRefresh::EveryEvaluation
            }
        }
    }
}

/// When a reference's queries are sent, and with which evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceRefresh {
    /// At every evaluation, at its evaluation time; nothing is cached.
    EveryEvaluation,
    /// At `grid_floor(at, refresh)`: queried again only when that moves.
    Every(Duration),
    /// At this time (a range's end: its queries carry `@`), once.
    Fixed(DateTime<Utc>),
    /// Never: the reference is a baseline file.
    File,
}

impl ReferenceRefresh {
    /// The evaluation time of the reference used by the evaluation at
    /// `at`; `None` for a baseline file, which has none.
    pub fn reference_time(self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            ReferenceRefresh::EveryEvaluation => Some(at),
            ReferenceRefresh::Every(refresh) => Some(crate::duration::grid_floor(at, refresh)),
            ReferenceRefresh::Fixed(time) => Some(time),
            ReferenceRefresh::File => None,
        }
    }

    /// Whether a queried reference is kept for later evaluations.
    pub fn caches(self) -> bool {
        matches!(
            self,
            ReferenceRefresh::Every(_) | ReferenceRefresh::Fixed(_)
        )
    }
}

impl Default for ReferenceConfig {
    /// The same window a week earlier.
    fn default() -> Self {
        ReferenceConfig::Offset(DEFAULT_REFERENCE_OFFSET)
    }
}

impl Decoder<'_> {
    /// A `reference` mapping: its kind and its `refresh`, if given.
    pub(super) fn reference(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<(ReferenceConfig, Option<Duration>)> {
        self.section(node, path, |d, fields| {
            let kind = d.reference_kind(fields, path);
            let refresh = d.optional(fields, "refresh", None, |d, n, p| {
                d.positive_duration(n, p).map(Some)
            });
            let (kind, refresh) = (kind?, refresh?);
            if let (Some(_), Some(key)) = (refresh, fields.key_node("refresh")) {
                let fixed = match kind {
                    ReferenceConfig::Range { .. } => {
                        Some("a range reference is fixed: it is queried once, and again on reload")
                    }
                    ReferenceConfig::BaselineFile(_) => {
                        Some("a baseline file is read once, and again on reload")
                    }
                    _ => None,
                };
                if let Some(message) = fixed {
                    d.report(key.line, &fields.path("refresh"), message);
                    return None;
                }
            }
            Some((kind, refresh))
        })
    }

    /// The one kind a `reference` mapping gives.
    fn reference_kind(&mut self, fields: &Fields<'_>, path: &str) -> Option<ReferenceConfig> {
        let given: Vec<&str> = REFERENCE_KINDS
            .into_iter()
            .filter(|key| fields.get(key).is_some())
            .collect();
        match given.as_slice() {
            [] => {
                self.report(
                    fields.line,
                    path,
                    format!("give exactly one of {}", REFERENCE_KINDS.join(", ")),
                );
                None
            }
            ["offset"] => self
                .required(fields, "offset", Self::positive_duration)
                .map(ReferenceConfig::Offset),
            ["offsets"] => self
                .required(fields, "offsets", Self::offsets)
                .map(ReferenceConfig::Offsets),
            ["window"] => self
                .required(fields, "window", Self::positive_duration)
                .map(ReferenceConfig::Window),
            ["range"] => self.required(fields, "range", Self::range),
            ["baseline_file"] => self
                .required(fields, "baseline_file", Self::file_path)
                .map(ReferenceConfig::BaselineFile),
            several => {
                self.report(
                    fields.line,
                    path,
                    format!(
                        "give exactly one of {}, found {}",
                        REFERENCE_KINDS.join(", "),
                        several.join(" and ")
                    ),
                );
                None
            }
        }
    }

    /// `short_window`: a positive duration shorter than `window` (when the
    /// window itself was read).
    pub(super) fn short_window(
        &mut self,
        node: &Node,
        path: &str,
        window: Option<Duration>,
    ) -> Option<Option<Duration>> {
        let short = self.positive_duration(node, path)?;
        if let Some(window) = window
            && short >= window
        {
            self.report(
                node.line,
                path,
                format!(
                    "must be shorter than window ({})",
                    crate::duration::format_duration(window)
                ),
            );
            return None;
        }
        Some(Some(short))
    }

    /// A non-empty list of distinct positive durations.
    fn offsets(&mut self, node: &Node, path: &str) -> Option<Vec<Duration>> {
        let items = self.sequence(node, path)?;
        if items.is_empty() {
            self.report(node.line, path, "at least one offset is required");
            return None;
        }
        let offsets = self.each(items, path, Self::positive_duration)?;
        for (index, offset) in offsets.iter().enumerate() {
            if let Some(first) = offsets[..index].iter().position(|o| o == offset) {
                self.report(
                    items[index].line,
                    &format!("{path}[{index}]"),
                    format!(
                        "duplicate offset {} (also {path}[{first}])",
                        crate::duration::format_duration(*offset)
                    ),
                );
                return None;
            }
        }
        Some(offsets)
    }

    fn range(&mut self, node: &Node, path: &str) -> Option<ReferenceConfig> {
        self.section(node, path, |d, fields| {
            let start = d.required(fields, "start", Self::timestamp);
            let end = d.required(fields, "end", Self::timestamp);
            let (start, end) = (start?, end?);
            if start >= end {
                d.report(node.line, path, "start must be before end");
                return None;
            }
            Some(ReferenceConfig::Range { start, end })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{ReferenceConfig, ReferenceRefresh, parse_str};

    const DAY: Duration = Duration::from_secs(86_400);
    const HOUR: Duration = Duration::from_secs(3600);

    /// A config with this `reference` mapping, parsed.
    fn parse(reference: &str) -> Result<ReferenceConfig, Vec<String>> {
        parse_refresh(reference).map(|(reference, _)| reference)
    }

    #[test]
    fn offsets_are_read_in_order() {
        assert_eq!(
            parse("{offsets: [7d, 14d, 21d]}"),
            Ok(ReferenceConfig::Offsets(vec![7 * DAY, 14 * DAY, 21 * DAY]))
        );
    }

    #[test]
    fn offsets_must_be_a_non_empty_list_of_distinct_positive_durations() {
        let path = "monitors[0].reference.offsets";
        let cases = [
            ("{offsets: []}", format!("5: {path}: at least one offset is required")),
            ("{offsets: 7d}", format!("5: {path}: expected a list, got a string")),
            (
                "{offsets: [7d, 0s]}",
                format!("5: {path}[1]: must be greater than 0"),
            ),
            (
                "{offsets: [7d, 14d, 7d]}",
                format!("5: {path}[2]: duplicate offset 7d (also {path}[0])"),
            ),
            (
                "{offset: 7d, offsets: [14d]}",
                "5: monitors[0].reference: give exactly one of offset, offsets, window, range, baseline_file, found offset and offsets".to_owned(),
            ),
        ];
        for (reference, expected) in cases {
            assert_eq!(parse(reference), Err(vec![expected]), "{reference}");
        }
    }

    /// A config with this `reference` mapping, parsed: the reference and
    /// its `refresh`.
    fn parse_refresh(reference: &str) -> Result<(ReferenceConfig, Option<Duration>), Vec<String>> {
        let text = format!(
            "prometheus:\n  url: http://prom:9090\nmonitors:\n  - name: m\n    reference: {reference}\n    signals:\n      c:\n        histogram: h\n        detectors: [{{type: ks}}]\n"
        );
        parse_str(&text, "c.yml")
            .map(|config| {
                let monitor = &config.monitors[0];
                (monitor.reference.clone(), monitor.reference_refresh)
            })
            .map_err(|error| error.lines())
    }

    #[test]
    fn refresh_is_read_beside_the_kind() {
        assert_eq!(
            parse_refresh("{window: 7d, refresh: 1h}"),
            Ok((ReferenceConfig::Window(7 * DAY), Some(HOUR)))
        );
        assert_eq!(
            parse_refresh("{offsets: [7d, 14d], refresh: 15m}"),
            Ok((
                ReferenceConfig::Offsets(vec![7 * DAY, 14 * DAY]),
                Some(HOUR / 4)
            ))
        );
        assert_eq!(
            parse_refresh("{offset: 1d}"),
            Ok((ReferenceConfig::Offset(DAY), None))
        );
    }

    #[test]
    fn refresh_must_be_a_positive_duration_of_a_queried_reference() {
        let path = "monitors[0].reference";
        let cases = [
            (
                "{window: 7d, refresh: 0s}",
                format!("5: {path}.refresh: must be greater than 0"),
            ),
            (
                "{window: 7d, refresh: hourly}",
                format!(
                    "5: {path}.refresh: invalid duration \"hourly\": expected a number followed by a unit (ms, s, m, h, d, w, y), e.g. 30s or 1h30m"
                ),
            ),
            (
                "{range: {start: 2026-11-01T00:00:00Z, end: 2026-11-08T00:00:00Z}, refresh: 1h}",
                format!(
                    "5: {path}.refresh: a range reference is fixed: it is queried once, and again on reload"
                ),
            ),
            (
                "{baseline_file: b.json, refresh: 1h}",
                format!("5: {path}.refresh: a baseline file is read once, and again on reload"),
            ),
            (
                "{refresh: 1h}",
                format!(
                    "5: {path}: give exactly one of offset, offsets, window, range, baseline_file"
                ),
            ),
        ];
        for (reference, expected) in cases {
            assert_eq!(parse_refresh(reference), Err(vec![expected]), "{reference}");
        }
    }

    #[test]
    fn each_kind_has_its_default_refresh() {
        let interval = Duration::from_secs(30);
        let end = "2026-11-08T00:00:00Z".parse().unwrap();
        let minute = Duration::from_secs(60);
        let cases = [
            (
                ReferenceConfig::Offset(7 * DAY),
                ReferenceRefresh::EveryEvaluation,
            ),
            (
                ReferenceConfig::Offsets(vec![7 * DAY, 14 * DAY]),
                ReferenceRefresh::EveryEvaluation,
            ),
            (
                ReferenceConfig::Window(7 * DAY),
                ReferenceRefresh::Every(HOUR),
            ),
            (ReferenceConfig::Window(DAY), ReferenceRefresh::Every(HOUR)),
            (
                ReferenceConfig::Window(2 * HOUR),
                ReferenceRefresh::Every(5 * minute),
            ),
            (
                ReferenceConfig::Window(5 * minute),
                ReferenceRefresh::Every(interval),
            ),
            (
                ReferenceConfig::Range {
                    start: "2026-11-01T00:00:00Z".parse().unwrap(),
                    end,
                },
                ReferenceRefresh::Fixed(end),
            ),
            (
                ReferenceConfig::BaselineFile("b.json".into()),
                ReferenceRefresh::File,
            ),
        ];
        for (reference, expected) in cases {
            assert_eq!(reference.refresh(None, interval), expected, "{reference:?}");
        }
        assert_eq!(
            ReferenceConfig::Offset(DAY).refresh(Some(HOUR), interval),
            ReferenceRefresh::Every(HOUR),
            "a refresh given overrides the default"
        );
        assert_eq!(
            ReferenceConfig::Window(DAY).refresh(None, 2 * HOUR),
            ReferenceRefresh::Every(2 * HOUR),
            "never more often than the evaluations"
        );
        let second = Duration::from_secs(1);
        assert_eq!(
            ReferenceConfig::Window(150 * second).refresh(None, 2 * second),
            ReferenceRefresh::Every(6 * second),
            "6.25 s rounded down to three intervals"
        );
        assert_eq!(
            ReferenceConfig::Window(7 * DAY).refresh(None, 7 * second),
            ReferenceRefresh::Every(514 * 7 * second),
            "1 h rounded down to whole intervals"
        );
    }

    #[test]
    fn the_reference_time_is_a_pure_function_of_the_evaluation_time() {
        let time = |text: &str| text.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        let at = time("2026-12-01T20:59:30Z");
        assert_eq!(
            ReferenceRefresh::EveryEvaluation.reference_time(at),
            Some(at)
        );
        assert_eq!(
            ReferenceRefresh::Every(HOUR).reference_time(at),
            Some(time("2026-12-01T20:00:00Z"))
        );
        assert_eq!(
            ReferenceRefresh::Every(HOUR).reference_time(time("2026-12-01T21:00:00Z")),
            Some(time("2026-12-01T21:00:00Z"))
        );
        let end = time("2026-11-08T00:00:00Z");
        assert_eq!(ReferenceRefresh::Fixed(end).reference_time(at), Some(end));
        assert_eq!(ReferenceRefresh::File.reference_time(at), None);
        assert!(ReferenceRefresh::Every(HOUR).caches());
        assert!(ReferenceRefresh::Fixed(end).caches());
        assert!(!ReferenceRefresh::EveryEvaluation.caches());
    }
}
