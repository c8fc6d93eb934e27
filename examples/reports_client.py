"""A small client of the wallet-lake reports API, standard library only; checked against the
API's OpenAPI document by wallet_lake_tests/ui/test_reports_client.py (every path and parameter
it sends is declared there) and run against a live server by the same test.

    export WL_API_KEY=wlk_...          # the key stays out of the command line and the shell history
    python examples/reports_client.py http://127.0.0.1:8000 daily-recon date=2026-11-24 merchant=m_0001
    python examples/reports_client.py http://127.0.0.1:8000 refund-rate from=2026-11-01 to=2026-11-30 --csv

Amounts are exact integers of up to 38 digits in minor units: Python's json reads them exactly
(a client in a language whose JSON numbers are doubles must read them as big integers)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

# report -> (path, query parameters it may send). The test holds this against the OpenAPI document.
OPERATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "daily-recon": ("/reports/daily-recon", ("date", "merchant", "source", "format")),
    "refund-rate": ("/reports/refund-rate", ("from", "to", "merchant", "source", "format")),
    "declines": ("/reports/declines", ("from", "to", "merchant", "source", "format")),
    "latency": ("/reports/latency", ("from", "to", "payment_method", "source", "format")),
    "pipeline-recon": ("/reports/pipeline-recon", ("date", "format")),
}


class ReportsError(Exception):
    """The API refused: `problem` is its RFC 7807 document (title, detail, per-parameter errors)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")
        self.status = status
        self.problem = problem


class ReportsClient:
    def __init__(self, base_url: str, api_key: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout_s = timeout_s

    def _get(self, report: str, params: dict[str, Any], accept: str) -> bytes:
        path, allowed = OPERATIONS[report]
        unknown = set(params) - set(allowed)
        if unknown:
            raise ValueError(f"{report} takes {', '.join(allowed)}; not {', '.join(sorted(unknown))}")
        query = urllib.parse.urlencode({k: str(v) for k, v in params.items() if v is not None})
        request = urllib.request.Request(
            f"{self.base_url}{path}?{query}", headers={"X-API-Key": self._api_key, "Accept": accept}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                problem = json.loads(body)
            except ValueError:
                problem = {"title": exc.reason, "detail": body.decode(errors="replace")[:200]}
            raise ReportsError(exc.code, problem) from None

    def json(self, report: str, **params: Any) -> dict[str, Any]:
        """The report's JSON answer. Dates as YYYY-MM-DD (UTC days); `from`/`to` as from_=, to=."""
        return json.loads(self._get(report, _names(params), "application/json"))

    def rows(self, report: str, **params: Any) -> list[dict[str, str]]:
        """The report's CSV (Accept: text/csv) as one dict per row, keyed by the header row."""
        text = self._get(report, _names(params), "text/csv").decode("utf-8")
        return list(csv.DictReader(io.StringIO(text)))

    # The reports by name, for readers of this example.
    def daily_recon(self, date: str, merchant: str | None = None) -> dict[str, Any]:
        return self.json("daily-recon", date=date, merchant=merchant)

    def refund_rate(self, date_from: str, date_to: str, merchant: str | None = None) -> dict[str, Any]:
        return self.json("refund-rate", from_=date_from, to=date_to, merchant=merchant)

    def declines(self, date_from: str, date_to: str, merchant: str | None = None) -> dict[str, Any]:
        return self.json("declines", from_=date_from, to=date_to, merchant=merchant)

    def latency(self, date_from: str, date_to: str, payment_method: str | None = None) -> dict[str, Any]:
        return self.json("latency", from_=date_from, to=date_to, payment_method=payment_method)

    def pipeline_recon(self, date: str) -> dict[str, Any]:
        return self.json("pipeline-recon", date=date)


def _names(params: dict[str, Any]) -> dict[str, Any]:
    # `from` is a Python keyword: callers write from_=.
    return {k.rstrip("_"): v for k, v in params.items()}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in OPERATIONS:
        print(__doc__, file=sys.stderr)
        return 2
    key = os.environ.get("WL_API_KEY")
    if not key:
        print("set WL_API_KEY to an API key (python -m api.keys create)", file=sys.stderr)
        return 2
    as_csv = "--csv" in argv
    params = dict(a.split("=", 1) for a in argv[2:] if a != "--csv")
    client = ReportsClient(argv[0], key)
    try:
        if as_csv:
            rows = client.rows(argv[1], **params)
            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [])
            writer.writeheader()
            writer.writerows(rows)
        else:
            print(json.dumps(client.json(argv[1], **params), indent=2))
    except ReportsError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
