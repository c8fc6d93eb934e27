"""Schemathesis against the live API: a real uvicorn server on the stack's Postgres, with rows
in the report tables and real keys of every scope, fuzzed from the OpenAPI document it serves.

The rule: whatever a client sends, within the schema or not, with whichever key (all
merchants, some merchants, none, a made-up one), the API never answers 5xx, every answer
(status, media type, headers, body) is one its document declares for that operation, a request
outside the schema is refused, and one with a key is refused without it.

Bounded for CI: FUZZ_EXAMPLES cases per operation and scope, derandomized (the same cases every
run). The server runs with both rate limits off (wallet_lake_tests/api/fuzz.py says why; 429s
are proved in test_rate_limits.py). The longer run by hand is bench/api_fuzz.py."""

from __future__ import annotations

import pytest

from api.auth import generate_key
from wallet_lake_tests.api.fuzz import NO_RATE_LIMITS_ENV, SCOPES, api_server, fuzz_api, seed_rows, summary

pytestmark = pytest.mark.integration

FUZZ_EXAMPLES = 25


@pytest.fixture(scope="module")
def fuzz_server(pg_settings, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("fuzz-server") / "uvicorn.log"
    try:
        with api_server(log_path, NO_RATE_LIMITS_ENV) as base:
            yield base, log_path
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def fuzz_merchants() -> tuple[str, str]:
    """(scoped, other): the merchant-scoped key may read the first, not the second."""
    return (f"m_fuzz_{generate_key()[0]}", f"m_fuzz_{generate_key()[0]}")


def scope_headers(scope: str, api_key, merchants: tuple[str, str]) -> dict[str, str]:
    """Real keys stored in api_keys (every merchant; one merchant, sent as a bearer token), no
    key, or a well-formed key that was never stored."""
    if scope == "all-merchants":
        return {"X-API-Key": api_key()}
    if scope == "merchant-scoped":
        return {"Authorization": f"Bearer {api_key([merchants[0]])}"}
    if scope == "no-key":
        return {}
    return {"X-API-Key": generate_key()[1]}


@pytest.mark.parametrize("scope", SCOPES)
def test_live_api_answers_only_what_its_schema_declares(scope, fuzz_server, fuzz_merchants, payments, api_key):
    """Every answer of the live API to every generated case is declared by its OpenAPI
    document, and none is a 5xx. A failure names the operation and the check, and carries the
    curl command that reproduces it."""
    base, log_path = fuzz_server
    payments(seed_rows(fuzz_merchants))
    runs = fuzz_api(
        base, {scope: scope_headers(scope, api_key, fuzz_merchants)}, fuzz_merchants, max_examples=FUZZ_EXAMPLES
    )
    figures = summary(runs)
    assert figures["operations"] >= 8, figures  # the five reports, the probes and /metrics
    failed = [r for r in runs if r.failure]
    assert not failed, f"{len(failed)} operation(s) failed (server log: {log_path}):\n\n" + "\n\n".join(
        f"--- {r.operation} [{r.scope}]\n{r.failure}" for r in failed
    )
    assert figures["cases"] >= figures["operations"] * 10, figures  # the fuzzer really ran
