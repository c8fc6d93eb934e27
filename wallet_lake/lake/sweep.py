"""Sweep what dead curation runs left in the lake:

    python -m wallet_lake.lake.sweep --hours 2026-11-24T13 [2026-11-24T14 ...]
    python -m wallet_lake.lake.sweep --from 2026-11-24T00 --to 2026-11-24T23
    python -m wallet_lake.lake.sweep --all            [--abandoned-after-hours 6] [--dry-run]

Per landing hour: deletes the files its manifest lists as `superseded` (a run died between its
manifest swap and its delete) and those of `pending` entries older than the abandon age (a run
died before its swap), then empties those lists. A file the manifest lists as current is never
deleted. Every curation run sweeps its own hours first; this is for operators (after a crash,
without rerunning anything) and for hours nobody reruns. The lake comes from WL_LAKE_URI or
WL_LAKE_BUCKET. Prints one JSON line per hour that had something to sweep and a summary; exits 1
when a manifest changed while it was swept (a run of that hour is in progress: sweep again later)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

from wallet_lake.lake.manifests import ABANDONED_AFTER, manifest_hours, sweep_hour, sweep_hours
from wallet_lake.lake.store import open_lake_from_env

_HOUR_FORMAT = "%Y-%m-%dT%H"


def _hour(text: str) -> datetime:
    try:
        return datetime.strptime(text, _HOUR_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a UTC landing hour like 2026-11-24T13") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--hours", nargs="+", type=_hour, metavar="YYYY-MM-DDTHH", help="landing hours (UTC)")
    which.add_argument("--from", dest="first", type=_hour, metavar="YYYY-MM-DDTHH", help="first landing hour of a range (with --to)")
    which.add_argument("--all", action="store_true", help="every landing hour that has a manifest")
    parser.add_argument("--to", dest="last", type=_hour, metavar="YYYY-MM-DDTHH", help="last landing hour of the range, included")
    default_age = ABANDONED_AFTER
    parser.add_argument("--abandoned-after-hours", type=float, default=default_age.total_seconds() / 3600,
                        help=f"a pending run older than this is dead (default {default_age.total_seconds() / 3600:g})")
    parser.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    args = parser.parse_args(argv)
    if args.first is not None and args.last is None or args.last is not None and args.first is None:
        parser.error("--from and --to go together")
    if args.abandoned_after_hours < 0:
        parser.error("--abandoned-after-hours must be >= 0")

    store = open_lake_from_env()
    if args.all:
        hours = manifest_hours(store)
    elif args.hours:
        hours = sorted(set(args.hours))
    else:
        if args.last < args.first:
            parser.error("--to is before --from")
        hours = [args.first + timedelta(hours=i) for i in range(int((args.last - args.first) / timedelta(hours=1)) + 1)]
    abandoned_after = timedelta(hours=args.abandoned_after_hours)
    if args.dry_run:
        results = [sweep_hour(store, h, abandoned_after=abandoned_after, dry_run=True) for h in hours]
    else:
        results = sweep_hours(store, hours, abandoned_after=abandoned_after)
    for r in results:
        if r.deleted or r.conflict:
            print(json.dumps(asdict(r)))
    conflicts = [r.landing_hour for r in results if r.conflict]
    print(json.dumps({"hours": len(results), "files_" + ("to_delete" if args.dry_run else "deleted"): sum(len(r.deleted) for r in results),
                      "conflicts": conflicts}))
    return 1 if conflicts else 0


if __name__ == "__main__":
    sys.exit(main())
