//! Summaries of what a source's answers got wrong in one evaluation: the
//! model histograms rejected, counted by reason, and the PromQL warnings.
//! They give one log line per evaluation and reason, however many models
//! share the problem, and a bounded list in the status API; the details of
//! each model stay in its own status entry.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::sources::Rejection;

/// The model histograms one evaluation rejected for one reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedHistograms {
    /// The kind of problem (`series without a valid le label`).
    pub reason: &'static str,
    /// Windows of model signals rejected for it.
    pub count: u64,
    /// The first of them: model, signal, window and message.
    pub first: String,
}

/// Counts rejected histograms by reason while an evaluation applies a
/// source's collection.
#[derive(Default)]
pub(super) struct RejectionTally {
    by_reason: BTreeMap<&'static str, RejectedHistograms>,
}

impl RejectionTally {
    /// Counts one rejected window; `first` describes it, and is called only
    /// for the first of its reason.
    pub(super) fn add(&mut self, rejection: &Rejection, first: impl FnOnce() -> String) {
        self.by_reason
            .entry(rejection.reason)
            .or_insert_with(|| RejectedHistograms {
                reason: rejection.reason,
                count: 0,
                first: first(),
            })
            .count += 1;
    }

    /// Logs one line per reason and returns the summaries, one per reason.
    pub(super) fn finish(self, source: &str) -> Vec<RejectedHistograms> {
        let summaries: Vec<RejectedHistograms> = self.by_reason.into_values().collect();
        for summary in &summaries {
            tracing::warn!(
                source = %source,
                count = summary.count,
                first = %summary.first,
                "{} histograms rejected: {}",
                thousands(summary.count),
                summary.reason
            );
        }
        summaries
    }
}

/// Logs one line for the warnings of a source's answers in one evaluation.
pub(super) fn log_warnings(source: &str, total: usize, listed: &[String]) {
    if let Some(first) = listed.first() {
        tracing::warn!(
            source = %source,
            count = total,
            first = %first,
            "{} promql warnings in the answers",
            thousands(total as u64)
        );
    }
}

/// A count with thousands separated by commas: `12,034`.
pub(super) fn thousands(count: u64) -> String {
    let digits = count.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_written_with_thousands_separators() {
        for (count, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (12_034, "12,034"),
            (4_000_002, "4,000,002"),
        ] {
            assert_eq!(thousands(count), text);
        }
    }

    #[test]
    fn a_reason_is_counted_once_per_rejection_and_described_by_its_first() {
        let mut tally = RejectionTally::default();
        let bad_le = Rejection::new("series without a valid le label", "x");
        let duplicate = Rejection::new("duplicate le label", "y");
        tally.add(&bad_le, || "first".to_owned());
        tally.add(&duplicate, || "only".to_owned());
        tally.add(&bad_le, || unreachable!("described once"));
        let summaries = tally.finish("m");
        assert_eq!(
            summaries,
            [
                RejectedHistograms {
                    reason: "duplicate le label",
                    count: 1,
                    first: "only".to_owned()
                },
                RejectedHistograms {
                    reason: "series without a valid le label",
                    count: 2,
                    first: "first".to_owned()
                },
            ]
        );
    }
}
