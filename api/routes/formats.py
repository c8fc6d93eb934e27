"""JSON or CSV: which one a report request asks for, and the CSV answer (columns in
api/reports/tables.py).

`format=csv` (or `json`) decides when given; otherwise the Accept header: CSV when it names
text/csv with a higher quality than application/json (or names only text/csv). Wildcards
(`*/*`, `text/*`) and anything else answer JSON, as before CSV existed. Errors stay problem
documents (application/problem+json) either way."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import Request
from fastapi.responses import Response

from api.params import query
from api.reports.tables import Table

CSV_MEDIA_TYPE = "text/csv"
JSON_MEDIA_TYPE = "application/json"

FormatParam = Annotated[
    Literal["json", "csv"] | None,
    query(
        "Answer as JSON (the default) or as CSV: a header row, then one row per line of the report "
        "(the columns of the reports pages' tables; see the README, CSV format). Omitted: from the Accept "
        "header (text/csv asks for CSV).",
        "json or csv",
    ),
]

_PARAMS = re.compile(r";\s*q\s*=\s*([0-9.]+)", re.IGNORECASE)


def _quality(entry: str) -> float:
    m = _PARAMS.search(entry)
    if not m:
        return 1.0
    try:
        return float(m.group(1))
    except ValueError:
        return 0.0


def accepts_csv(accept: str | None) -> bool:
    """Whether an Accept header prefers text/csv to application/json (ties: the one listed first)."""
    best: dict[str, tuple[float, int]] = {}
    for position, entry in enumerate((accept or "").split(",")):
        media = entry.split(";", 1)[0].strip().lower()
        if media in (CSV_MEDIA_TYPE, JSON_MEDIA_TYPE) and media not in best:
            best[media] = (_quality(entry), -position)
    csv_q = best.get(CSV_MEDIA_TYPE)
    if csv_q is None or csv_q[0] <= 0:
        return False
    json_q = best.get(JSON_MEDIA_TYPE)
    return json_q is None or csv_q > json_q


def wants_csv(request: Request, format_: str | None) -> bool:
    if format_ is not None:
        return format_ == "csv"
    return accepts_csv(request.headers.get("accept"))


def csv_response(table: Table, filename: str) -> Response:
    """The table as a CSV download; `filename` must be plain (report name and dates)."""
    return Response(
        table.to_csv(),
        media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Vary": "Accept"},
    )


def csv_documented(example: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses=` entry that adds text/csv to a report's 200 answer."""
    return {
        200: {
            "description": "The report, as JSON or (format=csv, Accept: text/csv) as CSV.",
            "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}, "example": example}},
        }
    }
