"""transforms.curate.run_timestamp: a run's time on every row, equal to F.lit of it, and kept out of
Spark's generated code, so a warm session's next run reuses the classes (and the JIT's work) of
the last one (docs/benchmarks.md, session 32)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wallet_lake.transforms.curate import run_timestamp

UTC = timezone.utc
VALUES = [
    datetime(2026, 12, 6, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2026, 12, 7, 5, 30, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # before the epoch: negative micros
    datetime(1583, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2026, 12, 7, 1, 2, 3, 456_789),  # naive: converted as F.lit converts it
]


@pytest.mark.parametrize("ansi", ["false", "true"])
def test_the_same_instant_as_a_literal_on_every_row_of_every_partition(spark, ansi):
    spark.conf.set("spark.sql.ansi.enabled", ansi)
    try:
        for value in VALUES:
            # Compared in Spark, as microseconds: Python cannot hold every instant Spark can.
            rows = spark.range(0, 40, 1, 4).select(
                F.spark_partition_id().alias("p"), F.unix_micros(run_timestamp(value)).alias("t"), F.unix_micros(F.lit(value)).alias("want")
            ).collect()
            assert {r.p for r in rows} == {0, 1, 2, 3}
            assert all(r.t == r.want for r in rows), value
    finally:
        spark.conf.unset("spark.sql.ansi.enabled")


def test_before_the_gregorian_calendar_the_instant_its_text_names(spark):
    # F.lit passes a datetime through java.sql.Timestamp, whose Julian calendar moves such dates
    # (year 1 by two days); the text cast and run_timestamp keep the proleptic Gregorian instant.
    value = datetime(1, 1, 1, tzinfo=UTC)
    got = spark.range(1).select(F.unix_micros(run_timestamp(value)), F.unix_micros(F.lit(value.isoformat()).cast("timestamp"))).first()
    assert got[0] == got[1] == -62135596800000000


def test_non_null_and_a_timestamp(spark):
    field = spark.range(1).select(run_timestamp(VALUES[0]).alias("t")).schema["t"]
    assert field.dataType.typeName() == "timestamp"
    assert field.nullable is False


def _compiles(spark, make_column, hour: int) -> int:
    """Classes Spark compiles for the second of two runs of one plan that differ only in the value
    (values of `hour` that no other call uses: Spark keeps the classes it compiled)."""
    metrics = spark._jvm.org.apache.spark.metrics.source.CodegenMetrics
    counts = []
    for value in (datetime(2026, 12, 7, hour, tzinfo=UTC), datetime(2026, 12, 7, hour, 0, 0, 1, tzinfo=UTC)):
        before = metrics.METRIC_COMPILATION_TIME().getCount()
        got = spark.range(0, 100, 1, 2).select((F.col("id") * 3).alias("x"), F.unix_micros(make_column(value)).alias("t")).where("x % 2 = 0").collect()
        counts.append(metrics.METRIC_COMPILATION_TIME().getCount() - before)
        assert len(got) == 50 and {r.t for r in got} == {T.TimestampType().toInternal(value)}
    return counts[1]


def test_a_new_value_compiles_no_new_class(spark):
    # What it avoids: a timestamp literal is written into the generated Java, so a new value
    # compiles the stage again (this also shows that the count below can see a compile).
    assert _compiles(spark, F.lit, 10) > 0
    assert _compiles(spark, run_timestamp, 11) == 0
