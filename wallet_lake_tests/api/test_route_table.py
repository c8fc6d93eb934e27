"""Report requests dispatched from the table of FastAPI's own route choices (api/route_table.py):
every answer equals the one FastAPI's routing gives, the handler sees the same scope either way,
and only what was learned skips FastAPI's matching."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient

from api import route_table
from api.compiled_route import CompiledRoute
from api.route_table import ROUTING_KEYS, RouteTable

from .conftest import create_offline_app
from .test_compiled_route import REQUESTS, _answer


def _counted(table: RouteTable) -> list[str]:
    """The paths the table handed to FastAPI's routing."""
    routed, seen = table.routed, []

    async def counting(scope, receive, send):
        seen.append(scope["path"])
        await routed(scope, receive, send)

    table.routed = counting
    return seen


def test_answers_equal_fastapis_routing_and_learned_paths_skip_it() -> None:
    app = create_offline_app()
    table = app.state.route_table
    routed = _counted(table)
    client = TestClient(app)
    plain_app = create_offline_app()
    plain_app.router.middleware_stack = plain_app.state.route_table.routed  # FastAPI's routing alone
    plain = TestClient(plain_app)
    theirs = [_answer(plain, path, query, key, n) for n, (path, query, key) in enumerate(REQUESTS)]
    first = [_answer(client, path, query, key, n) for n, (path, query, key) in enumerate(REQUESTS)]
    paths = {path for path, _, _ in REQUESTS}
    assert len(table) == len(paths)  # one entry per (GET, path), learned while FastAPI routed
    assert set(routed) == paths
    routed.clear()
    again = [_answer(client, path, query, key, n) for n, (path, query, key) in enumerate(REQUESTS)]
    assert routed == []  # every request of the second pass came from the table
    for request, a, b, c in zip(REQUESTS, first, again, theirs):
        assert a == c, request
        assert b == c, request
    assert {400, 401, 403, 422, 503} <= {status for status, _, _ in again}


def test_other_methods_and_paths_go_through_fastapis_routing() -> None:
    app = create_offline_app()
    table = app.state.route_table
    routed = _counted(table)
    client = TestClient(app)
    assert client.get("/reports/daily-recon", params={"date": "bad"}).status_code == 401  # learned (no key)
    assert len(table) == 1
    for method in ("POST", "PUT", "DELETE"):
        assert client.request(method, "/reports/daily-recon").status_code == 405
    assert client.get("/reports/no-such-report").status_code == 404
    assert client.get("/healthz").status_code == 200
    assert len(table) == 1  # none of those was learned: only report routes served from a plan learn
    assert routed == ["/reports/daily-recon", "/reports/daily-recon", "/reports/daily-recon",
                      "/reports/daily-recon", "/reports/no-such-report", "/healthz"]
    table.forget()
    assert len(table) == 0


SEEN: list[dict] = []


async def record(request: Request) -> Response:
    scope = request.scope
    SEEN.append({**{k: scope[k] for k in ROUTING_KEYS}, "fastapi": dict(scope[route_table._FASTAPI_SCOPE_KEY]),
                 "keys": frozenset(scope)})
    return Response("ok")


async def with_param(name: str) -> Response:
    return Response(name)


def test_the_handler_sees_the_scope_fastapis_routing_makes() -> None:
    """What FastAPI's matching puts in the scope, replayed by the table: if an upgrade of FastAPI
    sets more or other keys, this fails."""
    router = APIRouter(prefix="/r", route_class=CompiledRoute)
    router.add_api_route("/plain", record, methods=["GET"])
    router.add_api_route("/named/{name}", with_param, methods=["GET"])
    app = FastAPI()
    app.include_router(router)
    table = route_table.install(app)
    routed = _counted(table)
    client = TestClient(app)
    SEEN.clear()
    assert client.get("/r/plain").text == "ok"
    assert client.get("/r/plain").text == "ok"
    assert routed == ["/r/plain"]
    routed_scope, table_scope = SEEN
    # Every key of the scope, whoever set it: a key FastAPI's matching sets that the table does not is missed here.
    assert routed_scope["keys"] == table_scope["keys"]
    for key, value in routed_scope.items():
        if key in ("path_params", "fastapi", "keys"):
            assert value == table_scope[key], key
        else:
            assert value is table_scope[key], key
    assert routed_scope["route"].path == "/r/plain"
    # A path parameter: no plan, so FastAPI's handler serves it and nothing is learned.
    assert client.get("/r/named/x").text == "x" and client.get("/r/named/y").text == "y"
    assert len(table) == 1 and routed[1:] == ["/r/named/x", "/r/named/y"]


def test_what_was_learned_is_forgotten_when_routes_change() -> None:
    """FastAPI rebuilds its route caches when routes are added through its API; the table then
    lets FastAPI choose again."""
    app = create_offline_app()
    table = app.state.route_table
    routed = _counted(table)
    client = TestClient(app)
    for _ in range(2):
        assert client.get("/reports/daily-recon", params={"date": "bad"}).status_code == 401
    assert routed == ["/reports/daily-recon"] and len(table) == 1

    async def extra() -> Response:
        return Response("extra")

    app.router.add_api_route("/extra", extra, methods=["GET"])
    for _ in range(2):
        assert client.get("/reports/daily-recon", params={"date": "bad"}).status_code == 401
    assert routed == ["/reports/daily-recon", "/reports/daily-recon"] and len(table) == 1
    assert client.get("/extra").text == "extra"
