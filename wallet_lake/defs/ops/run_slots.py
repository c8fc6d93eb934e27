"""Run slots on a two-core machine: dagster.yaml's queue lets one heavy run go at a time (an hour
through the pipeline, the daily compaction: Spark and whole-day reads that would starve each
other) and keeps a second slot for light runs, the freshness sensor's check runs (~5 s), which
used to hold the only slot while an hour's run waited behind them (9.5 s in bench/freshness.py).

Every heavy job carries HEAVY_RUN_TAG; dagster.yaml limits that key and value to one run (a test
keeps the two equal)."""

HEAVY_RUN_TAG = ("wallet_lake/run", "heavy")
HEAVY_RUN_TAGS = dict([HEAVY_RUN_TAG])
