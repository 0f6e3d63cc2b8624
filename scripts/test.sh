#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need
# (Prometheus, promtool, Alertmanager, amtool, python3-venv, buildah, musl-tools),
# then formatting, lints, the container image (built and unpacked) and
# every test, including the end-to-end tests against a real Prometheus.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# Every Debian package a test needs, as COMMAND:PACKAGE, installed in one go.
TEST_PACKAGES=(
  "chromium:chromium"
  "${PROMETHEUS_PACKAGES[@]}"
  buildah:buildah
  musl-gcc:musl-tools
  victoria-metrics:victoria-metrics
)
ensure_packages "${TEST_PACKAGES[@]}"
ensure_python_venv
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== container image (scripts/build-image.sh), unpacked for the image test"
export MODEL_MONITOR_IMAGE_DIR
MODEL_MONITOR_IMAGE_DIR=$(realpath -m "${CARGO_TARGET_DIR:-target}/image-export")
scripts/build-image.sh --export "$MODEL_MONITOR_IMAGE_DIR"
echo "== cargo test"
cargo test --all-targets --locked --no-fail-fast
echo "== doc tests"
cargo test --doc --locked
