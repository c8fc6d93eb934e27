"""Reading the curated lake through its manifests, with pyarrow only (never pyspark).

A landing hour's manifest (lake/manifests.py) names its current files; a reader that goes
through it sees one version of the hour, whole: never a run's upload in progress, never the
files a swap superseded, never an orphan a dead run left. Every reader of curated data uses this
module: the Kafka publish and the Postgres verification (one hour as an Arrow table), the
quarantine replay, and the lake query layer (lake/query.py: the files of every hour from a dt
on, through ManifestIndex). pyarrow is imported inside the functions that read Parquet, so the
query layer can import this module at API startup for free."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable, Sequence
from urllib.parse import unquote

from wallet_lake.contracts.landing import CURATED_PREFIX, MANIFEST_PREFIX, hour_token
from wallet_lake.lake import manifests
from wallet_lake.lake.store import LakeStore


def partition_values(rel: str) -> dict[str, str]:
    """{"dt": ..., "merchant_id": ...} of a Hive path such as dt=2026-11-24/merchant_id=m%2F1
    (Spark escapes special characters with %XX)."""
    return {k: unquote(v) for k, v in (seg.split("=", 1) for seg in rel.split("/") if "=" in seg)}


def curated_key_partitions(key: str) -> dict[str, str]:
    """The partition values of a curated key (curated/payments/dt=.../merchant_id=.../file)."""
    return partition_values(key[len(CURATED_PREFIX):].rsplit("/", 1)[0])


def current_curated_keys(store: LakeStore, hours: Sequence[datetime] | None = None) -> list[str]:
    """The curated files readers should see: those listed by the hours' manifests (every
    curated hour when `hours` is None). Files of a run in progress or of a previous run are not."""
    keys: list[str] = []
    for h in manifests.manifest_hours(store) if hours is None else hours:
        keys += manifests.read_manifest(store, h).get("curated_keys", [])
    return sorted(keys)


def published_manifest(store: LakeStore, hour: datetime) -> dict:
    """The hour's manifest; FileNotFoundError when the hour was never curated."""
    manifest = manifests.read_manifest(store, hour)
    if not manifest:
        raise FileNotFoundError(f"landing hour {hour_token(hour)} has no curated manifest: materialize curated_payments first")
    return manifest


def curated_table(store: LakeStore, manifest: dict, columns: list[str] | None = None):
    """The curated rows of one version of an hour (the files `manifest` lists) as one Arrow table
    with the contract's columns in order (or only `columns`, in the contract's order); dt and
    merchant_id come back from the Hive path. Read with the manifest's own run_id, the rows and
    the curation they name cannot disagree."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from wallet_lake.contracts.schema import arrow_schema

    full = arrow_schema()
    unknown = sorted(set(columns or ()) - set(full.names))
    if unknown:
        raise ValueError(f"not curated columns: {unknown}")
    schema = pa.schema([f for f in full if columns is None or f.name in columns])

    def read_one(key: str):
        # dt and merchant_id live in the path (Hive partitioning), not in the file.
        parts = curated_key_partitions(key)
        path_values = {"dt": date.fromisoformat(parts["dt"]), "merchant_id": parts["merchant_id"]}
        in_file = [f.name for f in schema if f.name not in path_values]
        table = pq.read_table(pa.BufferReader(store.get_bytes(key)), columns=in_file, use_threads=False)
        arrays = [
            pa.repeat(pa.scalar(path_values[f.name], f.type), table.num_rows) if f.name in path_values else table.column(f.name).cast(f.type)
            for f in schema
        ]
        return pa.Table.from_arrays(arrays, schema=schema)

    # Files in parallel: a GET waits on the network and Parquet decoding releases the GIL (one
    # hour's 50 files: 1.6 s one by one, see docs/benchmarks.md); the order stays the manifest's.
    keys = manifest.get("curated_keys", [])
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(keys)))) as pool:
        tables = list(pool.map(read_one, keys))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def read_curated_hour_table(store: LakeStore, hour: datetime):
    """Curated rows a landing hour produced (from its manifest): curated_table of its manifest."""
    return curated_table(store, published_manifest(store, hour))


def read_curated_hour(store: LakeStore, hour: datetime) -> list[dict]:
    """Curated rows a landing hour produced (from its manifest), as Python dicts."""
    return read_curated_hour_table(store, hour).to_pylist()


def read_quarantine_hour_table(store: LakeStore, hour: datetime):
    """Quarantined rows of a landing hour (from its manifest) as one Arrow table (None: none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = manifests.read_manifest(store, hour)
    tables = [pq.read_table(pa.BufferReader(store.get_bytes(k))) for k in manifest.get("quarantine_keys", [])]
    return pa.concat_tables(tables) if tables else None


# ------------------------------------------------------------------------------ the whole lake


@dataclass(frozen=True)
class CuratedFile:
    key: str
    dt: date
    size: int | None  # None: the manifest predates sizes (format < 4)


def curated_files(hour_manifests: Iterable[dict], *, dt_from: date | None = None) -> list[CuratedFile]:
    """The current curated files the manifests list, of the partitions dt >= dt_from. Pure."""
    out: list[CuratedFile] = []
    for m in hour_manifests:
        sizes = m.get("file_bytes") or {}
        for key in m.get("curated_keys", []):
            day = date.fromisoformat(curated_key_partitions(key)["dt"])
            if dt_from is None or day >= dt_from:
                out.append(CuratedFile(key, day, sizes.get(key)))
    return sorted(out, key=lambda f: f.key)


class ManifestIndex:
    """The current manifest of every curated hour (or, with another `prefix`, of every
    compacted dt: lake/compaction.py). Each call lists the manifests (one paginated
    LIST) and reads only those whose version changed since the last call: one GET per manifest
    gives one version of its hour, whole. Safe to share between threads."""

    def __init__(self, store: LakeStore, io_threads: int = 16, *, prefix: str = MANIFEST_PREFIX) -> None:
        self.store = store
        self.prefix = prefix
        self.io_threads = io_threads
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, dict]] = {}  # manifest key -> (version listed, body)

    def current(self) -> list[dict]:
        return self.current_versioned()[0]

    def current_versioned(self) -> tuple[list[dict], frozenset[tuple[str, str]]]:
        """current(), and the (key, version) of every manifest it returns: equal versions, equal
        bodies, so a caller may keep what it derived from them."""
        listed = [o for o in self.store.list(self.prefix) if o.key.endswith(".json")]
        with self._lock:
            cache = dict(self._cache)
        stale = [o for o in listed if not o.etag or o.key not in cache or cache[o.key][0] != o.etag]

        def read(key: str) -> dict | None:
            data = self.store.get_optional(key)
            return json.loads(data) if data is not None else None  # deleted since the LIST: no hour

        with ThreadPoolExecutor(max_workers=max(1, min(self.io_threads, len(stale)))) as pool:
            fresh = dict(zip((o.key for o in stale), pool.map(read, [o.key for o in stale])))
        # A body read after the LIST may be newer than the version listed: it is cached under the
        # version listed, which the next LIST no longer shows, so it is simply read again then.
        out, kept = [], {}
        for o in listed:
            body = fresh[o.key] if o.key in fresh else cache[o.key][1]
            if body is not None:
                out.append(body)
                kept[o.key] = (o.etag, body)
        with self._lock:
            self._cache = kept
        return out, frozenset((k, v[0]) for k, v in kept.items() if v[0])
