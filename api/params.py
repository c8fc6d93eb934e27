"""Query parameter rules shared by all routes: declared forms, and rejection of parameters a
route does not declare (a typo such as `merchnat=` must not silently widen or change a report).

A parameter's accepted form is declared once, next to the parameter (`query()`), and shows in
both the OpenAPI description and the problem body of a rejected request."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

from fastapi import Query, Request
from fastapi.dependencies.models import Dependant
from pydantic import BaseModel

ACCEPTED_KEY = "x-accepted-form"


def query(description: str, accepted: str, **kwargs: Any) -> Any:
    """fastapi.Query whose description ends with the accepted form, also kept machine-readable
    for validation problems."""
    return Query(
        description=f"{description} Accepted: {accepted}.",
        json_schema_extra={ACCEPTED_KEY: accepted},
        **kwargs,
    )


class UnknownQueryParameters(Exception):
    """The request has query parameters the route does not declare, or repeats a single-valued one."""

    def __init__(self, unknown: list[str], repeated: list[str], declared: list[str]) -> None:
        super().__init__(f"unknown: {unknown}, repeated: {repeated}")
        self.unknown = unknown
        self.repeated = repeated
        self.declared = declared


def _query_fields(dependant: Dependant) -> Iterator[tuple[str, Any]]:
    """(name, FieldInfo) of every query parameter of a route, its sub-dependencies included."""
    stack = [dependant]
    while stack:
        d = stack.pop()
        for field in d.query_params:
            info = field.field_info
            ann = info.annotation
            # A Pydantic query-parameter model is one FastAPI param; its fields are the real names.
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                for name, sub in ann.model_fields.items():
                    yield sub.alias or name, sub
            else:
                yield field.alias, info
        stack.extend(d.dependencies)


# Per route (its dependant never changes once built): walking the dependency tree on every
# request costs more than the rest of the check.
_FIELDS_BY_DEPENDANT: dict[int, tuple[Dependant, dict[str, Any]]] = {}


def _route_query_fields(request: Request) -> dict[str, Any]:
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return {}
    cached = _FIELDS_BY_DEPENDANT.get(id(dependant))
    if cached is None or cached[0] is not dependant:
        cached = (dependant, dict(_query_fields(dependant)))
        _FIELDS_BY_DEPENDANT[id(dependant)] = cached
    return cached[1]


def _is_multi_valued(info: Any) -> bool:
    origin = typing.get_origin(info.annotation)
    return origin in (list, set, frozenset, tuple)


def accepted_forms(request: Request) -> dict[str, str]:
    """{parameter: accepted form} for the route that served the request."""
    out = {}
    for name, info in _route_query_fields(request).items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if ACCEPTED_KEY in extra:
            out[name] = str(extra[ACCEPTED_KEY])
    return out


async def reject_unknown_query_params(request: Request) -> None:
    """App-wide dependency. FastAPI solves it before validating parameters, so unknown names are
    reported (400) ahead of malformed values (422)."""
    fields = _route_query_fields(request)
    given = request.query_params
    unknown = sorted(k for k in set(given.keys()) if k not in fields)
    repeated = sorted(
        k for k in set(given.keys()) if k in fields and len(given.getlist(k)) > 1 and not _is_multi_valued(fields[k])
    )
    if unknown or repeated:
        raise UnknownQueryParameters(unknown, repeated, sorted(fields))
