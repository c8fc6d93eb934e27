"""A landing hour's figures, measured with pyarrow from the files Spark wrote (before they are
published): curated rows and bytes, quarantine counts by reason, and what the blocking checks
judge (transforms/checks.py). Reads Parquet footers (schema, row counts, null counts, min/max)
and three columns; never the whole data, never Spark."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from wallet_lake.contracts.landing import CURATED_PREFIX, QUARANTINE_PREFIX
from wallet_lake.contracts.schema import CURATED_FIELDS, CURATED_PARTITION_COLUMNS
from wallet_lake.lake.manifests import HourStats
from wallet_lake.lake.reader import partition_values
from wallet_lake.transforms import checks

PREVIEW_ROWS = 5


def check_figures(files: Sequence[tuple[Path, dict[str, str]]]) -> tuple[dict, list[dict]]:
    """What the blocking checks judge, from one hour's curated files as written: ({figures},
    preview rows). Reads the footers (schema, row counts, statistics: nulls, min/max) and three
    columns (payment_id, status, currency) of all files at once."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from wallet_lake.contracts.schema import arrow_schema

    expected = pa.schema([f for f in arrow_schema(CURATED_FIELDS) if f.name not in CURATED_PARTITION_COLUMNS])
    schema_errors: list[str] = []
    nulls: dict[str, int] = {f.name: 0 for f in arrow_schema(CURATED_FIELDS) if not f.nullable}
    ranges: dict[str, list] = {}
    bad_dt: list[str] = []
    rows = 0
    preview: list[dict] = []
    for path, parts in files:
        pf = pq.ParquetFile(path)
        md = pf.metadata
        rows += md.num_rows
        if not pf.schema_arrow.equals(expected):
            schema_errors.append(f"{path.name}: {pf.schema_arrow} != contract")
        for name in CURATED_PARTITION_COLUMNS:
            if not parts.get(name):
                nulls[name] = nulls.get(name, 0) + md.num_rows
        col_index = {md.schema.column(i).name: i for i in range(md.num_columns)}
        for rg in range(md.num_row_groups):
            group = md.row_group(rg)
            for name in list(nulls):
                st = group.column(col_index[name]).statistics if name in col_index else None
                nulls[name] += st.null_count if st is not None and st.has_null_count else 0
            for name in (*checks.VALUE_BOUNDS, "created_at"):
                st = group.column(col_index[name]).statistics if name in col_index else None
                if st is not None and st.has_min_max:
                    lo, hi = ranges.get(name, [st.min, st.max])
                    ranges[name] = [min(lo, st.min), max(hi, st.max)]
                    day = parts.get("dt")
                    if name == "created_at" and day and not (str(st.min.date()) == day == str(st.max.date())):
                        bad_dt.append(f"{path.name}: created_at {st.min}..{st.max} outside dt={day}")
        if len(preview) < PREVIEW_ROWS and md.num_rows:
            head = pf.read_row_group(0).slice(0, PREVIEW_ROWS - len(preview)).to_pylist()
            preview += [{**{k: parts.get(k) for k in CURATED_PARTITION_COLUMNS}, **r} for r in head]
    statuses: set = set()
    currencies: set = set()
    distinct = 0
    if rows:
        t = pq.read_table([str(p) for p, _ in files], columns=["payment_id", "status", "currency"])
        # The distinct ids counted as unique()'s length (less a null, counted apart as a null in a
        # required column): half of count_distinct's time on a 1M-event hour (docs/benchmarks.md).
        ids = pc.unique(t.column("payment_id"))
        distinct = len(ids) - (1 if ids.null_count else 0)
        statuses = set(pc.unique(t.column("status")).to_pylist())
        currencies = set(pc.unique(t.column("currency")).to_pylist())
    figures = {
        "rows": rows,
        "schema_errors": schema_errors[:5],
        "distinct_payment_ids": distinct,
        "duplicate_payment_ids": rows - distinct,
        "nulls_in_required_columns": {k: v for k, v in nulls.items() if v},
        "statuses": sorted(s for s in statuses if s is not None),
        "unaccepted_statuses": checks.unaccepted_statuses(statuses),
        "bad_currencies": checks.bad_currencies(currencies)[:20],
        "ranges": {k: [str(v[0]), str(v[1])] for k, v in ranges.items()},
        "out_of_range": checks.out_of_range(ranges) + bad_dt[:5],
    }
    return figures, [{k: _jsonable(v) for k, v in r.items()} for r in preview]


def _jsonable(v):
    return v.isoformat() if hasattr(v, "isoformat") else v  # datetimes and dates of the preview


def hour_figures(stats: HourStats, out: Path, batch_column: str, *, preview_rows: int = PREVIEW_ROWS) -> list[tuple[Path, str]]:
    """Fill `stats` from the hour's files under `out` (Spark's output: curated/ and quarantine/,
    partitioned by `batch_column`=<hour token>); return [(local file, lake key)] to upload, the
    curated files first. Lake keys are run-scoped (lh-<hour>-<run>-NNN.parquet): a publish never
    touches a file the current manifest lists."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    token = stats.token
    curated_dir = out / "curated" / f"{batch_column}={token}"
    files = sorted(curated_dir.rglob("*.parquet")) if curated_dir.exists() else []
    by_partition: dict[str, list[Path]] = {}
    for f in files:
        by_partition.setdefault(f.parent.relative_to(curated_dir).as_posix(), []).append(f)
    uploads: list[tuple[Path, str]] = []
    inspected: list[tuple[Path, dict[str, str]]] = []
    for rel, group in sorted(by_partition.items()):
        parts = partition_values(rel)
        stats.partitions.append([parts["dt"], parts["merchant_id"]])
        for i, f in enumerate(group):
            uploads.append((f, f"{CURATED_PREFIX}{rel}/lh-{token}-{stats.run_id}-{i:03d}.parquet"))
            inspected.append((f, parts))
            stats.curated_rows += pq.read_metadata(f).num_rows
            stats.curated_bytes += f.stat().st_size
    stats.curated_files = len(uploads)
    stats.dt_partitions = sorted({p[0] for p in stats.partitions})
    stats.checks, preview = check_figures(inspected)
    stats.preview = preview[:preview_rows]

    q_dir = out / "quarantine" / f"{batch_column}={token}"
    q_uploads: list[tuple[Path, str]] = []
    reasons: dict[str, int] = {}
    for i, f in enumerate(sorted(q_dir.glob("*.parquet")) if q_dir.exists() else []):
        t = pq.read_table(f, columns=["reasons"])
        stats.quarantined_rows += t.num_rows
        stats.quarantine_bytes += f.stat().st_size
        if t.num_rows:
            vc = pc.value_counts(pc.list_flatten(t.column("reasons")))
            for item in vc.to_pylist():
                reasons[item["values"]] = reasons.get(item["values"], 0) + item["counts"]
        q_uploads.append((f, f"{QUARANTINE_PREFIX}{batch_column}={token}/lh-{token}-{stats.run_id}-{i:03d}.parquet"))
    stats.quarantine_files = len(q_uploads)
    stats.quarantine_reasons = dict(sorted(reasons.items()))
    stats.curated_keys = [k for _, k in uploads]
    stats.quarantine_keys = [k for _, k in q_uploads]
    stats.file_bytes = {k: f.stat().st_size for f, k in uploads + q_uploads}
    return uploads + q_uploads
