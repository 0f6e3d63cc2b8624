#!/usr/bin/env python3
"""Scale: the sidecar watching N simulated models through a real Prometheus.

For each N (default 100, 1000, 10000) this starts, on loopback ports:
`model-monitor simulate --models N`, a Prometheus scraping it, and
`model-monitor run` (release build) with one monitor over both histograms
(7 confidence detectors, 2 latency detectors). After the windows have filled
it measures a span of evaluation cycles and reports per cycle:

- PromQL queries (the sidecar's `model_monitor_query_duration_seconds_count`),
- wall time (`model_monitor_evaluation_duration_seconds`: collect + detect),
- Prometheus' own answer time for the same queries: the same four queries
  sent directly, concurrently as the sidecar sends them, body downloaded but
  not parsed (median of 5 rounds), and Prometheus' engine time
  (`prometheus_engine_query_duration_seconds{slice="inner_eval"}`),
- sidecar CPU seconds (utime + stime from /proc/PID/stat over the span),
- peak RSS (VmHWM from /proc/PID/status),
- `/metrics` size and time to serve it (the render itself is timed by
  `cargo bench --bench render`, because it happens inside the evaluation).

Standard library only. Usage:
  scripts/bench-scale.py [--models 100,1000,10000] [--interval 15]
                         [--measure 90] [--rate 2] [--keep-logs DIR]
                         [--default-rule-only] [--binary PATH] [--perf DIR]
Every process is started by this script and killed when it ends.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "model-monitor"
WINDOW = "1m"
REFERENCE_WINDOW = "1m"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url, timeout=60):
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read()
    return body, time.perf_counter() - started


def wait_http(url, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            get(url, timeout=5)
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {url}")


def metric_values(text, name):
    """Sum of every sample of `name` (any labels) in exposition text."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else None


def prom_metric(text, name, labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def curl_seconds(url):
    """Time to download `url` with curl, or None without curl."""
    curl = shutil.which("curl")
    if not curl:
        return None
    out = subprocess.run([curl, "-sS", "-o", "/dev/null", "-w", "%{time_total}", url],
                         check=True, capture_output=True, text=True).stdout
    return float(out)


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kb(pid, key):
    match = re.search(rf"^{key}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(match.group(1)) if match else None


def seconds(duration):
    """Seconds in a one-unit Prometheus duration such as "1m"."""
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[duration[-1]]


def queries():
    selector = '{job="simulate"}'
    out = []
    for histogram in ("model_prediction_confidence", "model_request_duration_seconds"):
        # The probe moves the selector to the window's start (see
        # docs/statistics.md 2.1): offset WINDOW, or WINDOW + REFERENCE_WINDOW.
        start_probe = f"{seconds(WINDOW) + seconds(REFERENCE_WINDOW)}s"
        for range_, modifier, at_start in (
            (WINDOW, "", WINDOW),
            (REFERENCE_WINDOW, f" offset {WINDOW}", start_probe),
        ):
            out.append(
                f"sum by (model, version, le) (increase({histogram}_bucket{selector}[{range_}]{modifier})) "
                f"or label_replace(sum by (model, version) (increase({histogram}_sum{selector}[{range_}]{modifier})), "
                f'"le", "sum", "", "") '
                f"or label_replace(count by (model, version) ({histogram}_bucket{selector} offset {at_start}), "
                f'"le", "start", "", "")'
            )
    return out


def time_queries_directly(prometheus_url):
    """Wall time of the four queries sent concurrently, and each one's time."""

    def one(query):
        url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode(
            {"query": query, "time": f"{time.time():.3f}"}
        )
        body, seconds = get(url, timeout=120)
        return seconds, len(body)

    rounds = []
    per_query = []
    sizes = []
    for _ in range(5):
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(one, queries()))
        rounds.append(time.perf_counter() - started)
        per_query.append(sum(r[0] for r in results))
        sizes = [r[1] for r in results]
    return statistics.median(rounds), statistics.median(per_query), sum(sizes)


# The sidecar's config, shared with the end-to-end tests: every ${VAR} in it
# is expanded by model-monitor from the environment `sidecar_env` gives it.
SIDECAR_TEMPLATE = ROOT / "tests" / "fixtures" / "sidecar.yml"
# One detector of the template: its line `- {type: NAME...}`.
DETECTOR_LINE = re.compile(r"^\s*- \{type: (\w+)")

# Detectors with a fixed threshold: they false-alarm often at this benchmark's
# small windows (BENCHMARKS.md, section 1), and every alert costs memory.
FIXED_THRESHOLD_DETECTORS = ("jensen_shannon", "hellinger", "wasserstein", "quantile_ratio")


def sidecar_config(default_rule_only):
    """The template; with `default_rule_only`, without the fixed-threshold detectors."""
    lines = SIDECAR_TEMPLATE.read_text().splitlines(keepends=True)
    if default_rule_only:
        lines = [line for line in lines
                 if not ((m := DETECTOR_LINE.match(line)) and m.group(1) in FIXED_THRESHOLD_DETECTORS)]
    return "".join(lines)


def sidecar_env(prometheus_url, interval):
    """The template's variables: one monitor over both histograms (7 confidence
    detectors, 2 latency detectors) of job `simulate`."""
    return {
        "PROMETHEUS_URL": prometheus_url,
        "QUERY_TIMEOUT": "60s",
        "EVALUATION_INTERVAL": f"{interval}s",
        "CONCURRENCY": "8",
        "MONITOR_NAME": "scale",
        "WINDOW": WINDOW,
        "REFERENCE_WINDOW": REFERENCE_WINDOW,
        "MIN_SAMPLES": "100",
        "WASSERSTEIN_THRESHOLD": "0.1",
        "LATENCY_RATIO_QUANTILE": "0.99",
        "LATENCY_SLO_MAX": "250ms",
    }


PROMETHEUS_CONFIG = """global:
  scrape_interval: {scrape}s
  scrape_timeout: {scrape}s
scrape_configs:
  - job_name: simulate
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""


class Processes:
    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.children = []

    def start(self, name, args, env=None):
        log = open(self.log_dir / f"{name}.log", "wb")
        child = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env={**os.environ, **env} if env else None)
        self.children.append(child)
        return child

    def stop(self):
        for child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children.clear()


def run(models, args, log_root):
    work = Path(tempfile.mkdtemp(prefix=f"bench-scale-{models}-"))
    log_dir = (log_root / str(models)) if log_root else work
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = Processes(log_dir)
    try:
        simulate_port, prometheus_port, sidecar_port = free_port(), free_port(), free_port()
        processes.start("simulate", [
            str(BINARY), "simulate", f"--web.listen-address=127.0.0.1:{simulate_port}",
            f"--models={models}", f"--rate={args.rate}", "--seed=1",
        ])
        wait_http(f"http://127.0.0.1:{simulate_port}/metrics", 60)
        (work / "prometheus.yml").write_text(PROMETHEUS_CONFIG.format(scrape=args.scrape, port=simulate_port))
        processes.start("prometheus", [
            args.prometheus, f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prometheus_port}",
            "--storage.tsdb.retention.time=1h", "--log.level=warn",
        ])
        prometheus_url = f"http://127.0.0.1:{prometheus_port}"
        wait_http(f"{prometheus_url}/-/ready", 120)
        (work / "sidecar.yml").write_text(sidecar_config(args.default_rule_only))
        sidecar = processes.start("sidecar", [
            str(BINARY), "run", f"--config.file={work / 'sidecar.yml'}",
            f"--web.listen-address=127.0.0.1:{sidecar_port}", f"--storage.path={work / 'data'}",
            "--log.level=warn",
        ], env=sidecar_env(prometheus_url, args.interval))
        sidecar_url = f"http://127.0.0.1:{sidecar_port}"
        wait_http(f"{sidecar_url}/-/healthy", 60)
        # Both windows full: the reference spans [now - 2m, now - 1m].
        fill = 2 * 60 + 2 * args.scrape
        print(f"[{models}] waiting {fill} s for the windows to fill", file=sys.stderr, flush=True)
        time.sleep(fill)

        def sidecar_state():
            body, seconds = get(f"{sidecar_url}/metrics", timeout=60)
            text = body.decode()
            return {
                "text": text,
                "bytes": len(body),
                "serve_seconds": seconds,
                "evaluations": metric_values(text, "model_monitor_evaluations_total") or 0.0,
                "eval_sum": metric_values(text, "model_monitor_evaluation_duration_seconds_sum") or 0.0,
                "eval_count": metric_values(text, "model_monitor_evaluation_duration_seconds_count") or 0.0,
                "queries": metric_values(text, "model_monitor_query_duration_seconds_count") or 0.0,
                "query_sum": metric_values(text, "model_monitor_query_duration_seconds_sum") or 0.0,
                "cpu": cpu_seconds(sidecar.pid),
            }

        def engine_state():
            text = get(f"{prometheus_url}/metrics")[0].decode()
            return {
                slice_: (prom_metric(text, "prometheus_engine_query_duration_seconds_sum", {"slice": slice_}) or 0.0,
                         prom_metric(text, "prometheus_engine_query_duration_seconds_count", {"slice": slice_}) or 0.0)
                for slice_ in ("inner_eval", "prepare_time", "queue_time", "result_sort")
            }

        # Start the span right after an evaluation has finished, then let a
        # whole number of cycles pass without touching the sidecar: every
        # /metrics fetch costs it a copy of the exposition (55 MB at 10,000
        # models), which must not count as evaluation CPU.
        before = sidecar_state()
        while True:
            time.sleep(0.5)
            state = sidecar_state()
            if state["evaluations"] > before["evaluations"]:
                before = state
                before["cpu"] = cpu_seconds(sidecar.pid)
                break
        engine_before = engine_state()
        cycles_wanted = max(1, round(args.measure / args.interval))
        recorder = None
        if args.perf:
            args.perf.mkdir(parents=True, exist_ok=True)
            recorder = subprocess.Popen(
                ["perf", "record", "-F", "499", "-g", "-p", str(sidecar.pid),
                 "-o", str(args.perf / f"perf-{models}.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(cycles_wanted * args.interval + 2)
        if recorder:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)
        cpu_after = cpu_seconds(sidecar.pid)
        after = sidecar_state()
        after["cpu"] = cpu_after
        if after["eval_count"] != after["evaluations"]:
            raise RuntimeError("the span ended inside an evaluation; raise --interval")
        # What one /metrics fetch costs the sidecar, for the record.
        if args.perf:
            recorder = subprocess.Popen(
                ["perf", "record", "-F", "999", "-g", "-p", str(sidecar.pid),
                 "-o", str(args.perf / f"perf-fetch-{models}.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        cpu_before_fetches = cpu_seconds(sidecar.pid)
        for _ in range(3):
            sidecar_state()
        fetch_cpu = (cpu_seconds(sidecar.pid) - cpu_before_fetches) / 3
        if args.perf:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)
        engine_after = engine_state()
        cycles = after["evaluations"] - before["evaluations"]
        # The serve times of the /metrics fetches themselves, for the record.
        # Timed with curl when there is one: Python's reader is slower than
        # the sidecar's writer at tens of megabytes.
        serve = [curl_seconds(f"{sidecar_url}/metrics") or sidecar_state()["serve_seconds"]
                 for _ in range(3)]
        # The sidecar is paused while the same queries are timed directly, so
        # the two do not compete for Prometheus or the CPU.
        os.kill(sidecar.pid, signal.SIGSTOP)
        try:
            direct_wall, direct_sequential, answer_bytes = time_queries_directly(prometheus_url)
        finally:
            os.kill(sidecar.pid, signal.SIGCONT)
        engine_queries = engine_after["inner_eval"][1] - engine_before["inner_eval"][1]
        engine_seconds = sum(engine_after[s][0] - engine_before[s][0] for s in engine_after)
        seen_models = len(re.findall(r'^model_monitor_signal_samples\{.*signal="confidence"', after["text"], re.M))
        result = {
            "models": models,
            "models_on_metrics": seen_models,
            "cycles": cycles,
            "queries_per_cycle": (after["queries"] - before["queries"]) / cycles,
            "cycle_wall_seconds": (after["eval_sum"] - before["eval_sum"]) / cycles,
            "sidecar_query_seconds_per_cycle": (after["query_sum"] - before["query_sum"]) / cycles,
            "prometheus_direct_concurrent_seconds": direct_wall,
            "prometheus_direct_sequential_seconds": direct_sequential,
            "prometheus_answer_bytes": answer_bytes,
            "prometheus_engine_seconds_per_cycle": engine_seconds / cycles,
            "prometheus_engine_queries_per_cycle": engine_queries / cycles,
            "sidecar_cpu_seconds_per_cycle": (after["cpu"] - before["cpu"]) / cycles,
            "sidecar_peak_rss_mb": memory_kb(sidecar.pid, "VmHWM") / 1024,
            "sidecar_rss_mb": memory_kb(sidecar.pid, "VmRSS") / 1024,
            "metrics_bytes": after["bytes"],
            "metrics_serve_seconds": statistics.median(serve),
            "metrics_fetch_cpu_seconds": fetch_cpu,
            "alerts_pending": prom_metric(after["text"], "model_monitor_alerts", {"state": "pending"}),
            "alerts_firing": prom_metric(after["text"], "model_monitor_alerts", {"state": "firing"}),
            "load_average": os.getloadavg(),
        }
        result["wall_over_prometheus"] = result["cycle_wall_seconds"] / direct_wall
        print(json.dumps(result), file=sys.stderr, flush=True)
        return result
    finally:
        processes.stop()
        if not log_root:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(work / "tsdb", ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="100,1000,10000")
    parser.add_argument("--interval", type=int, default=15, help="evaluation interval, seconds")
    parser.add_argument("--scrape", type=int, default=15, help="Prometheus scrape interval, seconds")
    parser.add_argument("--measure", type=int, default=90, help="seconds of cycles measured")
    parser.add_argument("--rate", type=float, default=2.0, help="requests per second per model")
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    parser.add_argument("--keep-logs", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=ROOT / "target" / "bench-scale" / "results.json")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--default-rule-only", action="store_true",
                        help="leave out the fixed-threshold detectors (JS, Hellinger, Wasserstein, quantile_ratio)")
    parser.add_argument("--perf", type=Path, default=None,
                        help="record the sidecar with `perf record -g` over the measured span into DIR")
    parser.add_argument("--binary", type=Path, default=None, help="model-monitor binary (implies --no-build)")
    args = parser.parse_args()
    global BINARY
    if args.binary:
        BINARY = args.binary.resolve()
        args.no_build = True
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "model-monitor"], cwd=ROOT, check=True)
    results = [run(int(n), args, args.keep_logs) for n in args.models.split(",")]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print("| models | queries / cycle | cycle wall | Prometheus direct (concurrent) | wall / Prometheus "
          "| Prometheus engine time / cycle | sidecar CPU / cycle | peak RSS | /metrics size | /metrics serve |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['models']:,} | {r['queries_per_cycle']:.1f} | {r['cycle_wall_seconds']:.3f} s "
              f"| {r['prometheus_direct_concurrent_seconds']:.3f} s | {r['wall_over_prometheus']:.2f}x "
              f"| {r['prometheus_engine_seconds_per_cycle']:.3f} s | {r['sidecar_cpu_seconds_per_cycle']:.3f} s "
              f"| {r['sidecar_peak_rss_mb']:.1f} MB | {r['metrics_bytes'] / 1e6:.2f} MB "
              f"| {r['metrics_serve_seconds'] * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
