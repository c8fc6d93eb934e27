"""The quarantine job's small tables (lake/spark_runner): the same rows whichever way they are made."""

from __future__ import annotations

from wallet_lake.lake import spark_runner


def test_positions_are_the_same_rows_as_a_literal_and_as_python_rows(spark):
    positions = [0, 7, 2**33 + 5, 2**62]
    want = sorted((p, True) for p in positions)
    literal = spark_runner._positions_table(spark, positions)
    python = spark_runner._positions_table(spark, positions, literal_at_most=len(positions) - 1)
    for table in (literal, python):
        assert table.dtypes == [("_pos", "bigint"), ("_wanted", "boolean")]
        assert sorted(tuple(r) for r in table.collect()) == want


def test_no_positions_is_an_empty_table(spark):
    assert spark_runner._positions_table(spark, []).collect() == []


def test_a_jvm_table_holds_its_strings_as_given(spark):
    rows = [{"_file": 'file:/lake/a "b"\\c/é+ 😀%20.ndjson', "source_object": "landing/é 😀"},
            {"_file": "file:/x", "source_object": None}]
    got = spark_runner._jvm_table(spark, rows, "_file string, source_object string")
    assert got.dtypes == [("_file", "string"), ("source_object", "string")]
    assert [r.asDict() for r in got.collect()] == rows
