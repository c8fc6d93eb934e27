"""Helpers of the curated_payments tests through Dagster (test_curated_asset.py,
test_dead_run_sweep.py): three random landing hours of generated data (removed afterwards), a
local-launcher materialization, and what an hour holds in the lake."""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster_pyspark import LazyPySparkResource

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS
from wallet_lake.contracts.landing import QUARANTINE_PREFIX, hour_token, manifest_key
from wallet_lake.defs.curated.assets import curated_payments
from wallet_lake.defs.curated.launcher import CurationLauncher
from wallet_lake.generator.events import generate_with_stats
from wallet_lake.generator.writer import write_generated
from wallet_lake.lake.manifests import read_manifest
from wallet_lake.lake.reader import read_curated_hour
from wallet_lake.spark import spark_config
from wallet_lake_tests.ledger_support import forget_hours


def spark_resource() -> LazyPySparkResource:
    return LazyPySparkResource(spark_config={**spark_config(), "spark.master": "local[1]", "spark.sql.shuffle.partitions": "2",
                                             "spark.ui.showConsoleProgress": "false"})


def pk(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%d-%H:00")


def hour_state(store, hour: datetime) -> tuple:
    rows = sorted(json.dumps({k: str(v) for k, v in r.items() if k != "processed_at"}, sort_keys=True) for r in read_curated_hour(store, hour))
    m = read_manifest(store, hour)
    return rows, len(m["curated_keys"]), len(m["quarantine_keys"])


def files_of(store, hour: datetime, dts) -> set[str]:
    token = hour_token(hour)
    keys = {o.key for d in dts for o in store.list(f"curated/payments/dt={d}/") if f"/lh-{token}-" in o.key}
    return keys | {o.key for o in store.list(f"{QUARANTINE_PREFIX}landing_hour={token}/")}


@pytest.fixture
def hours(stack_resources):
    """Three consecutive landing hours in Apr-Aug 2026 of a random seed; removed afterwards."""
    lake = stack_resources["lake"]
    store = lake.store()
    rng = random.Random(time.time_ns())
    start = datetime(2026, 4, 1, tzinfo=timezone.utc) + timedelta(hours=rng.randrange(24 * 150))
    hs = [start + timedelta(hours=i) for i in range(3)]
    seed = rng.randrange(1, 10**6)
    write_generated(store, generate_with_stats(hs[0], hs[-1] + timedelta(hours=1), seed, events_per_hour=150), seed)
    yield hs
    dts = {(h + timedelta(days=d)).strftime("%Y-%m-%d") for h in hs for d in (-1, 0, 1)}
    keys = [o.key for h in hs for o in store.list(h.strftime("raw/payments/dt=%Y/%m/%d/%H/"))]
    keys += [k for h in hs for k in files_of(store, h, dts)] + [manifest_key(h) for h in hs]
    store.delete(keys)
    forget_hours(stack_resources["postgres"], hs)


def materialize(stack_resources, *, partition_key=None, tags=None):
    return dg.materialize(
        [curated_payments], partition_key=partition_key, tags=tags,
        resources={"lake": stack_resources["lake"], "lazy_pyspark": spark_resource(), "curation_launcher": CurationLauncher(mode="local"),
                   "postgres": stack_resources["postgres"]},
        instance=dg.DagsterInstance.ephemeral(),
    )


def materialization_of(result) -> dg.AssetMaterialization:
    """The run's first curated_payments materialization (a backfill run records one per hour)."""
    return next(e.materialization for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(CURATED_PAYMENTS))


def published_hour(stack_resources, hour: datetime) -> tuple:
    """Curate and publish `hour` once: (the lake store, the hour's state, its manifest, its dts)."""
    store = stack_resources["lake"].store()
    assert materialize(stack_resources, partition_key=pk(hour)).success
    manifest = read_manifest(store, hour)
    return store, hour_state(store, hour), manifest, set(manifest["dt_partitions"])
