"""API keys: format, hashing, verification, and the request dependency that authenticates.

A key is `wlk_<key_id>_<secret>`: key_id is 16 hex characters (public: it names the key in
listings and revocations, and finds its row), secret is 32 random bytes (urlsafe base64). Only
SHA-256 of the whole key is stored (table api_keys, migration 0003). A plain hash suffices
because the secret has 256 bits of entropy: neither a dictionary nor a brute-force search can
invert it, so a slow or salted hash would only cost CPU per request. The presented key's hash is
compared with hmac.compare_digest (constant time); the row is found by key_id, never by the
secret, so no index lookup's timing depends on the secret either.

Lookups are cached per process (CachedKeyStore): known keys for `api_key_cache_ttl_s` seconds
(default 5: a revocation takes effect within that time), unknown key ids apart, for
`api_key_negative_cache_ttl_s` (default 60), so a repeated made-up key costs no pooled
connection. Both caches are bounded and drop their oldest entry when full, each on its own.

Rate limits (api/ratelimit.py) are checked here too: per client address before the key is
looked up, per key once it is verified; either answers 429 with Retry-After."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request

from api.ratelimit import TokenBucketLimiter
from api.ttl_cache import TtlCache

KEY_PREFIX = "wlk"
_KEY = re.compile(r"^wlk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
# Compared against when a key_id is unknown, so that path does the same work as a wrong secret.
_NO_SUCH_KEY = hashlib.sha256(b"no such key").digest()


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def generate_key() -> tuple[str, str]:
    """(key_id, key): a fresh key. The caller stores hash_key(key) and shows the key once."""
    key_id = secrets.token_hex(8)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(presented: str) -> str | None:
    """The key_id of a well-formed key, None otherwise (the format is public, not a secret)."""
    m = _KEY.match(presented)
    return m.group(1) if m else None


@dataclass(frozen=True)
class StoredKey:
    """A row of api_keys."""

    key_id: str
    key_sha256: bytes
    all_merchants: bool
    merchant_ids: frozenset[str]
    revoked: bool = False


@dataclass(frozen=True)
class ApiKey:
    """An authenticated caller: which merchants it may read."""

    key_id: str
    all_merchants: bool
    merchant_ids: frozenset[str]

    def may_read(self, merchant_id: str | None) -> bool:
        """`None` means every merchant: only all-merchant keys may ask for that."""
        return self.all_merchants or (merchant_id is not None and merchant_id in self.merchant_ids)


class KeyStore(Protocol):
    async def lookup(self, key_id: str) -> StoredKey | None: ...


async def verify(store: KeyStore, presented: str) -> ApiKey | None:
    """The key's scope if `presented` is a valid, unrevoked key; None otherwise."""
    key_id = key_id_of(presented)
    if key_id is None:
        return None
    stored = await store.lookup(key_id)
    digest = hash_key(presented)
    if stored is None:
        hmac.compare_digest(digest, _NO_SUCH_KEY)
        return None
    if not hmac.compare_digest(digest, stored.key_sha256) or stored.revoked:
        return None
    return ApiKey(stored.key_id, stored.all_merchants, stored.merchant_ids)


class StaticKeyStore:
    """Keys held in memory: for tests and offline apps (no database)."""

    def __init__(self, keys: Mapping[str, Iterable[str] | None] = ()) -> None:
        """keys: {plaintext key: merchant ids, or None for all merchants}."""
        self._rows: dict[str, StoredKey] = {}
        for key, merchants in dict(keys).items():
            key_id = key_id_of(key)
            if key_id is None:
                raise ValueError("not a wallet-lake API key")
            self._rows[key_id] = StoredKey(key_id, hash_key(key), merchants is None, frozenset(merchants or ()))

    async def lookup(self, key_id: str) -> StoredKey | None:
        return self._rows.get(key_id)


# The API's role may not read api_keys: it calls the narrow lookup function (migration 0008).
_LOOKUP = "SELECT key_sha256, all_merchants, merchant_ids, revoked FROM public.api_key_lookup(%(key_id)s)"


class PostgresKeyStore:
    """api_keys in Postgres: one query on a pooled connection per lookup (CachedKeyStore in front)."""

    def __init__(self, database) -> None:
        self.database = database

    async def lookup(self, key_id: str) -> StoredKey | None:
        async with self.database.connection() as conn:
            rows = await conn.fetch(_LOOKUP, {"key_id": key_id})
        return None if not rows else StoredKey(key_id, bytes(rows[0][0]), rows[0][1], frozenset(rows[0][2]), rows[0][3])


class CachedKeyStore:
    """Another store behind two bounded per-process caches: known keys (revoked ones included)
    and unknown key ids, each with its own TTL and size, so a flood of bogus ids only ever
    evicts other bogus ids. Concurrent lookups of the same uncached id share one query.

    Touched only from the process's event loop: no lock needed."""

    def __init__(
        self,
        store: KeyStore,
        *,
        ttl_s: float,
        negative_ttl_s: float,
        max_entries: int = 10_000,
        negative_max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock
        self.configure(ttl_s=ttl_s, negative_ttl_s=negative_ttl_s, max_entries=max_entries,
                       negative_max_entries=negative_max_entries)
        self._pending: dict[str, asyncio.Future[StoredKey | None]] = {}

    def configure(self, *, ttl_s: float, negative_ttl_s: float, max_entries: int, negative_max_entries: int) -> None:
        """(Re)size the caches, emptying them (the app calls this once its settings are read)."""
        self.known: TtlCache[str, StoredKey] = TtlCache(max_entries, ttl_s, self.clock)
        self.unknown: TtlCache[str, bool] = TtlCache(negative_max_entries, negative_ttl_s, self.clock)

    async def lookup(self, key_id: str) -> StoredKey | None:
        stored = self.known.get(key_id)
        if stored is not None:
            return stored
        if key_id in self.unknown:
            return None
        pending = self._pending.get(key_id)
        if pending is None:
            pending = self._pending[key_id] = asyncio.ensure_future(self._fetch(key_id))
        # Shielded: a cancelled request must not cancel the query the others are waiting on.
        return await asyncio.shield(pending)

    async def _fetch(self, key_id: str) -> StoredKey | None:
        try:
            stored = await self.store.lookup(key_id)
        finally:
            self._pending.pop(key_id, None)
        if stored is None:
            self.unknown.set(key_id, True)
        else:
            self.known.set(key_id, stored)
        return stored


class NotAuthenticated(Exception):
    """No key, or not a valid one: 401."""


class RateLimited(Exception):
    """Too many requests from this client address or with this key: 429 with Retry-After."""

    def __init__(self, scope: str, retry_after_s: float) -> None:
        super().__init__(scope)
        self.scope = scope  # "client" or "key"
        self.retry_after_s = retry_after_s


class RateLimits:
    """The app's two limiters (api/ratelimit.py), sized from its settings."""

    def __init__(self, client: TokenBucketLimiter, key: TokenBucketLimiter) -> None:
        self.client = client
        self.key = key


class MerchantForbidden(Exception):
    """A valid key asking for a merchant (or all merchants) outside its scope: 403."""

    def __init__(self, merchant_id: str | None) -> None:
        super().__init__(merchant_id)
        self.merchant_id = merchant_id


# How clients send a key, for the OpenAPI document (api.main adds them to every report): the
# dependency below reads the headers itself, which costs less per request than FastAPI's
# security classes as two more dependencies.
SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "An API key from `python -m api.keys create`."},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "The same API key as a bearer token."},
}


def presented_key(request: Request) -> str | None:
    """The key from X-API-Key, else from `Authorization: Bearer <key>`. A present X-API-Key is
    the credential even when empty: skipping it for the bearer token would accept a request
    whose X-API-Key is not a valid key."""
    key = request.headers.get("x-api-key")
    if key is not None:
        return key.strip() or None
    scheme, _, credentials = (request.headers.get("authorization") or "").partition(" ")
    return (credentials.strip() or None) if scheme.lower() == "bearer" else None


def client_address(request: Request) -> str:
    """The TCP peer (the proxy's address behind one, unless uvicorn runs with --proxy-headers)."""
    return request.client.host if request.client else "unknown"


async def authenticate(request: Request) -> ApiKey:
    """The caller's key from X-API-Key (or Authorization: Bearer); 429 past the client's rate
    (checked first: it also bounds the key lookups of made-up keys), 401 without a valid key,
    429 past the key's rate."""
    return await authenticate_key(request, presented_key(request))


async def authenticate_key(request: Request, presented: str | None) -> ApiKey:
    """`authenticate` for a key however it was presented (the reports pages read it from their
    cookie, api/ui/session.py): the same rate limits, the same verification."""
    limits: RateLimits = request.app.state.rate_limits
    wait = limits.client.acquire(client_address(request))
    if wait:
        raise RateLimited("client", wait)
    if not presented:
        raise NotAuthenticated()
    key = await verify(request.app.state.key_store, presented)
    if key is None:
        raise NotAuthenticated()
    request.state.key_id = key.key_id  # the access log names the key (its id, never the key)
    wait = limits.key.acquire(key.key_id)
    if wait:
        raise RateLimited("key", wait)
    return key


Authenticated = Annotated[ApiKey, Depends(authenticate)]
