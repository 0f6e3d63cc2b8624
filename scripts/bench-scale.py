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
                         [--reference '{window: 1m, refresh: 1h}']
                         [--mimalloc-stats] [--skip-direct]
                         [--replay DIR [--rounds 4]]
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


# The template's reference line, replaced by `--reference`.
REFERENCE_LINE = re.compile(r"^(\s*)reference: .*$", re.M)
# The template's last line of the `prometheus` section, after which the
# answer limits go when N is above their defaults.
TIMEOUT_LINE = "  timeout: ${QUERY_TIMEOUT}\n"
# The defaults of `prometheus.max_models` and `max_series` (README); the
# benchmark's answers hold about 22 series per model and query, ~80 bytes each.
DEFAULT_MAX_MODELS = 10_000


def sidecar_config(default_rule_only, reference=None, models=0):
    """The template; with `default_rule_only`, without the fixed-threshold
    detectors; with `reference`, that YAML mapping as the monitor's reference;
    above 10,000 models, answer limits raised to fit them."""
    lines = SIDECAR_TEMPLATE.read_text().splitlines(keepends=True)
    if default_rule_only:
        lines = [line for line in lines
                 if not ((m := DETECTOR_LINE.match(line)) and m.group(1) in FIXED_THRESHOLD_DETECTORS)]
    text = "".join(lines)
    if reference:
        text, replaced = REFERENCE_LINE.subn(lambda m: f"{m.group(1)}reference: {reference}", text, count=1)
        if replaced != 1:
            raise RuntimeError(f"no reference line in {SIDECAR_TEMPLATE}")
    if models > DEFAULT_MAX_MODELS:
        if TIMEOUT_LINE not in text:
            raise RuntimeError(f"no timeout line in {SIDECAR_TEMPLATE}")
        limits = (f"  max_models: {models}\n  max_series: {models * 40}\n"
                  f"  max_response_bytes: {models * 40 * 120}\n")
        text = text.replace(TIMEOUT_LINE, TIMEOUT_LINE + limits, 1)
    return text


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


def query_role(query):
    """Which of the four queries `query` is: (histogram, role). The role is
    `reference` when the window's increase() carries an offset."""
    histogram = "confidence" if "model_prediction_confidence" in query else "latency"
    increase = query.split(" or ", 1)[0]
    return histogram, "reference" if "offset" in increase else "current"


def record_answers(prometheus_url, directory, interval, rounds):
    """Records the four answers at `rounds` past evaluation times, one
    interval apart, into `directory` (one file per time and query). Slow
    answers are waited for: the recording is made once and replayed."""
    directory.mkdir(parents=True, exist_ok=True)
    newest = (int(time.time()) // interval - 1) * interval

    def one(job):
        index, at, query = job
        url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query, "time": str(at)})
        body, seconds = get(url, timeout=900)
        histogram, role = query_role(query)
        (directory / f"{index}-{histogram}-{role}.json").write_bytes(body)
        return seconds, len(body)

    jobs = [(index, newest - (rounds - 1 - index) * interval, query)
            for index in range(rounds) for query in queries()]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, jobs))
    print(f"recorded {len(jobs)} answers ({sum(r[1] for r in results) / 1e6:.1f} MB) into {directory}",
          file=sys.stderr, flush=True)


class ReplayServer:
    """Answers the sidecar's four queries with recorded answers: evaluation
    time `t` gets round (t / interval) mod rounds, so consecutive evaluations
    see consecutive recordings and alerts change as they did live.

    With `reference_round`, every reference query gets that round's
    reference answer instead: a cached reference (`--reference` with a
    `refresh`) is asked at a time on the refresh grid, which would otherwise
    always map to round 0, the round recorded first, whose reference
    window is the least filled (fewer observations than `min_samples` for
    most models, so most detectors would not decide)."""

    def __init__(self, directory, interval, reference_round=None):
        import http.server
        import threading
        answers = {}
        for path in directory.glob("*.json"):
            index, histogram, role = path.stem.split("-")
            answers[(int(index), histogram, role)] = path.read_bytes()
        if not answers:
            raise RuntimeError(f"no recorded answers in {directory}")
        rounds = 1 + max(index for index, _, _ in answers)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self, params):
                query = params.get("query", [""])[0]
                at = float(params.get("time", ["0"])[0])
                histogram, role = query_role(query)
                index = round(at / interval) % rounds
                if role == "reference" and reference_round is not None:
                    index = reference_round % rounds
                body = answers.get((index, histogram, role))
                if body is None:
                    self.send_error(400, "no recorded answer")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802 - the handler's interface
                self.answer(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query))

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                self.answer(urllib.parse.parse_qs(self.rfile.read(length).decode()))

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


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
        replay = None
        recordings = args.replay / str(models) if args.replay else None
        if recordings is None or not recordings.exists():
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
                # A recording waits for slow answers (a large N on a busy
                # machine) rather than failing at the default 2 minutes.
                *(["--query.timeout=15m"] if recordings is not None else []),
            ])
            prometheus_url = f"http://127.0.0.1:{prometheus_port}"
            wait_http(f"{prometheus_url}/-/ready", 120)
            if recordings is not None:
                # Both windows full, plus the recorded evaluations.
                fill = 2 * 60 + 2 * args.scrape + args.rounds * args.interval
                print(f"[{models}] waiting {fill} s, then recording {args.rounds} evaluations",
                      file=sys.stderr, flush=True)
                time.sleep(fill)
                record_answers(prometheus_url, recordings, args.interval, args.rounds)
                processes.stop()
        if recordings is not None:
            # A cached reference: the last round's, whose window is full.
            cached = args.reference is not None and "refresh" in args.reference
            replay = ReplayServer(recordings, args.interval, args.rounds - 1 if cached else None)
            prometheus_url = replay.url
        (work / "sidecar.yml").write_text(sidecar_config(args.default_rule_only, args.reference, models))
        sidecar = processes.start("sidecar", [
            str(BINARY), "run", f"--config.file={work / 'sidecar.yml'}",
            f"--web.listen-address=127.0.0.1:{sidecar_port}", f"--storage.path={work / 'data'}",
            "--log.level=warn",
        ], env={**sidecar_env(prometheus_url, args.interval),
                **({"MIMALLOC_SHOW_STATS": "1"} if args.mimalloc_stats else {})})
        sidecar_url = f"http://127.0.0.1:{sidecar_port}"
        wait_http(f"{sidecar_url}/-/healthy", 60)
        # Both windows full: the reference spans [now - 2m, now - 1m]. A
        # replay is full at once: a few evaluations bring the alerts to
        # their steady churn.
        fill = 2 * 60 + 2 * args.scrape if replay is None else 4 * args.interval
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
            if replay is not None:
                return {slice_: (0.0, 0.0) for slice_ in ("inner_eval", "prepare_time", "queue_time", "result_sort")}
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
        direct_wall = direct_sequential = answer_bytes = None
        if not args.skip_direct and replay is None:
            os.kill(sidecar.pid, signal.SIGSTOP)
            try:
                direct_wall, direct_sequential, answer_bytes = time_queries_directly(prometheus_url)
            except OSError as error:
                # A loaded machine can make Prometheus slower than the
                # timeout: the sidecar's numbers still stand.
                print(f"[{models}] timing the queries directly failed: {error}", file=sys.stderr, flush=True)
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
            "replayed": replay is not None,
        }
        result["wall_over_prometheus"] = result["cycle_wall_seconds"] / direct_wall if direct_wall else None
        print(json.dumps(result), file=sys.stderr, flush=True)
        return result
    finally:
        processes.stop()
        if replay is not None:
            replay.stop()
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
    parser.add_argument("--replay", type=Path, default=None,
                        help="answer the sidecar from answers recorded in DIR/N (recorded there first, from "
                             "simulate and Prometheus, when DIR/N does not exist): the sidecar's costs without "
                             "Prometheus sharing the CPU")
    parser.add_argument("--rounds", type=int, default=4,
                        help="evaluations recorded for --replay, replayed in turn")
    parser.add_argument("--skip-direct", action="store_true",
                        help="do not time the queries sent to Prometheus directly (the sidecar's own numbers only)")
    parser.add_argument("--reference", default=None,
                        help="the monitor's reference as a YAML mapping, e.g. '{window: 1m, refresh: 1h}' "
                             "(default: the template's {window: 1m})")
    parser.add_argument("--mimalloc-stats", action="store_true",
                        help="run the sidecar with MIMALLOC_SHOW_STATS=1: mimalloc prints its statistics "
                             "into the sidecar's log when it exits (with --keep-logs)")
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
    def number(value, unit):
        return "n/a" if value is None else f"{value:.3f}{unit}"

    for r in results:
        print(f"| {r['models']:,} | {r['queries_per_cycle']:.1f} | {r['cycle_wall_seconds']:.3f} s "
              f"| {number(r['prometheus_direct_concurrent_seconds'], ' s')} | {number(r['wall_over_prometheus'], 'x')} "
              f"| {r['prometheus_engine_seconds_per_cycle']:.3f} s | {r['sidecar_cpu_seconds_per_cycle']:.3f} s "
              f"| {r['sidecar_peak_rss_mb']:.1f} MB | {r['metrics_bytes'] / 1e6:.2f} MB "
              f"| {r['metrics_serve_seconds'] * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
