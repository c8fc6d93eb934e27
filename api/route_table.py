"""Report requests dispatched by one dict lookup to the route FastAPI itself selected for the same
method and path before.

FastAPI 0.165 matches a request against the app's routes and then against each included
router's routes, saving and restoring its own scope keys around every candidate: for a report,
~0.055 ms of a worker's ~0.9 ms of CPU (docs/benchmarks.md, session 28: bench/api_in_process.py
--b api_variants:route_table_off, higher without the table in 12 of 16 rounds). The table only
replays FastAPI's choice:
- a route served from a plan (api/compiled_route.py) tells the table, while serving a request
  FastAPI routed, which ASGI app FastAPI called for it and what FastAPI's matching put in the
  scope (`ROUTING_KEYS`); only for a path without path parameters, so the choice depends on the
  method and the path alone;
- later requests with the same method, root_path and path get the same scope entries and the
  same app, inside the same middleware and exception handlers (the table sits where the
  router's own stack was);
- anything else (another path, another method, FastAPI's telemetry on) goes through FastAPI's
  routing, as before;
- what was learned is forgotten whenever FastAPI's own count of route changes moves (routes
  added or included through FastAPI's API, in the app or any included router), as FastAPI then
  rebuilds its own route caches. A route list edited in place is seen by neither; `forget()`
  clears the table by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

# Private: the scope key under which FastAPI keeps its routing state (a dict: the included router
# and the route's effective context), and APIRouter._get_routes_version (below).
# wallet_lake_tests/api/test_route_table.py compares the scope a handler sees both ways and adds
# a route after learning, so a FastAPI upgrade that changes either fails there.
from fastapi.routing import _FASTAPI_SCOPE_KEY, APIRouter

# What FastAPI's routing adds to the scope before it calls the selected route's app.
ROUTING_KEYS = ("router", "endpoint", "path_params", "route")
# Set by FastAPI's telemetry when it is on: routing then also reports the route it selected.
_TELEMETRY_KEY = "fastapi.telemetry"


@dataclass(frozen=True)
class _Selected:
    app: ASGIApp
    routing: tuple[tuple[str, Any], ...]  # ROUTING_KEYS' values, path_params excepted
    fastapi: tuple[tuple[str, Any], ...]  # FastAPI's routing state for the route


def _key(scope: Scope) -> tuple[str, str, str]:
    return scope["method"], scope.get("root_path", ""), scope["path"]


class RouteTable:
    """Wraps the router's stack (`routed`): requests whose route is in the table skip FastAPI's
    matching, the others go through it."""

    def __init__(self, router: APIRouter, routed: ASGIApp) -> None:
        self.router = router
        self.routed = routed
        self._selected: dict[tuple[str, str, str], _Selected] = {}
        self._routes_version = router._get_routes_version()

    def __len__(self) -> int:
        return len(self._selected)

    def knows(self, scope: Scope) -> bool:
        return _key(scope) in self._selected

    def learn(self, scope: Scope, app: ASGIApp) -> None:
        """Record FastAPI's choice for this request's method and path: `app` is the ASGI app it
        called with `scope`. Only for a route without path parameters (the caller checks)."""
        if scope.get(_TELEMETRY_KEY) is not None or scope.get("path_params"):
            return
        if not self._selected:  # FastAPI chose among the routes as they are now
            self._routes_version = self.router._get_routes_version()
        self._selected[_key(scope)] = _Selected(
            app=app,
            routing=tuple((k, scope[k]) for k in ROUTING_KEYS if k != "path_params"),
            fastapi=tuple(scope.get(_FASTAPI_SCOPE_KEY, {}).items()),
        )

    def forget(self) -> None:
        self._selected.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._selected:
            version = self.router._get_routes_version()
            if version != self._routes_version:  # routes changed: FastAPI chooses again
                self._selected.clear()
                self._routes_version = version
        selected = self._selected.get(_key(scope)) if scope["type"] == "http" else None
        if selected is None or scope.get(_TELEMETRY_KEY) is not None:
            await self.routed(scope, receive, send)
            return
        for key, value in selected.routing:
            if key == "router":
                scope.setdefault(key, value)  # the outermost router's, as Router.app sets it
            else:
                scope[key] = value
        scope["path_params"] = {}
        scope.setdefault(_FASTAPI_SCOPE_KEY, {}).update(selected.fastapi)
        await selected.app(scope, receive, send)


def install(app: Any) -> RouteTable:
    """Put a table in front of the app router's matching; kept in app.state.route_table, where
    routes served from a plan find it."""
    table = RouteTable(app.router, app.router.middleware_stack)
    app.router.middleware_stack = table
    app.state.route_table = table
    return table
