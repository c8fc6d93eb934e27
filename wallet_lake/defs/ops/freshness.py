"""How fresh every asset must be, per landing hour, and the checks that fail when it is not.

Landing hour H closes at H+1:00; the schedule starts its run at H+1:20 (late files get 20
minutes). Each asset has a deadline minute in the hour after H by which partition H must be
materialized: build_time_partition_freshness_checks turns it into an hourly deadline cron, and
the freshness sensor runs the checks after each deadline, so an overdue hour shows as a failed
(red) check on the asset in the UI with the partition it expected.

The same table also gives each asset a FreshnessPolicy (definitions.py applies it), the
asset-level "last updated" view the UI shows; it looks at the newest materialization of any
partition, so the per-hour checks are the deadline that counts."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg

from wallet_lake.contracts.asset_keys import CURATED_PAYMENTS, RAW_PAYMENTS, TABLE_CURATED_PAYMENTS, TOPIC_PAYMENTS_CURATED

FRESHNESS_SENSOR = "freshness_checks_sensor"


@dataclass(frozen=True)
class Freshness:
    deadline_minute: int  # partition H must exist by H+1:<minute> UTC
    fail_window: timedelta  # FreshnessPolicy: no materialization at all for this long = failed

    @property
    def deadline_cron(self) -> str:
        return f"{self.deadline_minute} * * * *"

    def policy(self) -> dg.FreshnessPolicy:
        return dg.FreshnessPolicy.time_window(fail_window=self.fail_window, warn_window=self.fail_window - timedelta(minutes=30))


# Raw and curated by :45 (the :20 run takes a few minutes), the topic by :50, Postgres by :55.
FRESHNESS: dict[dg.AssetKey, Freshness] = {
    dg.AssetKey(RAW_PAYMENTS): Freshness(45, timedelta(hours=2)),
    dg.AssetKey(CURATED_PAYMENTS): Freshness(45, timedelta(hours=2)),
    dg.AssetKey(TOPIC_PAYMENTS_CURATED): Freshness(50, timedelta(hours=2)),
    dg.AssetKey(TABLE_CURATED_PAYMENTS): Freshness(55, timedelta(hours=2)),
}


def _checks_by_deadline() -> list[dg.AssetChecksDefinition]:
    by_cron: dict[str, list[dg.AssetKey]] = {}
    for key, f in FRESHNESS.items():
        by_cron.setdefault(f.deadline_cron, []).append(key)
    checks: list[dg.AssetChecksDefinition] = []
    for cron, keys in sorted(by_cron.items()):
        checks += dg.build_time_partition_freshness_checks(
            assets=keys, deadline_cron=cron, timezone="UTC", severity=dg.AssetCheckSeverity.ERROR
        )
    return checks


# Superseded on purpose: FreshnessPolicy judges the newest materialization of any partition (a
# backfill of an old hour looks fresh); these checks judge each hour against its own deadline.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    freshness_checks = _checks_by_deadline()
    freshness_checks_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks,
        name=FRESHNESS_SENSOR,
        # A failing check is evaluated again on every tick, and each evaluation is a run (a
        # process and the code location loaded, the one run slot taken for ~10 s): at 60 s an
        # overdue hour cost a run per minute and delayed the pipeline's own runs. A deadline is
        # judged within 5 minutes, which is soon enough for an alert.
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )


def with_freshness_policy(spec: dg.AssetSpec) -> dg.AssetSpec:
    """The asset's spec with its FreshnessPolicy from FRESHNESS (unchanged when not listed)."""
    f = FRESHNESS.get(spec.key)
    return spec if f is None else spec.replace_attributes(freshness_policy=f.policy())
