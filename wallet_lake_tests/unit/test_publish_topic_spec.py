"""payments.curated's spec (compacted, 6 partitions, min ISR below RF) and the comparison that
reports every way an existing topic can differ from it."""

from wallet_lake.publish.topic import curated_topic_spec, topic_problems


def test_curated_topic_is_compacted_with_min_isr_one_below_replication():
    spec = curated_topic_spec("payments.curated", replication_factor=3)
    assert spec.config["cleanup.policy"] == "compact"
    assert spec.config["min.insync.replicas"] == "2"
    assert curated_topic_spec("t").config["min.insync.replicas"] == "1"
    assert spec.partitions == 6


def test_matching_topic_has_no_problems():
    spec = curated_topic_spec("t")
    assert topic_problems(spec, 6, 1, dict(spec.config, **{"retention.ms": "1"})) == []


def test_every_difference_is_reported_with_actual_and_expected_values():
    spec = curated_topic_spec("t")
    config = dict(spec.config, **{"cleanup.policy": "delete"})
    del config["min.compaction.lag.ms"]
    problems = topic_problems(spec, 3, 2, config)
    assert "partitions=3, expected 6" in problems
    assert "replication factor=2, expected 1" in problems
    assert "cleanup.policy=delete, expected compact" in problems
    assert any(p.startswith("min.compaction.lag.ms is not reported") for p in problems)
