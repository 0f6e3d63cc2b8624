#!/usr/bin/env python3
"""Writes tests/fixtures/explanations.json: pairs of histogram windows and
the explanation docs/statistics.md (section 10) defines on them, computed
from the definitions with the Python standard library alone, independently
of the Rust code.

Run it from anywhere: `python3 scripts/gen_explain_fixtures.py`.

For every case and ranking (psi, chi_square, share) it writes the buckets
an explanation names (first and last bucket index, reference and current
share, the ranking term), for KS the bound where the cumulative shares differ most,
and the mean, p50, p95 and p99 of both windows. histogram_quantile is a
port of Prometheus' bucketQuantile on cumulative counts; PSI, the
chi-square pooling and terms, and the shares are written out from the page.
"""

import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "fixtures" / "explanations.json"
TOP = 3
MIN_EXPECTED = 5.0


def bucket_quantile(q, bounds, counts):
    """Prometheus' bucketQuantile: cumulative counts, +Inf last."""
    cumulative = []
    running = 0.0
    for count in counts:
        running += count
        cumulative.append(running)
    total = cumulative[-1]
    rank = q * total
    index = next(i for i, c in enumerate(cumulative) if c >= rank)
    if index == len(bounds):
        return bounds[-1]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start = 0.0 if index == 0 else bounds[index - 1]
    below = 0.0 if index == 0 else cumulative[index - 1]
    return start + (bounds[index] - start) * (rank - below) / (cumulative[index] - below)


def mean(bounds, counts, total_sum):
    total = sum(counts)
    if total_sum is not None:
        return total_sum / total
    values = []
    for i in range(len(counts)):
        if i == len(bounds):
            values.append(bounds[-1])
        elif i == 0:
            values.append(bounds[0] / 2 if bounds[0] > 0 else bounds[0])
        else:
            values.append((bounds[i - 1] + bounds[i]) / 2)
    return sum(c * x for c, x in zip(counts, values)) / total


def psi_terms(a, b):
    m, n = sum(a), sum(b)
    occupied = [i for i in range(len(a)) if a[i] > 0 or b[i] > 0]
    k = len(occupied)
    rows = []
    for i in occupied:
        p = (a[i] + 0.5) / (m + 0.5 * k)
        q = (b[i] + 0.5) / (n + 0.5 * k)
        rows.append((i, i, a[i] / m, b[i] / n, (q - p) * math.log(q / p)))
    return rows


def chi_square_terms(a, b):
    m, n = sum(a), sum(b)
    smaller = min(m, n)
    pools = []
    first, pa, pb = 0, 0.0, 0.0
    for i in range(len(a)):
        pa += a[i]
        pb += b[i]
        if smaller * (pa + pb) / (m + n) >= MIN_EXPECTED:
            pools.append([first, i, pa, pb])
            first, pa, pb = i + 1, 0.0, 0.0
    if pools and first < len(a):
        pools[-1][1] = len(a) - 1
        pools[-1][2] += pa
        pools[-1][3] += pb
    rows = []
    for first, last, pa, pb in pools:
        column = pa + pb
        ea = m * column / (m + n)
        eb = n * column / (m + n)
        term = (pa - ea) ** 2 / ea + (pb - eb) ** 2 / eb
        rows.append((first, last, pa / m, pb / n, term))
    return rows


def share_terms(a, b):
    m, n = sum(a), sum(b)
    return [(i, i, a[i] / m, b[i] / n, abs(b[i] / n - a[i] / m)) for i in range(len(a))]


def top(rows):
    """The TOP largest terms; when they all gained share (or all lost some),
    the largest term that moved the other way after them."""
    ranked = [row for row in sorted(rows, key=lambda row: -row[4]) if row[4] > 0]
    named = ranked[:TOP]
    if len(named) == TOP:
        ways = {row[3] > row[2] for row in named}
        if len(ways) == 1:
            other = [row for row in ranked[TOP:] if (row[3] > row[2]) not in ways]
            named += other[:1]
    return [list(row) for row in named]


def cdf_gap(bounds, a, b):
    m, n = sum(a), sum(b)
    best, gap = None, -1.0
    fa = fb = 0.0
    for i in range(len(bounds)):
        fa += a[i]
        fb += b[i]
        if abs(fa / m - fb / n) > gap:
            gap = abs(fa / m - fb / n)
            best = [i, fa / m, fb / n]
    return best


CASES = [
    {
        # docs/statistics.md 4.3's table: the chi-square pools are
        # (12, 3), (4, 11) and (24, 6).
        "name": "the chi-square example of section 4.3",
        "bounds": [1.0, 2.0, 4.0],
        "reference": [12.0, 4.0, 14.0, 10.0],
        "current": [3.0, 11.0, 5.0, 1.0],
        "reference_sum": None,
        "current_sum": None,
    },
    {
        "name": "confidence moving down and widening",
        "bounds": [round(0.05 * i, 2) for i in range(1, 21)],
        "reference": [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 4, 8, 15, 30, 60, 110, 180, 260, 329, 0],
        "current": [0, 0, 0, 1, 2, 4, 8, 14, 22, 31, 40, 48, 55, 58, 56, 50, 41, 32, 22, 16, 0],
        "reference_sum": 870.4,
        "current_sum": None,
    },
    {
        "name": "latency with a +Inf tail and fractional counts",
        "bounds": [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        "reference": [2.5, 10.0, 80.25, 240.0, 120.0, 30.0, 6.0, 1.5, 0.0, 0.0, 0.0, 0.0],
        "current": [0.0, 1.0, 20.0, 90.0, 160.0, 110.0, 40.0, 12.0, 3.0, 0.0, 0.0, 2.0],
        "reference_sum": 25.1,
        "current_sum": 61.3,
    },
    {
        # PSI's three largest terms are small buckets that gained; the
        # bucket that lost most is named after them.
        "name": "one bucket spreading into its neighbours",
        "bounds": [1.0, 2.0, 3.0, 4.0, 5.0],
        "reference": [1.0, 1.0, 1.0, 1.0, 96.0, 0.0],
        "current": [10.0, 10.0, 10.0, 10.0, 60.0, 0.0],
        "reference_sum": None,
        "current_sum": None,
    },
    {
        "name": "a lowest bound below zero and buckets empty in both windows",
        "bounds": [-1.0, 0.0, 1.0, 2.0],
        "reference": [40.0, 0.0, 30.0, 30.0, 0.0],
        "current": [10.0, 0.0, 30.0, 50.0, 10.0],
        "reference_sum": None,
        "current_sum": None,
    },
]


def explain(case):
    bounds, a, b = case["bounds"], case["reference"], case["current"]
    both = {}
    for window, counts, total_sum in (
        ("reference", a, case["reference_sum"]),
        ("current", b, case["current_sum"]),
    ):
        both[window] = {
            "mean": mean(bounds, counts, total_sum),
            "p50": bucket_quantile(0.5, bounds, counts),
            "p95": bucket_quantile(0.95, bounds, counts),
            "p99": bucket_quantile(0.99, bounds, counts),
        }
    return {
        **case,
        "psi": top(psi_terms(a, b)),
        "chi_square": top(chi_square_terms(a, b)),
        "share": top(share_terms(a, b)),
        "cdf_gap": cdf_gap(bounds, a, b),
        "shifts": both,
    }


def main():
    cases = [explain(case) for case in CASES]
    OUTPUT.write_text(json.dumps({"cases": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {OUTPUT}")


if __name__ == "__main__":
    main()
