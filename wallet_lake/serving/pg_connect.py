"""Connections to Postgres as one of the duty roles (serving/pg_roles.py), from the environment:
for command-line tools, provisioning, benchmarks and tests. Long-running services take the same
variables through their own settings (the Dagster PostgresResource, api/settings.py).

Settings: wallet_lake/settings.py PostgresSettings (endpoint, each duty's role, TLS: sslmode
verify-full by default, the CA in WL_PG_SSLROOTCERT); passwords: SecretSettings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wallet_lake.serving.pg_roles import ROLES
from wallet_lake.settings import PostgresSettings, PostgresTls, load


def tls_kwargs(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """libpq's sslmode and sslrootcert as the settings say (PostgresEndpoint)."""
    pg = load(PostgresTls, env)
    return {"sslmode": pg.pg_sslmode} | ({"sslrootcert": pg.pg_sslrootcert} if pg.pg_sslrootcert else {})


def login(duty: str, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(role name, password) of a duty; the password through security/secrets.py."""
    from wallet_lake.security.secrets import resolve_secret

    role = ROLES[duty]
    user = getattr(load(PostgresSettings, env), role.user_field)
    return user, resolve_secret(role.password_env, env=env)


def connect_kwargs(duty: str = "owner", env: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """Keyword arguments of psycopg.connect for `duty` on its database, over verified TLS."""
    pg = load(PostgresSettings, env)
    user, password = login(duty, env)
    dbname = pg.dagster_pg_db if ROLES[duty].database == "dagster" else pg.pg_db
    return {
        "host": pg.pg_host, "port": pg.pg_port, "dbname": dbname, "user": user, "password": password,
        "connect_timeout": 10, **tls_kwargs(env), **extra,
    }


def connect(duty: str = "owner", env: Mapping[str, str] | None = None, **extra: Any):
    """A psycopg connection as `duty` (see connect_kwargs); extra kwargs such as autocommit=True."""
    import psycopg

    return psycopg.connect(**connect_kwargs(duty, env, **extra))
