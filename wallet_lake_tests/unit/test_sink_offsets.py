"""What the Postgres asset waits for: the highest end offset per partition over the hours
published (what it accepts: integration/test_verify_hour.py)."""

from wallet_lake.defs.serving.assets import merge_end_offsets
from wallet_lake.serving.connect import lag

def test_end_offsets_of_several_hours_merge_to_the_highest_per_partition():
    assert merge_end_offsets([{"0": 10, "1": 5}, {"1": 7, "3": 2}, {"4": 0}]) == {0: 10, 1: 7, 3: 2}


def test_lag_counts_uncommitted_messages_and_never_committed_partitions_from_zero():
    assert lag({0: 100, 1: 50, 2: 0}, {0: 90, 1: -1001}) == {0: 10, 1: 50, 2: 0}
