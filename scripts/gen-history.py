#!/usr/bin/env python3
"""Writes a past of simulated models as OpenMetrics, for
`promtool tsdb create-blocks-from openmetrics`.

Per model the two histograms `model-monitor simulate` exports, with its
bucket bounds and its parameter ranges (src/simulate/model.rs): top-class
confidence ~ Beta(mean * k, (1 - mean) * k) with mean in [0.80, 0.90) and k
in [16, 24), latency ~ LogNormal(ln median, sigma) with median in
[20, 60) ms and sigma in [0.30, 0.45). Each model serves `--rate` requests
per second; every `--step` seconds each bucket's counter grows by its
expected count plus Gaussian noise of the same variance (the Poisson
process of `simulate`, approximated), so the counters are cumulative and
the `_count` equals the `+Inf` bucket. Labels: job="simulate",
instance="history", model="model-N", version="v1", as the sidecar's
selectors expect.

promtool re-reads its whole input once per 2 h block, so the history is
written as one file per 2 h block (`block-<start>.om`), each a complete
OpenMetrics document: feed them to promtool one by one.

Standard library only. Usage:
  scripts/gen-history.py --models 1000 --step 600 --hours 171 \\
      --end 1764547200 --out DIR [--rate 2] [--seed 1]
"""

import argparse
import math
import random
from pathlib import Path

CONFIDENCE_BOUNDS = ["0.05", "0.1", "0.15", "0.2", "0.25", "0.3", "0.35", "0.4", "0.45", "0.5",
                     "0.55", "0.6", "0.65", "0.7", "0.75", "0.8", "0.85", "0.9", "0.95", "1"]
LATENCY_BOUNDS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"]
CONFIDENCE = "model_prediction_confidence"
LATENCY = "model_request_duration_seconds"
BLOCK_SECONDS = 2 * 3600
# Distinct parameter sets: computing a Beta CDF in pure Python per model would
# take longer than the rest; models share these, in turn.
PARAMETER_SETS = 64


def beta_cdf(alpha, beta, bounds, points=4000):
    """The Beta CDF at each bound (midpoint rule on a fine grid)."""
    log_norm = math.lgamma(alpha + beta) - math.lgamma(alpha) - math.lgamma(beta)
    width = 1.0 / points
    cdf, total, edges = [], 0.0, [float(b) for b in bounds]
    edge = 0
    for i in range(points):
        x = (i + 0.5) * width
        while edge < len(edges) and x > edges[edge]:
            cdf.append(total)
            edge += 1
        total += math.exp(log_norm + (alpha - 1) * math.log(x) + (beta - 1) * math.log1p(-x)) * width
    while edge < len(edges):
        cdf.append(total)
        edge += 1
    return [min(1.0, c / total) for c in cdf]


def lognormal_cdf(median, sigma, bounds):
    return [0.5 * (1 + math.erf((math.log(float(b)) - math.log(median)) / (sigma * math.sqrt(2))))
            for b in bounds]


def shares(cdf):
    """Per-bucket probabilities, the last one up to +Inf."""
    out, previous = [], 0.0
    for value in cdf:
        out.append(max(0.0, value - previous))
        previous = value
    out.append(max(0.0, 1.0 - previous))
    return out


def parameter_sets(rng):
    sets = []
    for _ in range(PARAMETER_SETS):
        mean, k = rng.uniform(0.80, 0.90), rng.uniform(16.0, 24.0)
        median, sigma = rng.uniform(0.020, 0.060), rng.uniform(0.30, 0.45)
        sets.append((
            shares(beta_cdf(mean * k, (1 - mean) * k, CONFIDENCE_BOUNDS)),
            shares(lognormal_cdf(median, sigma, LATENCY_BOUNDS)),
            mean, median * math.exp(sigma * sigma / 2),
        ))
    return sets


class Family:
    """One histogram family's series: cumulative state per model."""

    def __init__(self, name, bounds, models, probabilities, mean_value):
        self.name = name
        self.models = models
        self.probabilities = probabilities
        self.mean_value = mean_value
        labels = [f'{{job="simulate",instance="history",model="model-{m}",version="v1"' for m in range(models)]
        les = bounds + ["+Inf"]
        self.bucket_prefixes = [[f'{name}_bucket{label},le="{le}"}} ' for le in les] for label in labels]
        self.sum_prefixes = [f"{name}_sum{label}}} " for label in labels]
        self.count_prefixes = [f"{name}_count{label}}} " for label in labels]
        self.counts = [[0] * len(les) for _ in range(models)]
        self.sums = [0.0] * models

    def advance(self, rng, expected):
        """One step: each bucket grows by about its expected count."""
        gauss = rng.gauss
        for m in range(self.models):
            counts = self.counts[m]
            added = 0
            for b, p in enumerate(self.probabilities(m)):
                mean = expected * p
                grown = int(round(mean + gauss(0.0, math.sqrt(mean)))) if mean > 0 else 0
                if grown > 0:
                    counts[b] += grown
                    added += grown
            self.sums[m] += added * self.mean_value(m)

    def lines(self, stamp):
        out = []
        for m in range(self.models):
            cumulative = 0
            prefixes = self.bucket_prefixes[m]
            for b, count in enumerate(self.counts[m]):
                cumulative += count
                out.append(f"{prefixes[b]}{cumulative} {stamp}\n")
            out.append(f"{self.sum_prefixes[m]}{self.sums[m]:.6f} {stamp}\n")
            out.append(f"{self.count_prefixes[m]}{cumulative} {stamp}\n")
        return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, required=True)
    parser.add_argument("--step", type=int, required=True, help="seconds between samples")
    parser.add_argument("--hours", type=int, required=True, help="hours of history before --end")
    parser.add_argument("--end", type=int, required=True, help="unix time of the last sample")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=2.0, help="requests per second per model")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.step <= 0:
        parser.error("--step must be positive")
    rng = random.Random(args.seed)
    sets = parameter_sets(rng)
    families = [
        Family(CONFIDENCE, CONFIDENCE_BOUNDS, args.models,
               lambda m: sets[m % PARAMETER_SETS][0], lambda m: sets[m % PARAMETER_SETS][2]),
        Family(LATENCY, LATENCY_BOUNDS, args.models,
               lambda m: sets[m % PARAMETER_SETS][1], lambda m: sets[m % PARAMETER_SETS][3]),
    ]
    helps = {CONFIDENCE: "Top-class confidence of each prediction.",
             LATENCY: "Duration of each prediction request in seconds."}
    args.out.mkdir(parents=True, exist_ok=True)
    start = args.end - args.hours * 3600
    expected = args.rate * args.step
    stamps = list(range(start, args.end + 1, args.step))
    # Group the stamps by the 2 h block they fall in.
    blocks = {}
    for stamp in stamps:
        blocks.setdefault(stamp - stamp % BLOCK_SECONDS, []).append(stamp)
    samples = 0
    for block, block_stamps in sorted(blocks.items()):
        with open(args.out / f"block-{block}.om", "w") as out:
            for family in families:
                out.write(f"# HELP {family.name} {helps[family.name]}\n# TYPE {family.name} histogram\n")
                # A family's samples, time after time; its state advances
                # independently of the other family's.
                for stamp in block_stamps:
                    if stamp != start:
                        family.advance(rng, expected)
                    lines = family.lines(stamp)
                    samples += len(lines)
                    out.writelines(lines)
            out.write("# EOF\n")
    print(f"{samples} samples in {len(blocks)} block files, {args.models} models, "
          f"{len(stamps)} steps of {args.step} s")


if __name__ == "__main__":
    main()
