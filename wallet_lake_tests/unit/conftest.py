"""Fixtures for the fast unit tests: one local Spark session shared by every test that asks."""

from __future__ import annotations

import pytest

from wallet_lake.transforms.curate import SPARK_CONF


@pytest.fixture(scope="session")
def spark():
    """A small local Spark session with the settings the curation rules depend on (UTC session
    time zone) plus local speed settings; created once, stopped when the test session ends."""
    from pyspark.sql import SparkSession

    conf = {
        **SPARK_CONF,
        "spark.master": "local[1]",
        "spark.app.name": "wallet-lake-unit-tests",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "1",
    }
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
