"""Key lookups behind CachedKeyStore: unknown key ids are remembered apart from known keys, with
their own TTL and bound, so a repeated bogus key costs no database round trip and a flood of
bogus keys never evicts a known one. Pure tests count the inner store's lookups under a
hand-driven clock; the integration tests count connections borrowed from the real pool."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.auth import CachedKeyStore, PostgresKeyStore, StaticKeyStore, generate_key, hash_key, key_id_of, verify
from api.db import Database
from api.settings import Settings

from .conftest import KeyedClient


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(StaticKeyStore):
    """In-memory keys that count the lookups that reach them (stands for the database)."""

    def __init__(self, keys=()) -> None:
        super().__init__(keys)
        self.lookups = 0

    async def lookup(self, key_id: str):
        self.lookups += 1
        await asyncio.sleep(0)  # a real store yields to the event loop while it waits
        return await super().lookup(key_id)


def cached(inner, clock, **kwargs) -> CachedKeyStore:
    args = dict(ttl_s=5.0, negative_ttl_s=60.0, max_entries=100, negative_max_entries=100) | kwargs
    return CachedKeyStore(inner, clock=clock, **args)


def test_repeated_bogus_key_reaches_the_store_once_per_ttl() -> None:
    clock, inner = Clock(), CountingStore()
    store = cached(inner, clock)
    bogus = generate_key()[1]

    async def run() -> None:
        for _ in range(50):
            assert await verify(store, bogus) is None
        assert inner.lookups == 1
        clock.now += 59.9
        assert await verify(store, bogus) is None and inner.lookups == 1
        clock.now += 0.1  # the entry expires on its own TTL
        assert await verify(store, bogus) is None and inner.lookups == 2

    asyncio.run(run())


def test_concurrent_lookups_of_one_id_share_one_query() -> None:
    clock, inner = Clock(), CountingStore()
    store = cached(inner, clock)
    bogus = generate_key()[1]

    async def run() -> None:
        assert await asyncio.gather(*(verify(store, bogus) for _ in range(20))) == [None] * 20

    asyncio.run(run())
    assert inner.lookups == 1


def test_flood_of_bogus_ids_never_evicts_known_keys() -> None:
    clock = Clock()
    real = generate_key()[1]
    inner = CountingStore({real: None})
    store = cached(inner, clock, negative_max_entries=10)

    async def run() -> None:
        assert await verify(store, real) is not None
        for _ in range(1000):
            await verify(store, generate_key()[1])
        assert len(store.unknown) == 10  # bounded: only the newest bogus ids are kept
        before = inner.lookups
        assert await verify(store, real) is not None
        assert inner.lookups == before  # still cached: the flood did not clear it

    asyncio.run(run())


def test_key_created_after_its_id_was_cached_unknown_works_once_the_entry_expires() -> None:
    clock = Clock()
    inner = CountingStore()
    store = cached(inner, clock, negative_ttl_s=30.0)
    key_id, key = generate_key()

    async def run() -> None:
        assert await verify(store, key) is None
        inner._rows.update(StaticKeyStore({key: ["m1"]})._rows)  # the key is created now
        clock.now += 29
        assert await verify(store, key) is None  # within the TTL the id is still unknown here
        clock.now += 1
        assert (await verify(store, key)).merchant_ids == frozenset({"m1"})

    asyncio.run(run())


def test_negative_ttl_is_a_documented_setting() -> None:
    field = Settings.model_fields["api_key_negative_cache_ttl_s"]
    assert field.default > 0 and field.metadata  # ge=0: 0 disables it
    s = Settings(pg_host="h", pg_user="u", pg_password="p", pg_db="d", api_key_negative_cache_ttl_s=0)
    store = CachedKeyStore(CountingStore(), ttl_s=5, negative_ttl_s=s.api_key_negative_cache_ttl_s)

    async def run() -> None:
        await store.lookup("0" * 16)
        await store.lookup("0" * 16)

    asyncio.run(run())
    assert store.store.lookups == 2


# --- the real pool (integration) ----------------------------------------------------------------


def requests_num(client: TestClient) -> int:
    return client.app.state.database.borrows


@pytest.mark.integration
def test_repeated_bogus_key_borrows_no_pooled_connection(live_http: TestClient) -> None:
    bogus = KeyedClient(live_http, {"X-API-Key": generate_key()[1]})
    params = {"date": "2026-11-24"}
    assert bogus.get("/reports/daily-recon", params=params).status_code == 401
    before = requests_num(live_http)
    for _ in range(30):
        assert bogus.get("/reports/daily-recon", params=params).status_code == 401
    assert requests_num(live_http) == before


@pytest.mark.integration
def test_postgres_store_negative_entry_expires_for_a_new_key(pg_settings: Settings, pg_admin: psycopg.Connection) -> None:
    """Against api_keys: an id looked up before its key existed is served from the cache (no
    connection borrowed) until the negative TTL passes, then the new key is found."""
    key_id, key = generate_key()
    clock = Clock()

    async def run() -> None:
        database = Database()
        await database.open(pg_settings, wait=True)
        try:
            store = CachedKeyStore(PostgresKeyStore(database), ttl_s=5, negative_ttl_s=30, clock=clock)
            assert await verify(store, key) is None
            pg_admin.execute(
                "INSERT INTO public.api_keys (key_id, key_sha256, all_merchants, merchant_ids, label)"
                " VALUES (%s, %s, true, '{}', 'wallet_lake_tests.api key cache')",
                [key_id, hash_key(key)],
            )
            before = database.borrows
            clock.now += 29
            assert await verify(store, key) is None
            assert database.borrows == before
            clock.now += 1
            found = await verify(store, key)
            assert found is not None and found.key_id == key_id_of(key) and found.all_merchants
            assert database.borrows == before + 1
        finally:
            await database.close()

    try:
        asyncio.run(run())
    finally:
        pg_admin.execute("DELETE FROM public.api_keys WHERE key_id = %s", [key_id])
