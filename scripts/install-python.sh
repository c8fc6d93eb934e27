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
# The interpreter: WL_PYTHON; else the distribution's python$PYV when it can make a venv with pip
# (Debian's is built with profile-guided and link-time optimization and links libpython
# statically, where pyenv's default build does neither: the API spent 10-18 % less CPU a request
# on it in process, ~9 % through HTTP; docs/benchmarks.md, session 41); else the first
# python$PYV on PATH.
DISTRO_PY="/usr/bin/python$PYV"
if [[ -n "${WL_PYTHON:-}" ]]; then
  PY="$WL_PYTHON"
elif [[ -x "$DISTRO_PY" ]] && "$DISTRO_PY" -m ensurepip --version >/dev/null 2>&1; then
  PY="$DISTRO_PY"
else
  PY="python$PYV"
  command -v "$PY" >/dev/null || PY=python3
fi
"$PY" -c 'import sys; v = "%d.%d" % sys.version_info[:2]; assert v == sys.argv[1], sys.version' "$PYV" \
  || { echo "install-python: Python $PYV is required (AWS Glue 5 runs $PYV); set WL_PYTHON to its path" >&2; exit 1; }
# The interpreter itself (resolved past pyenv's shims) and its version are part of what is installed.
interpreter="$("$PY" -c 'import os, sys; print(os.path.realpath(sys.executable), sys.version.split()[0])')"
stamp="$ROOT/.venv/.wallet-lake-installed"
want="$( (cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt"; echo "$interpreter") | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$ROOT/.venv/bin/python" ]]; then
  exit 0
fi
echo "[install-python] installing the locked environment into .venv ($interpreter)" >&2
if [[ -x "$ROOT/.venv/bin/python" ]] \
  && [[ "$("$ROOT/.venv/bin/python" -c 'import os, sys; print(os.path.realpath(sys._base_executable), sys.version.split()[0])')" != "$interpreter" ]]; then
  # A venv of another interpreter: made again (stop what runs from it first: stack/wallet-stack down).
  echo "[install-python] .venv was made by another interpreter; making it again" >&2
  rm -rf "$ROOT/.venv"
fi
[[ -x "$ROOT/.venv/bin/python" ]] || "$PY" -m venv "$ROOT/.venv"
"$ROOT/.venv/bin/python" -m pip install -q --upgrade "pip==26.3"
"$ROOT/.venv/bin/python" -m pip install -q -c "$ROOT/constraints.txt" -e "$ROOT[dev]"
"$ROOT/.venv/bin/python" -m pip check
echo "$want" >"$stamp"
