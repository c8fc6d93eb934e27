"""The answer cache's pure parts (api/reports/answer_cache.py): the statement it renders from a
report's own SQL, how it reads that statement's result, and its bound."""

from __future__ import annotations

import datetime as dt

import pytest

from api.reports.answer_cache import AnswerCache, Kept, split_result, versioned_sql
from api.reports.sql import REPORT_QUERIES, ReportQuery

COLUMNS = ["as_of", "versions", "read_rows", "row_present", "currency", "payment_count"]
NOW = dt.datetime(2026, 12, 4, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("query", REPORT_QUERIES.values(), ids=lambda q: q.name)
def test_every_report_is_wrapped_around_its_own_text(query: ReportQuery) -> None:
    wrapped = versioned_sql(query)
    assert query.sql in wrapped
    # The report's rows are read only when nothing is kept or the versions moved.
    assert "NOT %(have_kept)s OR v.versions IS DISTINCT FROM CAST(%(kept_versions)s AS bigint[])" in wrapped


def test_a_report_may_not_use_the_wrappers_parameter_names() -> None:
    with pytest.raises(ValueError, match="first_dt"):
        versioned_sql(ReportQuery("clash", "SELECT 1 WHERE %(first_dt)s IS NULL"))


def test_rows_read_are_split_from_the_wrappers_columns() -> None:
    result = [(NOW, [11, 12, 3, 7], True, True, "EUR", 2), (NOW, [11, 12, 3, 7], True, True, "USD", 1)]
    as_of, versions, read, kept = split_result(COLUMNS, result)
    assert (as_of, versions, read) == (NOW, (11, 12, 3, 7), True)
    assert kept == Kept((11, 12, 3, 7), ("currency", "payment_count"), (("EUR", 2), ("USD", 1)))
    assert kept.mappings() == [{"currency": "EUR", "payment_count": 2}, {"currency": "USD", "payment_count": 1}]


def test_a_report_read_with_no_rows_is_an_empty_answer() -> None:
    # The LEFT JOIN's one row, its report side null: an answer with no rows, not a row of nulls.
    _, versions, read, kept = split_result(COLUMNS, [(NOW, [11, 12], True, None, None, None)])
    assert (versions, read, kept.rows) == ((11, 12), True, ())


def test_a_report_not_read_says_so() -> None:
    _, versions, read, kept = split_result(COLUMNS, [(NOW, [11, 12, 9], False, None, None, None)])
    assert (versions, read, kept.rows) == ((11, 12, 9), False, ())


def test_anything_else_is_refused() -> None:
    with pytest.raises(ValueError):
        split_result(["currency", "payment_count"], [("EUR", 2)])
    with pytest.raises(ValueError):
        split_result(COLUMNS, [])
    # No read flag or no versions: never taken as "the kept answer holds".
    with pytest.raises(ValueError):
        split_result(COLUMNS, [(NOW, [11, 12], None, None, None, None)])
    with pytest.raises(ValueError):
        split_result(COLUMNS, [(NOW, None, False, None, None, None)])


def test_the_cache_keeps_at_most_its_rows_and_none_when_off() -> None:
    cache = AnswerCache(7)  # each answer counts its rows plus one
    q = REPORT_QUERIES["daily-recon"]
    keys = [cache.key(q, {"report_date": dt.date(2026, 1, d), "merchant_id": "m"}) for d in (1, 2, 3, 4)]
    two_rows = ((1,), (2,))
    for i, key in enumerate(keys[:3]):
        cache.put(key, Kept((i,), ("n",), two_rows))
    # 3 answers of 3 = 9 > 7: the least recently used went.
    assert len(cache) == 2 and cache.rows == 6 and cache.get(keys[0]) is None and cache.get(keys[2]) == Kept((2,), ("n",), two_rows)
    cache.put(keys[3], Kept((3,), ("n",), tuple((i,) for i in range(7))))  # 8 > 7 on its own: not kept
    assert cache.get(keys[3]) is None and len(cache) == 2
    # Parameter order does not matter; values do.
    assert cache.key(q, {"merchant_id": "m", "report_date": dt.date(2026, 1, 3)}) == keys[2]
    off = AnswerCache(0)
    off.put(keys[0], Kept((1,), (), ()))
    assert off.get(keys[0]) is None and len(off) == 0
