"""The verification's array literals (serving/verify.array_literal) read back by Postgres as the
very values Arrow held: any text (quotes, backslashes, braces, commas, spaces, newlines, the word
NULL, non-ASCII), any bigint. The stack's Postgres parses them; nothing is written."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallet_lake.serving.verify import array_literal

pytestmark = pytest.mark.integration

# Postgres text holds any Unicode scalar value but NUL; lean on the characters array syntax uses.
TEXT = st.text(
    alphabet=st.one_of(st.sampled_from('"\\{},; \t\n\rNUL'), st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
    max_size=20,
)


@pytest.fixture(scope="module")
def conn(stack_resources):
    with stack_resources["postgres"].connect() as c:
        yield c


def read_back(conn, literal: str, sql_type: str) -> list:
    with conn.transaction():  # one failed parse must not abort the next example's statement
        return conn.execute(f"SELECT %s::{sql_type}[]", (literal,)).fetchone()[0]


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, max_size=30))
def test_text_arrays_round_trip(conn, values):
    assert read_back(conn, array_literal(pa.array(values, pa.string())), "text") == values


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=30))
def test_bigint_arrays_round_trip(conn, values):
    assert read_back(conn, array_literal(pa.array(values, pa.int64())), "bigint") == values
