"""CPU per request of two builds of the reports app in ONE process, without HTTP, in interleaved
rounds (by hand, never in the tests): a comparison of code options that the host's speed, which
moves by up to 2x over minutes on this machine (docs/benchmarks.md), cannot tilt as it tilts two
HTTP runs one after the other.

    eval "$(stack/wallet-stack env)"
    .venv/bin/python bench/api_in_process.py --b api_variants:session27_before --rounds 12

- Each build is a factory `module:function` returning an ASGI app (default for A: the API's own
  `api.main:create_app`); modules are looked up in bench/ as well. Both run their lifespan (each
  its own pool) against wallet_lake_bench, with the settings bench/api_load.py gives the API.
- Requests: bench/api_load.py's mix (random_path), drawn afresh for every round; each app sees
  300 of warm-up. Every answer must be a 200.
- Round r runs A then B when r is even, B then A when odd; each round is --per-round requests,
  awaited one after the other, and its CPU time (process_time, this one thread) is divided by
  them. Printed: every round, the medians, and the median of B-A over the pairs of a round."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import random
import statistics
import sys
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


async def lifespan(app) -> asyncio.Queue:
    """Start the app's lifespan; the returned queue ends it."""
    inbox, outbox = asyncio.Queue(), asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put))
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"startup: {started}")
    return inbox


async def compare(args: argparse.Namespace, key: str) -> None:
    rng = random.Random(args.seed)
    apps = {"A": factory(args.a)(), "B": factory(args.b)()}
    ends = [await lifespan(app) for app in apps.values()]
    for app in apps.values():
        for _ in range(300):
            await call(app, key, bench.random_path(rng, args.all_merchant_share))
    cpu_ms: dict[str, list[float]] = {"A": [], "B": []}
    for r in range(args.rounds):
        for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
            paths = [bench.random_path(rng, args.all_merchant_share) for _ in range(args.per_round)]
            started = time.process_time()
            for path in paths:
                await call(apps[name], key, path)
            cpu_ms[name].append(1000 * (time.process_time() - started) / args.per_round)
    for name, spec in (("A", args.a), ("B", args.b)):
        print(f"{name} {spec}: median {statistics.median(cpu_ms[name]):.3f} ms a request; rounds {[round(v, 3) for v in cpu_ms[name]]}")
    diffs = [b - a for a, b in zip(cpu_ms["A"], cpu_ms["B"])]
    print(f"B-A per round: {[round(d, 3) for d in diffs]}; median {statistics.median(diffs):+.3f} ms, "
          f"B lower in {sum(d < 0 for d in diffs)} of {len(diffs)}")
    for end in ends:
        await end.put({"type": "lifespan.shutdown"})


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
    # As bench/api_load.py starts the API (pool of 4, no rate limits), on the benchmark database.
    metrics_dir = Path(os.environ.get("WL_CACHE_DIR", "/tmp")) / f"api-in-process-metrics-{os.getpid()}"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(WL_PG_DB=bench.BENCH_DB, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), WL_PG_POOL_MIN_SIZE="4",
                      WL_PG_POOL_MAX_SIZE="4", WL_API_KEY_CACHE_TTL_S="30",
                      WL_API_RATE_LIMIT_CLIENT_PER_S="0", WL_API_RATE_LIMIT_KEY_PER_S="0")
    _, key = bench.create_bench_key()
    import uvloop

    uvloop.run(compare(args, key))


if __name__ == "__main__":
    main()
