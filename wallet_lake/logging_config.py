"""Structured JSON logs of the pipeline: one JSON object per line with the run id, job, step,
partition and Dagster event type of every message a run writes (context.log, Dagster's own
events, and the `wallet_lake.*` stdlib loggers that dagster.yaml's python_logs hands to runs).

dagster.yaml installs `pipeline_log_handler` as a python_logs handler of the instance, so every
run of the code location writes these lines however it was launched (daemon, UI, CLI, tests).
It appends to WL_PIPELINE_LOG_FILE, default $WL_STACK_DIR/logs/pipeline.jsonl, or writes to
stderr when neither is set. Every message goes through the secret redactor."""

from __future__ import annotations

import logging
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

from wallet_lake.partitions import partition_label
from wallet_lake.security.secrets import redact

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_handlers: dict[str, logging.Handler] = {}
_handlers_lock = threading.Lock()


def pipeline_log_path() -> Path | None:
    from wallet_lake.settings import OpsSettings, load

    ops = load(OpsSettings)
    if ops.pipeline_log_file:
        return Path(ops.pipeline_log_file)
    if ops.stack_dir:
        return Path(ops.stack_dir) / "logs" / "pipeline.jsonl"
    return None


class PipelineJsonFormatter(JsonFormatter):
    """JSON line per record: timestamp, level, logger, message, and the Dagster context
    (run_id, job, step_key, partition, event_type) when the record comes from a run."""

    def __init__(self) -> None:
        super().__init__(json_default=str)

    def add_fields(self, log_record: dict, record: logging.LogRecord, message_dict: dict) -> None:
        meta = getattr(record, "dagster_meta", None)
        log_record["timestamp"] = datetime.fromtimestamp(record.created, timezone.utc).isoformat()
        log_record["level"] = record.levelname
        log_record["logger"] = record.name
        if isinstance(meta, dict):
            log_record["message"] = redact(str(meta.get("orig_message") or record.getMessage()))
            log_record["run_id"] = meta.get("run_id")
            log_record["job"] = meta.get("job_name")
            if meta.get("step_key"):
                log_record["step_key"] = meta["step_key"]
            tags = meta.get("job_tags") or {}
            partition = partition_label(tags)
            if partition:
                log_record["partition"] = partition
            event = meta.get("dagster_event")
            if event is not None:
                log_record["event_type"] = event.event_type.name
                if getattr(event, "asset_key", None) is not None:
                    log_record["asset"] = event.asset_key.to_user_string()
        else:
            log_record["message"] = redact(record.getMessage())
        for k, v in record.__dict__.items():  # extra=... fields of the caller
            # dagster_* attributes are Dagster's own (the event object, already summarized above).
            if k not in _STANDARD and not k.startswith(("dagster_", "_")):
                log_record[k] = v if isinstance(v, (int, float, bool)) or v is None else redact(str(v)) if not isinstance(v, dict) else {
                    kk: redact(str(vv)) for kk, vv in v.items()
                }
        if record.exc_info:
            log_record["exc_info"] = redact(self.formatException(record.exc_info))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of each record (test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def pipeline_log_handler(path: str | Path | None = None) -> logging.Handler:
    """The JSON lines handler (a logging dictConfig factory). One per destination and process:
    Dagster rebuilds the instance's handlers for every run and step."""
    path = Path(path) if path else pipeline_log_path()
    name = str(path) if path else "<stderr>"
    with _handlers_lock:
        handler = _handlers.get(name)
        if handler is None:
            if path is None:
                handler = _StderrHandler()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                handler = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
            handler.setFormatter(PipelineJsonFormatter())
            _handlers[name] = handler
        return handler
