"""The blocking checks on a landing hour's curated output, next to the rules they check
(transforms/curate.py): their names, what each asserts, and the predicates that judge an hour's
figures (lake/figures.py measures them from the files Spark wrote).

One predicate, two uses: publishing (lake/wap.py) refuses an hour that fails any, and the
curated_payments asset reports the same verdicts as its blocking asset checks. Pure Python: no
pyspark, no pyarrow, no Dagster. The value bounds are the rules' own (curate.py validates with
them), so a rule and its check cannot drift apart."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, is_dataclass
from typing import Any, Iterable, Mapping

from wallet_lake.contracts.lifecycle import ACCEPTED_STATUSES
from wallet_lake.contracts.schema import CURATED_VERSION

# Value rules shared with curate.py's validation (a line outside them is quarantined).
AMOUNT_CENTS_MIN = 0
RISK_SCORE_MIN, RISK_SCORE_MAX = 0.0, 1.0
# A curated currency: the rule accepts three letters of any case and upper-cases them.
CURATED_CURRENCY = re.compile(r"[A-Z]{3}")

ACCOUNTING = "every_raw_line_accounted"
SCHEMA = "schema_matches_contract"
UNIQUE = "payment_id_unique_within_hour"
NOT_NULL = "required_columns_not_null"
ACCEPTED = "accepted_values"

CHECK_DESCRIPTIONS = {
    ACCOUNTING: "For every landing hour: raw lines = curated rows + quarantined rows + duplicates removed.",
    SCHEMA: "The curated files' schema (names, types, nullability) and partition columns equal the contract.",
    UNIQUE: "payment_id is unique among the curated rows of each landing hour.",
    NOT_NULL: "Required (non-null) contract columns hold no nulls.",
    ACCEPTED: "status accepted, currency three upper-case letters, hour 0-23, amount >= 0, risk_score in [0, 1], "
              "curated_version current, created_at within its dt.",
}
BLOCKING_CHECKS = tuple(CHECK_DESCRIPTIONS)

# [min, max] (None: unbounded) of the curated columns whose Parquet statistics are checked.
VALUE_BOUNDS: dict[str, tuple[Any, Any]] = {
    "amount_cents": (AMOUNT_CENTS_MIN, None),
    "risk_score": (RISK_SCORE_MIN, RISK_SCORE_MAX),
    "hour": (0, 23),
    "curated_version": (CURATED_VERSION, CURATED_VERSION),
}


def out_of_range(ranges: Mapping[str, list]) -> list[str]:
    """One line per column whose observed [min, max] leaves VALUE_BOUNDS."""
    out = []
    for name, (lo, hi) in VALUE_BOUNDS.items():
        if name in ranges:
            mn, mx = ranges[name]
            if (lo is not None and mn < lo) or (hi is not None and mx > hi):
                out.append(f"{name} in [{mn}, {mx}], expected [{lo}, {hi if hi is not None else ''}]")
    return out


def unaccepted_statuses(statuses: Iterable[str | None], accepted: Iterable[str] = ACCEPTED_STATUSES) -> list[str]:
    allowed = set(accepted)
    return sorted(str(s) for s in set(statuses) if s not in allowed)


def bad_currencies(currencies: Iterable[str | None]) -> list[str]:
    return sorted(str(c) for c in set(currencies) if c is None or not CURATED_CURRENCY.fullmatch(c))


def failed_checks(stats: Any) -> dict[str, str]:
    """{check: why} for every blocking check an hour's figures fail (empty: publishable).
    `stats` is a manifests.HourStats or its dict (as a Glue run reports it through Pipes)."""
    s = asdict(stats) if is_dataclass(stats) else stats
    c = s.get("checks", {})
    out: dict[str, str] = {}
    total = s["curated_rows"] + s["quarantined_rows"] + s["duplicates_removed"]
    if s["raw_lines"] != total:
        out[ACCOUNTING] = (f"raw {s['raw_lines']} != curated {s['curated_rows']} + quarantined {s['quarantined_rows']} "
                           f"+ duplicates {s['duplicates_removed']}")
    if c.get("schema_errors"):
        out[SCHEMA] = "; ".join(c["schema_errors"])[:500]
    if c.get("duplicate_payment_ids"):
        out[UNIQUE] = f"{c['duplicate_payment_ids']} payment_ids appear more than once"
    if c.get("nulls_in_required_columns"):
        out[NOT_NULL] = json.dumps(c["nulls_in_required_columns"])
    bad = {k: c[k] for k in ("unaccepted_statuses", "bad_currencies", "out_of_range") if c.get(k)}
    if bad:
        out[ACCEPTED] = json.dumps(bad)[:500]
    return out
