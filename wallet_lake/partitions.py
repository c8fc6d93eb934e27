"""The one partitioning every asset shares: landing hours in UTC.

A partition key "2026-11-24-13:00" is the landing folder raw/payments/dt=2026/11/24/13/."""

import dagster as dg

hourly_landing = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", timezone="UTC")


def partition_hours(context) -> list:
    """Landing hours (UTC datetimes) of a run: one for a single partition, many for a backfill
    run under BackfillPolicy.single_run()."""
    from wallet_lake.contracts.landing import hour_from_partition_key

    return [hour_from_partition_key(k) for k in context.partition_keys]
