#!/usr/bin/env python3
"""HTTP load: `/metrics` under 50 concurrent scrapers and `/api/v1/status`
under 20 concurrent calls, while evaluations run.

For each binary given (`--binary NAME=PATH`, e.g. the base commit's and
this one's) this starts, on loopback ports, a static PromQL API (in this
script: every query is answered with the same pre-built instant vector of N
models, 5 buckets and the `le="start"` count each, so both windows agree)
and `model-monitor run` against it (one monitor, a confidence and a latency
signal, the default-rule detectors, `evaluation.interval: 5s`). Then:

- `/metrics` at `--models` models: `wrk -t2 -c50 -d<duration>s --latency`,
  once plain and once with `Accept-Encoding: gzip`; p50 and p99 latency,
  requests per second, the bytes of one answer, the sidecar's CPU over the
  run and its peak RSS (VmHWM) after it;
- `/api/v1/status` at `--status-models` models (a second sidecar): 20
  calls at once (threads, urllib), the slowest call's time, the body size
  and the peak RSS before and after the calls.

It prints a Markdown table per part. wrk comes from Debian (`apt-get
install wrk`); nothing else outside the standard library. Usage:

  scripts/bench-http.py --binary before=/tmp/base/model-monitor \
                        --binary after=target/x86_64-unknown-linux-musl/image/model-monitor \
                        [--models 10000] [--status-models 45000] [--duration 20]

Every process is started by this script and killed when it ends.
"""

import argparse
import concurrent.futures
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
CALLS = 20
CONFIG = """prometheus:
  url: http://127.0.0.1:{port}
  timeout: 120s
  max_models: {max_models}
  max_series: {max_series}
  max_response_bytes: 4294967296
evaluation:
  interval: 5s
monitors:
  - name: bench
    window: 5m
    reference: {{offset: 1d}}
    min_samples: 100
    signals:
      confidence:
        histogram: model_prediction_confidence
        detectors:
          - {{type: psi}}
          - {{type: ks}}
          - {{type: chi_square}}
          - {{type: zscore}}
      latency:
        histogram: model_request_duration_seconds
        detectors:
          - {{type: quantile_slo, quantile: 0.99, max: 0.9}}
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vector_answer(models):
    """One instant vector: per model 5 cumulative buckets and `le="start"`."""
    buckets = [("0.25", 100), ("0.5", 250), ("0.75", 500), ("1", 800), ("+Inf", 1000), ("start", 5)]
    samples = []
    for index in range(models):
        for le, value in buckets:
            samples.append(
                '{"metric":{"le":"%s","model":"model-%d","version":"v1"},"value":[1700000000,"%d"]}'
                % (le, index, value)
            )
    return ('{"status":"success","data":{"resultType":"vector","result":[' + ",".join(samples) + "]}}").encode()


class StaticPromql:
    """Answers every request with one pre-built body, on its own threads."""

    def __init__(self, models):
        body = vector_answer(models)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = answer
            do_POST = answer

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the sidecar closing a kept-alive connection

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


class Sidecar:
    def __init__(self, binary, promql_port, models, workdir, name):
        self.port = free_port()
        config = Path(workdir) / f"{name}.yml"
        config.write_text(
            CONFIG.format(port=promql_port, max_models=models + 1, max_series=8 * models)
        )
        self.log = open(Path(workdir) / f"{name}.log", "w")
        self.process = subprocess.Popen(
            [
                binary,
                "run",
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.path={Path(workdir) / (name + '-data')}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_evaluated(self, models, seconds=600):
        """Until /metrics has every model (and one more evaluation ran)."""
        deadline = time.time() + seconds
        needle = f'model="model-{models - 1}"'.encode()
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url("/metrics"), timeout=60) as response:
                    if needle in response.read():
                        time.sleep(6)
                        return
            except OSError:
                pass
            time.sleep(1)
        raise RuntimeError(f"the sidecar did not evaluate {models} models; see {self.log.name}")

    def proc(self, name):
        with open(f"/proc/{self.process.pid}/{name}") as file:
            return file.read()

    def peak_rss_mb(self):
        kib = re.search(r"VmHWM:\s+(\d+) kB", self.proc("status")).group(1)
        return int(kib) / 1024

    def cpu_seconds(self):
        fields = self.proc("stat").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.log.close()


def seconds(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(url, duration, gzip):
    command = ["wrk", "-t2", "-c50", f"-d{duration}s", "--timeout", "30s", "--latency", url]
    if gzip:
        command[1:1] = ["-H", "Accept-Encoding: gzip"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.M))
    if set(latency) != {"50", "99"}:
        sys.exit(f"no latency distribution in wrk's output:\n{output}")
    return {
        "p50": seconds(latency["50"]),
        "p99": seconds(latency["99"]),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "errors": re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", output),
        "raw": output,
    }


def body_bytes(url, gzip):
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzip else {})
    with urllib.request.urlopen(request, timeout=120) as response:
        return len(response.read())


def metrics_part(name, binary, models, duration, workdir):
    promql = StaticPromql(models)
    sidecar = Sidecar(binary, promql.port, models, workdir, f"{name}-metrics")
    rows = []
    try:
        sidecar.wait_evaluated(models)
        for gzip in (False, True):
            size = body_bytes(sidecar.url("/metrics"), gzip)
            cpu = sidecar.cpu_seconds()
            result = run_wrk(sidecar.url("/metrics"), duration, gzip)
            cpu = sidecar.cpu_seconds() - cpu
            if result["errors"]:
                print(result["raw"], file=sys.stderr)
            rows.append(
                f"| {name} | {'gzip' if gzip else 'plain'} | {models:,} | {size / 1e6:.1f} MB "
                f"| {result['p50'] * 1000:.0f} ms | {result['p99'] * 1000:.0f} ms "
                f"| {result['rps']:.1f} | {cpu / duration:.2f} | {sidecar.peak_rss_mb():.0f} MB |"
            )
            print(rows[-1], file=sys.stderr)
    finally:
        sidecar.stop()
        promql.stop()
    return rows


def status_part(name, binary, models, workdir):
    promql = StaticPromql(models)
    sidecar = Sidecar(binary, promql.port, models, workdir, f"{name}-status")
    try:
        sidecar.wait_evaluated(models)
        before = sidecar.peak_rss_mb()

        def call(_):
            started = time.perf_counter()
            with urllib.request.urlopen(sidecar.url("/api/v1/status"), timeout=600) as response:
                size = len(response.read())
            return time.perf_counter() - started, size

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(CALLS) as pool:
            results = list(pool.map(call, range(CALLS)))
        wall = time.perf_counter() - started
        after = sidecar.peak_rss_mb()
        times = sorted(t for t, _ in results)
        row = (
            f"| {name} | {models:,} | {results[0][1] / 1e6:.1f} MB | {times[len(times) // 2]:.2f} s "
            f"| {times[-1]:.2f} s | {wall:.2f} s | {before:.0f} MB | {after:.0f} MB |"
        )
        print(row, file=sys.stderr)
        return [row]
    finally:
        sidecar.stop()
        promql.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", action="append", required=True, help="NAME=PATH, repeatable")
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--status-models", type=int, default=45_000)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--skip-metrics", action="store_true")
    parser.add_argument("--skip-status", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    binaries = [entry.split("=", 1) for entry in args.binary]
    metrics_rows, status_rows = [], []
    with tempfile.TemporaryDirectory() as workdir:
        for name, binary in binaries:
            if not args.skip_metrics:
                metrics_rows += metrics_part(name, binary, args.models, args.duration, workdir)
            if not args.skip_status:
                status_rows += status_part(name, binary, args.status_models, workdir)
    if metrics_rows:
        print(f"\n`/metrics`, wrk -t2 -c50 -d{args.duration}s, evaluations every 5 s:\n")
        print("| binary | encoding | models | body | p50 | p99 | requests/s | sidecar CPU (cores) | peak RSS after |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        print("\n".join(metrics_rows))
    if status_rows:
        print(f"\n`/api/v1/status`, {CALLS} concurrent calls:\n")
        print("| binary | models | body | median call | slowest call | all calls | peak RSS before | peak RSS after |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        print("\n".join(status_rows))


if __name__ == "__main__":
    main()
