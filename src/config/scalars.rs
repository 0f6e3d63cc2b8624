//! Readers of single values: strings, booleans, numbers with their rules,
//! durations, urls, file paths, headers, choices and timestamps. Each
//! reports its problem with the node's line and key path and gives `None`;
//! none ever shows a value that may be a secret.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use saphyr::ScalarOwned;

use super::decode::Decoder;
use super::tree::{Kind, Node, Scalar, join};
use crate::duration::{DurationError, parse_duration};

/// A rule on a number, with the message given when the number breaks it.
pub(super) type NumberRule = (fn(f64) -> bool, &'static str);

/// Numbers of at least zero.
pub(super) const NOT_NEGATIVE: NumberRule = (|v| v >= 0.0, "must not be negative");
/// Numbers strictly between 0 and 1 (quantiles, rates).
pub(super) const OPEN_UNIT: NumberRule = (
    |v| v > 0.0 && v < 1.0,
    "must be between 0 and 1 (exclusive)",
);
/// Numbers above zero.
pub(super) const POSITIVE: NumberRule = (|v| v > 0.0, "must be greater than 0");

impl Decoder<'_> {
    /// The scalar of a node; expansion failures were reported already.
    pub(super) fn scalar<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        expected: &str,
    ) -> Option<&'n Scalar> {
        match &node.kind {
            Kind::Scalar(scalar) if scalar.broken => None,
            Kind::Scalar(scalar) if !scalar.is_null() => Some(scalar),
            _ => {
                self.report(
                    node.line,
                    path,
                    format!("expected {expected}, got {}", node.kind_name()),
                );
                None
            }
        }
    }

    /// Any non-null scalar, as text.
    pub(super) fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        self.scalar(node, path, "a string")
            .map(|scalar| scalar.text.clone())
    }

    /// A string that is not empty or blank.
    pub(super) fn non_empty(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.string(node, path)?;
        if text.trim().is_empty() {
            self.report(node.line, path, "must not be empty");
            return None;
        }
        Some(text)
    }

    /// The typed value of a scalar when `pick` accepts it, else "expected
    /// `expected`, got ...".
    fn typed<T>(
        &mut self,
        node: &Node,
        path: &str,
        expected: &str,
        pick: impl FnOnce(ScalarOwned) -> Option<T>,
    ) -> Option<T> {
        let scalar = self.scalar(node, path, expected)?;
        let value = scalar.value().and_then(pick);
        if value.is_none() {
            self.report(
                node.line,
                path,
                format!("expected {expected}, got {}", node.kind_name()),
            );
        }
        value
    }

    pub(super) fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        self.typed(node, path, "true or false", |value| match value {
            ScalarOwned::Boolean(value) => Some(value),
            _ => None,
        })
    }

    pub(super) fn integer(&mut self, node: &Node, path: &str) -> Option<i64> {
        self.typed(node, path, "an integer", |value| match value {
            ScalarOwned::Integer(value) => Some(value),
            _ => None,
        })
    }

    /// An integer of at least `min`.
    pub(super) fn integer_at_least(&mut self, node: &Node, path: &str, min: i64) -> Option<i64> {
        let value = self.integer(node, path)?;
        if value < min {
            self.report(
                node.line,
                path,
                format!("must be at least {min}, got {value}"),
            );
            return None;
        }
        Some(value)
    }

    /// A finite number (integer or float).
    pub(super) fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
        let value = self.typed(node, path, "a number", |value| match value {
            ScalarOwned::Integer(value) => Some(value as f64),
            ScalarOwned::FloatingPoint(value) => Some(value.into_inner()),
            _ => None,
        })?;
        if !value.is_finite() {
            self.report(node.line, path, "must be a finite number");
            return None;
        }
        Some(value)
    }

    /// A number that satisfies `rule`, else the rule's message.
    pub(super) fn number_where(
        &mut self,
        node: &Node,
        path: &str,
        rule: NumberRule,
    ) -> Option<f64> {
        let value = self.number(node, path)?;
        if !(rule.0)(value) {
            self.report(node.line, path, format!("{}, got {value}", rule.1));
            return None;
        }
        Some(value)
    }

    pub(super) fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let scalar = self.scalar(node, path, "a duration such as 30s")?;
        if !matches!(scalar.value(), Some(ScalarOwned::String(_))) {
            self.report(
                node.line,
                path,
                format!(
                    "expected a duration such as 30s, got {} (add a unit: ms, s, m, h, d, w, y)",
                    node.kind_name()
                ),
            );
            return None;
        }
        match parse_duration(&scalar.text) {
            Ok(duration) => Some(duration),
            Err(error) => {
                self.report(node.line, path, duration_message(&error, scalar));
                None
            }
        }
    }

    /// A duration greater than zero.
    pub(super) fn positive_duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let duration = self.duration(node, path)?;
        if duration.is_zero() {
            self.report(node.line, path, "must be greater than 0");
            return None;
        }
        Some(duration)
    }

    /// An http or https URL. The value is never shown: URLs may embed tokens
    /// or passwords.
    pub(super) fn url(&mut self, node: &Node, path: &str) -> Option<url::Url> {
        let text = self.string(node, path)?;
        match url::Url::parse(text.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Some(url),
            Ok(_) => {
                self.report(
                    node.line,
                    path,
                    "invalid url: expected an http or https url with a host",
                );
                None
            }
            Err(error) => {
                self.report(node.line, path, format!("invalid url: {error}"));
                None
            }
        }
    }

    /// A list of strings, each with its node.
    pub(super) fn string_list<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
    ) -> Option<Vec<(String, &'n Node)>> {
        let items = self.sequence(node, path)?;
        self.each(items, path, |d, item, item_path| {
            d.string(item, item_path).map(|value| (value, item))
        })
    }

    /// HTTP headers: valid names; values are never shown (they often hold tokens).
    pub(super) fn headers(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let entries = self.entries(node, path)?;
        let mut headers = BTreeMap::new();
        let mut ok = true;
        for (key, key_node, value_node) in entries {
            let value_path = join(path, &key.raw);
            if reqwest::header::HeaderName::from_bytes(key.text.as_bytes()).is_err() {
                self.report(
                    key_node.line,
                    &value_path,
                    format!("invalid header name {}", key.describe()),
                );
                ok = false;
            }
            let Some(value) = self.string(value_node, &value_path) else {
                ok = false;
                continue;
            };
            if reqwest::header::HeaderValue::from_str(&value).is_err() {
                self.report(value_node.line, &value_path, "invalid header value");
                ok = false;
            }
            headers.insert(key.text.clone(), value);
        }
        ok.then_some(headers)
    }

    /// One of a fixed set of words.
    pub(super) fn choice(
        &mut self,
        node: &Node,
        path: &str,
        what: &str,
        valid: &[&str],
    ) -> Option<String> {
        let scalar = self.scalar(node, path, "a string")?;
        if valid.contains(&scalar.text.as_str()) {
            return Some(scalar.text.clone());
        }
        self.report(
            node.line,
            path,
            format!(
                "unknown {what} {}; valid {what}s: {}",
                scalar.describe(),
                valid.join(", ")
            ),
        );
        None
    }

    pub(super) fn timestamp(&mut self, node: &Node, path: &str) -> Option<DateTime<Utc>> {
        let scalar = self.scalar(node, path, "an RFC 3339 timestamp")?;
        match DateTime::parse_from_rfc3339(scalar.text.trim()) {
            Ok(time) => Some(time.with_timezone(&Utc)),
            Err(error) => {
                self.report(
                    node.line,
                    path,
                    format!(
                        "invalid RFC 3339 timestamp {}: {error} (e.g. 2024-05-01T00:00:00Z)",
                        scalar.describe()
                    ),
                );
                None
            }
        }
    }
}

fn duration_message(error: &DurationError, scalar: &Scalar) -> String {
    let shown = scalar.describe();
    match error {
        DurationError::Empty => "empty duration; expected e.g. 30s or 1h30m".to_owned(),
        DurationError::Invalid(_) => format!(
            "invalid duration {shown}: expected a number followed by a unit (ms, s, m, h, d, w, y), e.g. 30s or 1h30m"
        ),
        DurationError::UnitOrder(_) => {
            format!("invalid duration {shown}: units must go from largest to smallest, each once")
        }
        DurationError::Overflow(_) => format!("duration {shown} is too large"),
    }
}
