#!/usr/bin/env bash
# Create or refresh .venv with the locked Python set (constraints.txt) and the project in
# editable mode. Skips the install when pyproject.toml and constraints.txt are unchanged since
# the last successful one; pip's cache (~/.cache/pip) makes a fresh clone's install quick.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${WL_PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "install-python: Python 3.11 is required (AWS Glue 5 runs 3.11); set WL_PYTHON to its path" >&2; exit 1; }
stamp="$ROOT/.venv/.wallet-lake-installed"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$ROOT/.venv/bin/python" ]]; then
  exit 0
fi
echo "[install-python] installing the locked environment into .venv" >&2
[[ -x "$ROOT/.venv/bin/python" ]] || "$PY" -m venv "$ROOT/.venv"
"$ROOT/.venv/bin/python" -m pip install -q --upgrade "pip==26.3"
"$ROOT/.venv/bin/python" -m pip install -q -c "$ROOT/constraints.txt" -e "$ROOT[dev]"
"$ROOT/.venv/bin/python" -m pip check
echo "$want" >"$stamp"
