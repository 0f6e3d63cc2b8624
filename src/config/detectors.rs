//! The `detectors` lists of a signal: every detector type's settings, their
//! defaults and how each type's keys decode.
//!
//! [`TYPES`] has one row per type, its `type` name and its decoder; the keys
//! a type allows are the keys its decoder reads. A new detector type is a
//! variant of [`DetectorKind`] and a row here, and its math in a file of
//! `crate::detectors` with one arm in `detectors::from_config`. (The
//! settings stay in this layer, below the detectors, because the config
//! file is decoded and checked before any detector exists.)

use std::collections::HashMap;
use std::sync::LazyLock;

use saphyr::ScalarOwned;

use super::decode::{Decoder, Fields, peek, shown};
use super::scalars::{NOT_NEGATIVE, NumberRule, OPEN_UNIT, POSITIVE};
use super::tree::{Kind, Node, join};

/// Default `false_alarm_rate` of the hypothesis-test detectors.
pub const DEFAULT_FALSE_ALARM_RATE: f64 = 0.001;
/// Default fixed threshold of `jensen_shannon`, `hellinger` and `wasserstein`.
pub const DEFAULT_DISTANCE_THRESHOLD: f64 = 0.1;
/// Default `min_effect` of `psi`: a PSI of 0.1 (`docs/statistics.md`, section 3.4).
pub const DEFAULT_PSI_MIN_EFFECT: f64 = 0.1;
/// Default `min_effect` of `ks`: a KS D of 0.1.
pub const DEFAULT_KS_MIN_EFFECT: f64 = 0.1;
/// Default `min_effect` of `chi_square`: a size-free Cramér's V of 0.1.
pub const DEFAULT_CHI_SQUARE_MIN_EFFECT: f64 = 0.1;
/// Default `min_effect` of `zscore`: 0.1 reference standard deviations.
/// The first rule said 0.2; the detection-quality benchmark showed 0.1
/// catches a 0.05 confidence drop within 2 evaluations at 10 req/s and
/// above (0.2 needs 4) with no more false alarms (`docs/statistics.md`,
/// section 8.1).
pub const DEFAULT_ZSCORE_MIN_EFFECT: f64 = 0.1;
/// Default `min_effect` of `accuracy_drop`: an estimated accuracy 0.02
/// below the reference's.
pub const DEFAULT_ACCURACY_DROP_MIN_EFFECT: f64 = 0.02;

/// One configured detector.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Exported as the `detector` label. Defaults to the type name
    /// (`psi`, `ks`, ...); must be given when one type is used twice.
    pub name: String,
    pub kind: DetectorKind,
}

impl DetectorConfig {
    /// A detector named after its type, as when `name` is left out.
    pub fn new(kind: DetectorKind) -> DetectorConfig {
        DetectorConfig {
            name: kind.type_name().to_owned(),
            kind,
        }
    }
}

/// Settings of the hypothesis-test detectors' default rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestRule {
    /// A fixed threshold on the score replaces the default rule when set; >= 0.
    pub threshold: Option<f64>,
    /// Largest p-value called significant; in (0, 1). Default 0.001.
    pub false_alarm_rate: f64,
    /// Smallest effect worth an alert; >= 0. Defaults per type
    /// (`DEFAULT_*_MIN_EFFECT`).
    pub min_effect: f64,
}

impl TestRule {
    /// The default rule (no fixed threshold, the default false-alarm rate)
    /// with this smallest effect.
    pub const fn with_min_effect(min_effect: f64) -> TestRule {
        TestRule {
            threshold: None,
            false_alarm_rate: DEFAULT_FALSE_ALARM_RATE,
            min_effect,
        }
    }
}

/// A fixed baseline for the sketch's z-score form `(mean - baseline.mean) / baseline.std`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZScoreBaseline {
    pub mean: f64,
    /// > 0.
    pub std: f64,
}

/// The detector types and their parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectorKind {
    Psi(TestRule),
    Ks(TestRule),
    ChiSquare(TestRule),
    ZScore {
        rule: TestRule,
        baseline: Option<ZScoreBaseline>,
    },
    /// Fixed threshold in [0, 1]; default 0.1.
    JensenShannon {
        threshold: f64,
    },
    /// Fixed threshold in [0, 1]; default 0.1.
    Hellinger {
        threshold: f64,
    },
    /// Fixed threshold on W1 / sd of the reference; >= 0, default 0.1.
    Wasserstein {
        threshold: f64,
    },
    /// Drift when current quantile / reference quantile >= max_ratio.
    /// quantile in (0, 1); max_ratio > 0.
    QuantileRatio {
        quantile: f64,
        max_ratio: f64,
    },
    /// Breach when the current quantile >= max (in the signal's unit; a
    /// duration such as `250ms` is read as seconds). quantile in (0, 1).
    QuantileSlo {
        quantile: f64,
        max: f64,
    },
    /// Drift when the share of current observations above the bucket of
    /// the reference `quantile` is significantly (and `min_effect`) higher
    /// than the reference's; quantile in (0, 1), default 0.99.
    Exceedance {
        quantile: f64,
        rule: TestRule,
    },
    /// A one-sided test that the estimated accuracy (mean top-class
    /// confidence) fell below the reference's.
    AccuracyDrop(TestRule),
}

impl DetectorKind {
    /// The type name as written in the config file.
    pub fn type_name(&self) -> &'static str {
        match self {
            DetectorKind::Psi(_) => "psi",
            DetectorKind::Ks(_) => "ks",
            DetectorKind::ChiSquare(_) => "chi_square",
            DetectorKind::ZScore { .. } => "zscore",
            DetectorKind::JensenShannon { .. } => "jensen_shannon",
            DetectorKind::Hellinger { .. } => "hellinger",
            DetectorKind::Wasserstein { .. } => "wasserstein",
            DetectorKind::QuantileRatio { .. } => "quantile_ratio",
            DetectorKind::QuantileSlo { .. } => "quantile_slo",
            DetectorKind::Exceedance { .. } => "exceedance",
            DetectorKind::AccuracyDrop(_) => "accuracy_drop",
        }
    }
}

/// A detector type: its name in the `type` key and how its other keys
/// (after `type` and `name`) decode.
struct DetectorType {
    name: &'static str,
    decode: fn(&mut Decoder<'_>, &Fields<'_>) -> Option<DetectorKind>,
}

/// Every detector type, in the order problems list them.
const TYPES: [DetectorType; 11] = [
    DetectorType {
        name: "psi",
        decode: |d, f| {
            d.test_rule(f, DEFAULT_PSI_MIN_EFFECT)
                .map(DetectorKind::Psi)
        },
    },
    DetectorType {
        name: "ks",
        decode: |d, f| d.test_rule(f, DEFAULT_KS_MIN_EFFECT).map(DetectorKind::Ks),
    },
    DetectorType {
        name: "chi_square",
        decode: |d, f| {
            d.test_rule(f, DEFAULT_CHI_SQUARE_MIN_EFFECT)
                .map(DetectorKind::ChiSquare)
        },
    },
    DetectorType {
        name: "zscore",
        decode: |d, f| d.zscore(f),
    },
    DetectorType {
        name: "jensen_shannon",
        decode: |d, f| {
            d.distance(f, UNIT, |threshold| DetectorKind::JensenShannon {
                threshold,
            })
        },
    },
    DetectorType {
        name: "hellinger",
        decode: |d, f| d.distance(f, UNIT, |threshold| DetectorKind::Hellinger { threshold }),
    },
    DetectorType {
        name: "wasserstein",
        decode: |d, f| {
            d.distance(f, NOT_NEGATIVE, |threshold| DetectorKind::Wasserstein {
                threshold,
            })
        },
    },
    DetectorType {
        name: "quantile_ratio",
        decode: |d, f| d.quantile_ratio(f),
    },
    DetectorType {
        name: "quantile_slo",
        decode: |d, f| d.quantile_slo(f),
    },
    DetectorType {
        name: "exceedance",
        decode: |d, f| d.exceedance(f),
    },
    DetectorType {
        name: "accuracy_drop",
        decode: |d, f| {
            d.test_rule(f, DEFAULT_ACCURACY_DROP_MIN_EFFECT)
                .map(DetectorKind::AccuracyDrop)
        },
    },
];

/// The detector types, as written in the `type` key, in the order problems list them.
pub const DETECTOR_TYPES: [&str; TYPES.len()] = {
    let mut names = [""; TYPES.len()];
    let mut index = 0;
    while index < TYPES.len() {
        names[index] = TYPES[index].name;
        index += 1;
    }
    names
};

/// Distances in [0, 1].
const UNIT: NumberRule = (|v| (0.0..=1.0).contains(&v), "must be between 0 and 1");

/// The keys each type allows, in [`TYPES`] order: what its decoder reads.
static KEYS: LazyLock<Vec<Vec<&'static str>>> = LazyLock::new(|| {
    TYPES
        .iter()
        .map(|detector_type| {
            Decoder::keys_read(|d, fields| {
                fields.get("type");
                d.detector_settings(fields, detector_type);
            })
        })
        .collect()
});

impl Decoder<'_> {
    pub(super) fn detectors(&mut self, node: &Node, path: &str) -> Option<Vec<DetectorConfig>> {
        let items = self.sequence(node, path)?;
        if items.is_empty() {
            self.report(node.line, path, "at least one detector is required");
            return None;
        }
        let unique = self.unique_detector_names(items, path);
        let detectors = self.each(items, path, Self::detector);
        detectors.filter(|_| unique)
    }

    /// Reports detectors whose name (or type, when unnamed) repeats an
    /// earlier one; false if any. Names are checked apart from decoding, so
    /// that a detector with other problems still takes part.
    fn unique_detector_names(&mut self, items: &[Node], path: &str) -> bool {
        let mut ok = true;
        let mut first_index: HashMap<String, usize> = HashMap::new();
        for (index, item) in items.iter().enumerate() {
            let named = peek(item, "name");
            let Some((name, name_node)) = named.clone().or_else(|| peek(item, "type")) else {
                continue;
            };
            match first_index.get(&name) {
                Some(first) => {
                    let (item_path, hint) = match named {
                        Some(_) => (format!("{path}[{index}].name"), ""),
                        None => (
                            format!("{path}[{index}]"),
                            "; set a distinct name on each detector of the same type",
                        ),
                    };
                    self.report(
                        item.line,
                        &item_path,
                        format!(
                            "duplicate detector name {} (also {path}[{first}]){hint}",
                            shown(name_node)
                        ),
                    );
                    ok = false;
                }
                None => {
                    first_index.insert(name, index);
                }
            }
        }
        ok
    }

    fn detector(&mut self, node: &Node, path: &str) -> Option<DetectorConfig> {
        if !matches!(node.kind, Kind::Mapping(_)) {
            self.report(
                node.line,
                path,
                format!(
                    "expected a mapping such as {{type: psi}}, got {}",
                    node.kind_name()
                ),
            );
            return None;
        }
        // The type decides which keys are allowed, so read it first.
        let type_node = self.quietly(|d| d.open(node, "").and_then(|fields| fields.get("type")));
        let detector_type = match type_node {
            Some(type_node) => self
                .choice(
                    type_node,
                    &join(path, "type"),
                    "detector type",
                    &DETECTOR_TYPES,
                )
                .and_then(|name| TYPES.iter().position(|t| t.name == name)),
            None => {
                self.report(
                    node.line,
                    &join(path, "type"),
                    format!(
                        "missing required key; valid types: {}",
                        DETECTOR_TYPES.join(", ")
                    ),
                );
                None
            }
        };
        let fields = self.open(node, path)?;
        fields.get("type");
        let every_key: Vec<&str> = KEYS.iter().flatten().copied().collect();
        let Some(index) = detector_type else {
            // Still report keys that no detector type knows.
            self.close_with(fields, |key, _| {
                (!every_key.contains(&key.text.as_str())).then(|| {
                    format!(
                        "unknown key {}; allowed keys: {}",
                        key.describe(),
                        every_key.join(", ")
                    )
                })
            });
            return None;
        };
        let detector = self.detector_settings(&fields, &TYPES[index]);
        let type_name = TYPES[index].name;
        self.close_with(fields, |key, allowed| {
            let shown = key.describe();
            let allowed = allowed.join(", ");
            Some(if every_key.contains(&shown.trim_matches('"')) {
                format!("key {shown} does not apply to detector type {type_name}; allowed keys: {allowed}")
            } else {
                format!("unknown key {shown}; allowed keys for detector type {type_name}: {allowed}")
            })
        });
        detector
    }

    /// The `name` and the type's own keys of a detector whose `type` was read.
    fn detector_settings(
        &mut self,
        fields: &Fields<'_>,
        detector_type: &DetectorType,
    ) -> Option<DetectorConfig> {
        let name = self.optional(
            fields,
            "name",
            detector_type.name.to_owned(),
            Self::non_empty,
        );
        let kind = (detector_type.decode)(self, fields);
        Some(DetectorConfig {
            name: name?,
            kind: kind?,
        })
    }

    /// The keys of a hypothesis test's rule; `min_effect` defaults to the
    /// type's own.
    pub(super) fn test_rule(&mut self, fields: &Fields<'_>, min_effect: f64) -> Option<TestRule> {
        let threshold = self.optional(fields, "threshold", None, |d, n, p| {
            if let Kind::Scalar(scalar) = &n.kind
                && scalar.text == "auto"
            {
                return Some(None);
            }
            d.number_where(n, p, NOT_NEGATIVE).map(Some)
        });
        let false_alarm_rate = self.optional(
            fields,
            "false_alarm_rate",
            DEFAULT_FALSE_ALARM_RATE,
            |d, n, p| d.number_where(n, p, OPEN_UNIT),
        );
        let min_effect = self.optional(fields, "min_effect", min_effect, |d, n, p| {
            d.number_where(n, p, NOT_NEGATIVE)
        });
        Some(TestRule {
            threshold: threshold?,
            false_alarm_rate: false_alarm_rate?,
            min_effect: min_effect?,
        })
    }

    fn zscore(&mut self, fields: &Fields<'_>) -> Option<DetectorKind> {
        let rule = self.test_rule(fields, DEFAULT_ZSCORE_MIN_EFFECT);
        let baseline = self.optional(fields, "baseline", None, |d, n, p| {
            d.zscore_baseline(n, p).map(Some)
        });
        Some(DetectorKind::ZScore {
            rule: rule?,
            baseline: baseline?,
        })
    }

    /// A distance's fixed `threshold` under `rule`, default
    /// [`DEFAULT_DISTANCE_THRESHOLD`].
    fn distance(
        &mut self,
        fields: &Fields<'_>,
        rule: NumberRule,
        kind: fn(f64) -> DetectorKind,
    ) -> Option<DetectorKind> {
        self.optional(
            fields,
            "threshold",
            DEFAULT_DISTANCE_THRESHOLD,
            |d, n, p| d.number_where(n, p, rule),
        )
        .map(kind)
    }

    fn quantile_ratio(&mut self, fields: &Fields<'_>) -> Option<DetectorKind> {
        let quantile = self.quantile(fields);
        let max_ratio = self.required(fields, "max_ratio", |d, n, p| {
            d.number_where(n, p, POSITIVE)
        });
        Some(DetectorKind::QuantileRatio {
            quantile: quantile?,
            max_ratio: max_ratio?,
        })
    }

    fn quantile_slo(&mut self, fields: &Fields<'_>) -> Option<DetectorKind> {
        let quantile = self.quantile(fields);
        let max = self.required(fields, "max", Self::slo_max);
        Some(DetectorKind::QuantileSlo {
            quantile: quantile?,
            max: max?,
        })
    }

    /// The `quantile` a quantile detector watches, in (0, 1).
    fn quantile(&mut self, fields: &Fields<'_>) -> Option<f64> {
        self.required(fields, "quantile", |d, n, p| {
            d.number_where(n, p, OPEN_UNIT)
        })
    }

    fn zscore_baseline(&mut self, node: &Node, path: &str) -> Option<ZScoreBaseline> {
        self.section(node, path, |d, fields| {
            let mean = d.required(fields, "mean", Self::number);
            let std = d.required(fields, "std", |d, n, p| d.number_where(n, p, POSITIVE));
            Some(ZScoreBaseline {
                mean: mean?,
                std: std?,
            })
        })
    }

    /// `max` of quantile_slo: a number, or a duration read as seconds.
    fn slo_max(&mut self, node: &Node, path: &str) -> Option<f64> {
        let is_text = matches!(&node.kind, Kind::Scalar(s) if matches!(s.value(), Some(ScalarOwned::String(_))));
        let value = if is_text {
            self.duration(node, path)?.as_secs_f64()
        } else {
            self.number(node, path)?
        };
        if value <= 0.0 {
            self.report(
                node.line,
                path,
                format!("must be greater than 0, got {value}"),
            );
            return None;
        }
        Some(value)
    }
}
