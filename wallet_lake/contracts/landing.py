"""Lake layout: where landing hours, curated Parquet and quarantine live (the upstream contract).

Landing hour H (UTC) is the folder raw/payments/dt=YYYY/MM/DD/HH/; the Dagster hourly partition
key of that hour is "YYYY-MM-DD-HH:00"."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

RAW_PREFIX = "raw/payments/"
CURATED_PREFIX = "curated/payments/"
QUARANTINE_PREFIX = "quarantine/payments/"
# One manifest per landing hour lists the curated objects that hour wrote, so a rerun can
# replace exactly those and the publish step can read exactly that hour's rows.
MANIFEST_PREFIX = "_manifests/curated/payments/"
# The compacted lake (lake/compaction.py): per closed dt, one file per merchant holding each
# payment's latest record of that dt, current as the dt's day manifest says; and the movers index
# (payments whose records span several dts), current as its manifest says. Read-optimized copies
# for the lake query layer; the hour files above stay the record of what each hour curated.
DAILY_PREFIX = "curated/payments_daily/"
DAY_MANIFEST_PREFIX = "_manifests/curated/payments_daily/"
MOVERS_PREFIX = "curated/payments_movers/"
MOVERS_MANIFEST_KEY = "_manifests/curated/payments_movers/current.json"

PARTITION_KEY_FORMAT = "%Y-%m-%d-%H:%M"
_LANDING_KEY_RE = re.compile(r"raw/payments/dt=(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+\.ndjson$")


def hour_from_partition_key(partition_key: str) -> datetime:
    return datetime.strptime(partition_key, PARTITION_KEY_FORMAT).replace(tzinfo=timezone.utc)


def partition_key_for_hour(hour: datetime) -> str:
    return hour.astimezone(timezone.utc).strftime(PARTITION_KEY_FORMAT)


def landing_prefix(hour: datetime) -> str:
    """Folder of a landing hour, e.g. raw/payments/dt=2026/11/24/13/."""
    return hour.astimezone(timezone.utc).strftime(f"{RAW_PREFIX}dt=%Y/%m/%d/%H/")


def landing_hour_of_key(key: str) -> datetime | None:
    """Landing hour of a raw object key, or None when the key is not in the landing layout."""
    m = _LANDING_KEY_RE.search(key)
    if not m:
        return None
    y, mo, d, h = (int(x) for x in m.groups())
    return datetime(y, mo, d, h, tzinfo=timezone.utc)


def hour_token(hour: datetime) -> str:
    """Compact landing-hour token used in curated file names, e.g. 20261124T13."""
    return hour.astimezone(timezone.utc).strftime("%Y%m%dT%H")


def manifest_key(hour: datetime) -> str:
    return f"{MANIFEST_PREFIX}{hour_token(hour)}.json"


def day_manifest_key(day: date) -> str:
    return f"{DAY_MANIFEST_PREFIX}dt={day.isoformat()}.json"
