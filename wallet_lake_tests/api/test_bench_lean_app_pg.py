"""bench/api_lean_app.py, the app bench/api_open_loop.py --app compares with the API, answers
valid report requests exactly as the API does (as_of aside): were its answers different, its CPU
figures would measure other work than the API's."""

from __future__ import annotations

import datetime as dt
import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from .conftest import payment, split_as_of

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def lean_http(pg_settings) -> Iterator[TestClient]:
    # Loaded from its file: putting bench/ on sys.path would let its script names shadow others.
    spec = importlib.util.spec_from_file_location("api_lean_app", ROOT / "bench" / "api_lean_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with TestClient(module.app) as client:  # the lifespan opens its pool from the WL_PG_* settings
        yield client


def test_lean_app_answers_the_four_reports_as_the_api_does(live_client, lean_http: TestClient, api_key, payments, new_merchant) -> None:
    merchant, method = new_merchant(), f"t_{uuid.uuid4().hex[:20]}"
    day = dt.date(2031, 3, 30)
    payments([
        payment(merchant, currency="EUR", status="APPROVED", amount_cents=1250, payment_method=method, latency_ms=180,
                created_at=dt.datetime(2031, 3, 30, 10, tzinfo=UTC)),
        payment(merchant, currency="EUR", status="REFUNDED", amount_cents=990, payment_method=method, latency_ms=2400,
                created_at=dt.datetime(2031, 3, 31, 9, tzinfo=UTC)),
        payment(merchant, currency="USD", status="DECLINED", amount_cents=40, payment_method=method,
                created_at=dt.datetime(2031, 4, 1, 23, tzinfo=UTC)),
        payment(merchant, currency="USD", status="CHARGEBACK", amount_cents=7000, payment_method=method, latency_ms=35,
                created_at=dt.datetime(2031, 4, 2, 0, 30, tzinfo=UTC)),
    ])
    requests = [
        ("/reports/daily-recon", {"date": day.isoformat(), "merchant": merchant}),
        ("/reports/refund-rate", {"from": "2031-03-29", "to": "2031-04-02", "merchant": merchant}),
        ("/reports/declines", {"from": "2031-03-30", "to": "2031-04-01", "merchant": merchant}),
        ("/reports/latency", {"from": "2031-03-30", "to": "2031-04-02", "payment_method": method}),
    ]
    headers = {"X-API-Key": api_key()}
    for path, params in requests:
        api = live_client.get(path, params=params)
        lean = lean_http.get(path, params=params, headers=headers)
        assert api.status_code == lean.status_code == 200, (path, api.text, lean.text)
        _, api_answer = split_as_of(api.json())
        _, lean_answer = split_as_of(lean.json())
        assert lean_answer == api_answer, path
        _, empty_answer = split_as_of(live_client.get(path, params=_on_a_day_without_rows(params)).json())
        assert api_answer != empty_answer, f"{path}: the rows made no difference to the answer, so the comparison proves nothing"


def _on_a_day_without_rows(params: dict[str, str]) -> dict[str, str]:
    """The same request moved to 2030-01-01, where the test wrote no rows."""
    moved = {"from": "2030-01-01", "to": "2030-01-01"} if "from" in params else {"date": "2030-01-01"}
    return {**params, **moved}


def test_lean_app_refuses_a_request_without_a_valid_key(lean_http: TestClient) -> None:
    assert lean_http.get("/reports/daily-recon", params={"date": "2031-03-30"}).status_code == 401
    assert lean_http.get("/reports/daily-recon", params={"date": "2031-03-30"},
                         headers={"X-API-Key": "not-a-key"}).status_code == 401
