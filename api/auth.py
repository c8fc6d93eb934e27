"""API keys: format, hashing, verification, and the request dependency that authenticates.

A key is `wlk_<key_id>_<secret>`: key_id is 16 hex characters (public: it names the key in
listings and revocations, and finds its row), secret is 32 random bytes (urlsafe base64). Only
SHA-256 of the whole key is stored (table api_keys, migration 0003). A plain hash suffices
because the secret has 256 bits of entropy: neither a dictionary nor a brute-force search can
invert it, so a slow or salted hash would only cost CPU per request. The presented key's hash is
compared with hmac.compare_digest (constant time); the row is found by key_id, never by the
secret, so no index lookup's timing depends on the secret either.

Verified keys are cached per process for `api_key_cache_ttl_s` seconds (default 5): a
revocation takes effect within that time, and a request costs no extra query in between."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request

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


_LOOKUP = "SELECT key_sha256, all_merchants, merchant_ids, revoked_at IS NOT NULL FROM public.api_keys WHERE key_id = %(key_id)s"


class PostgresKeyStore:
    """api_keys in Postgres, with a small per-process cache (unknown key_ids are cached too, so
    a flood of made-up keys costs one query per key_id and TTL, not one per request)."""

    MAX_ENTRIES = 10_000

    def __init__(self, database, ttl_s: float) -> None:
        self.database = database
        self.ttl_s = ttl_s
        # Touched only from the event loop of the process: no lock needed.
        self._cache: dict[str, tuple[float, StoredKey | None]] = {}

    async def lookup(self, key_id: str) -> StoredKey | None:
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        async with self.database.connection() as conn:
            row = await (await conn.execute(_LOOKUP, {"key_id": key_id})).fetchone()
        stored = None if row is None else StoredKey(key_id, bytes(row[0]), row[1], frozenset(row[2]), row[3])
        if len(self._cache) >= self.MAX_ENTRIES:
            self._cache.clear()
        self._cache[key_id] = (now, stored)
        return stored


class NotAuthenticated(Exception):
    """No key, or not a valid one: 401."""


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
    """The key from X-API-Key, else from `Authorization: Bearer <key>`."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, credentials = (request.headers.get("authorization") or "").partition(" ")
    return (credentials.strip() or None) if scheme.lower() == "bearer" else None


async def authenticate(request: Request) -> ApiKey:
    """The caller's key from X-API-Key (or Authorization: Bearer); 401 without a valid one."""
    presented = presented_key(request)
    if not presented:
        raise NotAuthenticated()
    key = await verify(request.app.state.key_store, presented)
    if key is None:
        raise NotAuthenticated()
    request.state.key_id = key.key_id  # the access log names the key (its id, never the key)
    return key


Authenticated = Annotated[ApiKey, Depends(authenticate)]
