"""The API's Postgres pool (api/db.py) against the real server, reached directly or through a
TCP forwarder that comes up late, cuts its connections, or answers under a name the server's
certificate does not carry: verified TLS, a start before Postgres, lost connections, and which
errors are a 503."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import asyncpg
import pytest
from fastapi.testclient import TestClient

from api.db import Database, DatabaseUnavailable, ssl_option, unavailable
from api.main import create_app
from api.problems import SERVICE_UNAVAILABLE
from api.settings import Settings
from wallet_lake_tests.polling import deadline_poll
from wallet_lake_tests.tcp_forwarder import TcpForwarder

from .conftest import NO_RATE_LIMITS

REPORT = ("/reports/daily-recon", {"date": "2026-11-24"})


# --- which errors are a 503 (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "is_503", "timed_out"),
    [
        (asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"), True, True),
        (asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"), True, False),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), True, False),
        (asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"), True, False),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"), True, False),
        (asyncpg.exceptions.SerializationError("could not serialize access"), True, False),
        (asyncpg.exceptions.LockNotAvailableError("could not obtain lock"), True, False),
        # A bug or bad data stays a 500: a retry would not cure it.
        (asyncpg.exceptions.UndefinedColumnError("column x does not exist"), False, False),
        (asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"), False, False),
        (asyncpg.exceptions.DataError("invalid input"), False, False),
        (ValueError("not a database error"), False, False),
        (asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed"), False, False),
        (OSError("not the connection's"), False, False),
    ],
)
def test_errors_a_retry_can_cure_are_unavailable(error: Exception, is_503: bool, timed_out: bool) -> None:
    mapped = unavailable(error)
    assert (mapped is not None) == is_503
    if mapped is not None:
        assert mapped.timed_out == timed_out and type(error).__name__ in str(mapped)
    # Once the connection is lost, whatever touched it next is a 503 (asyncpg masks the first error).
    lost = unavailable(error, connection_lost=True)
    assert lost is not None and lost.timed_out == timed_out


def test_a_ca_file_makes_require_verify_the_chain_as_libpq_does(tmp_path: Path) -> None:
    from stack import tls

    tls.ensure(tmp_path)
    ca = str(tmp_path / "ca.pem")
    for mode, names_checked in (("require", False), ("verify-ca", False), ("verify-full", True)):
        context = ssl_option(mode, ca)
        assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname == names_checked
    assert ssl_option("require", None) == "require" and ssl_option("prefer", ca) == "prefer"
    with pytest.raises(FileNotFoundError):  # at startup, not as a retried connection error
        ssl_option("verify-full", str(tmp_path / "missing.pem"))


# --- the real server -------------------------------------------------------------------------------


def _through(settings: Settings, forwarder: TcpForwarder, **update) -> Settings:
    return settings.model_copy(update={"pg_host": forwarder.host, "pg_port": forwarder.port, **update})


async def _tls_of_one_connection(settings: Settings) -> tuple[bool, str]:
    database = Database()
    await database.open(settings.model_copy(update={"pg_pool_min_size": 1}), wait=True)
    try:
        async with database.connection() as conn:
            row = (await conn.fetch("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))[0]
            return row["ssl"], row["version"]
    finally:
        await database.close()


@pytest.mark.integration
def test_the_pool_verifies_the_servers_certificate_and_name(pg_settings: Settings, tmp_path: Path) -> None:
    from stack import tls

    assert pg_settings.pg_sslmode == "verify-full" and pg_settings.pg_sslrootcert
    encrypted, version = asyncio.run(_tls_of_one_connection(pg_settings))
    assert encrypted and version.startswith("TLSv1.")
    # A CA that did not sign the server's certificate: refused before any password is sent.
    other = tmp_path / "other-ca"
    tls.ensure(other)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        asyncio.run(_tls_of_one_connection(pg_settings.model_copy(update={"pg_sslrootcert": str(other / "ca.pem")})))
    # The right CA under a name the certificate does not carry (127.0.0.2): verify-full refuses,
    # verify-ca (the CA only) connects.
    with TcpForwarder(pg_settings.pg_host, pg_settings.pg_port, host="127.0.0.2").start() as forwarder:
        with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch|doesn't match|hostname"):
            asyncio.run(_tls_of_one_connection(_through(pg_settings, forwarder)))
        assert asyncio.run(_tls_of_one_connection(_through(pg_settings, forwarder, pg_sslmode="verify-ca")))[0]
    # Without TLS the server refuses the login (pg_hba: hostssl only).
    with pytest.raises(asyncpg.PostgresError, match="no encryption"):
        asyncio.run(_tls_of_one_connection(pg_settings.model_copy(update={"pg_sslmode": "disable"})))


@pytest.mark.integration
def test_the_api_starts_before_postgres_and_serves_once_it_answers(pg_settings: Settings, api_key) -> None:
    """Postgres unreachable at startup: the API starts anyway, answers 503 with Retry-After (the
    key lookup included), and serves once Postgres answers, without a restart."""
    key = {"X-API-Key": api_key()}
    forwarder = TcpForwarder(pg_settings.pg_host, pg_settings.pg_port)  # not listening yet
    settings = _through(pg_settings, forwarder, api_readyz_timeout_s=0.3, pg_pool_timeout_s=0.3,
                        api_key_cache_ttl_s=0, **NO_RATE_LIMITS)
    with forwarder, TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 503
        down = client.get(REPORT[0], params=REPORT[1], headers=key)
        assert down.status_code == 503 and down.headers["retry-after"] == "5"
        assert down.json()["type"] == SERVICE_UNAVAILABLE and "database is unavailable" in down.json()["detail"]
        forwarder.start()
        deadline_poll(lambda: client.get("/readyz").status_code == 200, "the pool to reach Postgres once it answers")
        assert client.get(REPORT[0], params=REPORT[1], headers=key).status_code == 200


@pytest.mark.integration
def test_connections_lost_under_the_pool_are_503s_then_replaced(pg_settings: Settings, api_key) -> None:
    """Every pooled connection cut (a Postgres restart, a network drop): the API never answers
    500, and serves again from new connections."""
    key = {"X-API-Key": api_key()}
    with TcpForwarder(pg_settings.pg_host, pg_settings.pg_port).start() as forwarder:
        settings = _through(pg_settings, forwarder, pg_pool_min_size=2, api_key_cache_ttl_s=0, **NO_RATE_LIMITS)
        with TestClient(create_app(settings)) as client:
            assert client.get(REPORT[0], params=REPORT[1], headers=key).status_code == 200
            accepted = forwarder.accepted
            forwarder.cut()
            after = [client.get(REPORT[0], params=REPORT[1], headers=key) for _ in range(3)]
            assert {r.status_code for r in after} <= {200, 503}, [r.text for r in after]
            deadline_poll(lambda: client.get(REPORT[0], params=REPORT[1], headers=key).status_code == 200,
                          "a report served from a new connection")
            assert forwarder.accepted > accepted  # new connections, not the cut ones

        async def statement_cut_midway() -> None:
            database = Database()
            await database.open(settings, wait=True)
            try:
                async def cut_soon() -> None:
                    await asyncio.sleep(0.3)
                    await asyncio.to_thread(forwarder.cut)

                with pytest.raises(DatabaseUnavailable) as lost:
                    async with database.connection() as conn:
                        await asyncio.gather(conn.fetch("SELECT pg_sleep(2)"), cut_soon())
                assert not lost.value.timed_out
                # The same inside a transaction (pipeline-recon's snapshot): asyncpg's end of the
                # transaction then raises InterfaceError on the lost connection, still a 503.
                with pytest.raises(DatabaseUnavailable):
                    async with database.connection() as conn, conn.transaction():
                        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        await asyncio.gather(conn.fetch("SELECT pg_sleep(2)"), cut_soon())
                # Then a new connection answers. The cut also dropped the pool's idle connection,
                # which the loop may not have noticed yet: its borrower gets a 503, never a 500.
                for _ in range(3):
                    try:
                        async with database.connection() as conn:
                            assert (await conn.fetch("SELECT 1 AS one"))[0]["one"] == 1
                        break
                    except DatabaseUnavailable:
                        await asyncio.sleep(0.1)
                else:
                    pytest.fail("no connection answered after the cut")
            finally:
                await database.close()

        asyncio.run(statement_cut_midway())
