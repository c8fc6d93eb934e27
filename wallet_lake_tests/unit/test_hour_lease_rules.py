"""The decisions behind landing-hour leases and manifest sweeps, without a database or a lake:
when a lease may be taken (and what the row records), the settings from the environment, which
pending runs are abandoned and which keys a sweep may delete."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wallet_lake.lake import manifests
from wallet_lake.ops.hour_leases import LeaseRow, LeaseSettings, epoch_hour, taken_row, why_free

UTC = timezone.utc
HOUR = datetime(2026, 7, 9, 14, tzinfo=UTC)
NOW = datetime(2026, 7, 9, 15, 0, 0, tzinfo=UTC)


def row(holder="run-a", *, expires=NOW + timedelta(seconds=30), released=None, previous=None, reason=None) -> LeaseRow:
    return LeaseRow(HOUR, holder, "curated_payments, pid 1", NOW - timedelta(minutes=5), NOW - timedelta(seconds=10),
                    expires, released, previous, reason)


def test_a_live_lease_of_another_run_blocks_unless_that_run_has_finished():
    asked = []

    def running(run_id):
        asked.append(run_id)
        return None

    assert why_free(row(), "run-b", NOW, running) is None and asked == ["run-a"]
    assert why_free(row(), "run-b", NOW, lambda r: "FAILURE") == "holder run FAILURE"


def test_absent_released_expired_or_own_leases_are_free_without_asking_the_orchestrator():
    def never(run_id):
        raise AssertionError("the orchestrator is asked only about live leases of other runs")

    assert why_free(None, "run-b", NOW, never) == "new"
    assert why_free(row(released=NOW - timedelta(seconds=1)), "run-b", NOW, never) == "released"
    assert why_free(row(), "run-a", NOW, never) == "own"
    assert why_free(row(expires=NOW), "run-b", NOW, never).startswith("expired")


def test_a_takeover_records_whom_the_hour_was_taken_from_and_a_renewal_keeps_the_history():
    ttl = timedelta(seconds=120)
    taken = taken_row(row(expires=NOW - timedelta(seconds=1)), "expired (...)", HOUR, "run-b", "step, pid 2", NOW, ttl)
    assert (taken.holder, taken.previous_holder, taken.takeover_reason) == ("run-b", "run-a", "expired (...)")
    assert (taken.acquired_at, taken.heartbeat_at, taken.expires_at, taken.released_at) == (NOW, NOW, NOW + ttl, None)
    again = taken_row(taken, "own", HOUR, "run-b", "step 2, pid 3", NOW + timedelta(minutes=1), ttl)
    assert (again.acquired_at, again.previous_holder, again.holder_detail) == (NOW, "run-a", "step 2, pid 3")
    assert again.expires_at == NOW + timedelta(minutes=1) + ttl
    fresh = taken_row(row(released=NOW), "released", HOUR, "run-c", "x", NOW, ttl)
    assert (fresh.previous_holder, fresh.takeover_reason) == (None, None)


def test_settings_come_from_the_environment_with_defaults_and_clear_errors():
    assert LeaseSettings.from_env({}) == LeaseSettings()
    s = LeaseSettings.from_env({"WL_HOUR_LEASE_TTL_SECONDS": "60", "WL_HOUR_LEASE_WAIT_SECONDS": "0"})
    assert (s.ttl, s.wait, s.heartbeat) == (timedelta(seconds=60), timedelta(0), timedelta(seconds=15))
    with pytest.raises(ValueError, match="WL_HOUR_LEASE_TTL_SECONDS"):
        LeaseSettings.from_env({"WL_HOUR_LEASE_TTL_SECONDS": "0"})
    with pytest.raises(ValueError, match="WL_HOUR_LEASE_POLL_SECONDS"):
        LeaseSettings.from_env({"WL_HOUR_LEASE_POLL_SECONDS": "soon"})


def test_lock_keys_are_whole_hours_since_1970():
    assert epoch_hour(datetime(1970, 1, 2, 1, tzinfo=UTC)) == 25
    with pytest.raises(ValueError):
        epoch_hour(HOUR + timedelta(minutes=30))


def test_pending_runs_older_than_the_abandon_age_are_abandoned_and_a_runs_own_entry_is_replaced():
    pending = [
        {"run_id": "old", "started_at": (NOW - timedelta(hours=7)).isoformat(), "keys": ["a"]},
        {"run_id": "young", "started_at": (NOW - timedelta(hours=1)).isoformat(), "keys": ["b"]},
        {"run_id": "me", "started_at": (NOW - timedelta(hours=9)).isoformat(), "keys": ["c"]},
    ]
    kept, abandoned = manifests.split_pending(pending, NOW, timedelta(hours=6), except_run="me")
    assert [p["run_id"] for p in kept] == ["young"] and [p["run_id"] for p in abandoned] == ["old"]


def test_a_sweep_deletes_superseded_and_abandoned_keys_but_never_a_current_one():
    manifest = {"curated_keys": ["cur-1", "shared"], "quarantine_keys": ["q-1"], "superseded": ["old-1", "shared", "q-1"]}
    abandoned = [{"run_id": "dead", "keys": ["dead-1", "cur-1"]}]
    assert manifests.leftovers(manifest, abandoned) == ["dead-1", "old-1"]
    assert manifests.leftovers(manifest, abandoned, keep=["old-1"]) == ["dead-1"]
    assert manifests.leftovers({}, []) == []


def test_a_sweep_of_one_dagster_runs_entries_abandons_only_that_runs_whatever_their_age():
    dagster_run = "3fa9c1d2-0000-4000-8000-000000000000"
    mine = manifests.dagster_run_curation_id(NOW, dagster_run)
    assert mine == f"{NOW:%Y%m%dT%H%M%S}-3fa9c1d2"
    assert manifests.curated_by_dagster_run(mine, dagster_run)
    assert not manifests.curated_by_dagster_run(f"{NOW:%Y%m%dT%H%M%S}-3fa9c1d3", dagster_run)
    assert not manifests.curated_by_dagster_run("20261125T031542-3fa9c1", dagster_run)  # a CLI curation's id
    pending = [
        {"run_id": mine, "started_at": NOW.isoformat(), "keys": ["a"]},
        {"run_id": "20261125T031542-0a1b2c3d", "started_at": (NOW - timedelta(hours=9)).isoformat(), "keys": ["b"]},
    ]
    kept, abandoned = manifests.split_pending(pending, NOW + timedelta(seconds=1), manifests.ABANDONED_UNDER_LEASE,
                                              only_runs=lambda r: manifests.curated_by_dagster_run(r, dagster_run))
    assert [p["keys"] for p in abandoned] == [["a"]] and [p["keys"] for p in kept] == [["b"]]
