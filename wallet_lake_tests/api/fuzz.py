"""Schemathesis against a live reports API: the server, the rows, the keys and the fuzz loop,
shared by the bounded test (test_fuzz_schema.py) and the longer run by hand (bench/api_fuzz.py).

Schemathesis' Python API drives it (APIOperation.as_strategy under Hypothesis, then
Case.call_and_validate): its pytest integration for schemas loaded from a fixture does not run
under pytest 9 (it writes Node._nodeid, which pytest 9 no longer has)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from wallet_lake_tests.api.conftest import payment
from wallet_lake_tests.api.live_server import api_server  # noqa: F401  (the fuzz loop's server; bench/api_fuzz.py imports it from here)

ROOT = Path(__file__).resolve().parents[2]

# The fuzzer sends thousands of requests from one address and a few keys: a 429 would hide the
# answer under test, so the server it starts runs with both rate limits off (0 = off).
NO_RATE_LIMITS_ENV = {"WL_API_RATE_LIMIT_CLIENT_PER_S": "0", "WL_API_RATE_LIMIT_KEY_PER_S": "0"}

# Days the seeded rows fall on: the OpenAPI examples' dates, and where positive cases are
# steered half of the time (random dates find no rows, so the answers would all be empty).
SEEDED_DAY = dt.date(2026, 11, 24)
SEEDED_RANGE = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))

# Every answer must be declared by the schema (status, media type, headers, body), none may be
# a 5xx, and a request outside the schema must be refused (4xx).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# With a key: the same request without it (or with a wrong one) must be refused too.
CHECKS_WITH_KEY = [*CHECKS, ignored_auth]

SCOPES = ("all-merchants", "merchant-scoped", "no-key", "bogus-key")


def seed_rows(merchants: Sequence[str]) -> list[dict[str, Any]]:
    """Curated rows of every status, currency mix and payment method (one without), for each
    merchant on the seeded days."""
    rows = []
    for m in merchants:
        for i, day in enumerate([SEEDED_DAY, *SEEDED_RANGE]):
            at = dt.datetime.combine(day, dt.time(10 + i, 15), tzinfo=dt.timezone.utc)
            rows += [
                payment(m, currency="EUR", status="APPROVED", amount_cents=1250, created_at=at, latency_ms=120),
                payment(m, currency="USD", status="DECLINED", amount_cents=999, created_at=at, payment_method="wallet"),
                payment(m, currency="EUR", status="REFUNDED", amount_cents=2_000, created_at=at, latency_ms=80),
                payment(m, currency="GBP", status="CHARGEBACK", amount_cents=1, created_at=at, payment_method=None),
            ]
    return rows


def _steer(case: Any, merchant: str | None, seeded_days: bool) -> Any:
    query = dict(case.query or {})
    if merchant is not None and "merchant" in query:
        query["merchant"] = merchant
    if seeded_days:
        if "date" in query:
            query["date"] = SEEDED_DAY.isoformat()
        if "from" in query and "to" in query:
            query["from"], query["to"] = (d.isoformat() for d in SEEDED_RANGE)
    case.query = query
    return case


def case_strategy(operation: Any, merchants: Sequence[str]) -> st.SearchStrategy:
    """Valid and invalid cases of one operation; the valid ones name a seeded merchant and the
    seeded days some of the time (values the schema accepts, so they stay valid)."""
    positive = operation.as_strategy(GenerationMode.POSITIVE).flatmap(
        lambda case: st.tuples(st.sampled_from([None, *merchants]), st.booleans()).map(
            lambda choice: _steer(case, *choice)
        )
    )
    return st.one_of(positive, operation.as_strategy(GenerationMode.NEGATIVE))


@dataclass
class OperationRun:
    scope: str
    operation: str
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failure: str | None = None  # schemathesis' report of the (shrunk) failing case, with its curl


def fuzz_operation(
    operation: Any,
    scope: str,
    headers: Mapping[str, str],
    merchants: Sequence[str],
    *,
    max_examples: int,
    seed: int | None = None,
) -> OperationRun:
    """Run up to `max_examples` cases of `operation` with `headers`; derandomized when `seed`
    is None (the same cases every run), else from that seed. A failing case is shrunk and its
    report (checks failed, response, curl) kept in the result."""
    run = OperationRun(scope, operation.label)
    checks = CHECKS_WITH_KEY if headers else CHECKS

    @hypothesis.settings(
        max_examples=max_examples,
        derandomize=seed is None,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        print_blob=False,
    )
    @hypothesis.given(case=case_strategy(operation, merchants))
    def check(case: Any) -> None:
        run.cases += 1
        response = case.call_and_validate(headers=dict(headers), checks=checks, timeout=30)
        run.statuses[response.status_code] = run.statuses.get(response.status_code, 0) + 1

    if seed is not None:
        check = hypothesis.seed(seed)(check)
    try:
        check()
    # A check failed (schemathesis' FailureGroup, a BaseExceptionGroup) or the request itself did.
    except (Exception, BaseExceptionGroup) as exc:
        run.failure = f"{type(exc).__name__}: {exc}"
    return run


def fuzz_api(
    base_url: str,
    scopes: Mapping[str, Mapping[str, str]],
    merchants: Sequence[str],
    *,
    max_examples: int,
    seed: int | None = None,
) -> list[OperationRun]:
    """Every operation of the document the server at `base_url` serves, once per scope
    ({name: headers})."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    return [
        fuzz_operation(op, name, headers, merchants, max_examples=max_examples, seed=seed)
        for name, headers in scopes.items()
        for op in operations
    ]


def summary(runs: Sequence[OperationRun]) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    for r in runs:
        for s, n in r.statuses.items():
            statuses[s] = statuses.get(s, 0) + n
    return {
        "operations": len({r.operation for r in runs}),
        "scopes": len({r.scope for r in runs}),
        "cases": sum(r.cases for r in runs),
        "failures": sum(r.failure is not None for r in runs),
        "statuses": dict(sorted(statuses.items())),
    }
