"""What the Postgres asset waits for and what it accepts: the highest end offset per partition
over the hours published, and rows at least as new as curated at the sink's millisecond precision."""

from datetime import datetime, timezone

from wallet_lake.defs.serving.assets import merge_end_offsets
from wallet_lake.serving.connect import lag
from wallet_lake.serving.verify import floor_millis, stale_or_missing

UTC = timezone.utc


def test_end_offsets_of_several_hours_merge_to_the_highest_per_partition():
    assert merge_end_offsets([{"0": 10, "1": 5}, {"1": 7, "3": 2}, {"4": 0}]) == {0: 10, 1: 7, 3: 2}


def test_sink_precision_is_milliseconds_so_microseconds_do_not_count_as_older():
    curated = datetime(2026, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    stored = datetime(2026, 3, 1, 12, 0, 0, 123_000, tzinfo=UTC)
    assert floor_millis(curated) == stored
    assert stale_or_missing({"p": curated}, {"p": stored}) == []


def test_missing_and_older_rows_are_reported():
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    older = datetime(2026, 3, 1, 11, tzinfo=UTC)
    newer = datetime(2026, 3, 1, 13, tzinfo=UTC)
    assert stale_or_missing({"a": t, "b": t, "c": t}, {"a": older, "c": newer}) == ["a", "b"]


def test_lag_counts_uncommitted_messages_and_never_committed_partitions_from_zero():
    assert lag({0: 100, 1: 50, 2: 0}, {0: 90, 1: -1001}) == {0: 10, 1: 50, 2: 0}
