"""connect_sink_monitor: watches the Postgres sink connector through the Connect REST API,
restarts FAILED connector/task instances with exponential backoff (state in the cursor), and
reports every tick as an AssetObservation of postgres/curated_payments (states and the sink's
consumer lag as numbers the UI plots) plus an alert for each restart.

Connect itself never restarts a failed task; without this, one bad flush (Postgres restarting,
a lock timeout) stops the table from filling until someone notices."""

import json
import time

import dagster as dg
import httpx

from wallet_lake.contracts.asset_keys import TABLE_CURATED_PAYMENTS
from wallet_lake.ops.alerts import AlertDeliveryError, send_alert
from wallet_lake.resources import ConnectResource, KafkaResource
from wallet_lake.serving.connect import ConnectClient, ConnectError, end_offsets, sink_group_id, sink_lag
from wallet_lake.serving.monitor import CONNECTOR, STUCK_AFTER_SECONDS, instance_states, plan_restarts, state_summary

SENSOR_NAME = "connect_sink_monitor"
TABLE_ASSET = dg.AssetKey(TABLE_CURATED_PAYMENTS)


def _restart(client: ConnectClient, name: str, instance: str) -> None:
    if instance == CONNECTOR:
        client.restart_connector(name)
    else:
        client.restart_task(name, int(instance.split("-", 1)[1]))


def _kafka_figures(kafka: KafkaResource, name: str, config: dict) -> dict:
    """Sink lag over the connector's topics and the size of its dead-letter topic."""
    from confluent_kafka import KafkaException

    out: dict = {}
    try:
        per_partition = {}
        for topic in [t.strip() for t in config.get("topics", "").split(",") if t.strip()]:
            for p, n in sink_lag(kafka.client_config(), sink_group_id(name), topic).items():
                per_partition[f"{topic}/{p}"] = n
        out["sink_lag_messages"] = sum(per_partition.values())
        out["sink_lag_by_partition"] = dg.MetadataValue.json(per_partition)
        dlq = config.get("errors.deadletterqueue.topic.name")
        if dlq:
            out["dead_letter_messages"] = sum(end_offsets(kafka.client_config(), dlq).values())
    except (KafkaException, ConnectError) as exc:  # the broker may be the failure being watched
        out["kafka_error"] = str(exc)[:500]
    return out


@dg.sensor(
    name=SENSOR_NAME,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Kafka Connect sink: restart failed tasks with backoff, alert, and record states and consumer lag.",
)
def connect_sink_monitor(context: dg.SensorEvaluationContext, connect: ConnectResource, kafka: KafkaResource) -> dg.SensorResult:
    name = connect.connector_name
    client = connect.client()
    state = json.loads(context.cursor) if context.cursor else {}
    now = time.time()

    try:
        status = client.status_or_none(name)
        problem = None if status is not None else "MISSING"
    except httpx.TransportError as exc:
        problem = "UNREACHABLE"
        context.log.error(f"Connect REST at {connect.url} unreachable: {exc}")
    if problem:
        # Nothing to restart through REST: report it, alert once per outage, keep the backoff state.
        metadata = {"connector": name, "connector_state": problem, "connector_running": 0}
        if state.get("down") != problem:
            _alert(context, f"Kafka Connect sink {name} is {problem.lower()}", {"connector": name, "connect": connect.url}, metadata)
        return dg.SensorResult(
            asset_events=[dg.AssetObservation(asset_key=TABLE_ASSET, metadata=metadata)],
            cursor=json.dumps({**state, "down": problem}),
        )
    plan = plan_restarts(status, state.get("instances", {}), now, unassigned=state.get("unassigned", {}))
    restarted, restart_errors = [], {}
    for inst in plan.restart:
        try:
            _restart(client, name, inst)
            restarted.append(inst)
        except (ConnectError, httpx.HTTPError) as exc:
            restart_errors[inst] = str(exc)[:300]

    metadata = {
        "connector": name,
        **state_summary(instance_states(status)),
        "restarts_requested": len(restarted),
        "restarted": dg.MetadataValue.json({i: plan.attempts[i] for i in restarted}),
        "backing_off": dg.MetadataValue.json(plan.waiting),
    }
    metadata["task_states"] = dg.MetadataValue.json(metadata["task_states"])
    try:
        metadata.update(_kafka_figures(kafka, name, client.config(name)))
    except (ConnectError, httpx.HTTPError) as exc:  # the worker went away mid-tick: keep the cursor
        metadata["connect_error"] = str(exc)[:300]
    for inst in plan.restart:
        fields = {
            "connector": name, "instance": inst, "attempt": plan.attempts[inst],
            "error": plan.failed.get(inst, ""), "next restart no sooner than": f"{plan.state[inst]['next_at'] - now:.0f}s",
        }
        if inst in restart_errors:
            fields["restart request failed"] = restart_errors[inst]
        _alert(context, f"Kafka Connect sink {name}: restarted failed {inst}" if inst in restarted else f"Kafka Connect sink {name}: could not restart {inst}", fields, metadata)
    if plan.stuck:
        since = {i: f"{now - plan.unassigned[i]['since']:.0f}s" for i in plan.stuck}
        _alert(context, f"Kafka Connect sink {name}: {', '.join(plan.stuck)} unassigned for {STUCK_AFTER_SECONDS / 60:.0f} min or more", {
            "connector": name, "unassigned": ", ".join(f"{i} ({s})" for i, s in since.items()),
            "what to do": "the worker lost its assignment; restart it (stop the pid in .stack/pids/connect.pid, stack/wallet-stack up)",
        }, metadata)
    metadata["unassigned_instances"] = len(plan.unassigned)
    if restart_errors:
        metadata["restart_errors"] = dg.MetadataValue.json(restart_errors)
    context.log.info(f"{name}: {instance_states(status)}; restarted {restarted or 'nothing'}; waiting {plan.waiting or 'none'}")
    return dg.SensorResult(
        asset_events=[dg.AssetObservation(asset_key=TABLE_ASSET, metadata=metadata)],
        cursor=json.dumps({"instances": plan.state, "unassigned": plan.unassigned}),
    )


def _alert(context: dg.SensorEvaluationContext, title: str, fields: dict, metadata: dict) -> None:
    """Send the alert; a webhook that refuses is recorded (the alert is logged regardless) rather
    than failing the tick, which would drop the cursor and with it the restart backoff."""
    try:
        send_alert(title, fields)
        metadata["alerts_sent"] = metadata.get("alerts_sent", 0) + 1
    except AlertDeliveryError as exc:
        context.log.error(str(exc))
        metadata["alert_error"] = str(exc)[:300]
