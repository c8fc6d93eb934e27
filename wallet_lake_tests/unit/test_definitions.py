"""The code location's shape: the four assets in flow order on one hourly partitioning, the job,
the sensor and the schedule (a snapshot of what the Dagster UI shows)."""

from pathlib import Path

import dagster as dg

from wallet_lake.contracts.asset_keys import (
    CURATED_PAYMENTS,
    CURATED_PAYMENTS_DAILY,
    PIPELINE,
    RAW_PAYMENTS,
    TABLE_CURATED_PAYMENTS,
    TOPIC_PAYMENTS_CURATED,
)
from wallet_lake.definitions import defs
from wallet_lake.partitions import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG, hourly_landing, partition_label, run_partition_keys


def _loaded() -> dg.Definitions:
    d = defs()
    return d if isinstance(d, dg.Definitions) else d.load()  # type: ignore[attr-defined]


def test_assets_form_the_flow_raw_curated_topic_postgres():
    graph = _loaded().resolve_asset_graph()
    # The pipeline, and beside it the daily compaction of what it curated.
    assert set(graph.get_all_asset_keys()) == {dg.AssetKey(p) for p in (*PIPELINE, CURATED_PAYMENTS_DAILY)}
    parents = {k: graph.get(k).parent_keys for k in graph.get_all_asset_keys()}
    assert parents == {
        dg.AssetKey(RAW_PAYMENTS): set(),
        dg.AssetKey(CURATED_PAYMENTS): {dg.AssetKey(RAW_PAYMENTS)},
        dg.AssetKey(TOPIC_PAYMENTS_CURATED): {dg.AssetKey(CURATED_PAYMENTS)},
        dg.AssetKey(TABLE_CURATED_PAYMENTS): {dg.AssetKey(TOPIC_PAYMENTS_CURATED)},
        dg.AssetKey(CURATED_PAYMENTS_DAILY): {dg.AssetKey(CURATED_PAYMENTS)},
    }


def test_every_asset_shares_the_one_hourly_utc_partitioning():
    graph = _loaded().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        if key == dg.AssetKey(CURATED_PAYMENTS_DAILY):  # one run compacts every closed dt that changed
            assert graph.get(key).partitions_def is None
            continue
        assert graph.get(key).partitions_def == hourly_landing, key
    assert hourly_landing.timezone == "UTC"
    assert hourly_landing.get_partition_keys_between_indexes(0, 1) == ["2026-01-01-00:00"]


def test_job_sensor_and_schedule_are_defined_and_running_by_default():
    d = _loaded()
    assert d.resolve_job_def("hourly_payments") is not None
    sensor = d.resolve_sensor_def("landing_arrivals_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    schedules = list(d.resolve_all_schedule_defs()) if hasattr(d, "resolve_all_schedule_defs") else list(d.schedules or [])
    by_job = {s.job_name: s for s in schedules}
    assert {name: s.cron_schedule for name, s in by_job.items()} == {"hourly_payments": "20 * * * *", "compact_curated_daily": "40 2 * * *"}
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in schedules)
    assert by_job["compact_curated_daily"].execution_timezone == "UTC"
    # The code location loads as the webserver and daemon load it (names unique across jobs and ops).
    assert d.get_repository_def().get_job("compact_curated_daily") is not None


def test_blocking_checks_guard_curated_and_topic():
    graph = _loaded().resolve_asset_graph()
    # Non-blocking checks (the per-hour freshness checks of defs/ops/freshness.py) are not guards.
    checks = {(k.asset_key, k.name) for k in graph.asset_check_keys if graph.get_check_spec(k).blocking}
    curated = {(dg.AssetKey(CURATED_PAYMENTS), name) for name in (
        "every_raw_line_accounted", "schema_matches_contract", "payment_id_unique_within_hour",
        "required_columns_not_null", "accepted_values",
    )}
    assert checks == curated | {
        (dg.AssetKey(TOPIC_PAYMENTS_CURATED), "published_keys_match_curated"),
        (dg.AssetKey(TABLE_CURATED_PAYMENTS), "pipeline_reconciled"),
    }


def test_the_ledger_check_is_per_landing_hour():
    graph = _loaded().resolve_asset_graph()
    key = next(k for k in graph.asset_check_keys if k.name == "pipeline_reconciled")
    assert key.asset_key == dg.AssetKey(TABLE_CURATED_PAYMENTS)
    assert graph.get_check_spec(key).partitions_def == hourly_landing


def test_heavy_jobs_share_the_one_heavy_run_slot_of_dagster_yaml():
    """dagster.yaml runs one heavy run at a time and keeps a second slot for light runs: the limit
    names HEAVY_RUN_TAG, and every heavy job carries it."""
    from pathlib import Path

    import yaml

    from wallet_lake.defs.ops.run_slots import HEAVY_RUN_TAG

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "dagster.yaml").read_text())["run_coordinator"]["config"]
    key, value = HEAVY_RUN_TAG
    assert {"key": key, "value": value, "limit": 1} in config["tag_concurrency_limits"]
    assert config["max_concurrent_runs"] == 2
    loaded = _loaded()
    for job in ("hourly_payments", "compact_curated_daily"):
        assert loaded.resolve_job_def(job).tags.get(key) == value, job


def test_the_pipeline_assets_run_over_a_partition_range_as_one_run_and_scripts_run_selects_them():
    # `dagster asset materialize --partition-range` (scripts/run, backfills by hand) refuses a
    # selection with any asset not under BackfillPolicy.single_run(), such as the daily compaction.
    graph = _loaded().resolve_asset_graph()
    for path in PIPELINE:
        assert graph.get(dg.AssetKey(path)).backfill_policy == dg.BackfillPolicy.single_run(), path
    script = (Path(__file__).resolve().parents[2] / "scripts" / "run").read_text()
    assert "from wallet_lake.contracts.asset_keys import PIPELINE" in script and "--select '*'" not in script


def test_dead_run_sweeps_watch_failed_and_canceled_runs_everywhere_and_run_by_default():
    d = _loaded()
    for name in ("dead_run_sweep", "dead_run_sweep_canceled"):
        sensor = d.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING and sensor.required_resource_keys == {"lake"}, name


def test_a_runs_landing_hours_come_from_its_partition_or_its_backfill_range():
    assert run_partition_keys({PARTITION_TAG: "2026-03-01-23:00"}) == ["2026-03-01-23:00"]
    tags = {RANGE_START_TAG: "2026-03-01-22:00", RANGE_END_TAG: "2026-03-02-01:00"}
    assert run_partition_keys(tags) == ["2026-03-01-22:00", "2026-03-01-23:00", "2026-03-02-00:00", "2026-03-02-01:00"]
    assert partition_label(tags) == "2026-03-01-22:00...2026-03-02-01:00"
    assert run_partition_keys({}) == [] and partition_label({}) is None
