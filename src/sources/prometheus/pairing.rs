//! Pairing a signal's windows into observations: both windows' answers
//! with their warnings and reference time ([`both`]), a class signal's
//! windows laid out on the union of their classes ([`add_classes`]), and
//! which of an observation's windows are young ([`young`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::classes::ClassWindow;
use super::reference_cache::{Answer, Reference, ReferenceAnswer, Windows};
use crate::model::ModelKey;
use crate::sources::{Collection, Rejection, SignalDetails, SignalObservation, WindowRole};
use crate::stats::classes::{class_distribution, union_classes};

/// A class signal's observations: each model's two windows laid out on the
/// union of their classes.
pub(super) fn add_classes(
    collection: &mut Collection,
    signal: &str,
    current: Answer<ClassWindow>,
    reference: Option<ReferenceAnswer<ClassWindow>>,
) {
    let from_file = reference.is_none();
    let reference = reference.unwrap_or_else(|| {
        Ok(Reference {
            windows: Arc::default(),
            warnings: Vec::new(),
            status: None,
        })
    });
    let Some((current, reference)) = both(collection, signal, current, reference) else {
        return;
    };
    let rejection = |error: crate::stats::classes::ClassError| {
        Rejection::new(error.reason(), error.to_string())
    };
    for (model, current) in current {
        let reference = reference.get(&model);
        let classes: Arc<[String]> =
            union_classes(std::iter::once(&current.counts).chain(reference.map(|r| &r.counts)))
                .into();
        let reference_distribution = match reference {
            Some(window) => class_distribution(&classes, &window.counts).map_err(rejection),
            None => Err(Rejection::new(
                Rejection::NO_REFERENCE,
                if from_file {
                    "a baseline file holds no class counts"
                } else {
                    "no reference data for this model"
                },
            )),
        };
        collection.observations.push(SignalObservation {
            young: young(
                current.series_at_start < 1.0,
                reference.is_some_and(|r| r.series_at_start < 1.0),
            ),
            current: class_distribution(&classes, &current.counts).map_err(rejection),
            reference: reference_distribution,
            short: None,
            model,
            signal: signal.to_owned(),
            details: SignalDetails {
                classes: Some(classes),
                ..SignalDetails::default()
            },
        });
    }
}

/// Both windows' answers, their warnings and the reference's time added
/// to the collection; `None` with the failures added instead when either
/// failed.
pub(super) fn both<W>(
    collection: &mut Collection,
    signal: &str,
    current: Answer<W>,
    reference: ReferenceAnswer<W>,
) -> Option<(BTreeMap<ModelKey, W>, Windows<W>)> {
    match (current, reference) {
        (Ok((current, current_warnings)), Ok(reference)) => {
            collection.add_warnings(&format!("{signal} current window"), current_warnings);
            collection.add_warnings(&format!("{signal} reference window"), reference.warnings);
            collection.references.extend(reference.status);
            Some((current, reference.windows))
        }
        (current, reference) => {
            collection.failures.extend(current.err());
            collection.failures.extend(reference.err());
            None
        }
    }
}

/// The young windows of an observation.
pub(super) fn young(current: bool, reference: bool) -> Vec<WindowRole> {
    [
        (WindowRole::Current, current),
        (WindowRole::Reference, reference),
    ]
    .into_iter()
    .filter_map(|(role, young)| young.then_some(role))
    .collect()
}
