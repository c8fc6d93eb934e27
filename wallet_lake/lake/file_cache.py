"""Local copies of lake files for DuckDB in the API process (WL_API_LAKE_CACHE_DIR).

Curated, compacted and index files are never rewritten: every run writes new, run-scoped keys and
the manifests say which keys are current. A copy of a key is therefore valid for as long as the
key exists, and the cache needs no invalidation: a query still asks the manifests which keys to
read, and only the bytes come from the local copy. One whole-object GET per file replaces the
several ranged reads a Parquet reader makes per file over S3, and DuckDB's own reader then opens
local files (lake/query.py).

The copies are the lake's data decrypted on the API host's disk: the folder is created 0700 for
the API's user. Its size is bounded (WL_API_LAKE_CACHE_MAX_BYTES): past the bound, the least
recently used copies go, never those of the request being served. Several API processes may
share the folder; a copy one of them evicts while another is about to read it fails that query
with LakeUnavailable (503, retry), never a wrong answer."""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


class FileCache:
    def __init__(self, root: str | Path, max_bytes: int, fetch: Callable[[str], bytes], *, io_threads: int = 16) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        self.max_bytes = max_bytes
        self.fetch = fetch
        self.io_threads = io_threads
        self._lock = threading.Lock()
        self._sizes: OrderedDict[str, int] = OrderedDict()  # key -> bytes, least recently used first
        self._total = 0
        self.hits = self.misses = 0
        for dirpath, _, names in os.walk(self.root):  # copies an earlier process left
            for name in names:
                path = Path(dirpath) / name
                if ".part-" in name:
                    path.unlink(missing_ok=True)
                    continue
                key = path.relative_to(self.root).as_posix()
                self._sizes[key] = path.stat().st_size
                self._total += self._sizes[key]

    def path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"not a lake key: {key!r}")
        return self.root / key

    def _download(self, key: str) -> int:
        data = self.fetch(key)
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_name(f"{target.name}.part-{uuid.uuid4().hex}")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return len(data)

    def local_paths(self, keys: Sequence[str]) -> list[str]:
        """Local paths of `keys`, fetching the ones not here yet (a few at a time)."""
        with self._lock:
            missing = [k for k in dict.fromkeys(keys) if k not in self._sizes or not self.path(k).exists()]
            for k in keys:
                if k in self._sizes:
                    self._sizes.move_to_end(k)
            self.hits += len(set(keys)) - len(missing)
            self.misses += len(missing)
        if missing:
            with ThreadPoolExecutor(max_workers=max(1, min(self.io_threads, len(missing)))) as pool:
                sizes = list(pool.map(self._download, missing))
            with self._lock:
                for k, n in zip(missing, sizes):
                    self._total += n - self._sizes.pop(k, 0)
                    self._sizes[k] = n
        self._evict(keep=set(keys))
        return [str(self.path(k)) for k in keys]

    def _evict(self, keep: set[str]) -> None:
        with self._lock:
            for key in list(self._sizes):
                if self._total <= self.max_bytes:
                    break
                if key in keep:
                    continue
                self._total -= self._sizes.pop(key)
                self.path(key).unlink(missing_ok=True)

    @property
    def total_bytes(self) -> int:
        return self._total
