"""The one placeholder style (`%(name)s`) and its renderings for DuckDB and asyncpg."""

from __future__ import annotations

import pytest

from api.reports.answer_cache import versioned_sql
from api.reports.sql import REPORT_QUERIES
from wallet_lake.sql_placeholders import names, to_duckdb, to_positional


def test_positional_numbers_each_name_once_in_order_of_first_use() -> None:
    text, order = to_positional("SELECT %(b)s, %(a)s WHERE x = %(b)s OR y LIKE 'q%%'")
    assert text == "SELECT $1, $2 WHERE x = $1 OR y LIKE 'q%'"
    assert order == ("b", "a")


def test_a_lone_percent_sign_is_refused() -> None:
    with pytest.raises(ValueError, match="lone '%'"):
        to_positional("SELECT 5 % 2")


def test_no_placeholders_is_the_text_itself() -> None:
    assert to_positional("select 1") == ("select 1", ())


def test_duckdb_binds_by_name() -> None:
    assert to_duckdb("a = %(x)s AND b = %(y)s") == "a = $x AND b = $y"


@pytest.mark.parametrize("name", sorted(REPORT_QUERIES))
def test_every_report_statement_renders_for_asyncpg(name: str) -> None:
    """The statements the API sends: each report wrapped by the answer cache."""
    query = REPORT_QUERIES[name]
    text, order = to_positional(versioned_sql(query))
    assert "%" not in text and set(order) == names(versioned_sql(query)) >= query.params
    assert [f"${i}" in text for i in range(1, len(order) + 1)] == [True] * len(order)
