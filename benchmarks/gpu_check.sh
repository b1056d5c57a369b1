#!/usr/bin/env bash
# One short GPU check (< 5 minutes on one GPU): fast and best recipes on CUDA, one table.
# Needs a CUDA build of torch in .venv (scripts/setup installs the CPU build: on a GPU machine,
# `pip install torch` with the CUDA wheel for that machine first).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DIGITREC_DATA:-}" ] && [ -d ../shared/data/mnist ]; then
    export DIGITREC_DATA=$(cd .. && pwd)/shared/data/mnist
fi
PY=${PYTHON:-.venv/bin/python}
exec "$PY" benchmarks/gpu_check.py "$@"
