"""Property-based input validation, driven by the app's own OpenAPI spec (hypothesis).

For every report, hypothesis draws query strings from each declared parameter: values that
conform to the declared schema (dates, patterns, enums) and arbitrary text, parameters omitted,
and undeclared ones added. An oracle written here, from the spec and the documented rules (not
from the app's code), says what the answer must be: 400 for undeclared parameters, 422 naming
exactly the malformed or missing ones, 422 on `to` for a reversed or over-long range, and
otherwise a valid request (the offline app then answers 503: it has no database). Never a 500,
and every error is a problem document with the request id."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.settings import Settings

from .conftest import ALL_MERCHANTS_KEY, create_offline_app

APP = create_offline_app()
CLIENT = TestClient(APP, headers={"X-API-Key": ALL_MERCHANTS_KEY})
SPEC = CLIENT.get("/openapi.json").json()
REPORT_PATHS = sorted(p for p in SPEC["paths"] if p.startswith("/reports/"))
MAX_RANGE_DAYS = 366  # documented in the `to` parameter
# Documented in the `source` parameter; the offline app runs with the default.
LAKE_MAX_RANGE_DAYS = Settings.model_fields["api_lake_max_range_days"].default

# Text that can travel in a URL query (no lone surrogates), including controls and non-ASCII.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
ISO = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _schema(param: dict[str, Any]) -> dict[str, Any]:
    schema = param["schema"]
    # Optional parameters are documented as anyOf [the type, null].
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return option
    return schema


def conforms(param: dict[str, Any], value: str) -> bool:
    """Does `value` match the parameter's declared schema? (The oracle: from the spec only.)"""
    schema = _schema(param)
    if "enum" in schema:
        return value in schema["enum"]
    if schema.get("format") == "date":
        if not ISO.match(value):
            return False
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return False
        return True
    if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 10**9):
        return False
    if "pattern" not in schema:
        return True
    # JSON Schema patterns are ECMA regexes, where `$` is the end of the text; Python's `$` also
    # matches before a final newline, so match the body in full instead.
    return re.fullmatch(schema["pattern"].removeprefix("^").removesuffix("$"), value) is not None


def conforming_values(param: dict[str, Any]) -> st.SearchStrategy[str]:
    schema = _schema(param)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if schema.get("format") == "date":
        return st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(dt.date.isoformat)
    pattern = schema.get("pattern")
    strategy = st.from_regex(pattern, fullmatch=True) if pattern else TEXT
    return strategy.filter(lambda v: conforms(param, v))


def near_dates() -> st.SearchStrategy[tuple[str, str]]:
    """from/to pairs around the range rules: reversed, one day, 366 and 367 days."""
    return st.tuples(
        st.dates(dt.date(2000, 1, 1), dt.date(2100, 1, 1)), st.sampled_from([-1, 0, 1, 30, 365, 366, 400])
    ).map(lambda d: (d[0].isoformat(), (d[0] + dt.timedelta(days=d[1])).isoformat()))


@st.composite
def requests(draw, path: str) -> tuple[list[tuple[str, str]], dict[str, dict]]:
    params = {p["name"]: p for p in SPEC["paths"][path]["get"]["parameters"] if p["in"] == "query"}
    query: list[tuple[str, str]] = []
    if {"from", "to"} <= set(params) and draw(st.booleans()):
        query.extend(zip(("from", "to"), draw(near_dates())))
    given_names = {n for n, _ in query}
    for name, param in params.items():
        if name in given_names:
            continue
        choice = draw(st.sampled_from(["conforming", "conforming", "arbitrary", "omitted"]))
        if choice == "omitted":
            continue
        value = draw(conforming_values(param) if choice == "conforming" else TEXT)
        query.append((name, value))
    if draw(st.integers(0, 9)) == 0:
        query.append((draw(st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(lambda n: n not in params)), "x"))
    return draw(st.permutations(query)), params


def expected(query: list[tuple[str, str]], params: dict[str, dict]) -> tuple[int, set[str]]:
    """(status, parameters the problem must name) for a request, from the spec and the documented rules."""
    given_values = dict(query)
    unknown = {n for n, _ in query if n not in params}
    if unknown:
        return 400, unknown
    bad = {n for n, v in query if not conforms(params[n], v)}
    missing = {n for n, p in params.items() if p.get("required") and n not in given_values}
    if bad or missing:
        return 422, bad | missing
    if "from" in given_values and "to" in given_values:
        start, end = dt.date.fromisoformat(given_values["from"]), dt.date.fromisoformat(given_values["to"])
        days = (end - start).days + 1
        if end < start or days > MAX_RANGE_DAYS or (given_values.get("source") == "lake" and days > LAKE_MAX_RANGE_DAYS):
            return 422, {"to"}
    return 503, set()


@pytest.mark.parametrize("path", REPORT_PATHS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_answers_follow_the_spec(path: str, data: st.DataObject) -> None:
    query, params = data.draw(requests(path))
    status, named = expected(query, params)
    r = CLIENT.get(path, params=query)
    assert r.status_code == status, (query, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["request_id"] == r.headers["x-request-id"]
    if status in (400, 422):
        assert {e["parameter"] for e in body["errors"]} == named, (query, body)
        for e in body["errors"]:
            assert e["message"]
            if status == 422:
                assert e["accepted"], e  # says what would be accepted


@pytest.mark.parametrize("path", REPORT_PATHS)
@settings(max_examples=100, deadline=None)
@given(raw=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80))
def test_raw_query_strings_never_500(path: str, raw: str) -> None:
    r = CLIENT.get(f"{path}?{raw}")
    assert r.status_code in (400, 422, 503), (raw, r.text)
    assert r.headers["content-type"] == "application/problem+json"
