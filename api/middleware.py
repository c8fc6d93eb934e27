"""Request id, access log and last-resort error handling, as one pure ASGI middleware.

It is the outermost layer the app adds, so the access line and the X-Request-ID header cover
every response, including the 500 it writes itself for an unexpected exception (Starlette's
handler for Exception sits outside user middleware and would bypass both)."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import ApiMetrics
from api.problems import internal_error_response

REQUEST_ID_HEADER = "X-Request-ID"
# Caller-supplied ids are echoed into headers and logs: accept only short, plain tokens
# (UUIDs, ULIDs, trace ids); anything else is replaced by a fresh id.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:;=/+-]{1,128}$")

access_log = structlog.get_logger(logger_name="api.access")
error_log = structlog.get_logger(logger_name="api.error")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics
        # Bound once: the module's lazy logger binds itself again on every call (a third of the
        # access line's cost); its processors are the configured ones (api/logs.py).
        self.access_log = access_log.bind()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status: int | None = None

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        # Bound for every log line written while serving the request (handlers, dependencies).
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_request_id)
            except Exception:
                error_log.exception(
                    "unhandled exception", method=scope["method"], path=scope["path"], request_id=request_id
                )
                if status is not None:
                    raise  # headers already sent: nothing left but to let the server abort
                await internal_error_response(request_id)(scope, receive, send_with_request_id)
            finally:
                elapsed = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", None)
                if self.metrics is not None:
                    self.metrics.observe(scope["method"], route, status or 500, elapsed)
                self.access_log.info(
                    "request",
                    method=scope["method"],
                    # The route template keeps log cardinality low; the raw path is for 404s.
                    route=route,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 3),
                    request_id=request_id,  # explicit too: the access line must never lack it
                    # Which API key asked (its public id, never the key), once authenticated.
                    key_id=scope["state"].get("key_id"),
                )
