#!/usr/bin/env bash
# Create or refresh .venv with the locked Python set (constraints.txt) and the project in
# editable mode. Skips the install when pyproject.toml and constraints.txt are unchanged since
# the last successful one; pip's cache (~/.cache/pip) makes a fresh clone's install quick.
# Versions: Python 3.11, pip 26.3
#   (Python from pyproject.toml's requires-python, pip below;
#   wallet_lake_tests/unit/test_stack_scripts.py keeps them equal)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The one Python minor version AWS Glue 5 runs: pyproject.toml's requires-python (">=3.X,<...").
PYV="$(sed -n 's/^requires-python = ">=\([0-9]*\.[0-9]*\),.*/\1/p' "$ROOT/pyproject.toml")"
[[ -n "$PYV" ]] || { echo "install-python: no requires-python \">=X.Y,...\" in pyproject.toml" >&2; exit 1; }
PY="${WL_PYTHON:-python$PYV}"
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; v = "%d.%d" % sys.version_info[:2]; assert v == sys.argv[1], sys.version' "$PYV" \
  || { echo "install-python: Python $PYV is required (AWS Glue 5 runs $PYV); set WL_PYTHON to its path" >&2; exit 1; }
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
