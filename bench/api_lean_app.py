"""A measurement, not the API: what the four reports cost a worker without FastAPI's routing,
dependencies and parameter validation (bench/api_open_loop.py --app api_lean_app:app).

It answers the benchmark mix's valid requests as api.main:app does, through the same pieces:
the API-key check (api.auth.verify behind CachedKeyStore), the pool (api.db), one statement per
report with kept answers (api/reports/source.py) and kept latency histograms, the report runners and their pydantic
answers. It leaves out what the real app adds around them: the 400/422 problem documents for
malformed or unknown parameters, merchant scopes (403), rate limits, CSV, source=lake, the
OpenAPI document. `app_logged` adds the API's request middleware (request id, the access line,
the request metrics), so the two tell apart what the middleware costs and what FastAPI does.
`app_no_database` is the floor: no Postgres, no key check, a fixed answer.

Never served: a malformed request here is a 500, not a problem document."""

from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import parse_qsl

from api.auth import CachedKeyStore, PostgresKeyStore, verify
from api.db import Database
from api.logs import configure_logging
from api.metrics import ApiMetrics
from api.middleware import RequestContextMiddleware
from api.reports import daily_recon, declines, latency, refund_rate
from api.reports.answer_cache import AnswerCache
from api.reports.kept_histograms import KeptHistograms
from api.reports.source import postgres_fetch
from api.settings import load_settings

_state: dict = {}
_metrics = ApiMetrics()
_date = dt.date.fromisoformat


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            settings = load_settings()
            database = Database()
            await database.open(settings, wait=True)
            _state.update(database=database, answers=AnswerCache(settings.api_answer_cache_rows),
                          histograms=KeptHistograms(settings.api_kept_histogram_days),
                          keys=CachedKeyStore(PostgresKeyStore(database), ttl_s=settings.api_key_cache_ttl_s,
                                              negative_ttl_s=settings.api_key_negative_cache_ttl_s))
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await _state["database"].close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _report(name: str, query: dict[str, str]) -> bytes:
    async with _state["database"].connection() as conn:
        fetch = postgres_fetch(conn, _state["answers"], _metrics.count_answer, _state["histograms"])
        if name == "daily-recon":
            answer = await daily_recon.run(fetch, report_date=_date(query["date"]), merchant_id=query.get("merchant"))
        elif name == "latency":
            answer = await latency.run(fetch, date_from=_date(query["from"]), date_to=_date(query["to"]),
                                       payment_method=query.get("payment_method"))
        else:
            runner = {"refund-rate": refund_rate, "declines": declines}[name]
            answer = await runner.run(fetch, date_from=_date(query["from"]), date_to=_date(query["to"]),
                                      merchant_id=query.get("merchant"))
    return answer.model_dump_json(by_alias=True).encode()


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    path, status, media_type, body = scope["path"], 200, b"application/json", b"{}"
    if path.startswith("/reports/"):
        presented = next((v for k, v in scope["headers"] if k == b"x-api-key"), b"").decode()
        if await verify(_state["keys"], presented) is None:
            status = 401
        else:
            body = await _report(path.removeprefix("/reports/"), dict(parse_qsl(scope["query_string"].decode())))
    elif path == "/metrics":  # the benchmark reads the kept-answer counts here
        media_type, body = b"text/plain", _metrics.exposition()
    elif path != "/readyz":
        status = 404
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", media_type), (b"content-length", str(len(body)).encode()),
        (b"x-request-id", uuid.uuid4().hex.encode())]})
    await send({"type": "http.response.body", "body": body})


_FIXED = b'{"answer": "' + b"x" * 600 + b'"}'  # 614 bytes, whatever the request


async def app_no_database(scope, receive, send) -> None:
    """The floor: every request answered with a fixed body, no key check, no Postgres, no
    shaping. What uvicorn's HTTP path and the load driver cost on this machine at a rate."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b"" if scope["path"] == "/metrics" else _FIXED  # no kept answers to count
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


configure_logging()
app_logged = RequestContextMiddleware(app, metrics=_metrics)
