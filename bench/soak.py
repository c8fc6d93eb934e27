"""Soak and chaos: the daemon-driven flow under a live writer, a UI backfill and SIGKILLs, then an
independent check that nothing was lost, doubled or regressed and the reports agree.

Run by hand on a stack of its own (it kills services: never on a stack others are using):

    .venv/bin/python bench/soak.py                      # 12 landing hours, 24 kills; bench/results/soak.json
    .venv/bin/python bench/soak.py --hours 16 --kills 30 --seed 7
    .venv/bin/python bench/soak.py --short              # 2 hours, 3 kills, a few minutes (what CI runs)

It uses the stack as `scripts/run` leaves it (services up, `stack/wallet-stack apps` starts the
Dagster webserver, daemon and the API where they are not running) and the environment
`stack/wallet-stack env` prints (variables already set win: move every port to run it beside
another stack). It lands data into the last --hours closed UTC hours and the open one. At the end
every service is healthy again and apps it had to start are stopped. What it does, phase by phase:
wallet_lake_tests/soak/run.py; the check: wallet_lake_tests/soak/check.py."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wallet_lake_tests.soak.run import Options, Soak, write_results  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def parse(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--hours", type=int, help="closed landing hours to write into (default 12; --short 2)")
    p.add_argument("--kills", type=int, help="SIGKILLs spread over broker, Connect, Postgres, daemon, run workers, API, the curation worker (default 24; --short 3)")
    p.add_argument("--seed", type=int, default=11, help="seed of the data, the plan and the kill order (default 11)")
    p.add_argument("--short", action="store_true", help="the short variant: a few hours and kills, a few minutes")
    p.add_argument("--events-per-hour", type=int, help="generator events per landing hour (default 500; --short 150)")
    p.add_argument("--no-wait-open-hour", action="store_true", help="do not wait for the open hour to close and be processed")
    p.add_argument("--no-operator-reruns", action="store_true",
                   help="restart dead services but never re-execute failed runs (measures what recovers by itself)")
    p.add_argument("--out", type=Path, help="results file (default bench/results/soak.json; --short: soak-short.json)")
    a = p.parse_args(argv)
    overrides = {"hours": a.hours, "kills": a.kills, "events_per_hour": a.events_per_hour}
    if a.short:
        opts = Options.short_variant(seed=a.seed, **overrides)
    else:
        opts = Options(seed=a.seed, **{k: v for k, v in overrides.items() if v is not None})
    if a.no_wait_open_hour:
        opts.wait_open_hour = False
    if a.no_operator_reruns:
        opts.operator_reruns = False
    if opts.hours < 1 or opts.kills < 0:
        p.error("--hours must be >= 1 and --kills >= 0")
    opts.out = a.out or RESULTS / ("soak-short.json" if a.short else "soak.json")
    opts.command = "python bench/soak.py" + ("" if argv is None and len(sys.argv) == 1 else " " + shlex.join(argv if argv is not None else sys.argv[1:]))
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    result = Soak(opts).run()
    write_results(result, opts.out)
    head = {k: result[k] for k in ("landing_hours", "kills_total", "lost_rows", "duplicated_rows", "regressed_rows",
                                   "ledger_mismatches", "sensor_tick_errors", "api_5xx", "max_report_staleness_s",
                                   "field_mismatches", "accounting_mismatches", "report_mismatches")}
    print(f"soak: {head}; goals {'MET' if result['goals']['met'] else 'NOT met'}; results in {opts.out}")
    return 0 if result["goals"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
