"""Prometheus /metrics: request counts, errors and latency per route template (never the raw path)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families


def samples(client: TestClient) -> dict[tuple[str, frozenset], float]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_counts_errors_and_latency_by_route_template(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/healthz")
    client.get("/reports/daily-recon", params={"date": "bad"})  # 422
    client.get("/reports/declines", params={"from": "2026-11-01", "to": "2026-11-02", "merchant": "m_1"})  # 503: no database
    client.get("/no/such/path/12345")  # 404
    s = samples(client)

    def get(name: str, **labels: str) -> float:
        return s.get((name, frozenset(labels.items())), 0.0)

    assert get("wallet_lake_api_requests_total", method="GET", route="/healthz", status="200") == 2
    assert get("wallet_lake_api_requests_total", method="GET", route="/reports/daily-recon", status="422") == 1
    assert get("wallet_lake_api_request_errors_total", method="GET", route="/reports/daily-recon", kind="client") == 1
    assert get("wallet_lake_api_request_errors_total", method="GET", route="/reports/declines", kind="server") == 1
    assert get("wallet_lake_api_requests_total", method="GET", route="<unmatched>", status="404") == 1
    assert get("wallet_lake_api_request_duration_seconds_count", method="GET", route="/healthz") == 2
    assert get("wallet_lake_api_request_duration_seconds_bucket", method="GET", route="/healthz", le="+Inf") == 2
    # Raw paths never become label values.
    assert not any("12345" in str(labels) for _, labels in s)


def test_method_label_is_bounded(client: TestClient) -> None:
    """HTTP allows any token as a method: unknown ones share method="other", so made-up methods
    (like made-up paths) cannot add series."""
    for i in range(5):
        client.request(f"BREW{i}", "/healthz")  # 405 on a known route
        client.request(f"SCAN{i}", f"/no/such/{i}")  # 404
    client.request("DELETE", "/healthz")
    s = samples(client)
    methods = {dict(labels).get("method") for _, labels in s} - {None}
    assert methods == {"DELETE", "other"}  # (this /metrics GET is counted after it answers)
    assert s[("wallet_lake_api_requests_total", frozenset({("method", "other"), ("route", "/healthz"), ("status", "405")}))] == 5
    assert s[("wallet_lake_api_requests_total", frozenset({("method", "other"), ("route", "<unmatched>"), ("status", "404")}))] == 5
    assert not any("BREW" in str(labels) or "SCAN" in str(labels) for _, labels in s)
