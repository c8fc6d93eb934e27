"""Structured JSON logs on stdout, one object per line, for structlog and stdlib loggers alike
(uvicorn, asyncpg), so one parser reads everything the process writes.

The API's own loggers (structlog.get_logger(logger_name="api.x")) render straight to bytes with
orjson: the access line is written for every request, and going through stdlib logging cost
about 0.15 ms of CPU per request. Libraries' stdlib records take the stdlib route, rendered by
the same processors."""

from __future__ import annotations

import logging
import sys

import orjson
import structlog

_HANDLER_NAME = "wallet-lake-api-json"

_SHARED = [
    structlog.contextvars.merge_contextvars,  # request_id bound by the request middleware
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _logger_key(_logger: object, _method: str, event: dict) -> dict:
    """`logger`, the key stdlib records get from add_logger_name (get_logger cannot take it)."""
    if "logger_name" in event:
        event["logger"] = event.pop("logger_name")
    return event


def _orjson_str(obj, **_: object) -> str:
    return orjson.dumps(obj, default=str).decode()


# One list for the process's life, edited in place: a logger bound once (the access log,
# api/middleware.py) keeps seeing the current processors, as structlog.testing.capture_logs()
# expects when it edits them.
_PROCESSORS: list = []


def configure_logging(level: int = logging.INFO) -> None:
    """Idempotent: create_app() may run several times in one process (tests)."""
    _PROCESSORS[:] = [
        *_SHARED,
        _logger_key,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(serializer=lambda obj, **_: orjson.dumps(obj, default=str)),
    ]
    structlog.configure(
        processors=_PROCESSORS,
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Not cached, so structlog.testing.capture_logs() sees loggers created at import time.
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    if not any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=[*_SHARED, structlog.stdlib.add_logger_name],
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(serializer=_orjson_str),
                ],
            )
        )
        root.addHandler(handler)
    root.setLevel(level)
    # uvicorn installs its own plain-text handlers; route its messages through the JSON handler,
    # and drop its access log: the request middleware writes the one line per request.
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
