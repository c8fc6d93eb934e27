"""A FastAPI route class whose dependencies are solved from a plan made once per route.

FastAPI walks a route's dependency tree on every request: for each dependency it builds the
same lists again, looks at every kind of parameter (path, query, header, cookie) and checks
what kind of callable it is. For a report request that was about a fifth of the API's samples
under py-spy (docs/benchmarks.md, session 24). `CompiledRoute` makes that walk once, when the
route is built, from the route's own Dependant, so parameters and dependencies stay declared
once, where FastAPI reads them for the OpenAPI document and the problem documents.

The plan covers routes whose dependencies are async functions taking single-valued query
parameters, the Request and other such dependencies, and whose endpoint returns a Response.
Any other route keeps FastAPI's handler. Per request:
1. every query parameter of the tree is validated, as FastAPI's request_params_to_args does for
   a single-valued parameter: the request's value by the parameter's alias, through the
   parameter's own validator (FastAPI's ModelField), or its default when absent. That is pure,
   nothing has run yet;
2. any validation error, or a dependency override in place (tests), hands the request to
   FastAPI's handler, which answers it exactly as before: the same 400 and 422 problem
   documents, the dependencies run in the same order;
3. otherwise the dependencies run in FastAPI's order (depth first, each once per request, as its
   dependency cache does), then the endpoint. FastAPI would make the same calls with the same
   values, since no validation can fail any more."""

from __future__ import annotations

import copy
import inspect
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi._compat.shared import field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, Json
from starlette.requests import Request
from starlette.responses import Response

# Private: FastAPI builds an included route's handler with this variable naming the route as
# included (the app's and the router's dependencies added to its own), and APIRoute's
# get_route_handler reads it the same way. wallet_lake_tests/api/test_compiled_route.py fails if
# a FastAPI upgrade changes it.
from fastapi.routing import _effective_route_context_var


@dataclass(frozen=True)
class _Step:
    """One dependency of the plan: its callable, the parameter of its parent it fills, and
    its own arguments (sub-steps, query fields, the request)."""

    call: Callable[..., Awaitable[Any]]
    name: str | None
    use_cache: bool
    cache_key: tuple[Any, str]  # FastAPI's, for a dependency without security scopes
    subs: tuple[_Step, ...]
    query: tuple[str, ...]
    request_param: str | None


@dataclass(frozen=True)
class _Query:
    """A single-valued query parameter: FastAPI's ModelField, the request's key, its default."""

    field: Any
    alias: str
    required: bool
    default: Any
    copy_default: bool  # FastAPI hands each request a deep copy of a mutable default

    def value(self, given: str | None) -> tuple[Any, bool]:
        """(value, valid) of the parameter for the request's value (None: absent)."""
        if given is None:
            if self.required:
                return None, False
            return (copy.deepcopy(self.default) if self.copy_default else self.default), True
        value, errors = self.field.validate(given, {}, loc=("query", self.alias))
        return value, not errors


@dataclass(frozen=True)
class Plan:
    root: _Step
    query: tuple[_Query, ...]  # every query parameter of the tree

    def values(self, request: Request) -> dict[str, Any] | None:
        """Every query parameter's value, or None when one is missing or invalid."""
        given = request.query_params
        values = {}
        for q in self.query:
            value, valid = q.value(given.get(q.alias))
            if not valid:
                return None
            values[q.field.name] = value
        return values


_IMMUTABLE = (type(None), str, int, float, bool, bytes)


def _query(field: Any) -> _Query | None:
    info = field.field_info
    config = field.config or {}
    # One request key, the alias: no alias choices, no lookup by name beside it.
    one_key = (info.validation_alias in (None, field.alias) and config.get("validate_by_alias") is not False
               and not config.get("validate_by_name", config.get("populate_by_name", False)))
    if (not one_key or field_annotation_is_sequence(info.annotation) or info.validate_default
            or (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel))
            or any(type(m) is Json for m in info.metadata)):
        return None
    required = info.is_required()
    default = None if required else field.default
    return _Query(field, field.alias, required, default, not isinstance(default, _IMMUTABLE))


def _step(dependant: Dependant, fields: list[Any]) -> _Step | None:
    """The plan of a dependant, adding its query parameters (and its dependencies') to `fields`."""
    d = dependant
    if (d.path_params or d.header_params or d.cookie_params or d.body_params or d.websocket_param_name
            or d.http_connection_param_name or d.response_param_name or d.background_tasks_param_name
            or d.security_scopes_param_name or d.own_oauth_scopes or d.concurrency is not None
            or not inspect.iscoroutinefunction(d.call) or isinstance(d.call, SecurityBase)):
        return None
    query = []
    for field in d.query_params:
        if any(f.name == field.name for f in fields):  # twice in the tree: values could not be told apart
            return None
        fields.append(field)
        query.append(field.name)
    subs = []
    for sub in d.dependencies:
        step = _step(sub, fields)
        if step is None:
            return None
        subs.append(step)
    return _Step(d.call, d.name, d.use_cache, (d.call, d.scope or ""), tuple(subs), tuple(query), d.request_param_name)


def compile_plan(dependant: Dependant) -> Plan | None:
    """The plan of a route's dependant, or None when it uses what the plan does not cover."""
    try:
        returns = typing.get_type_hints(dependant.call).get("return")
    except Exception:  # an annotation that does not resolve: leave the route to FastAPI
        return None
    if not (isinstance(returns, type) and issubclass(returns, Response)):
        return None
    fields: list[Any] = []
    root = _step(dependant, fields)
    query = [_query(f) for f in fields]
    return None if root is None or None in query else Plan(root, tuple(query))


async def _solve(step: _Step, request: Request, values: dict[str, Any], cache: dict[Any, Any]) -> dict[str, Any]:
    """The arguments of `step.call`, running its dependencies first, in FastAPI's order."""
    kwargs: dict[str, Any] = {}
    for sub in step.subs:
        # As FastAPI: a dependency's own arguments are solved before its cached value is looked up.
        sub_kwargs = await _solve(sub, request, values, cache)
        if sub.use_cache and sub.cache_key in cache:
            solved = cache[sub.cache_key]
        else:
            solved = await sub.call(**sub_kwargs)
        if sub.name is not None:
            kwargs[sub.name] = solved
        cache.setdefault(sub.cache_key, solved)
    for name in step.query:
        kwargs[name] = values[name]
    if step.request_param is not None:
        kwargs[step.request_param] = request
    return kwargs


class CompiledRoute(APIRoute):
    """An APIRoute that serves valid requests from its plan (module docstring); `plan` is None
    for a route the plan does not cover, which FastAPI's handler then serves alone."""

    plan: Plan | None = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        fastapi_handler = super().get_route_handler()
        effective = _effective_route_context_var.get()
        route = effective if effective is not None and effective.original_route is self else self
        plan = compile_plan(route.dependant)
        self.plan = plan
        if plan is None:
            return fastapi_handler
        overrides = route.dependency_overrides_provider
        # For a path without parameters, api/route_table.py is told which ASGI app FastAPI built
        # around this handler (route.app, set once the handler is returned), so later requests
        # for the same path skip FastAPI's matching.
        learns = not route.param_convertors

        async def handler(request: Request) -> Response:
            if learns:
                table = getattr(request.app.state, "route_table", None)
                if table is not None and not table.knows(request.scope):
                    table.learn(request.scope, route.app)
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return await fastapi_handler(request)
            values = plan.values(request)
            if values is None:
                return await fastapi_handler(request)
            response = await plan.root.call(**await _solve(plan.root, request, values, {}))
            if not isinstance(response, Response):  # the plan covers endpoints declared to return one
                raise TypeError(f"{plan.root.call.__qualname__} returned {type(response).__name__}, not a Response")
            return response

        return handler
