#!/usr/bin/env bash
# Validates deploy/kubernetes/ offline (see scripts/validate-kubernetes.py).
# Creates a virtual environment under target/ with the pinned
# kubernetes-validate package from PyPI on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/k8s-validate-venv
version=1.37.0
if ! "$venv/bin/python" -c "import kubernetes_validate, sys; sys.exit(kubernetes_validate.__version__ != '$version')" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$version"
fi
exec "$venv/bin/python" scripts/validate-kubernetes.py "${1:-deploy/kubernetes}"
