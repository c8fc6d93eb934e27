"""The hourly pipeline job and its schedule: raw -> curated -> topic -> Postgres for one hour."""

import dagster as dg

from wallet_lake.contracts.asset_keys import PIPELINE
from wallet_lake.partitions import hourly_landing

hourly_payments_job = dg.define_asset_job(
    "hourly_payments",
    selection=dg.AssetSelection.assets(*(dg.AssetKey(p) for p in PIPELINE)),
    partitions_def=hourly_landing,
    description="One landing hour through every stage.",
)

# At :20 past each hour, process the hour that just closed (late files of that hour have had
# 20 minutes to land; later arrivals are picked up by the sensor).
hourly_payments_schedule = dg.build_schedule_from_partitioned_job(
    hourly_payments_job, minute_of_hour=20, default_status=dg.DefaultScheduleStatus.RUNNING
)
