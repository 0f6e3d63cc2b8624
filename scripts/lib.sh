# Shared shell helpers for scripts/*.sh. Source it; it defines functions only.

# Installs, in one apt-get run, the Debian packages whose commands are
# missing. Each argument is COMMAND:PACKAGE; COMMAND may be "a|b" when either
# name will do. Prints what it installs on stderr.
ensure_packages() {
  local wanted=() pair cmd pkg found alt
  for pair in "$@"; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    found=0
    IFS='|' read -ra alts <<<"$cmd"
    for alt in "${alts[@]}"; do
      command -v "$alt" >/dev/null 2>&1 && found=1
    done
    [ "$found" = 1 ] || wanted+=("$pkg")
  done
  [ "${#wanted[@]}" = 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing packages: ${wanted[*]}; install them with your package manager" >&2
    return 1
  fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing ${wanted[*]} with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${wanted[@]}" ca-certificates >/dev/null
}

# Prometheus, promtool, Alertmanager, amtool and curl.
PROMETHEUS_PACKAGES=(
  prometheus:prometheus
  promtool:prometheus
  amtool:prometheus-alertmanager
  "prometheus-alertmanager|alertmanager:prometheus-alertmanager"
  curl:curl
)

# Installs Prometheus, promtool, Alertmanager and amtool from the OS package
# manager when any of them is missing (Debian and Ubuntu).
ensure_prometheus_tools() {
  ensure_packages "${PROMETHEUS_PACKAGES[@]}"
}

# Prints the first loopback port at or above $1 that nothing listens on.
free_port() {
  local port=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
  done
  echo "$port"
}

# Waits up to $2 seconds for URL $1 to answer 200; further arguments are
# curl options (a CA, a client certificate, credentials).
wait_http() {
  local url=$1 deadline=$((SECONDS + $2))
  shift 2
  until curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "timed out waiting for $url" >&2
      return 1
    fi
    sleep 0.5
  done
}

# Installs python3 with its venv module from the OS package manager when
# missing (the Kubernetes manifest validation runs in a virtual environment).
ensure_python_venv() {
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "python3 with the venv module is needed; install it with your package manager" >&2
    return 1
  fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing python3-venv with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
}
