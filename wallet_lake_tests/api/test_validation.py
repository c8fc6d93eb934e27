"""Bad input to the reports: always a 4xx problem document, never a 500, and never a database
round trip (the `client` app has no pool; reaching it would answer 503). Range reports and the
property-based tests over the OpenAPI spec are in test_validation_ranges.py and
test_validation_properties.py."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

URL = "/reports/daily-recon"
PROBLEM = "application/problem+json"


def assert_problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    assert body["request_id"] == r.headers["x-request-id"]
    return body


def errors_by_parameter(body: dict) -> dict[str, dict]:
    return {e["parameter"]: e for e in body["errors"]}


@pytest.mark.parametrize(
    "bad_date",
    [
        "2026-02-30",  # not a calendar day
        "2026-13-01",
        "20261124",  # ISO basic format
        "1732406400",  # unix time, which pydantic alone would take
        "2026-11-24T00:00:00",
        "2026-1-4",
        "24/11/2026",
        "yesterday",
        "",
        " 2026-11-24",
        "２０２６-１１-２４",  # full-width digits match \d in some regex engines
    ],
)
def test_bad_date_is_422_naming_the_parameter_and_form(client: TestClient, bad_date: str) -> None:
    body = assert_problem(client.get(URL, params={"date": bad_date, "merchant": "m_1"}), 422)
    err = errors_by_parameter(body)["date"]
    assert err["location"] == "query"
    assert "YYYY-MM-DD" in err["accepted"]
    assert list(errors_by_parameter(body)) == ["date"]


@pytest.mark.parametrize(
    ("params", "missing"),
    [
        ({"merchant": "m_1"}, {"date"}),
        ({}, {"date"}),
    ],
)
def test_missing_parameters_are_422(client: TestClient, params: dict, missing: set[str]) -> None:
    body = assert_problem(client.get(URL, params=params), 422)
    errors = errors_by_parameter(body)
    assert set(errors) == missing
    assert all(e["accepted"] for e in errors.values())
    for name in missing:
        assert name in body["detail"]


@pytest.mark.parametrize("bad_merchant", ["", " ", "m 1", "m\x001", "m\n1", "x" * 129])
def test_bad_merchant_is_422(client: TestClient, bad_merchant: str) -> None:
    body = assert_problem(client.get(URL, params={"date": "2026-11-24", "merchant": bad_merchant}), 422)
    assert set(errors_by_parameter(body)) == {"merchant"}
    assert errors_by_parameter(body)["merchant"]["accepted"]


def test_unknown_parameters_are_400_naming_them(client: TestClient) -> None:
    r = client.get(URL, params={"date": "2026-11-24", "merchant": "m_1", "merchnat": "m_2", "limit": "5"})
    body = assert_problem(r, 400)
    assert {e["parameter"] for e in body["errors"]} == {"limit", "merchnat"}
    assert "limit" in body["detail"] and "merchnat" in body["detail"]
    # The detail also says what is accepted.
    assert "date" in body["detail"] and "merchant" in body["detail"]


def test_unknown_parameters_win_over_bad_values(client: TestClient) -> None:
    body = assert_problem(client.get(URL, params={"date": "nope", "foo": "1"}), 400)
    assert [e["parameter"] for e in body["errors"]] == ["foo"]


def test_repeated_parameter_is_400(client: TestClient) -> None:
    r = client.get(URL, params=[("date", "2026-11-24"), ("date", "2026-11-25"), ("merchant", "m_1")])
    body = assert_problem(r, 400)
    assert [e["parameter"] for e in body["errors"]] == ["date"]


@pytest.mark.parametrize(
    "query_string",
    [
        "date=%ff%fe&merchant=m",
        "date=2026-11-24&merchant=%00",
        "date=2026-11-24&merchant=%09",
        "date=2026-11-24&merchant=m%0d%0aX-Injected:%201",
        "date=9999-99-99&merchant=m",
        "date=0000-00-00&merchant=m",
        "date=2026-11-24&merchant=" + "é" * 300,
        "date&merchant",
        "=&=&=",
        "date=2026-11-24&merchant=m&=x",
        "%zz=1",
        "date=" + "9" * 10000 + "&merchant=m",
    ],
)
def test_odd_query_strings_never_500(client: TestClient, query_string: str) -> None:
    r = client.get(f"{URL}?{query_string}")
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"] == PROBLEM


def test_valid_request_reaches_the_database(client: TestClient) -> None:
    # Well-formed input passes validation; with no pool open the answer is a 503, not a 500.
    body = assert_problem(client.get(URL, params={"date": "2026-11-24", "merchant": "m_1"}), 503)
    assert "retry" in body["detail"]
    assert "errors" not in body
