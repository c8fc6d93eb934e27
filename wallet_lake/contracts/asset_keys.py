"""The pipeline's Dagster asset keys, defined once: the assets, their deps, the job, sensors,
checks, freshness policies, the pipeline ledger (named in the pipeline-recon API) and the tests
all import these.

Plain string paths, so that modules which must not import Dagster (the API, through
serving.ledger) name the keys too; Dagster code makes the key with `dg.AssetKey(path)` (`deps=`
takes no tuple paths)."""

from __future__ import annotations

AssetPath = tuple[str, ...]

# In flow order: landing -> curated -> topic -> table.
RAW_PAYMENTS: AssetPath = ("raw_payments",)
CURATED_PAYMENTS: AssetPath = ("curated_payments",)
TOPIC_PAYMENTS_CURATED: AssetPath = ("kafka", "payments_curated")
TABLE_CURATED_PAYMENTS: AssetPath = ("postgres", "curated_payments")

# Daily, beside the pipeline: closed dts compacted for lake queries (lake/compaction.py).
CURATED_PAYMENTS_DAILY: AssetPath = ("curated_payments_daily",)

PIPELINE: tuple[AssetPath, ...] = (RAW_PAYMENTS, CURATED_PAYMENTS, TOPIC_PAYMENTS_CURATED, TABLE_CURATED_PAYMENTS)


def user_string(path: AssetPath) -> str:
    """The key as Dagster prints it (AssetKey.to_user_string), e.g. kafka/payments_curated."""
    return "/".join(path)
