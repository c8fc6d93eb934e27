"""S3 arrival sensor: one run per landing hour whose objects changed since it was last curated.

The cursor is the newest last-modified time seen plus the keys seen at that instant (a cursor on
the last key misses rewritten or out-of-order keys, dagster#22892). The run_key names the hour
and the newest object time, so a rewritten hour gets a new run and a re-evaluation does not."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import dagster as dg

from wallet_lake.contracts.landing import RAW_PREFIX, landing_hour_of_key, partition_key_for_hour
from wallet_lake.defs.jobs import hourly_payments_job
from wallet_lake.resources import LakeResource


def new_objects(objects, cursor: dict) -> list:
    """Objects newer than the cursor, or at the cursor's instant but not yet seen."""
    since = datetime.fromisoformat(cursor["since"]) if cursor.get("since") else None
    seen = set(cursor.get("keys_at_since", []))
    return [o for o in objects if since is None or o.last_modified > since or (o.last_modified == since and o.key not in seen)]


def advance_cursor(cursor: dict, fresh: list) -> dict:
    if not fresh:
        return cursor
    newest = max(o.last_modified for o in fresh)
    keys = [o.key for o in fresh if o.last_modified == newest]
    if cursor.get("since") and datetime.fromisoformat(cursor["since"]) == newest:
        keys = sorted(set(keys) | set(cursor.get("keys_at_since", [])))
    return {"since": newest.isoformat(), "keys_at_since": sorted(keys)}


@dg.sensor(
    job=hourly_payments_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts the hourly pipeline for landing hours with new or rewritten NDJSON objects.",
)
def landing_arrivals_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    objects = [o for o in lake.store().list(RAW_PREFIX) if o.key.endswith(".ndjson")]
    fresh = new_objects(objects, cursor)
    by_hour: dict[datetime, datetime] = {}
    for o in fresh:
        hour = landing_hour_of_key(o.key)
        if hour is None:
            context.log.warning(f"ignoring {o.key}: not in the landing layout raw/payments/dt=YYYY/MM/DD/HH/")
            continue
        by_hour[hour] = max(o.last_modified, by_hour.get(hour, o.last_modified))

    requests = []
    for hour, newest in sorted(by_hour.items()):
        pk = partition_key_for_hour(hour)
        # Skip hours already curated after their newest object arrived (e.g. by a manual backfill).
        record = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("curated_payments"), asset_partitions=[pk]), limit=1
        ).records
        if record and datetime.fromtimestamp(record[0].timestamp, timezone.utc) > newest:
            continue
        requests.append(dg.RunRequest(run_key=f"{pk}@{newest.isoformat()}", partition_key=pk))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(advance_cursor(cursor, fresh)))
