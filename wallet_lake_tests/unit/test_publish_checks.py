"""The topic asset's key check fails on every kind of mismatch between acknowledged keys and the
hour's curated payment_ids, and passes only on an exact match."""

from wallet_lake.publish.checks import compare_published_keys


def test_keys_check_passes_when_every_curated_id_is_acknowledged_once():
    c = compare_published_keys(["a", "b", "c"], [b"c", b"a", b"b"])
    assert c.passed and (c.curated, c.delivered) == (3, 3)


def test_keys_check_fails_on_a_curated_id_never_acknowledged():
    c = compare_published_keys(["a", "b", "c"], [b"a", b"b"])
    assert not c.passed and c.missing == ["c"] and c.missing_count == 1


def test_keys_check_fails_on_a_key_that_is_not_a_curated_id_of_the_hour():
    c = compare_published_keys(["a", "b"], [b"a", b"b", b"zz"])
    assert not c.passed and c.unexpected == ["zz"]


def test_keys_check_fails_on_a_key_acknowledged_twice():
    c = compare_published_keys(["a", "b"], [b"a", b"b", b"b"])
    assert not c.passed and c.repeated == ["b"] and not c.missing and not c.unexpected


def test_keys_check_metadata_counts_and_samples_the_mismatch():
    c = compare_published_keys([f"id-{i}" for i in range(100)], [])
    md = c.metadata()
    assert md["missing"] == 100 and len(md["examples"]["missing"]) == 20


def test_equal_lengths_with_a_repeated_curated_id_are_not_equal_multisets() -> None:
    c = compare_published_keys(["a", "a"], [b"a", b"b"])
    assert not c.passed and (c.missing_count, c.unexpected_count) == (1, 1)
    assert compare_published_keys(["a", "b"], ["b", "a"]).passed  # keys given as text
