//! Prometheus-style durations (`30s`, `5m`, `1h30m`, `7d`, `250ms`).
//!
//! The config file, the CLI and PromQL all speak this format, so one parser
//! and one formatter live here, with [`grid_floor`], the grid of steps since
//! the Unix epoch that evaluation times and reference times lie on.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error(
        "invalid duration {0:?}: expected a number followed by a unit (ms, s, m, h, d, w, y), e.g. 30s or 1h30m"
    )]
    Invalid(String),
    #[error("invalid duration {0:?}: units must go from largest to smallest, each once")]
    UnitOrder(String),
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses a Prometheus duration: one or more `<integer><unit>` parts with units
/// `y`, `w`, `d`, `h`, `m`, `s`, `ms`, largest first, each at most once.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("ms", 1),
        ("m", 60 * 1000),
        ("s", 1000),
    ];
    // Order in which units may appear (largest first).
    const ORDER: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    let bytes = text.as_bytes();
    let mut index = 0;
    let mut total_ms: u64 = 0;
    let mut last_rank: Option<usize> = None;
    while index < bytes.len() {
        let digits_start = index;
        while index < bytes.len() && bytes[index].is_ascii_digit() {
            index += 1;
        }
        if index == digits_start {
            return Err(DurationError::Invalid(text.to_owned()));
        }
        let number: u64 = text[digits_start..index]
            .parse()
            .map_err(|_| DurationError::Overflow(text.to_owned()))?;
        let rest = &text[index..];
        let (unit, factor) = UNITS
            .iter()
            .find(|(unit, _)| rest.starts_with(unit))
            .ok_or_else(|| DurationError::Invalid(text.to_owned()))?;
        index += unit.len();
        let rank = ORDER
            .iter()
            .position(|u| u == unit)
            .expect("unit is listed");
        if last_rank.is_some_and(|last| rank <= last) {
            return Err(DurationError::UnitOrder(text.to_owned()));
        }
        last_rank = Some(rank);
        total_ms = number
            .checked_mul(*factor)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| DurationError::Overflow(text.to_owned()))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration for PromQL: whole units where exact, else milliseconds.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis() as u64;
    if ms == 0 {
        return "0s".to_owned();
    }
    for (unit, factor) in [
        ("d", 86_400_000u64),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms.is_multiple_of(factor) {
            return format!("{}{unit}", ms / factor);
        }
    }
    format!("{ms}ms")
}

/// The last point at or before `time` on the grid of `interval`-long steps
/// since the Unix epoch, to the millisecond (`time` itself, to the
/// millisecond, when `interval` is shorter than one).
pub fn grid_floor(time: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    let step = interval.as_millis() as i64;
    let millis = time.timestamp_millis();
    let floor = if step > 0 {
        millis - millis.rem_euclid(step)
    } else {
        millis
    };
    DateTime::from_timestamp_millis(floor).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected_ms: Option<u64>) {
        let parsed = parse_duration(text).ok().map(|d| d.as_millis() as u64);
        assert_eq!(parsed, expected_ms, "{text}");
    }

    #[test]
    fn parses_prometheus_durations() {
        check("30s", Some(30_000));
        check("5m", Some(300_000));
        check("1h30m", Some(5_400_000));
        check("7d", Some(604_800_000));
        check("250ms", Some(250));
        check("1w", Some(604_800_000));
        check("1m30s500ms", Some(90_500));
    }

    #[test]
    fn rejects_malformed_durations() {
        check("", None);
        check("5", None);
        check("m", None);
        check("5x", None);
        check("-5m", None);
        check("1.5h", None);
        check("30m1h", None);
        check("5m5m", None);
        check("99999999999999999999s", None);
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(86_400 * 7)), "7d");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn grid_floor_is_the_last_multiple_of_the_step_since_the_epoch() {
        let time = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let hour = Duration::from_secs(3600);
        let cases = [
            ("2026-12-01T20:59:59.999Z", hour, "2026-12-01T20:00:00Z"),
            ("2026-12-01T21:00:00Z", hour, "2026-12-01T21:00:00Z"),
            ("2026-12-01T21:00:00.001Z", hour, "2026-12-01T21:00:00Z"),
            (
                "2026-12-01T21:07:30Z",
                Duration::from_secs(300),
                "2026-12-01T21:05:00Z",
            ),
            ("1969-12-31T23:30:00Z", hour, "1969-12-31T23:00:00Z"),
            (
                "2026-12-01T21:07:30.123Z",
                Duration::ZERO,
                "2026-12-01T21:07:30.123Z",
            ),
            (
                "2026-12-01T21:07:30.123456Z",
                Duration::from_micros(10),
                "2026-12-01T21:07:30.123Z",
            ),
        ];
        for (at, step, expected) in cases {
            assert_eq!(
                grid_floor(time(at), step),
                time(expected),
                "{at} on {step:?}"
            );
        }
    }
}
