"""The client example of the README (examples/reports_client.py): every path and parameter it
sends is declared by the API's OpenAPI document, and it reads each report, as JSON and as CSV,
from a live server."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import requests

from api.main import create_app

ROOT = Path(__file__).resolve().parents[2]


def _load_client():
    spec = importlib.util.spec_from_file_location("reports_client", ROOT / "examples" / "reports_client.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


client_module = _load_client()


def test_every_path_and_parameter_of_the_client_is_in_the_openapi_document() -> None:
    paths = create_app().openapi()["paths"]
    for report, (path, params) in client_module.OPERATIONS.items():
        assert "get" in paths.get(path, {}), f"{report}: GET {path} is not in the OpenAPI document"
        declared = {p["name"]: p for p in paths[path]["get"]["parameters"] if p["in"] == "query"}
        assert set(params) == set(declared), f"{report}: the client sends {sorted(params)}, the API declares {sorted(declared)}"
        responses = paths[path]["get"]["responses"]["200"]["content"]
        assert {"application/json", "text/csv"} <= set(responses), f"{report}: 200 answers {sorted(responses)}"


def test_the_client_refuses_a_parameter_the_report_does_not_take() -> None:
    with pytest.raises(ValueError, match="latency takes"):
        client_module.ReportsClient("http://127.0.0.1:9", "wlk_x").json("latency", merchant="m_1")


@pytest.mark.integration
def test_the_client_reads_every_report_as_json_and_csv(server, keys, seeded) -> None:
    client = client_module.ReportsClient(server.base, keys["all"])
    day, first = seeded.day.isoformat(), seeded.first_day.isoformat()
    calls = {
        "daily-recon": dict(date=day, merchant=seeded.merchant_a),
        "refund-rate": {"from_": first, "to": day, "merchant": seeded.merchant_a},
        "declines": {"from_": first, "to": day, "merchant": seeded.merchant_a},
        "latency": {"from_": first, "to": day},
        "pipeline-recon": dict(date=seeded.ledger_day.isoformat()),
    }
    for report, params in calls.items():
        path = client_module.OPERATIONS[report][0]
        query = {k.rstrip("_"): v for k, v in params.items()}
        direct = requests.get(f"{server.base}{path}", params=query, headers={"X-API-Key": keys["all"]}, timeout=30).json()
        answer = client.json(report, **params)
        assert {k: v for k, v in answer.items() if k != "as_of"} == {k: v for k, v in direct.items() if k != "as_of"}, report
        rows = client.rows(report, **params)
        assert rows, f"{report}: no CSV rows for the seeded data"
    assert client.daily_recon(day, seeded.merchant_a)["merchant_id"] == seeded.merchant_a
    recon_rows = client.rows("daily-recon", date=day, merchant=seeded.merchant_a)
    by_status = client.daily_recon(day, seeded.merchant_a)["by_status"]
    assert recon_rows == [{k: str(line[k]) for k in ("currency", "status", "count", "amount_cents")} for line in by_status]
    with pytest.raises(client_module.ReportsError) as refused:
        client_module.ReportsClient(server.base, keys["a"]).daily_recon(day, seeded.merchant_b)
    assert refused.value.status == 403 and refused.value.problem["type"] == "urn:wallet-lake:problem:forbidden-merchant"
