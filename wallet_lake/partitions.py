"""The one partitioning every asset shares: landing hours in UTC.

A partition key "2026-11-24-13:00" is the landing folder raw/payments/dt=2026/11/24/13/."""

from collections.abc import Mapping

import dagster as dg

hourly_landing = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", timezone="UTC")


def partition_hours(context) -> list:
    """Landing hours (UTC datetimes) of a run: one for a single partition, many for a backfill
    run under BackfillPolicy.single_run()."""
    from wallet_lake.contracts.landing import hour_from_partition_key

    return [hour_from_partition_key(k) for k in context.partition_keys]


# Where a run names its partitions: one key, or the range of a single-run backfill.
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def partition_label(tags: Mapping[str, str]) -> str | None:
    """A run's partition as people read it: the key, or `start...end` of a backfill range."""
    if tags.get(PARTITION_TAG):
        return tags[PARTITION_TAG]
    if tags.get(RANGE_START_TAG):
        return f"{tags[RANGE_START_TAG]}...{tags.get(RANGE_END_TAG, tags[RANGE_START_TAG])}"
    return None


def run_partition_keys(tags: Mapping[str, str]) -> list[str]:
    """The landing-hour partition keys of a run, from its tags (none for an unpartitioned run)."""
    if tags.get(PARTITION_TAG):
        return [tags[PARTITION_TAG]]
    if tags.get(RANGE_START_TAG):
        start = tags[RANGE_START_TAG]
        return hourly_landing.get_partition_keys_in_range(dg.PartitionKeyRange(start, tags.get(RANGE_END_TAG, start)))
    return []
