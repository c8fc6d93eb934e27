"""Publish one curated landing hour to the topic: the rows of one version of the hour (its
manifest's, read through lake/reader.py with pyarrow), each acknowledged key compared with the
hour's payment_ids (publish/checks.py). No Dagster: the topic asset records and reports it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wallet_lake.lake.reader import curated_table, published_manifest
from wallet_lake.lake.store import LakeStore
from wallet_lake.publish.checks import KeyComparison, compare_published_keys
from wallet_lake.publish.producer import PublishResult, publish
from wallet_lake.publish.records import SCHEMA_HEADERS, curated_records


@dataclass(frozen=True)
class HourPublished:
    hour: datetime
    curation_run_id: str | None  # the curation whose rows were sent (the manifest read)
    result: PublishResult
    keys: KeyComparison

    @property
    def published_ids(self) -> int:
        """The hour's curated payment_ids the broker acknowledged (the ledger's `published`)."""
        return self.keys.curated - self.keys.missing_count


def publish_hour(store: LakeStore, hour: datetime, topic: str, producer_conf: dict) -> HourPublished:
    manifest = published_manifest(store, hour)
    table = curated_table(store, manifest)
    result = publish(curated_records(table), topic, producer_conf, collect_keys=True, headers=SCHEMA_HEADERS)
    keys = compare_published_keys(table.column("payment_id").to_pylist(), result.delivered_keys)
    return HourPublished(hour, manifest.get("run_id"), result, keys)
