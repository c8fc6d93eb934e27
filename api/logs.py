"""Structured JSON logs on stdout, one object per line, for structlog and stdlib loggers alike
(uvicorn, psycopg_pool), so one parser reads everything the process writes."""

from __future__ import annotations

import logging
import sys

import structlog

_HANDLER_NAME = "wallet-lake-api-json"

_SHARED = [
    structlog.contextvars.merge_contextvars,  # request_id bound by the request middleware
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(level: int = logging.INFO) -> None:
    """Idempotent: create_app() may run several times in one process (tests)."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached, so structlog.testing.capture_logs() sees loggers created at import time.
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    if not any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=_SHARED,
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(),
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
