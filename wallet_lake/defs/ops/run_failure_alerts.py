"""An alert for every failed run: its assets, partition(s), the failed steps and blocking checks,
an error summary and a link to the run in the Dagster UI, posted through
wallet_lake.ops.alerts.send_alert (Slack-compatible webhook WL_ALERT_WEBHOOK_URL, and the log).

A failed blocking check fails its run (the check's step fails), so it is reported here too,
with the names of the checks that did not pass. The sensor watches every run on the instance
(monitor_all_code_locations): runs started by `dagster asset materialize` carry no code
location, and a failed run is a failed run wherever it was launched from."""

from __future__ import annotations


import dagster as dg

from wallet_lake.ops.alerts import send_alert
from wallet_lake.partitions import partition_label

SENSOR_NAME = "run_failure_alerts"
_MAX_ERROR = 600


def dagster_ui_url() -> str:
    """Base URL of the Dagster UI for links (WL_DAGSTER_UI_URL; locally the webserver scripts/run starts)."""
    from wallet_lake.settings import OpsSettings, load

    return load(OpsSettings).dagster_ui_base()


def run_url(run_id: str) -> str:
    return f"{dagster_ui_url()}/runs/{run_id}"


def partition_of(run: dg.DagsterRun) -> str:
    return partition_label(run.tags) or "none (unpartitioned run)"


def _root_message(error) -> str:
    """The innermost cause of a serialized error (Dagster wraps user exceptions), first lines."""
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return ""
    text = error.message.strip()
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


def _user_string(key) -> str:
    return key.to_user_string() if key is not None else "?"


def describe_failed_run(instance: dg.DagsterInstance, run: dg.DagsterRun, failure_event: dg.DagsterEvent | None) -> dict[str, str]:
    """The alert's fields for a failed run, from the run's event log."""
    T = dg.DagsterEventType
    planned: list[str] = []
    materialized: set[str] = set()
    failed_checks: list[str] = []
    step_errors: dict[str, str] = {}
    for record in instance.all_logs(
        run.run_id, of_type={T.ASSET_MATERIALIZATION_PLANNED, T.ASSET_MATERIALIZATION, T.ASSET_CHECK_EVALUATION, T.STEP_FAILURE}
    ):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == T.ASSET_MATERIALIZATION_PLANNED:
            key = _user_string(event.asset_key)
            if key not in planned:
                planned.append(key)
        elif event.event_type == T.ASSET_MATERIALIZATION:
            materialized.add(_user_string(event.asset_key))
        elif event.event_type == T.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                name = f"{_user_string(evaluation.asset_check_key.asset_key)}: {evaluation.check_name}"
                severity = getattr(evaluation, "severity", None)
                if severity is not None and severity != dg.AssetCheckSeverity.ERROR:
                    name += f" ({severity.value})"
                if name not in failed_checks:
                    failed_checks.append(name)
        elif event.event_type == T.STEP_FAILURE:
            data = event.step_failure_data
            message = _root_message(data.error) if data and data.error else (event.message or "")
            if data and data.user_failure_data and data.user_failure_data.description:
                message = data.user_failure_data.description
            step_errors[event.step_key or "?"] = message

    if step_errors:
        error = "\n".join(f"{step}: {msg}" for step, msg in step_errors.items())
    else:  # the run failed outside any step (run worker crash, resource init, cancel timeout)
        job_error = failure_event.job_failure_data.error if failure_event and failure_event.job_failure_data else None
        error = _root_message(job_error) if job_error else (failure_event.message if failure_event else "") or "no error recorded"

    fields = {
        "Run": run_url(run.run_id),
        "Job": run.job_name,
        "Partition": partition_of(run),
        "Assets": ", ".join(planned) or "none",
    }
    not_done = [a for a in planned if a not in materialized]
    if not_done:
        fields["Not materialized"] = ", ".join(not_done)
    if failed_checks:
        fields["Failed checks"] = "\n".join(failed_checks)
    if step_errors:
        fields["Failed steps"] = ", ".join(step_errors)
    fields["Error"] = error
    return fields


def alert_title(run: dg.DagsterRun, fields: dict[str, str]) -> str:
    what = "blocking check failed" if "Failed checks" in fields else "run failed"
    return f"wallet-lake: {what} ({run.job_name}, partition {fields['Partition']})"


@dg.run_failure_sensor(
    name=SENSOR_NAME,
    monitor_all_code_locations=True,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts (webhook WL_ALERT_WEBHOOK_URL + log) for every failed run and failed blocking check, with a link to the run.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext) -> None:
    fields = describe_failed_run(context.instance, context.dagster_run, context.failure_event)
    title = alert_title(context.dagster_run, fields)
    context.log.info(f"alerting: {title} {fields['Run']}")
    send_alert(title, fields)
