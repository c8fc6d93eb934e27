"""lake/file_cache.py: copies of immutable lake keys, bounded, least recently used evicted first,
never a key of the request being served; a key is fetched once."""

from __future__ import annotations

import os

import pytest

from wallet_lake.lake.file_cache import FileCache


def test_fetches_once_evicts_least_recently_used_and_keeps_the_request(tmp_path):
    fetched: list[str] = []

    def fetch(key: str) -> bytes:
        fetched.append(key)
        return key.encode() * 10  # 10 bytes per character of the key

    cache = FileCache(tmp_path / "c", max_bytes=250, fetch=fetch)
    a, b = cache.local_paths(["d/a.parquet", "d/b.parquet"])  # 110 bytes each
    assert open(a, "rb").read() == b"d/a.parquet" * 10 and fetched == ["d/a.parquet", "d/b.parquet"]
    cache.local_paths(["d/a.parquet"])  # a hit, and a is now the most recently used
    assert fetched == ["d/a.parquet", "d/b.parquet"] and (cache.hits, cache.misses) == (1, 2)
    cache.local_paths(["d/c.parquet"])  # 330 bytes > 250: b (least recently used) goes
    assert not os.path.exists(b) and os.path.exists(a) and cache.total_bytes == 220
    # A request larger than the bound keeps all of its own files.
    paths = cache.local_paths(["d/x.parquet", "d/y.parquet", "d/z.parquet"])
    assert all(os.path.exists(p) for p in paths) and not os.path.exists(a)
    assert oct(os.stat(tmp_path / "c").st_mode & 0o777) == "0o700"
    # Another process finds the copies (and drops half-written ones).
    (tmp_path / "c" / "d" / "w.parquet.part-1").write_bytes(b"half")
    again = FileCache(tmp_path / "c", max_bytes=10**6, fetch=fetch)
    assert again.total_bytes == cache.total_bytes and not (tmp_path / "c" / "d" / "w.parquet.part-1").exists()


def test_refuses_keys_outside_its_folder(tmp_path):
    cache = FileCache(tmp_path, max_bytes=100, fetch=lambda k: b"")
    for key in ("../etc/passwd", "/etc/passwd", "a/../../b"):
        with pytest.raises(ValueError):
            cache.local_paths([key])
