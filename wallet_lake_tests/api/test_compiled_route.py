"""Report routes served from a plan of their dependencies (api/compiled_route.py): the plan is
used for valid requests, and every answer, valid or not, equals the one FastAPI's own handler
gives for the same request (status, headers and problem document, in the same order of checks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import fastapi.routing
import pytest
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import AliasChoices

from api.compiled_route import CompiledRoute, compile_plan

from .conftest import ALL_MERCHANTS_KEY, SCOPED_KEY, create_offline_app

OTHER_KEY = "wlk_0123456789abcdef_" + "A" * 43  # well formed, unknown

# (path, query, key): valid requests (a 503 offline, after every check), and each kind of
# rejection, alone and together, where the order of the checks decides the answer.
REQUESTS = [
    ("/reports/daily-recon", {"date": "2026-11-24"}, ALL_MERCHANTS_KEY),
    ("/reports/daily-recon", {"date": "2026-11-24", "merchant": "m_1"}, SCOPED_KEY),
    ("/reports/daily-recon", {"date": "2026-11-24", "merchant": "m_1", "format": "csv"}, SCOPED_KEY),
    ("/reports/daily-recon", {"date": "2026-11-24", "source": "lake"}, ALL_MERCHANTS_KEY),
    ("/reports/daily-recon", {}, ALL_MERCHANTS_KEY),
    ("/reports/daily-recon", {"date": "bad"}, ALL_MERCHANTS_KEY),
    ("/reports/daily-recon", {"date": "2026-02-30"}, ALL_MERCHANTS_KEY),
    ("/reports/daily-recon", {"date": "2026-11-24", "merchnat": "m_1"}, ALL_MERCHANTS_KEY),
    ("/reports/daily-recon", {"date": "2026-11-24", "merchnat": "m_1"}, None),
    ("/reports/daily-recon", {"date": "2026-11-24", "merchant": "m_9", "merchnat": "m_1"}, SCOPED_KEY),
    ("/reports/daily-recon", [("date", "2026-11-24"), ("date", "2026-11-25")], ALL_MERCHANTS_KEY),
    ("/reports/daily-recon", {"date": "2026-11-24", "merchant": "m_9"}, SCOPED_KEY),
    ("/reports/daily-recon", {"date": "2026-11-24"}, SCOPED_KEY),
    ("/reports/daily-recon", {"date": "2026-11-24", "merchant": "m_9", "format": "xml"}, SCOPED_KEY),
    ("/reports/daily-recon", {"date": "bad", "merchant": "m_9"}, SCOPED_KEY),
    ("/reports/daily-recon", {"date": "2026-11-24", "merchant": "has space"}, ALL_MERCHANTS_KEY),
    ("/reports/daily-recon", {"date": "2026-11-24"}, None),
    ("/reports/daily-recon", {"date": "2026-11-24"}, OTHER_KEY),
    ("/reports/daily-recon", {"date": "bad"}, OTHER_KEY),
    ("/reports/refund-rate", {"from": "2026-11-01", "to": "2026-11-30"}, ALL_MERCHANTS_KEY),
    ("/reports/refund-rate", {"from": "2026-11-30", "to": "2026-11-01"}, ALL_MERCHANTS_KEY),
    ("/reports/refund-rate", {"from": "2024-01-01", "to": "2026-11-01"}, ALL_MERCHANTS_KEY),
    ("/reports/refund-rate", {"from": "2026-10-01", "to": "2026-11-30", "source": "lake"}, ALL_MERCHANTS_KEY),
    ("/reports/refund-rate", {"to": "2026-11-30"}, ALL_MERCHANTS_KEY),
    ("/reports/refund-rate", {"from": "bad", "to": "2026-11-30", "merchant": "m_9"}, SCOPED_KEY),
    ("/reports/refund-rate", {"from": "2026-11-30", "to": "2026-11-01", "merchant": "m_9"}, SCOPED_KEY),
    ("/reports/latency", {"from": "2026-11-01", "to": "2026-11-30"}, SCOPED_KEY),
    ("/reports/latency", {"from": "2026-11-01", "to": "2026-11-30", "payment_method": "card"}, ALL_MERCHANTS_KEY),
    ("/reports/latency", {"from": "2026-11-01", "to": "2026-11-30", "payment_method": "Card!"}, ALL_MERCHANTS_KEY),
    ("/reports/latency", {"from": "2026-11-01", "to": "2026-11-30", "merchant": "m_1"}, ALL_MERCHANTS_KEY),
    ("/reports/declines", {"from": "2026-11-01", "to": "2026-11-30", "merchant": "m_2"}, SCOPED_KEY),
    ("/reports/declines", {"from": "2026-11-01", "to": "2026-11-30", "format": "csv"}, ALL_MERCHANTS_KEY),
    ("/reports/pipeline-recon", {"date": "2026-11-24"}, ALL_MERCHANTS_KEY),
    ("/reports/pipeline-recon", {"date": "2026-11-24"}, SCOPED_KEY),
    ("/reports/pipeline-recon", {"date": "bad"}, SCOPED_KEY),
]


def _answer(client: TestClient, path: str, query, key: str | None, n: int) -> tuple[int, dict, bytes]:
    headers = {"X-Request-ID": f"req-{n}"}  # fixed, so that problem documents compare whole
    if key is not None:
        headers["X-API-Key"] = key
    r = client.get(path, params=query, headers=headers)
    return r.status_code, dict(r.headers), r.content


@contextmanager
def counted_fastapi_solves() -> Iterator[list[int]]:
    """How often FastAPI's own dependency solving ran (its handler's module-level name)."""
    calls = [0]
    original = fastapi.routing.solve_dependencies

    async def counting(*args, **kwargs):
        calls[0] += 1
        return await original(*args, **kwargs)

    fastapi.routing.solve_dependencies = counting
    try:
        yield calls
    finally:
        fastapi.routing.solve_dependencies = original


def test_every_report_route_has_a_plan() -> None:
    from api.routes import reports

    assert reports.router.routes
    for route in reports.router.routes:
        assert isinstance(route, CompiledRoute)
        assert compile_plan(route.dependant) is not None, route.path


def test_answers_equal_fastapis_own_handler_and_valid_requests_use_the_plan(monkeypatch) -> None:
    compiled = TestClient(create_offline_app())
    ours = []
    for n, (path, query, key) in enumerate(REQUESTS):
        with counted_fastapi_solves() as solves:
            ours.append(_answer(compiled, path, query, key, n))
        if ours[-1][0] == 503:  # past every check: served from the plan alone
            assert solves[0] == 0, (path, query)
    plain_app = create_offline_app()
    with monkeypatch.context() as m:
        # Handlers are built at an app's first request: this app's are FastAPI's own.
        m.setattr(CompiledRoute, "get_route_handler", APIRoute.get_route_handler)
        plain = TestClient(plain_app)
        plain.get("/healthz")
        with counted_fastapi_solves() as plain_solves:
            theirs = [_answer(plain, path, query, key, n) for n, (path, query, key) in enumerate(REQUESTS)]
    assert plain_solves[0] == len(REQUESTS)  # the comparison really ran FastAPI's handler
    for request, a, b in zip(REQUESTS, ours, theirs):
        assert a == b, request
    statuses = [status for status, _, _ in ours]
    assert {400, 401, 403, 422, 503} <= set(statuses)  # the corpus reaches every kind of answer
    assert statuses.count(503) >= 8


# A small app of its own, at module level: FastAPI resolves these annotations from the module.
CALLS = {"who": 0}


async def who(request: Request) -> str:
    CALLS["who"] += 1
    return request.query_params.get("who", "nobody")


async def greeting(name: Annotated[str, Depends(who)], punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


def sync_dependency() -> str:
    return "sync"


async def real() -> str:
    return "real"


async def fake() -> str:
    return "fake"


router = fastapi.APIRouter(route_class=CompiledRoute)


@router.get("/planned")
async def planned(name: Annotated[str, Depends(who)], text: Annotated[str, Depends(greeting)]) -> Response:
    return Response(f"{name}: {text}")


@router.get("/with-header")
async def with_header(x_thing: Annotated[str, Header()]) -> Response:
    return Response(x_thing)


@router.get("/with-sync-dependency")
async def with_sync(value: Annotated[str, Depends(sync_dependency)]) -> Response:
    return Response(value)


@router.get("/returns-a-dict")
async def returns_a_dict() -> dict:
    return {"ok": True}


@router.get("/alias-choices")
async def alias_choices(v: Annotated[str, Query(validation_alias=AliasChoices("a", "b"))]) -> Response:
    return Response(v)


@router.get("/value")
async def value(v: Annotated[str, Depends(real)]) -> Response:
    return Response(v)


def small_app() -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    return app


def test_a_dependency_runs_once_per_request_and_unsupported_routes_keep_fastapis_handler() -> None:
    client = TestClient(small_app())
    with counted_fastapi_solves() as solves:
        before = CALLS["who"]
        r = client.get("/planned", params={"who": "ada", "punctuation": "?"})
        assert (r.status_code, r.text) == (200, "ada: hello ada?")
        assert CALLS["who"] == before + 1  # `who` serves both the endpoint and `greeting`
        assert solves[0] == 0
        r = client.get("/planned", params=[("punctuation", "?")])
        assert (r.status_code, r.text) == (200, "nobody: hello nobody?")
        assert client.get("/with-header", headers={"x-thing": "t"}).text == "t"
        assert client.get("/with-sync-dependency").text == "sync"
        assert client.get("/returns-a-dict").json() == {"ok": True}
        assert client.get("/alias-choices", params={"b": "by b"}).text == "by b"
        assert solves[0] == 4  # the four routes outside the plan, through FastAPI's handler
    assert client.get("/with-header").status_code == 422
    plans = {r.path: compile_plan(r.dependant) for r in router.routes}
    assert plans["/planned"] is not None and plans["/value"] is not None
    assert plans["/with-header"] is None and plans["/with-sync-dependency"] is None and plans["/returns-a-dict"] is None
    assert plans["/alias-choices"] is None


@pytest.mark.parametrize("overridden", [False, True])
def test_a_dependency_override_is_honoured(overridden: bool) -> None:
    # Overrides (tests use them) are FastAPI's to apply: with one in place, FastAPI's handler serves.
    app = small_app()
    if overridden:
        app.dependency_overrides[real] = fake
    assert TestClient(app).get("/value").text == ("fake" if overridden else "real")
