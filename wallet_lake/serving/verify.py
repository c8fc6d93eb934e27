"""Did a published landing hour reach Postgres? Every curated payment_id of one version of the
hour (its manifest's, read through lake/reader.py with pyarrow) must be in curated_payments with
a created_at at least as new as curated. What the Postgres asset checks once the sink caught up;
no Dagster here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from wallet_lake.lake.reader import curated_table, published_manifest
from wallet_lake.lake.store import LakeStore
from wallet_lake.serving import ledger

if TYPE_CHECKING:
    import pyarrow as pa

# One round trip for the whole hour: the curated ids and created_at (floored to the sink's
# millisecond precision) go to Postgres as two array literals built in Arrow (Python lists of
# 940k ids and ints dumped by psycopg took 1.05 CPU-s of the run process; the literals 0.46 s)
# and the comparison runs there. Per payment:
# lost when absent, or stored with an older created_at than curated; loaded otherwise, counted
# in the dt of the row Postgres holds (a payment that moved on, e.g. refunded later, counts in
# the newer record's dt). (Row by row in Python this took 10-28 s for a 1M-row hour.)
VERIFY_SQL = """
WITH expected AS (
    SELECT payment_id, timestamptz 'epoch' + created_ms * interval '1 millisecond' AS created_at
    FROM unnest(%(ids)s::text[], %(created_ms)s::bigint[]) AS e(payment_id, created_ms)
), compared AS (
    SELECT e.payment_id, c.dt, (c.payment_id IS NULL OR c.created_at < e.created_at) AS lost
    FROM expected e LEFT JOIN curated_payments c ON c.payment_id = e.payment_id
)
SELECT dt, count(*) FILTER (WHERE NOT lost) AS loaded, array_agg(payment_id) FILTER (WHERE lost) AS lost_ids
FROM compared GROUP BY dt
"""


@dataclass(frozen=True)
class HourExpected:
    """What a published landing hour must have put in Postgres: its curated payment_ids with
    their created_at (epoch ms, floored), read from one version of the hour (its manifest's).
    Read before the sink has caught up, so the Postgres step reads the lake while it waits."""

    hour: datetime
    curation_run_id: str | None  # the curation whose rows are expected (the manifest read)
    ids: pa.Array  # string, no nulls (the curated key)
    created_ms: pa.Array  # int64, aligned with ids
    dts: frozenset[date]  # the dts of the curated rows (their aggregates change with the load)
    dt_hours: frozenset[tuple[date, int]] = frozenset()  # their (dt, hour)s: the partials that change


@dataclass
class HourVerified:
    hour: datetime
    curation_run_id: str | None  # the curation whose rows were checked (the manifest read)
    expected: int  # curated payment_ids of the hour
    missing: list[str]  # of those, absent from Postgres or older there (sorted)
    by_dt: dict[date, int]  # the ledger's `loaded`, per dt of the rows in Postgres
    touched_dts: set[date] = field(default_factory=set)  # dts of the hour's rows in Postgres
    verified_at: datetime | None = None  # the database's clock when the rows were read


def epoch_millis_floor(table) -> pa.Array:
    """created_at of an Arrow table as epoch milliseconds (int64), floored (what the sink stores)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ms = pc.floor_temporal(table.column("created_at"), unit="millisecond").cast(pa.timestamp("ms", tz="UTC"))
    return ms.cast(pa.int64()).combine_chunks()


def array_literal(values: pa.Array) -> str:
    """A Postgres array literal (`{"a","b\\"c"}`, `{1,2}`) of an Arrow string or integer array,
    built in Arrow. Strings are double-quoted, with `\\` and `"` backslash-escaped (the only
    characters special inside quotes), so commas, braces, spaces, newlines and the word NULL stay
    data. Nulls are refused: no caller has them, and a silent NULL would hide a payment."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if values.null_count:
        raise ValueError(f"array_literal: {values.null_count} null value(s); the verification's keys are never null")
    is_text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    if not (is_text or pa.types.is_integer(values.type)):
        raise TypeError(f"array_literal: {values.type} is neither a string nor an integer array")
    text = values.cast(pa.large_string())  # large: one hour's joined ids may pass 2 GiB of offsets one day
    if is_text:
        if len(text) and pc.any(pc.match_substring_regex(text, r'["\\]')).as_py():
            text = pc.replace_substring_regex(text, r'(["\\])', r"\\\1")
        quote = pa.scalar('"', pa.large_string())
        text = pc.binary_join_element_wise(quote, text, quote, pa.scalar("", pa.large_string()))
    joined = pc.binary_join(pa.LargeListArray.from_arrays(pa.array([0, len(text)], pa.int64()), text), pa.scalar(",", pa.large_string()))
    return "{" + joined[0].as_py() + "}"


def expected_of_hour(store: LakeStore, hour: datetime) -> HourExpected:
    """The hour's curated payment_ids and created_at, from its published manifest (the lake only)."""
    manifest = published_manifest(store, hour)
    table = curated_table(store, manifest, columns=["payment_id", "created_at", "dt", "hour"])
    pairs = table.select(["dt", "hour"]).group_by(["dt", "hour"]).aggregate([]) if table.num_rows else None
    dt_hours = frozenset(zip(pairs.column("dt").to_pylist(), pairs.column("hour").to_pylist())) if pairs else frozenset()
    return HourExpected(hour=hour, curation_run_id=manifest.get("run_id"), ids=table.column("payment_id").combine_chunks(),
                        created_ms=epoch_millis_floor(table), dts=frozenset(d for d, _ in dt_hours), dt_hours=dt_hours)


def verify_expected(conn, expected: HourExpected) -> HourVerified:
    """Compare an hour's expected payment_ids with the rows Postgres holds (`conn`: psycopg)."""
    by_dt: dict[date, int] = {}
    touched: set[date] = set()
    missing: list[str] = []
    if len(expected.ids):
        arrays = {"ids": array_literal(expected.ids), "created_ms": array_literal(expected.created_ms)}
        for day, loaded, lost in conn.execute(VERIFY_SQL, arrays):
            if day is not None:
                touched.add(day)
                if loaded:
                    by_dt[day] = loaded
            missing += lost or []
    verified_at = conn.execute(ledger.CLOCK_SQL).fetchone()[0]
    return HourVerified(
        hour=expected.hour, curation_run_id=expected.curation_run_id, expected=len(expected.ids), missing=sorted(missing),
        by_dt=by_dt, touched_dts=touched, verified_at=verified_at,
    )


def verify_hour(conn, store: LakeStore, hour: datetime) -> HourVerified:
    """Compare the hour's curated payment_ids with the rows Postgres holds (`conn`: psycopg)."""
    return verify_expected(conn, expected_of_hour(store, hour))
