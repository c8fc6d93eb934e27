"""Schemathesis against the live reports API, the long run by hand (the suite runs a bounded one:
wallet_lake_tests/api/test_fuzz_schema.py, with the same runner, wallet_lake_tests/api/fuzz.py).

    eval "$(stack/wallet-stack env)"; .venv/bin/python bench/api_fuzz.py [--examples 500] [--seed N]

Starts `uvicorn api.main:app` on a free port against the stack's Postgres with both rate limits
off (WL_API_RATE_LIMIT_CLIENT_PER_S=0, WL_API_RATE_LIMIT_KEY_PER_S=0: one client sending
thousands of requests would otherwise get 429s instead of the answers under test), upserts
curated rows of two fresh merchants and refreshes their aggregates, creates an all-merchant and
a merchant-scoped key, then runs up to --examples cases per operation for each scope (those
keys, no key, a made-up key) from a random seed (printed, so a run can be repeated). Prints
every failure with its curl reproduction, writes bench/results/api_fuzz.json, and removes its
rows and keys. Exit status 1 when anything failed."""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stack_env import load_stack_env  # noqa: E402 - bench/ is on sys.path when run as a script


def main() -> int:
    parser = argparse.ArgumentParser(description="Schemathesis against the live reports API.")
    parser.add_argument("--examples", type=int, default=500, help="cases per operation and scope at most")
    parser.add_argument("--seed", type=int, help="Hypothesis seed (default: a random one, printed)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "api_fuzz.json")
    args = parser.parse_args()
    load_stack_env()

    from api.auth import generate_key
    from api.keys import connect, create_key
    from api.settings import load_settings
    from wallet_lake.serving.aggregates import refresh_report_aggregates
    from wallet_lake_tests.api.conftest import UPSERT_CURATED
    from wallet_lake_tests.api.fuzz import NO_RATE_LIMITS_ENV, api_server, fuzz_api, seed_rows, summary

    seed = args.seed if args.seed is not None else random.randrange(2**32)
    merchants = (f"m_fuzz_{generate_key()[0]}", f"m_fuzz_{generate_key()[0]}")
    rows = seed_rows(merchants)
    with connect(load_settings()) as conn:
        key_ids = []
        try:
            with conn.cursor() as cur:
                cur.executemany(UPSERT_CURATED, rows)
            refresh_report_aggregates(conn, {r["dt"] for r in rows})
            all_id, all_key = create_key(conn, merchant_ids=None, label="bench/api_fuzz.py")
            scoped_id, scoped_key = create_key(conn, merchant_ids=[merchants[0]], label="bench/api_fuzz.py")
            key_ids = [all_id, scoped_id]
            scopes = {
                "all-merchants": {"X-API-Key": all_key},
                "merchant-scoped": {"Authorization": f"Bearer {scoped_key}"},
                "no-key": {},
                "bogus-key": {"X-API-Key": generate_key()[1]},
            }
            log_path = Path(tempfile.mkdtemp(prefix="api-fuzz-")) / "uvicorn.log"
            print(f"seed {seed}, {args.examples} cases per operation and scope at most; server log {log_path}", flush=True)
            started = time.monotonic()
            with api_server(log_path, NO_RATE_LIMITS_ENV) as base:
                runs = fuzz_api(base, scopes, merchants, max_examples=args.examples, seed=seed)
            duration_s = round(time.monotonic() - started, 1)
        finally:
            if key_ids:
                conn.execute("DELETE FROM public.api_keys WHERE key_id = ANY(%s)", [key_ids])
            conn.execute("DELETE FROM public.curated_payments WHERE merchant_id = ANY(%s)", [list(merchants)])
            refresh_report_aggregates(conn, [])  # the delete trigger marked their dts

    for r in runs:
        print(f"{r.scope:<16} {r.operation:<28} {r.cases:>5} cases  {r.statuses}  {'FAILED' if r.failure else 'ok'}")
        if r.failure:
            print(r.failure)
    figures = {"seed": seed, "examples_per_operation": args.examples, "duration_s": duration_s, **summary(runs),
               "failed": [f"{r.operation} [{r.scope}]" for r in runs if r.failure]}
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))
    return 1 if figures["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
