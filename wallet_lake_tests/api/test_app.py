"""Cross-cutting behaviour of the app: request ids, access log, problem bodies, probes, OpenAPI."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES
from wallet_lake.contracts.reports import LATENCY_RELATIVE_ERROR

from .conftest import OFFLINE_SETTINGS


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_is_503_without_postgres(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"


def test_request_id_is_echoed(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert r.headers["x-request-id"] == "req-123"


def test_request_id_is_generated_when_absent(client: TestClient) -> None:
    first = client.get("/healthz").headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    assert first and second and first != second


@pytest.mark.parametrize("bad", ["a" * 129, "has space", "<script>", "é", ""])
def test_unsafe_request_id_is_replaced(client: TestClient, bad: str) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": bad.encode()})
    assert r.headers["x-request-id"] not in (bad, bad.encode().decode("latin-1"))
    assert len(r.headers["x-request-id"]) == 32


def test_one_access_log_line_per_request(client: TestClient) -> None:
    with capture_logs() as logs:
        client.get("/reports/daily-recon", params={"date": "bad", "merchant": "m"}, headers={"X-Request-ID": "r-1"})
    access = [e for e in logs if e["event"] == "request"]
    assert len(access) == 1
    line = access[0]
    assert line["method"] == "GET"
    assert line["route"] == "/reports/daily-recon"
    assert line["status"] == 422
    assert line["request_id"] == "r-1"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


def test_the_access_line_follows_the_logging_configuration_of_later_apps() -> None:
    # The middleware binds its access logger once, at the app's first request; apps created
    # afterwards configure logging again, and the line must still go through the processors
    # configured now (here capture_logs' ones).
    from .conftest import create_offline_app

    first = TestClient(create_offline_app())
    first.get("/healthz")
    create_offline_app()
    with capture_logs() as logs:
        first.get("/healthz", headers={"X-Request-ID": "r-later"})
    assert [e["request_id"] for e in logs if e["event"] == "request"] == ["r-later"]


def test_unknown_path_is_404_problem(client: TestClient) -> None:
    r = client.get("/reports/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["request_id"] == r.headers["x-request-id"]


def test_wrong_method_is_405_problem_with_allow(client: TestClient) -> None:
    r = client.post("/reports/daily-recon")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"
    assert r.headers["content-type"] == "application/problem+json"


def test_unexpected_exception_is_500_with_request_id_only(offline_app: FastAPI) -> None:
    secret = f"secret-{uuid.uuid4().hex}"

    def boom() -> None:
        raise RuntimeError(secret)

    offline_app.add_api_route("/boom", boom)
    client = TestClient(offline_app)
    with capture_logs() as logs:
        r = client.get("/boom", headers={"X-Request-ID": "r-500"})
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-request-id"] == "r-500"
    body = r.json()
    assert set(body) == {"type", "title", "status", "detail", "request_id"}
    assert body["request_id"] == "r-500" and body["status"] == 500
    assert secret not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    # The stack trace goes to the log, with the request id.
    errors = [e for e in logs if e["log_level"] == "error"]
    assert errors and errors[0]["request_id"] == "r-500" and errors[0].get("exc_info")
    assert [e["status"] for e in logs if e["event"] == "request"] == [500]


def test_password_not_in_logs_when_postgres_is_down(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with capture_logs() as logs:
        client.get("/readyz")
        client.get("/reports/daily-recon", params={"date": "2026-11-24", "merchant": "m"})
    assert OFFLINE_SETTINGS["pg_password"] not in repr(logs) + caplog.text


@pytest.mark.parametrize(
    ("path", "params", "statuses"),
    [
        ("/reports/daily-recon", {"date", "merchant", "source", "format"}, ("400", "401", "403", "422", "500", "503")),
        ("/reports/refund-rate", {"from", "to", "merchant", "source", "format"}, ("400", "401", "403", "422", "500", "503")),
        ("/reports/declines", {"from", "to", "merchant", "source", "format"}, ("400", "401", "403", "422", "500", "503")),
        ("/reports/latency", {"from", "to", "payment_method", "source", "format"}, ("400", "401", "422", "500", "503")),
    ],
)
def test_openapi_documents_report_and_problems(client: TestClient, path: str, params: set, statuses: tuple) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"][path]["get"]
    assert {p["name"] for p in op["parameters"]} == params
    for p in op["parameters"]:
        assert "Accepted:" in p["description"], p["name"]
    for status in statuses:
        assert list(op["responses"][status]["content"]) == ["application/problem+json"]
    # Both ways of sending a key are declared.
    assert {next(iter(s)) for s in op["security"]} == {"ApiKey", "Bearer"}


def test_openapi_states_the_semantics(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ops = {p: spec["paths"][p]["get"]["description"] for p in spec["paths"] if p.startswith("/reports/")}
    assert "never summed across currencies" in ops["/reports/daily-recon"]
    assert "APPROVED, REFUNDED, CHARGEBACK" in ops["/reports/refund-rate"] and "null" in ops["/reports/refund-rate"]
    assert "`unknown`" in ops["/reports/declines"] and "decline_rate" in ops["/reports/declines"]
    bound = f"{LATENCY_RELATIVE_ERROR * 100:.2f}%"
    assert "continuous" in ops["/reports/latency"].lower() and bound in ops["/reports/latency"]
    for description in ops.values():
        assert "inclusive" in description or "one UTC day" in description
    schemas = spec["components"]["schemas"]
    assert set(schemas["DailyRecon"]["required"]) == {"date", "merchant_id", "as_of", "by_status", "totals"}
    # Every answer says how fresh it is, and the field says what it means.
    for name in ("DailyRecon", "RefundRate", "Declines", "Latency"):
        as_of = schemas[name]["properties"]["as_of"]
        assert "as_of" in schemas[name]["required"] and as_of["format"] == "date-time", name
        assert "committed before this instant" in as_of["description"] and "source=lake" in as_of["description"], name
    status_doc = schemas["StatusLine"]["properties"]["status"]["description"]
    assert all(s in status_doc for s in ACCEPTED_STATUSES)
    # Range answers echo the query's own names.
    assert {"from", "to"} <= set(schemas["RefundRate"]["properties"])
