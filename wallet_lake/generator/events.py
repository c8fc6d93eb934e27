"""Seeded synthetic payment events: the stand-in for the processor writing the landing area.

Pure: no I/O, no clock, no global random, no uuid4. Every id and timestamp comes from
`random.Random` instances derived from the seed, so the same arguments give byte-identical
NDJSON. Each landing hour draws its own payments from an rng keyed by (seed, hour), so an
hour's new payments do not depend on the requested range; only the refunds and chargebacks
carried in from earlier hours of the range do.

What lands in hour H (all proportions are of the hour's own `events_per_hour` lines):
- new payments created in H (statuses mostly APPROVED, some DECLINED/PENDING/FAILED/CANCELLED);
- late events (~2%): new payments whose created_at is 1-3 hours before H, never before
  `start_hour`, so every created_at stays inside the generated window;
- refunds/chargebacks of payments APPROVED in an earlier landing hour of the range (same
  payment_id, created_at hours to days later; dropped when they would land at/after end_hour);
- ~5% lines repeating a payment_id already seen in H: ~4% exact re-sent copies, ~1% a second
  state of the payment (PENDING then APPROVED/DECLINED/...), sometimes arriving out of order or
  with the same created_at instant (the lifecycle rank decides then);
- ~1% bad lines (see BAD_KINDS), each for a payment that appears nowhere else;
- ~1% valid-but-odd lines: status with odd case/spaces, or an unknown extra field.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field, fields as dc_fields
from datetime import datetime, timedelta, timezone

from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES, APPROVED, CANCELLED, DECLINED, FAILED
from wallet_lake.contracts.schema import RAW_FIELDS

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Lines are serialized in the contract's field order; extra (unknown) fields go last.
FIELD_ORDER: tuple[str, ...] = tuple(f.name for f in RAW_FIELDS)

CURRENCIES = ("USD", "EUR", "GBP", "JPY")
PAYMENT_METHODS = ("card", "wallet", "bank_transfer", "bnpl")

# Primary outcome of a new payment event.
STATUS_MIX = (("APPROVED", 0.845), ("DECLINED", 0.09), ("PENDING", 0.025), ("FAILED", 0.02), ("CANCELLED", 0.02))
# Second state of a payment first seen PENDING within the same hour.
PENDING_RESOLUTION_MIX = (("APPROVED", 0.80), ("DECLINED", 0.12), ("CANCELLED", 0.05), ("FAILED", 0.03))

DECLINE_REASONS_ANY = ("insufficient_funds", "do_not_honor", "suspected_fraud", "limit_exceeded", "issuer_unavailable")
DECLINE_REASONS_CARD = DECLINE_REASONS_ANY + ("expired_card", "invalid_cvv", "incorrect_pin")
DECLINE_REASONS_BNPL = DECLINE_REASONS_ANY + ("credit_check_failed",)

BAD_KINDS = (
    "not_json",
    "json_array",
    "missing_payment_id",
    "empty_merchant_id",
    "negative_amount",
    "string_amount",
    "float_amount",
    "currency_two_letters",
    "currency_malformed",
    "unknown_status",
    "unparseable_created_at",
    "risk_score_out_of_range",
)

# Regions of merchants: currency mix, the processor that serves them and the UTC offsets that
# processor sometimes writes timestamps in (same instant, different rendering).
_REGIONS = {
    "eu": ((("EUR", 0.85), ("GBP", 0.05), ("USD", 0.10)), "processor-eu", (60, 120)),
    "uk": ((("GBP", 0.85), ("EUR", 0.10), ("USD", 0.05)), "processor-eu", (60, 120)),
    "us": ((("USD", 0.95), ("EUR", 0.03), ("GBP", 0.02)), "processor-us", (-300, -360, -480)),
    "jp": ((("JPY", 0.90), ("USD", 0.10)), "processor-apac", (540, 330)),
}
_REGION_WEIGHTS = (("eu", 0.38), ("uk", 0.14), ("us", 0.36), ("jp", 0.12))
_METHOD_MIX = (("card", 0.60), ("wallet", 0.22), ("bank_transfer", 0.10), ("bnpl", 0.08))

for _s, _ in STATUS_MIX + PENDING_RESOLUTION_MIX + (("REFUNDED", 0), ("CHARGEBACK", 0)):
    if _s not in ACCEPTED_STATUSES:  # the contract owns the statuses; fail loudly if it moves
        raise RuntimeError(f"generator status {_s!r} is not in contracts.lifecycle.ACCEPTED_STATUSES")

_ABSENT = object()  # a field left out of the line entirely (vs. JSON null)


@dataclass
class HourStats:
    """What one landing hour holds; every line counts in exactly one of the kinds below
    (or is an ordinary new-payment event)."""

    lines: int = 0
    bad_lines: int = 0
    duplicate_lines: int = 0  # exact byte-identical re-sends of an earlier line of the hour
    state_change_lines: int = 0  # a second, different state of a payment already in the hour
    late_lines: int = 0  # new payments created in an earlier hour
    refund_lines: int = 0
    chargeback_lines: int = 0
    quirky_lines: int = 0  # valid lines with odd status case/spaces or an unknown field
    bad_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def duplicate_id_lines(self) -> int:
        """Lines whose payment_id already appeared earlier in the same hour."""
        return self.duplicate_lines + self.state_change_lines

    def add(self, other: HourStats) -> None:
        for f in dc_fields(self):
            if f.name == "bad_kinds":
                for k, v in other.bad_kinds.items():
                    self.bad_kinds[k] = self.bad_kinds.get(k, 0) + v
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class GenerationStats:
    hours: dict[datetime, HourStats]

    @property
    def total(self) -> HourStats:
        t = HourStats()
        for s in self.hours.values():
            t.add(s)
        return t

    @property
    def bad_share(self) -> float:
        t = self.total
        return t.bad_lines / t.lines if t.lines else 0.0

    @property
    def duplicate_share(self) -> float:
        t = self.total
        return t.duplicate_id_lines / t.lines if t.lines else 0.0


@dataclass
class Generated:
    lines: dict[datetime, list[str]]
    stats: GenerationStats


@dataclass(frozen=True)
class _Merchant:
    merchant_id: str
    currencies: tuple[tuple[str, float], ...]
    source_system: str
    offsets: tuple[int, ...]


@dataclass
class _Payment:
    payment_id: str
    merchant: _Merchant
    user_id: str | None
    amount_cents: int
    currency: str
    payment_method: str | None
    risk_score: object  # float, None or _ABSENT
    source_system: object  # str or _ABSENT


@dataclass
class _Line:
    arrival_ms: int
    seq: int
    text: str
    kind: str  # event | late | state | refund | chargeback | quirk | bad | dup
    payment_id: str | None = None
    # A good APPROVED line this hour may later be refunded from: (payment, values, created ms).
    approved: tuple | None = None
    bad_kind: str | None = None


def _pick(rng: random.Random, mix) -> str:
    r = rng.random()
    acc = 0.0
    for value, w in mix:
        acc += w
        if r < acc:
            return value
    return mix[-1][0]


def _utc_hour(dt: datetime, name: str) -> datetime:
    if dt.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {dt.isoformat()}")
    dt = dt.astimezone(timezone.utc)
    if dt != dt.replace(minute=0, second=0, microsecond=0):
        raise ValueError(f"{name} must be on an hour boundary, got {dt.isoformat()}")
    return dt


def _ms(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def _hour_of_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms - ms % HOUR_MS)


def format_ts(ms: int, offset_minutes: int = 0) -> str:
    """ISO-8601 with millisecond precision: `...Z` for UTC, else `...+02:00` (same instant)."""
    local = _EPOCH + timedelta(milliseconds=ms, minutes=offset_minutes)
    base = local.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}"
    if offset_minutes == 0:
        return base + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    h, m = divmod(abs(offset_minutes), 60)
    return f"{base}{sign}{h:02d}:{m:02d}"


def _dumps(values: dict, omit_nulls: bool = False) -> str:
    out = {}
    for k in FIELD_ORDER:
        v = values.get(k, _ABSENT)
        if v is _ABSENT or (v is None and omit_nulls):
            continue
        out[k] = v
    for k, v in values.items():
        if k not in out and k not in FIELD_ORDER and v is not _ABSENT:
            out[k] = v
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


class _Generator:
    def __init__(self, start: datetime, end: datetime, seed: int, *, events_per_hour: int, merchants: int,
                 users: int, bad_rate: float, duplicate_rate: float, state_change_rate: float, late_rate: float,
                 quirk_rate: float, refund_rate: float, chargeback_rate: float) -> None:
        self.start_ms, self.end_ms, self.seed = _ms(start), _ms(end), seed
        self.events_per_hour = events_per_hour
        self.rates = (bad_rate, duplicate_rate, state_change_rate, late_rate, quirk_rate)
        self.refund_rate, self.chargeback_rate = refund_rate, chargeback_rate
        self.used_ids: set[str] = set()
        self.scheduled: dict[int, list[_Line]] = defaultdict(list)  # landing hour ms -> follow-ups
        self._build_catalog(merchants, users)

    # --- catalog -------------------------------------------------------------------------------
    def _build_catalog(self, merchants: int, users: int) -> None:
        rng = random.Random(f"wallet-lake:{self.seed}:catalog")
        self.merchants: list[_Merchant] = []
        for i in range(1, merchants + 1):
            region = _pick(rng, _REGION_WEIGHTS)
            currencies, source, offsets = _REGIONS[region]
            self.merchants.append(_Merchant(f"m_{i:04d}", currencies, source, offsets))
        # Zipf-like volumes: a few large merchants and heavy users, a long tail.
        self.merchant_cum = list(_cumulative(1.0 / (i**0.9) for i in range(1, merchants + 1)))
        self.user_ids = [f"u_{i:06d}" for i in range(1, users + 1)]
        self.user_cum = list(_cumulative(1.0 / (i**0.6) for i in range(1, users + 1)))

    # --- payments and events -------------------------------------------------------------------
    def _payment_id(self, rng: random.Random) -> str:
        while True:
            pid = f"pay_{rng.getrandbits(96):024x}"
            if pid not in self.used_ids:
                self.used_ids.add(pid)
                return pid

    def _new_payment(self, rng: random.Random) -> _Payment:
        m = rng.choices(self.merchants, cum_weights=self.merchant_cum)[0]
        currency = _pick(rng, m.currencies)
        method = _pick(rng, _METHOD_MIX) if rng.random() >= 0.005 else None
        user = rng.choices(self.user_ids, cum_weights=self.user_cum)[0] if rng.random() >= 0.01 else None  # guests
        r = rng.random()
        risk: object = round(rng.betavariate(1.6, 9.0), 4) if r >= 0.06 else (None if r < 0.03 else _ABSENT)
        source: object = m.source_system if rng.random() >= 0.01 else _ABSENT
        return _Payment(self._payment_id(rng), m, user, _amount(rng, currency, method), currency, method, risk, source)

    def _event(self, rng: random.Random, p: _Payment, status: str, created_ms: int, *,
               carry: tuple[object, object] | None = None) -> dict:
        """Event values of payment p in `status` created at created_ms. authorized/completed
        follow from the status unless `carry` gives the payment's own (refunds, chargebacks)."""
        offset = 0 if rng.random() < 0.85 else rng.choice(p.merchant.offsets)
        risk = p.risk_score
        reason: object = None
        auth_ms, completed_ms = carry if carry is not None else self._auth_times(rng, status, created_ms)
        if status == "DECLINED":
            reasons = (DECLINE_REASONS_CARD if p.payment_method == "card"
                       else DECLINE_REASONS_BNPL if p.payment_method == "bnpl" else DECLINE_REASONS_ANY)
            reason = rng.choice(reasons) if rng.random() >= 0.10 else _ABSENT  # ~10% unknown reason
            if reason == "suspected_fraud" and isinstance(risk, float):
                risk = round(0.75 + 0.24 * rng.random(), 4)

        def ts(v: object) -> object:
            return v if v is None or v is _ABSENT else format_ts(v, offset)

        return {
            "payment_id": p.payment_id,
            "merchant_id": p.merchant.merchant_id,
            "user_id": p.user_id,
            "amount_cents": p.amount_cents,
            "currency": p.currency,
            "status": status,
            "payment_method": p.payment_method,
            "risk_score": risk,
            "authorized_at": ts(auth_ms),
            "completed_at": ts(completed_ms),
            "created_at": format_ts(created_ms, offset),
            "source_system": p.source_system,
            "decline_reason": reason,
        }

    @staticmethod
    def _auth_times(rng: random.Random, status: str, created_ms: int) -> tuple[object, object]:
        """authorized_at/completed_at for an event: both set (a few hundred ms to seconds apart)
        when APPROVED, null when DECLINED/FAILED, sometimes left out of the line altogether."""
        if status == APPROVED:
            completed = created_ms - rng.randint(1, 40)
            gap = int(min(max(rng.lognormvariate(math.log(900), 0.8), 150), 9000))
            auth: object = completed - gap
            comp: object = completed
            if rng.random() < 0.02:
                comp = _ABSENT
            if rng.random() < 0.01:
                auth = _ABSENT
            return auth, comp
        if status in (DECLINED, FAILED):
            return (_ABSENT, _ABSENT) if rng.random() < 0.15 else (None, None)
        if status == CANCELLED:
            return (created_ms - rng.randint(500, 120_000) if rng.random() < 0.6 else None), None
        # PENDING: sometimes authorized already, never completed.
        return (created_ms - rng.randint(50, 2000) if rng.random() < 0.4 else None), None

    # --- one landing hour ----------------------------------------------------------------------
    def hour(self, hour_ms: int) -> tuple[list[str], HourStats]:
        rng = random.Random(f"wallet-lake:{self.seed}:{format_ts(hour_ms)}")
        hour_end = hour_ms + HOUR_MS
        bad_rate, dup_rate, state_rate, late_rate, quirk_rate = self.rates
        cuts = (bad_rate, bad_rate + dup_rate, bad_rate + dup_rate + state_rate,
                bad_rate + dup_rate + state_rate + late_rate,
                bad_rate + dup_rate + state_rate + late_rate + quirk_rate)
        kinds = {"bad": 0, "dup": 0, "state": 0, "late": 0, "quirk": 0, "event": 0}
        for _ in range(self.events_per_hour):
            r = rng.random()
            kinds[("bad", "dup", "state", "late", "quirk", "event")[sum(r >= c for c in cuts)]] += 1
        # A state pair is two lines: its first (PENDING) line takes an ordinary event's slot.
        kinds["state"] = min(kinds["state"], kinds["event"])
        kinds["event"] -= kinds["state"]

        lines: list[_Line] = []
        seq = iter(range(10**9))

        def add(arrival: int, text: str, kind: str, pid: str | None, approved=None) -> _Line:
            line = _Line(min(max(arrival, hour_ms), hour_end - 1), next(seq), text, kind, pid, approved)
            lines.append(line)
            return line

        def lag() -> int:
            return rng.randint(20, 4000)

        # Ordinary new payments and odd-but-valid ones.
        for kind in ("event", "quirk"):
            for _ in range(kinds[kind]):
                p = self._new_payment(rng)
                created = hour_ms + rng.randrange(HOUR_MS)
                status = _pick(rng, STATUS_MIX)
                values = self._event(rng, p, status, created)
                if kind == "quirk":
                    values = _quirk(rng, values)
                add(created + lag(), _dumps(values, rng.random() < 0.1), kind, p.payment_id,
                    (p, values, created) if status == "APPROVED" else None)

        # Late arrivals: created 1-3 hours before this landing hour but never before the window
        # (in its first hour they are ordinary events). Same draws either way, so the rest of the
        # hour does not depend on where the range starts.
        for _ in range(kinds["late"]):
            back = min(_pick(rng, ((1, 0.7), (2, 0.2), (3, 0.1))), (hour_ms - self.start_ms) // HOUR_MS)
            p = self._new_payment(rng)
            created = hour_ms - back * HOUR_MS + rng.randrange(HOUR_MS)
            status = _pick(rng, STATUS_MIX)
            values = self._event(rng, p, status, created)
            arrival = hour_ms + rng.randrange(HOUR_MS)
            add(max(arrival, created + 20), _dumps(values, rng.random() < 0.1), "late" if back else "event",
                p.payment_id, (p, values, created) if status == "APPROVED" else None)

        # Two states of one payment in the hour: PENDING, then its outcome.
        for _ in range(kinds["state"]):
            p = self._new_payment(rng)
            t0 = hour_ms + rng.randrange(HOUR_MS - 60_000)
            final = _pick(rng, PENDING_RESOLUTION_MIX)
            tie = rng.random() < 0.10  # same created_at instant: lifecycle rank orders them
            t1 = t0 if tie else t0 + rng.randint(500, min(300_000, hour_end - 1 - t0))
            pending = self._event(rng, p, "PENDING", t0)
            outcome = self._event(rng, p, final, t1)
            a1 = t1 + lag()
            reversed_arrival = rng.random() < 0.25  # outcome delivered before the PENDING line
            a0 = a1 + rng.randint(100, 30_000) if reversed_arrival else t0 + lag()
            if a0 > a1 or (a0 == a1 and reversed_arrival):
                add(a1, _dumps(outcome), "event", p.payment_id,
                    (p, outcome, t1) if final == "APPROVED" else None)
                add(a0, _dumps(pending), "state", p.payment_id)
            else:
                add(a0, _dumps(pending), "event", p.payment_id)
                add(a1, _dumps(outcome), "state", p.payment_id,
                    (p, outcome, t1) if final == "APPROVED" else None)

        # Bad lines: payments that exist only as this one broken line.
        for _ in range(kinds["bad"]):
            p = self._new_payment(rng)
            created = hour_ms + rng.randrange(HOUR_MS)
            values = self._event(rng, p, _pick(rng, STATUS_MIX), created)
            bad_kind = rng.choice(BAD_KINDS)
            add(hour_ms + rng.randrange(HOUR_MS), _corrupt(rng, values, bad_kind), "bad", None).bad_kind = bad_kind

        # Exact re-sends of an earlier good line of this hour (follow-ups get theirs when scheduled).
        sources = [ln for ln in lines if ln.kind != "bad"]
        for _ in range(kinds["dup"] if sources else 0):
            src = rng.choice(sources)
            add(src.arrival_ms + rng.randint(200, 600_000), src.text, "dup", src.payment_id)

        # Refunds and chargebacks of payments approved in earlier hours of the range; they join
        # after this hour's own draws so that the range does not shift them.
        for line in self.scheduled.pop(hour_ms, []):
            line.seq = next(seq)
            lines.append(line)

        # Schedule follow-ups of this hour's approvals; they land strictly after this hour.
        for line in lines:
            if line.kind in ("bad", "dup", "refund", "chargeback") or not line.approved:
                continue
            p, values, created = line.approved
            r = rng.random()
            if r < self.chargeback_rate:
                status, delay = "CHARGEBACK", (rng.randint(2 * HOUR_MS, DAY_MS) if rng.random() < 0.5
                                               else rng.randint(DAY_MS, 7 * DAY_MS))
            elif r < self.chargeback_rate + self.refund_rate:
                status, delay = "REFUNDED", (rng.randint(HOUR_MS, 12 * HOUR_MS) if rng.random() < 0.6
                                             else rng.randint(12 * HOUR_MS, 4 * DAY_MS))
            else:
                continue
            t = max(created + delay, hour_end + rng.randrange(60_000))
            landing = t - t % HOUR_MS
            if landing >= self.end_ms:
                continue
            follow = self._event(rng, p, status, t,
                                 carry=(_raw_ms(values["authorized_at"]), _raw_ms(values["completed_at"])))
            arrival = min(t + lag(), landing + HOUR_MS - 1)
            text = _dumps(follow, rng.random() < 0.1)
            self.scheduled[landing].append(
                _Line(arrival, 0, text, "refund" if status == "REFUNDED" else "chargeback", p.payment_id))
            if rng.random() < dup_rate:  # re-sent like any other line
                resend = min(arrival + rng.randint(200, 600_000), landing + HOUR_MS - 1)
                self.scheduled[landing].append(_Line(resend, 0, text, "dup", p.payment_id))

        lines.sort(key=lambda ln: (ln.arrival_ms, ln.seq))
        stats = HourStats(lines=len(lines))
        for ln in lines:
            if ln.kind == "bad":
                stats.bad_lines += 1
                stats.bad_kinds[ln.bad_kind] = stats.bad_kinds.get(ln.bad_kind, 0) + 1
            elif ln.kind == "dup":
                stats.duplicate_lines += 1
            elif ln.kind == "state":
                stats.state_change_lines += 1
            elif ln.kind == "late":
                stats.late_lines += 1
            elif ln.kind == "refund":
                stats.refund_lines += 1
            elif ln.kind == "chargeback":
                stats.chargeback_lines += 1
            elif ln.kind == "quirk":
                stats.quirky_lines += 1
        return [ln.text for ln in lines], stats


def _cumulative(weights):
    acc = 0.0
    for w in weights:
        acc += w
        yield acc


def _amount(rng: random.Random, currency: str, method: str | None) -> int:
    """Minor units fit for the currency: JPY has none, so amount_cents is whole yen."""
    if method == "card" and rng.random() < 0.002:
        return 0  # zero-amount card verification
    if currency == "JPY":
        return int(round(min(max(rng.lognormvariate(math.log(3800), 1.0), 100), 2_000_000), -1))
    cents = int(min(max(rng.lognormvariate(math.log(3200), 1.05), 50), 1_500_000))
    if rng.random() < 0.3:
        cents = cents // 100 * 100 + 99  # price points like 19.99
    return cents


def _raw_ms(formatted: object) -> object:
    """Back from a rendered timestamp to epoch ms, so follow-ups carry the payment's own times."""
    if formatted is None or formatted is _ABSENT:
        return formatted
    return _ms(datetime.fromisoformat(str(formatted).replace("Z", "+00:00")))


def _quirk(rng: random.Random, values: dict) -> dict:
    """Valid per the rules but untidy: status trimmed+upper-cased downstream, extras ignored."""
    values = dict(values)
    if rng.random() < 0.5:
        s = values["status"]
        values["status"] = rng.choice((f" {s.lower()} ", s.lower(), s.capitalize(), f"{s} ", f"  {s.title()}"))
    else:
        extra = rng.choice(("processor_ref", "metadata", "schema_version"))
        values[extra] = {
            "processor_ref": f"ref_{rng.getrandbits(40):010x}",
            "metadata": {"channel": rng.choice(("ios", "android", "web")), "three_ds": rng.random() < 0.5},
            "schema_version": 2,
        }[extra]
    return values


def _corrupt(rng: random.Random, values: dict, kind: str) -> str:
    """One broken line of the given kind; each is invalid under the raw contract."""
    v = dict(values)
    if kind == "not_json":
        good = _dumps(v)
        variant = rng.randrange(3)
        if variant == 0:
            return good[: rng.randint(len(good) // 3, len(good) - 2)]  # truncated write
        if variant == 1:
            return repr({k: x for k, x in v.items() if x is not _ABSENT})  # Python repr, not JSON
        return "<html><body><h1>502 Bad Gateway</h1></body></html>"
    if kind == "json_array":
        return "[" + _dumps(v) + "]"
    if kind == "missing_payment_id":
        v["payment_id"] = _ABSENT
    elif kind == "empty_merchant_id":
        v["merchant_id"] = ""
    elif kind == "negative_amount":
        v["amount_cents"] = -(v["amount_cents"] or 100)
    elif kind == "string_amount":
        v["amount_cents"] = str(v["amount_cents"])
    elif kind == "float_amount":
        a = v["amount_cents"]
        v["amount_cents"] = a / 100 if a % 100 else a + 0.5  # never an integral float
    elif kind == "currency_two_letters":
        v["currency"] = "US"
    elif kind == "currency_malformed":
        v["currency"] = rng.choice(("usd1", "EURO", "U$D"))
    elif kind == "unknown_status":
        v["status"] = "SETTLED"
    elif kind == "unparseable_created_at":
        v["created_at"] = rng.choice(("2026-11-24T25:61:00Z", "24/11/2026 13:05:12", "not-a-date", ""))
    elif kind == "risk_score_out_of_range":
        v["risk_score"] = rng.choice((1.7, -0.2))
    else:  # pragma: no cover
        raise ValueError(kind)
    return _dumps(v)


def hours_between(start_hour: datetime, end_hour: datetime) -> list[datetime]:
    """Landing hours of [start_hour, end_hour), as aware UTC datetimes."""
    start, end = _utc_hour(start_hour, "start_hour"), _utc_hour(end_hour, "end_hour")
    if end <= start:
        raise ValueError(f"end_hour {end.isoformat()} must be after start_hour {start.isoformat()}")
    return [start + timedelta(hours=i) for i in range((end - start) // timedelta(hours=1))]


def generate_with_stats(
    start_hour: datetime,
    end_hour: datetime,
    seed: int,
    *,
    events_per_hour: int = 400,
    merchants: int = 50,
    users: int = 5000,
    bad_rate: float = 0.01,
    duplicate_rate: float = 0.04,
    state_change_rate: float = 0.01,
    late_rate: float = 0.02,
    quirk_rate: float = 0.01,
    refund_rate: float = 0.03,
    chargeback_rate: float = 0.005,
) -> Generated:
    """NDJSON lines per landing hour of [start_hour, end_hour) plus what was put in them.

    events_per_hour counts each hour's own lines (new payments, their re-sends, state pairs,
    bad and late lines); refunds/chargebacks from earlier hours come on top."""
    hours = hours_between(start_hour, end_hour)
    if events_per_hour < 0 or merchants < 1 or users < 1:
        raise ValueError("events_per_hour must be >= 0, merchants and users >= 1")
    gen = _Generator(hours[0], hours[-1] + timedelta(hours=1), seed, events_per_hour=events_per_hour,
                     merchants=merchants, users=users, bad_rate=bad_rate, duplicate_rate=duplicate_rate,
                     state_change_rate=state_change_rate, late_rate=late_rate, quirk_rate=quirk_rate,
                     refund_rate=refund_rate, chargeback_rate=chargeback_rate)
    out: dict[datetime, list[str]] = {}
    per_hour: dict[datetime, HourStats] = {}
    for h in hours:
        out[h], per_hour[h] = gen.hour(_ms(h))
    return Generated(out, GenerationStats(per_hour))


def generate(start_hour: datetime, end_hour: datetime, seed: int, **kwargs) -> dict[datetime, list[str]]:
    """{landing hour (aware UTC): NDJSON lines}; see generate_with_stats for the options."""
    return generate_with_stats(start_hour, end_hour, seed, **kwargs).lines


def to_ndjson(lines: list[str]) -> bytes:
    """The bytes of one landing object: one line per event, newline-terminated."""
    return "".join(line + "\n" for line in lines).encode("utf-8")
