//! The status document written in pieces against the one serde writes
//! whole, paging through it, and the errors of bad parameters.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::alerting::{AlertState, AlertSummary};
use crate::detectors::{AlertKind, Detection, Verdict};
use crate::engine::{DetectorOutcome, DetectorResult, SignalResult, SourceStatus};
use crate::model::SignalSummary;

fn id(source: &str, model: &str) -> ModelId {
    ModelId {
        source: source.to_owned(),
        model: ModelKey(vec![
            ("model".to_owned(), model.to_owned()),
            ("version".to_owned(), "v\"1\"\n".to_owned()),
        ]),
    }
}

fn signal(index: usize) -> SignalResult {
    let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    SignalResult {
        current: Some(SignalSummary {
            samples: 100.0 + index as f64,
            mean: 0.5,
            stddev: f64::NAN,
            p50: 0.5,
            p95: 0.9,
            p99: 0.99,
        }),
        reference_samples: (!index.is_multiple_of(3)).then_some(200.0),
        error: index
            .is_multiple_of(5)
            .then(|| "the current window has no observations".to_owned()),
        detectors: vec![
            DetectorOutcome {
                detector: Arc::from("psi"),
                kind: AlertKind::Drift,
                result: DetectorResult::Detection(Detection {
                    // Binary fractions: serde_json reads them back exactly.
                    score: index as f64 / 8.0,
                    threshold: 0.2,
                    p_value: None,
                    verdict: Verdict::NoDrift,
                }),
                explanation: None,
            },
            DetectorOutcome {
                detector: Arc::from("ks"),
                kind: AlertKind::Drift,
                result: DetectorResult::Error {
                    error: "bucket bounds differ".to_owned(),
                },
                explanation: None,
            },
        ],
        evaluated_at: at,
        class_mix: None,
        accuracy: None,
    }
}

/// `models` models over two sources, an alert, a failing source.
fn snapshot(models: usize) -> Snapshot {
    let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let mut snapshot = Snapshot {
        timestamp: Some(at),
        duration_seconds: 0.25,
        evaluations: 7,
        alerts_pending: 3,
        alerts_firing: 1,
        ..Snapshot::default()
    };
    for index in 0..models {
        let source = if index.is_multiple_of(2) { "a" } else { "b" };
        let mut signals = crate::engine::SignalResults::default();
        signals.insert("confidence".to_owned(), signal(index));
        signals.insert("latency".to_owned(), signal(index + 1));
        snapshot
            .models
            .insert(id(source, &format!("model-{index}")), signals);
    }
    snapshot.sources.insert(
        "a".to_owned(),
        SourceStatus {
            up: false,
            errors: vec!["timeout".to_owned()],
            last_success: Some(at),
            rejected: Vec::new(),
            warnings_total: 2,
            warnings: vec!["w".to_owned()],
            references: Vec::new(),
        },
    );
    snapshot.alerts.push(AlertSummary {
        monitor: "a".to_owned(),
        labels: BTreeMap::from([("model".to_owned(), "model-0".to_owned())]),
        signal: "confidence".to_owned(),
        detector: "psi".to_owned(),
        kind: AlertKind::Drift,
        state: AlertState::Firing,
        active_since: at,
        fired_at: Some(at),
        score: 0.4,
        threshold: 0.2,
    });
    snapshot
}

fn head() -> Head {
    Head {
        ready: true,
        config: json!({"evaluation": {"interval": "15s"}}),
        webhooks: Some(json!({"receivers": []})),
    }
}

/// The document as the handler built it before it was streamed: one
/// `serde_json::Value` of everything.
fn whole_document(snapshot: &Snapshot, head: &Head) -> Value {
    json!({
        "status": "success",
        "data": {
            "version": env!("CARGO_PKG_VERSION"),
            "ready": head.ready,
            "config": head.config,
            "evaluation": snapshot,
            "alerts": &snapshot.alerts,
            "alerts_pending": snapshot.alerts_pending,
            "alerts_firing": snapshot.alerts_firing,
            "webhooks": head.webhooks,
        }
    })
}

/// The pieces written for `page`, in pieces of `chunk` bytes, and the
/// document they make.
fn written(snapshot: &Snapshot, page: &Page, chunk: usize) -> (Vec<Bytes>, Value) {
    let mut pieces = Vec::new();
    let taken = write_status_in_pieces(snapshot, &head(), page, chunk, &mut |piece| {
        pieces.push(piece);
        true
    });
    assert!(taken);
    let text: Vec<u8> = pieces.iter().flat_map(|piece| piece.to_vec()).collect();
    let document = serde_json::from_slice(&text).unwrap_or_else(|error| {
        let at = error.column().saturating_sub(100);
        let end = (at + 200).min(text.len());
        panic!("{error}: {}", String::from_utf8_lossy(&text[at..end]))
    });
    (pieces, document)
}

#[test]
fn the_streamed_document_is_the_one_serde_writes_whole() {
    for models in [0, 1, 250] {
        let snapshot = snapshot(models);
        let (_, document) = written(&snapshot, &Page::default(), PIECE_BYTES);
        assert_eq!(
            document,
            whole_document(&snapshot, &head()),
            "{models} models"
        );
    }
    let empty = Head {
        ready: false,
        config: json!({}),
        webhooks: None,
    };
    let mut pieces = Vec::new();
    write_status_in_pieces(
        &Snapshot::default(),
        &empty,
        &Page::default(),
        PIECE_BYTES,
        &mut |piece| {
            pieces.push(piece);
            true
        },
    );
    let text: Vec<u8> = pieces.concat();
    let document: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(document, whole_document(&Snapshot::default(), &empty));
}

#[test]
fn small_pieces_make_the_same_document_and_none_holds_more_than_a_model_over() {
    let snapshot = snapshot(300);
    let (whole_pieces, whole) = written(&snapshot, &Page::default(), usize::MAX);
    assert_eq!(whole_pieces.len(), 1);
    let (pieces, document) = written(&snapshot, &Page::default(), 4096);
    assert_eq!(document, whole);
    assert!(pieces.len() > 20, "{} pieces", pieces.len());
    let one_model = serde_json::to_vec(&whole["data"]["evaluation"]["models"][0])
        .unwrap()
        .len();
    for piece in &pieces {
        assert!(
            piece.len() < 4096 + 2 * one_model,
            "a piece of {} bytes",
            piece.len()
        );
    }
}

#[test]
fn pages_list_every_model_once_in_order_and_say_how_many_there_are() {
    let snapshot = snapshot(103);
    let (_, whole) = written(&snapshot, &Page::default(), PIECE_BYTES);
    let every = whole["data"]["evaluation"]["models"].as_array().unwrap();
    let mut listed = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = Page {
            after,
            limit: Some(10),
        };
        let (_, document) = written(&snapshot, &page, 1000);
        let evaluation = &document["data"]["evaluation"];
        assert_eq!(evaluation["models_total"], 103);
        assert_eq!(
            evaluation["sources"],
            whole["data"]["evaluation"]["sources"]
        );
        assert_eq!(document["data"]["alerts"], whole["data"]["alerts"]);
        let models = evaluation["models"].as_array().unwrap();
        assert!(models.len() <= 10);
        listed.extend(models.iter().cloned());
        pages += 1;
        match evaluation["next"].as_str() {
            Some(next) => {
                after = Some(
                    Page::from_query(Some(&format!("after={next}")))
                        .unwrap()
                        .after
                        .unwrap(),
                )
            }
            None => break,
        }
    }
    assert_eq!(pages, 11);
    assert_eq!(&listed, every);
}

#[test]
fn a_limit_past_the_end_lists_the_rest_and_has_no_next() {
    let snapshot = snapshot(5);
    let (_, document) = written(
        &snapshot,
        &Page {
            after: None,
            limit: Some(5),
        },
        PIECE_BYTES,
    );
    assert_eq!(
        document["data"]["evaluation"]["models"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(document["data"]["evaluation"]["next"], Value::Null);
    // A cursor of a model that is gone starts after where it was.
    let gone = ModelId {
        source: "a".to_owned(),
        model: ModelKey(vec![("model".to_owned(), "model-1".to_owned())]),
    };
    let (_, document) = written(
        &snapshot,
        &Page {
            after: Some(gone),
            limit: None,
        },
        PIECE_BYTES,
    );
    let sources: Vec<&Value> = document["data"]["evaluation"]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| &model["labels"]["model"])
        .collect();
    assert_eq!(
        sources,
        [
            &json!("model-2"),
            &json!("model-4"),
            &json!("model-1"),
            &json!("model-3")
        ]
    );
}

#[test]
fn a_cursor_names_its_model_and_reads_back_as_written() {
    let model = id("monitor with spaces", "fraud/ü");
    let cursor = cursor(&model);
    assert!(cursor.bytes().all(|byte| byte.is_ascii_hexdigit()));
    let page = Page::from_query(Some(&format!("after={cursor}&limit=3"))).unwrap();
    assert_eq!(page.after, Some(model));
    assert_eq!(page.limit, Some(3));
}

#[test]
fn bad_parameters_are_errors_that_name_them() {
    for (query, error) in [
        (
            "limit=0",
            r#"limit must be a whole number of at least 1, got "0""#,
        ),
        (
            "limit=ten",
            r#"limit must be a whole number of at least 1, got "ten""#,
        ),
        (
            "limit=-1",
            r#"limit must be a whole number of at least 1, got "-1""#,
        ),
        (
            "after=zz",
            r#"after "zz" is not a cursor from this status api's next field"#,
        ),
        (
            "after=5b5d",
            r#"after "5b5d" is not a cursor from this status api's next field"#,
        ),
        (
            "after=abc",
            r#"after "abc" is not a cursor from this status api's next field"#,
        ),
        (
            "model=fraud",
            r#"unknown parameter "model" (the status api takes limit and after)"#,
        ),
    ] {
        assert_eq!(
            Page::from_query(Some(query)),
            Err(error.to_owned()),
            "{query}"
        );
    }
    assert_eq!(Page::from_query(None), Ok(Page::default()));
    assert_eq!(Page::from_query(Some("")), Ok(Page::default()));
}

#[test]
fn writing_stops_when_the_client_goes_away() {
    let snapshot = snapshot(300);
    let mut offered = 0;
    let taken = write_status_in_pieces(&snapshot, &head(), &Page::default(), 1024, &mut |_| {
        offered += 1;
        offered < 3
    });
    assert!(!taken);
    assert_eq!(offered, 3);
}
