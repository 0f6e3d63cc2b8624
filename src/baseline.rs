//! Baseline files: reference bucket counts recorded once and kept, for
//! `reference: {baseline_file: PATH}`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::signals::ModelKey;
use crate::stats::Histogram;

/// Reference histograms by signal name and model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Baseline {
    pub signals: BTreeMap<String, BTreeMap<ModelKey, Histogram>>,
}

/// Why a baseline file was rejected.
#[derive(Debug, thiserror::Error)]
#[error("baseline file {path}: {message}")]
pub struct BaselineError {
    pub path: String,
    pub message: String,
}

/// Reads a baseline file; `group_by` gives the label order of model keys.
pub fn load(path: &Path, group_by: &[String]) -> Result<Baseline, BaselineError> {
    todo!("{path:?} {group_by:?}")
}
