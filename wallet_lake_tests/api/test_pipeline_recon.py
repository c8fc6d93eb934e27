"""GET /reports/pipeline-recon without a database: who may ask, parameter errors, and what the
OpenAPI document says (the offline app answers a valid request with 503)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.reports.pipeline_recon import EXAMPLE, PipelineRecon

from .conftest import SCOPED_KEY

URL = "/reports/pipeline-recon"


def test_all_merchant_key_reaches_the_database(client: TestClient) -> None:
    r = client.get(URL, params={"date": "2026-11-24"})
    assert r.status_code == 503 and r.headers["retry-after"] == "5"


def test_no_key_is_401_before_anything_else(offline_app) -> None:
    r = TestClient(offline_app).get(URL, params={"date": "not-a-date"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"


def test_merchant_scoped_key_is_403(offline_app) -> None:
    c = TestClient(offline_app, headers={"X-API-Key": SCOPED_KEY})
    for params in ({"date": "2026-11-24"}, {"date": "2026-13-01"}):  # 403 before the date is looked at
        r = c.get(URL, params=params)
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["type"] == "urn:wallet-lake:problem:all-merchants-key-required"
        assert "all merchants" in body["detail"] and body["request_id"] == r.headers["x-request-id"]


def test_parameter_errors_are_problems(client: TestClient) -> None:
    r = client.get(URL, params={"date": "2026-02-30"})
    assert r.status_code == 422
    assert [(e["parameter"], e["accepted"]) for e in r.json()["errors"]] == [("date", "YYYY-MM-DD, a calendar date")]
    assert client.get(URL).status_code == 422
    r = client.get(URL, params={"date": "2026-11-24", "merchant": "m_1"})  # no merchant filter here
    assert r.status_code == 400 and r.json()["errors"][0]["parameter"] == "merchant"


def test_openapi_documents_the_endpoint_with_an_example(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"][URL]["get"]
    assert [p["name"] for p in op["parameters"]] == ["date", "format"]
    assert {next(iter(s)) for s in op["security"]} == {"ApiKey", "Bearer"}
    for status in ("400", "401", "403", "422", "500", "503"):
        assert list(op["responses"][status]["content"]) == ["application/problem+json"], status
    assert "all-merchants key" in op["responses"]["403"]["description"]
    example = op["responses"]["200"]["content"]["application/json"]["example"]
    assert example == EXAMPLE
    PipelineRecon.model_validate(example)  # the example is a valid answer
    for words in ("raw_lines = curated + quarantined + duplicates_removed", "first_difference", "superseded", "403"):
        assert words in op["description"], words
    hour = spec["components"]["schemas"]["HourRecon"]
    assert set(hour["required"]) >= {"landing_hour", "raw_lines", "counted", "reconciled", "first_difference"}
