#!/usr/bin/env bash
# Backtest speed and peak memory at 100 and 1,000 models, against a real
# Prometheus that has scraped `model-monitor simulate` for a while (live
# scrapes, not backfilled blocks): two simulators (100 and 1,000 models) are
# scraped every 10 s for BENCH_SCRAPE_SECONDS (default 600), then
# `model-monitor backtest` (release build) replays the span after the first
# 4 minutes (window 1m, reference the 3m before it, as examples/demo.yml)
# on a 30 s grid with psi, ks and the p95 latency ratio, once per model
# count. Prints one Markdown table row per count: evaluations, simulated
# time, wall time, simulated days per second, peak RSS (from
# /usr/bin/time -v, or /proc when it is missing).
#
#   scripts/bench-backtest.sh            # builds the release binary first
#   BENCH_SCRAPE_SECONDS=900 scripts/bench-backtest.sh
#   MODEL_MONITOR_BIN=target/debug/model-monitor scripts/bench-backtest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_prometheus_tools
scrape_seconds="${BENCH_SCRAPE_SECONDS:-600}"
# MODEL_MONITOR_BIN: a binary to measure instead of a fresh release build.
if [ -n "${MODEL_MONITOR_BIN:-}" ]; then
  bin=$MODEL_MONITOR_BIN
else
  cargo build --quiet --release --locked --bin model-monitor
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/model-monitor"
fi
work=$(mktemp -d -t model-monitor-bench-backtest.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

sim100=$(free_port 19848)
sim1000=$(free_port $((sim100 + 1)))
prom=$(free_port $((sim1000 + 1)))
"$bin" simulate --web.listen-address="127.0.0.1:$sim100" --models=100 --rate=5 \
  >"$work/sim100.log" 2>&1 &
pids+=($!)
"$bin" simulate --web.listen-address="127.0.0.1:$sim1000" --models=1000 --rate=5 \
  >"$work/sim1000.log" 2>&1 &
pids+=($!)
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 10s
scrape_configs:
  - job_name: sim100
    static_configs: [{targets: ['127.0.0.1:$sim100']}]
  - job_name: sim1000
    static_configs: [{targets: ['127.0.0.1:$sim1000']}]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$prom" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$prom/-/ready" 60
start=$(date -u +%s)
echo "scraping for ${scrape_seconds}s (work directory: $work)" >&2
sleep "$scrape_seconds"
from=$(date -u -d "@$((start + 240))" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "@$((start + scrape_seconds))" +%Y-%m-%dT%H:%M:%SZ)

echo "| models | evaluations | simulated | wall | simulated days/s | peak RSS |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
for models in 100 1000; do
  cat >"$work/backtest-$models.yml" <<YAML
prometheus:
  url: http://127.0.0.1:$prom
  max_models: 20000
evaluation:
  interval: 30s
monitors:
  - name: sim$models
    selector: '{job="sim$models"}'
    window: 1m
    reference: {window: 3m}
    min_samples: 100
    signals:
      confidence:
        histogram: model_prediction_confidence
        detectors: [{type: psi}, {type: ks}]
      latency:
        histogram: model_request_duration_seconds
        detectors: [{type: quantile_ratio, quantile: 0.95, max_ratio: 1.5}]
YAML
  began=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v "$bin" backtest --config.file="$work/backtest-$models.yml" \
      --from="$from" --to="$to" --format=json --output="$work/report-$models.json" \
      2>"$work/time-$models.log"
    rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time-$models.log")
  else
    "$bin" backtest --config.file="$work/backtest-$models.yml" \
      --from="$from" --to="$to" --format=json --output="$work/report-$models.json" &
    pid=$!
    rss_kb=0
    while kill -0 "$pid" 2>/dev/null; do
      hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      [ "${hwm:-0}" -gt "$rss_kb" ] && rss_kb=$hwm
      sleep 0.05
    done
    wait "$pid"
  fi
  ended=$(date +%s.%N)
  evaluations=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['evaluations'])" "$work/report-$models.json")
  python3 - "$models" "$evaluations" "$from" "$to" "$began" "$ended" "$rss_kb" <<'PY'
import sys
from datetime import datetime
models, evaluations, start, end, began, ended, rss_kb = sys.argv[1:]
parse = lambda t: datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ")
simulated = (parse(end) - parse(start)).total_seconds()
wall = float(ended) - float(began)
days_per_second = simulated / 86400 / wall
print(f"| {int(models):,} | {evaluations} | {simulated:.0f} s | {wall:.2f} s | {days_per_second:.4f} | {int(rss_kb) / 1024:.1f} MiB |")
PY
done
