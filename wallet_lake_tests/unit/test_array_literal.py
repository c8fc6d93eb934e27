"""The verification's array literals (serving/verify.py): built in Arrow, they must carry every id
as data, whatever characters it holds (Postgres reads them back in
integration/test_array_literal_pg.py and test_verify_hour.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from wallet_lake.serving.verify import array_literal


def test_strings_are_quoted_and_only_quote_and_backslash_escaped():
    ids = pa.array(["plain", 'say "hi"', "back\\slash", "{braces},comma", "NULL", " spaced\n", ""])
    assert array_literal(ids) == '{"plain","say \\"hi\\"","back\\\\slash","{braces},comma","NULL"," spaced\n",""}'


def test_large_strings_and_integers():
    assert array_literal(pa.array(["a", "b"], pa.large_string())) == '{"a","b"}'
    assert array_literal(pa.array([1_767_225_600_123, -5, 0], pa.int64())) == "{1767225600123,-5,0}"


def test_empty_arrays():
    assert array_literal(pa.array([], pa.string())) == "{}"
    assert array_literal(pa.array([], pa.int64())) == "{}"


def test_a_slice_gives_only_its_own_values():
    assert array_literal(pa.array(["a", 'b"', "c", "d"]).slice(1, 2)) == '{"b\\"","c"}'
    assert array_literal(pa.array([1, 2, 3], pa.int64()).slice(2)) == "{3}"


def test_nulls_and_other_types_are_refused():
    with pytest.raises(ValueError, match="null"):
        array_literal(pa.array(["a", None]))
    with pytest.raises(TypeError, match="double"):
        array_literal(pa.array([1.5]))
