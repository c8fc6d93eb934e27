"""Replay quarantined lines of a landing hour, after a fix.

Quarantine files keep every bad line as it landed, with its source object, line number and
reasons (quarantine/payments/landing_hour=YYYYMMDDTHH/, table curated_payments_quarantine). Two
kinds of fix:

- A rule was wrong (the lines were good): fix transforms/curate.py, bump CURATED_VERSION, and
  re-materialize curated_payments for the hours concerned. The raw objects are kept, so the rerun
  re-reads the very lines; nothing needs replaying.
- The data was wrong (the lines are bad, but recoverable: two records run together, a known
  producer bug): replay them through a repair. This reads the hour's quarantined lines (those
  its manifest lists), optionally only some reasons, applies the repair to each (a line may become
  zero, one or several lines), and writes the result as a new landing object of the same hour:
  raw/payments/dt=YYYY/MM/DD/HH/replay-<digest>.ndjson (SSE-KMS like every lake write). The
  landing sensor sees the new object and re-materializes the hour (or materialize it by hand);
  the repaired lines are then curated or quarantined again like any other line, and the
  original bad lines stay in the quarantine (they were bad), so the accounting still holds.
  The object is named after its content: replaying the same lines twice writes nothing new.

    python -m wallet_lake.lake.replay --hour 2026-11-24T13 [--reason not_a_json_object ...]
        [--repair wallet_lake.lake.replay:split_concatenated_objects] [--dry-run]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable, Sequence

from wallet_lake.contracts.landing import landing_prefix
from wallet_lake.lake.manifests import read_manifest
from wallet_lake.lake.reader import read_quarantine_hour_table
from wallet_lake.lake.store import LakeStore

REPLAY_PREFIX = "replay-"
Repair = Callable[[str], "str | Iterable[str] | None"]


@dataclass
class ReplayResult:
    landing_hour: str
    key: str | None  # the landing object written (None: nothing to write, or dry run)
    lines_selected: int
    lines_written: int
    reasons: dict[str, int] = field(default_factory=dict)
    written: bool = False


def identity(line: str) -> str:
    return line


def split_concatenated_objects(line: str) -> list[str]:
    """Records run together on one line ('{...}{...}', '{...} {...}') -> one line each; a line
    that is not such a sequence of JSON objects is returned unchanged."""
    decoder = json.JSONDecoder()
    out, i, text = [], 0, line.strip()
    while i < len(text):
        try:
            value, end = decoder.raw_decode(text, i)
        except ValueError:
            return [line]
        if not isinstance(value, dict):
            return [line]
        out.append(text[i:end])
        i = end
        while i < len(text) and text[i] in " \t":
            i += 1
    return out or [line]


def load_repair(spec: str) -> Repair:
    """`module:function` -> the function."""
    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"--repair must look like package.module:function, got {spec!r}")
    return getattr(importlib.import_module(module), name)


def quarantined_lines(store: LakeStore, hour: datetime, reasons: Sequence[str] | None = None) -> list[dict]:
    """The hour's quarantined lines (from its manifest), in landing order, optionally only
    those with one of `reasons`."""
    if not read_manifest(store, hour):
        raise FileNotFoundError(f"landing hour {hour:%Y-%m-%dT%H} has no curated manifest: nothing was quarantined yet")
    table = read_quarantine_hour_table(store, hour)
    rows = table.to_pylist() if table is not None else []
    if reasons:
        wanted = set(reasons)
        rows = [r for r in rows if wanted & set(r["reasons"])]
    return sorted(rows, key=lambda r: (r["source_object"], r["line_number"]))


def replay_quarantine(
    store: LakeStore, hour: datetime, *, reasons: Sequence[str] | None = None, repair: Repair = identity, dry_run: bool = False
) -> ReplayResult:
    hour = hour.astimezone(timezone.utc)
    rows = quarantined_lines(store, hour, reasons)
    counted: dict[str, int] = {}
    lines: list[str] = []
    for r in rows:
        for reason in r["reasons"]:
            counted[reason] = counted.get(reason, 0) + 1
        if r["raw_line"] is None:
            continue
        fixed = repair(r["raw_line"])
        for line in [fixed] if isinstance(fixed, str) else list(fixed or []):
            if "\n" in line or "\r" in line:
                raise ValueError(f"repair of {r['source_object']}:{r['line_number']} returned a line with a line break")
            lines.append(line)
    result = ReplayResult(hour.isoformat(), None, len(rows), len(lines), dict(sorted(counted.items())))
    if not lines:
        return result
    body = "".join(line + "\n" for line in lines).encode("utf-8")
    result.key = f"{landing_prefix(hour)}{REPLAY_PREFIX}{hashlib.sha256(body).hexdigest()[:16]}.ndjson"
    if not dry_run and store.get_optional(result.key) is None:
        store.put_bytes(result.key, body)
        result.written = True
    return result


def main(argv: list[str] | None = None) -> int:
    from wallet_lake.lake.store import open_lake_from_env

    p = argparse.ArgumentParser(prog="python -m wallet_lake.lake.replay", description="Replay quarantined lines of a landing hour as a new landing object.")
    p.add_argument("--hour", required=True, help="landing hour (UTC), e.g. 2026-11-24T13")
    p.add_argument("--reason", action="append", help="only lines with this reason (repeatable); default all")
    p.add_argument("--repair", default=None, help="package.module:function applied to each line (str -> str | list[str] | None)")
    p.add_argument("--dry-run", action="store_true", help="count and name the object, write nothing")
    args = p.parse_args(argv)
    hour = datetime.strptime(args.hour, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
    repair = load_repair(args.repair) if args.repair else identity
    result = replay_quarantine(open_lake_from_env(), hour, reasons=args.reason, repair=repair, dry_run=args.dry_run)
    print(json.dumps(result.__dict__, indent=1))
    if result.written:
        print(f"next: materialize curated_payments for partition {hour:%Y-%m-%d-%H}:00 (the landing sensor does it on its next tick)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
