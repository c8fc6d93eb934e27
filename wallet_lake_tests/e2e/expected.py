"""Independent recomputation of what the pipeline must produce from raw NDJSON lines.

Written from the README's rules with plain Python, sharing no code with the Spark transform
(statuses and their order are restated here on purpose), so the end-to-end test compares the
pipeline against a second implementation rather than against itself."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timedelta, timezone

ACCEPTED = {"PENDING": 0, "APPROVED": 1, "DECLINED": 1, "FAILED": 1, "CANCELLED": 1, "REFUNDED": 2, "CHARGEBACK": 3}


def _ts(value):
    """ISO-8601 with Z or offset -> aware UTC; no offset -> UTC; bad -> ValueError."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    d = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return (d if d.tzinfo else d.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _ms(t):
    return None if t is None else t - timedelta(microseconds=t.microsecond % 1000)


def _text(v):
    """An optional text field as curated: a string as is, another JSON value as its JSON text."""
    return None if v is None else v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def _later_first(v, f=lambda x: x):
    return (0,) if v is None else (1, f(v))


def _order_key(e: dict, raw: dict, authorized, completed) -> tuple:
    """Greater = kept: created_at to the millisecond, lifecycle rank, then the content (text as
    UTF-8 bytes, a value before none), then the sub-millisecond digits (one run: one
    curated_version and processed_at)."""
    b = lambda s: s.encode("utf-8")  # noqa: E731
    return (
        _ms(e["created_at"]), ACCEPTED[e["status"]], b(e["status"]), e["amount_cents"], b(e["currency"]),
        b(e["merchant_id"]), _later_first(_text(raw.get("user_id")), b), _later_first(_text(e["payment_method"]), b),
        _later_first(None if raw.get("risk_score") is None else float(raw["risk_score"])),
        _later_first(_ms(authorized)), _later_first(_ms(completed)), _later_first(_text(raw.get("source_system")), b),
        _later_first(_text(e["decline_reason"]), b), _later_first(e["authorized_to_complete_ms"]),
        e["created_at"], _later_first(authorized), _later_first(completed),
    )


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
    out = {
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
    out["_order"] = _order_key(out, e, authorized, completed)
    return out


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
        if cur is None or e["_order"] > cur["_order"]:
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
