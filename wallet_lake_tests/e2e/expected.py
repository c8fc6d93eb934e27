"""Independent recomputation of what the pipeline must produce from raw NDJSON lines.

Written from the README's rules with plain Python, sharing no code with the Spark transform
(statuses and their order are restated here on purpose), so the end-to-end test compares the
pipeline against a second implementation rather than against itself."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timezone

ACCEPTED = {"PENDING": 0, "APPROVED": 1, "DECLINED": 1, "FAILED": 1, "CANCELLED": 1, "REFUNDED": 2, "CHARGEBACK": 3}


def _ts(value):
    """ISO-8601 with Z or offset -> aware UTC; no offset -> UTC; bad -> ValueError."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    d = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return (d if d.tzinfo else d.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def validate(line: str) -> dict | None:
    """The parsed, normalized event, or None when the line must be quarantined."""
    try:
        e = json.loads(line)
    except ValueError:
        return None
    if not isinstance(e, dict):
        return None
    for f in ("payment_id", "merchant_id"):
        if not isinstance(e.get(f), str) or not e[f].strip():
            return None
    amount = e.get("amount_cents")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        return None
    if not isinstance(e.get("currency"), str) or not re.fullmatch(r"[A-Za-z]{3}", e["currency"]):
        return None
    status = e.get("status")
    if not isinstance(status, str) or status.strip().upper() not in ACCEPTED:
        return None
    try:
        created = _ts(e.get("created_at"))
        authorized = _ts(e["authorized_at"]) if e.get("authorized_at") is not None else None
        completed = _ts(e["completed_at"]) if e.get("completed_at") is not None else None
    except ValueError:
        return None
    risk = e.get("risk_score")
    if risk is not None and (isinstance(risk, bool) or not isinstance(risk, (int, float)) or not 0 <= risk <= 1):
        return None
    return {
        "payment_id": e["payment_id"],
        "merchant_id": e["merchant_id"],
        "amount_cents": amount,
        "currency": e["currency"].upper(),
        "status": status.strip().upper(),
        "payment_method": e.get("payment_method"),
        "decline_reason": e.get("decline_reason"),
        "created_at": created,
        "authorized_to_complete_ms": (
            round((completed - authorized).total_seconds() * 1000) if authorized and completed else None
        ),
        "dt": created.date(),
        "hour": created.hour,
        "_line": line,
    }


def expected_hour(lines: list[str]) -> tuple[dict[str, dict], int, int]:
    """({payment_id: surviving event}, quarantined count, duplicates removed) for one hour."""
    valid, bad = [], 0
    for line in lines:
        e = validate(line)
        if e is None:
            bad += 1
        else:
            valid.append(e)
    best: dict[str, dict] = {}
    for e in valid:
        cur = best.get(e["payment_id"])
        key = (e["created_at"], ACCEPTED[e["status"]], e["_line"])
        if cur is None or key > (cur["created_at"], ACCEPTED[cur["status"]], cur["_line"]):
            best[e["payment_id"]] = e
    return best, bad, len(valid) - len(best)


def daily_recon(rows: list[dict], dt, merchant: str) -> dict:
    """{(currency, status): (count, sum)} and {currency: (count, sum)} for one dt and merchant."""
    by_status: dict = defaultdict(lambda: [0, 0])
    totals: dict = defaultdict(lambda: [0, 0])
    for r in rows:
        if r["dt"] == dt and r["merchant_id"] == merchant:
            by_status[(r["currency"], r["status"])][0] += 1
            by_status[(r["currency"], r["status"])][1] += r["amount_cents"]
            totals[r["currency"]][0] += 1
            totals[r["currency"]][1] += r["amount_cents"]
    return {"by_status": {k: tuple(v) for k, v in by_status.items()}, "totals": {k: tuple(v) for k, v in totals.items()}}
