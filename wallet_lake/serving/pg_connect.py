"""Connections to Postgres as one of the duty roles (serving/pg_roles.py), from the environment:
for command-line tools, provisioning, benchmarks and tests. Long-running services take the same
variables through their own settings (the Dagster PostgresResource, api/settings.py).

Variables (stack/local.env):
  WL_PG_HOST, WL_PG_PORT, WL_PG_DB     the serving database (WL_DAGSTER_PG_DB: Dagster's own)
  WL_PG_<DUTY>_USER, secret WL_PG_<DUTY>_PASSWORD   the role of a duty (pg_roles.ROLES)
  WL_PG_SSLMODE       libpq sslmode every client uses (default verify-full: the server must
                      present a certificate of the CA below for the host name or IP connected to)
  WL_PG_SSLROOTCERT   that CA (PEM); stack/lib.sh exports the stack's (stack/tls.py). On RDS: the
                      RDS CA bundle."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from wallet_lake.serving.pg_roles import ROLES

DEFAULT_SSLMODE = "verify-full"


def tls_kwargs(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """libpq's sslmode and sslrootcert as the environment sets them."""
    env = os.environ if env is None else env
    kwargs = {"sslmode": env.get("WL_PG_SSLMODE") or DEFAULT_SSLMODE}
    if env.get("WL_PG_SSLROOTCERT"):
        kwargs["sslrootcert"] = env["WL_PG_SSLROOTCERT"]
    return kwargs


def login(duty: str, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(role name, password) of a duty; the password through security/secrets.py."""
    from wallet_lake.security.secrets import resolve_secret

    env = os.environ if env is None else env
    role = ROLES[duty]
    user = env.get(role.user_env)
    if not user:
        raise RuntimeError(f"environment variable {role.user_env} is not set (source the stack: eval \"$(stack/wallet-stack env)\")")
    return user, resolve_secret(role.password_env, env=env)


def connect_kwargs(duty: str = "owner", env: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """Keyword arguments of psycopg.connect for `duty` on its database, over verified TLS."""
    env = os.environ if env is None else env
    user, password = login(duty, env)
    dbname = env["WL_DAGSTER_PG_DB"] if ROLES[duty].database == "dagster" else env["WL_PG_DB"]
    return {
        "host": env["WL_PG_HOST"], "port": int(env.get("WL_PG_PORT") or 5432), "dbname": dbname,
        "user": user, "password": password, "connect_timeout": 10, **tls_kwargs(env), **extra,
    }


def connect(duty: str = "owner", env: Mapping[str, str] | None = None, **extra: Any):
    """A psycopg connection as `duty` (see connect_kwargs); extra kwargs such as autocommit=True."""
    import psycopg

    return psycopg.connect(**connect_kwargs(duty, env, **extra))
