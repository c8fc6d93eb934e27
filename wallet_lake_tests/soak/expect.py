"""What the pipeline must have produced, recomputed from the raw NDJSON and from the Postgres rows
by rules restated here from the README, and the comparisons of the soak's check. Pure: no I/O.

Independent on purpose: nothing here imports wallet_lake. Which lines are valid and which line of a
landing hour survives come from wallet_lake_tests/e2e/expected.py (the end-to-end test's second
implementation of the curation rules); this module adds the fields that check does not need, the
latest record across landing hours, the four reports over Postgres rows, and the diffs."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from wallet_lake_tests.e2e.expected import ACCEPTED, expected_hour

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

# Payment fields compared between the raw recomputation, the lake and Postgres. processed_at (the
# run's clock: two runs curating the same record legitimately differ) and curated_version (a
# constant of the rules, not of the payment) are left out.
PAYMENT_FIELDS: tuple[str, ...] = (
    "payment_id", "merchant_id", "user_id", "amount_cents", "currency", "status", "payment_method",
    "risk_score", "authorized_at", "completed_at", "created_at", "source_system", "decline_reason",
    "dt", "hour", "authorized_to_complete_ms", "is_approved", "is_refunded",
)
TIMESTAMP_FIELDS = ("authorized_at", "completed_at", "created_at")
CAPTURED = ("APPROVED", "REFUNDED", "CHARGEBACK")
UNKNOWN = "unknown"


# ------------------------------------------------------------------------------- raw -> records

def count_lines(data: bytes) -> int:
    """Lines of an NDJSON object as a Hadoop text reader splits them: \\n, \\r\\n and a lone \\r
    end a line; a last line without a terminator counts."""
    ends = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    return ends + (1 if data and not data.endswith((b"\n", b"\r")) else 0)


def split_lines(data: bytes) -> list[str]:
    """The lines themselves, split the same way."""
    text = data.decode("utf-8", errors="surrogateescape").replace("\r\n", "\n").replace("\r", "\n")
    parts = text.split("\n")
    if parts and parts[-1] == "" and text.endswith("\n"):
        parts.pop()
    return [] if text == "" else parts


def floor_ms(ts: datetime | None) -> datetime | None:
    """The instant a store with millisecond precision (Postgres through the Connect sink) keeps."""
    if ts is None:
        return None
    return _EPOCH + ((ts - _EPOCH) // _MS) * _MS


def _text(value) -> str | None:
    """Optional text fields keep a string as is and a non-string value's JSON text."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _ts(value) -> datetime | None:
    if value is None:
        return None
    d = datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("z", "+00:00"))
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).astimezone(UTC)


def full_record(survivor: Mapping) -> dict:
    """Every payment field of a surviving event (a dict from expected.expected_hour)."""
    e = json.loads(survivor["_line"])
    authorized, completed = _ts(e.get("authorized_at")), _ts(e.get("completed_at"))
    created = survivor["created_at"]
    ms = None
    if authorized is not None and completed is not None:
        us = (completed - authorized) // timedelta(microseconds=1)
        ms = int(math.copysign(abs(us) // 1000, us))  # truncated toward zero
    risk = e.get("risk_score")
    return {
        "payment_id": survivor["payment_id"],
        "merchant_id": survivor["merchant_id"],
        "user_id": _text(e.get("user_id")),
        "amount_cents": survivor["amount_cents"],
        "currency": survivor["currency"],
        "status": survivor["status"],
        "payment_method": _text(e.get("payment_method")),
        "risk_score": None if risk is None else float(risk),
        "authorized_at": authorized,
        "completed_at": completed,
        "created_at": created,
        "source_system": _text(e.get("source_system")),
        "decline_reason": _text(e.get("decline_reason")),
        "dt": created.date(),
        "hour": created.hour,
        "authorized_to_complete_ms": ms,
        "is_approved": survivor["status"] == "APPROVED",
        "is_refunded": survivor["status"] == "REFUNDED",
        # The total latest-record order of expected.py (created_at to the ms, rank, then the
        # content), when it defines one: ties between landing hours are then decided too.
        "_order": survivor.get("_order"),
    }


@dataclass
class HourExpectation:
    """One landing hour recomputed from its raw objects."""

    hour: datetime
    raw_lines: int
    quarantined: int
    duplicates: int
    survivors: dict[str, dict]  # payment_id -> full record

    @property
    def curated(self) -> int:
        return len(self.survivors)


def expect_hour(hour: datetime, objects: Mapping[str, bytes]) -> HourExpectation:
    """The hour's figures and surviving records from the bytes of all its .ndjson objects."""
    lines: list[str] = []
    raw = 0
    for key in sorted(objects):
        data = objects[key]
        raw += count_lines(data)
        lines += split_lines(data)
    best, bad, dups = expected_hour(lines)
    if raw != len(lines):  # pragma: no cover - the two splitters agree by construction
        raise AssertionError(f"{hour}: counted {raw} lines but split {len(lines)}")
    return HourExpectation(hour, raw, bad, dups, {pid: full_record(e) for pid, e in best.items()})


def latest_key(record: Mapping) -> tuple:
    """The part of the latest-record order every store can hold: created_at at millisecond
    precision, then the lifecycle rank (README: Dedupe, and the no-regression trigger)."""
    return (floor_ms(record["created_at"]), ACCEPTED.get(record["status"], -1))


def comparable(record: Mapping) -> tuple:
    """The payment's fields, timestamps at millisecond precision (what Postgres holds)."""
    return tuple(floor_ms(record[f]) if f in TIMESTAMP_FIELDS else record[f] for f in PAYMENT_FIELDS)


@dataclass
class Latest:
    """The latest record of a payment across landing hours; `candidates` holds more than one
    when records tie on latest_key with different contents (then any of them is right)."""

    key: tuple
    candidates: list[dict]
    hours: list[datetime] = field(default_factory=list)


def latest_records(hours: Iterable[HourExpectation]) -> dict[str, Latest]:
    """The latest record of every payment over the hours: by the total order when the records
    carry one (`_order`), else by latest_key, keeping every record that ties with other contents."""
    out: dict[str, Latest] = {}
    order: dict[str, tuple] = {}
    for h in hours:
        for pid, rec in h.survivors.items():
            k = latest_key(rec)
            cur = out.get(pid)
            total = rec.get("_order")
            if cur is not None and total is not None and order.get(pid) is not None:
                if total > order[pid]:
                    out[pid], order[pid] = Latest(k, [rec], [h.hour]), total
                elif total == order[pid]:
                    cur.hours.append(h.hour)
                continue
            if cur is None or k > cur.key:
                out[pid], order[pid] = Latest(k, [rec], [h.hour]), total
            elif k == cur.key:
                cur.hours.append(h.hour)
                if all(comparable(c) != comparable(rec) for c in cur.candidates):
                    cur.candidates.append(rec)
    return out


# ----------------------------------------------------------------------------- comparisons

def field_diff(want: Mapping, got: Mapping, *, at_ms: bool) -> dict[str, tuple]:
    """{field: (want, got)} of the payment fields that differ."""
    out = {}
    for f in PAYMENT_FIELDS:
        w, g = want.get(f), got.get(f)
        if f in TIMESTAMP_FIELDS and at_ms:
            w, g = floor_ms(w), floor_ms(g)
        if f == "amount_cents" and g is not None:
            g = int(g)
        if f == "risk_score" and w is not None and g is not None:
            if float(w) != float(g):
                out[f] = (w, g)
            continue
        if w != g:
            out[f] = (w, g)
    return out


@dataclass
class RowComparison:
    """Stored rows against the expected latest records."""

    missing: list[str] = field(default_factory=list)
    regressed: list[str] = field(default_factory=list)
    mismatched: dict[str, dict] = field(default_factory=dict)  # same order key, other values
    ahead: list[str] = field(default_factory=list)  # newer than anything that landed: invented
    ambiguous: int = 0


def compare_rows(expected: Mapping[str, Latest], stored: Mapping[str, Mapping]) -> RowComparison:
    """Postgres (or any millisecond store) against the expected latest record of each payment."""
    out = RowComparison()
    for pid, want in expected.items():
        if len(want.candidates) > 1:
            out.ambiguous += 1
        got = stored.get(pid)
        if got is None:
            out.missing.append(pid)
            continue
        k = latest_key(got)
        if k < want.key:
            out.regressed.append(pid)
        elif k > want.key:
            out.ahead.append(pid)
        else:
            diffs = [field_diff(c, got, at_ms=True) for c in want.candidates]
            if all(diffs):
                out.mismatched[pid] = min(diffs, key=len)
    return out


@dataclass
class LakeHourComparison:
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    repeated_rows: int = 0  # rows beyond one per payment_id in the hour's current files
    mismatched: dict[str, dict] = field(default_factory=dict)


def compare_lake_hour(expected: HourExpectation, rows: Sequence[Mapping]) -> LakeHourComparison:
    """The curated rows of an hour's current files (the manifest's) against the recomputation,
    exactly (the lake keeps microseconds)."""
    out = LakeHourComparison()
    by_id: dict[str, Mapping] = {}
    for r in rows:
        if r["payment_id"] in by_id:
            out.repeated_rows += 1
        by_id[r["payment_id"]] = r
    out.missing = sorted(set(expected.survivors) - set(by_id))
    out.unexpected = sorted(set(by_id) - set(expected.survivors))
    for pid in set(by_id) & set(expected.survivors):
        d = field_diff(expected.survivors[pid], by_id[pid], at_ms=False)
        if d:
            out.mismatched[pid] = d
    return out


# ----------------------------------------------------------------------- reports from the rows
# Rows are dicts with dt, merchant_id, currency, status, amount_cents, decline_reason,
# payment_method, authorized_to_complete_ms (as read from curated_payments).

def _in(rows, date_from: date, date_to: date, merchant: str | None):
    return [r for r in rows if date_from <= r["dt"] <= date_to and (merchant is None or r["merchant_id"] == merchant)]


def _rate(n: int, d: int) -> float | None:
    return n / d if d else None


def daily_recon(rows, day: date, merchant: str | None) -> dict:
    by_status: dict = defaultdict(lambda: [0, 0])
    totals: dict = defaultdict(lambda: [0, 0])
    for r in _in(rows, day, day, merchant):
        a = int(r["amount_cents"])
        by_status[(r["currency"], r["status"])][0] += 1
        by_status[(r["currency"], r["status"])][1] += a
        totals[r["currency"]][0] += 1
        totals[r["currency"]][1] += a
    return {
        "by_status": sorted((c, s, n, a) for (c, s), (n, a) in by_status.items()),
        "totals": sorted((c, n, a) for c, (n, a) in totals.items()),
    }


def refund_rate(rows, date_from: date, date_to: date, merchant: str | None) -> dict:
    per: dict = defaultdict(lambda: {s: [0, 0] for s in CAPTURED})
    for r in _in(rows, date_from, date_to, merchant):
        if r["status"] in CAPTURED:
            per[r["currency"]][r["status"]][0] += 1
            per[r["currency"]][r["status"]][1] += int(r["amount_cents"])
    by_currency = []
    for c in sorted(per):
        s = per[c]
        n = sum(v[0] for v in s.values())
        a = sum(v[1] for v in s.values())
        by_currency.append({
            "currency": c, "captured_count": n, "captured_amount_cents": a,
            "refunded_count": s["REFUNDED"][0], "refunded_amount_cents": s["REFUNDED"][1],
            "chargeback_count": s["CHARGEBACK"][0], "chargeback_amount_cents": s["CHARGEBACK"][1],
            "refund_amount_rate": _rate(s["REFUNDED"][1], a), "chargeback_amount_rate": _rate(s["CHARGEBACK"][1], a),
        })
    captured = sum(c["captured_count"] for c in by_currency)
    refunded = sum(c["refunded_count"] for c in by_currency)
    chargebacks = sum(c["chargeback_count"] for c in by_currency)
    return {
        "captured_count": captured, "refunded_count": refunded, "chargeback_count": chargebacks,
        "refund_rate": _rate(refunded, captured), "chargeback_rate": _rate(chargebacks, captured),
        "by_currency": by_currency,
    }


def declines(rows, date_from: date, date_to: date, merchant: str | None) -> dict:
    mine = _in(rows, date_from, date_to, merchant)
    counts: dict = defaultdict(int)
    amounts: dict = defaultdict(lambda: defaultdict(int))
    declined_amounts: dict = defaultdict(int)
    for r in mine:
        if r["status"] != "DECLINED":
            continue
        reason = r["decline_reason"] or UNKNOWN
        counts[reason] += 1
        amounts[reason][r["currency"]] += int(r["amount_cents"])
        declined_amounts[r["currency"]] += int(r["amount_cents"])
    declined = sum(counts.values())
    return {
        "payment_count": len(mine), "declined_count": declined, "decline_rate": _rate(declined, len(mine)),
        "declined_amounts": sorted(declined_amounts.items()),
        "by_reason": sorted((reason, n, sorted(amounts[reason].items())) for reason, n in counts.items()),
    }


def percentile_cont(values: Sequence[int], p: float) -> tuple[float, int]:
    """(percentile_cont over the values, the larger of the two order statistics it interpolates)."""
    xs = sorted(values)
    h = (len(xs) - 1) * p
    lo, hi = int(h), min(int(h) + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo]), xs[hi]


def latency_values(rows, date_from: date, date_to: date) -> dict[str, list[int]]:
    out: dict = defaultdict(list)
    for r in _in(rows, date_from, date_to, None):
        if r["authorized_to_complete_ms"] is not None:
            out[r["payment_method"] or UNKNOWN].append(int(r["authorized_to_complete_ms"]))
    return dict(out)


# --------------------------------------------------------------- API answers vs recomputation

def _close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))


def diff_daily_recon(answer: Mapping, want: Mapping) -> list[str]:
    got_status = sorted((x["currency"], x["status"], x["count"], int(x["amount_cents"])) for x in answer["by_status"])
    got_totals = sorted((x["currency"], x["count"], int(x["amount_cents"])) for x in answer["totals"])
    out = []
    if got_status != want["by_status"]:
        out.append(f"by_status {got_status} != {want['by_status']}")
    if got_totals != want["totals"]:
        out.append(f"totals {got_totals} != {want['totals']}")
    return out


def diff_refund_rate(answer: Mapping, want: Mapping) -> list[str]:
    out = []
    for k in ("captured_count", "refunded_count", "chargeback_count"):
        if answer[k] != want[k]:
            out.append(f"{k} {answer[k]} != {want[k]}")
    for k in ("refund_rate", "chargeback_rate"):
        if not _close(answer[k], want[k]):
            out.append(f"{k} {answer[k]} != {want[k]}")
    got = {c["currency"]: c for c in answer["by_currency"]}
    if sorted(got) != [c["currency"] for c in want["by_currency"]]:
        out.append(f"currencies {sorted(got)} != {[c['currency'] for c in want['by_currency']]}")
    for w in want["by_currency"]:
        g = got.get(w["currency"])
        if g is None:
            continue
        for k, v in w.items():
            if k.endswith("_rate"):
                if not _close(g[k], v):
                    out.append(f"{w['currency']}.{k} {g[k]} != {v}")
            elif k != "currency" and int(g[k]) != v:
                out.append(f"{w['currency']}.{k} {g[k]} != {v}")
    return out


def diff_declines(answer: Mapping, want: Mapping) -> list[str]:
    out = []
    for k in ("payment_count", "declined_count"):
        if answer[k] != want[k]:
            out.append(f"{k} {answer[k]} != {want[k]}")
    if not _close(answer["decline_rate"], want["decline_rate"]):
        out.append(f"decline_rate {answer['decline_rate']} != {want['decline_rate']}")
    got_amounts = sorted((a["currency"], int(a["amount_cents"])) for a in answer["declined_amounts"])
    if got_amounts != want["declined_amounts"]:
        out.append(f"declined_amounts {got_amounts} != {want['declined_amounts']}")
    got_reasons = sorted(
        (x["decline_reason"], x["count"], sorted((a["currency"], int(a["amount_cents"])) for a in x["amounts"]))
        for x in answer["by_reason"]
    )
    if got_reasons != want["by_reason"]:
        out.append(f"by_reason {got_reasons} != {want['by_reason']}")
    return out


def diff_latency(answer: Mapping, values: Mapping[str, list[int]]) -> list[str]:
    """Counts, means and maxima exactly; percentiles within the bound the answer states
    (`percentile_max_relative_error` of the larger interpolated order statistic)."""
    out = []
    bound = float(answer["percentile_max_relative_error"])
    got = {m["payment_method"]: m for m in answer["methods"]}
    if sorted(got) != sorted(values):
        out.append(f"methods {sorted(got)} != {sorted(values)}")
    for method, xs in values.items():
        m = got.get(method)
        if m is None:
            continue
        if m["count"] != len(xs):
            out.append(f"{method}.count {m['count']} != {len(xs)}")
            continue
        if m["max_ms"] != max(xs):
            out.append(f"{method}.max_ms {m['max_ms']} != {max(xs)}")
        if m["mean_ms"] != round(sum(xs) / len(xs), 3):
            out.append(f"{method}.mean_ms {m['mean_ms']} != {round(sum(xs) / len(xs), 3)}")
        for label, p in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
            exact, upper = percentile_cont(xs, p)
            if abs(m[label] - exact) > bound * upper + 0.001:
                out.append(f"{method}.{label} {m[label]} not within {bound:.4f} of {exact}")
    return out


# ------------------------------------------------------------------------------- the ledger

LEDGER_FIGURES = ("raw_lines", "curated", "quarantined", "duplicates_removed", "published", "loaded", "counted")


def expected_ledger(h: HourExpectation) -> dict[str, int]:
    """The ledger figures an hour must show: what landed and how it was curated; every curated
    payment published, loaded and counted once."""
    return {
        "raw_lines": h.raw_lines, "curated": h.curated, "quarantined": h.quarantined,
        "duplicates_removed": h.duplicates, "published": h.curated, "loaded": h.curated, "counted": h.curated,
    }


def diff_ledger_hour(entry: Mapping | None, want: Mapping[str, int]) -> list[str]:
    """An hour of GET /reports/pipeline-recon against the independent figures. Figures may be
    given flat or under `figures`/`stages` (by name, or as {"stage": ..., "count"/"row_count": ...})."""
    if entry is None:
        return ["hour missing from the ledger"]
    figures = _ledger_figures(entry)
    out = [f"{k} {figures.get(k)} != {v}" for k, v in want.items() if figures.get(k) != v]
    if entry.get("reconciled") is not True:
        detail = f": {entry['detail']}" if entry.get("detail") else ""
        out.append(f"reconciled={entry.get('reconciled')!r} (first difference: {entry.get('first_difference')!r}{detail})")
    return out


def _ledger_figures(entry: Mapping) -> dict:
    for container in ("figures", "stages", "counts"):
        inner = entry.get(container)
        if isinstance(inner, Mapping):
            return {k: _count(v) for k, v in inner.items()}
        if isinstance(inner, list):
            return {x.get("stage") or x.get("name"): _count(x) for x in inner if isinstance(x, Mapping)}
    return {k: _count(entry[k]) for k in LEDGER_FIGURES if k in entry}


def _count(v):
    if isinstance(v, Mapping):
        for k in ("count", "row_count", "rows", "value"):
            if k in v:
                return v[k]
        return None
    return v
