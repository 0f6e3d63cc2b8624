//! The times `--from` and `--to` take: RFC 3339 (`2026-03-01T00:00:00Z`),
//! `now`, and `now` minus or plus a duration in the repo's one format
//! (`now-7d`, `now-90m`, `now-1h30m`).

use chrono::{DateTime, Utc};

use crate::duration::parse_duration;

/// Parses one time, relative forms against `now`.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let trimmed = text.trim();
    if let Some(rest) = trimmed.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now);
        }
        let (sign, duration) = match (rest.strip_prefix('-'), rest.strip_prefix('+')) {
            (Some(duration), _) => (-1, duration),
            (_, Some(duration)) => (1, duration),
            _ => {
                return Err(format!(
                    "invalid time {text:?}: expected now, now-DURATION or now+DURATION (e.g. now-7d)"
                ));
            }
        };
        let duration =
            parse_duration(duration).map_err(|e| format!("invalid time {text:?}: {e}"))?;
        let duration = chrono::Duration::from_std(duration)
            .map_err(|_| format!("invalid time {text:?}: the duration is too long"))?;
        return if sign < 0 {
            now.checked_sub_signed(duration)
        } else {
            now.checked_add_signed(duration)
        }
        .ok_or_else(|| format!("invalid time {text:?}: out of range"));
    }
    DateTime::parse_from_rfc3339(trimmed)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|e| {
            format!("invalid time {text:?}: expected RFC 3339 (2026-03-01T00:00:00Z) or now-DURATION: {e}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rfc3339_and_times_relative_to_now() {
        let now: DateTime<Utc> = "2026-03-08T12:00:00Z".parse().unwrap();
        let cases = [
            ("now", "2026-03-08T12:00:00Z"),
            ("now-7d", "2026-03-01T12:00:00Z"),
            ("now-90m", "2026-03-08T10:30:00Z"),
            ("now+1h", "2026-03-08T13:00:00Z"),
            ("2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z"),
            ("2026-03-01T01:00:00+01:00", "2026-03-01T00:00:00Z"),
            ("2026-03-01T00:00:00.250Z", "2026-03-01T00:00:00.250Z"),
        ];
        for (text, expected) in cases {
            let expected: DateTime<Utc> = expected.parse().unwrap();
            assert_eq!(parse_time(text, now), Ok(expected), "{text}");
        }
    }

    #[test]
    fn names_what_is_wrong_with_a_bad_time() {
        let now = Utc::now();
        for (text, expected) in [
            ("now-", "invalid time \"now-\": empty duration"),
            ("now-7x", "invalid time \"now-7x\": invalid duration"),
            ("now7d", "expected now, now-DURATION"),
            ("yesterday", "expected RFC 3339"),
        ] {
            let error = parse_time(text, now).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
