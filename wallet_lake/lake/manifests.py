"""The per-hour manifests of the curated lake: versioned reads, conditional writes, and the sweep
of files no manifest lists as current any more.

A manifest (_manifests/curated/payments/<YYYYMMDDTHH>.json) lists the current files of a landing
hour (curated_keys, quarantine_keys) and two lists of files that are not current but may exist:
- `pending`: keys a run announced before uploading them. A run that dies before its swap leaves
  them; they are removed once the entry is older than `abandoned_after`.
- `superseded`: keys the swap made obsolete, written by the swap itself and emptied once they are
  deleted. A run that dies between its swap and its delete leaves this list, not orphans: the
  next run of the hour, or `python -m wallet_lake.lake.sweep`, deletes them.

Every write is conditional on the version read (S3 If-Match on the ETag, If-None-Match: * for a
new manifest), so two writers never silently overwrite each other: the later one gets
ManifestConflict and its write does not happen. A key a manifest lists as current is never
deleted: run-scoped file names never come back, and the sweep checks the latest manifest again.

The rest of a published manifest is the hour's HourStats: the figures of its curation, which the
blocking checks judged (transforms/checks.py) before the swap. Pure JSON and the store's bytes:
no pyarrow, no pyspark."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Sequence

from wallet_lake.contracts.landing import MANIFEST_PREFIX, hour_token, manifest_key
from wallet_lake.contracts.schema import CURATED_VERSION
from wallet_lake.lake.store import ConditionalWriteFailed, LakeStore

# 3: `superseded` (keys the swap made obsolete, until deleted); 4: `file_bytes` (size of every
# current file, so a reader bounds a scan without listing the files).
MANIFEST_FORMAT = 4
ABANDONED_AFTER = timedelta(hours=6)  # a pending run older than this is dead, and swept
# For a caller holding its hours' leases (ops/hour_leases.py): no other run may work on them, so
# every other run's pending entry is dead now, whatever its age (a run killed mid-upload). A writer
# still finishing for a run already marked dead (a worker request, a Glue job) then fails its swap
# on the changed manifest and removes its own files.
ABANDONED_UNDER_LEASE = timedelta(0)


# A Dagster run's curations are named after it (the first 8 hex digits of its run id), so that a
# manifest's pending entry tells which Dagster run announced it (defs/curated/dead_run_sweep.py).
_DAGSTER_RUN_DIGITS = 8


def curation_run_id(processed_at: datetime, suffix: str) -> str:
    """Short, sortable, unique: 20261125T031542-3fa9c1 (the suffix says whose run it is)."""
    return f"{processed_at.astimezone(timezone.utc):%Y%m%dT%H%M%S}-{suffix}"


def dagster_run_curation_id(processed_at: datetime, dagster_run_id: str) -> str:
    """The curation run id of a Dagster run's curated step: 20261125T031542-3fa9c1d2."""
    return curation_run_id(processed_at, dagster_run_id[:_DAGSTER_RUN_DIGITS])


def curated_by_dagster_run(curation_run_id: str, dagster_run_id: str) -> bool:
    """Whether a curation run id is one that Dagster run gave its curated step. Pure. Another run
    sharing the 8 digits (1 in 4 billion) would only see its swap fail on the changed manifest."""
    return curation_run_id.rpartition("-")[2] == dagster_run_id[:_DAGSTER_RUN_DIGITS]


@dataclass
class HourStats:
    """A landing hour's curation: its figures, and (once published) its manifest's body."""

    landing_hour: str
    run_id: str = ""
    processed_at: str = ""
    curated_version: int = CURATED_VERSION
    published: bool = False
    raw_objects: int = 0
    raw_bytes: int = 0
    raw_lines: int = 0
    curated_rows: int = 0
    quarantined_rows: int = 0
    duplicates_removed: int = 0
    curated_files: int = 0
    curated_bytes: int = 0
    quarantine_files: int = 0
    quarantine_bytes: int = 0
    dt_partitions: list[str] = field(default_factory=list)
    partitions: list[list[str]] = field(default_factory=list)  # [dt, merchant_id] written
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    checks: dict = field(default_factory=dict)  # figures for the asset checks (lake/figures.py)
    failed_checks: dict[str, str] = field(default_factory=dict)
    preview: list[dict] = field(default_factory=list)
    curated_keys: list[str] = field(default_factory=list)
    quarantine_keys: list[str] = field(default_factory=list)
    file_bytes: dict[str, int] = field(default_factory=dict)  # key -> size, for every curated and quarantine key
    seconds: dict[str, float] = field(default_factory=dict)  # batch timings, same for every hour

    @property
    def accounted(self) -> bool:
        return self.raw_lines == self.curated_rows + self.quarantined_rows + self.duplicates_removed

    @property
    def token(self) -> str:
        return hour_token(datetime.fromisoformat(self.landing_hour))

    def summary(self) -> str:
        return hour_summary(self.__dict__)


def hour_summary(h: dict) -> str:
    """One log line of an hour's figures (an HourStats' or the dict a Glue run reported)."""
    state = "published" if h.get("published") else "NOT published: " + ", ".join(h.get("failed_checks") or {})
    return (
        f"{h['landing_hour']}: raw {h['raw_lines']} = curated {h['curated_rows']} + quarantined "
        f"{h['quarantined_rows']} + duplicates {h['duplicates_removed']} ({h['curated_files']} files, {state})"
    )


def read_manifest(store: LakeStore, hour: datetime) -> dict:
    """The hour's manifest, or {} when the hour was never curated."""
    return read_versioned(store, hour)[0]


def manifest_hours(store: LakeStore) -> list[datetime]:
    """Every landing hour that has a manifest."""
    tokens = [o.key[len(MANIFEST_PREFIX):-len(".json")] for o in store.list(MANIFEST_PREFIX) if o.key.endswith(".json")]
    return sorted(datetime.strptime(t, "%Y%m%dT%H").replace(tzinfo=timezone.utc) for t in tokens)


class ManifestConflict(RuntimeError):
    """Another writer changed an hour's manifest since this one read it; nothing was written."""

    def __init__(self, hour: datetime, cause: ConditionalWriteFailed, doing: str) -> None:
        self.hour = hour
        super().__init__(
            f"landing hour {hour_token(hour)}: the manifest changed while this run was {doing} ({cause}). "
            "Another run curated this hour at the same time; this run's write was refused and the hour keeps the "
            "other run's state, whole. Rerun the hour once no other run of it is in progress."
        )


def read_versioned(store: LakeStore, hour: datetime) -> tuple[dict, str | None]:
    """The hour's manifest ({} when the hour was never curated) and its version (ETag; None: absent)."""
    found = store.get_with_etag(manifest_key(hour))
    return (json.loads(found[0]), found[1]) if found is not None else ({}, None)


def write(store: LakeStore, hour: datetime, body: dict, etag: str | None, *, doing: str = "writing it") -> str:
    """Replace the manifest read at version `etag` (None: create it); the new version.
    Raises ManifestConflict when it changed meanwhile."""
    try:
        return store.put_bytes_if(manifest_key(hour), json.dumps(body, indent=1).encode(), etag)
    except ConditionalWriteFailed as e:
        raise ManifestConflict(hour, e, doing) from e


def current_keys(manifest: dict) -> set[str]:
    return set(manifest.get("curated_keys", [])) | set(manifest.get("quarantine_keys", []))


def split_pending(pending: Iterable[dict], now: datetime, abandoned_after: timedelta, *, except_run: str | None = None,
                  only_runs: Callable[[str], bool] | None = None) -> tuple[list[dict], list[dict]]:
    """(entries kept: runs that may still be uploading, entries abandoned) of a manifest's
    `pending`; `except_run`'s own entry is in neither (it is being replaced). With `only_runs`,
    only entries of the run ids it accepts may be abandoned; the others are kept. Pure."""
    kept, abandoned = [], []
    for p in pending:
        if p.get("run_id") == except_run:
            continue
        dead = only_runs is None or only_runs(p.get("run_id", ""))
        (abandoned if dead and now - datetime.fromisoformat(p["started_at"]) > abandoned_after else kept).append(p)
    return kept, abandoned


def leftovers(manifest: dict, abandoned: Iterable[dict], keep: Iterable[str] = ()) -> list[str]:
    """Keys to delete: the manifest's superseded keys and those of abandoned pending entries,
    never a key the manifest lists as current, nor any key of `keep`. Pure."""
    out = set(manifest.get("superseded", []))
    for p in abandoned:
        out.update(p.get("keys", []))
    return sorted(out - current_keys(manifest) - set(keep))


@dataclass
class SweepResult:
    landing_hour: str
    deleted: list[str] = field(default_factory=list)
    pending_runs_kept: list[str] = field(default_factory=list)
    manifest_updated: bool = False
    conflict: str = ""  # the manifest changed before it could be updated (the deletes happened)


def sweep_hour(store: LakeStore, hour: datetime, *, abandoned_after: timedelta, now: datetime | None = None,
               dry_run: bool = False, only_runs: Callable[[str], bool] | None = None) -> SweepResult:
    """Delete what a dead run left of one hour: superseded keys (it died between the swap and the
    delete) and keys of pending entries older than `abandoned_after` (it died before its swap),
    only those of the run ids `only_runs` accepts when given; then take them off the manifest
    (conditionally). Never deletes a current file."""
    now = now or datetime.now(timezone.utc)
    result = SweepResult(hour.astimezone(timezone.utc).isoformat())
    manifest, etag = read_versioned(store, hour)
    kept, abandoned = split_pending(manifest.get("pending", []), now, abandoned_after, only_runs=only_runs)
    result.pending_runs_kept = [p.get("run_id", "") for p in kept]
    doomed = leftovers(manifest, abandoned)
    if dry_run or not (doomed or abandoned or manifest.get("superseded")):
        result.deleted = doomed
        return result
    # The manifest may have changed since it was read: spare whatever the latest one lists.
    latest, _ = read_versioned(store, hour)
    dead_runs = {p.get("run_id") for p in abandoned}
    live = {k for p in latest.get("pending", []) if p.get("run_id") not in dead_runs for k in p.get("keys", [])}
    doomed = [k for k in doomed if k not in current_keys(latest) and k not in live]
    if doomed:
        store.delete(doomed)
    result.deleted = doomed
    try:
        write(store, hour, {**manifest, "pending": kept, "superseded": []}, etag, doing="sweeping it")
        result.manifest_updated = True
    except ManifestConflict as e:
        # The other writer carried the lists forward; a later sweep finds the keys already gone.
        result.conflict = str(e)
    return result


def sweep_hours(store: LakeStore, hours: Sequence[datetime], *, abandoned_after: timedelta = ABANDONED_AFTER,
                io_threads: int = 16, log=None, only_runs: Callable[[str], bool] | None = None) -> list[SweepResult]:
    """sweep_hour for each of `hours`, a few at a time; logs what it deleted and any conflict."""
    with ThreadPoolExecutor(max_workers=max(1, min(io_threads, len(hours)))) as pool:
        results = list(pool.map(lambda h: sweep_hour(store, h, abandoned_after=abandoned_after, only_runs=only_runs), hours))
    for r in results:
        if log and r.deleted:
            log.info(f"{r.landing_hour}: swept {len(r.deleted)} files a dead run left")
        if log and r.conflict:
            log.warning(r.conflict)
    return results
