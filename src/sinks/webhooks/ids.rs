//! Notification ids (`webhook-id`) that every replica derives alike.
//!
//! Two sidecars watching the same models evaluate on the same grid, send
//! the same PromQL with the same `time`, and so see the same alerts start,
//! repeat and resolve at the same evaluation times. A notification's id is
//! therefore a pure function of what they agree on, and a receiver that
//! deduplicates on `webhook-id` acts once however many replicas sent it:
//!
//! ```text
//! id = "msg_" + hex(SHA-256(fields))[..32]
//! ```
//!
//! where `fields` is, in this order, each field written as its UTF-8 bytes
//! preceded by their length as an 8-byte big-endian unsigned integer:
//!
//! 1. `model-monitor/webhook-id/v1` (the version of this derivation);
//! 2. the receiver's `name`;
//! 3. the monitor (`monitor` label);
//! 4. the number of model labels, in decimal, then each label's name and
//!    value, sorted by name;
//! 5. the signal, the detector and the alert name (`ModelDrift` or
//!    `ModelPerformanceRegression`);
//! 6. the episode's start: the evaluation time of its first drifting
//!    evaluation, in Unix milliseconds, in decimal;
//! 7. the status, `firing` or `resolved`;
//! 8. the repeat number in decimal: 0 for the firing and the resolved
//!    notification, `k` for the `k`-th repeat (due `k` repeat intervals after
//!    the alert fired).
//!
//! Every body holds one alert, so there is no group to derive an id from.
//! Pure: no clock, no I/O.

use aws_lc_rs::digest::{SHA256, digest};

use super::payload;
use crate::alerting::AlertNotice;

/// The first field: which derivation made an id.
const VERSION: &str = "model-monitor/webhook-id/v1";

/// The `webhook-id` of the notification of `notice` to `receiver`.
pub fn notification_id(receiver: &str, notice: &AlertNotice) -> String {
    let key = &notice.key;
    let mut labels: Vec<&(String, String)> = key.labels.iter().collect();
    labels.sort();
    let start = notice.started_at.timestamp_millis().to_string();
    let repeat = notice.repeat.to_string();
    let count = labels.len().to_string();
    let mut fields: Vec<&str> = vec![VERSION, receiver, &key.source, &count];
    for (name, value) in labels {
        fields.push(name);
        fields.push(value);
    }
    fields.extend([
        &*key.signal,
        &*key.detector,
        payload::alert_name(notice.kind),
        &start,
        notice.status(),
        &repeat,
    ]);
    id_of(&fields)
}

/// `msg_` and the first 128 bits of the SHA-256 of the length-prefixed
/// fields, in lower-case hex.
fn id_of(fields: &[&str]) -> String {
    let mut encoded = Vec::new();
    for field in fields {
        encoded.extend_from_slice(&(field.len() as u64).to_be_bytes());
        encoded.extend_from_slice(field.as_bytes());
    }
    let hash = digest(&SHA256, &encoded);
    let hex: String = hash.as_ref()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("msg_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::Transition;

    /// The sample notice's id for receiver `retrain`, computed apart from
    /// this code with Python's hashlib (the derivation in the module docs):
    ///
    /// ```text
    /// import hashlib, struct
    /// f = ["model-monitor/webhook-id/v1", "retrain", "classifiers", "2",
    ///      "model", "fraud", "version", "v3", "confidence", "psi",
    ///      "ModelDrift", "1767225600000", "firing", "0"]
    /// b = b"".join(struct.pack(">Q", len(x.encode())) + x.encode() for x in f)
    /// print("msg_" + hashlib.sha256(b).hexdigest()[:32])
    /// ```
    const SAMPLE_ID: &str = "msg_2ca05b9b5418efb190cc795753bca210";

    #[test]
    fn ids_follow_the_documented_derivation() {
        assert_eq!(
            notification_id("retrain", &payload::sample_notice()),
            SAMPLE_ID
        );
    }

    #[test]
    fn the_same_notice_gets_the_same_id_whatever_the_label_order() {
        let notice = payload::sample_notice();
        let mut reordered = notice.clone();
        let mut labels = reordered.key.labels.to_vec();
        labels.reverse();
        reordered.key.labels = labels.into();
        assert_eq!(
            notification_id("r", &notice),
            notification_id("r", &reordered)
        );
        // What a notice carries besides its identity (scores, metrics, the
        // evaluation time of a firing notice) does not change its id.
        let mut rescored = notice.clone();
        rescored.detection.score = 9.0;
        assert_eq!(
            notification_id("r", &notice),
            notification_id("r", &rescored)
        );
    }

    #[test]
    fn each_part_of_the_identity_changes_the_id() {
        let notice = payload::sample_notice();
        let base = notification_id("r", &notice);
        let mut variants = vec![notification_id("other", &notice)];
        let mut change = |edit: &dyn Fn(&mut AlertNotice)| {
            let mut changed = notice.clone();
            edit(&mut changed);
            variants.push(notification_id("r", &changed));
        };
        change(&|n| n.key.source = "other".into());
        change(&|n| n.key.labels = [("model".to_owned(), "fraud".to_owned())].into());
        change(&|n| {
            n.key.labels = [
                ("model".to_owned(), "fraud".to_owned()),
                ("version".to_owned(), "v4".to_owned()),
            ]
            .into()
        });
        change(&|n| n.key.signal = "latency".into());
        change(&|n| n.key.detector = "ks".into());
        change(&|n| n.kind = crate::detectors::AlertKind::Performance);
        change(&|n| n.started_at += chrono::Duration::milliseconds(1));
        change(&|n| n.transition = Transition::Resolved);
        change(&|n| {
            n.transition = Transition::Repeated;
            n.repeat = 1;
        });
        change(&|n| {
            n.transition = Transition::Repeated;
            n.repeat = 2;
        });
        let mut all = variants.clone();
        all.push(base.clone());
        all.sort();
        all.dedup();
        assert_eq!(all.len(), variants.len() + 1, "{variants:?}");
        assert!(
            all.iter()
                .all(|id| id.len() == 36 && id.starts_with("msg_"))
        );
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        // Without them, ("ab", "c") and ("a", "bc") would hash alike.
        assert_ne!(id_of(&["ab", "c"]), id_of(&["a", "bc"]));
    }
}
