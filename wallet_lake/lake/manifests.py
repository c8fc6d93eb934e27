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
deleted: run-scoped file names never come back, and the sweep checks the latest manifest again."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable

from wallet_lake.contracts.landing import hour_token, manifest_key
from wallet_lake.lake.store import ConditionalWriteFailed, LakeStore


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


def split_pending(pending: Iterable[dict], now: datetime, abandoned_after: timedelta, *, except_run: str | None = None) -> tuple[list[dict], list[dict]]:
    """(entries kept: runs that may still be uploading, entries abandoned) of a manifest's
    `pending`; `except_run`'s own entry is in neither (it is being replaced). Pure."""
    kept, abandoned = [], []
    for p in pending:
        if p.get("run_id") == except_run:
            continue
        (abandoned if now - datetime.fromisoformat(p["started_at"]) > abandoned_after else kept).append(p)
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
               dry_run: bool = False) -> SweepResult:
    """Delete what a dead run left of one hour: superseded keys (it died between the swap and the
    delete) and keys of pending entries older than `abandoned_after` (it died before its swap);
    then empty those lists in the manifest (conditionally). Never deletes a current file."""
    now = now or datetime.now(timezone.utc)
    result = SweepResult(hour.astimezone(timezone.utc).isoformat())
    manifest, etag = read_versioned(store, hour)
    kept, abandoned = split_pending(manifest.get("pending", []), now, abandoned_after)
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
