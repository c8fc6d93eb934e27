"""The hourly pipeline job: raw -> curated -> topic -> Postgres for one hour (its :20 backstop schedule:
defs/landing/backstop.py).

Executor: in-process by default. Each step of the multiprocess executor is a new process that
loads the code location (5-15 s per step on this machine; docs/benchmarks.md, "Freshness"); the
steps here form a chain, so separate processes buy no parallelism, and Spark, the one heavy
engine, runs in the curation worker (or Glue), not in the step. The trade-off: a step that
crashes the process (out of memory) fails the whole run at once instead of one step, and all
steps share one Python heap. A run may still ask for `execution: {config: {multiprocess: {}}}`.

The per-hour freshness checks (defs/ops/freshness.py) are not steps of this job: the freshness
sensor evaluates them at each asset's deadline, which is when they can fail anyway."""

import dagster as dg

from wallet_lake.contracts.asset_keys import PIPELINE
from wallet_lake.defs.ops.freshness import freshness_checks
from wallet_lake.defs.ops.run_slots import HEAVY_RUN_TAGS
from wallet_lake.partitions import hourly_landing

IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
MULTIPROCESS = {"execution": {"config": {"multiprocess": {}}}}

hourly_payments_job = dg.define_asset_job(
    "hourly_payments",
    selection=dg.AssetSelection.assets(*(dg.AssetKey(p) for p in PIPELINE)) - dg.AssetSelection.checks(*freshness_checks),
    partitions_def=hourly_landing,
    config=IN_PROCESS,
    tags=HEAVY_RUN_TAGS,  # one heavy run at a time (defs/ops/run_slots.py)
    description="One landing hour through every stage.",
)

# The :20 backstop schedule of this job: defs/landing/backstop.py.
