#!/usr/bin/env python3
"""Math speed, model-monitor against numpy/scipy and Evidently, in one run.

Runs `cargo bench --bench detectors` (criterion, `benches/detectors.rs`),
then times the same computations with numpy/scipy exactly as docs/statistics.md
names them, on the same inputs (the integer formulas below are the ones the
Rust bench uses), and Evidently's stattest functions on the raw observations
those buckets stand for. Prints a Markdown table of times and ratios and
writes target/bench-math/results.json.

Creates its own virtual environment under target/ (numpy, scipy, pandas<3,
evidently from PyPI) on first use and re-executes itself inside it.

Usage: scripts/bench-math.py [--skip-cargo FILE_WITH_BENCHER_OUTPUT]
"""

import json
import os
import re
import statistics
import subprocess
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "bench-math-venv"
# Evidently 0.7 imports a pandas helper that pandas 3 removed.
REQUIREMENTS = ["numpy", "scipy", "pandas<3", "evidently"]


def ensure_venv():
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        result = subprocess.run([str(python), "-m", "pip", "install", "-q", *REQUIREMENTS])
        if result.returncode != 0:
            print("evidently failed to install; timing numpy/scipy only", file=sys.stderr)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "numpy", "scipy"], check=True)
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


def counts(buckets, multiplier, offset):
    return [1000 + 37 * ((i * multiplier + offset) % 101) for i in range(buckets + 1)]


def bounds(buckets):
    return [(i + 1) / buckets for i in range(buckets)]


def rust_results(skip_file):
    if skip_file:
        text = Path(skip_file).read_text()
    else:
        text = subprocess.run(
            ["cargo", "bench", "--bench", "detectors", "--", "--output-format", "bencher"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    results = {}
    for match in re.finditer(r"^test (\S+) \.\.\. bench:\s+([\d,]+) ns/iter", text, re.M):
        results[match.group(1)] = float(match.group(2).replace(",", ""))
    return results


def main():
    ensure_venv()
    import numpy as np
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    skip = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--skip-cargo" else None
    rust = rust_results(skip)

    def representatives(le):
        le = np.asarray(le)
        r = np.empty(len(le) + 1)
        r[0] = le[0] / 2 if le[0] > 0 else le[0]
        r[1:-1] = (le[:-1] + le[1:]) / 2
        r[-1] = le[-1]
        return r

    def make_window(buckets, multiplier, offset):
        c = np.array(counts(buckets, multiplier, offset), dtype=float)
        le = np.array(bounds(buckets))
        r = representatives(le)
        return {"le": le, "c": c, "r": r, "sum": float(np.sum(c * r))}

    alpha = 0.001

    def psi(P, Q):
        p, q = P["c"], Q["c"]
        occupied = (p > 0) | (q > 0)
        p, q = p[occupied], q[occupied]
        b = occupied.sum()
        m, n = p.sum(), q.sum()
        ps = (p + 0.5) / (m + 0.5 * b)
        qs = (q + 0.5) / (n + 0.5 * b)
        score = np.sum((qs - ps) * np.log(qs / ps))
        scale = 1 / n + 1 / m
        return score, stats.chi2.sf(score / scale, b - 1), stats.chi2.isf(alpha, b - 1) * scale

    def ks(P, Q):
        p, q = P["c"], Q["c"]
        m, n = p.sum(), q.sum()
        d = np.max(np.abs(np.cumsum(p)[:-1] / m - np.cumsum(q)[:-1] / n))
        e = n * m / (n + m)
        return d, stats.kstwobign.sf(np.sqrt(e) * d)

    def chi_square(P, Q):
        p, q = P["c"], Q["c"]
        occupied = (p > 0) | (q > 0)
        table = np.vstack([p[occupied], q[occupied]])
        result = stats.chi2_contingency(table, correction=False)
        return result[0], result[1], stats.chi2.isf(alpha, occupied.sum() - 1)

    def moments(W):
        total = W["c"].sum()
        center = np.sum(W["c"] * W["r"]) / total
        sd = np.sqrt(np.sum(W["c"] * (W["r"] - center) ** 2) / total)
        return W["sum"] / total, sd, total

    def zscore(P, Q):
        mean_p, sd_p, m = moments(P)
        mean_q, _, n = moments(Q)
        z = (mean_q - mean_p) / (sd_p * np.sqrt(1 / n + 1 / m))
        return z, 2 * stats.norm.sf(abs(z)), stats.norm.isf(alpha / 2)

    def js(P, Q):
        return jensenshannon(P["c"] / P["c"].sum(), Q["c"] / Q["c"].sum(), base=2)

    def hellinger(P, Q):
        p, q = P["c"] / P["c"].sum(), Q["c"] / Q["c"].sum()
        return np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2)

    def wasserstein(P, Q):
        _, sd_p, _ = moments(P)
        return stats.wasserstein_distance(P["r"], Q["r"], P["c"], Q["c"]) / max(sd_p, 0.001)

    def histogram_quantile(W, q):
        c, le = W["c"], W["le"]
        cumulative = np.cumsum(c)
        rank = q * cumulative[-1]
        bucket = int(np.searchsorted(cumulative, rank))
        if bucket >= len(le):
            return le[-1]
        start = 0.0 if bucket == 0 else le[bucket - 1]
        below = 0.0 if bucket == 0 else cumulative[bucket - 1]
        return start + (le[bucket] - start) * (rank - below) / c[bucket]

    def quantile_ratio(P, Q):
        return histogram_quantile(Q, 0.99) / histogram_quantile(P, 0.99)

    python_functions = {
        "psi": psi, "ks": ks, "chi_square": chi_square, "zscore": zscore,
        "jensen_shannon": js, "hellinger": hellinger, "wasserstein": wasserstein,
        "quantile_ratio": quantile_ratio,
    }

    evidently = {}
    evidently_version = None
    try:
        import pandas as pd
        import evidently as evidently_module
        from evidently.legacy.calculations import stattests
        from evidently.legacy.core import ColumnType
        evidently_version = evidently_module.__version__
        evidently = {
            "psi": stattests.psi_stat_test,
            "ks": stattests.ks_stat_test,
            "chi_square": stattests.chi_stat_test,
            "jensen_shannon": stattests.jensenshannon_stat_test,
            "hellinger": stattests.hellinger_stat_test,
            "wasserstein": stattests.wasserstein_stat_test,
        }
    except Exception as error:  # noqa: BLE001 - report and go on without it
        print(f"evidently unavailable ({error}); timing numpy/scipy only", file=sys.stderr)

    def time_call(function, *args):
        timer = timeit.Timer(lambda: function(*args))
        number, _ = timer.autorange()
        runs = timer.repeat(repeat=5, number=number)
        return statistics.median(runs) / number * 1e9

    rows = []
    for buckets in (20, 100):
        P = make_window(buckets, 7919, 0)
        Q = make_window(buckets, 104729, 13)
        raw = None
        if evidently:
            raw = (
                pd.Series(np.repeat(P["r"], P["c"].astype(int))),
                pd.Series(np.repeat(Q["r"], Q["c"].astype(int))),
            )
        for name, function in python_functions.items():
            rust_ns = rust.get(f"detect_{buckets}_buckets/{name}")
            python_ns = time_call(function, P, Q)
            value = function(P, Q)
            row = {
                "detector": name, "buckets": buckets, "rust_ns": rust_ns,
                "scipy_ns": python_ns,
                "scipy_value": [float(v) for v in np.atleast_1d(value)],
            }
            if name in evidently:
                test = evidently[name]
                row["evidently_ns"] = time_call(
                    test.func, raw[0], raw[1], ColumnType.Numerical, test.default_threshold
                )
                row["evidently_observations"] = int(len(raw[0]) + len(raw[1]))
            rows.append(row)

    out = ROOT / "target" / "bench-math"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"rust_criterion_ns": rust, "rows": rows, "numpy": np.__version__,
         "scipy": __import__("scipy").__version__, "evidently": evidently_version},
        indent=2,
    ))

    def fmt(ns):
        return "-" if ns is None else (f"{ns / 1000:.2f} µs" if ns < 1e6 else f"{ns / 1e6:.1f} ms")

    print(f"numpy {np.__version__}, scipy {__import__('scipy').__version__}, "
          f"evidently {evidently_version or 'not installed'}\n")
    print("| detector | buckets | model-monitor (Rust) | numpy/scipy | ratio | Evidently stattest on the raw observations | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        rust_ns = row["rust_ns"]
        ratio = f"{row['scipy_ns'] / rust_ns:.0f}x" if rust_ns else "-"
        evidently_ns = row.get("evidently_ns")
        evidently_ratio = f"{evidently_ns / rust_ns:,.0f}x" if evidently_ns and rust_ns else "-"
        evidently_cell = (f"{fmt(evidently_ns)} ({row['evidently_observations']:,} obs.)"
                          if evidently_ns else "-")
        print(f"| {row['detector']} | {row['buckets']} | {fmt(rust_ns)} | {fmt(row['scipy_ns'])} "
              f"| {ratio} | {evidently_cell} | {evidently_ratio} |")
    for name in sorted(rust):
        if name.startswith("distribution_"):
            print(f"\n{name}: {fmt(rust[name])} (Rust only: cumulative counts to a Distribution)", end="")
    print()


if __name__ == "__main__":
    main()
