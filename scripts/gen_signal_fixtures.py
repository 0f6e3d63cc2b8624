#!/usr/bin/env python3
"""Writes tests/fixtures/signals.json: class-mix windows, accuracy-drop
windows and labelled (reliability) histograms with the values
docs/statistics.md sections 11 and 12 define on them, computed independently
of the Rust code.

Run it from anywhere: `python3 scripts/gen_signal_fixtures.py`. It uses the
same virtualenv as scripts/gen_stat_fixtures.py (target/stats-venv, from the
pinned scripts/requirements-stats.txt), creating it on first use; the
packages of a venv made before scikit-learn was pinned are installed with
`target/stats-venv/bin/pip install -r scripts/requirements-stats.txt`.

- Class windows are laid out here on the union of their classes with plain
  dicts, then scored by the detector functions of gen_stat_fixtures.py
  (scipy's chi2_contingency, jensenshannon and chi2.sf; PSI from its
  definition).
- accuracy_drop's p-value is scipy's norm.sf of the Welch z statistic.
- Realized accuracy and the expected calibration error come from
  scikit-learn: each labelled histogram is expanded into one
  (confidence, correct) pair per prediction, the confidence being the
  bucket's representative, and passed to sklearn.metrics.accuracy_score and
  sklearn.calibration.calibration_curve on the same twenty bins.
"""

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "fixtures" / "signals.json"
sys.path.insert(0, str(ROOT / "scripts"))

# Importing it re-executes this script inside the virtualenv first.
import gen_stat_fixtures as stats  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from scipy.stats import norm  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402

CLASS_DETECTORS = [
    {"type": "psi", "settings": {}},
    {"type": "chi_square", "settings": {}},
    {"type": "jensen_shannon", "settings": {"threshold": 0.1}},
    {"type": "hellinger", "settings": {"threshold": 0.1}},
]
ACCURACY_DROP_MIN_EFFECT = 0.02
stats.DEFAULT_MIN_EFFECT["accuracy_drop"] = ACCURACY_DROP_MIN_EFFECT


def class_window(classes, counts):
    """A window of class counts laid out on `classes`, class i as bucket i
    (finite bounds 1 .. k-1, the last class the +Inf bucket)."""
    laid_out = [float(counts.get(name, 0.0)) for name in classes]
    bounds = [float(i) for i in range(1, len(classes))]
    return stats.Window(bounds, stats.cumulative(laid_out), None)


def class_cases(rng):
    mix = np.array([0.4, 0.3, 0.2, 0.1])
    names = ["class-0", "class-1", "class-2", "class-3"]

    def drawn(probabilities, n):
        counts = rng.multinomial(n, probabilities / probabilities.sum())
        return {name: float(c) for name, c in zip(names, counts)}

    doubled = mix.copy()
    doubled[-1] *= 2
    return [
        ("stationary", "both windows drawn from the same four-class mix",
         drawn(mix, 3000), drawn(mix, 600), 100.0),
        ("last_class_doubled", "the simulator's drift: the last class's weight doubles",
         drawn(mix, 3000), drawn(doubled, 600), 100.0),
        ("class_new_in_current", "a class only the current window has (zero in the reference)",
         {"cat": 500.0, "dog": 300.0, "fish": 200.0},
         {"cat": 240.0, "dog": 150.0, "fish": 90.0, "bird": 40.0}, 100.0),
        ("class_gone_from_current", "a class only the reference has (zero in the current window)",
         {"cat": 500.0, "dog": 300.0, "fish": 170.0, "rare": 30.0},
         {"cat": 260.0, "dog": 150.0, "fish": 90.0}, 100.0),
        ("sparse_classes", "many rare classes, pooled by chi_square, smoothed by psi",
         {"a": 400.0, "b": 3.0, "c": 2.0, "d": 0.0, "e": 95.0},
         {"a": 180.0, "b": 0.0, "c": 4.0, "d": 1.0, "e": 15.0}, 100.0),
        ("too_few", "fewer predictions than min_samples in the current window",
         {"yes": 700.0, "no": 300.0}, {"yes": 20.0, "no": 30.0}, 100.0),
    ]


def accuracy_drop(ref, cur, settings, min_samples):
    """docs/statistics.md 12.2: a one-sided Welch z test of the drop of the
    mean confidence, decided by the default rule."""
    _, rate, effect = stats.test_rule(settings, "accuracy_drop")
    spread = math.sqrt(ref.stddev() ** 2 / ref.n + cur.stddev() ** 2 / cur.n)
    drop = ref.mean() - cur.mean()
    p_value = float(norm.sf(drop / spread))
    effective = max(float(norm.isf(rate)) * spread, effect)
    threshold, verdict = stats.decide(settings, "accuracy_drop", drop, p_value,
                                      drop >= effect, effective, cur.n, ref.n, min_samples)
    return dict(score=drop, p_value=p_value, threshold=threshold, verdict=verdict)


def confidence_window(rng, a, b, n):
    """n confidences from Beta(a, b), bucketed, with their exact sum."""
    values = rng.beta(a, b, size=n)
    bounds = np.array(stats.CONFIDENCE_BOUNDS)
    buckets = np.searchsorted(bounds, values, side="left")
    counts = np.bincount(buckets, minlength=len(bounds) + 1).astype(float)
    return {"counts": [float(c) for c in counts], "sum": float(values.sum())}


def accuracy_drop_cases(rng):
    return [
        ("stationary", "both windows from Beta(17, 3)",
         confidence_window(rng, 17, 3, 2000), confidence_window(rng, 17, 3, 500), {}),
        ("five_points_lower", "the mean confidence falls from 0.85 to 0.80",
         confidence_window(rng, 17, 3, 2000), confidence_window(rng, 16, 4, 500), {}),
        ("risen", "the mean confidence rises: never an alarm",
         confidence_window(rng, 16, 4, 2000), confidence_window(rng, 18, 2, 500), {}),
        ("fixed_threshold", "a fixed threshold of 0.03 on the drop",
         confidence_window(rng, 17, 3, 2000), confidence_window(rng, 16, 4, 500),
         {"threshold": 0.03}),
        ("small_floor", "min_effect 0.005 and false_alarm_rate 0.01",
         confidence_window(rng, 17, 3, 4000), confidence_window(rng, 16.5, 3.5, 2000),
         {"min_effect": 0.005, "false_alarm_rate": 0.01}),
    ]


def labelled_cases(rng):
    """Predictions per bucket and the correct ones among them."""
    cases = []
    bounds = np.array(stats.CONFIDENCE_BOUNDS)
    for name, description, a, b, calibration, n in [
        ("calibrated", "right with probability equal to the confidence", 8, 2, 1.0, 5000),
        ("overconfident", "right with probability 0.8 times the confidence", 8, 2, 0.8, 5000),
        ("small", "a few hundred predictions from a wide Beta(2, 2)", 2, 2, 0.9, 300),
    ]:
        values = rng.beta(a, b, size=n)
        correct = rng.random(n) < np.minimum(1.0, calibration * values)
        buckets = np.searchsorted(bounds, values, side="left")
        predictions = np.bincount(buckets, minlength=len(bounds) + 1).astype(float)
        right = np.bincount(buckets[correct], minlength=len(bounds) + 1).astype(float)
        cases.append((name, description,
                      {"counts": [float(c) for c in predictions], "sum": float(values.sum())},
                      {"counts": [float(c) for c in right], "sum": float(values[correct].sum())}))
    return cases


def labelled_expected(predictions, correct):
    """Realized accuracy and ECE with scikit-learn on the expanded pairs."""
    window = stats.Window(stats.CONFIDENCE_BOUNDS, stats.cumulative(predictions["counts"]),
                          predictions["sum"])
    representatives = window.representatives()
    n_b = np.array(predictions["counts"], dtype=int)
    k_b = np.array(correct["counts"], dtype=int)
    assert n_b[-1] == 0, "the +Inf bucket stays empty: sklearn's last bin would merge it"
    confidence = np.repeat(representatives, n_b)
    outcome = np.concatenate([np.r_[np.ones(k), np.zeros(n - k)] for n, k in zip(n_b, k_b)])
    realized = float(accuracy_score(outcome, np.ones_like(outcome)))
    prob_true, prob_pred = calibration_curve(outcome, confidence, n_bins=20, strategy="uniform")
    weights, _ = np.histogram(confidence, bins=np.linspace(0.0, 1.0, 21))
    weights = weights[weights > 0] / len(confidence)
    ece = float(np.sum(weights * np.abs(prob_true - prob_pred)))
    estimated = window.mean()
    return dict(samples=window.n, estimated=estimated, realized=realized,
                gap=estimated - realized, calibration_error=ece)


def main():
    rng = np.random.default_rng(20261201)
    classes = []
    for name, description, reference, current, min_samples in class_cases(rng):
        names = sorted(set(reference) | set(current))
        ref, cur = class_window(names, reference), class_window(names, current)
        detectors = [
            dict(detector, expected=stats.run_detector(detector["type"], detector["settings"],
                                                       ref, cur, min_samples))
            for detector in CLASS_DETECTORS
        ]
        classes.append(dict(
            name=name, description=description, reference=reference, current=current,
            min_samples=min_samples,
            expected=dict(classes=names,
                          reference_shares=[float(c / ref.n) for c in ref.counts],
                          current_shares=[float(c / cur.n) for c in cur.counts]),
            detectors=detectors,
        ))
    drops = []
    for name, description, reference, current, settings in accuracy_drop_cases(rng):
        ref = stats.window(stats.CONFIDENCE_BOUNDS, reference)
        cur = stats.window(stats.CONFIDENCE_BOUNDS, current)
        drops.append(dict(name=name, description=description, bounds=stats.CONFIDENCE_BOUNDS,
                          reference=reference, current=current, settings=settings,
                          min_samples=100.0,
                          expected=accuracy_drop(ref, cur, settings, 100.0)))
    labelled = [
        dict(name=name, description=description, bounds=stats.CONFIDENCE_BOUNDS,
             predictions=predictions, correct=correct,
             expected=labelled_expected(predictions, correct))
        for name, description, predictions, correct in labelled_cases(rng)
    ]
    document = dict(
        generated_by="scripts/gen_signal_fixtures.py",
        numpy=np.__version__,
        scikit_learn=sklearn.__version__,
        classes=classes,
        accuracy_drop=drops,
        labelled=labelled,
    )
    OUTPUT.write_text(json.dumps(stats.jsonable(document), indent=1, allow_nan=False) + "\n")
    print(f"wrote {len(classes)} class, {len(drops)} accuracy_drop and {len(labelled)} "
          f"labelled cases to {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
