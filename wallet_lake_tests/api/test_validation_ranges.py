"""Parameters of the range reports (refund-rate, latency, declines): dates, order and length of the
range, payment_method's form, source. Pure: the offline app answers 503 once input is valid."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .test_validation import assert_problem, errors_by_parameter

RANGE_REPORTS = ["/reports/refund-rate", "/reports/latency", "/reports/declines"]


@pytest.mark.parametrize("url", RANGE_REPORTS)
@pytest.mark.parametrize(("name", "bad"), [("from", "2026-02-30"), ("to", "20261130"), ("from", "1732406400"), ("to", "")])
def test_bad_date_names_the_parameter(client: TestClient, url: str, name: str, bad: str) -> None:
    params = {"from": "2026-11-01", "to": "2026-11-30", name: bad}
    body = assert_problem(client.get(url, params=params), 422)
    assert set(errors_by_parameter(body)) == {name}
    assert "YYYY-MM-DD" in errors_by_parameter(body)[name]["accepted"]


@pytest.mark.parametrize("url", RANGE_REPORTS)
def test_from_after_to_is_422(client: TestClient, url: str) -> None:
    body = assert_problem(client.get(url, params={"from": "2026-11-02", "to": "2026-11-01"}), 422)
    err = errors_by_parameter(body)["to"]
    assert "before" in err["message"] and "from <= to" in err["accepted"]


@pytest.mark.parametrize("url", RANGE_REPORTS)
def test_range_over_366_days_is_422(client: TestClient, url: str) -> None:
    # 2024 is a leap year: 2024-01-01..2024-12-31 is 366 days (allowed), one more day is not.
    assert client.get(url, params={"from": "2024-01-01", "to": "2024-12-31"}).status_code == 503
    body = assert_problem(client.get(url, params={"from": "2024-01-01", "to": "2025-01-01"}), 422)
    assert "367 days" in errors_by_parameter(body)["to"]["message"]


@pytest.mark.parametrize("url", RANGE_REPORTS)
def test_one_day_range_is_valid(client: TestClient, url: str) -> None:
    assert client.get(url, params={"from": "2026-11-01", "to": "2026-11-01"}).status_code == 503


@pytest.mark.parametrize("url", RANGE_REPORTS)
def test_missing_range_is_422_naming_both(client: TestClient, url: str) -> None:
    body = assert_problem(client.get(url), 422)
    assert set(errors_by_parameter(body)) == {"from", "to"}


@pytest.mark.parametrize(
    "bad", ["Card", "card-1", "1card", "", "c" * 33, "card ", "karte_é", "card;drop", "%", "_card"]
)
def test_bad_payment_method_is_422(client: TestClient, bad: str) -> None:
    r = client.get("/reports/latency", params={"from": "2026-11-01", "to": "2026-11-02", "payment_method": bad})
    body = assert_problem(r, 422)
    err = errors_by_parameter(body)["payment_method"]
    assert "lower-case" in err["accepted"]


@pytest.mark.parametrize("good", ["card", "bank_transfer", "bnpl", "unknown", "w" * 32])
def test_good_payment_method_passes(client: TestClient, good: str) -> None:
    r = client.get("/reports/latency", params={"from": "2026-11-01", "to": "2026-11-02", "payment_method": good})
    assert r.status_code == 503


@pytest.mark.parametrize("url", RANGE_REPORTS + ["/reports/daily-recon"])
def test_unknown_source_is_422(client: TestClient, url: str) -> None:
    params = {"from": "2026-11-01", "to": "2026-11-02", "date": "2026-11-01", "source": "athena"}
    params = {k: v for k, v in params.items() if k in (("date", "source") if "daily" in url else ("from", "to", "source"))}
    body = assert_problem(client.get(url, params=params), 422)
    assert errors_by_parameter(body)["source"]["accepted"] == "postgres or lake"


def test_merchant_is_not_a_latency_parameter(client: TestClient) -> None:
    body = assert_problem(client.get("/reports/latency", params={"from": "2026-11-01", "to": "2026-11-02", "merchant": "m"}), 400)
    assert [e["parameter"] for e in body["errors"]] == ["merchant"]
