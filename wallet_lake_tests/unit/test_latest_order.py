"""The latest-record order (wallet_lake.contracts.ordering): total over what every store holds, and
rendered, never copied: the committed migration carries exactly the rendering of the current
contracts. Pure: no engine runs here (test_latest_order_engines.py runs them)."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone

import pytest

from wallet_lake.contracts import ordering
from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES, LIFECYCLE_RANK
from wallet_lake.contracts.ordering import LATEST_FIRST, OrderKey, lake_order_by_sql, postgres_first_sql
from wallet_lake.contracts.schema import CURATED_FIELDS
from wallet_lake.lake.views import LATEST_VIEW_SQL
from wallet_lake.serving import contract_sql
from wallet_lake.serving.migrate import MIGRATIONS_DIR


def test_every_curated_column_but_payment_id_is_a_key() -> None:
    keyed = {k.column for k in LATEST_FIRST}
    assert keyed == {f.name for f in CURATED_FIELDS} - {"payment_id"}


def test_timestamps_compare_at_milliseconds_before_anything_sub_millisecond() -> None:
    timestamps = [f.name for f in CURATED_FIELDS if f.type == "timestamp"]
    tail = LATEST_FIRST[-len(timestamps):]
    assert {(k.column, k.transform) for k in tail} == {(c, "value") for c in timestamps}
    head = LATEST_FIRST[: -len(timestamps)]
    assert {k.column for k in head if k.transform == "ms"} == set(timestamps)
    assert not [k for k in head if k.column in timestamps and k.transform != "ms"]


def test_created_at_then_lifecycle_rank_lead_the_order() -> None:
    assert LATEST_FIRST[:2] == (OrderKey("created_at", "ms"), OrderKey("status", "lifecycle_rank"))
    assert all(k.descending and k.nulls_last for k in LATEST_FIRST)


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(tuple(k for k in LATEST_FIRST if k.column != "user_id"), id="a column left out"),
        pytest.param((OrderKey("created_at"),) + LATEST_FIRST, id="microseconds before the end"),
        pytest.param(tuple(k for k in LATEST_FIRST if (k.column, k.transform) != ("completed_at", "ms")), id="no ms key"),
        pytest.param(LATEST_FIRST + (OrderKey("status"),), id="text after the sub-ms tail"),
        pytest.param(LATEST_FIRST + (OrderKey("nonexistent"),), id="unknown column"),
    ],
)
def test_an_order_the_stores_cannot_share_fails_at_import(broken) -> None:
    with pytest.raises(RuntimeError, match="LATEST_FIRST"):
        ordering._check(broken)


def test_the_lake_view_orders_by_the_rendered_keys_with_explicit_nulls() -> None:
    order = lake_order_by_sql()
    assert f"ORDER BY {order}" in LATEST_VIEW_SQL
    # One item per key, each with its own direction and null placement.
    items = re.split(r"(?<= NULLS LAST), ", order)
    assert len(items) == len(LATEST_FIRST)
    assert all(item.endswith(" DESC NULLS LAST") and item.count("NULLS") == 1 for item in items)
    assert items[0] == "date_trunc('millisecond', created_at) DESC NULLS LAST"
    for status, rank in LIFECYCLE_RANK.items():
        assert f"WHEN '{status}' THEN {rank}" in items[1]


def test_postgres_compares_text_as_bytes_and_every_key_in_order() -> None:
    sql = postgres_first_sql("NEW", "OLD")
    whens = [line.strip() for line in sql.splitlines() if line.strip().startswith("WHEN ")]
    assert len(whens) == len(LATEST_FIRST)
    text_columns = {f.name for f in CURATED_FIELDS if f.type == "string"}
    for key, when in zip(LATEST_FIRST, whens):
        assert f"NEW.{key.column}" in when and f"OLD.{key.column}" in when
        if key.column in text_columns and key.transform == "value":
            # every reference compares bytes
            assert not re.findall(rf'(?:NEW|OLD)\.{key.column}(?! COLLATE "C")', when), when
        if key.transform == "ms":
            assert "date_trunc('milliseconds'" in when
    assert sql.rstrip().endswith("ELSE false\nEND")


def test_an_ascending_nulls_first_key_renders_its_own_direction(monkeypatch) -> None:
    flipped = tuple(dataclasses.replace(k, descending=False, nulls_last=False) if k.column == "user_id" else k for k in LATEST_FIRST)
    monkeypatch.setattr(ordering, "LATEST_FIRST", flipped)
    assert "user_id ASC NULLS FIRST" in ordering.lake_order_by_sql()
    pg = ordering.postgres_first_sql("a", "b")
    assert 'coalesce(a.user_id COLLATE "C" < b.user_id COLLATE "C", a.user_id COLLATE "C" IS NULL)' in pg


# --- the committed migration is the rendering ---------------------------------------------------


def test_the_newest_rendered_migration_equals_the_rendering_of_the_contracts() -> None:
    found = contract_sql.newest_rendered_migration(MIGRATIONS_DIR)
    assert found is not None, "no migration carries the rendered contract objects"
    path, block = found
    assert block == contract_sql.render(), (
        f"{path.name} no longer matches wallet_lake/contracts: add a migration with the next free number "
        "holding the output of `python -m wallet_lake.serving.contract_sql` (never edit an applied one)"
    )


def test_rendered_sql_names_every_status_and_rank_from_the_contract() -> None:
    block = contract_sql.render()
    check = re.search(r"CHECK \(status IN \(([^)]*)\)\)", block)
    assert check and check.group(1) == ", ".join(f"'{s}'" for s in ACCEPTED_STATUSES)
    ranks = dict(re.findall(r"WHEN '(\w+)' THEN RETURN (\d+);", block))
    assert {s: int(r) for s, r in ranks.items()} == LIFECYCLE_RANK
    assert "RAISE EXCEPTION" in block


def test_a_block_without_its_end_marker_is_an_error() -> None:
    with pytest.raises(ValueError, match="END"):
        contract_sql.rendered_block_of(contract_sql.BEGIN_MARKER + "\nSELECT 1;\n")


# --- the Python rendering ------------------------------------------------------------------------

_UTC = timezone.utc
_T = datetime(2093, 5, 17, 10, 0, 0, 123000, tzinfo=_UTC)


def _record(**overrides) -> dict:
    base = {
        "payment_id": "p", "merchant_id": "m", "user_id": None, "amount_cents": 1, "currency": "EUR",
        "status": "APPROVED", "payment_method": None, "risk_score": None, "authorized_at": None, "completed_at": None,
        "created_at": _T, "source_system": None, "decline_reason": None, "dt": _T.date(), "hour": 10,
        "authorized_to_complete_ms": None, "is_approved": True, "is_refunded": False, "processed_at": _T,
        "curated_version": 2,
    }
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("later", "earlier"),
    [
        pytest.param(_record(created_at=_T + timedelta(milliseconds=1)), _record(status="REFUNDED"), id="a later ms beats a later state"),
        pytest.param(_record(status="REFUNDED", created_at=_T), _record(created_at=_T + timedelta(microseconds=900)), id="same ms: the later state"),
        pytest.param(_record(curated_version=3, status="DECLINED"), _record(status="REFUNDED", curated_version=2, created_at=_T - timedelta(seconds=1)), id="time first"),
        pytest.param(_record(curated_version=3), _record(curated_version=2, amount_cents=9), id="rules version before content"),
        pytest.param(_record(merchant_id="m"), _record(merchant_id="M"), id="text as bytes"),
        pytest.param(_record(merchant_id="m\U0001F600"), _record(merchant_id="m\uFF21"), id="bytes, not UTF-16 code units"),
        pytest.param(_record(user_id=""), _record(user_id=None), id="a value before none"),
        pytest.param(_record(processed_at=_T + timedelta(milliseconds=1)), _record(), id="the later curation of the same content"),
        pytest.param(_record(created_at=_T + timedelta(microseconds=1)), _record(), id="sub-ms digits last"),
    ],
)
def test_the_python_rendering_keeps_the_later_record_either_way(later, earlier) -> None:
    assert ordering.python_compare(later, earlier) == -1
    assert ordering.python_compare(earlier, later) == 1
    assert ordering.python_latest([earlier, later]) is later
    assert ordering.python_latest([later, earlier]) is later


def test_the_python_rendering_ties_only_records_equal_in_every_column() -> None:
    assert ordering.python_compare(_record(), _record()) == 0
    assert ordering.python_compare(_record(processed_at=_T + timedelta(hours=1)), _record(), include_run_constant=False) == 0


def test_the_python_rendering_refuses_a_status_outside_the_contract() -> None:
    with pytest.raises(ValueError, match="unknown payment status 'SETTLED'"):
        ordering.python_compare(_record(status="SETTLED"), _record(created_at=_T + timedelta(microseconds=1)))


def test_the_python_rendering_follows_a_key_s_direction(monkeypatch) -> None:
    flipped = tuple(dataclasses.replace(k, descending=False, nulls_last=False) if k.column == "user_id" else k for k in LATEST_FIRST)
    monkeypatch.setattr(ordering, "LATEST_FIRST", flipped)
    assert ordering.python_compare(_record(user_id=None), _record(user_id="a")) == -1
    assert ordering.python_compare(_record(user_id="a"), _record(user_id="b")) == -1


def test_the_rendered_block_carries_each_function_body() -> None:
    block = contract_sql.render()
    for name, body in contract_sql.function_bodies().items():
        assert f"FUNCTION {name}(" in block
        assert f"AS $${body}$$;" in block
