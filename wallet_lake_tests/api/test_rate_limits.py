"""Rate limits: the token bucket and the bounded TTL map under a hand-driven clock, and the
reports' 429 (problem+json, Retry-After) per client address and per API key (offline app)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.auth import generate_key
from api.main import create_app
from api.ratelimit import TokenBucketLimiter, retry_after_header
from api.settings import Settings
from api.ttl_cache import TtlCache

from .conftest import ALL_MERCHANTS_KEY, OFFLINE_SETTINGS, SCOPED_KEY, no_lake, offline_key_store

DAILY = ("/reports/daily-recon", {"date": "2026-11-24"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- pure -------------------------------------------------------------------------------------


def test_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(2.0, 3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)  # one token every 1/2 s
    assert limiter.acquire("b") == 0.0  # buckets are per key
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(0.5)
    clock.now += 100  # refills up to the burst, not beyond
    assert [limiter.acquire("a") for _ in range(4)][-1] > 0


def test_refused_requests_take_no_token() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(1.0, 1, clock=clock)
    assert limiter.acquire("a") == 0.0
    for _ in range(5):
        assert limiter.acquire("a") == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.acquire("a") == 0.0


def test_rate_zero_disables_the_limit() -> None:
    limiter = TokenBucketLimiter(0, 1)
    assert not limiter.enabled and all(limiter.acquire("a") == 0.0 for _ in range(1000))


def test_buckets_are_bounded() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(1.0, 1, max_buckets=10, clock=clock)
    for i in range(1000):
        limiter.acquire(f"client-{i}")
    assert len(limiter._buckets) == 10


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert [retry_after_header(w) for w in (0.01, 1.0, 1.2, 59.9)] == ["1", "1", "2", "60"]


def test_ttl_cache_expires_each_entry_and_evicts_only_the_oldest() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(3, 10.0, clock)
    cache.set("a", 1)
    clock.now += 5
    cache.set("b", 2)
    cache.set("c", 3)
    clock.now += 5  # "a" is 10 s old: expired; "b" and "c" are not
    assert cache.get("a") is None and cache.get("b") == 2 and cache.get("c") == 3
    cache.set("d", 4)
    cache.set("e", 5)  # full: "b", the oldest, goes; the rest stay
    assert (cache.get("b"), cache.get("c"), cache.get("d"), cache.get("e")) == (None, 3, 4, 5)


def test_ttl_cache_with_ttl_zero_stores_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(3, 0.0)
    cache.set("a", 1)
    assert cache.get("a") is None and len(cache) == 0


# --- the API ----------------------------------------------------------------------------------


def limited_app(**limits):
    # A rate so low that no token comes back during the test: the outcome cannot depend on timing.
    settings = Settings(**{**OFFLINE_SETTINGS, **limits})
    return create_app(settings, key_store=offline_key_store(), lake_engine=no_lake)


def test_client_over_its_rate_gets_429_problem_with_retry_after() -> None:
    app = limited_app(api_rate_limit_client_per_s=0.001, api_rate_limit_client_burst=2)
    c = TestClient(app, headers={"X-API-Key": ALL_MERCHANTS_KEY})
    url, params = DAILY
    assert [c.get(url, params=params).status_code for _ in range(2)] == [503, 503]  # no database: 503 once allowed
    r = c.get(url, params=params)
    assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:wallet-lake:problem:rate-limited"
    assert r.json()["request_id"] == r.headers["x-request-id"]
    assert 900 <= int(r.headers["retry-after"]) <= 1000  # 1 token per 1000 s
    # Another address has its own bucket; probes and metrics are never limited.
    other = TestClient(app, headers={"X-API-Key": ALL_MERCHANTS_KEY}, client=("192.0.2.7", 40000))
    assert other.get(url, params=params).status_code == 503
    assert c.get("/healthz").status_code == 200 and c.get("/metrics").status_code == 200


def test_client_limit_applies_before_the_key_is_looked_up() -> None:
    """Made-up keys from one address are refused before they cost a key lookup."""
    app = limited_app(api_rate_limit_client_per_s=0.001, api_rate_limit_client_burst=3)
    c = TestClient(app)
    url, params = DAILY
    statuses = [c.get(url, params=params, headers={"X-API-Key": generate_key()[1]}).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


def test_key_over_its_rate_gets_429_from_any_address() -> None:
    app = limited_app(api_rate_limit_key_per_s=0.001, api_rate_limit_key_burst=2)
    url, params = DAILY
    clients = [TestClient(app, headers={"X-API-Key": ALL_MERCHANTS_KEY}, client=(f"192.0.2.{i}", 40000)) for i in range(3)]
    assert [c.get(url, params=params).status_code for c in clients] == [503, 503, 429]
    r = clients[0].get(url, params=params)
    assert r.status_code == 429 and "API key" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1
    # Other keys are not affected; neither are requests that fail authentication (they spend
    # no key's tokens, so nobody can exhaust a key by naming its public id).
    scoped = TestClient(app, headers={"X-API-Key": SCOPED_KEY})
    assert scoped.get(url, params={**params, "merchant": "m_1"}).status_code == 503


def test_invalid_key_spends_no_tokens_of_the_real_key() -> None:
    app = limited_app(api_rate_limit_key_per_s=0.001, api_rate_limit_key_burst=1)
    url, params = DAILY
    forged = ALL_MERCHANTS_KEY[: len("wlk_") + 16 + 1] + "A" * 43  # the real key's id, a wrong secret
    anyone = TestClient(app, headers={"X-API-Key": forged})
    assert [anyone.get(url, params=params).status_code for _ in range(5)] == [401] * 5
    assert TestClient(app, headers={"X-API-Key": ALL_MERCHANTS_KEY}).get(url, params=params).status_code == 503


def test_default_settings_limit_rates() -> None:
    """Secure by default: both limits are on unless configured off."""
    s = Settings(pg_host="h", pg_user="u", pg_password="p", pg_db="d")
    assert s.api_rate_limit_client_per_s > 0 and s.api_rate_limit_key_per_s > 0


def test_openapi_documents_429_on_every_report(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    reports = {p: item for p, item in spec["paths"].items() if p.startswith("/reports/")}
    assert reports
    for path, item in reports.items():
        response = item["get"]["responses"]["429"]
        assert list(response["content"]) == ["application/problem+json"], path
        assert "Retry-After" in response["description"] and "Retry-After" in response["headers"]
