"""A run the landing sensor or the :20 backstop started stops after raw_payments when it would
only repeat the hour's last full curation (same (key, ETag)s listed by a run that went through
every step): the later steps skip and the run succeeds. Anything else goes through every step: a
run started by hand, a rewritten object, a last run that failed after curating.

The real raw_payments (local S3, the pipeline ledger and hour leases in the stack's Postgres)
under a Dagster instance; the later steps are stand-ins that only record that they ran (their
own behaviour is tested apart; what is tested here is which steps run)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS, RAW_PAYMENTS, TOPIC_PAYMENTS_CURATED
from wallet_lake.defs.landing.assets import raw_payments
from wallet_lake.partitions import hourly_landing
from wallet_lake_tests.ledger_support import forget_hours, ledger_of
from wallet_lake_tests.s3_support import throwaway_lake

pytestmark = pytest.mark.integration
UTC = timezone.utc
SENSOR = {"dagster/sensor_name": "landing_arrivals_sensor"}
SCHEDULE = {"dagster/schedule_name": "hourly_payments_schedule"}


@pytest.fixture
def lake(stack_resources):
    with throwaway_lake(stack_resources["lake"], "wl-repeat-test") as own:
        yield own


@pytest.fixture
def hour(stack_resources):
    """A landing hour of a past day no other test uses (its ledger rows removed afterwards)."""
    h = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=uuid.uuid4().int % (24 * 90))
    yield h
    forget_hours(stack_resources["postgres"], [h])


ran: list[str] = []


@dg.asset(key=dg.AssetKey(CURATED_PAYMENTS), deps=[dg.AssetKey(RAW_PAYMENTS)], partitions_def=hourly_landing)
def curated_payments() -> None:
    ran.append("curated")


@dg.asset(key=dg.AssetKey(TOPIC_PAYMENTS_CURATED), deps=[curated_payments], partitions_def=hourly_landing,
          config_schema={"fail": dg.Field(bool, default_value=False)})
def topic(context) -> None:
    if context.op_config["fail"]:
        raise RuntimeError("the broker is down")  # curated, then the run failed
    ran.append("topic")


def key(hour: datetime, name: str) -> str:
    return f"raw/payments/dt={hour:%Y/%m/%d/%H}/{name}.ndjson"


def test_a_repeat_stops_after_raw_and_anything_else_runs_every_step(stack_resources, lake, hour):
    instance = dg.DagsterInstance.ephemeral()
    store = lake.store()
    partition = f"{hour:%Y-%m-%d-%H}:00"
    store.put_bytes(key(hour, "a"), b'{"payment_id": "p1"}\n')
    store.put_bytes(key(hour, "b"), b'{"payment_id": "p2"}\n{"payment_id": "p3"}\n')

    def run(tags, fail_topic=False):
        ran.clear()
        result = dg.materialize(
            [raw_payments, curated_payments, topic], partition_key=partition, tags=tags, instance=instance,
            resources={"lake": lake, "postgres": stack_resources["postgres"]},
            run_config={"ops": {"kafka__payments_curated": {"config": {"fail": fail_topic}}}}, raise_on_error=False,
        )
        raw = [e.materialization for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(RAW_PAYMENTS)]
        skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
        return result, raw, list(ran), skipped

    first, raw, steps, _ = run(SENSOR)
    assert first.success and steps == ["curated", "topic"]
    assert raw[0].metadata["objects"].value == 2 and raw[0].metadata["lines"].value == 3
    assert len(raw[0].metadata["objects_digest"].value) == 12
    assert ledger_of(stack_resources["postgres"], hour)["raw_lines"][0] == 3

    # The sensor's second run of the same objects: nothing materialized, the later steps skip.
    repeat, raw, steps, skipped = run(SENSOR)
    assert repeat.success and raw == [] and steps == [] and skipped == {"curated_payments", "kafka__payments_curated"}
    said = [e.user_message for e in instance.all_logs(repeat.run_id) if "nothing to do" in e.user_message]
    assert said and first.run_id in said[0]
    assert run(SCHEDULE)[2] == []  # the :20 backstop's too

    assert run({})[2] == ["curated", "topic"]  # by hand: every step (a repair, say)

    store.put_bytes(key(hour, "b"), b'{"payment_id": "p2"}\n')  # rewritten: a new ETag, same key
    rewritten, raw, steps, _ = run(SENSOR)
    assert steps == ["curated", "topic"] and raw[0].metadata["lines"].value == 2

    assert run(SCHEDULE, fail_topic=True)[2] == []  # a repeat: the topic step does not even run
    failed = run({}, fail_topic=True)  # by hand, curated, then failed: not a full curation
    assert not failed[0].success and failed[2] == ["curated"]
    assert run(SENSOR)[2] == ["curated", "topic"]
    assert run(SENSOR)[2] == []
