"""The synthetic processor: deterministic, and the NDJSON holds what the spec promises.

Expectations are recomputed from the lines with a validator written here from the raw contract,
not taken from the generator's own labels (those are only cross-checked)."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from wallet_lake.contracts.landing import landing_hour_of_key, landing_prefix
from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES
from wallet_lake.contracts.schema import RAW_FIELDS
from wallet_lake.generator import BAD_KINDS, generate, generate_with_stats, landing_key, to_ndjson
from wallet_lake.generator.cli import main
from wallet_lake.lake.store import open_lake

UTC = timezone.utc
DAY = datetime(2026, 11, 24, tzinfo=UTC)
REQUIRED = [f.name for f in RAW_FIELDS if not f.nullable]
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2})$")


def parse_ts(value) -> datetime | None:
    if not isinstance(value, str) or not TS_RE.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def parse_good(line: str) -> dict | None:
    """The record if the line is valid under the raw contract, else None."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    for name in ("payment_id", "merchant_id"):
        if not isinstance(obj.get(name), str) or not obj[name]:
            return None
    amount = obj.get("amount_cents")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        return None
    if not isinstance(obj.get("currency"), str) or not re.fullmatch(r"[A-Z]{3}", obj["currency"]):
        return None
    status = obj.get("status")
    if not isinstance(status, str) or status.strip(" ").upper() not in ACCEPTED_STATUSES:
        return None
    if parse_ts(obj.get("created_at")) is None:
        return None
    risk = obj.get("risk_score")
    if risk is not None and (not isinstance(risk, (int, float)) or isinstance(risk, bool) or not 0 <= risk <= 1):
        return None
    for name in ("authorized_at", "completed_at"):
        if obj.get(name) is not None and parse_ts(obj[name]) is None:
            return None
    for name in ("user_id", "payment_method", "source_system", "decline_reason"):
        if obj.get(name) is not None and not isinstance(obj[name], str):
            return None
    obj["_status"] = status.strip(" ").upper()
    obj["_created"] = parse_ts(obj["created_at"])
    return obj


@pytest.fixture(scope="module")
def day():
    """24 hours x 400 events, the scale the proportions are stated for."""
    return generate_with_stats(DAY, DAY + timedelta(days=1), 42, events_per_hour=400)


@pytest.fixture(scope="module")
def parsed(day):
    """[(landing hour, line, record or None)] in landing order."""
    return [(h, line, parse_good(line)) for h, lines in day.lines.items() for line in lines]


def test_same_seed_same_bytes_other_seed_differs():
    a = generate(DAY, DAY + timedelta(hours=6), 7, events_per_hour=150)
    b = generate(DAY, DAY + timedelta(hours=6), 7, events_per_hour=150)
    c = generate(DAY, DAY + timedelta(hours=6), 8, events_per_hour=150)
    assert list(a) == [DAY + timedelta(hours=i) for i in range(6)]
    assert all(h.tzinfo is not None for h in a)
    assert [to_ndjson(v) for v in a.values()] == [to_ndjson(v) for v in b.values()]
    assert all(to_ndjson(a[h]) != to_ndjson(c[h]) for h in a)


def test_hour_keeps_its_new_payments_whatever_the_range():
    # Each hour has its own rng, so the hour's own payments do not depend on the range; only
    # refunds/chargebacks carried from earlier hours differ, and late events cannot reach back
    # before the range (in its first hour they are created in that hour instead).
    h = DAY + timedelta(hours=12)
    wide = generate(DAY, h + timedelta(hours=1), 3, events_per_hour=400)[h]
    narrow = generate(h, h + timedelta(hours=1), 3, events_per_hour=400)[h]
    carried = {ln for ln in wide if re.search(r'"status":"(REFUNDED|CHARGEBACK)"', ln)}
    own = [ln for ln in wide if ln not in carried]
    assert carried and len(own) == len(narrow) == 400

    def ids(lines):
        return Counter(re.search(r'"payment_id":"(\w+)"', ln).group(1) if '"payment_id":"' in ln else "?" for ln in lines)

    assert ids(own) == ids(narrow)
    moved = [ln for ln in own if ln not in set(narrow)]  # late in `wide`, in-hour in `narrow`
    assert moved and all(parse_good(ln)["_created"] < h for ln in moved)


def test_bad_lines_about_one_percent_of_every_kind(day, parsed):
    bad = [line for _, line, rec in parsed if rec is None]
    share = len(bad) / len(parsed)
    assert 0.006 <= share <= 0.015, share
    per_hour = Counter(h for h, _, rec in parsed if rec is None)
    assert all(per_hour[h] == s.bad_lines for h, s in day.stats.hours.items())
    assert set(day.stats.total.bad_kinds) == set(BAD_KINDS)
    samples = "\n".join(bad)
    for needle in ('"SETTLED"', '"US"', '"merchant_id":""', '"risk_score":1.7', '"amount_cents":"'):
        assert needle in samples, needle
    assert any(line.startswith("[") for line in bad)
    assert any('"payment_id"' not in line and line.startswith("{\"") for line in bad)
    assert any(not line.startswith(("{", "[")) or not line.endswith(("}", "]")) for line in bad)


def test_duplicate_payment_ids_about_five_percent(day, parsed):
    seen: dict[datetime, set] = defaultdict(set)
    repeats = exact = changed = 0
    texts: dict[datetime, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for h, line, rec in parsed:
        if rec is None:
            continue
        pid = rec["payment_id"]
        if pid in seen[h]:
            repeats += 1
            if line in texts[h][pid]:
                exact += 1
            else:
                changed += 1
        seen[h].add(pid)
        texts[h][pid].append(line)
    share = repeats / len(parsed)
    assert 0.04 <= share <= 0.06, share
    assert repeats == day.stats.total.duplicate_id_lines
    assert exact > changed > 0


def test_good_lines_follow_the_contract(parsed):
    good = [rec for _, _, rec in parsed if rec is not None]
    for rec in good:
        for name in REQUIRED:
            assert rec.get(name) is not None, (name, rec)
    assert {f.name for f in RAW_FIELDS} <= set().union(*good)
    statuses = Counter(r["_status"] for r in good)
    assert statuses["APPROVED"] / len(good) > 0.75
    assert set(statuses) == set(ACCEPTED_STATUSES)
    assert {r["currency"] for r in good} == {"USD", "EUR", "GBP", "JPY"}
    assert {r.get("payment_method") for r in good} >= {"card", "wallet", "bank_transfer", "bnpl"}
    assert {r["merchant_id"] for r in good} <= {f"m_{i:04d}" for i in range(1, 51)}
    # JPY amounts are whole yen: same integer type, no cents scale.
    jpy = [r["amount_cents"] for r in good if r["currency"] == "JPY"]
    usd = [r["amount_cents"] for r in good if r["currency"] == "USD"]
    assert jpy and usd and all(isinstance(a, int) for a in jpy)
    # Declines: reasons mostly given, ~10% left out; no reason on other statuses.
    declined = [r for r in good if r["_status"] == "DECLINED"]
    missing = sum("decline_reason" not in r for r in declined) / len(declined)
    assert 0.04 <= missing <= 0.18, missing
    assert {"insufficient_funds", "do_not_honor", "expired_card", "suspected_fraud"} <= {
        r.get("decline_reason") for r in declined}
    assert all(r.get("decline_reason") is None for r in good if r["_status"] != "DECLINED")
    # Timestamps: ms precision, mostly Z, some offsets; declined/failed never authorized.
    zulu = sum(r["created_at"].endswith("Z") for r in good) / len(good)
    assert 0.75 <= zulu <= 0.95, zulu
    assert {r["created_at"][-6:] for r in good if not r["created_at"].endswith("Z")} >= {"+02:00", "-05:00"}
    for r in good:
        if r["_status"] in ("DECLINED", "FAILED"):
            assert r.get("authorized_at") is None and r.get("completed_at") is None
    gaps = [(parse_ts(r["completed_at"]) - parse_ts(r["authorized_at"])) / timedelta(milliseconds=1)
            for r in good if r["_status"] == "APPROVED" and r.get("authorized_at") and r.get("completed_at")]
    assert min(gaps) >= 100 and max(gaps) <= 10_000
    risks = [r["risk_score"] for r in good if r.get("risk_score") is not None]
    assert 0 <= min(risks) and max(risks) <= 1
    assert 0.01 < sum(r.get("risk_score") is None for r in good) / len(good) < 0.12
    assert any(r["status"] != r["_status"] for r in good)  # odd case/whitespace, still valid
    known = {f.name for f in RAW_FIELDS} | {"_status", "_created"}
    assert any(set(r) - known for r in good)  # unknown extra field, still valid


def test_events_of_a_payment_agree_on_its_attributes(parsed):
    first: dict[str, tuple] = {}
    for _, _, rec in parsed:
        if rec is None:
            continue
        attrs = (rec["merchant_id"], rec["amount_cents"], rec["currency"], rec.get("user_id"))
        assert first.setdefault(rec["payment_id"], attrs) == attrs


def test_refunds_and_chargebacks_follow_earlier_approvals(day, parsed):
    approved: dict[str, tuple[datetime, datetime]] = {}  # payment_id -> (landing hour, created)
    followups = []
    for h, _, rec in parsed:
        if rec is None:
            continue
        if rec["_status"] == "APPROVED":
            approved.setdefault(rec["payment_id"], (h, rec["_created"]))
        elif rec["_status"] in ("REFUNDED", "CHARGEBACK"):
            followups.append((h, rec))
    kinds = Counter(rec["_status"] for _, rec in followups)
    assert kinds["REFUNDED"] > 50 and kinds["CHARGEBACK"] > 0, kinds
    assert kinds["REFUNDED"] == day.stats.total.refund_lines + _dup_followups(parsed, "REFUNDED")
    for h, rec in followups:
        assert rec["payment_id"] in approved, rec
        approved_hour, approved_created = approved[rec["payment_id"]]
        assert approved_hour < h
        assert rec["_created"] - approved_created >= timedelta(hours=1)


def _dup_followups(parsed, status):
    seen, dups = set(), 0
    for h, line, rec in parsed:
        if rec is not None and rec["_status"] == status:
            dups += (h, line) in seen
            seen.add((h, line))
    return dups


def test_followups_cross_the_day_boundary():
    start = DAY + timedelta(hours=12)
    lines = generate(start, start + timedelta(days=1), 11, events_per_hour=200)
    approved_day, crossed = {}, 0
    for h, hour_lines in lines.items():
        for line in hour_lines:
            rec = parse_good(line)
            if rec is None:
                continue
            if rec["_status"] == "APPROVED":
                approved_day.setdefault(rec["payment_id"], rec["_created"].date())
            elif rec["_status"] in ("REFUNDED", "CHARGEBACK"):
                crossed += rec["_created"].date() > approved_day[rec["payment_id"]]
    assert crossed > 0


def test_late_events_exist_and_stay_in_the_window(day, parsed):
    late = Counter()
    for h, _, rec in parsed:
        if rec is None:
            continue
        assert rec["_created"] < h + timedelta(hours=1)  # nothing from the future
        assert rec["_created"] >= DAY  # never earlier than the generated window
        behind = (h - rec["_created"].replace(minute=0, second=0, microsecond=0)) // timedelta(hours=1)
        if behind > 0:
            assert rec["_status"] not in ("REFUNDED", "CHARGEBACK")
            late[behind] += 1
    assert set(late) <= {1, 2, 3} and late[1] > late[2] > 0
    share = sum(late.values()) / len(parsed)
    assert 0.01 <= share <= 0.04, share


def test_rejects_naive_or_empty_ranges():
    with pytest.raises(ValueError):
        generate(datetime(2026, 11, 24), datetime(2026, 11, 25), 1)
    with pytest.raises(ValueError):
        generate(DAY, DAY, 1)
    with pytest.raises(ValueError):
        generate(DAY + timedelta(minutes=5), DAY + timedelta(hours=2), 1)


def test_cli_writes_one_deterministic_object_per_hour(tmp_path, capsys):
    argv = ["--start", "2026-11-24T22", "--end", "2026-11-25T01", "--seed", "5",
            "--events-per-hour", "60", "--lake", str(tmp_path)]
    assert main(argv) == 0
    store = open_lake(str(tmp_path))
    hours = [DAY + timedelta(hours=h) for h in (22, 23, 24)]
    expected = [f"{landing_prefix(h)}events-5-0000.ndjson" for h in hours]
    assert expected == [landing_key(h, 5) for h in hours]
    assert expected[0] == "raw/payments/dt=2026/11/24/22/events-5-0000.ndjson"
    assert [o.key for o in store.list("raw/payments/")] == expected
    assert [landing_hour_of_key(k) for k in expected] == hours
    lines = generate(hours[0], hours[-1] + timedelta(hours=1), 5, events_per_hour=60)
    for h, key in zip(hours, expected):
        assert store.get_bytes(key) == to_ndjson(lines[h])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[0].startswith("2026-11-24T22 raw/payments/dt=2026/11/24/22/")
    assert "lines=" in out[0] and "bad=" in out[0] and out[-1].startswith("total:")
    # A rerun overwrites the same objects rather than adding new ones.
    assert main(argv) == 0
    assert [o.key for o in store.list("raw/payments/")] == expected
