"""How a page shows a table cell (api/reports/tables.py kinds). The exact value is in the cell's
data-value attribute, as the CSV download writes it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from api.reports.tables import Kind, cell_text

MISSING = "—"


def show(kind: Kind, value: Any) -> str:
    if value is None:
        return MISSING
    if kind in ("count", "amount"):
        return f"{value:,}"
    if kind == "change":
        return f"{value:+,}" if value else "0"
    if kind == "rate":
        return f"{value * 100:.2f}%"
    if kind == "ms":
        return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
    if kind == "instant":
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    if kind == "bool":
        return "✔ yes" if value else "✘ no"
    if kind == "date":
        return value.isoformat()
    return str(value)


def exact(kind: Kind, value: Any) -> str:
    """The cell as the CSV has it (without the spreadsheet-formula guard on text)."""
    return cell_text(kind, value, guard=False)
