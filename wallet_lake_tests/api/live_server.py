"""A real reports API server for tests that need one over HTTP (the schema fuzzer, the browser
tests): `uvicorn api.main:app` in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

from wallet_lake_tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def api_server(log_path: Path, env: Mapping[str, str] | None = None, ready_timeout_s: float = 60) -> Iterator[str]:
    """`uvicorn api.main:app` on a free loopback port, configured from the WL_* environment
    (plus `env`), until it answers /readyz; yields its base URL, stops it on exit."""
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API server exited with {proc.returncode}; log {log_path}:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server at {base} was not ready within {ready_timeout_s:.0f} s; log {log_path}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
