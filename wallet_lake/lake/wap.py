"""Write-audit-publish of one curated landing hour: its files become current all at once, or not
at all.

Audit: an hour whose figures fail a blocking check (transforms/checks.py) is not published; its
previous state stays. Otherwise, three steps, each a function so a test can stop between them:

1. announce: record the run's new keys as `pending` in the hour's manifest, then upload the files
   under run-scoped names (lh-<hour>-<run>-NNN.parquet): nothing the current manifest lists is
   touched, and a run that dies here leaves keys the sweep finds;
2. swap: one conditional PUT of the manifest makes the new files current and records the keys
   they supersede (the previous files, those of abandoned runs);
3. delete the superseded files, then record that they are gone.

Readers that go through manifests (lake/reader.py, the lake query layer) see the old hour or the
new one, never a mix. Every manifest write is conditional on the version read
(manifests.write): a concurrent run of the hour makes this one fail, never overwrite it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from wallet_lake.lake import manifests
from wallet_lake.lake.manifests import HourStats
from wallet_lake.lake.store import LakeStore
from wallet_lake.transforms.checks import failed_checks

Upload = tuple[Path, str]  # (local file, lake key)


@dataclass
class Announced:
    """An hour between its announce and its swap: the manifest read before, and its version now."""

    stats: HourStats
    previous: dict
    version: str | None
    pending: list[dict]  # other runs' entries, still alive
    abandoned: list[dict]  # other runs' entries, dead: their keys are superseded by the swap


def announce(store: LakeStore, stats: HourStats, uploads: list[Upload], *, abandoned_after: timedelta,
             pool: ThreadPoolExecutor | None = None) -> Announced:
    """Step 1: the run's keys as `pending` in the manifest, then the uploads."""
    hour = datetime.fromisoformat(stats.landing_hour)
    old, version = manifests.read_versioned(store, hour)
    now = datetime.now(timezone.utc)
    pending, abandoned = manifests.split_pending(old.get("pending", []), now, abandoned_after, except_run=stats.run_id)
    new_keys = [k for _, k in uploads]
    if set(new_keys) != set(stats.curated_keys + stats.quarantine_keys):
        raise RuntimeError(f"{stats.token}: the files to upload are not the files the manifest will list")
    announced = {**old, "pending": pending + [{"run_id": stats.run_id, "started_at": now.isoformat(), "keys": new_keys}]}
    version = manifests.write(store, hour, announced, version, doing="announcing its files")
    put = lambda u: store.put_file(u[1], u[0])  # noqa: E731
    list(pool.map(put, uploads) if pool is not None else map(put, uploads))
    return Announced(stats, old, version, pending, abandoned)


def swap(store: LakeStore, a: Announced) -> tuple[dict, str]:
    """Step 2: one PUT makes the new files current and records what they supersede (so a run
    that dies before step 3 leaves a list to sweep, not orphans). The manifest and its version.
    On ManifestConflict this run's own files are removed (no manifest lists them as current)."""
    stats = a.stats
    new_keys = stats.curated_keys + stats.quarantine_keys
    superseded = set(a.previous.get("superseded", [])) | manifests.current_keys(a.previous)
    for p in a.abandoned:
        superseded.update(p.get("keys", []))
    stats.published = True
    body = {**asdict(stats), "manifest_format": manifests.MANIFEST_FORMAT, "pending": a.pending,
            "superseded": sorted(superseded - set(new_keys))}
    try:
        version = manifests.write(store, datetime.fromisoformat(stats.landing_hour), body, a.version, doing="swapping in its files")
    except manifests.ManifestConflict:
        stats.published = False
        store.delete(new_keys)
        raise
    return body, version


def delete_superseded(store: LakeStore, stats: HourStats, body: dict, version: str, log=None) -> None:
    """Step 3: delete what the swap superseded, then record that it is gone."""
    if not body["superseded"]:
        return
    store.delete(body["superseded"])
    try:
        manifests.write(store, datetime.fromisoformat(stats.landing_hour), {**body, "superseded": []}, version, doing="recording its deletes")
    except manifests.ManifestConflict as e:  # the next writer carries the list forward and deletes again
        if log:
            log.warning(str(e))
    if log:
        log.info(f"{stats.token}: removed {len(body['superseded'])} files of earlier runs")


def publish_hour(store: LakeStore, stats: HourStats, uploads: list[Upload], *, abandoned_after: timedelta = manifests.ABANDONED_AFTER,
                 pool: ThreadPoolExecutor | None = None, log=None) -> None:
    """Audit, then the three steps. Raises manifests.ManifestConflict when another writer changed
    the manifest meanwhile (this run's files are then removed; the other run's state stays whole)."""
    stats.failed_checks = failed_checks(stats)
    if stats.failed_checks:
        stats.published = False
        if log:
            log.error(f"{stats.token} not published: {stats.failed_checks}")
        return
    announced = announce(store, stats, uploads, abandoned_after=abandoned_after, pool=pool)
    body, version = swap(store, announced)
    delete_superseded(store, stats, body, version, log)
