"""Month-to-date latency histograms each API worker keeps per dt (source=postgres), so that a
latency report reads from Postgres only its totals and its terms (`LATENCY_TERMS`, ~0.2 ms)
instead of merging ~2,800 bucket rows in SQL (~2 ms): the percentiles are computed here, by the
rule of api/reports/latency_histograms.py, from the kept histograms of the terms' dts.

A kept histogram is reused only at the version of its dt that the report's statement read
(report_aggregate_versions, migration 0010: every write of a dt's aggregates moves it; read after
the epoch the answer cache keys by too, VERSION_EPOCH_SQL), so it is exactly what that
statement's snapshot holds. A dt's histogram is loaded with its version in one
statement; if the version read then differs from the report's (a refresh in between), the
report reads again (api/reports/latency.py).

The percentiles computed from kept histograms are kept too, by the methods asked for and the
terms' (sign, dt, version): at the same versions the histograms are the same, and so are the
percentiles. Computing them is most of a latency report's CPU in the API (~0.4 ms of ~1 ms in the
benchmark's mix, docs/benchmarks.md session 28); a report asked again while its dts are unchanged
(a dashboard refreshing) skips it.

Postgres-only SQL (the versions table); one store per worker process, used from its event loop
only (no locking)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from cachetools import LRUCache

from api.db import Session
from api.reports.answer_cache import VERSION_EPOCH_SQL
from api.reports.latency_histograms import ROW_COLUMNS, Histograms, histograms, percentiles
from api.reports.sql import LATENCY_TERM, LATENCY_TOTAL, ONE_METHOD_FILTER, ReportQuery, latency_ctes


# A dt's version as this store keeps it: after the epoch (answer_cache.VERSION_EPOCH_SQL), so a
# version handed out again after a restored backup or a re-created sequence is never taken for
# the old one; null when the dt has no version.
_VERSION = f"CASE WHEN v.version IS NULL THEN NULL ELSE {VERSION_EPOCH_SQL} || v.version END"
Version = tuple[int, ...]


def version_of(value: Sequence[int] | None) -> Version | None:
    """A version as read (an array, or null) as this store compares and keys it."""
    return None if value is None else tuple(value)


def _terms_query(name: str, method_filter: str) -> ReportQuery:
    sql = f"""
{latency_ctes(method_filter)}
SELECT '{LATENCY_TOTAL}' AS row_kind, payment_method, payment_count, sum_ms, max_ms,
       CAST(NULL AS DATE) AS term_dt, CAST(NULL AS INTEGER) AS term_sign, CAST(NULL AS BIGINT[]) AS term_version
FROM totals
UNION ALL
SELECT '{LATENCY_TERM}', NULL, NULL, NULL, NULL, t.dt, t.sign, {_VERSION}
FROM terms AS t
LEFT JOIN public.report_aggregate_versions AS v ON v.dt = t.dt
""".strip()
    return ReportQuery(name=name, sql=sql)


# The report's totals and its terms with their dts' versions (not lake SQL: no versions there).
LATENCY_TERMS = _terms_query("latency/terms", "")
LATENCY_TERMS_ONE_METHOD = _terms_query("latency/terms/one-method", ONE_METHOD_FILTER)

# Every method's month-to-date histogram of some dts, each with its dt's version, one snapshot.
DAY_HISTOGRAMS_SQL = (
    f"SELECT v.dt, {_VERSION}, {', '.join('m.' + c for c in ROW_COLUMNS)}\n"
    "FROM public.report_aggregate_versions AS v\n"
    "LEFT JOIN public.report_latency_mtd AS m ON m.dt = v.dt\n"
    "WHERE v.dt = ANY(%(dts)s)"
)

# Percentile answers kept (least recently used first out): ~2 KB each (a dict per method), ~8 MB.
KEPT_PERCENTILES = 4096
# (methods, ((sign, dt, version), ...)) -> {method: {p50, p95, p99}}
PercentilesKey = tuple[tuple[str, ...], tuple[tuple[int, dt.date, Version], ...]]


class KeptHistograms:
    """The month-to-date histograms of at most `max_days` dts (least recently used first out),
    and the percentiles last computed from them; 0 keeps none, and latency reports then read their
    terms' rows with sql.LATENCY every time."""

    def __init__(self, max_days: int, count: Callable[[bool], None] | None = None) -> None:
        self.max_days = max_days
        self.count = count  # told, for each percentiles_at answered, whether kept ones were reused
        self._days: LRUCache[dt.date, tuple[Version | None, Histograms]] | None = LRUCache(maxsize=max_days) if max_days > 0 else None
        self._percentiles: LRUCache[PercentilesKey, dict[str, dict[str, float]]] | None = (
            LRUCache(maxsize=KEPT_PERCENTILES) if max_days > 0 else None
        )

    @property
    def enabled(self) -> bool:
        return self._days is not None

    def __len__(self) -> int:
        return 0 if self._days is None else len(self._days)

    async def at_versions(self, conn: Session, wanted: Mapping[dt.date, Version | None]) -> dict[dt.date, Histograms] | None:
        """The histograms of the dts `wanted` names, each at exactly the version given, loading
        those not kept at it; None when a dt's version is not the one given any more."""
        if self._days is None:
            raise RuntimeError("no histograms are kept (max_days 0)")
        out: dict[dt.date, Histograms] = {}
        missing = []
        for day, version in wanted.items():
            kept = self._days.get(day)
            if kept is not None and version is not None and kept[0] == version:
                out[day] = kept[1]
            else:
                missing.append(day)
        if not missing:
            return out
        rows = await conn.fetch(DAY_HISTOGRAMS_SQL, {"dts": missing})
        versions: dict[dt.date, Version | None] = {}
        by_day: dict[dt.date, list[dict]] = defaultdict(list)
        for day, version, *values in rows:
            versions[day] = version_of(version)
            if values[0] is not None:  # a dt with a version and no histogram rows (none left)
                by_day[day].append(dict(zip(ROW_COLUMNS, values)))
        moved = False
        for day in missing:
            loaded = versions.get(day)
            histogram = histograms(by_day.get(day, ()))
            if loaded is not None:
                self._days[day] = (loaded, histogram)
            if loaded != wanted[day]:
                moved = True
            out[day] = histogram
        return None if moved else out

    async def percentiles_at(self, conn: Session, methods: tuple[str, ...],
                             terms: tuple[tuple[int, dt.date, Version | None], ...]) -> dict[str, dict[str, float]] | None:
        """latency_histograms.percentiles of `methods` over the signed histograms of the terms'
        dts, each at exactly the version given; None when a dt's version is not the one given any
        more (as at_versions). Shared: the caller must not change what it gets."""
        if self._percentiles is None:
            raise RuntimeError("no histograms are kept (max_days 0)")
        complete = all(version is not None for _, _, version in terms)
        key = (methods, terms)
        if complete:
            kept = self._percentiles.get(key)
            if kept is not None:
                if self.count is not None:
                    self.count(True)
                return kept
        days = await self.at_versions(conn, {day: version for _, day, version in terms})
        if days is None:
            return None
        result = percentiles(methods, [(sign, days[day]) for sign, day, _ in terms])
        if self.count is not None:
            self.count(False)
        if complete:  # a dt without a version is never kept at one (at_versions)
            self._percentiles[key] = result  # type: ignore[index]
        return result
