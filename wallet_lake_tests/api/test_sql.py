"""Report SQL: parameterized only, placeholders matching what the runners bind."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from api.reports.sql import DAILY_RECON, REPORT_QUERIES


@pytest.mark.parametrize("query", list(REPORT_QUERIES.values()), ids=list(REPORT_QUERIES))
def test_only_named_placeholders(query) -> None:
    # Positional %s or str.format fields would mean values spliced some other way.
    without_named = re.sub(r"%\(\w+\)s", "", query.sql)
    assert "%" not in without_named
    assert "{" not in query.sql and "}" not in query.sql
    assert query.params


def test_daily_recon_binds_date_and_merchant() -> None:
    assert DAILY_RECON.params == {"report_date", "merchant_id"}
    assert REPORT_QUERIES["daily-recon"] is DAILY_RECON
    bound = DAILY_RECON.bind(report_date=dt.date(2026, 11, 24), merchant_id="m")
    assert bound == {"report_date": dt.date(2026, 11, 24), "merchant_id": "m"}


@pytest.mark.parametrize(
    "params",
    [{"report_date": dt.date(2026, 11, 24)}, {"report_date": dt.date(2026, 11, 24), "merchant_id": "m", "extra": 1}],
)
def test_bind_rejects_missing_or_extra_parameters(params) -> None:
    with pytest.raises(TypeError, match="daily-recon"):
        DAILY_RECON.bind(**params)
