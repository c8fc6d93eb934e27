"""Create the Postgres login roles and databases of wallet-lake, and bring each role to exactly
its grants (serving/pg_roles.py). Idempotent; provisioning runs it at every `stack/wallet-stack up`.

Two logins do this:
  - the cluster administrator (WL_PG_ADMIN_USER; locally `postgres` over the stack's Unix socket
    WL_PG_ADMIN_HOST, on RDS the master user with WL_PG_ADMIN_PASSWORD, possibly through
    WL_PG_ADMIN_PASSWORD_SECRET_ID) creates roles, sets their passwords and creates databases;
  - the schema owner (WL_PG_USER) grants on its tables, after the migrations.

Passwords never travel in SQL text: the client computes each SCRAM-SHA-256 verifier
(libpq's PQencryptPasswordConn) and only the verifier is sent, so a statement log holds no
password."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import sql

from wallet_lake.serving.pg_roles import ROLES, grants_sql
from wallet_lake.settings import PostgresSettings, load

log = logging.getLogger("wallet_lake.serving.pg_provision")

# Login roles hold no power beyond their grants: no role or database creation, no replication.
# (INHERIT stays: the owner creates in the public schema through pg_database_owner membership.)
_ROLE_OPTIONS = "LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


def role_names(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """duty -> role name (PostgresSettings)."""
    pg = load(PostgresSettings, env)
    return {duty: getattr(pg, r.user_field) for duty, r in ROLES.items()}


def admin_connect_kwargs(env: Mapping[str, str] | None = None, dbname: str = "postgres") -> dict[str, Any]:
    from wallet_lake.security.secrets import SecretNotFound, resolve_secret
    from wallet_lake.serving.pg_connect import tls_kwargs

    pg = load(PostgresSettings, env)
    host = pg.pg_admin_host or pg.pg_host
    kwargs: dict[str, Any] = {"host": host, "port": pg.pg_port, "dbname": dbname,
                              "user": pg.pg_admin_user, "connect_timeout": 10, "autocommit": True}
    try:
        kwargs["password"] = resolve_secret("WL_PG_ADMIN_PASSWORD", env=env)
    except SecretNotFound:
        pass  # the local Unix socket: the OS user is trusted (the socket's folder is 0700)
    if not host.startswith("/"):
        kwargs.update(tls_kwargs(env))
    return kwargs


def ensure_roles(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Create missing roles and databases, (re)set every password, restrict CONNECT; returns
    duty -> 'created' | 'updated'."""
    import psycopg

    from wallet_lake.security.secrets import resolve_secret

    pg = load(PostgresSettings, env)
    names = role_names(env)
    dbs = {"serving": pg.pg_db, "dagster": pg.dagster_pg_db}
    done: dict[str, str] = {}
    with psycopg.connect(**admin_connect_kwargs(env)) as conn:
        for duty, role in ROLES.items():
            name = names[duty]
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE ROLE {} " + _ROLE_OPTIONS).format(sql.Identifier(name)))
            verifier = conn.pgconn.encrypt_password(
                resolve_secret(role.password_env, env=env).encode(), name.encode(), b"scram-sha-256"
            ).decode()
            conn.execute(sql.SQL("ALTER ROLE {} WITH " + _ROLE_OPTIONS + " PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(verifier)))
            done[duty] = "updated" if exists else "created"
        owners = {"serving": names["owner"], "dagster": names["dagster"]}
        for which, db in dbs.items():
            ensure_database(conn, db, owners[which], [names[d] for d, r in ROLES.items() if r.database == which],
                            temporary=[names[d] for d, r in ROLES.items() if r.database == which and r.temporary])
    return done


def ensure_database(admin, db: str, owner: str, users: list[str], temporary: Sequence[str] = ()) -> None:
    """As the cluster administrator: database `db` owned by `owner`, which only `users` may enter,
    and in which only `temporary` (some of them) may create temp tables."""
    row = admin.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (db,)).fetchone()
    if row is None:
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(owner)))
    elif row[0] != owner:
        # A stack made before the roles existed: its objects stay with the old owner.
        log.warning("database %s is owned by %s, not %s: recreate it (stack/wallet-stack down; rm -rf .stack/postgres)",
                    db, row[0], owner)
    admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db)))
    admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
        sql.Identifier(db), sql.SQL(", ").join(sql.Identifier(u) for u in users)))
    if others := [u for u in users if u not in temporary and u != owner]:
        admin.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM {}").format(
            sql.Identifier(db), sql.SQL(", ").join(sql.Identifier(u) for u in others)))
    if temporary:
        admin.execute(sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(
            sql.Identifier(db), sql.SQL(", ").join(sql.Identifier(u) for u in temporary)))


def apply_grants(conn, env: Mapping[str, str] | None = None) -> int:
    """As the schema owner: every role to exactly its grants (one transaction); returns the
    number of statements."""
    stmts = grants_sql(role_names(env))
    with conn.transaction():
        for stmt in stmts:
            conn.execute(stmt)
    return len(stmts)
