#!/usr/bin/env bash
# Create .venv with the locked Python set (constraints.txt) and the project in editable mode.
# Python 3.11 is required (AWS Glue 5 runs 3.11); pip's cache makes a warm install quick.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${WL_PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "install-python: Python 3.11 is required (set WL_PYTHON to its path)" >&2; exit 1; }
[[ -x "$ROOT/.venv/bin/python" ]] || "$PY" -m venv "$ROOT/.venv"
"$ROOT/.venv/bin/python" -m pip install -q --upgrade "pip==26.3"
"$ROOT/.venv/bin/python" -m pip install -q -c "$ROOT/constraints.txt" -e "$ROOT[dev]"
"$ROOT/.venv/bin/python" -m pip check
