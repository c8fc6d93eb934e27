"""The reports pages in a real browser (headless Chromium from Debian, driven by Playwright):
each page loads with real rows from the stack's Postgres, shows the numbers the JSON API answers
for the same question, draws its charts, offers its table as CSV, and a key for merchant A gets
a 403 page for merchant B. Every page is saved as a screenshot (fixture `screenshots`).

Expected values come from the JSON routes (the oracle the pages must agree with) and are
formatted here by hand, not by the pages' code."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

pytestmark = pytest.mark.integration

# Table cells as {column: (exact value, text shown)}, one dict per row.
READ_TABLE = """(id) => Array.from(document.querySelectorAll(`#${id} tbody tr:not(.empty)`)).map(
  tr => Object.fromEntries(Array.from(tr.cells).map(td => [td.dataset.col, [td.dataset.value, td.innerText.trim()]])))"""
READ_COLUMNS = "(id) => Array.from(document.querySelectorAll(`#${id} thead th`)).map(th => th.dataset.col)"
# What Chart.js drew: the labels and each line's points, read from the chart object itself.
READ_CHART = """(id) => { const c = Chart.getChart(document.getElementById(id));
  return c ? {labels: c.data.labels, lines: Object.fromEntries(c.data.datasets.map(d => [d.label, d.data]))} : null; }"""


def login(page, base: str, key: str) -> None:
    page.goto(f"{base}/ui/login")
    page.fill("#key", key)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{base}/ui/daily-recon")


def api(server, key: str, path: str, **params: Any) -> dict:
    r = requests.get(f"{server.base}{path}", params=params, headers={"X-API-Key": key}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def shown_count(v: int) -> str:
    return f"{v:,}"


def shown_rate(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.2f}%"


def shown_ms(v: float | int | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.1f}" if isinstance(v, float) else f"{v:,}"


def exact(v: Any) -> str:
    return "" if v is None else str(v)


def assert_csv_is_the_table(page, url: str, table_id: str) -> None:
    """The page's CSV download has the table's columns (header row) and its exact values."""
    r = page.context.request.get(urljoin(page.url, url))  # the browser's cookie goes along
    assert r.status == 200 and r.headers["content-type"].startswith("text/csv"), r.status
    lines = list(csv.reader(io.StringIO(r.text())))
    assert lines[0] == page.evaluate(READ_COLUMNS, table_id)
    cells = page.evaluate(READ_TABLE, table_id)
    assert lines[1:] == [[row[c][0] for c in lines[0]] for row in cells]


def test_login_keeps_the_key_in_an_httponly_strict_cookie_never_in_a_url_or_the_log(page, server, keys, screenshots) -> None:
    page.goto(f"{server.base}/ui/daily-recon")
    assert page.url == f"{server.base}/ui/daily-recon" and page.locator("input#key").is_visible()  # the login form
    page.screenshot(path=screenshots / "login.png")
    login(page, server.base, keys["a"])
    cookie = {c["name"]: c for c in page.context.cookies()}["wl_reports_key"]
    assert (cookie["value"], cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (keys["a"], True, "Strict", "/ui")
    assert page.evaluate("document.cookie") == ""  # no script on the page can read it
    assert keys["a"] not in page.url
    key_id = keys["a"].split("_")[1]
    assert key_id in page.inner_text("#key-id")
    log = server.log_path.read_text()
    assert key_id in log  # the log has the requests (by key id) ...
    assert keys["a"] not in log and keys["a"].split("_", 2)[2] not in log  # ... never the key or its secret
    page.click("header form.logout button")
    page.wait_for_url(f"{server.base}/ui/login")
    assert "wl_reports_key" not in {c["name"] for c in page.context.cookies()}


def test_daily_recon_shows_the_json_answer_with_the_day_before(page, server, keys, seeded, screenshots) -> None:
    login(page, server.base, keys["a"])
    page.goto(f"{server.base}/ui/daily-recon?date={seeded.day}&merchant={seeded.merchant_a}")
    today = api(server, keys["a"], "/reports/daily-recon", date=seeded.day.isoformat(), merchant=seeded.merchant_a)
    before = api(server, keys["a"], "/reports/daily-recon", date=(seeded.day - dt.timedelta(days=1)).isoformat(),
                 merchant=seeded.merchant_a)
    assert page.inner_text("#merchant") == seeded.merchant_a and page.inner_text("#day") == seeded.day.isoformat()
    assert "UTC" in page.inner_text("#utc-note") and "minor units" in page.inner_text("#utc-note")

    def lines(answer, key_fields, items):
        return {tuple(x[f] for f in key_fields): (x["count"], x["amount_cents"]) for x in answer[items]}

    for table_id, key_fields, items in (("recon", ("currency", "status"), "by_status"), ("totals", ("currency",), "totals")):
        now, prev = lines(today, key_fields, items), lines(before, key_fields, items)
        rows = page.evaluate(READ_TABLE, table_id)
        assert [tuple(r[f][0] for f in key_fields) for r in rows] == sorted(now.keys() | prev.keys())
        for r in rows:
            k = tuple(r[f][0] for f in key_fields)
            (n, amount), (pn, pamount) = now.get(k, (0, 0)), prev.get(k, (0, 0))
            assert (r["count"][0], r["amount_cents"][0]) == (str(n), str(amount)), k
            assert (r["count"][1], r["amount_cents"][1]) == (shown_count(n), shown_count(amount)), k
            assert (r["previous_count"][0], r["previous_amount_cents"][0]) == (str(pn), str(pamount)), k
            assert r["count_change"][0] == str(n - pn) and r["amount_cents_change"][0] == str(amount - pamount), k
            assert r["amount_cents_change"][1] == (f"{amount - pamount:+,}" if amount != pamount else "0"), k
    assert len(today["by_status"]) >= 5  # the seeded day really has lines (an empty page would pass the loop)
    assert_csv_is_the_table(page, page.get_attribute("a.csv", "href"), "recon")
    page.screenshot(path=screenshots / "daily-recon.png", full_page=True)


def test_rates_page_charts_and_tables_the_json_rates_per_day(page, server, keys, seeded, screenshots) -> None:
    login(page, server.base, keys["a"])
    first, last = seeded.first_day, seeded.day
    page.goto(f"{server.base}/ui/rates?from={first}&to={last}&merchant={seeded.merchant_a}")
    rows = page.evaluate(READ_TABLE, "rates")
    expected_rows = []
    lines: dict[str, dict[str, list]] = {}
    for d in days(first, last):
        params = dict(merchant=seeded.merchant_a, **{"from": d.isoformat(), "to": d.isoformat()})
        refunds = {c["currency"]: c for c in api(server, keys["a"], "/reports/refund-rate", **params)["by_currency"]}
        declines = {c["currency"]: c for c in api(server, keys["a"], "/reports/declines", **params)["by_currency"]}
        for currency in sorted(refunds.keys() | declines.keys()):
            expected_rows.append((d.isoformat(), currency, refunds.get(currency, {}), declines[currency]))
        for currency in ("EUR", "JPY", "USD"):
            r, dc = refunds.get(currency, {}), declines.get(currency, {})
            for name, value in (("refund rate", r.get("refund_amount_rate")), ("chargeback rate", r.get("chargeback_amount_rate")),
                                ("decline rate", dc.get("decline_amount_rate"))):
                lines.setdefault(currency, {}).setdefault(name, []).append(value)
    assert [(r["date"][0], r["currency"][0]) for r in rows] == [(d, c) for d, c, _, _ in expected_rows]
    assert len(rows) == 9  # three currencies on each of the three days
    for row, (d, currency, refunds, declines) in zip(rows, expected_rows):
        for name, value in {**refunds, **declines}.items():
            if name in row and name != "currency":
                assert row[name][0] == exact(value), (d, currency, name)
        assert row["refund_amount_rate"][1] == shown_rate(refunds.get("refund_amount_rate")), (d, currency)
        assert row["decline_amount_rate"][1] == shown_rate(declines["decline_amount_rate"]), (d, currency)
        assert row["captured_amount_cents"][1] == shown_count(refunds.get("captured_amount_cents", 0)), (d, currency)
    page.wait_for_function("document.documentElement.dataset.chartsReady === '3'")
    for currency, want in lines.items():
        drawn = page.evaluate(READ_CHART, f"rates-{currency}")
        assert drawn == {"labels": [d.isoformat() for d in days(first, last)], "lines": want}, currency
    assert_csv_is_the_table(page, page.get_attribute("a.csv", "href"), "rates")
    page.screenshot(path=screenshots / "rates.png", full_page=True)


def test_latency_page_charts_percentiles_per_method_and_states_the_error_bound(page, server, keys, seeded, screenshots) -> None:
    login(page, server.base, keys["a"])  # latency is platform-wide: any valid key reads it
    first, last = seeded.first_day, seeded.day
    page.goto(f"{server.base}/ui/latency?from={first}&to={last}")
    rows = page.evaluate(READ_TABLE, "latency")
    expected = []
    lines: dict[str, dict[str, list]] = {}
    bound = None
    for d in days(first, last):
        answer = api(server, keys["a"], "/reports/latency", **{"from": d.isoformat(), "to": d.isoformat()})
        bound = answer["percentile_max_relative_error"]
        by_method = {m["payment_method"]: m for m in answer["methods"]}
        expected += [(d.isoformat(), by_method[m]) for m in sorted(by_method)]
        for method in ("bank_transfer", "card", "wallet"):
            for p in ("p50", "p95", "p99"):
                lines.setdefault(method, {}).setdefault(p, []).append(by_method.get(method, {}).get(f"{p}_ms"))
    assert [(r["date"][0], r["payment_method"][0]) for r in rows] == [(d, m["payment_method"]) for d, m in expected]
    assert len(rows) == 9
    for row, (d, m) in zip(rows, expected):
        for name in ("count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"):
            assert row[name][0] == exact(m[name]), (d, m["payment_method"], name)
            assert row[name][1] == (shown_count(m[name]) if name == "count" else shown_ms(m[name])), (d, name)
    assert f"{bound * 100:.2f}%" in page.inner_text("#error-bound")
    page.wait_for_function("document.documentElement.dataset.chartsReady === '3'")
    for method, want in lines.items():
        drawn = page.evaluate(READ_CHART, f"latency-{method}")
        assert drawn == {"labels": [d.isoformat() for d in days(first, last)], "lines": want}, method
    assert_csv_is_the_table(page, page.get_attribute("a.csv", "href"), "latency")
    page.screenshot(path=screenshots / "latency.png", full_page=True)
    # The filter form as a person submits it: the empty payment-method field means every method.
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert page.url.endswith("payment_method=") and page.evaluate(READ_TABLE, "latency") == rows
    # A malformed one is a 422 page naming the parameter and its accepted form.
    response = page.goto(f"{server.base}/ui/latency?from={first}&to={last}&payment_method=Card%20X")
    assert response.status == 422 and "payment_method" in page.inner_text(".problem")


def test_ledger_page_marks_each_hour_and_links_its_runs_in_the_dagster_ui(page, server, keys, seeded, screenshots) -> None:
    login(page, server.base, keys["all"])
    page.goto(f"{server.base}/ui/ledger?date={seeded.ledger_day}")
    answer = api(server, keys["all"], "/reports/pipeline-recon", date=seeded.ledger_day.isoformat())
    rows = page.evaluate(READ_TABLE, "ledger")
    assert len(rows) == len(answer["hours"]) == 24
    figures = ("raw_lines", "curated", "quarantined", "duplicates_removed", "published", "loaded", "counted")
    for row, hour in zip(rows, answer["hours"]):
        assert row["landing_hour"][0] == hour["landing_hour"]
        for f in figures:
            assert row[f][0] == exact(hour[f]), (hour["landing_hour"], f)
        assert row["reconciled"][0] == ("true" if hour["reconciled"] else "false")
        assert row["first_difference"][0] == exact(hour["first_difference"])
    by_hour = {h["landing_hour"][11:13]: h for h in answer["hours"]}
    assert (by_hour["10"]["reconciled"], by_hour["11"]["first_difference"], by_hour["12"]["first_difference"]) == (
        True, "published", "curated")
    assert page.inner_text("#hours-reconciled") == f"{answer['hours_reconciled']} of 24" == "1 of 24"
    for i, hour in enumerate(answer["hours"]):
        links = page.locator(f"#ledger tbody tr:nth-child({i + 1}) td[data-col=run_ids] a")
        want = list(dict.fromkeys(hour["runs"][s] for s in figures if s in hour["runs"]))
        assert [links.nth(j).get_attribute("href") for j in range(links.count())] == [
            f"{server.dagster_ui_url.rstrip('/')}/runs/{run_id}" for run_id in want]
    assert set(seeded.run_ids) == {r for h in answer["hours"] for r in h["runs"].values()}
    assert_csv_is_the_table(page, page.get_attribute("a.csv", "href"), "ledger")
    page.screenshot(path=screenshots / "ledger.png", full_page=True)


def test_a_merchant_a_key_gets_a_403_page_for_merchant_b(page, server, keys, seeded, screenshots) -> None:
    login(page, server.base, keys["a"])
    b_amounts = ("987,654,321", "123,456,789", "987654321", "123456789")
    for path in (
        f"/ui/daily-recon?date={seeded.day}&merchant={seeded.merchant_b}",
        f"/ui/rates?from={seeded.first_day}&to={seeded.day}&merchant={seeded.merchant_b}",
        f"/ui/daily-recon?date={seeded.day}&merchant={seeded.merchant_b}&format=csv",
        f"/ui/ledger?date={seeded.ledger_day}",  # every merchant's volumes: all-merchant keys only
    ):
        response = page.goto(server.base + path)
        assert response.status == 403, path
        text = page.inner_text("body")
        assert "403" in page.inner_text("h1") and not any(a in text for a in b_amounts), path
    page.goto(f"{server.base}/ui/daily-recon?date={seeded.day}&merchant={seeded.merchant_b}")
    page.screenshot(path=screenshots / "forbidden.png")
    # The same key still reads its own merchant (so the 403 is about B, not a broken session).
    assert page.goto(f"{server.base}/ui/daily-recon?date={seeded.day}").status == 200
    assert page.inner_text("#merchant") == seeded.merchant_a
    # And the key with every merchant sees B's amounts.
    assert requests.get(f"{server.base}/reports/daily-recon", params={"date": seeded.day.isoformat(), "merchant": seeded.merchant_b},
                        headers={"X-API-Key": keys["all"]}, timeout=30).json()["totals"][0]["amount_cents"] == 123_456_789
