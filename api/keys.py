"""API key administration: `python -m api.keys create|revoke|list`.

    python -m api.keys create --merchants m_0001,m_0002 [--label "support desk"]
    python -m api.keys create --all [--label "finance"]
    python -m api.keys revoke KEY_ID
    python -m api.keys list [--json]

`create` prints the key once, on stdout; only its SHA-256 is stored (see api.auth), so a lost key
cannot be shown again: revoke it and create another. Nothing here logs key material. The
connection settings are the API's (WL_PG_*), logged in as the key administrator
(WL_PG_KEYS_USER / WL_PG_KEYS_PASSWORD, who may read and write api_keys only), with a writable session."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from api.access import MERCHANT_MAX_LENGTH, MERCHANT_PATTERN
from api.auth import generate_key, hash_key
from api.settings import KeyAdminSettings, Settings, SettingsError, load_settings

_MERCHANT = re.compile(MERCHANT_PATTERN)


def create_key(
    conn: psycopg.Connection, *, merchant_ids: Iterable[str] | None, label: str | None = None
) -> tuple[str, str]:
    """Store a new key scoped to `merchant_ids` (None: every merchant); returns (key_id, key).
    The key itself is returned once and stored nowhere."""
    merchants = sorted(set(merchant_ids)) if merchant_ids is not None else []
    if merchant_ids is not None and not merchants:
        raise ValueError("a merchant-scoped key needs at least one merchant id")
    for m in merchants:
        if len(m) > MERCHANT_MAX_LENGTH or not _MERCHANT.match(m):
            raise ValueError(f"not a merchant id: {m!r}")
    key_id, key = generate_key()
    conn.execute(
        "INSERT INTO public.api_keys (key_id, key_sha256, all_merchants, merchant_ids, label)"
        " VALUES (%(key_id)s, %(hash)s, %(all)s, %(merchants)s, %(label)s)",
        {"key_id": key_id, "hash": hash_key(key), "all": merchant_ids is None, "merchants": merchants, "label": label},
    )
    return key_id, key


def revoke_key(conn: psycopg.Connection, key_id: str) -> bool:
    """Revoke a key; False when no unrevoked key has that id."""
    cur = conn.execute(
        "UPDATE public.api_keys SET revoked_at = now() WHERE key_id = %(key_id)s AND revoked_at IS NULL",
        {"key_id": key_id},
    )
    return cur.rowcount == 1


def list_keys(conn: psycopg.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT key_id, all_merchants, merchant_ids, label, created_at, revoked_at"
        " FROM public.api_keys ORDER BY created_at, key_id"
    ).fetchall()
    return [
        {
            "key_id": r[0],
            "scope": "all merchants" if r[1] else list(r[2]),
            "label": r[3],
            "created_at": r[4].isoformat(),
            "revoked_at": r[5].isoformat() if r[5] else None,
        }
        for r in rows
    ]


def connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(
        settings.conninfo(read_only=False, application_name="wallet-lake-api-keys"),
        password=settings.pg_password.get_secret_value(),
        autocommit=True,
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m api.keys", description="Create, revoke and list reports API keys.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", help="create a key and print it once")
    scope = c.add_mutually_exclusive_group(required=True)
    scope.add_argument("--merchants", help="comma-separated merchant ids the key may read")
    scope.add_argument("--all", action="store_true", help="the key may read every merchant (and all-merchant reports)")
    c.add_argument("--label", help="what the key is for (shown by list)")
    r = sub.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("key_id")
    ls = sub.add_parser("list", help="list keys (ids and scopes; never the keys)")
    ls.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(KeyAdminSettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    with connect(settings) as conn:
        if args.command == "create":
            merchants = None if args.all else [m.strip() for m in args.merchants.split(",") if m.strip()]
            try:
                key_id, key = create_key(conn, merchant_ids=merchants, label=args.label)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            scope = "all merchants" if merchants is None else ", ".join(sorted(set(merchants)))
            print(f"key_id: {key_id}\nscope:  {scope}\nkey:    {key}")
            print("Store the key now: it is not kept and cannot be shown again.", file=sys.stderr)
        elif args.command == "revoke":
            if not revoke_key(conn, args.key_id):
                print(f"error: no active key with id {args.key_id!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}")
        else:
            keys = list_keys(conn)
            if args.json:
                print(json.dumps(keys, indent=2))
            else:
                for k in keys:
                    scope = k["scope"] if isinstance(k["scope"], str) else ",".join(k["scope"])
                    state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "active"
                    print(f"{k['key_id']}  {state:<40}  {scope}  {k['label'] or ''}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
