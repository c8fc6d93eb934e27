"""postgres/curated_payments: the table the Kafka Connect JDBC sink fills from payments.curated.

Materializing an hour waits until the sink's consumer group has committed past the end offsets
that hour's publish recorded in its kafka/payments_curated materialization (Connect commits after
writing; the topic's high watermarks stand in only when no such materialization exists), then
refreshes the report aggregates of exactly the dts of the hour's curated rows (plus every dt the
table's triggers marked since the last refresh), never all of history, and verifies every
curated payment_id of the hour is in Postgres with a created_at at least as new (the lake side
of that read while the sink loads). When this step fails or never runs, the
report_aggregates_refresher sensor refreshes the marked dts.
It records the hour's loaded rows in the pipeline ledger (before failing on missing ones) and
evaluates the check `pipeline_reconciled` (defs/serving/recon.py)."""

import time

import dagster as dg

from wallet_lake.defs.publish.assets import END_OFFSETS
from wallet_lake.defs.serving.recon import RECON_CHECK, RECON_DESCRIPTION, reconcile_run
from wallet_lake.defs.ops.hour_leases import holds_landing_hours
from wallet_lake.contracts.asset_keys import TABLE_CURATED_PAYMENTS, TOPIC_PAYMENTS_CURATED
from wallet_lake.partitions import hourly_landing, partition_hours
from wallet_lake.resources import ConnectResource, KafkaResource, LakeResource, PostgresResource
from wallet_lake.serving.connect import end_offsets, raise_if_failed, sink_group_id, wait_for_sink
from wallet_lake.serving.aggregates import refresh_report_aggregates
from wallet_lake.serving.deploy import sink_connector_config
from wallet_lake.serving import ledger
from wallet_lake.serving.verify import expected_of_hour, verify_expected

TOPIC_ASSET = dg.AssetKey(TOPIC_PAYMENTS_CURATED)


class SinkWaitConfig(dg.Config):
    timeout_seconds: float = 300.0


def merge_end_offsets(per_hour: list[dict]) -> dict[int, int]:
    """The offsets the sink must pass for several published hours: the highest per partition
    (JSON metadata keys are strings). Pure."""
    out: dict[int, int] = {}
    for offsets in per_hour:
        for p, o in offsets.items():
            out[int(p)] = max(int(o), out.get(int(p), 0))
    return {p: o for p, o in out.items() if o > 0}


def published_end_offsets(instance: dg.DagsterInstance, partition_keys: list[str]) -> dict[int, int] | None:
    """End offsets recorded by the latest kafka/payments_curated materialization of each
    partition key; None when any of them has no such materialization (or no offsets)."""
    recorded = []
    for pk in partition_keys:
        result = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=TOPIC_ASSET, asset_partitions=[pk]), limit=1)
        if not result.records:
            return None
        value = result.records[0].asset_materialization.metadata.get(END_OFFSETS)
        if value is None:
            return None
        recorded.append(value.value)
    return merge_end_offsets(recorded)


@dg.asset(
    key=dg.AssetKey(TABLE_CURATED_PAYMENTS),
    deps=[dg.AssetKey(TOPIC_PAYMENTS_CURATED)],
    partitions_def=hourly_landing,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="serving",
    kinds={"postgres", "kafka"},
    check_specs=[
        dg.AssetCheckSpec(
            RECON_CHECK,
            asset=dg.AssetKey(TABLE_CURATED_PAYMENTS),
            blocking=True,
            partitions_def=hourly_landing,
            description=RECON_DESCRIPTION,
        )
    ],
    description="Postgres table curated_payments (PK payment_id), upserted by the Kafka Connect sink (connect/copy-sink: COPY + one upsert per batch).",
)
@holds_landing_hours
def postgres_curated_payments(
    context: dg.AssetExecutionContext,
    config: SinkWaitConfig,
    lake: LakeResource,
    kafka: KafkaResource,
    postgres: PostgresResource,
    connect: ConnectResource,
) -> dg.MaterializeResult:
    client = connect.client()
    res = {"postgres": postgres, "kafka": kafka, "connect": connect}
    deployed = client.deploy(connect.connector_name, sink_connector_config(res))
    client.wait_running(connect.connector_name)

    targets = published_end_offsets(context.instance, list(context.partition_keys))
    source = "publish"
    if targets is None:
        context.log.warning("no kafka/payments_curated materialization with end offsets for these hours: waiting for the topic's high watermarks")
        targets, source = {p: o for p, o in end_offsets(kafka.client_config(), kafka.topic).items() if o > 0}, "high_watermarks"
    # The lake side of the verification is read while the sink is still loading (it needs no
    # Postgres): after the sink, only Postgres work remains.
    store = lake.store()
    expected = [expected_of_hour(store, hour) for hour in partition_hours(context)]
    started = time.monotonic()
    wait_for_sink(
        kafka.client_config(), sink_group_id(connect.connector_name), kafka.topic, targets,
        timeout=config.timeout_seconds, check=lambda: raise_if_failed(client.status(connect.connector_name)),
    )
    waited = time.monotonic() - started

    # The reports first: the aggregates always describe the table as it is (the refresher
    # sensor refreshes marked dts without any verification too), so they need not wait for the
    # verification. The curated rows' (dt, hour)s and every mark cover every hour the load
    # changed: a payment whose row in Postgres sits in another hour got there by a write that
    # marked it. Only those hours' partials are recomputed (migration 0009), not their whole dts.
    started = time.monotonic()
    with postgres.connect() as conn:
        refreshed = refresh_report_aggregates(conn, hours=set().union(*(e.dt_hours for e in expected)))
    context.log.info(f"report aggregates refreshed for {len(refreshed)} dt(s): {', '.join(map(str, refreshed)) or 'none'}")
    refresh_seconds = round(time.monotonic() - started, 2)

    with postgres.connect() as conn:  # serving/verify.py: the hour's curated payment_ids against the table
        checked = [verify_expected(conn, e) for e in expected]
    with postgres.connect() as conn:  # before failing on missing rows: the ledger shows the loss
        for v in checked:
            ledger.record_loaded(conn, v.hour, v.by_dt, run_id=context.run_id, curation_run_id=v.curation_run_id, verified_at=v.verified_at)
    missing = [pid for v in checked for pid in v.missing]
    touched_dts = set(refreshed).union(*(v.touched_dts for v in checked))
    if missing:
        raise dg.Failure(
            description=f"{len(missing)} published payments are missing or older in Postgres after the sink caught up",
            metadata={"examples": dg.MetadataValue.json(missing[:20])},
        )
    recon = reconcile_run(context, postgres, touched_dts)
    return dg.MaterializeResult(
        metadata={
            "rows_verified": sum(v.expected for v in checked),
            "sink_wait_seconds": round(waited, 2),
            "connector": deployed,
            "offsets_source": source,
            "sink_target_offsets": dg.MetadataValue.json({str(p): o for p, o in sorted(targets.items())}),
            "aggregates_refreshed_dts": dg.MetadataValue.json([str(d) for d in refreshed]),
            "aggregates_refresh_seconds": refresh_seconds,
            **recon.metadata,
        },
        check_results=[recon.check],
    )
