"""CPU per request of two builds of the reports app in ONE process, without HTTP, in interleaved
rounds (by hand, never in the tests): a comparison of code options that the host's speed, which
moves by up to 2x over minutes on this machine (docs/benchmarks.md), cannot tilt as it tilts two
HTTP runs one after the other.

    eval "$(stack/wallet-stack env)"
    .venv/bin/python bench/api_in_process.py --b api_variants:telemetry_hooks_on > /tmp/api-in-process.log

- Each build is a factory `module:function` returning an ASGI app (default for A: the API's own
  `api.main:create_app`); modules are looked up in bench/ as well. Both run their lifespan (each
  its own pool of 4) against wallet_lake_bench, with the settings bench/api_load.py gives the
  API (api_settings). Their access lines go to stdout, as the API's do (send it to a file: the
  figures go to stderr).
- Requests: bench/api_load.py's mix (random_path); each app sees 300 of warm-up, then every
  round draws --per-round requests that A and B both answer (a pair). Every answer must be a 200.
- Round r runs A then B when r is even, B then A when odd, the requests awaited one after the
  other; the process's CPU time (process_time) over the round is divided by them. Printed: every
  round, the medians, and the median of B-A over the pairs."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import api_load as bench  # noqa: E402 - bench/ is on sys.path
from stack_env import load_stack_env  # noqa: E402


def factory(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


async def call(app, key: str, path: str) -> None:
    route, _, query = path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": route, "raw_path": route.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"x-api-key", key.encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    if sent[0].get("status") != 200:
        raise RuntimeError(f"{path}: {sent[0]}")


class Lifespan:
    """The app's lifespan, as a server runs it: started, then ended and waited for."""

    def __init__(self, app) -> None:
        self.app = app
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def _step(self, message: str) -> None:
        await self.inbox.put({"type": f"lifespan.{message}"})
        done = await self.outbox.get()
        if done["type"] != f"lifespan.{message}.complete":
            raise RuntimeError(f"{message}: {done}")

    async def start(self) -> None:
        self.task = asyncio.create_task(self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                                 self.inbox.get, self.outbox.put))
        await self._step("startup")

    async def end(self) -> None:
        await self._step("shutdown")
        await self.task


async def compare(args: argparse.Namespace, key: str) -> None:
    rng = random.Random(args.seed)
    apps = {"A": factory(args.a)(), "B": factory(args.b)()}
    lifespans = [Lifespan(app) for app in apps.values()]
    for lifespan in lifespans:
        await lifespan.start()
    for app in apps.values():
        for _ in range(300):
            await call(app, key, bench.random_path(rng, args.all_merchant_share))
    cpu_ms: dict[str, list[float]] = {"A": [], "B": []}
    for r in range(args.rounds):
        paths = [bench.random_path(rng, args.all_merchant_share) for _ in range(args.per_round)]
        for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
            started = time.process_time()
            for path in paths:
                await call(apps[name], key, path)
            cpu_ms[name].append(1000 * (time.process_time() - started) / args.per_round)
    for name, spec in (("A", args.a), ("B", args.b)):
        print(f"{name} {spec}: median {statistics.median(cpu_ms[name]):.3f} ms a request; "
              f"rounds {[round(v, 3) for v in cpu_ms[name]]}", file=sys.stderr)
    diffs = [b - a for a, b in zip(cpu_ms["A"], cpu_ms["B"])]
    print(f"B-A per round: {[round(d, 3) for d in diffs]}; median {statistics.median(diffs):+.3f} ms, "
          f"B lower in {sum(d < 0 for d in diffs)} of {len(diffs)}", file=sys.stderr)
    for lifespan in lifespans:
        await lifespan.end()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", default="api.main:create_app", help="module:function returning the first app")
    parser.add_argument("--b", required=True, help="module:function returning the other app")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--per-round", type=int, default=600)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--all-merchant-share", type=float, default=0.1)
    args = parser.parse_args()
    load_stack_env()
    metrics_dir = tempfile.mkdtemp(prefix="wallet-lake-in-process-metrics-")
    os.environ.update(bench.api_settings(metrics_dir, pool=4))
    _, key = bench.create_bench_key()
    import uvloop

    try:
        uvloop.run(compare(args, key))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
