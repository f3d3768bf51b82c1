#!/usr/bin/env bash
# Set up, then run every test that needs no GPU: the fast unit tests and the slow ones.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -m "not gpu" "$@"
