#!/usr/bin/env bash
# The demo stack on loopback: a simulated model server with three models (one
# drifts after five minutes), a real Prometheus scraping it and loading the
# alert rules of alerts/ (with `for` shortened to DEMO_ALERT_FOR), model-monitor
# querying that Prometheus, and Alertmanager delivering the alerts to a tiny
# webhook receiver that prints them. Prints a live table of drift scores and
# every alert delivered; Ctrl-C stops everything it started.
#
# model-monitor decides nothing until the series are older than its current
# window plus reference (examples/demo.yml: 1m + 3m), so a drift before that
# would already be in the reference when decisions begin.
#
# --tls serves the sidecar's endpoints behind examples/web-config.yml (TLS,
# client certificates from the demo CA, basic auth as prometheus/demo), and
# Prometheus scrapes it over https with the demo client certificate.
#
# --engine victoriametrics puts VictoriaMetrics in Prometheus' place: it
# scrapes the model server and answers model-monitor's queries (with the
# flavor's evaluation delay, 1m behind the clock), while Prometheus only
# scrapes model-monitor to evaluate the alert rules. Needs victoria-metrics
# (apt-get install victoria-metrics).
#
# Environment: DEMO_DRIFT_AFTER (default 5m), DEMO_ALERT_FOR (default 1m),
# DEMO_DURATION (seconds; stop by itself after that long, for unattended
# runs), DEMO_DIR (work directory).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

usage="usage: scripts/demo.sh [--tls] [--engine prometheus|victoriametrics]
  --tls                        serve model-monitor's endpoints over TLS with client certificates
  --engine prometheus          Prometheus stores the models' histograms (the default)
  --engine victoriametrics     VictoriaMetrics stores them and answers model-monitor's queries"
tls=false
engine=prometheus
while [ $# -gt 0 ]; do
  case "$1" in
    --tls) tls=true ;;
    --engine) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; engine=$2; shift ;;
    --engine=*) engine="${1#--engine=}" ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
case "$engine" in
  prometheus) ;;
  victoriametrics)
    command -v victoria-metrics >/dev/null 2>&1 ||
      { echo "--engine victoriametrics needs victoria-metrics: apt-get install victoria-metrics" >&2; exit 1; } ;;
  *) echo "unknown engine \"$engine\"; valid engines: prometheus, victoriametrics" >&2; exit 2 ;;
esac

ensure_prometheus_tools
command -v python3 >/dev/null 2>&1 || { echo "the demo's alert receiver needs python3" >&2; exit 1; }
alertmanager_bin=$(command -v alertmanager || command -v prometheus-alertmanager)
echo "building model-monitor (first time: a few minutes)..." >&2
cargo build --quiet --locked
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/model-monitor"

work="${DEMO_DIR:-$(mktemp -d -t model-monitor-demo.XXXXXX)}"
mkdir -p "$work"
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping the demo (logs stay in $work)"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

sim_port=$(free_port 9848)
prom_port=$(free_port $((sim_port + 1)))
[ "$prom_port" = "$sim_port" ] && prom_port=$(free_port $((sim_port + 1)))
mon_port=$(free_port $((prom_port + 1)))
am_port=$(free_port 9893)
hook_port=$(free_port $((am_port + 1)))
drift_after="${DEMO_DRIFT_AFTER:-5m}"
mon_url="http://127.0.0.1:$mon_port"
mon_curl=()
mon_scrape=""
mon_flags=()
if $tls; then
  secrets="$PWD/examples/secrets/tls"
  mon_url="https://127.0.0.1:$mon_port"
  mon_curl=(--cacert "$secrets/ca.crt" --cert "$secrets/client.crt" --key "$secrets/client.key" -u prometheus:demo)
  mon_scrape="
    scheme: https
    tls_config: {ca_file: '$secrets/ca.crt', cert_file: '$secrets/client.crt', key_file: '$secrets/client.key'}
    basic_auth: {username: prometheus, password: demo}"
  mon_flags=(--web.config.file=examples/web-config.yml)
fi
alert_for="${DEMO_ALERT_FOR:-1m}"

"$bin" simulate --web.listen-address="127.0.0.1:$sim_port" --models=3 --seed=42 \
  --drift-model=model-1 --drift-after="$drift_after" --rate=20 >"$work/simulate.log" 2>&1 &
pids+=($!)

# The demo's alert receiver and an Alertmanager that sends it everything.
: >"$work/alerts.log"
python3 scripts/demo-webhook-receiver.py "$hook_port" "$work/alerts.log" >"$work/receiver.log" 2>&1 &
pids+=($!)
cat >"$work/alertmanager.yml" <<YAML
# The demo variant of alerts/alertmanager.yml: one local webhook receiver.
route:
  receiver: demo-log
  group_by: [alertname, monitor, model, version]
  group_wait: 5s
  group_interval: 30s
  repeat_interval: 1h
inhibit_rules:
  - source_matchers: ['alertname="ModelMonitorSourceDown"']
    target_matchers: ['alertname=~"ModelDriftDetected|ModelLatencyRegression|ModelLatencyTailRegression|ModelLatencySLOBreach|ModelAccuracyDrop"']
    equal: [instance, monitor]
receivers:
  - name: demo-log
    webhook_configs:
      - url: http://127.0.0.1:$hook_port/
        send_resolved: true
YAML
"$alertmanager_bin" --config.file="$work/alertmanager.yml" --storage.path="$work/alertmanager-data" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= --log.level=warn \
  >"$work/alertmanager.log" 2>&1 &
pids+=($!)

# Prometheus scrapes the model server unless VictoriaMetrics does.
model_server_job="
  - job_name: model-server
    static_configs:
      - targets: ['127.0.0.1:$sim_port']"
if [ "$engine" = victoriametrics ]; then
  model_server_job=""
fi

# The rules of alerts/, with every `for` shortened so alerts fire within the demo.
sed -E "s/^( +for: ).*/\1$alert_for/" alerts/model-monitor.rules.yml >"$work/model-monitor.rules.yml"
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files: ['$work/model-monitor.rules.yml']
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$am_port']
scrape_configs:$model_server_job
  - job_name: model-monitor$mon_scrape
    static_configs:
      - targets: ['127.0.0.1:$mon_port']
YAML
# With VictoriaMetrics the model server is its target and it answers
# model-monitor's queries (the config's flavor set to victoriametrics).
engine_url="http://127.0.0.1:$prom_port"
config=examples/demo.yml
if [ "$engine" = victoriametrics ]; then
  vm_port=$(free_port $((hook_port + 1)))
  engine_url="http://127.0.0.1:$vm_port"
  cat >"$work/victoriametrics-scrape.yml" <<YAML
global:
  scrape_interval: 5s
scrape_configs:
  - job_name: model-server
    static_configs:
      - targets: ['127.0.0.1:$sim_port']
YAML
  victoria-metrics -httpListenAddr="127.0.0.1:$vm_port" -storageDataPath="$work/victoriametrics-data" \
    -promscrape.config="$work/victoriametrics-scrape.yml" -loggerLevel=WARN >"$work/victoriametrics.log" 2>&1 &
  pids+=($!)
  wait_http "$engine_url/health" 60
  config="$work/demo-victoriametrics.yml"
  sed 's/^prometheus:$/prometheus:\n  flavor: victoriametrics/' examples/demo.yml >"$config"
fi
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus-data" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$prom_port/-/ready" 60
wait_http "http://127.0.0.1:$am_port/-/ready" 30

MODEL_MONITOR_PROMETHEUS_URL="$engine_url" "$bin" run \
  --config.file="$config" --web.listen-address="127.0.0.1:$mon_port" \
  --storage.path="$work/model-monitor-data" "${mon_flags[@]}" >"$work/model-monitor.log" 2>&1 &
pids+=($!)
wait_http "$mon_url/-/healthy" 30 "${mon_curl[@]}"

cat <<TEXT

model-monitor demo is running (work directory: $work)
  simulated model server  http://127.0.0.1:$sim_port/metrics   (model-1 drifts after $drift_after)
  Prometheus              http://127.0.0.1:$prom_port/graph
  model-monitor queries   $engine_url   ($engine)
  model-monitor           $mon_url/metrics
  status API              $mon_url/api/v1/status
  alert rules (alerts/)   http://127.0.0.1:$prom_port/alerts   (for: shortened to $alert_for)
  Alertmanager            http://127.0.0.1:$am_port/#/alerts
                          amtool alert query --alertmanager.url=http://127.0.0.1:$am_port
  delivered alerts        printed below as they arrive, and in $work/alerts.log
  try in Prometheus:      model_monitor_drift_score{signal="confidence"}
Drift scores show from the start, decisions (the drift column) once the
series are older than the 1-minute window plus the 3-minute reference.
ModelDriftDetected for model-1 arrives through Alertmanager a minute or two
after the drift. Ctrl-C stops everything.

TEXT

# One row per model from the sidecar's /metrics.
table() {
  curl -fsS "${mon_curl[@]}" "$mon_url/metrics" 2>/dev/null | awk '
    function label(s, name,   r) { r = s; if (!sub(".*" name "=\"", "", r)) return ""; sub("\".*", "", r); return r }
    /^model_monitor_(drift_score|drift_detected|signal_mean|signal_quantile|signal_samples)\{/ {
      split($0, parts, " "); series = parts[1]; value = parts[2]
      m = label(series, "model"); s = label(series, "signal"); d = label(series, "detector")
      models[m] = 1
      if (series ~ /^model_monitor_drift_score/) score[m, s, d] = value
      if (series ~ /^model_monitor_drift_detected/ && value == 1) { hit[m] = hit[m] " " s "/" d }
      if (series ~ /^model_monitor_signal_mean/ && s == "confidence") mean[m] = value
      if (series ~ /^model_monitor_signal_quantile/ && s == "latency" && label(series, "q") == "0.99") p99[m] = value
      if (series ~ /^model_monitor_signal_samples/ && s == "confidence") n[m] = value
    }
    END {
      printf "%-8s %6s %9s %9s %7s %7s %9s  %s\n", "model", "n", "conf.mean", "p99 (ms)", "psi", "ks D", "p95 ratio", "drift"
      for (m in models)
        printf "%-8s %6d %9.3f %9.1f %7.3f %7.3f %9.2f  %s\n", m, n[m], mean[m], p99[m] * 1000, score[m, "confidence", "psi"], score[m, "confidence", "ks"], score[m, "latency", "quantile_ratio"], (hit[m] == "" ? "-" : "DRIFT:" hit[m])
    }' | { read -r header; echo "$header"; sort; }
}

start=$SECONDS
shown=0
while :; do
  echo "--- $(date +%H:%M:%S), $((SECONDS - start))s since start"
  table || echo "(waiting for the first evaluation)"
  delivered=$(wc -l <"$work/alerts.log")
  if [ "$delivered" -gt "$shown" ]; then
    echo "alerts delivered by Alertmanager:"
    tail -n +"$((shown + 1))" "$work/alerts.log" | sed 's/^/  /'
    shown=$delivered
  fi
  if [ -n "${DEMO_DURATION:-}" ] && [ $((SECONDS - start)) -ge "$DEMO_DURATION" ]; then
    break
  fi
  sleep 10
done
