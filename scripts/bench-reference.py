#!/usr/bin/env python3
"""Cached references: Prometheus' answer time and the sidecar's cost per
evaluation cycle with `reference: {window: 7d}`, refreshed at every
evaluation (no cache, as before) and hourly (the cache), over a real week
of history.

For each size (default 1,000 models at a 15 m step and 10,000 at 4 h), this
writes a week and a few hours of simulate-shaped history with
scripts/gen-history.py, backfills it with `promtool tsdb create-blocks-from
openmetrics` (one 2 h block at a time), starts a Prometheus on that data
(retention 30d, compaction off so nothing runs in the background,
lookback delta twice the step so the coarse series read as continuous, the
query log on) and runs `model-monitor backtest` over the last hour of the
history: the loop's own evaluation step (`evaluate_at`) at evaluation times
on the 1 m grid, with the template's monitor (tests/fixtures/sidecar.yml:
both histograms, PSI, KS, chi-square, z-score, the latency SLO; a 1 h
window, or two steps when longer):

- `uncached`: `refresh: 1m`, the evaluation interval: every cycle sends
  the reference queries, as every cycle did before the cache;
- `cached`: `refresh: 1h`, the times within one hour: the first cycle
  refreshes, the others read the cache.

Per cycle it reports, from Prometheus' query log, the engine time of the
cycle's queries (`execTotalTime`, summed) and their number, and the cycle's
wall time (from the start of its first query to the start of the next
cycle's first query: queries, then detection; the last cycle of a run has
no successor and is left out); and the sidecar's CPU (user + system of the
backtest process): per uncached cycle the run's CPU over its cycles, per
cached cycle the cached run's CPU less one uncached cycle, over the other
cycles. The amortised mean is one refresh and 59 cached cycles per hour at
a 1 m interval. The load average is recorded with each size, since other
work shares the machine.

Standard library only; reuses scripts/bench-scale.py's helpers. Usage:
  scripts/bench-reference.py [--sizes 1000:900,10000:14400] [--binary PATH]
                             [--json FILE] [--keep DIR]
"""

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "scripts" / "bench-scale.py")
bench_scale = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_scale)

INTERVAL = 60
UNCACHED_CYCLES = 3
CACHED_CYCLES = 8


def backfill(models, step, end, hours, work):
    """The history in a TSDB directory; returns (samples line, seconds)."""
    started = time.perf_counter()
    om = work / "om"
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-history.py"),
                          f"--models={models}", f"--step={step}", f"--hours={hours}",
                          f"--end={end}", f"--out={om}"], check=True, capture_output=True, text=True).stdout
    generated = time.perf_counter() - started
    tsdb = work / "tsdb"
    for block in sorted(om.glob("block-*.om")):
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(block), str(tsdb)],
                       check=True, capture_output=True)
        block.unlink()
    return out.strip(), generated, time.perf_counter() - started - generated


def engine_seconds(prometheus_url):
    text = bench_scale.get(f"{prometheus_url}/metrics")[0].decode()
    return sum(bench_scale.prom_metric(text, "prometheus_engine_query_duration_seconds_sum", {"slice": s}) or 0.0
               for s in ("inner_eval", "prepare_time", "queue_time", "result_sort"))


def query_log_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def parse_time(text):
    return time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + float("0" + text[19:-1])


def cycles(lines, start, count):
    """Per cycle of a run whose evaluations are `count` times from `start`,
    INTERVAL apart: (engine seconds, queries, start of its first query),
    from the run's query log lines. A query belongs to the first cycle at
    or after its evaluation time (a reference's time is at or before the
    cycle that sends it)."""
    out = [[0.0, 0, None] for _ in range(count)]
    for line in lines:
        entry = json.loads(line)
        at = parse_time(entry["params"]["end"])
        index = min(count - 1, max(0, -int((start - at) // INTERVAL)))
        seconds = entry["stats"]["timings"]["execTotalTime"]
        began = parse_time(entry["ts"]) - seconds
        cycle = out[index]
        cycle[0] += seconds
        cycle[1] += 1
        cycle[2] = began if cycle[2] is None else min(cycle[2], began)
    return out


def mean(values):
    values = list(values)
    return sum(values) / len(values)


def summarise(uncached, cached, start):
    """Refresh, cached and amortised cycles from the two runs."""
    def walls(run):
        return [run["cycles_log"][k + 1][2] - run["cycles_log"][k][2] for k in range(len(run["cycles_log"]) - 1)]
    uncached_walls, cached_walls = walls(uncached), walls(cached)
    refresh_cpu = uncached["cpu_seconds"] / uncached["cycles"]
    no_cache = {
        "engine_seconds": mean(c[0] for c in uncached["cycles_log"]),
        "queries": mean(c[1] for c in uncached["cycles_log"]),
        "wall_seconds": mean(uncached_walls),
        "cpu_seconds": refresh_cpu,
    }
    refresh = {
        "engine_seconds": cached["cycles_log"][0][0],
        "queries": cached["cycles_log"][0][1],
        "wall_seconds": cached_walls[0],
        "cpu_seconds": refresh_cpu,
    }
    hit = {
        "engine_seconds": mean(c[0] for c in cached["cycles_log"][1:]),
        "queries": mean(c[1] for c in cached["cycles_log"][1:]),
        "wall_seconds": mean(cached_walls[1:]),
        "cpu_seconds": (cached["cpu_seconds"] - refresh_cpu) / (cached["cycles"] - 1),
    }
    per_hour = 3600 // INTERVAL
    amortised = {k: (refresh[k] + (per_hour - 1) * hit[k]) / per_hour for k in refresh}
    return {"no_cache": no_cache, "refresh_cycle": refresh, "cached_cycle": hit, "amortised_cached": amortised}


def backtest(binary, work, prometheus_url, refresh, start, cycles, query_log, window):
    cycles_of = globals()["cycles"]
    """Runs backtest over `cycles` evaluation times from `start`; returns
    the run's measures."""
    template = bench_scale.sidecar_config(default_rule_only=True)
    lines = [f"    reference: {{window: 7d, refresh: {refresh}}}" if line.startswith("    reference:")
             else line for line in template.splitlines()]
    config = work / f"sidecar-{refresh}.yml"
    config.write_text("\n".join(lines) + "\n")
    env = {**os.environ, **bench_scale.sidecar_env(prometheus_url, INTERVAL),
           "WINDOW": window, "QUERY_TIMEOUT": "300s", "MONITOR_NAME": "week"}
    from_ = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    to = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + (cycles - 1) * INTERVAL))
    args = [str(binary), "backtest", f"--config.file={config}", f"--from={from_}", f"--to={to}",
            "--format=json", f"--output={work / f'report-{refresh}.json'}"]
    engine_before, logged_before = engine_seconds(prometheus_url), len(query_log_lines(query_log))
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, check=True, env=env, capture_output=True)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads((work / f"report-{refresh}.json").read_text())
    if report["evaluations"] != cycles:
        raise RuntimeError(f"backtest ran {report['evaluations']} evaluations, not {cycles}")
    logged = query_log_lines(query_log)[logged_before:]
    return {
        "cycles": cycles,
        "wall_seconds": wall,
        "cpu_seconds": (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime),
        "engine_seconds": engine_seconds(prometheus_url) - engine_before,
        "queries": len(logged),
        "cycles_log": cycles_of(logged, start, cycles),
    }


def run_size(models, step, binary, keep):
    work = Path(tempfile.mkdtemp(prefix=f"bench-reference-{models}-"))
    processes = bench_scale.Processes(work)
    try:
        end = int(time.time()) // 7200 * 7200
        # The current window holds at least two samples of each series.
        window_seconds = max(3600, 2 * step)
        window = f"{window_seconds // 60}m"
        # A week before the window of the first evaluation, which is an
        # hour before the end.
        hours = 7 * 24 + window_seconds // 3600 + 1
        history, generated, imported = backfill(models, step, end, hours, work)
        print(f"[{models}] {history}: generated in {generated:.0f} s, backfilled in {imported:.0f} s",
              file=sys.stderr, flush=True)
        port = bench_scale.free_port()
        query_log = work / "queries.log"
        (work / "prometheus.yml").write_text(f"global:\n  query_log_file: {query_log}\n")
        processes.start("prometheus", [
            "prometheus", f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30d",
            "--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h",
            f"--query.lookback-delta={2 * step}s", "--query.max-samples=1000000000",
            "--query.timeout=5m", "--log.level=warn",
        ])
        url = f"http://127.0.0.1:{port}"
        bench_scale.wait_http(f"{url}/-/ready", 300)
        # The last hour of the history: its references reach back a week
        # and an hour, to the history's start.
        start = end - 3600 + INTERVAL
        # A first run reads the blocks into the page cache; not counted.
        backtest(binary, work, url, "1m", start, 1, query_log, window)
        load = os.getloadavg()
        uncached = backtest(binary, work, url, "1m", start, UNCACHED_CYCLES, query_log, window)
        cached = backtest(binary, work, url, "1h", start, CACHED_CYCLES, query_log, window)
        result = {
            "models": models,
            "step_seconds": step,
            "window": window,
            "binary": str(binary),
            "history": history,
            "generate_seconds": generated,
            "backfill_seconds": imported,
            "load_average": load,
            "start": start,
            "uncached_run": uncached,
            "cached_run": cached,
            **summarise(uncached, cached, start),
        }
        print(json.dumps(result), file=sys.stderr, flush=True)
        return result
    finally:
        processes.stop()
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            for log in work.glob("*.log"):
                shutil.copy(log, keep / f"{models}-{log.name}")
        shutil.rmtree(work, ignore_errors=True)


def reanalyse(results_file, query_log):
    """The summary of results written before the per-cycle analysis, from
    their kept query log: the warm-up's, the uncached and the cached run's
    queries, in order."""
    results = json.loads(Path(results_file).read_text())
    results = results if isinstance(results, list) else [results]
    lines = Path(query_log).read_text().splitlines()
    for result in results:
        step, models = result["step_seconds"], result["models"]
        end = int(parse_time(json.loads(lines[0])["params"]["end"])) // 3600 * 3600 + 3600
        start = result.get("start") or end - 3600 + INTERVAL
        uncached, cached = result["uncached_run"], result["cached_run"]
        warmup = len(lines) - uncached["queries"] - cached["queries"]
        uncached["cycles_log"] = cycles(lines[warmup:warmup + uncached["queries"]], start, uncached["cycles"])
        cached["cycles_log"] = cycles(lines[warmup + uncached["queries"]:], start, cached["cycles"])
        result.update(summarise(uncached, cached, start))
        print(f"[{models}] step {step} s, start {start}", file=sys.stderr)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000:900,10000:14400", help="models:step_seconds,...")
    parser.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "model-monitor")
    parser.add_argument("--json", type=Path, default=ROOT / "target" / "bench-reference" / "results.json")
    parser.add_argument("--keep", type=Path, default=None, help="copy the logs here")
    parser.add_argument("--reanalyse", type=Path, nargs=2, metavar=("RESULTS", "QUERY_LOG"), default=None,
                        help="summarise again a size's results and its kept query log (warm-up, uncached and "
                             "cached runs in this order)")
    args = parser.parse_args()
    if args.reanalyse:
        results = reanalyse(*args.reanalyse)
    else:
        results = []
        for size in args.sizes.split(","):
            models, step = (int(part) for part in size.split(":"))
            results.append(run_size(models, step, args.binary, args.keep))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    header = ("| models | step | cycle | Prometheus engine s | queries | sidecar wall s | sidecar CPU s |\n"
              "|---:|---:|---|---:|---:|---:|---:|")
    print(header)
    for r in results:
        for name, key in (("no cache (every cycle refreshes)", "no_cache"),
                          ("cache: refresh cycle", "refresh_cycle"),
                          ("cache: cached cycle", "cached_cycle"),
                          ("cache: amortised (1 in 60)", "amortised_cached")):
            row = r[key]
            print(f"| {r['models']:,} | {r['step_seconds'] // 60}m | {name} | {row['engine_seconds']:.3f} | "
                  f"{row['queries']:.1f} | {row['wall_seconds']:.3f} | {row['cpu_seconds']:.3f} |")
    for r in results:
        print(f"{r['models']:,} models: {r['history']}; load average {r['load_average']}")


if __name__ == "__main__":
    main()
