"""CSV export of the reports: `format=csv` or `Accept: text/csv`, a header row, one row per line
of the report with the columns of api/reports/tables.py (the reports pages' tables); errors stay
problem documents. Pure rules first, then the live routes on the stack's Postgres."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from api.reports.daily_recon import DailyRecon, StatusLine, CurrencyTotal
from api.reports.tables import cell_text
from api.routes.formats import accepts_csv
from api.ui.pages import recon_with_change

from .conftest import payment, split_as_of

UTC = dt.timezone.utc
AS_OF = dt.datetime(2040, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "accept, csv_wanted",
    [
        ("text/csv", True),
        ("text/csv; charset=utf-8", True),
        ("application/json", False),
        ("text/csv, application/json", True),  # equal quality: the first listed
        ("application/json, text/csv", False),
        ("application/json;q=0.5, text/csv", True),
        ("text/csv;q=0.2, application/json", False),
        ("text/csv;q=0", False),
        ("*/*", False),
        ("text/*", False),
        ("text/html,application/xhtml+xml,*/*;q=0.8", False),  # a browser: JSON, as before CSV existed
        (None, False),
        ("", False),
    ],
)
def test_accept_header_asks_for_csv_only_when_it_prefers_text_csv(accept, csv_wanted) -> None:
    assert accepts_csv(accept) is csv_wanted


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_text_a_spreadsheet_would_run_as_a_formula_is_prefixed_with_an_apostrophe(text) -> None:
    assert cell_text("text", text) == "'" + text


def test_numbers_and_plain_text_are_written_as_they_are() -> None:
    assert [cell_text("change", -5), cell_text("amount", 2**63 - 1), cell_text("text", "do_not_honor"), cell_text("rate", None)] == [
        "-5", "9223372036854775807", "do_not_honor", ""]


def _recon(day: dt.date, lines: list[tuple[str, str, int, int]]) -> DailyRecon:
    totals: dict[str, list[int]] = {}
    for c, _, n, a in lines:
        totals.setdefault(c, [0, 0])
        totals[c][0] += n
        totals[c][1] += a
    return DailyRecon(
        date=day, merchant_id="m", as_of=AS_OF,
        by_status=[StatusLine(currency=c, status=s, count=n, amount_cents=a) for c, s, n, a in lines],
        totals=[CurrencyTotal(currency=c, count=n, amount_cents=a) for c, (n, a) in sorted(totals.items())],
    )


def test_day_over_day_counts_a_line_missing_on_one_day_as_zero_and_never_mixes_currencies() -> None:
    today = _recon(dt.date(2040, 1, 2), [("EUR", "APPROVED", 3, 300), ("USD", "REFUNDED", 1, 50)])
    before = _recon(dt.date(2040, 1, 1), [("EUR", "APPROVED", 1, 100), ("JPY", "APPROVED", 2, 9000)])
    by_status, totals = recon_with_change(today, before)
    assert by_status.rows == [
        ("EUR", "APPROVED", 3, 300, 1, 100, 2, 200),
        ("JPY", "APPROVED", 0, 0, 2, 9000, -2, -9000),
        ("USD", "REFUNDED", 1, 50, 0, 0, 1, 50),
    ]
    assert totals.rows == [("EUR", 3, 300, 1, 100, 2, 200), ("JPY", 0, 0, 2, 9000, -2, -9000), ("USD", 1, 50, 0, 0, 1, 50)]
    assert by_status.to_csv().splitlines()[0] == (
        "currency,status,count,amount_cents,previous_count,previous_amount_cents,count_change,amount_cents_change")


# --- live ---------------------------------------------------------------------------------------


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith('attachment; filename="')
    assert response.text.endswith("\r\n")
    return list(csv.reader(io.StringIO(response.text)))


@pytest.mark.integration
def test_every_report_answers_csv_with_a_header_row_and_the_json_lines(live_client, payments, new_merchant) -> None:
    m = new_merchant()
    d = dt.date(2041, 3, 4)
    at = dt.datetime(2041, 3, 4, 12, tzinfo=UTC)
    payments([
        payment(m, currency="EUR", status="APPROVED", amount_cents=1000, created_at=at, latency_ms=150),
        payment(m, currency="EUR", status="REFUNDED", amount_cents=250, created_at=at, latency_ms=90),
        payment(m, currency="USD", status="DECLINED", amount_cents=70, created_at=at, decline_reason="=cmd|' /C calc'!A0"),
        payment(m, currency="EUR", status="DECLINED", amount_cents=30, created_at=at, decline_reason="=cmd|' /C calc'!A0"),
        payment(m, currency="EUR", status="DECLINED", amount_cents=5, created_at=at, decline_reason="do_not_honor"),
    ])
    day = {"date": d.isoformat(), "merchant": m}
    rng = {"from": d.isoformat(), "to": d.isoformat(), "merchant": m}

    recon = live_client.get("/reports/daily-recon", params=day).json()
    rows = _csv(live_client.get("/reports/daily-recon", params={**day, "format": "csv"}))
    assert rows == [["currency", "status", "count", "amount_cents"],
                    *([s["currency"], s["status"], str(s["count"]), str(s["amount_cents"])] for s in recon["by_status"])]
    assert len(rows) == 5  # EUR APPROVED, DECLINED, REFUNDED; USD DECLINED
    # Accept: text/csv gives the same file; format=json wins over it.
    assert _csv(live_client.get("/reports/daily-recon", params=day, headers={"Accept": "text/csv"})) == rows
    assert split_as_of(live_client.get("/reports/daily-recon", params={**day, "format": "json"},
                                       headers={"Accept": "text/csv"}).json())[1] == split_as_of(recon)[1]

    refunds = _csv(live_client.get("/reports/refund-rate", params={**rng, "format": "csv"}))
    assert refunds == [
        ["currency", "captured_count", "captured_amount_cents", "refunded_count", "refunded_amount_cents",
         "chargeback_count", "chargeback_amount_cents", "refund_amount_rate", "chargeback_amount_rate"],
        ["EUR", "2", "1250", "1", "250", "0", "0", "0.2", "0.0"],
    ]
    declines = _csv(live_client.get("/reports/declines", params={**rng, "format": "csv"}))
    assert declines == [
        ["decline_reason", "count", "amount_cents_EUR", "amount_cents_USD"],
        ["'=cmd|' /C calc'!A0", "2", "30", "70"],  # a formula-looking reason is neutralised
        ["do_not_honor", "1", "5", "0"],
    ]
    latency = live_client.get("/reports/latency", params={"from": d.isoformat(), "to": d.isoformat()}).json()
    lat = _csv(live_client.get("/reports/latency", params={"from": d.isoformat(), "to": d.isoformat()}, headers={"Accept": "text/csv"}))
    assert lat[0] == ["payment_method", "count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
    assert lat[1:] == [[str(x[c]) for c in lat[0]] for x in latency["methods"]] and len(lat) == 2

    ledger = _csv(live_client.get("/reports/pipeline-recon", params={"date": d.isoformat(), "format": "csv"}))
    assert ledger[0][:2] == ["landing_hour", "raw_lines"] and ledger[0][-1] == "detail"
    assert [r[0] for r in ledger[1:]] == [f"{d.isoformat()}T{h:02d}:00:00Z" for h in range(24)]


@pytest.mark.integration
def test_a_refused_csv_request_is_still_a_problem_document(live_client, api_key, new_merchant) -> None:
    scoped = api_key([new_merchant()])
    r = live_client.get("/reports/daily-recon", params={"date": "2041-03-04", "merchant": "m_other", "format": "csv"},
                        headers={"X-API-Key": scoped})
    assert (r.status_code, r.headers["content-type"]) == (403, "application/problem+json")
    r = live_client.get("/reports/daily-recon", params={"date": "2041-03-04", "format": "xlsx"})
    assert r.status_code == 422 and r.json()["errors"][0]["parameter"] == "format"
