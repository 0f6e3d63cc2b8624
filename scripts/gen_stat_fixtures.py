#!/usr/bin/env python3
"""Writes tests/fixtures/statistics.json: histogram windows and the values
docs/statistics.md defines on them, computed independently of the Rust code with
numpy and scipy.

Run it from anywhere: `python3 scripts/gen_stat_fixtures.py`. On first use it
creates a virtualenv at target/stats-venv, installs the pinned
scripts/requirements-stats.txt into it and re-runs itself there.

Every expected value comes from scipy where scipy has the statistic
(chi2.sf, kstwobign.sf, chi2_contingency, jensenshannon,
wasserstein_distance, norm.sf, and the isf functions for critical values);
PSI, Hellinger, the representatives, the mean and the standard deviation are
written out with numpy from the definitions; histogram_quantile is a
hand-written port of Prometheus' bucketQuantile working on cumulative counts.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "stats-venv"
REQUIREMENTS = ROOT / "scripts" / "requirements-stats.txt"
OUTPUT = ROOT / "tests" / "fixtures" / "statistics.json"


def ensure_venv():
    """Re-executes the script that was run (this one, or one that imports
    it, such as gen_signal_fixtures.py) inside target/stats-venv, creating
    it first."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        subprocess.check_call(
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)]
        )
    os.execv(str(python), [str(python), str(Path(sys.argv[0]).resolve()), *sys.argv[1:]])


ensure_venv()

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.spatial.distance import jensenshannon  # noqa: E402
from scipy.optimize import brentq  # noqa: E402
from scipy.special import betainc  # noqa: E402
from scipy.stats import binom, chi2, chi2_contingency, kstwobign, norm, wasserstein_distance  # noqa: E402

CONFIDENCE_BOUNDS = [round(0.05 * i, 2) for i in range(1, 21)]
LATENCY_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
DEFAULT_MIN_SAMPLES = 100.0
DEFAULT_FALSE_ALARM_RATE = 0.001
DEFAULT_MIN_EFFECT = {"psi": 0.1, "ks": 0.1, "chi_square": 0.1, "zscore": 0.2,
                      "exceedance": 0.5}
DEFAULT_EXCEEDANCE_QUANTILE = 0.99
CHI_SQUARE_MIN_EXPECTED = 5.0


# ---------------------------------------------------------------------------
# Windows


class Window:
    """One window: the cumulative counts as Prometheus would return them."""

    def __init__(self, bounds, cumulative, total_sum):
        self.bounds = np.array(bounds, dtype=float)
        self.cumulative = np.array(cumulative, dtype=float)
        self.sum = total_sum
        # Prometheus' envelope: the running maximum, starting from zero.
        envelope = np.maximum.accumulate(np.maximum(self.cumulative, 0.0))
        previous = np.concatenate([[0.0], envelope[:-1]])
        self.corrections = int(np.sum(self.cumulative < previous))
        self.envelope = envelope
        self.counts = envelope - previous
        self.n = float(envelope[-1])

    def representatives(self):
        b = self.bounds
        first = b[0] / 2 if b[0] > 0 else b[0]
        middles = (b[:-1] + b[1:]) / 2
        return np.concatenate([[first], middles, [b[-1]]])

    def mean(self):
        if self.n == 0:
            return None
        if self.sum is not None:
            return self.sum / self.n
        return float(np.average(self.representatives(), weights=self.counts))

    def stddev(self):
        if self.n == 0:
            return None
        r = self.representatives()
        center = np.average(r, weights=self.counts)
        return float(math.sqrt(np.average((r - center) ** 2, weights=self.counts)))

    def quantile(self, q):
        """Prometheus bucketQuantile on (le, cumulative) pairs."""
        if q < 0:
            return -math.inf
        if q > 1:
            return math.inf
        buckets = list(zip(list(self.bounds) + [math.inf], list(self.envelope)))
        observations = buckets[-1][1]
        if observations == 0:
            return None
        rank = q * observations
        b = len(buckets) - 1
        for i in range(len(buckets) - 1):
            if buckets[i][1] >= rank:
                b = i
                break
        if b == len(buckets) - 1:
            return buckets[-2][0]
        if b == 0 and buckets[0][0] <= 0:
            return buckets[0][0]
        start, end, count = 0.0, buckets[b][0], buckets[b][1]
        if b > 0:
            start = buckets[b - 1][0]
            count -= buckets[b - 1][1]
            rank -= buckets[b - 1][1]
        return start + (end - start) * (rank / count)


# ---------------------------------------------------------------------------
# Detectors, straight from docs/statistics.md, section 4


def verdict(drift, n, m, min_samples, current_only=False):
    if n < min_samples or (not current_only and m < min_samples):
        return "insufficient_samples"
    return "drift" if drift else "no_drift"


def test_rule(settings, kind):
    threshold = settings.get("threshold")
    rate = settings.get("false_alarm_rate", DEFAULT_FALSE_ALARM_RATE)
    effect = settings.get("min_effect", DEFAULT_MIN_EFFECT[kind])
    return threshold, rate, effect


def decide(settings, kind, magnitude, p_value, practical, effective, n, m, min_samples):
    threshold, rate, _ = test_rule(settings, kind)
    if threshold is not None:
        return threshold, verdict(magnitude >= threshold, n, m, min_samples)
    return effective, verdict(p_value <= rate and practical, n, m, min_samples)


def psi(ref, cur, settings, min_samples):
    _, rate, effect = test_rule(settings, "psi")
    mask = (ref.counts > 0) | (cur.counts > 0)
    buckets = int(mask.sum())
    p = (ref.counts[mask] + 0.5) / (ref.n + 0.5 * buckets)
    q = (cur.counts[mask] + 0.5) / (cur.n + 0.5 * buckets)
    score = float(np.sum((q - p) * np.log(q / p)))
    scale = 1 / cur.n + 1 / ref.n
    if buckets >= 2:
        p_value = float(chi2.sf(score / scale, buckets - 1))
        critical = float(chi2.isf(rate, buckets - 1)) * scale
    else:
        p_value, critical = 1.0, math.inf
    effective = max(critical, effect)
    threshold, v = decide(settings, "psi", score, p_value, score >= effect, effective,
                          cur.n, ref.n, min_samples)
    return dict(score=score, p_value=p_value, threshold=threshold, verdict=v)


def ks(ref, cur, settings, min_samples):
    _, rate, effect = test_rule(settings, "ks")
    finite = len(ref.bounds)
    f_p = np.cumsum(ref.counts)[:finite] / ref.n
    f_q = np.cumsum(cur.counts)[:finite] / cur.n
    score = float(np.max(np.abs(f_p - f_q)))
    e = cur.n * ref.n / (cur.n + ref.n)
    p_value = float(kstwobign.sf(math.sqrt(e) * score))
    effective = max(float(kstwobign.isf(rate)) / math.sqrt(e), effect)
    threshold, v = decide(settings, "ks", score, p_value, score >= effect, effective,
                          cur.n, ref.n, min_samples)
    return dict(score=score, p_value=p_value, threshold=threshold, verdict=v)


def pool_sparse_buckets(table, smaller, total):
    """Pools adjacent columns of the 2 x B table, left to right, until each
    pooled column's expected count in the smaller window,
    smaller * column / total, is at least CHI_SQUARE_MIN_EXPECTED (Cochran's
    rule); a short remainder at the end joins the last pooled column."""
    starts = [0]
    for end in range(1, table.shape[1] + 1):
        column = table[:, starts[-1]:end].sum()
        if smaller * column / total >= CHI_SQUARE_MIN_EXPECTED:
            starts.append(end)
    # The last start opens either nothing (the last pool ended with the
    # table) or a short remainder: both belong to the pool before it.
    if len(starts) > 1:
        starts.pop()
    return np.add.reduceat(table, starts, axis=1)


def chi_square(ref, cur, settings, min_samples):
    """Pearson's chi-squared on the table with sparse buckets pooled; the
    effect is Cramer's V as if both windows had equal size,
    sqrt(chi2 (n + m) / (4 n m))."""
    _, rate, effect = test_rule(settings, "chi_square")
    total = ref.n + cur.n
    table = pool_sparse_buckets(np.array([ref.counts, cur.counts]), min(ref.n, cur.n), total)
    if table.shape[1] >= 2:
        statistic, p_value, dof, _ = chi2_contingency(table, correction=False)
        statistic, p_value = float(statistic), float(p_value)
        critical = float(chi2.isf(rate, dof))
    else:
        statistic, p_value, critical = 0.0, 1.0, math.inf
    size = 4 * cur.n * ref.n / total
    size_free_v = math.sqrt(statistic / size)
    effective = max(critical, effect**2 * size)
    threshold, v = decide(settings, "chi_square", statistic, p_value, size_free_v >= effect,
                          effective, cur.n, ref.n, min_samples)
    return dict(score=statistic, p_value=p_value, threshold=threshold, verdict=v)


def zscore(ref, cur, settings, min_samples):
    baseline = settings.get("baseline")
    if baseline is not None:
        if cur.n == 0:
            return dict(error="empty_window:current")
        score = (cur.mean() - baseline["mean"]) / baseline["std"]
        threshold = settings.get("threshold")
        threshold = 3.0 if threshold is None else threshold
        return dict(score=score, p_value=None, threshold=threshold,
                    verdict=verdict(abs(score) >= threshold, cur.n, ref.n, min_samples,
                                    current_only=True))
    _, rate, effect = test_rule(settings, "zscore")
    sd = ref.stddev()
    if sd == 0:
        return dict(error="undefined")
    shift = cur.mean() - ref.mean()
    scale = math.sqrt(1 / cur.n + 1 / ref.n)
    score = shift / (sd * scale)
    p_value = float(norm.sf(abs(score)) * 2)
    effective = max(float(norm.isf(rate / 2)), effect / scale)
    threshold, v = decide(settings, "zscore", abs(score), p_value, abs(shift) >= effect * sd,
                          effective, cur.n, ref.n, min_samples)
    return dict(score=score, p_value=p_value, threshold=threshold, verdict=v)


def jensen_shannon(ref, cur, settings, min_samples):
    threshold = settings.get("threshold", 0.1)
    score = float(jensenshannon(ref.counts / ref.n, cur.counts / cur.n, base=2))
    return dict(score=score, p_value=None, threshold=threshold,
                verdict=verdict(score >= threshold, cur.n, ref.n, min_samples))


def hellinger(ref, cur, settings, min_samples):
    threshold = settings.get("threshold", 0.1)
    p, q = ref.counts / ref.n, cur.counts / cur.n
    score = math.sqrt(max(0.0, 1 - math.fsum(np.sqrt(p * q))))
    return dict(score=score, p_value=None, threshold=threshold,
                verdict=verdict(score >= threshold, cur.n, ref.n, min_samples))


def wasserstein(ref, cur, settings, min_samples):
    threshold = settings.get("threshold", 0.1)
    r = ref.representatives()
    distance = wasserstein_distance(r, r, ref.counts, cur.counts)
    score = float(distance / max(ref.stddev(), 0.001))
    return dict(score=score, p_value=None, threshold=threshold,
                verdict=verdict(score >= threshold, cur.n, ref.n, min_samples))


def quantile_ratio(ref, cur, settings, min_samples):
    quantile, max_ratio = settings["quantile"], settings["max_ratio"]
    reference = ref.quantile(quantile)
    if reference <= 0:
        return dict(error="undefined")
    score = cur.quantile(quantile) / reference
    return dict(score=score, p_value=None, threshold=max_ratio,
                verdict=verdict(score >= max_ratio, cur.n, ref.n, min_samples))


def quantile_slo(ref, cur, settings, min_samples):
    quantile, maximum = settings["quantile"], settings["max"]
    if cur.n == 0:
        return dict(error="empty_window:current")
    score = cur.quantile(quantile)
    return dict(score=score, p_value=None, threshold=maximum,
                verdict=verdict(score >= maximum, cur.n, ref.n, min_samples,
                                current_only=True))


def binomial_upper_tail(x, k, p):
    """P(X >= x) for X ~ Binomial(k, p), real x and k: I_p(x, k - x + 1)."""
    if x <= 0:
        return 1.0
    if x > k or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    value = float(betainc(x, k - x + 1, p))
    if float(x).is_integer() and float(k).is_integer():
        # Whole counts: the same as scipy's binomial survival function.
        exact = float(binom.sf(x - 1, k, p))
        assert math.isclose(value, exact, rel_tol=1e-9, abs_tol=1e-300), (value, exact)
    return value


def exceedance(ref, cur, settings, min_samples):
    """docs/statistics.md 4.10: the share of current observations above the
    upper bound of the reference bucket holding the q-quantile, against a
    conditional binomial null."""
    _, rate, effect = test_rule(settings, "exceedance")
    q = settings.get("quantile", DEFAULT_EXCEEDANCE_QUANTILE)
    cumulative_ref = np.cumsum(ref.counts)
    bucket = int(np.argmax(cumulative_ref >= q * ref.n))
    if not cumulative_ref[bucket] >= q * ref.n or bucket >= len(ref.bounds):
        return dict(error="undefined")
    y = float(ref.counts[bucket + 1:].sum())
    x = float(cur.counts[bucket + 1:].sum())
    share = cur.n / (cur.n + ref.n)
    p_value = binomial_upper_tail(x, x + y, share)
    score = x / cur.n
    floor = (1 + effect) * y / ref.n

    def excess(t):
        return binomial_upper_tail(t, t + y, share) - rate

    high = max(cur.n, 1.0)
    while excess(high) > 0:
        high *= 2
    statistical = brentq(excess, 1e-300, high, xtol=1e-14, rtol=1e-14, maxiter=500) / cur.n
    threshold, v = decide(settings, "exceedance", score, p_value, score >= floor,
                          max(statistical, floor), cur.n, ref.n, min_samples)
    return dict(score=score, p_value=p_value, threshold=threshold, verdict=v)


DETECTORS = {
    "psi": psi,
    "ks": ks,
    "chi_square": chi_square,
    "zscore": zscore,
    "jensen_shannon": jensen_shannon,
    "hellinger": hellinger,
    "wasserstein": wasserstein,
    "quantile_ratio": quantile_ratio,
    "quantile_slo": quantile_slo,
    "exceedance": exceedance,
}
KINDS = {"quantile_ratio": "performance", "quantile_slo": "performance",
         "exceedance": "performance"}
CURRENT_ONLY = {"quantile_slo"}


def run_detector(kind, settings, ref, cur, min_samples):
    current_only = kind in CURRENT_ONLY or (kind == "zscore" and "baseline" in settings)
    if not current_only:
        if list(ref.bounds) != list(cur.bounds):
            return dict(error="bucket_mismatch")
        if ref.n == 0:
            return dict(error="empty_window:reference")
        if cur.n == 0:
            return dict(error="empty_window:current")
    return DETECTORS[kind](ref, cur, settings, min_samples)


# ---------------------------------------------------------------------------
# Cases


def bucket_probabilities(bounds, cdf):
    """Bucket probabilities of a distribution with the given CDF."""
    edges = [cdf(b) for b in bounds] + [1.0]
    return np.diff(np.concatenate([[0.0], edges]))


def beta_cdf(a, b):
    from scipy.stats import beta

    return lambda x: float(beta.cdf(x, a, b))


def lognormal_cdf(median, sigma):
    from scipy.stats import lognorm

    return lambda x: float(lognorm.cdf(x, sigma, scale=median))


def sample(rng, probabilities, n):
    return rng.multinomial(n, probabilities / probabilities.sum()).astype(float)


def cumulative(counts):
    return [float(x) for x in np.cumsum(counts)]


def standard_detectors(extra=()):
    return [
        {"type": "psi", "settings": {}},
        {"type": "ks", "settings": {}},
        {"type": "chi_square", "settings": {}},
        {"type": "zscore", "settings": {}},
        {"type": "jensen_shannon", "settings": {"threshold": 0.1}},
        {"type": "hellinger", "settings": {"threshold": 0.1}},
        {"type": "wasserstein", "settings": {"threshold": 0.1}},
        *extra,
    ]


LATENCY_EXTRA = (
    {"type": "quantile_ratio", "settings": {"quantile": 0.99, "max_ratio": 1.5}},
    {"type": "quantile_slo", "settings": {"quantile": 0.95, "max": 0.5}},
    {"type": "exceedance", "settings": {}},
    {"type": "exceedance", "settings": {"quantile": 0.9, "false_alarm_rate": 0.01,
                                        "min_effect": 0.2}},
)
CONFIDENCE_EXTRA = (
    {"type": "quantile_ratio", "settings": {"quantile": 0.5, "max_ratio": 1.2}},
    {"type": "quantile_slo", "settings": {"quantile": 0.99, "max": 0.99}},
)


def cases():
    rng = np.random.default_rng(20240611)
    out = []

    def add(name, description, bounds, reference, current, detectors,
            min_samples=DEFAULT_MIN_SAMPLES, current_bounds=None):
        out.append(dict(name=name, description=description, bounds=bounds,
                        current_bounds=current_bounds, reference=reference,
                        current=current, min_samples=min_samples, detectors=detectors))

    confident = bucket_probabilities(CONFIDENCE_BOUNDS, beta_cdf(8, 2))
    less_confident = bucket_probabilities(CONFIDENCE_BOUNDS, beta_cdf(5, 2.5))

    ref = sample(rng, confident, 50_000)
    cur = sample(rng, confident, 48_000)
    add("confidence_stable_large",
        "20 confidence buckets, 50k vs 48k observations from the same distribution",
        CONFIDENCE_BOUNDS,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
        standard_detectors(CONFIDENCE_EXTRA))

    ref = sample(rng, confident, 50_000)
    cur = sample(rng, less_confident, 47_000)
    add("confidence_shift_large",
        "20 confidence buckets, the current window markedly less confident",
        CONFIDENCE_BOUNDS,
        {"cumulative": cumulative(ref), "sum": None},
        {"cumulative": cumulative(cur), "sum": None},
        standard_detectors(CONFIDENCE_EXTRA))

    ref = sample(rng, confident, 80)
    cur = sample(rng, less_confident, 60)
    add("confidence_below_min_samples",
        "60 and 80 observations: scores are computed, no decision is made",
        CONFIDENCE_BOUNDS,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
        standard_detectors(CONFIDENCE_EXTRA))

    ref = sample(rng, confident, 400)
    cur = sample(rng, less_confident, 300)
    add("confidence_small_shift",
        "a few hundred observations with a real shift; custom rule settings",
        CONFIDENCE_BOUNDS,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
        [
            {"type": "psi", "settings": {"false_alarm_rate": 0.01, "min_effect": 0.05}},
            {"type": "ks", "settings": {"false_alarm_rate": 0.05, "min_effect": 0.05}},
            {"type": "chi_square", "settings": {"false_alarm_rate": 0.01, "min_effect": 0.2}},
            {"type": "zscore", "settings": {"false_alarm_rate": 0.05, "min_effect": 0.1}},
            {"type": "jensen_shannon", "settings": {"threshold": 0.2}},
            {"type": "hellinger", "settings": {"threshold": 0.05}},
            {"type": "wasserstein", "settings": {"threshold": 0.3}},
            *CONFIDENCE_EXTRA,
        ],
        min_samples=250.0)

    ref = sample(rng, confident, 10_000_000)
    tilted = confident * np.linspace(0.98, 1.02, len(confident))
    cur = sample(rng, tilted, 10_000_000)
    add("confidence_huge_trivial_shift",
        "ten million observations a window: a tiny shift is significant but not practical",
        CONFIDENCE_BOUNDS,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
        standard_detectors(CONFIDENCE_EXTRA))

    fast = bucket_probabilities(LATENCY_BOUNDS, lognormal_cdf(0.08, 0.8))
    slow = bucket_probabilities(LATENCY_BOUNDS, lognormal_cdf(0.15, 1.1))

    ref = sample(rng, fast, 20_000)
    cur = sample(rng, fast, 21_000)
    add("latency_stable_with_sums",
        "Prometheus default buckets, cumulative counts with _sum, no change",
        LATENCY_BOUNDS,
        {"cumulative": cumulative(ref), "sum": 0.1 * 20_000},
        {"cumulative": cumulative(cur), "sum": 0.1013 * 21_000},
        standard_detectors(LATENCY_EXTRA))

    ref = sample(rng, fast, 20_000)
    cur = sample(rng, slow, 15_000)
    add("latency_regression",
        "Prometheus default buckets, the current window slower: p99 ratio and SLO breach",
        LATENCY_BOUNDS,
        {"cumulative": cumulative(ref), "sum": 0.1 * 20_000},
        {"cumulative": cumulative(cur), "sum": 0.25 * 15_000},
        standard_detectors(LATENCY_EXTRA))

    ref = sample(rng, fast, 3_000) * (300.0 / 287.0)
    cur = sample(rng, slow, 2_500) * (300.0 / 291.0)
    cur_cumulative = cumulative(cur)
    # increase() extrapolation: a bucket slightly below its predecessor.
    cur_cumulative[6] = cur_cumulative[5] - 0.37
    ref_cumulative = cumulative(ref)
    ref_cumulative[2] = ref_cumulative[1] - 1e-9
    ref_cumulative[3] = ref_cumulative[1] - 0.5
    add("latency_fractional_with_corrections",
        "fractional counts from increase(); dips in both windows are clamped and counted",
        LATENCY_BOUNDS,
        {"cumulative": ref_cumulative, "sum": 103.25},
        {"cumulative": cur_cumulative, "sum": 410.5},
        standard_detectors(LATENCY_EXTRA))

    ref = np.array([0, 0, 120, 340, 0, 610, 0, 210, 40, 0, 0, 7], dtype=float)
    cur = np.array([0, 15, 100, 0, 0, 700, 0, 330, 0, 22, 0, 0], dtype=float)
    add("latency_zero_buckets",
        "buckets empty in both windows (dropped) and in one window only",
        LATENCY_BOUNDS,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
        standard_detectors(LATENCY_EXTRA))

    bounds = [-1.0, -0.5, 0.0, 0.5, 1.0]
    ref = np.array([600, 150, 120, 80, 40, 10], dtype=float)
    cur = np.array([420, 200, 150, 120, 90, 20], dtype=float)
    add("first_bound_negative",
        "a logit-like signal whose lowest bound is negative: p50 answers the lowest bound",
        bounds,
        {"counts": list(ref), "sum": -640.0}, {"counts": list(cur), "sum": -380.0},
        standard_detectors((
            {"type": "quantile_ratio", "settings": {"quantile": 0.5, "max_ratio": 1.5}},
            {"type": "quantile_ratio", "settings": {"quantile": 0.95, "max_ratio": 1.5}},
            {"type": "quantile_slo", "settings": {"quantile": 0.9, "max": 0.5}},
        )))

    bounds = [0.0, 0.25, 0.5, 0.75, 1.0]
    ref = np.array([30, 200, 400, 250, 100, 20], dtype=float)
    cur = np.array([10, 150, 380, 300, 140, 25], dtype=float)
    add("first_bound_zero_fixed_thresholds",
        "lowest bound exactly 0; fixed thresholds replace the default rule",
        bounds,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
        [
            {"type": "psi", "settings": {"threshold": 0.02}},
            {"type": "ks", "settings": {"threshold": 0.05}},
            {"type": "chi_square", "settings": {"threshold": 30.0}},
            {"type": "zscore", "settings": {"threshold": 2.0}},
            {"type": "zscore", "settings": {"threshold": 5.0}},
            {"type": "zscore", "settings": {"baseline": {"mean": 0.5, "std": 0.2}}},
            {"type": "zscore",
             "settings": {"baseline": {"mean": 0.52, "std": 0.25}, "threshold": 0.1}},
            {"type": "jensen_shannon", "settings": {"threshold": 0.05}},
            {"type": "hellinger", "settings": {"threshold": 0.05}},
            {"type": "wasserstein", "settings": {"threshold": 0.1}},
            {"type": "quantile_ratio", "settings": {"quantile": 0.1, "max_ratio": 1.1}},
            {"type": "quantile_slo", "settings": {"quantile": 0.5, "max": 0.6}},
        ])

    ref = np.zeros(len(CONFIDENCE_BOUNDS) + 1)
    ref[19] = 5_000
    cur = np.zeros(len(CONFIDENCE_BOUNDS) + 1)
    cur[19] = 4_000
    add("single_occupied_bucket",
        "every observation in the same bucket in both windows: no test can reject",
        CONFIDENCE_BOUNDS,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
        standard_detectors(CONFIDENCE_EXTRA))

    ref = sample(rng, fast, 5_000)
    cur = np.zeros(len(LATENCY_BOUNDS) + 1)
    add("empty_current_window",
        "no traffic in the current window",
        LATENCY_BOUNDS,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
        standard_detectors(LATENCY_EXTRA + (
            {"type": "zscore", "settings": {"baseline": {"mean": 0.1, "std": 0.05}}},
        )))

    ref = sample(rng, fast, 5_000)
    cur_bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
    cur = sample(rng, bucket_probabilities(cur_bounds, lognormal_cdf(0.08, 0.8)), 5_000)
    add("bucket_mismatch",
        "the bucket layout changed between the windows; single-window detectors still work",
        LATENCY_BOUNDS,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": 515.0},
        standard_detectors(LATENCY_EXTRA + (
            {"type": "zscore", "settings": {"baseline": {"mean": 0.1, "std": 0.05}}},
        )),
        current_bounds=cur_bounds)

    ref = np.array([0, 0, 0, 1000, 0, 0, 0, 2, 0, 0, 0, 0], dtype=float)
    cur = np.array([0, 0, 0, 100, 0, 0, 0, 1, 0, 0, 0, 0], dtype=float)
    add("sparse_tail_pooled_away",
        "two occupied buckets, the second too sparse for chi-square: pooled, no test",
        LATENCY_BOUNDS,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
        standard_detectors(LATENCY_EXTRA))

    ref = sample(rng, confident, 604_800)
    cur = sample(rng, less_confident, 300)
    add("confidence_week_reference_small_current",
        "7 days at 1 req/s against 5 minutes of less confident traffic: sparse "
        "buckets are pooled and the effect does not shrink with the reference",
        CONFIDENCE_BOUNDS,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
        standard_detectors(CONFIDENCE_EXTRA))

    # p99 +50% at the same median: the exceedance test's own scenario.
    stable = bucket_probabilities(LATENCY_BOUNDS, lognormal_cdf(0.040, 0.375))
    slower = bucket_probabilities(LATENCY_BOUNDS,
                                  lognormal_cdf(0.040, 0.375 + math.log(1.5) / 2.3263478740408408))
    for name, description, ref_n, cur_n in [
        ("latency_tail_rise_week", "a week at 1 req/s against 5 minutes whose p99 rose 50%",
         604_800, 300),
        ("latency_tail_rise_small", "5 minutes against 5 minutes at 1 req/s, p99 +50%",
         300, 300),
    ]:
        ref = sample(rng, stable, ref_n)
        cur = sample(rng, slower, cur_n)
        add(name, description, LATENCY_BOUNDS,
            {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
            standard_detectors(LATENCY_EXTRA + (
                {"type": "exceedance", "settings": {"quantile": 0.999}},
                {"type": "exceedance", "settings": {"threshold": 0.02}},
            )))

    # Extrapolated (non-integer) counts, as increase() returns them.
    ref = np.array([0, 0, 3.5, 60.25, 120.5, 30.75, 4.5, 1.25, 0, 0, 0, 0], dtype=float)
    cur = np.array([0, 0, 2.5, 40.5, 80.25, 30.5, 12.75, 3.5, 0.5, 0, 0, 0], dtype=float)
    add("latency_tail_fractional_counts",
        "extrapolated counts: the binomial tail on real counts",
        LATENCY_BOUNDS,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
        [
            {"type": "exceedance", "settings": {}},
            {"type": "exceedance", "settings": {"quantile": 0.9, "min_effect": 0}},
            {"type": "exceedance", "settings": {"quantile": 0.5}},
        ])

    ref = np.array([0, 0, 0, 10, 500, 0, 0, 0, 0, 0, 0, 3], dtype=float)
    cur = np.array([0, 0, 0, 10, 500, 0, 0, 0, 0, 0, 0, 3], dtype=float)
    add("latency_quantile_in_inf_bucket",
        "the reference p99.9 lies in the +Inf bucket: no bound, an error",
        LATENCY_BOUNDS,
        {"counts": list(ref), "sum": None}, {"counts": list(cur), "sum": None},
        [{"type": "exceedance", "settings": {"quantile": 0.999}},
         {"type": "exceedance", "settings": {"quantile": 0.99}}])

    return out


def window(bounds, spec):
    if "cumulative" in spec:
        return Window(bounds, spec["cumulative"], spec["sum"])
    return Window(bounds, cumulative(spec["counts"]), spec["sum"])


def describe(w):
    return dict(
        total=w.n,
        corrections=w.corrections,
        representatives=[float(x) for x in w.representatives()],
        mean=w.mean(),
        stddev=w.stddev(),
        p50=w.quantile(0.5),
        p95=w.quantile(0.95),
        p99=w.quantile(0.99),
    )


def jsonable(value):
    """Numbers as JSON numbers, infinities as the strings "inf" / "-inf"."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        assert not math.isnan(value)
        return value
    if isinstance(value, np.integer):
        return int(value)
    return value


def main():
    fixtures = []
    for case in cases():
        bounds = case["bounds"]
        current_bounds = case["current_bounds"] or bounds
        ref = window(bounds, case["reference"])
        cur = window(current_bounds, case["current"])
        detectors = []
        for detector in case["detectors"]:
            expected = run_detector(detector["type"], detector["settings"], ref, cur,
                                    case["min_samples"])
            expected["kind"] = KINDS.get(detector["type"], "drift")
            detectors.append(dict(detector, expected=expected))
        fixtures.append(dict(
            name=case["name"],
            description=case["description"],
            bounds=bounds,
            current_bounds=case["current_bounds"],
            reference=case["reference"],
            current=case["current"],
            min_samples=case["min_samples"],
            expected=dict(reference=describe(ref), current=describe(cur)),
            detectors=detectors,
        ))
    document = dict(
        generated_by="scripts/gen_stat_fixtures.py",
        numpy=np.__version__,
        scipy=scipy.__version__,
        cases=fixtures,
    )
    OUTPUT.write_text(json.dumps(jsonable(document), indent=1, allow_nan=False) + "\n")
    print(f"wrote {len(fixtures)} cases to {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
