"""Which files a bounded lake query reads, from the manifests alone. Pure: no I/O, no pyarrow.

The latest-record view needs, for the dts [from, to] a report reads, every record of those dts
and to know which of their payments have a record on a later dt (then the later record is the
payment's latest, and the payment counts on that later dt, outside the range). Three kinds of
manifest answer that without reading the whole future of the lake:

- hour manifests (lake/manifests.py): the current hour files. Their keys of one dt, sorted and
  hashed, are the dt's *digest*: it changes whenever an hour that wrote to the dt is (re)curated.
- day manifests (lake/compaction.py): a compacted dt, one file per merchant with each payment's
  latest record of that dt, made from the hour files whose digest the manifest records. A dt
  whose digest still matches reads the day files; any other dt reads its hour files.
- the movers manifest: one small file of (payment_id, dt) for every payment whose records span
  several dts, built over the dts whose digests it records.

A row (payment, dt) of the range is the payment's latest unless the payment has a record on a
later dt. Which payments do is known from three sources, chosen so that every later record is
seen while normally only the range's files and one small index are read:
  * the movers index, for dts whose digest did not change since it was built (`movers_dts`);
  * the range's own rows from `rows_from` on, when a dt of the range changed since the index
    was built (the index may not know that a payment of that dt also has later records);
  * `presence` files past the range, read for payment ids only: the dts that changed, or every
    dt past the range when a dt of the range changed or there is no index.
Proof sketch: take rows (p, D) and (p, D') with D < D'. If D' changed, it is read (range rows
from rows_from <= the first changed dt of the range, or presence). If D' did not change but D did,
D >= rows_from (in the range) so every dt after it is read directly. If neither changed, both
records existed when the index was built, so p was a mover then and (p, D') is in the index.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from wallet_lake.lake.reader import CuratedFile, curated_files

DAY_MANIFEST_FORMAT = 1
MOVERS_MANIFEST_FORMAT = 1


# One current file of a dt, with its size (reader.py's, shared by every reader of manifests).
LakeFile = CuratedFile


def hour_files_by_dt(hour_manifests: Iterable[Mapping]) -> dict[date, list[LakeFile]]:
    """The current hour files of every dt, sorted by key."""
    out: dict[date, list[LakeFile]] = defaultdict(list)
    for f in curated_files(hour_manifests):  # sorted by key
        out[f.dt].append(f)
    return dict(out)


def digest(files: Iterable[LakeFile]) -> str:
    """The digest of a dt: SHA-256 of its current hour keys, sorted."""
    h = hashlib.sha256()
    for key in sorted(f.key for f in files):
        h.update(key.encode())
        h.update(b"\n")
    return h.hexdigest()


def dt_digests(by_dt: Mapping[date, list[LakeFile]]) -> dict[date, str]:
    return {d: digest(files) for d, files in by_dt.items()}


@dataclass(frozen=True)
class HourFiles:
    """The current hour files of every dt and each dt's digest: what plan_scan needs from the
    hour manifests (built once per version of them; parsing every key is most of a plan)."""

    by_dt: Mapping[date, list[LakeFile]]
    digests: Mapping[date, str]

    @classmethod
    def of(cls, hour_manifests: Iterable[Mapping]) -> HourFiles:
        by_dt = hour_files_by_dt(hour_manifests)
        return cls(by_dt, dt_digests(by_dt))


def day_files(day_manifest: Mapping) -> list[LakeFile]:
    sizes = day_manifest.get("file_bytes") or {}
    day = date.fromisoformat(day_manifest["dt"])
    return [LakeFile(k, day, sizes.get(k)) for k in day_manifest.get("files", [])]


@dataclass
class ScanPlan:
    """What one bounded query reads. `hour_files` need the within-dt dedupe; `day_files` hold
    one record per (payment, dt) already; `presence_*` are read for (payment_id, dt) only;
    `movers_key` (None: no usable index) is read for the rows of `movers_dts`; the range's rows
    of dts >= `rows_from` (None: none) count as later records too."""

    date_from: date
    date_to: date
    day_files: list[LakeFile] = field(default_factory=list)
    hour_files: list[LakeFile] = field(default_factory=list)
    presence_day_files: list[LakeFile] = field(default_factory=list)
    presence_hour_files: list[LakeFile] = field(default_factory=list)
    movers_key: str | None = None
    movers_dts: list[date] = field(default_factory=list)
    rows_from: date | None = None

    @property
    def files(self) -> list[LakeFile]:
        return self.day_files + self.hour_files + self.presence_day_files + self.presence_hour_files

    @property
    def scan_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)


def plan_scan(hours: HourFiles | Iterable[Mapping], day_manifests: Iterable[Mapping], movers_manifest: Mapping | None,
              date_from: date, date_to: date) -> ScanPlan:
    """The files a query of the dts [date_from, date_to] reads (module docstring); `hours`: the
    hour manifests, or HourFiles made of them."""
    if date_to < date_from:
        raise ValueError(f"empty range {date_from}..{date_to}")
    hours = hours if isinstance(hours, HourFiles) else HourFiles.of(hours)
    by_dt, digests = hours.by_dt, hours.digests
    compacted = {}
    for m in day_manifests:
        day = date.fromisoformat(m["dt"])
        if m.get("format") == DAY_MANIFEST_FORMAT and m.get("digest") == digests.get(day):
            compacted[day] = m
    indexed: dict[date, str] = {}
    if movers_manifest and movers_manifest.get("format") == MOVERS_MANIFEST_FORMAT and movers_manifest.get("file"):
        indexed = {date.fromisoformat(d): h for d, h in movers_manifest.get("dt_digests", {}).items()}
    changed = {d for d in by_dt if indexed.get(d) != digests[d]}
    in_range_changed = sorted(d for d in changed if date_from <= d <= date_to)

    plan = ScanPlan(date_from, date_to)
    if not indexed:
        plan.rows_from = date_from
    elif in_range_changed:
        plan.rows_from = in_range_changed[0]
    read_past_directly = not indexed or bool(in_range_changed)
    for d in sorted(by_dt):
        if d < date_from:
            continue
        if d <= date_to:
            if d in compacted:
                plan.day_files += day_files(compacted[d])
            else:
                plan.hour_files += by_dt[d]
            if d not in changed and (plan.rows_from is None or d < plan.rows_from):
                plan.movers_dts.append(d)
        elif read_past_directly or d in changed:
            if d in compacted:
                plan.presence_day_files += day_files(compacted[d])
            else:
                plan.presence_hour_files += by_dt[d]
        else:
            plan.movers_dts.append(d)
    if plan.movers_dts:
        plan.movers_key = movers_manifest["file"]
    return plan
