"""Report answers (source=postgres) kept by each API worker and reused while the aggregates they
read are unchanged.

Every dt of the report aggregates has a version (migration 0010: a fresh sequence value whenever
a statement writes that dt, whoever writes). A report is one statement (`versioned_sql`): it
reads the answer's as_of (AS_OF_SQL), the versions of the dts [first_dt, last_dt] the report
reads, and the report's rows, the last only when no answer with exactly those versions is kept.
All three come from one snapshot, so the kept rows are what the report would read now, and the
as_of read with them is true of them. A hit costs the versions lookup instead of the report
(bare_sql_ms in bench/results/api.json). Writes
that fire no triggers move no versions (migration 0010 says so).

Pure apart from the LRU: the statement text is rendered from the report's own SQL, never a
copy of it."""

from __future__ import annotations

import functools
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from api.reports.sql import ReportQuery
from wallet_lake.serving.aggregates import AS_OF_SQL

# Parameters the wrapper adds to the report's own; no report may use these names.
FIRST_DT, LAST_DT, KEPT_VERSIONS, HAVE_KEPT = "first_dt", "last_dt", "kept_versions", "have_kept"
# Columns the wrapper adds in front of the report's columns.
AS_OF, VERSIONS, READ = "as_of", "versions", "read_rows"
_PRESENT = "row_present"
_WRAPPER_COLUMNS = 4  # as_of, versions, read_rows, row_present

# What a version means only together with: the sequence's identity (a new one if migration 0010
# is rolled back and applied again, restarting the values) and the server's start in µs (a standby
# promoted or a backup restored may hand out values again). Whatever keeps something by version
# keeps it by this epoch too (also api/reports/kept_histograms.py).
VERSION_EPOCH_SQL = (
    "ARRAY['public.report_aggregate_version_seq'::regclass::oid::bigint, "
    "CAST(extract(epoch FROM pg_postmaster_start_time()) * 1000000 AS bigint)]"
)
# The dts' versions, after the epoch. Never null.
VERSIONS_SQL = (
    f"SELECT {VERSION_EPOCH_SQL} "
    "|| coalesce(array_agg(version ORDER BY dt), '{}') FROM public.report_aggregate_versions "
    f"WHERE dt BETWEEN %({FIRST_DT})s AND %({LAST_DT})s"
)


@functools.cache
def versioned_sql(query: ReportQuery) -> str:
    """The report's statement wrapped so that it also returns as_of and the dts' versions, and
    reads the report's rows only when `have_kept` is false or the versions differ from
    `kept_versions`. One row per report row (the wrapper's columns first, then `row_present`,
    then the report's); a single row with `row_present` null when the report was not read or
    has no rows."""
    clash = query.params & {FIRST_DT, LAST_DT, KEPT_VERSIONS, HAVE_KEPT}
    if clash:
        raise ValueError(f"{query.name}: parameter names {sorted(clash)} are the answer cache's")
    read = f"(NOT %({HAVE_KEPT})s OR v.{VERSIONS} IS DISTINCT FROM CAST(%({KEPT_VERSIONS})s AS bigint[]))"
    return (
        f"SELECT v.{AS_OF}, v.{VERSIONS}, {read} AS {READ}, r.*\n"
        f"FROM (SELECT ({AS_OF_SQL}) AS {AS_OF}, ({VERSIONS_SQL}) AS {VERSIONS}) AS v\n"
        f"LEFT JOIN LATERAL (\n"
        f"    SELECT true AS {_PRESENT}, q.* FROM (\n{query.sql}\n    ) AS q WHERE {read}\n"
        f") AS r ON true"
    )


@dataclass(frozen=True)
class Kept:
    """An answer's rows as read, and the versions of the dts it read."""

    versions: tuple[int, ...]
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def mappings(self) -> list[Mapping[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def split_result(columns: list[str], result: list[tuple[Any, ...]]) -> tuple[Any, tuple[int, ...], bool, Kept]:
    """(as_of, versions, whether the report was read, its rows) from a `versioned_sql` result. Pure."""
    if not result or [c.lower() for c in columns[:3]] != [AS_OF, VERSIONS, READ]:
        raise ValueError("not the result of versioned_sql")
    as_of, versions, read = result[0][:3]
    if read is None or versions is None:
        raise ValueError("versioned_sql answered no versions or no read flag")
    versions_t = tuple(versions)
    report_columns = tuple(columns[_WRAPPER_COLUMNS:])
    rows = tuple(row[_WRAPPER_COLUMNS:] for row in result if row[_WRAPPER_COLUMNS - 1] is not None)
    return as_of, versions_t, bool(read), Kept(versions_t, report_columns, rows)


class AnswerCache:
    """Answers of at most `max_rows` rows in all (each counts its rows plus one; least recently
    used first out), so memory follows what is kept whatever the answers' sizes; 0 keeps none.
    One per worker process, used from its event loop only (no locking)."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self._entries: LRUCache[Hashable, Kept] | None = (
            LRUCache(maxsize=max_rows, getsizeof=self.size) if max_rows > 0 else None
        )

    @staticmethod
    def size(kept: Kept) -> int:
        return len(kept.rows) + 1

    @staticmethod
    def key(query: ReportQuery, params: Mapping[str, Any]) -> Hashable:
        return (query.name, tuple(sorted(params.items())))

    def get(self, key: Hashable) -> Kept | None:
        return None if self._entries is None else self._entries.get(key)

    def put(self, key: Hashable, kept: Kept) -> None:
        if self._entries is not None and self.size(kept) <= self.max_rows:  # larger than all: not kept
            self._entries[key] = kept

    def __len__(self) -> int:
        return 0 if self._entries is None else len(self._entries)

    @property
    def rows(self) -> int:
        """Rows kept now (plus one per answer)."""
        return 0 if self._entries is None else int(self._entries.currsize)
